/* SPDX-License-Identifier: MIT */
/* Live APICv/AVIC inhibit tracking from the tracepoint kvm:kvm_apicv_inhibit_changed(reason, set,
 * inhibits), the only place KVM shows a VM's inhibit bitmap. It uses a tracefs instance of its own
 * (instances/kvmfleet, never the global buffer), with only that event enabled and the instance's pid
 * filter set to the agent (event-fork adds every VMM it spawns, and their vCPU threads) plus the
 * VMMs it adopted. A thread reads the instance's trace_pipe and keeps, per VMM process, the current
 * bitmap, the time of the last change and a short history; that state is saved to a file in the
 * state directory, so that an agent restart keeps it, and the events raised while no agent ran wait
 * in the instance's ring buffer. See docs/apicv.md. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define APICV_TRACE_INSTANCE "kvmfleet"
#define APICV_REASONS_MAX 32
#define APICV_HISTORY_MAX 16

/* Names of inhibit reason bits for one kernel: the enum kvm_apicv_inhibit changed across versions. */
typedef struct ApicvReasonTable {
        char names[APICV_REASONS_MAX][32];
        unsigned n;
        char source[96]; /* which table: "linux 6.1 (kvm_host.h)", "tracepoint format", ... */
} ApicvReasonTable;

/* The table for a kernel release ("6.1.0-18-amd64"); format_text, when not NULL, is the event's
 * tracefs format file, whose print format names the reasons in enum order on kernels that have
 * them (6.9 and later): those names win. */
void apicv_reason_table_for(const char *release, const char *format_text, ApicvReasonTable *ret);
/* The name of reason bit, or NULL when the table does not know it. */
const char *apicv_reason_name(const ApicvReasonTable *t, unsigned bit);
/* A JSON array of the names of the bits set in inhibits ("BIT<n>" for unknown ones). */
json_object *apicv_reason_names_json(const ApicvReasonTable *t, uint64_t inhibits);

/* One line of trace_pipe text. */
typedef struct ApicvTraceEvent {
        pid_t tid;
        uint64_t timestamp_usec; /* trace clock */
        bool set;
        unsigned reason;
        uint64_t inhibits;
} ApicvTraceEvent;
/* 0 and *ret for a kvm_apicv_inhibit_changed line, -ENOMSG for other lines, -EINVAL when malformed. */
int apicv_trace_parse_line(const char *line, ApicvTraceEvent *ret);

typedef struct ApicvTrace ApicvTrace;

/* Sets the instance up and starts the reader thread. Never fails for a missing capability: the
 * object then records why live data is unavailable (apicv_trace_live_json says it). state_file
 * keeps the per-VMM state across restarts; vmm_pids are the VMMs already running (adopted). */
int apicv_trace_start(const char *state_file, const pid_t *vmm_pids, size_t n_vmm_pids, ApicvTrace **ret);
/* Stops the thread and saves the state; the instance stays for the next agent. NULL is fine. */
ApicvTrace *apicv_trace_free(ApicvTrace *t);
/* Adds a VMM (all its threads) to the instance's pid filter, for VMMs the agent did not fork itself. */
void apicv_trace_watch_pid(ApicvTrace *t, pid_t pid);
/* {"available", "reason"?, "source", "view", "inhibits", "names", "last_change", "events", "history"}
 * for the VMM process pid (started at start_time, /proc/PID/stat field 22); pid 0: no VMM runs. */
int apicv_trace_live_json(ApicvTrace *t, pid_t pid, uint64_t start_time, json_object **ret);
const ApicvReasonTable *apicv_trace_reasons(ApicvTrace *t);
/* Why live data is unavailable, or NULL when tracking runs. */
const char *apicv_trace_unavailable(ApicvTrace *t);
