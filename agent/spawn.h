/* SPDX-License-Identifier: MIT */
#pragma once

#include <signal.h>
#include <spawn.h>

/* Attributes for a child that must not inherit the agent's signal state: an empty mask (the agent
 * blocks SIGTERM/SIGINT/SIGHUP in every thread) and default dispositions, plus extra_flags
 * (e.g. POSIX_SPAWN_SETSID). Destroy with posix_spawnattr_destroy(). */
static inline void spawn_attr_init_clean(posix_spawnattr_t *attr, short extra_flags) {
        sigset_t none, all;
        posix_spawnattr_init(attr);
        sigemptyset(&none);
        sigfillset(&all);
        posix_spawnattr_setsigmask(attr, &none);
        posix_spawnattr_setsigdefault(attr, &all);
        posix_spawnattr_setflags(attr, (short) (POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | extra_flags));
}
