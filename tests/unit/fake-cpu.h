/* SPDX-License-Identifier: MIT */
/* Fake /dev/cpu/N/cpuid and msr files for unit tests of kmod/ on a sysroot. */
#pragma once

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fd-util.h"
#include "kmod/cpuid.h"

/* The cpuid driver answers pread(16 bytes at offset leaf | (subleaf << 32)) with eax, ebx, ecx, edx.
 * A fake /dev/cpu/N/cpuid is a sparse regular file with those 16 bytes at that offset times 16, since
 * leaves 0 and 1 would overlap otherwise (the reader scales offsets for regular files only). */
static inline void fake_cpuid(const char *root, unsigned cpu, uint32_t leaf, uint32_t subleaf, CpuidRegs regs) {
        char path[1024];
        snprintf(path, sizeof path, "%s/dev/cpu/%u", root, cpu);
        if (mkdir_p(path, 0755) < 0)
                abort();
        snprintf(path, sizeof path, "%s/dev/cpu/%u/cpuid", root, cpu);
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        uint32_t buf[4] = { regs.eax, regs.ebx, regs.ecx, regs.edx };
        if (fd < 0 || pwrite(fd, buf, sizeof buf, (off_t) (((uint64_t) leaf | ((uint64_t) subleaf << 32)) * 16)) != sizeof buf)
                abort();
        close(fd);
}

static inline void fake_msr(const char *root, unsigned cpu, uint32_t msr, uint64_t value) {
        char path[1024];
        snprintf(path, sizeof path, "%s/dev/cpu/%u/msr", root, cpu);
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0 || pwrite(fd, &value, sizeof value, (off_t) msr * 8) != sizeof value)
                abort();
        close(fd);
}
