/* SPDX-License-Identifier: MIT */
#pragma once

#include <pthread.h>
#include <stdbool.h>

/* Where this VMM's threads run (docs/configuration.md, "CPU placement"). The agent passes two CPU
 * lists when its housekeeping_cpus is set: the housekeeping CPUs, for the main thread (control
 * socket, signals), and the guest CPUs, for the guest's work: the vCPU threads (unless the spec's
 * cpuset says otherwise), the devices' I/O threads and the memslot pool, which prepares and
 * releases guest memory. Without them every thread inherits the VMM's affinity. */

/* Parses both lists and moves the calling (main) thread onto the housekeeping CPUs; -EINVAL for a
 * malformed list, or the errno of sched_setaffinity. Call before any thread exists. */
int placement_init(const char *housekeeping_cpus, const char *guest_cpus);
/* Sets the guest CPUs on attr when placement is on; returns whether it did, or a negative errno. */
int placement_guest_attr(pthread_attr_t *attr);
/* The canonical lists, or NULL when placement is off. */
const char *placement_housekeeping_cpus(void);
const char *placement_guest_cpus(void);
