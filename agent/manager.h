/* SPDX-License-Identifier: MIT */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "cpu-placement.h"
#include "store.h"
#include "vms.h"

typedef struct Manager {
        AgentConfig *config;
        char *config_path;
        Store *store;
        sd_event *event;
        struct MHD_Daemon *http_unix;
        struct MHD_Daemon *http_tcp;
        int unix_fd;
        char *token;            /* bearer token for TCP, NULL when TCP is off */
        uint64_t start_realtime_usec;
        uint64_t start_monotonic_usec;
        bool watchdog;          /* systemd asked for watchdog pings */
        VmSupervisor *vms;      /* VM lifecycle and the VMM watches */
        bool kvm_reloading;     /* kvmfleet-load --reload runs: no VM may start (atomic) */
        struct ApicvTrace *apicv_trace; /* live APICv inhibit tracking (apicv-trace.h) */
        CpuPlacement placement; /* housekeeping_cpus as applied at start (cpu-placement.h) */
} Manager;

int manager_new(const char *config_path, AgentConfig *config, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Opens the inventory, ingests the setup report and starts the listeners. */
int manager_startup(Manager *m);
/* Runs the event loop until SIGTERM/SIGINT. */
int manager_run(Manager *m);
/* Re-reads the config's log level and the kvm setup report (SIGHUP). */
int manager_reload(Manager *m);
int manager_ingest_kvm_setup(Manager *m);

/* Appends an event; failures are logged, not returned, because the action already happened. */
void manager_event(Manager *m, const char *actor, const char *object, const char *action, const char *result,
                   json_object *detail);
