/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "json-util.h"
#include "agent/store.h"
#include "test.h"

static void db_path(char *buf, size_t n, const char *name) {
        snprintf(buf, n, "%s/%s", test_tmpdir(), name);
        remove(buf);
}

static int table_exists(const char *path, const char *table) {
        sqlite3 *db;
        sqlite3_stmt *st;
        int found = 0;
        if (sqlite3_open(path, &db) != SQLITE_OK)
                return -1;
        sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?1", -1, &st, NULL);
        sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
                found = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return found;
}

TEST(fresh_database_gets_every_table) {
        char path[512];
        Store *s = NULL;
        unsigned v = 0;
        db_path(path, sizeof path, "fresh.db");
        ASSERT_EQ_INT(store_open(path, &s), 0);
        CHECK_EQ_INT(store_version(s, &v), 0);
        CHECK_EQ_INT(v, store_latest_version());
        CHECK(v >= 1);
        store_free(s);
        static const char *const tables[] = { "host", "kvm_setup", "vms", "memslots", "events" };
        for (size_t i = 0; i < 5; i++)
                if (table_exists(path, tables[i]) != 1)
                        test_fail(__FILE__, __LINE__, "table %s missing", tables[i]);
}

static const SchemaMigration v1_only[] = {
        { 1, "0001-a", "CREATE TABLE a(x INTEGER);" },
};
static const SchemaMigration v1_v2[] = {
        { 1, "0001-a", "CREATE TABLE a(x INTEGER);" },
        { 2, "0002-b", "ALTER TABLE a ADD COLUMN y TEXT; CREATE TABLE b(z INTEGER);" },
};
static const SchemaMigration v1_bad_v2[] = {
        { 1, "0001-a", "CREATE TABLE a(x INTEGER);" },
        { 2, "0002-bad", "CREATE TABLE c(z INTEGER); THIS IS NOT SQL;" },
};

TEST(upgrade_applies_only_new_migrations) {
        char path[512];
        Store *s = NULL;
        unsigned v;
        db_path(path, sizeof path, "upgrade.db");
        ASSERT_EQ_INT(store_open_with(path, v1_only, 1, &s), 0);
        store_free(s);
        CHECK_EQ_INT(table_exists(path, "b"), 0);
        ASSERT_EQ_INT(store_open_with(path, v1_v2, 2, &s), 0);
        store_free(s);
        CHECK_EQ_INT(table_exists(path, "b"), 1);
        CHECK_EQ_INT(store_file_version(path, &v), 0);
        CHECK_EQ_INT(v, 2);
        /* reopening is idempotent */
        ASSERT_EQ_INT(store_open_with(path, v1_v2, 2, &s), 0);
        store_free(s);
}

TEST(failed_migration_rolls_back) {
        char path[512];
        Store *s = NULL;
        unsigned v;
        db_path(path, sizeof path, "bad.db");
        ASSERT_EQ_INT(store_open_with(path, v1_only, 1, &s), 0);
        store_free(s);
        s = NULL;
        CHECK(store_open_with(path, v1_bad_v2, 2, &s) < 0);
        CHECK(s == NULL);
        CHECK_EQ_INT(store_file_version(path, &v), 0);
        CHECK_EQ_INT(v, 1);
        CHECK_EQ_INT(table_exists(path, "c"), 0);
}

TEST(newer_version_is_refused) {
        char path[512];
        Store *s = NULL;
        db_path(path, sizeof path, "newer.db");
        ASSERT_EQ_INT(store_open_with(path, v1_v2, 2, &s), 0);
        store_free(s);
        s = NULL;
        CHECK_EQ_INT(store_open_with(path, v1_only, 1, &s), -EPROTONOSUPPORT);
        CHECK(s == NULL);
}

static int64_t query_int(sqlite3 *db, const char *sql) {
        sqlite3_stmt *st;
        int64_t v = -1;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
                return -1;
        if (sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return v;
}

/* Version 3 rebuilds memslots (WITHOUT ROWID) and events (no AUTOINCREMENT): the rows, the event
 * ids and the append-only rule survive, and new events continue the ids. */
TEST(version_3_keeps_memslots_and_events) {
        char path[512];
        Store *s = NULL;
        int64_t id = 0;
        sqlite3 *db;
        db_path(path, sizeof path, "v3.db");
        ASSERT(schema_migrations_count >= 3);
        ASSERT_EQ_INT(store_open_with(path, schema_migrations, 2, &s), 0);
        const char *u = "44444444-4444-4444-8444-444444444444";
        ASSERT_EQ_INT(store_vm_insert(s, u, "delta", "running", "{}"), 0);
        for (int i = 0; i < 3; i++)
                CHECK_EQ_INT(store_event_append(s, "tester", "vm/delta", "act", "ok", NULL, &id), 0);
        db = store_lock(s);
        CHECK(sqlite3_exec(db, "INSERT INTO memslots(vm_uuid, as_id, slot, gpa, size, backing, role, state) VALUES "
                               "('44444444-4444-4444-8444-444444444444', 0, 5, 1073741824, 2097152, 'memfd', 'user', 'active')",
                           NULL, NULL, NULL) == SQLITE_OK);
        store_unlock(s);
        store_free(s);

        ASSERT_EQ_INT(store_open(path, &s), 0);
        CHECK_EQ_INT(store_event_append(s, "tester", "vm/delta", "act", "ok", NULL, &id), 0);
        CHECK_EQ_INT(id, 4);
        store_free(s);
        ASSERT(sqlite3_open(path, &db) == SQLITE_OK);
        CHECK_EQ_INT(query_int(db, "PRAGMA user_version"), 3);
        CHECK_EQ_INT(query_int(db, "SELECT count(*) FROM events WHERE object = 'vm/delta'"), 4);
        CHECK_EQ_INT(query_int(db, "SELECT max(id) FROM events"), 4);
        CHECK_EQ_INT(query_int(db, "SELECT gpa FROM memslots WHERE slot = 5"), 1073741824);
        CHECK_EQ_INT(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'memslots' AND sql LIKE '%WITHOUT ROWID%'"), 1);
        CHECK_EQ_INT(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'events_object'"), 1);
        CHECK(sqlite3_exec(db, "DELETE FROM events", NULL, NULL, NULL) != SQLITE_OK);
        /* the memslot rows still go with their VM */
        CHECK(sqlite3_exec(db, "PRAGMA foreign_keys = ON; DELETE FROM vms", NULL, NULL, NULL) == SQLITE_OK);
        CHECK_EQ_INT(query_int(db, "SELECT count(*) FROM memslots"), 0);
        sqlite3_close(db);
}

TEST(events_are_append_only_and_paginated) {
        char path[512];
        Store *s = NULL;
        db_path(path, sizeof path, "events.db");
        ASSERT_EQ_INT(store_open(path, &s), 0);
        _cleanup_json_ json_object *detail = json_object_new_object();
        json_add_string(detail, "k", "v");
        int64_t id = 0;
        for (int i = 0; i < 5; i++)
                CHECK_EQ_INT(store_event_append(s, "tester", i % 2 ? "vm/a" : "agent", "act", "ok", i == 0 ? detail : NULL, &id), 0);
        CHECK_EQ_INT(id, 5);
        json_object *list = NULL;
        ASSERT_EQ_INT(store_events_list(s, 1, 2, NULL, &list), 0);
        CHECK_EQ_INT(json_object_array_length(list), 2);
        json_object *first = json_object_array_get_idx(list, 0), *v;
        json_object_object_get_ex(first, "id", &v);
        CHECK_EQ_INT(json_object_get_int64(v), 2);
        json_object_put(list);
        ASSERT_EQ_INT(store_events_list(s, 0, 100, "vm/a", &list), 0);
        CHECK_EQ_INT(json_object_array_length(list), 2);
        json_object_put(list);
        ASSERT_EQ_INT(store_events_list(s, 0, 1, NULL, &list), 0);
        json_object_object_get_ex(json_object_array_get_idx(list, 0), "detail", &v);
        CHECK_STREQ(json_to_string(v), "{\"k\":\"v\"}");
        json_object_put(list);
        store_free(s);

        sqlite3 *db;
        ASSERT(sqlite3_open(path, &db) == SQLITE_OK);
        CHECK(sqlite3_exec(db, "UPDATE events SET result='tampered'", NULL, NULL, NULL) != SQLITE_OK);
        CHECK(sqlite3_exec(db, "DELETE FROM events", NULL, NULL, NULL) != SQLITE_OK);
        sqlite3_close(db);
}

/* A deferred write: appends an event named by its number, and notes the order it ran in. */
typedef struct Job {
        int n;
        int *order, *ran;
        bool nested_lock; /* takes the store's lock inside, as real writes do */
} Job;

static void job_run(Store *s, void *userdata) {
        Job *j = userdata;
        char action[16];
        snprintf(action, sizeof action, "job%d", j->n);
        if (j->nested_lock)
                store_lock(s);
        store_event_append(s, "tester", "deferred", action, "ok", NULL, NULL);
        if (j->nested_lock)
                store_unlock(s);
        j->order[(*j->ran)++] = j->n;
}

/* Events of object in the file at path, read by a connection of the test's own; -1 on error. */
static int count_events_of(const char *path, const char *object) {
        sqlite3 *db;
        sqlite3_stmt *st = NULL;
        int n = -1;
        if (sqlite3_open(path, &db) != SQLITE_OK)
                return -1;
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM events WHERE object = ?1", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_bind_text(st, 1, object, -1, SQLITE_STATIC) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                n = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return n;
}

static int count_events(const char *path) {
        return count_events_of(path, "deferred");
}

TEST(deferred_writes_run_in_order_before_the_next_use) {
        char path[512];
        Store *s = NULL;
        int order[4] = { 0 }, ran = 0;
        Job jobs[3] = { { 1, order, &ran, false }, { 2, order, &ran, true }, { 3, order, &ran, false } };
        db_path(path, sizeof path, "defer.db");
        ASSERT_EQ_INT(store_open(path, &s), 0);
        for (int i = 0; i < 2; i++)
                ASSERT_EQ_INT(store_defer(s, job_run, &jobs[i]), 0);
        CHECK_EQ_INT(ran, 0);
        CHECK_EQ_INT(count_events(path), 0); /* nothing is written until the store is used or flushed */
        /* The next use of the inventory writes them first, so it sees them. */
        json_object *list = NULL;
        ASSERT_EQ_INT(store_events_list(s, 0, 100, "deferred", &list), 0);
        CHECK_EQ_INT(json_object_array_length(list), 2);
        json_object_put(list);
        CHECK_EQ_INT(ran, 2);
        CHECK_EQ_INT(order[0], 1);
        CHECK_EQ_INT(order[1], 2);
        /* store_flush() writes without other use; with nothing queued it is a no-op. */
        ASSERT_EQ_INT(store_defer(s, job_run, &jobs[2]), 0);
        store_flush(s);
        CHECK_EQ_INT(ran, 3);
        CHECK_EQ_INT(order[2], 3);
        CHECK_EQ_INT(count_events(path), 3);
        store_flush(s);
        CHECK_EQ_INT(ran, 3);
        store_free(s);
}

TEST(closing_the_store_writes_what_was_deferred) {
        char path[512];
        Store *s = NULL;
        int order[1] = { 0 }, ran = 0;
        Job job = { 7, order, &ran, true };
        db_path(path, sizeof path, "defer-close.db");
        ASSERT_EQ_INT(store_open(path, &s), 0);
        ASSERT_EQ_INT(store_defer(s, job_run, &job), 0);
        store_free(s);
        CHECK_EQ_INT(ran, 1);
        CHECK_EQ_INT(count_events(path), 1);
}

/* Events in the database file alone (a copy of it without its -wal): what checkpoints have moved. */
static int events_in_main_file(const char *path) {
        char copy[600], cmd[1300];
        snprintf(copy, sizeof copy, "%s.alone", path);
        remove(copy);
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", path, copy);
        if (system(cmd) != 0)
                return -1;
        return count_events_of(copy, "ckpt");
}

/* Frames in the write-ahead log now: mxFrame of the wal-index header, at byte 16 of the -shm file
 * (SQLite's file format, "WAL-index Format"), read without a connection, which could checkpoint. */
static int wal_frames(const char *path) {
        char shm[600];
        uint32_t hdr[5];
        snprintf(shm, sizeof shm, "%s-shm", path);
        FILE *f = fopen(shm, "rb");
        if (!f)
                return -1;
        size_t n = fread(hdr, sizeof hdr, 1, f);
        fclose(f);
        return n == 1 ? (int) hdr[4] : -1;
}

TEST(the_log_is_checkpointed_by_the_flush_after_1000_pages) {
        char path[512];
        Store *s = NULL;
        db_path(path, sizeof path, "ckpt.db");
        ASSERT_EQ_INT(store_open(path, &s), 0);
        /* each append is a commit of at least one page: past the 1000-page mark, short of 4000 */
        for (int i = 0; i < 1500; i++)
                ASSERT_EQ_INT(store_event_append(s, "tester", "ckpt", "append", "ok", NULL, NULL), 0);
        CHECK_EQ_INT(store_checkpoints(s), 0);
        CHECK(events_in_main_file(path) <= 0); /* -1: not even the table is in the file yet */
        CHECK(wal_frames(path) >= 1500);
        store_flush(s);
        CHECK_EQ_INT(store_checkpoints(s), 1);
        CHECK(events_in_main_file(path) >= 1500);
        /* the next commit starts the log over */
        ASSERT_EQ_INT(store_event_append(s, "tester", "ckpt", "append", "ok", NULL, NULL), 0);
        int frames = wal_frames(path);
        CHECK(frames > 0 && frames < 10);
        store_free(s);
}

/* Writes with a flush after each, as the HTTP layer does after its replies: the log stays near the
 * mark instead of growing with every write while checkpoints chase it. */
TEST(under_steady_writes_the_log_stays_near_1000_pages) {
        char path[512];
        Store *s = NULL;
        int most = 0;
        db_path(path, sizeof path, "steady.db");
        ASSERT_EQ_INT(store_open(path, &s), 0);
        for (int i = 0; i < 3500; i++) {
                ASSERT_EQ_INT(store_event_append(s, "tester", "steady", "append", "ok", NULL, NULL), 0);
                store_flush(s);
                if (i % 100 == 99) {
                        int f = wal_frames(path);
                        most = f > most ? f : most;
                }
        }
        CHECK(store_checkpoints(s) >= 2);
        CHECK(most > 0 && most < 1100);
        store_free(s);
}

TEST(without_a_flush_the_commit_past_4000_pages_checkpoints) {
        char path[512];
        Store *s = NULL;
        db_path(path, sizeof path, "bound.db");
        ASSERT_EQ_INT(store_open(path, &s), 0);
        for (int i = 0; i < 4200 && store_checkpoints(s) == 0; i++)
                ASSERT_EQ_INT(store_event_append(s, "tester", "ckpt", "append", "ok", NULL, NULL), 0);
        CHECK_EQ_INT(store_checkpoints(s), 1);
        CHECK(events_in_main_file(path) > 1000);
        store_free(s);
}

TEST(kvm_setup_ingest_and_latest) {
        char path[512];
        Store *s = NULL;
        json_object *latest = NULL, *report, *v;
        db_path(path, sizeof path, "setup.db");
        ASSERT_EQ_INT(store_open(path, &s), 0);
        CHECK_EQ_INT(store_kvm_setup_latest(s, &latest), -ENOENT);
        CHECK_EQ_INT(store_kvm_setup_ingest(s, "{not json", NULL), -EBADMSG);
        CHECK_EQ_INT(store_kvm_setup_ingest(s, "{\"ok\":true,\"consistency\":{\"consistent\":true}}", NULL), 0);
        CHECK_EQ_INT(store_kvm_setup_ingest(s, "{\"ok\":false,\"consistency\":{\"consistent\":false}}", NULL), 0);
        ASSERT_EQ_INT(store_kvm_setup_latest(s, &latest), 0);
        json_object_object_get_ex(latest, "report", &report);
        json_object_object_get_ex(report, "ok", &v);
        CHECK(!json_object_get_boolean(v));
        json_object_object_get_ex(latest, "id", &v);
        CHECK_EQ_INT(json_object_get_int64(v), 2);
        json_object_put(latest);
        CHECK_EQ_INT(store_check_writable(s), 0);
        store_free(s);
}

TEST(read_only_file_is_not_writable) {
        char path[512];
        Store *s = NULL;
        db_path(path, sizeof path, "ro.db");
        ASSERT_EQ_INT(store_open(path, &s), 0);
        store_free(s);
        if (getuid() == 0) {
                /* root ignores file modes; use SQLite's own read-only open instead */
                sqlite3 *db;
                ASSERT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
                CHECK(sqlite3_exec(db, "INSERT INTO events(time,actor,object,action,result) VALUES('','a','b','c','d')",
                                   NULL, NULL, NULL) == SQLITE_READONLY);
                sqlite3_close(db);
        }
}

/* store_vm_get() answers repeated reads from copies: every write, and a rolled-back transaction,
 * must make the next read see the table again. */
TEST(vm_row_copies_follow_writes) {
        char path[512];
        Store *s = NULL;
        VmRecord *r = NULL;
        db_path(path, sizeof path, "vm-copies.db");
        ASSERT_EQ_INT(store_open(path, &s), 0);
        const char *u1 = "33333333-3333-4333-8333-333333333333";
        ASSERT_EQ_INT(store_vm_insert(s, u1, "gamma", "defined", "{\"name\":\"gamma\"}"), 0);
        for (int i = 0; i < 2; i++) { /* a read, then one from the copy */
                ASSERT_EQ_INT(store_vm_get(s, i ? u1 : "gamma", &r), 0);
                CHECK_STREQ(r->state, "defined");
                CHECK_STREQ(r->name, "gamma");
                CHECK(r->vmm_socket == NULL);
                vm_record_free(r);
        }
        CHECK_EQ_INT(store_vm_set_state(s, u1, NULL, "running", 7, 8, "/run/g.sock", NULL), 0);
        ASSERT_EQ_INT(store_vm_get(s, "gamma", &r), 0);
        CHECK_STREQ(r->state, "running");
        CHECK_STREQ(r->vmm_socket, "/run/g.sock");
        vm_record_free(r);
        CHECK_EQ_INT(store_vm_set_spec(s, u1, "{\"name\":\"gamma\",\"vcpus\":2}"), 0);
        ASSERT_EQ_INT(store_vm_get(s, u1, &r), 0);
        CHECK_STREQ(r->spec, "{\"name\":\"gamma\",\"vcpus\":2}");
        vm_record_free(r);

        /* a change inside a transaction is seen inside it, and is gone after its rollback */
        ASSERT_EQ_INT(store_tx_begin(s), 0);
        CHECK_EQ_INT(store_vm_set_state(s, u1, NULL, "paused", -1, 0, NULL, NULL), 0);
        ASSERT_EQ_INT(store_vm_get(s, u1, &r), 0);
        CHECK_STREQ(r->state, "paused");
        vm_record_free(r);
        CHECK_EQ_INT(store_tx_end(s, false), 0);
        ASSERT_EQ_INT(store_vm_get(s, u1, &r), 0);
        CHECK_STREQ(r->state, "running");
        vm_record_free(r);

        CHECK_EQ_INT(store_vm_delete(s, u1), 0);
        CHECK_EQ_INT(store_vm_get(s, "gamma", &r), -ENOENT);
        CHECK_EQ_INT(store_vm_get(s, u1, &r), -ENOENT);
        store_free(s);
}

TEST(vm_rows) {
        char path[512];
        Store *s = NULL;
        VmRecord *r = NULL;
        json_object *list = NULL;
        db_path(path, sizeof path, "vms.db");
        ASSERT_EQ_INT(store_open(path, &s), 0);
        const char *u1 = "11111111-1111-4111-8111-111111111111", *u2 = "22222222-2222-4222-8222-222222222222";
        CHECK_EQ_INT(store_vm_insert(s, u1, "alpha", "defined", "{\"name\":\"alpha\"}"), 0);
        CHECK_EQ_INT(store_vm_insert(s, u2, "alpha", "defined", "{}"), -EEXIST); /* name unique */
        CHECK_EQ_INT(store_vm_insert(s, u2, "beta", "bogus", "{}"), -EEXIST);    /* state checked */
        CHECK_EQ_INT(store_vm_insert(s, u2, "beta", "defined", "{not json"), -EEXIST);
        CHECK_EQ_INT(store_vm_insert(s, u2, "beta", "defined", "{\"name\":\"beta\"}"), 0);

        ASSERT_EQ_INT(store_vm_get(s, "alpha", &r), 0);
        CHECK_STREQ(r->uuid, u1);
        CHECK_EQ_INT(r->vmm_pid, 0);
        vm_record_free(r);
        CHECK_EQ_INT(store_vm_get(s, "gamma", &r), -ENOENT);

        CHECK_EQ_INT(store_vm_set_state(s, u1, "defined", "running", 4242, 99, "/run/x.sock", NULL), 0);
        CHECK_EQ_INT(store_vm_set_state(s, u1, "defined", "stopped", 0, 0, NULL, NULL), -ESTALE);
        CHECK_EQ_INT(store_vm_set_state(s, "nope", NULL, "stopped", 0, 0, NULL, NULL), -ENOENT);
        ASSERT_EQ_INT(store_vm_get(s, u1, &r), 0);
        CHECK_STREQ(r->state, "running");
        CHECK_EQ_INT(r->vmm_pid, 4242);
        CHECK_EQ_U64(r->vmm_start_time, 99);
        CHECK_STREQ(r->vmm_socket, "/run/x.sock");
        vm_record_free(r);
        /* -1 keeps the VMM fields */
        CHECK_EQ_INT(store_vm_set_state(s, u1, NULL, "paused", -1, 0, NULL, NULL), 0);
        ASSERT_EQ_INT(store_vm_get(s, u1, &r), 0);
        CHECK_EQ_INT(r->vmm_pid, 4242);
        vm_record_free(r);
        CHECK_EQ_INT(store_vm_set_state(s, u1, NULL, "crashed", 0, 0, NULL, "killed by signal 9"), 0);
        ASSERT_EQ_INT(store_vm_get(s, u1, &r), 0);
        CHECK_EQ_INT(r->vmm_pid, 0);
        CHECK_STREQ(r->exit_reason, "killed by signal 9");
        vm_record_free(r);

        ASSERT_EQ_INT(store_vm_list(s, NULL, NULL, 0, 100, &list), 0);
        CHECK_EQ_INT(json_object_array_length(list), 2);
        json_object_put(list);
        ASSERT_EQ_INT(store_vm_list(s, "crashed", NULL, 0, 100, &list), 0);
        CHECK_EQ_INT(json_object_array_length(list), 1);
        json_object *name;
        json_object_object_get_ex(json_object_array_get_idx(list, 0), "name", &name);
        CHECK_STREQ(json_object_get_string(name), "alpha");
        json_object_put(list);
        ASSERT_EQ_INT(store_vm_list(s, NULL, NULL, 1, 100, &list), 0);
        CHECK_EQ_INT(json_object_array_length(list), 1);
        json_object_put(list);

        CHECK_EQ_INT(store_vm_delete(s, u2), 0);
        CHECK_EQ_INT(store_vm_delete(s, u2), -ENOENT);
        store_free(s);
}
