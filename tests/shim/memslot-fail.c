/* SPDX-License-Identifier: MIT */
/* LD_PRELOAD shim for failure tests: makes chosen KVM_SET_USER_MEMORY_REGION(2) calls fail, so that
 * the VMM's failure-after-validation paths run against the real /dev/kvm.
 *   KVMFLEET_SHIM_FAIL_REGION=N     the Nth such call (counting from 1, both ioctls together) fails
 *   KVMFLEET_SHIM_FAIL_ERRNO=E      with errno E (default ENOMEM)
 * Every other ioctl, and every other such call, goes to the real ioctl() unchanged. */
#include <dlfcn.h>
#include <errno.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>

/* Not in Linux 6.1's headers: _IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2), 160 bytes. */
#define SHIM_KVM_SET_USER_MEMORY_REGION2 _IOC(_IOC_WRITE, KVMIO, 0x49, 160)

int ioctl(int fd, unsigned long request, ...);

static unsigned long region_calls;

int ioctl(int fd, unsigned long request, ...) {
        static int (*real_ioctl)(int, unsigned long, void *);
        va_list ap;
        void *arg;

        va_start(ap, request);
        arg = va_arg(ap, void *);
        va_end(ap);
        if (!real_ioctl)
                real_ioctl = (int (*)(int, unsigned long, void *)) dlsym(RTLD_NEXT, "ioctl");
        if (request == KVM_SET_USER_MEMORY_REGION || request == SHIM_KVM_SET_USER_MEMORY_REGION2) {
                unsigned long n = __atomic_add_fetch(&region_calls, 1, __ATOMIC_SEQ_CST);
                const char *fail = getenv("KVMFLEET_SHIM_FAIL_REGION");
                if (fail && strtoul(fail, NULL, 10) == n) {
                        const char *e = getenv("KVMFLEET_SHIM_FAIL_ERRNO");
                        errno = e ? atoi(e) : ENOMEM;
                        return -1;
                }
        }
        return real_ioctl(fd, request, arg);
}
