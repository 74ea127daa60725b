/* SPDX-License-Identifier: MIT */
#include "kvm.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static __thread const char *last_failed_ioctl = "";

const char *kvm_last_failed_ioctl(void) {
        return last_failed_ioctl;
}

void kvm_note_failed_ioctl(const char *name) {
        last_failed_ioctl = name;
}

int kvm_open(int *ret_fd) {
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                kvm_note_failed_ioctl("open(/dev/kvm)");
                return -errno;
        }
        int version = __kvm_ioctl(fd, KVM_GET_API_VERSION, 0);
        if (version < 0 || version != KVM_API_VERSION) {
                close(fd);
                return version < 0 ? version : -ENOTSUP;
        }
        *ret_fd = fd;
        return 0;
}

int kvm_check_extension(int fd, long cap) {
        int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);
        return r < 0 ? 0 : r;
}

int kvm_enable_cap(int fd, uint32_t cap, uint64_t arg0) {
        struct kvm_enable_cap ec = { .cap = cap, .args = { arg0 } };
        return kvm_ioctl(fd, KVM_ENABLE_CAP, &ec);
}
