/* SPDX-License-Identifier: MIT */
/* Whether this host can give a VM nested virtualization (spec cpu.nested: true): a vendor module
 * (kvm_intel/kvm_amd, i.e. VMX or SVM under KVM), its "nested" parameter on, and
 * KVM_CAP_NESTED_STATE > 0 (without it a VM with an L2 running could not be saved, inspected or
 * restored). Checked when a VM is defined and again when it starts: the host can change in between
 * (POST /v1/host/kvm/reload). */
#pragma once

#include <stdbool.h>

#include "vms.h"

/* What the checks look at; nested_host_facts() reads them from sysfs, CPUID and /dev/kvm. */
typedef struct NestedHostFacts {
        const char *vendor_module;  /* "kvm_intel", "kvm_amd" or NULL */
        bool cpu_virt;              /* CPUID says VMX (Intel) or SVM (AMD) */
        char nested_param[16];      /* the vendor module's nested parameter, "" when absent */
        int nested_state_max_size;  /* KVM_CAP_NESTED_STATE, 0 = unsupported */
} NestedHostFacts;

void nested_host_facts(NestedHostFacts *ret);

/* 0 when facts allow nested virtualization; otherwise -EINVAL with e set to 422 "unsupported",
 * details {"path": "$.cpu.nested", "reasons": [{"check", "message"}...], ...} naming every check that
 * failed. what says when ("define", "start"). */
int nested_host_check(const NestedHostFacts *facts, const char *vm_name, const char *what, VmError *e);

/* The spec JSON text asks for cpu.nested: true. */
bool nested_spec_wanted(const char *spec_json);
