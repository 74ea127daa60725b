/* SPDX-License-Identifier: MIT */
/* KVM ioctl wrappers in the manner of the KVM selftests: the argument's size is checked against the
 * ioctl number's _IOC_SIZE at compile time, and a failing call records the ioctl's name so that the
 * program layer can say which one failed (kvm_last_failed_ioctl()). All return 0/value or -errno. */
#pragma once

#include <errno.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include "kvm-compat.h"

/* The name of the last ioctl that failed on this thread, or "" when none did. */
const char *kvm_last_failed_ioctl(void);
void kvm_note_failed_ioctl(const char *name);

/* Raw: no argument size check (for ioctls that take an integer or nothing). */
#define __kvm_ioctl(fd, cmd, arg)                                               \
        ({                                                                      \
                int _r = ioctl((fd), (cmd), (arg));                             \
                if (_r < 0) {                                                   \
                        _r = errno > 0 ? -errno : -EIO;                         \
                        kvm_note_failed_ioctl(#cmd);                            \
                }                                                               \
                _r;                                                             \
        })

/* Checked: arg is a pointer to exactly the struct the ioctl number encodes. */
#define kvm_ioctl(fd, cmd, arg)                                                 \
        ({                                                                      \
                _Static_assert(sizeof(*(arg)) == _IOC_SIZE(cmd), "size of the argument of " #cmd); \
                __kvm_ioctl(fd, cmd, arg);                                      \
        })

int kvm_open(int *ret_fd);
/* KVM_CHECK_EXTENSION on the system fd or a VM fd: the capability's value (0 when absent). */
int kvm_check_extension(int fd, long cap);
int kvm_enable_cap(int fd, uint32_t cap, uint64_t arg0);
