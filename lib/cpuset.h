/* SPDX-License-Identifier: MIT */
#pragma once

#include <sched.h>

/* Host CPU lists in the syntax libvirt and the kernel use: "0-3,6", with "^2" excluding a CPU that
 * an earlier range named. */
#define CPUSET_MAX 1023 /* highest CPU number a list may name (CPU_SETSIZE - 1) */

/* Parses s into *ret; -EINVAL when malformed, empty after exclusions, or naming a CPU above
 * CPUSET_MAX. */
int cpuset_parse(const char *s, cpu_set_t *ret);
/* The canonical list ("0-1,3-6") of set; -EINVAL when the set is empty. Caller frees. */
int cpuset_format(const cpu_set_t *set, char **ret);
