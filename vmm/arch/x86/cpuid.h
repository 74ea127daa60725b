/* SPDX-License-Identifier: MIT */
/* Guest CPUID: KVM_GET_SUPPORTED_CPUID adjusted per VM and vCPU (topology and APIC IDs, the
 * hypervisor bit, VMX/SVM hidden unless nested virtualization is exposed). */
#pragma once

#include <linux/kvm.h>
#include <stdbool.h>

int x86_cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **ret);
/* A copy of base adjusted for one vCPU; caller frees. */
int x86_cpuid_for_vcpu(const struct kvm_cpuid2 *base, unsigned vcpu_index, unsigned n_vcpus, bool nested,
                       struct kvm_cpuid2 **ret);
