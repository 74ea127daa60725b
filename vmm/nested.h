/* SPDX-License-Identifier: MIT */
/* A vCPU's nested virtualization state (KVM_GET/SET_NESTED_STATE): the 128-byte header plus the
 * vendor's data (VMX: vmcs12 and shadow vmcs12; SVM: the L1's VMCB control area). The blob's size is
 * bounded by KVM_CAP_NESTED_STATE (0 = the host does not support nested state). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kvm-compat.h"

#define NESTED_STATE_HEADER_SIZE offsetof(struct kvm_nested_state, data)

/* KVM_CHECK_EXTENSION(KVM_CAP_NESTED_STATE) on kvm_fd: the largest blob, 0 when unsupported. */
int nested_state_max_size(int kvm_fd);

/* KVM_GET_NESTED_STATE of vcpu_fd into a new buffer of max_size bytes (more when KVM answers E2BIG
 * with a larger size, up to NESTED_STATE_SIZE_LIMIT). ret_size is the size KVM filled in. Must run
 * where the vCPU is not in KVM_RUN. -EOPNOTSUPP when max_size is 0. */
#define NESTED_STATE_SIZE_LIMIT (1024 * 1024)
int nested_state_get(int vcpu_fd, int max_size, struct kvm_nested_state **ret, size_t *ret_size);

/* KVM_SET_NESTED_STATE from a blob of len bytes whose header's size field must equal len (the caller
 * validates format and flags against the host first). */
int nested_state_set(int vcpu_fd, const struct kvm_nested_state *state, size_t len);
