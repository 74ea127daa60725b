/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "manager.h"

/* Adds "nested", "allow_unsafe_mappings", "apicv" (each parameter desired vs effective, and the
 * CPU's APIC virtualization feature) and "desired_params" to a /v1/host/kvm object. */
int host_kvm_policy(Manager *m, json_object *o);
/* kvm.allow_unsafe_mappings is on in the running kernel. */
bool host_kvm_unsafe_mappings_on(void);
/* How the kernel reads a bool module parameter: 1, Y, y, on, true. */
bool kvm_param_truthy(const char *v);
