/* SPDX-License-Identifier: MIT */
#include "placement.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "cpuset.h"
#include "macro.h"

static struct {
        bool on;
        cpu_set_t guest;
        char *housekeeping_list, *guest_list;
} placement;

int placement_init(const char *housekeeping_cpus, const char *guest_cpus) {
        _cleanup_free_ char *hk_list = NULL, *guest_list = NULL;
        cpu_set_t hk, guest;
        int r;

        if ((r = cpuset_parse(housekeeping_cpus, &hk)) < 0 || (r = cpuset_parse(guest_cpus, &guest)) < 0 ||
            (r = cpuset_format(&hk, &hk_list)) < 0 || (r = cpuset_format(&guest, &guest_list)) < 0)
                return r;
        if (sched_setaffinity(0, sizeof hk, &hk) < 0)
                return -errno;
        placement.on = true;
        placement.guest = guest;
        placement.housekeeping_list = TAKE_PTR(hk_list);
        placement.guest_list = TAKE_PTR(guest_list);
        return 0;
}

int placement_guest_attr(pthread_attr_t *attr) {
        if (!placement.on)
                return 0;
        int r = pthread_attr_setaffinity_np(attr, sizeof placement.guest, &placement.guest);
        return r ? -r : 1;
}

const char *placement_housekeeping_cpus(void) {
        return placement.housekeeping_list;
}

const char *placement_guest_cpus(void) {
        return placement.guest_list;
}
