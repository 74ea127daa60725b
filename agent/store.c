/* SPDX-License-Identifier: MIT */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "str-util.h"
#include "time-util.h"

#define STMT_CACHE_SIZE 32
#define VM_CACHE_SIZE 8
/* WAL pages after which the next store_flush() copies the log into the database (SQLite's own
 * default for its automatic checkpoint), and pages after which the commit that crosses them does it
 * itself, for a process whose writes are never followed by a flush. */
#define CHECKPOINT_PAGES 1000
#define CHECKPOINT_PAGES_MAX 4000

typedef struct StoreJob {
        struct StoreJob *next;
        void (*run)(Store *s, void *userdata);
        void *userdata;
} StoreJob;

struct Store {
        sqlite3 *db;
        char *path;
        pthread_mutex_t lock; /* recursive: store_tx_begin() holds it across the calls it groups */
        unsigned depth;       /* how many times the holder holds it */
        StoreJob *jobs, **jobs_tail; /* deferred writes, in order (store_defer()) */
        /* Checkpoints run on the writing connection, after a reply (store_flush()), not inside the
         * commit that crosses CHECKPOINT_PAGES as SQLite's automatic checkpoint would. On this
         * connection, with the lock held, no write lands between the checkpoint and the next
         * transaction, which can then start the log over from its beginning. */
        bool checkpoint_due;  /* atomic */
        uint64_t checkpoints; /* completed (atomic) */
        uint64_t vm_generation; /* bumped by every write to the vms table (atomic) */
        /* Statements of the hot paths, prepared once (SQLITE_PREPARE_PERSISTENT), keyed by the address
         * of their SQL text, which is a string literal. */
        struct {
                const char *sql;
                sqlite3_stmt *st;
        } stmts[STMT_CACHE_SIZE];
        /* Copies of the VM rows read last, each valid while vm_generation is what it was when it
         * was read: every request on a VM reads its row, usually more than once, and the rows change
         * rarely. The agent owns the inventory while it runs (other processes only read it), so
         * this process's writes are the only ones that can make a copy stale. */
        struct {
                VmRecord *record;
                uint64_t generation;
        } vm_cache[VM_CACHE_SIZE];
        unsigned vm_cache_next;
};

/* SQLite result codes to -errno, keeping the distinctions callers act on. */
static int sqlite_to_errno(int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK: case SQLITE_DONE: case SQLITE_ROW: return 0;
        case SQLITE_BUSY: case SQLITE_LOCKED: return -EBUSY;
        case SQLITE_NOMEM: return -ENOMEM;
        case SQLITE_READONLY: case SQLITE_PERM: case SQLITE_AUTH: return -EACCES;
        case SQLITE_FULL: return -ENOSPC;
        case SQLITE_CANTOPEN: return -ENOENT;
        case SQLITE_CONSTRAINT: return -EEXIST;
        case SQLITE_NOTADB: case SQLITE_CORRUPT: return -EBADMSG;
        case SQLITE_IOERR: return -EIO;
        default: return -EIO;
        }
}

sqlite3_stmt *store_stmt(Store *s, const char *sql) {
        size_t i;
        for (i = 0; i < STMT_CACHE_SIZE && s->stmts[i].sql; i++)
                if (s->stmts[i].sql == sql)
                        return s->stmts[i].st;
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
                return NULL;
        if (i < STMT_CACHE_SIZE) {
                s->stmts[i].sql = sql;
                s->stmts[i].st = st;
                return st;
        }
        /* A full cache is a programming error (more hot statements than slots): say so once and
         * keep working with a statement that store_stmt_done() finalizes. */
        log_warning("Inventory statement cache is full (%d); raise STMT_CACHE_SIZE", STMT_CACHE_SIZE);
        return st;
}

void store_stmt_done(Store *s, sqlite3_stmt *st) {
        if (!st)
                return;
        for (size_t i = 0; i < STMT_CACHE_SIZE && s->stmts[i].sql; i++)
                if (s->stmts[i].st == st) {
                        sqlite3_reset(st);
                        sqlite3_clear_bindings(st);
                        return;
                }
        sqlite3_finalize(st);
}

int store_tx_begin(Store *s) {
        store_lock(s);
        int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                store_unlock(s);
                return sqlite_to_errno(rc);
        }
        return 0;
}

static void vm_changed(Store *s);

int store_tx_end(Store *s, bool commit) {
        int rc = sqlite3_exec(s->db, commit ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
        if (rc != SQLITE_OK && commit)
                (void) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        if (rc != SQLITE_OK || !commit)
                vm_changed(s); /* VM rows read inside the transaction may be gone with it */
        store_unlock(s);
        return sqlite_to_errno(rc);
}

uint64_t store_vm_generation(Store *s) {
        return __atomic_load_n(&s->vm_generation, __ATOMIC_SEQ_CST);
}

static void run_deferred(Store *s) {
        StoreJob *j;
        while ((j = s->jobs)) {
                __atomic_store_n(&s->jobs, j->next, __ATOMIC_RELEASE);
                if (!s->jobs)
                        s->jobs_tail = &s->jobs;
                j->run(s, j->userdata);
                free(j);
        }
}

struct sqlite3 *store_lock(Store *s) {
        pthread_mutex_lock(&s->lock);
        /* The outermost holder first writes what was deferred: nobody in this process reads or
         * writes the inventory past a deferred write. */
        if (s->depth++ == 0 && s->jobs)
                run_deferred(s);
        return s->db;
}

void store_unlock(Store *s) {
        s->depth--;
        pthread_mutex_unlock(&s->lock);
}

int store_defer(Store *s, void (*run)(Store *s, void *userdata), void *userdata) {
        StoreJob *j = malloc(sizeof *j);
        if (!j)
                return -ENOMEM;
        *j = (StoreJob){ .run = run, .userdata = userdata };
        pthread_mutex_lock(&s->lock); /* queueing is not a use: what is queued already stays queued */
        __atomic_store_n(s->jobs_tail, j, __ATOMIC_RELEASE);
        s->jobs_tail = &j->next;
        pthread_mutex_unlock(&s->lock);
        return 0;
}

/* PASSIVE: copies what no reader of another connection still needs and waits for nobody. Called
 * with the lock held. */
static void checkpoint(Store *s) {
        __atomic_store_n(&s->checkpoint_due, false, __ATOMIC_RELEASE);
        int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if (rc == SQLITE_OK)
                __atomic_add_fetch(&s->checkpoints, 1, __ATOMIC_RELEASE);
        else if (rc != SQLITE_BUSY)
                log_warning("Inventory checkpoint failed: %s", sqlite3_errstr(rc));
}

/* Called by SQLite after each commit on s->db, with the lock held. */
static int wal_hook(void *userdata, sqlite3 *db, const char *name, int pages) {
        Store *s = userdata;
        if (pages >= CHECKPOINT_PAGES_MAX)
                checkpoint(s);
        else if (pages >= CHECKPOINT_PAGES)
                __atomic_store_n(&s->checkpoint_due, true, __ATOMIC_RELEASE);
        return SQLITE_OK;
}

void store_flush(Store *s) {
        if (__atomic_load_n(&s->jobs, __ATOMIC_ACQUIRE) || __atomic_load_n(&s->checkpoint_due, __ATOMIC_ACQUIRE)) {
                store_lock(s);
                if (__atomic_load_n(&s->checkpoint_due, __ATOMIC_ACQUIRE))
                        checkpoint(s);
                store_unlock(s);
        }
}

static void vm_changed(Store *s) {
        __atomic_add_fetch(&s->vm_generation, 1, __ATOMIC_SEQ_CST);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt *, sqlite3_finalize);
#define _cleanup_stmt_ _cleanup_(sqlite3_finalizep)


static int exec_sql(sqlite3 *db, const char *sql) {
        return sqlite_to_errno(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

static int get_user_version(sqlite3 *db, unsigned *ret) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_to_errno(rc);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return sqlite_to_errno(rc);
        *ret = (unsigned) sqlite3_column_int(st, 0);
        return 0;
}

unsigned store_latest_version(void) {
        return schema_migrations_count ? schema_migrations[schema_migrations_count - 1].version : 0;
}

int store_file_version(const char *path, unsigned *ret) {
        sqlite3 *db = NULL;
        int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
        int r = rc == SQLITE_OK ? get_user_version(db, ret) : sqlite_to_errno(rc);
        sqlite3_close(db);
        return r;
}

/* Each migration runs in its own transaction together with the user_version bump, so a crash
 * leaves the file at the previous version or the next, never between. */
static int migrate(sqlite3 *db, const SchemaMigration *m, unsigned n) {
        unsigned current, latest = n ? m[n - 1].version : 0;
        int r = get_user_version(db, &current);
        if (r < 0)
                return r;
        if (current > latest)
                return -EPROTONOSUPPORT;
        for (unsigned i = 0; i < n; i++) {
                char bump[64];
                if (m[i].version <= current)
                        continue;
                r = exec_sql(db, "BEGIN IMMEDIATE");
                if (r < 0)
                        return r;
                snprintf(bump, sizeof bump, "PRAGMA user_version = %u", m[i].version);
                r = exec_sql(db, m[i].sql);
                if (r >= 0)
                        r = exec_sql(db, bump);
                if (r < 0) {
                        exec_sql(db, "ROLLBACK");
                        return r;
                }
                r = exec_sql(db, "COMMIT");
                if (r < 0) {
                        exec_sql(db, "ROLLBACK");
                        return r;
                }
        }
        return 0;
}

uint64_t store_checkpoints(Store *s) {
        return __atomic_load_n(&s->checkpoints, __ATOMIC_ACQUIRE);
}

int store_open_with(const char *path, const SchemaMigration *migrations, unsigned n, Store **ret) {
        _cleanup_(store_freep) Store *s = calloc(1, sizeof *s);
        int rc, r;

        if (!s)
                return -ENOMEM;
        pthread_mutexattr_t attr;
        pthread_mutexattr_init(&attr);
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&s->lock, &attr);
        pthread_mutexattr_destroy(&attr);
        s->jobs_tail = &s->jobs;
        s->path = strdup(path);
        if (!s->path)
                return -ENOMEM;
        rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
        if (rc != SQLITE_OK)
                return sqlite_to_errno(rc);
        sqlite3_extended_result_codes(s->db, 1);
        sqlite3_busy_timeout(s->db, 5000);
        r = exec_sql(s->db, "PRAGMA journal_mode = WAL");
        if (r < 0)
                return r;
        r = exec_sql(s->db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;");
        if (r < 0)
                return r;
        r = migrate(s->db, migrations, n);
        if (r < 0)
                return r;
        sqlite3_wal_hook(s->db, wal_hook, s); /* replaces the automatic checkpoint */
        *ret = TAKE_PTR(s);
        return 0;
}

int store_open(const char *path, Store **ret) {
        return store_open_with(path, schema_migrations, schema_migrations_count, ret);
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;
        if (s->db)
                store_flush(s);
        for (size_t i = 0; i < STMT_CACHE_SIZE; i++)
                sqlite3_finalize(s->stmts[i].st);
        for (size_t i = 0; i < VM_CACHE_SIZE; i++)
                vm_record_free(s->vm_cache[i].record);
        if (s->db)
                sqlite3_close_v2(s->db);
        pthread_mutex_destroy(&s->lock);
        free(s->path);
        free(s);
        return NULL;
}

const char *store_path(Store *s) {
        return s->path;
}

int store_version(Store *s, unsigned *ret) {
        store_lock(s);
        int r = get_user_version(s->db, ret);
        store_unlock(s);
        return r;
}

int store_check_writable(Store *s) {
        store_lock(s);
        int r = exec_sql(s->db, "BEGIN IMMEDIATE");
        if (r >= 0) {
                /* A real write, rolled back: catches read-only files and full disks in the WAL. */
                r = exec_sql(s->db, "INSERT INTO events(time, actor, object, action, result) "
                                    "VALUES ('', 'health', 'inventory', 'probe', 'ok')");
                exec_sql(s->db, "ROLLBACK");
        }
        store_unlock(s);
        return r;
}

static void now_text(char buf[32]) {
        format_rfc3339(buf, 32, now_realtime_usec());
}

int store_host_touch(Store *s, const char *hostname, const char *machine_id, const char *agent_version) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        char now[32];
        int rc;

        now_text(now);
        store_lock(s);
        rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO host(id, hostname, machine_id, first_seen, last_start, agent_version) "
                                "VALUES (1, ?1, ?2, ?3, ?3, ?4) ON CONFLICT(id) DO UPDATE SET hostname = ?1, "
                                "machine_id = ?2, last_start = ?3, agent_version = ?4",
                                -1, &st, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, hostname, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 2, machine_id, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 3, now, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 4, agent_version, -1, SQLITE_TRANSIENT);
                rc = sqlite3_step(st);
        }
        store_unlock(s);
        return sqlite_to_errno(rc);
}

int store_event_append(Store *s, const char *actor, const char *object, const char *action, const char *result,
                       json_object *detail, int64_t *ret_id) {
        static const char sql[] = "INSERT INTO events(time, actor, object, action, result, detail) "
                                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
        sqlite3_stmt *st;
        char now[32];
        int rc = SQLITE_NOMEM;

        now_text(now);
        store_lock(s);
        st = store_stmt(s, sql);
        if (st) {
                sqlite3_bind_text(st, 1, now, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 2, actor, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 3, object, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 4, action, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 5, result, -1, SQLITE_TRANSIENT);
                if (detail)
                        sqlite3_bind_text(st, 6, json_to_string(detail), -1, SQLITE_TRANSIENT);
                else
                        sqlite3_bind_null(st, 6);
                rc = sqlite3_step(st);
                if (rc == SQLITE_DONE && ret_id)
                        *ret_id = sqlite3_last_insert_rowid(s->db);
        } else
                rc = sqlite3_errcode(s->db);
        store_stmt_done(s, st);
        store_unlock(s);
        return sqlite_to_errno(rc);
}

static json_object *column_json(sqlite3_stmt *st, int col) {
        if (sqlite3_column_type(st, col) == SQLITE_NULL)
                return NULL;
        return json_tokener_parse((const char *) sqlite3_column_text(st, col));
}

int store_events_list(Store *s, int64_t after, unsigned limit, const char *object, json_object **ret) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        _cleanup_json_ json_object *arr = json_object_new_array();
        int rc, r = 0;

        if (!arr)
                return -ENOMEM;
        store_lock(s);
        rc = sqlite3_prepare_v2(s->db,
                                "SELECT id, time, actor, object, action, result, detail FROM events "
                                "WHERE id > ?1 AND (?3 IS NULL OR object = ?3) ORDER BY id LIMIT ?2",
                                -1, &st, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_int64(st, 1, after);
                sqlite3_bind_int64(st, 2, limit);
                if (object)
                        sqlite3_bind_text(st, 3, object, -1, SQLITE_TRANSIENT);
                else
                        sqlite3_bind_null(st, 3);
                while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                        json_object *e = json_object_new_object();
                        if (!e || json_object_array_add(arr, e) < 0) {
                                json_object_put(e);
                                r = -ENOMEM;
                                break;
                        }
                        static const char *const cols[] = { NULL, "time", "actor", "object", "action", "result" };
                        r = json_add_int(e, "id", sqlite3_column_int64(st, 0));
                        for (int c = 1; r >= 0 && c <= 5; c++)
                                r = json_add_string(e, cols[c], (const char *) sqlite3_column_text(st, c));
                        if (r >= 0)
                                r = json_add(e, "detail", column_json(st, 6));
                        if (r < 0)
                                break;
                }
        }
        store_unlock(s);
        if (r < 0)
                return r;
        if (rc != SQLITE_DONE)
                return sqlite_to_errno(rc);
        *ret = TAKE_PTR(arr);
        return 0;
}

static int json_bool_field(json_object *o, const char *key) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
                return -1;
        return json_object_get_boolean(v);
}

int store_kvm_setup_ingest(Store *s, const char *report_json, int64_t *ret_id) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        _cleanup_json_ json_object *report = NULL;
        json_object *cons = NULL, *gen = NULL;
        char now[32];
        int rc;

        if (json_parse(report_json, strlen(report_json), 64, &report, NULL) < 0 ||
            !json_object_is_type(report, json_type_object))
                return -EBADMSG;
        json_object_object_get_ex(report, "consistency", &cons);
        json_object_object_get_ex(report, "generated_at", &gen);
        int ok = json_bool_field(report, "ok");
        int consistent = cons ? json_bool_field(cons, "consistent") : -1;
        int in_effect = json_bool_field(report, "params_in_effect");

        now_text(now);
        store_lock(s);
        rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO kvm_setup(ingested_at, generated_at, ok, consistent, params_in_effect, report) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                                -1, &st, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, now, -1, SQLITE_TRANSIENT);
                if (json_object_is_type(gen, json_type_string))
                        sqlite3_bind_text(st, 2, json_object_get_string(gen), -1, SQLITE_TRANSIENT);
                sqlite3_bind_int(st, 3, ok == 1);
                if (consistent >= 0)
                        sqlite3_bind_int(st, 4, consistent);
                if (in_effect >= 0)
                        sqlite3_bind_int(st, 5, in_effect);
                sqlite3_bind_text(st, 6, json_to_string(report), -1, SQLITE_TRANSIENT);
                rc = sqlite3_step(st);
                if (rc == SQLITE_DONE && ret_id)
                        *ret_id = sqlite3_last_insert_rowid(s->db);
        }
        store_unlock(s);
        return sqlite_to_errno(rc);
}

int store_kvm_setup_latest(Store *s, json_object **ret) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        _cleanup_json_ json_object *o = NULL;
        int rc, r = 0;

        store_lock(s);
        rc = sqlite3_prepare_v2(s->db, "SELECT id, ingested_at, report FROM kvm_setup ORDER BY id DESC LIMIT 1", -1,
                                &st, NULL);
        if (rc == SQLITE_OK) {
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW) {
                        o = json_object_new_object();
                        if (!o)
                                r = -ENOMEM;
                        if (r >= 0)
                                r = json_add_int(o, "id", sqlite3_column_int64(st, 0));
                        if (r >= 0)
                                r = json_add_string(o, "ingested_at", (const char *) sqlite3_column_text(st, 1));
                        if (r >= 0)
                                r = json_add(o, "report", column_json(st, 2));
                }
        }
        store_unlock(s);
        if (r < 0)
                return r;
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return sqlite_to_errno(rc);
        *ret = TAKE_PTR(o);
        return 0;
}

VmRecord *vm_record_free(VmRecord *r) {
        if (!r)
                return NULL;
        free(r->name);
        free(r->state);
        free(r->spec);
        free(r->vmm_socket);
        free(r->exit_reason);
        free(r);
        return NULL;
}

static char *column_strdup(sqlite3_stmt *st, int col) {
        const unsigned char *t = sqlite3_column_text(st, col);
        return t ? strdup((const char *) t) : NULL;
}

#define VM_COLUMNS "uuid, name, state, spec, vmm_pid, vmm_start_time, vmm_socket, exit_reason, created_at, updated_at"

static int vm_from_row(sqlite3_stmt *st, VmRecord **ret) {
        _cleanup_(vm_record_freep) VmRecord *r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        snprintf(r->uuid, sizeof r->uuid, "%s", (const char *) sqlite3_column_text(st, 0));
        r->name = column_strdup(st, 1);
        r->state = column_strdup(st, 2);
        r->spec = column_strdup(st, 3);
        r->vmm_pid = sqlite3_column_int64(st, 4);
        r->vmm_start_time = (uint64_t) sqlite3_column_int64(st, 5);
        r->vmm_socket = column_strdup(st, 6);
        r->exit_reason = column_strdup(st, 7);
        snprintf(r->created_at, sizeof r->created_at, "%s", (const char *) sqlite3_column_text(st, 8));
        snprintf(r->updated_at, sizeof r->updated_at, "%s", (const char *) sqlite3_column_text(st, 9));
        if (!r->name || !r->state || !r->spec)
                return -ENOMEM;
        *ret = TAKE_PTR(r);
        return 0;
}

int store_vm_insert(Store *s, const char *uuid, const char *name, const char *state, const char *spec_json) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        char now[32];
        int rc;

        now_text(now);
        store_lock(s);
        rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO vms(uuid, name, state, spec, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                                -1, &st, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, uuid, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 3, state, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 4, spec_json, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 5, now, -1, SQLITE_TRANSIENT);
                rc = sqlite3_step(st);
        }
        vm_changed(s);
        store_unlock(s);
        return sqlite_to_errno(rc);
}

static int vm_record_dup(const VmRecord *r, VmRecord **ret) {
        _cleanup_(vm_record_freep) VmRecord *d = malloc(sizeof *d);
        if (!d)
                return -ENOMEM;
        *d = *r;
        d->name = strdup(r->name);
        d->state = strdup(r->state);
        d->spec = strdup(r->spec);
        d->vmm_socket = r->vmm_socket ? strdup(r->vmm_socket) : NULL;
        d->exit_reason = r->exit_reason ? strdup(r->exit_reason) : NULL;
        if (!d->name || !d->state || !d->spec || (r->vmm_socket && !d->vmm_socket) || (r->exit_reason && !d->exit_reason))
                return -ENOMEM;
        *ret = TAKE_PTR(d);
        return 0;
}

/* A copy of the cached row that id names (uuid or name, as the query matches); -ENOENT when none
 * is cached and current. Called with the lock held. */
static int vm_cache_get(Store *s, const char *id, VmRecord **ret) {
        for (size_t i = 0; i < VM_CACHE_SIZE; i++) {
                const VmRecord *r = s->vm_cache[i].record;
                if (r && s->vm_cache[i].generation == s->vm_generation && (streq(r->uuid, id) || streq(r->name, id)))
                        return vm_record_dup(r, ret);
        }
        return -ENOENT;
}

/* Keeps a copy of r (a row just read) for the current generation. Called with the lock held. */
static void vm_cache_put(Store *s, const VmRecord *r) {
        VmRecord *copy;
        size_t slot = s->vm_cache_next;
        for (size_t i = 0; i < VM_CACHE_SIZE; i++)
                if (s->vm_cache[i].record && (s->vm_cache[i].generation != s->vm_generation || streq(s->vm_cache[i].record->uuid, r->uuid))) {
                        slot = i; /* a stale copy, or this VM's older one */
                        break;
                }
        if (vm_record_dup(r, &copy) < 0)
                return;
        if (slot == s->vm_cache_next)
                s->vm_cache_next = (s->vm_cache_next + 1) % VM_CACHE_SIZE;
        vm_record_free(s->vm_cache[slot].record);
        s->vm_cache[slot].record = copy;
        s->vm_cache[slot].generation = s->vm_generation;
}

int store_vm_get(Store *s, const char *id, VmRecord **ret) {
        static const char sql[] = "SELECT " VM_COLUMNS " FROM vms WHERE uuid = ?1 OR name = ?1";
        sqlite3_stmt *st;
        int rc = SQLITE_NOMEM, r = 0;

        store_lock(s);
        r = vm_cache_get(s, id, ret);
        if (r != -ENOENT) {
                store_unlock(s);
                return r;
        }
        r = 0;
        st = store_stmt(s, sql);
        if (st) {
                sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW) {
                        r = vm_from_row(st, ret);
                        if (r >= 0)
                                vm_cache_put(s, *ret);
                }
        } else
                rc = sqlite3_errcode(s->db);
        store_stmt_done(s, st);
        store_unlock(s);
        if (r < 0)
                return r;
        if (rc == SQLITE_DONE)
                return -ENOENT;
        return rc == SQLITE_ROW ? 0 : sqlite_to_errno(rc);
}

int store_vm_set_state(Store *s, const char *uuid, const char *expect_state, const char *state, int64_t vmm_pid,
                       uint64_t vmm_start_time, const char *vmm_socket, const char *exit_reason) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        char now[32];
        int rc, changed = 0;

        now_text(now);
        store_lock(s);
        rc = sqlite3_prepare_v2(s->db,
                                "UPDATE vms SET state = ?2, updated_at = ?3, exit_reason = ?8, "
                                "vmm_pid = CASE WHEN ?4 >= 0 THEN nullif(?4, 0) ELSE vmm_pid END, "
                                "vmm_start_time = CASE WHEN ?4 >= 0 THEN nullif(?5, 0) ELSE vmm_start_time END, "
                                "vmm_socket = CASE WHEN ?4 >= 0 THEN ?6 ELSE vmm_socket END "
                                "WHERE uuid = ?1 AND (?7 IS NULL OR state = ?7)",
                                -1, &st, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, uuid, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 2, state, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 3, now, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(st, 4, vmm_pid);
                sqlite3_bind_int64(st, 5, (int64_t) vmm_start_time);
                if (vmm_socket)
                        sqlite3_bind_text(st, 6, vmm_socket, -1, SQLITE_TRANSIENT);
                if (expect_state)
                        sqlite3_bind_text(st, 7, expect_state, -1, SQLITE_TRANSIENT);
                if (exit_reason)
                        sqlite3_bind_text(st, 8, exit_reason, -1, SQLITE_TRANSIENT);
                rc = sqlite3_step(st);
                changed = sqlite3_changes(s->db);
        }
        if (rc == SQLITE_DONE && changed == 0) {
                /* tell "no such VM" from "not in the expected state" */
                _cleanup_stmt_ sqlite3_stmt *q = NULL;
                rc = sqlite3_prepare_v2(s->db, "SELECT 1 FROM vms WHERE uuid = ?1", -1, &q, NULL);
                if (rc == SQLITE_OK) {
                        sqlite3_bind_text(q, 1, uuid, -1, SQLITE_TRANSIENT);
                        rc = sqlite3_step(q) == SQLITE_ROW ? -ESTALE : -ENOENT;
                }
        }
        vm_changed(s);
        store_unlock(s);
        if (rc < 0)
                return rc;
        return sqlite_to_errno(rc);
}

int store_vm_set_spec(Store *s, const char *uuid, const char *spec_json) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        char now[32];
        int rc, changed = 0;

        now_text(now);
        store_lock(s);
        rc = sqlite3_prepare_v2(s->db, "UPDATE vms SET spec = ?2, updated_at = ?3 WHERE uuid = ?1", -1, &st, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, uuid, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 2, spec_json, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 3, now, -1, SQLITE_TRANSIENT);
                rc = sqlite3_step(st);
                changed = sqlite3_changes(s->db);
        }
        vm_changed(s);
        store_unlock(s);
        if (rc == SQLITE_DONE && changed == 0)
                return -ENOENT;
        return sqlite_to_errno(rc);
}

int store_vm_delete(Store *s, const char *uuid) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int rc, changed = 0;

        store_lock(s);
        rc = sqlite3_prepare_v2(s->db, "DELETE FROM vms WHERE uuid = ?1", -1, &st, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, uuid, -1, SQLITE_TRANSIENT);
                rc = sqlite3_step(st);
                changed = sqlite3_changes(s->db);
        }
        vm_changed(s);
        store_unlock(s);
        if (rc == SQLITE_DONE && changed == 0)
                return -ENOENT;
        return sqlite_to_errno(rc);
}

int store_vm_to_json(const VmRecord *r, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *spec = NULL, *vmm;

        if (!o)
                return -ENOMEM;
        if (json_parse(r->spec, strlen(r->spec), 64, &spec, NULL) < 0)
                return -EBADMSG;
        json_add_string(o, "uuid", r->uuid);
        json_add_string(o, "name", r->name);
        json_add_string(o, "state", r->state);
        json_add(o, "spec", spec);
        vmm = json_object_new_object();
        if (!vmm || json_add(o, "vmm", vmm) < 0)
                return -ENOMEM;
        if (r->vmm_pid > 0) {
                json_add_int(vmm, "pid", r->vmm_pid);
                json_add_uint(vmm, "start_time", r->vmm_start_time);
                json_add_string(vmm, "control_socket", r->vmm_socket);
        } else
                json_add(vmm, "pid", NULL);
        json_add_string(o, "exit_reason", r->exit_reason);
        json_add_string(o, "created_at", r->created_at);
        json_add_string(o, "updated_at", r->updated_at);
        *ret = TAKE_PTR(o);
        return 0;
}

int store_vm_list(Store *s, const char *state, const char *name, unsigned offset, unsigned limit, json_object **ret) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        _cleanup_json_ json_object *arr = json_object_new_array();
        int rc, r = 0;

        if (!arr)
                return -ENOMEM;
        store_lock(s);
        rc = sqlite3_prepare_v2(s->db,
                                "SELECT " VM_COLUMNS " FROM vms WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR name = ?2) "
                                "ORDER BY name LIMIT ?3 OFFSET ?4",
                                -1, &st, NULL);
        if (rc == SQLITE_OK) {
                if (state)
                        sqlite3_bind_text(st, 1, state, -1, SQLITE_TRANSIENT);
                if (name)
                        sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(st, 3, limit);
                sqlite3_bind_int64(st, 4, offset);
                while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                        _cleanup_(vm_record_freep) VmRecord *vr = NULL;
                        json_object *o = NULL;
                        r = vm_from_row(st, &vr);
                        if (r >= 0)
                                r = store_vm_to_json(vr, &o);
                        if (r >= 0 && json_object_array_add(arr, o) < 0) {
                                json_object_put(o);
                                r = -ENOMEM;
                        }
                        if (r < 0)
                                break;
                }
        }
        store_unlock(s);
        if (r < 0)
                return r;
        if (rc != SQLITE_DONE)
                return sqlite_to_errno(rc);
        *ret = TAKE_PTR(arr);
        return 0;
}

int store_vm_count(Store *s, const char *state, const char *name, unsigned *ret) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int rc;
        int64_t n = 0;

        store_lock(s);
        rc = sqlite3_prepare_v2(s->db, "SELECT count(*) FROM vms WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR name = ?2)",
                                -1, &st, NULL);
        if (rc == SQLITE_OK) {
                if (state)
                        sqlite3_bind_text(st, 1, state, -1, SQLITE_TRANSIENT);
                if (name)
                        sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW) {
                        n = sqlite3_column_int64(st, 0);
                        rc = SQLITE_DONE;
                }
        }
        store_unlock(s);
        if (rc != SQLITE_DONE)
                return sqlite_to_errno(rc);
        *ret = (unsigned) n;
        return 0;
}

void vm_record_array_free(VmRecord **a, size_t n) {
        for (size_t i = 0; i < n; i++)
                vm_record_free(a[i]);
        free(a);
}

int store_vm_records(Store *s, VmRecord ***ret, size_t *ret_n) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        VmRecord **a = NULL;
        size_t n = 0;
        int rc, r = 0;

        store_lock(s);
        rc = sqlite3_prepare_v2(s->db, "SELECT " VM_COLUMNS " FROM vms ORDER BY created_at, uuid", -1, &st, NULL);
        if (rc == SQLITE_OK)
                while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                        VmRecord **na = realloc(a, (n + 1) * sizeof *a);
                        if (!na) {
                                r = -ENOMEM;
                                break;
                        }
                        a = na;
                        r = vm_from_row(st, &a[n]);
                        if (r < 0)
                                break;
                        n++;
                }
        store_unlock(s);
        if (r >= 0 && rc != SQLITE_DONE)
                r = sqlite_to_errno(rc);
        if (r < 0) {
                vm_record_array_free(a, n);
                return r;
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

int store_kvm_params_replace(Store *s, json_object *params, const char *actor) {
        char now[32];
        int r;

        now_text(now);
        store_lock(s);
        r = exec_sql(s->db, "BEGIN IMMEDIATE");
        if (r >= 0)
                r = exec_sql(s->db, "DELETE FROM kvm_params_desired");
        for (size_t i = 0; r >= 0 && i < json_object_array_length(params); i++) {
                json_object *p = json_object_array_get_idx(params, i), *mod, *name, *value;
                _cleanup_stmt_ sqlite3_stmt *st = NULL;
                if (!json_object_object_get_ex(p, "module", &mod) || !json_object_object_get_ex(p, "name", &name) ||
                    !json_object_object_get_ex(p, "value", &value)) {
                        r = -EINVAL;
                        break;
                }
                int rc = sqlite3_prepare_v2(s->db,
                                            "INSERT INTO kvm_params_desired(module, name, value, set_at, actor) VALUES (?1, ?2, ?3, ?4, ?5)",
                                            -1, &st, NULL);
                if (rc == SQLITE_OK) {
                        sqlite3_bind_text(st, 1, json_object_get_string(mod), -1, SQLITE_TRANSIENT);
                        sqlite3_bind_text(st, 2, json_object_get_string(name), -1, SQLITE_TRANSIENT);
                        sqlite3_bind_text(st, 3, json_object_get_string(value), -1, SQLITE_TRANSIENT);
                        sqlite3_bind_text(st, 4, now, -1, SQLITE_TRANSIENT);
                        sqlite3_bind_text(st, 5, actor, -1, SQLITE_TRANSIENT);
                        rc = sqlite3_step(st);
                }
                r = sqlite_to_errno(rc);
        }
        if (r >= 0)
                r = exec_sql(s->db, "COMMIT");
        else
                (void) exec_sql(s->db, "ROLLBACK");
        store_unlock(s);
        return r;
}

int store_kvm_params_get(Store *s, json_object **ret) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        _cleanup_json_ json_object *arr = json_object_new_array();
        int rc;

        if (!arr)
                return -ENOMEM;
        store_lock(s);
        rc = sqlite3_prepare_v2(s->db, "SELECT module, name, value, set_at, actor FROM kvm_params_desired ORDER BY module, name",
                                -1, &st, NULL);
        if (rc == SQLITE_OK)
                while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                        json_object *o = json_object_new_object();
                        json_add_string(o, "module", (const char *) sqlite3_column_text(st, 0));
                        json_add_string(o, "name", (const char *) sqlite3_column_text(st, 1));
                        json_add_string(o, "value", (const char *) sqlite3_column_text(st, 2));
                        json_add_string(o, "set_at", (const char *) sqlite3_column_text(st, 3));
                        json_add_string(o, "actor", (const char *) sqlite3_column_text(st, 4));
                        json_object_array_add(arr, o);
                }
        store_unlock(s);
        if (rc != SQLITE_DONE)
                return sqlite_to_errno(rc);
        *ret = TAKE_PTR(arr);
        return 0;
}
