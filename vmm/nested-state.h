/* SPDX-License-Identifier: MIT */
/* Reading and checking a KVM nested state blob (struct kvm_nested_state: 128-byte header + vendor data)
 * without KVM: the decoded header as JSON, and the checks kvmfleet makes before KVM_SET_NESTED_STATE
 * sees a blob (the same ones KVM makes in kvm_arch_vcpu_ioctl and vmx/svm_set_nested_state, so a
 * refusal names the field instead of coming back as a bare EINVAL). */
#pragma once

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "kvm-compat.h"

#ifndef KVM_STATE_NESTED_MTF_PENDING
#define KVM_STATE_NESTED_MTF_PENDING 0x00000008
#endif
#ifndef KVM_STATE_NESTED_GIF_SET
#define KVM_STATE_NESTED_GIF_SET 0x00000100
#endif
#ifndef KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE
#define KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE 0x00000001
#endif

#define NESTED_STATE_HDR_SIZE 128u
/* Header plus vmcs12 and shadow vmcs12 (VMX), header plus the VMCB save area (SVM). */
#define NESTED_STATE_VMX_MAX_SIZE (NESTED_STATE_HDR_SIZE + 2u * KVM_STATE_NESTED_VMX_VMCS_SIZE)
#define NESTED_STATE_SVM_MAX_SIZE (NESTED_STATE_HDR_SIZE + KVM_STATE_NESTED_SVM_VMCB_SIZE)
#define NESTED_STATE_FLAGS_KNOWN                                                                   \
        (KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_RUN_PENDING | KVM_STATE_NESTED_EVMCS |     \
         KVM_STATE_NESTED_MTF_PENDING | KVM_STATE_NESTED_GIF_SET)
#define NESTED_STATE_INVALID_GPA UINT64_MAX

/* The format of the host's vendor: KVM_STATE_NESTED_FORMAT_VMX for "GenuineIntel" (and Zhaoxin,
 * Centaur), KVM_STATE_NESTED_FORMAT_SVM for "AuthenticAMD" and "HygonGenuine", -EOPNOTSUPP else. */
int nested_state_format_for_vendor(const char *cpuid_vendor);
/* The same for the CPU this runs on (CPUID leaf 0). */
int nested_state_host_format(void);
/* "vmx", "svm" or "unknown". */
const char *nested_state_format_to_string(unsigned format);

/* Why a blob was refused: field is a name in the decoded view ("format", "size", "flags",
 * "svm.vmcb_pa", "vmx.smm.flags", ...). */
typedef struct NestedStateError {
        char field[32];
        char message[256];
} NestedStateError;

/* The decoded header: {"format", "size", "flags": {"raw", "guest_mode", "run_pending", "evmcs",
 * "mtf_pending", "gif_set"}, "svm": {"vmcb_pa"} | "vmx": {"vmxon_pa", "vmcs12_pa", "smm": {"raw",
 * "guest_mode", "vmxon"}, "flags": {"raw", "preemption_timer_deadline_valid"},
 * "preemption_timer_deadline"}, "data_size"}. Physical addresses that KVM marks invalid (all ones)
 * are null. -EINVAL when len is shorter than the header. */
int nested_state_decode(const void *blob, size_t len, json_object **ret);

/* Checks a blob of len bytes for KVM_SET_NESTED_STATE on a host of host_format whose
 * KVM_CAP_NESTED_STATE is max_size: -EOPNOTSUPP when max_size is 0, -E2BIG beyond max_size, -EINVAL
 * for anything else wrong; e says what. */
int nested_state_validate(const void *blob, size_t len, int host_format, int max_size, NestedStateError *e);
