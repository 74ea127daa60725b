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

/* The host's APIC virtualization as far as a new VM is concerned (GET /v1/vms/{id}/apicv). */
typedef struct HostApicv {
        const char *vendor_module; /* "kvm_intel", "kvm_amd", or NULL when neither is loaded */
        const char *cpu_vendor;    /* "intel", "amd" or NULL */
        const char *parameter;     /* "kvm_intel.enable_apicv", "kvm_amd.avic" or NULL */
        int parameter_on;          /* the parameter's effective value; -1 when absent */
        int cpu_supported;         /* the CPU feature; -1 when it can't be read */
        bool forced;               /* kvm_amd.force_avic: AVIC on although CPUID lacks it */
        bool effective;            /* KVM uses APICv/AVIC for new VMs */
} HostApicv;
void host_kvm_apicv_state(HostApicv *ret);
