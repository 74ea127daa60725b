/* SPDX-License-Identifier: MIT */
/* KVM ABI newer than the Linux 6.1 uapi headers of Debian 12. Values are fixed by the kernel ABI;
 * whether the running kernel has them is probed with KVM_CHECK_EXTENSION. */
#pragma once

#include <linux/kvm.h>
#include <stdint.h>

#ifndef KVM_CAP_USER_MEMORY2
#define KVM_CAP_USER_MEMORY2 231
#endif
#ifndef KVM_CAP_MEMORY_ATTRIBUTES
#define KVM_CAP_MEMORY_ATTRIBUTES 233
#endif
#ifndef KVM_CAP_GUEST_MEMFD
#define KVM_CAP_GUEST_MEMFD 234
#endif
#ifndef KVM_CAP_VM_TYPES
#define KVM_CAP_VM_TYPES 235
#endif

#ifndef KVM_MEM_GUEST_MEMFD
#define KVM_MEM_GUEST_MEMFD (1UL << 2)

struct kvm_userspace_memory_region2 {
        uint32_t slot;
        uint32_t flags;
        uint64_t guest_phys_addr;
        uint64_t memory_size;
        uint64_t userspace_addr;
        uint64_t guest_memfd_offset;
        uint32_t guest_memfd;
        uint32_t pad1;
        uint64_t pad2[14];
};
#define KVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2)

struct kvm_create_guest_memfd {
        uint64_t size;
        uint64_t flags;
        uint64_t reserved[6];
};
#define KVM_CREATE_GUEST_MEMFD _IOWR(KVMIO, 0xd4, struct kvm_create_guest_memfd)

#define KVM_MEMORY_ATTRIBUTE_PRIVATE (1ULL << 3)
struct kvm_memory_attributes {
        uint64_t address;
        uint64_t size;
        uint64_t attributes;
        uint64_t flags;
};
#define KVM_SET_MEMORY_ATTRIBUTES _IOW(KVMIO, 0xd2, struct kvm_memory_attributes)
#endif
