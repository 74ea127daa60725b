/* SPDX-License-Identifier: MIT */
#pragma once

/* The agent's half of housekeeping_cpus (docs/configuration.md, "CPU placement"): the agent moves
 * itself onto the housekeeping CPUs, and every VMM it starts gets both lists (kvmfleet-vmm
 * --housekeeping-cpus, --guest-cpus). */
typedef struct CpuPlacement {
        char *housekeeping_cpus; /* canonical list, NULL when housekeeping_cpus is not set */
        char *guest_cpus;        /* the agent's CPUs besides those; all of them when none is left */
} CpuPlacement;

/* Computes both lists from want (a CPU list) and the calling thread's affinity, then moves the
 * calling thread there; call before any other thread exists, so that all of them inherit it.
 * -EINVAL with *ret_error saying why when none of want's CPUs is available to the agent. */
int cpu_placement_apply(const char *want, CpuPlacement *ret, char **ret_error);
void cpu_placement_done(CpuPlacement *p);
