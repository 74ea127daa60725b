/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

#include "macro.h"

/* Builds "<sysroot><path>" where path is formatted; sysroot NULL or "" or "/" means the real root.
 * Tests point sysroot at a fake tree with sys/ and dev/cpu/. -ENAMETOOLONG when it does not fit. */
int sysroot_path(char *buf, size_t n, const char *sysroot, const char *fmt, ...) _printf_(4, 5);
int sysroot_is_real(const char *sysroot);
