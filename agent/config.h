/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

#define AGENT_CONFIG_DEFAULT_PATH "/etc/kvmfleet/kvmfleetd.conf"

/* Where the agent and the VMMs' control threads run (docs/configuration.md, "CPU placement"). */
typedef enum HousekeepingMode {
        HOUSEKEEPING_AUTO, /* one of the agent's CPUs, shared with the guests */
        HOUSEKEEPING_NONE, /* every thread keeps the agent's affinity */
        HOUSEKEEPING_LIST, /* these CPUs, guests on the others */
} HousekeepingMode;

/* The [agent] section of kvmfleetd.conf. The [kvm] section belongs to kvmfleet-load and is
 * skipped here; any other section, unknown key or bad value is an error naming its line. */
typedef struct AgentConfig {
        char *state_dir;        /* inventory lives here */
        char *run_dir;          /* VMM control sockets */
        char *socket_path;      /* the API's unix socket */
        unsigned socket_mode;
        char *socket_group;     /* optional: group owning the socket */
        char *listen_tcp;       /* "ADDRESS:PORT" or NULL: no TCP */
        char *token_file;       /* bearer token for TCP clients */
        char *inventory;        /* SQLite file */
        char *kvm_setup_report; /* written by kvmfleet-load */
        char *vmm_binary;       /* kvmfleet-vmm to start VMs with */
        char *kvm_load_binary;  /* kvmfleet-load, for POST /v1/host/kvm/reload */
        int log_level;
        uint64_t max_body;      /* request bodies above this are 413 */
        unsigned threads;       /* libmicrohttpd thread pool */
        uint64_t min_free_space; /* state dir free space below this is "degraded" */
        unsigned vm_max_vcpus;  /* per-VM limit; 0: the host's online CPUs */
        uint64_t vm_max_memory; /* per-VM limit; 0: the host's MemTotal */
        unsigned stop_timeout;  /* seconds a graceful stop waits before SIGTERM */
        unsigned restart_limit; /* automatic restarts (on_crash/on_reboot) allowed per minute */
        HousekeepingMode housekeeping; /* housekeeping_cpus: auto (the default), none, or a list */
        char *housekeeping_cpus; /* the canonical list when housekeeping is HOUSEKEEPING_LIST, else NULL */
} AgentConfig;

/* Loads path (the built-in defaults when path is NULL). On a bad file *ret_error says
 * "PATH:LINE: what" and -EINVAL (or the open error) is returned. */
int agent_config_load(const char *path, AgentConfig **ret, char **ret_error);
AgentConfig *agent_config_free(AgentConfig *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(AgentConfig *, agent_config_free);
