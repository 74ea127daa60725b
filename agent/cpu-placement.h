/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>

/* The agent's half of housekeeping_cpus (docs/configuration.md, "CPU placement"): the agent moves
 * itself onto the housekeeping CPUs, and every VMM it starts gets both lists (kvmfleet-vmm
 * --housekeeping-cpus, --guest-cpus). */
typedef struct CpuPlacement {
        char *housekeeping_cpus; /* canonical list, NULL when there is no placement */
        char *guest_cpus;        /* the agent's CPUs besides those; all of them when none is left (and for auto) */
        bool automatic;          /* housekeeping_cpus = auto chose the CPU */
} CpuPlacement;

/* Computes both lists from want (a CPU list) and the calling thread's affinity, then moves the
 * calling thread there; call before any other thread exists, so that all of them inherit it.
 * -EINVAL with *ret_error saying why when none of want's CPUs is available to the agent. */
int cpu_placement_apply(const char *want, CpuPlacement *ret, char **ret_error);
/* housekeeping_cpus = auto: the first of the calling thread's CPUs for the agent and the VMMs' main
 * threads, every one of them for the guests, so that a control call hands off between the agent
 * and a VMM on one CPU and guests keep every CPU. With only one CPU there is nothing to place:
 * *ret stays empty. Same calling rule as cpu_placement_apply(). */
int cpu_placement_auto(CpuPlacement *ret);
void cpu_placement_done(CpuPlacement *p);
