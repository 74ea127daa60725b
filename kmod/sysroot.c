/* SPDX-License-Identifier: MIT */
#include "sysroot.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int sysroot_is_real(const char *sysroot) {
        return !sysroot || !*sysroot || strcmp(sysroot, "/") == 0;
}

int sysroot_path(char *buf, size_t n, const char *sysroot, const char *fmt, ...) {
        va_list ap;
        int l = snprintf(buf, n, "%s", sysroot_is_real(sysroot) ? "" : sysroot);
        if (l < 0 || (size_t) l >= n)
                return -ENAMETOOLONG;
        va_start(ap, fmt);
        int m = vsnprintf(buf + l, n - l, fmt, ap);
        va_end(ap);
        if (m < 0 || (size_t) m >= n - l)
                return -ENAMETOOLONG;
        return 0;
}
