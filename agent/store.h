/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "macro.h"
#include "schema.h"

/* The SQLite inventory. One connection, WAL, foreign keys on; every call is serialized by the
 * store's own lock, so callers on libmicrohttpd threads never see SQLITE_BUSY from each other. */
typedef struct Store Store;

/* For store modules in their own files (store-memslots.c): the connection, with the store's lock
 * held until store_unlock(). */
struct sqlite3;
struct sqlite3_stmt;
struct sqlite3 *store_lock(Store *s);
void store_unlock(Store *s);

/* With the lock held: a prepared statement for sql, which must be a string literal (the cache is keyed
 * by its address), prepared once and kept; NULL on failure (sqlite3_errcode() says why). Hand it back
 * with store_stmt_done() (reset, bindings cleared) before unlocking. */
struct sqlite3_stmt *store_stmt(Store *s, const char *sql);
void store_stmt_done(Store *s, struct sqlite3_stmt *st);

/* One write transaction around several store calls (BEGIN IMMEDIATE ... COMMIT), holding the store's
 * lock from begin to end so that nothing else lands in between; the calls inside take the lock again
 * (it is recursive). The calls inside must not open transactions of their own. */
int store_tx_begin(Store *s);
int store_tx_end(Store *s, bool commit);

/* A write done later, still before anything else in this process uses the inventory: run(s,
 * userdata) is called by the next outermost store_lock(), in order with other deferred writes, on
 * whichever thread takes the lock; run owns userdata. For bookkeeping that need not delay a reply:
 * the HTTP layer calls store_flush() once the reply is sent, so the write happens then. -ENOMEM:
 * nothing was queued (do the write now). */
int store_defer(Store *s, void (*run)(Store *s, void *userdata), void *userdata);
/* Runs the deferred writes now, if any, and the checkpoint of the write-ahead log once it has
 * passed 1000 pages. A commit checkpoints by itself only past 4000 pages, so a process that calls
 * this after its replies keeps checkpoints off the path to them. */
void store_flush(Store *s);
/* Checkpoints of the write-ahead log completed. */
uint64_t store_checkpoints(Store *s);

/* Opens (creating if needed) and migrates to the newest schema. -EPROTONOSUPPORT when the file
 * was written by a newer kvmfleet (see store_file_version()). */
int store_open(const char *path, Store **ret);
/* Same with an explicit migration list (tests). */
int store_open_with(const char *path, const SchemaMigration *migrations, unsigned n, Store **ret);
Store *store_free(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_free);

/* PRAGMA user_version of a database file without migrating it. */
int store_file_version(const char *path, unsigned *ret);
unsigned store_latest_version(void);
int store_version(Store *s, unsigned *ret);
const char *store_path(Store *s);

/* Health: can a write transaction be taken (and rolled back) right now? */
int store_check_writable(Store *s);

int store_host_touch(Store *s, const char *hostname, const char *machine_id, const char *agent_version);

/* Appends an audit event. detail may be NULL; the store does not take its reference. */
int store_event_append(Store *s, const char *actor, const char *object, const char *action, const char *result,
                       json_object *detail, int64_t *ret_id);
/* Events with id > after, oldest first, at most limit; *ret is a JSON array of event objects. */
int store_events_list(Store *s, int64_t after, unsigned limit, const char *object, json_object **ret);

/* kvmfleet-load reports. */
int store_kvm_setup_ingest(Store *s, const char *report_json, int64_t *ret_id);
/* Newest report: {"id","ingested_at","report":{...}}; -ENOENT when none. */
int store_kvm_setup_latest(Store *s, json_object **ret);

/* Desired KVM module parameters: replaces the whole set with params, an array of
 * {"module","name","value"} (all strings), in one transaction. */
int store_kvm_params_replace(Store *s, json_object *params, const char *actor);
/* [{"module","name","value","set_at","actor"}] */
int store_kvm_params_get(Store *s, json_object **ret);

/* VMs. A row is the inventory's view of one VM; state transitions are checked by the caller,
 * the store only refuses duplicate names (-EEXIST) and unknown ids (-ENOENT). */
typedef struct VmRecord {
        char uuid[37];
        char *name;
        char *state;
        char *spec;        /* canonical spec JSON */
        int64_t vmm_pid;   /* 0 when no VMM */
        uint64_t vmm_start_time;
        char *vmm_socket;
        char *exit_reason;
        char created_at[32];
        char updated_at[32];
} VmRecord;

VmRecord *vm_record_free(VmRecord *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(VmRecord *, vm_record_free);

int store_vm_insert(Store *s, const char *uuid, const char *name, const char *state, const char *spec_json);
/* id is a uuid or a name. */
int store_vm_get(Store *s, const char *id, VmRecord **ret);
/* Sets state (and the VMM fields when vmm_pid >= 0; -1 leaves them). expect_state, when not
 * NULL, makes the update conditional: -ESTALE if the row is no longer in that state. */
int store_vm_set_state(Store *s, const char *uuid, const char *expect_state, const char *state, int64_t vmm_pid,
                       uint64_t vmm_start_time, const char *vmm_socket, const char *exit_reason);
int store_vm_delete(Store *s, const char *uuid);
/* Replaces the VM's canonical spec JSON (a runtime change such as PATCH /v1/vms/{id}/apicv). */
int store_vm_set_spec(Store *s, const char *uuid, const char *spec_json);
/* Rows ordered by name, optionally filtered by state and/or name; a JSON array of VM objects. */
int store_vm_list(Store *s, const char *state, const char *name, unsigned offset, unsigned limit, json_object **ret);
int store_vm_to_json(const VmRecord *r, json_object **ret);
/* Changes whenever a VM row is inserted, updated or deleted: lets readers cache what they built. */
uint64_t store_vm_generation(Store *s);
/* Rows matching the same filters as store_vm_list(), for pagination. */
int store_vm_count(Store *s, const char *state, const char *name, unsigned *ret);
/* Every VM row (for reconciliation at start); free with vm_record_array_free(). */
int store_vm_records(Store *s, VmRecord ***ret, size_t *ret_n);
void vm_record_array_free(VmRecord **a, size_t n);
