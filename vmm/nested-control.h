/* SPDX-License-Identifier: MIT */
/* The control methods nested_state_get and nested_state_set (docs/vmm-protocol.md, "Nested state"):
 * a vCPU's KVM nested state as a decoded header plus the raw blob in base64, on a paused VM. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "vm.h"

#define NESTED_CONTROL_VCPU_TIMEOUT_MS 2000

bool nested_control_method(const char *method);
/* Returns 1 with *ret_result, 0 with *ret_error (an error reply body: {"code", "message",
 * "details"}), or -errno for an internal failure. */
int nested_control_call(Vm *vm, const char *method, json_object *params, json_object **ret_result,
                        json_object **ret_error);
