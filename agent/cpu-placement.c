/* SPDX-License-Identifier: MIT */
#include "cpu-placement.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "cpuset.h"
#include "log.h"
#include "macro.h"

/* Moves the calling thread onto hk and fills *ret with both lists. */
static int place(const cpu_set_t *hk, const cpu_set_t *guest, bool automatic, CpuPlacement *ret) {
        _cleanup_free_ char *hk_list = NULL, *guest_list = NULL;
        int r;
        if ((r = cpuset_format(hk, &hk_list)) < 0 || (r = cpuset_format(guest, &guest_list)) < 0)
                return r;
        if (sched_setaffinity(0, sizeof *hk, hk) < 0)
                return -errno;
        *ret = (CpuPlacement){ .housekeeping_cpus = TAKE_PTR(hk_list), .guest_cpus = TAKE_PTR(guest_list),
                               .automatic = automatic };
        return 0;
}

int cpu_placement_apply(const char *want, CpuPlacement *ret, char **ret_error) {
        _cleanup_free_ char *allowed_list = NULL;
        cpu_set_t wanted, allowed, hk, guest;
        int r;

        *ret = (CpuPlacement){};
        r = cpuset_parse(want, &wanted);
        if (r < 0)
                return asprintf(ret_error, "housekeeping_cpus \"%s\" is not a CPU list such as 0-1,4", want) < 0 ? -ENOMEM : r;
        if (sched_getaffinity(0, sizeof allowed, &allowed) < 0)
                return -errno;
        CPU_AND(&hk, &wanted, &allowed);
        if ((r = cpuset_format(&allowed, &allowed_list)) < 0)
                return r;
        if (CPU_COUNT(&hk) == 0)
                return asprintf(ret_error, "housekeeping_cpus \"%s\": none of these CPUs is available to the agent (its CPUs: %s)",
                                want, allowed_list) < 0 ? -ENOMEM : -EINVAL;
        /* hk is within allowed, so the exclusive or is the rest of allowed */
        CPU_XOR(&guest, &allowed, &hk);
        if (CPU_COUNT(&guest) == 0)
                guest = allowed;
        if ((r = place(&hk, &guest, false, ret)) < 0)
                return r;
        if (!CPU_EQUAL(&hk, &wanted))
                log_warning("housekeeping_cpus \"%s\": only CPUs %s of these are available to the agent (its CPUs: %s).",
                            want, ret->housekeeping_cpus, allowed_list);
        if (CPU_EQUAL(&guest, &allowed))
                log_notice("Housekeeping on CPUs %s; no other CPU is left, so guests share them.", ret->housekeeping_cpus);
        else
                log_info("Housekeeping on CPUs %s; vCPU, device I/O and memslot-pool threads on CPUs %s.",
                         ret->housekeeping_cpus, ret->guest_cpus);
        return 0;
}

int cpu_placement_auto(CpuPlacement *ret) {
        cpu_set_t allowed, hk;
        int r;

        *ret = (CpuPlacement){};
        if (sched_getaffinity(0, sizeof allowed, &allowed) < 0)
                return -errno;
        if (CPU_COUNT(&allowed) < 2) {
                log_debug("housekeeping_cpus = auto: the agent has one CPU, nothing to place.");
                return 0;
        }
        CPU_ZERO(&hk);
        for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
                if (CPU_ISSET(cpu, &allowed)) {
                        CPU_SET(cpu, &hk);
                        break;
                }
        if ((r = place(&hk, &allowed, true, ret)) < 0)
                return r;
        log_info("Control plane on CPU %s (housekeeping_cpus = auto): the agent and each VMM's control thread; "
                 "vCPU, device I/O and memslot-pool threads on CPUs %s.", ret->housekeeping_cpus, ret->guest_cpus);
        return 0;
}

void cpu_placement_done(CpuPlacement *p) {
        free(p->housekeeping_cpus);
        free(p->guest_cpus);
        *p = (CpuPlacement){};
}
