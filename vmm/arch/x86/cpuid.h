/* SPDX-License-Identifier: MIT */
/* Guest CPUID: KVM_GET_SUPPORTED_CPUID adjusted per VM and vCPU (topology and APIC IDs, the
 * hypervisor bit, VMX/SVM hidden unless nested virtualization is exposed). */
#pragma once

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

int x86_cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **ret);
/* Sets CPUID.1:ECX.TSC_DEADLINE_TIMER in base. KVM_GET_SUPPORTED_CPUID never reports it: KVM emulates
 * the TSC-deadline mode of its in-kernel LAPIC timer and says so through KVM_CAP_TSC_DEADLINE_TIMER.
 * Without it Linux calibrates the LAPIC timer against the PIT, which a slow or preempted vCPU gets
 * wrong. Returns whether leaf 1 was found. */
bool x86_cpuid_set_tsc_deadline(struct kvm_cpuid2 *base);
/* The KVM paravirtual feature bits (KVM_CPUID_FEATURES EAX) base offers; 0 without that leaf. */
uint32_t x86_cpuid_kvm_pv_features(const struct kvm_cpuid2 *base);
/* A copy of base adjusted for one vCPU, with the KVM paravirtual features in kvm_pv_off cleared;
 * caller frees. */
int x86_cpuid_for_vcpu(const struct kvm_cpuid2 *base, unsigned vcpu_index, unsigned n_vcpus, bool nested,
                       uint32_t kvm_pv_off, struct kvm_cpuid2 **ret);
