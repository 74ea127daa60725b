/* SPDX-License-Identifier: MIT */
#include "store-memslots.h"

#include <errno.h>
#include <sqlite3.h>
#include <string.h>

#include "json-util.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt *, sqlite3_finalize);
#define _cleanup_stmt_ _cleanup_(sqlite3_finalizep)

static int rc_to_errno(int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK: case SQLITE_DONE: case SQLITE_ROW: return 0;
        case SQLITE_BUSY: case SQLITE_LOCKED: return -EBUSY;
        case SQLITE_NOMEM: return -ENOMEM;
        case SQLITE_CONSTRAINT: return -EEXIST;
        default: return -EIO;
        }
}

#define COLUMNS "slot, as_id, gpa, size, flags_dirty_log, flags_readonly, backing, backing_offset, role, state"

static int row_to_json(sqlite3_stmt *st, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *flags = json_object_new_object();
        int r = 0;
        if (!o || !flags) {
                json_object_put(flags);
                return -ENOMEM;
        }
        const char *backing = (const char *) sqlite3_column_text(st, 6);
        r |= json_add_uint(o, "slot", (uint64_t) sqlite3_column_int64(st, 0));
        r |= json_add_uint(o, "as_id", (uint64_t) sqlite3_column_int64(st, 1));
        r |= json_add_uint(o, "gpa", (uint64_t) sqlite3_column_int64(st, 2));
        r |= json_add_uint(o, "size", (uint64_t) sqlite3_column_int64(st, 3));
        r |= json_add(o, "flags", flags);
        r |= json_add_bool(flags, "dirty_log", sqlite3_column_int(st, 4));
        r |= json_add_bool(flags, "readonly", sqlite3_column_int(st, 5));
        r |= json_add_string(o, "backing", backing ? backing : "");
        if (backing && strcmp(backing, "guest_memfd") == 0)
                r |= json_add_uint(o, "guest_memfd_offset", (uint64_t) sqlite3_column_int64(st, 7));
        r |= json_add_string(o, "role", (const char *) sqlite3_column_text(st, 8));
        r |= json_add_string(o, "state", (const char *) sqlite3_column_text(st, 9));
        if (r < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

static int query(Store *s, const char *sql, const char *uuid, int64_t as_id, int64_t slot, json_object *arr,
                 json_object **ret_one) {
        sqlite3 *db = store_lock(s);
        sqlite3_stmt *st = store_stmt(s, sql);
        int rc = st ? SQLITE_OK : sqlite3_errcode(db), r = 0;
        if (st) {
                sqlite3_bind_text(st, 1, uuid, -1, SQLITE_TRANSIENT);
                if (as_id >= 0) {
                        sqlite3_bind_int64(st, 2, as_id);
                        sqlite3_bind_int64(st, 3, slot);
                }
                while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                        json_object *o;
                        r = row_to_json(st, &o);
                        if (r < 0)
                                break;
                        if (ret_one) {
                                *ret_one = o;
                                break;
                        }
                        if (json_object_array_add(arr, o) < 0) {
                                json_object_put(o);
                                r = -ENOMEM;
                                break;
                        }
                }
        }
        if (r == 0 && rc != SQLITE_ROW)
                r = rc_to_errno(rc);
        store_stmt_done(s, st);
        store_unlock(s);
        return r;
}

int store_memslots_list(Store *s, const char *uuid, json_object **ret) {
        _cleanup_json_ json_object *arr = json_object_new_array();
        if (!arr)
                return -ENOMEM;
        static const char sql[] = "SELECT " COLUMNS " FROM memslots WHERE vm_uuid = ?1 ORDER BY as_id, slot";
        int r = query(s, sql, uuid, -1, -1, arr, NULL);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(arr);
        return 0;
}

int store_memslot_get(Store *s, const char *uuid, unsigned as_id, unsigned slot, json_object **ret) {
        json_object *o = NULL;
        static const char sql[] = "SELECT " COLUMNS " FROM memslots WHERE vm_uuid = ?1 AND as_id = ?2 AND slot = ?3";
        int r = query(s, sql, uuid, as_id, slot, NULL, &o);
        if (r < 0)
                return r;
        if (!o)
                return -ENOENT;
        *ret = o;
        return 0;
}

static uint64_t get_u64(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? (uint64_t) json_object_get_int64(v) : 0;
}

static const char *get_str(json_object *o, const char *key, const char *def) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                                                                 : def;
}

static bool get_flag(json_object *o, const char *key) {
        json_object *flags, *v;
        return json_object_object_get_ex(o, "flags", &flags) && json_object_object_get_ex(flags, key, &v) &&
               json_object_get_boolean(v);
}

static int put_locked(Store *s, const char *uuid, json_object *m, const char *state) {
        static const char sql[] = "INSERT OR REPLACE INTO memslots (vm_uuid, " COLUMNS ") "
                                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
        sqlite3_stmt *st = store_stmt(s, sql);
        if (!st)
                return -ENOMEM;
        sqlite3_bind_text(st, 1, uuid, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, (int64_t) get_u64(m, "slot"));
        sqlite3_bind_int64(st, 3, (int64_t) get_u64(m, "as_id"));
        sqlite3_bind_int64(st, 4, (int64_t) get_u64(m, "gpa"));
        sqlite3_bind_int64(st, 5, (int64_t) get_u64(m, "size"));
        sqlite3_bind_int(st, 6, get_flag(m, "dirty_log"));
        sqlite3_bind_int(st, 7, get_flag(m, "readonly"));
        sqlite3_bind_text(st, 8, get_str(m, "backing", "memfd"), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 9, (int64_t) get_u64(m, "guest_memfd_offset"));
        sqlite3_bind_text(st, 10, get_str(m, "role", "user"), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 11, state ? state : get_str(m, "state", "active"), -1, SQLITE_TRANSIENT);
        int r = rc_to_errno(sqlite3_step(st));
        store_stmt_done(s, st);
        return r;
}

int store_memslot_put(Store *s, const char *uuid, json_object *m, const char *state) {
        store_lock(s);
        int r = put_locked(s, uuid, m, state);
        store_unlock(s);
        return r;
}

/* sql with ?1 uuid, ?2 as_id, ?3 slot and, when given, ?4 text and ?5 text2; -ENOENT when it
 * changed no row. */
static int exec_bound(Store *s, const char *sql, const char *uuid, unsigned as_id, unsigned slot, const char *text,
                      const char *text2) {
        sqlite3 *db = store_lock(s);
        sqlite3_stmt *st = store_stmt(s, sql);
        int rc = st ? SQLITE_OK : sqlite3_errcode(db);
        if (st) {
                sqlite3_bind_text(st, 1, uuid, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(st, 2, as_id);
                sqlite3_bind_int64(st, 3, slot);
                if (text)
                        sqlite3_bind_text(st, 4, text, -1, SQLITE_TRANSIENT);
                if (text2)
                        sqlite3_bind_text(st, 5, text2, -1, SQLITE_TRANSIENT);
                rc = sqlite3_step(st);
        }
        int r = rc_to_errno(rc);
        if (r == 0 && sqlite3_changes(db) == 0)
                r = -ENOENT;
        store_stmt_done(s, st);
        store_unlock(s);
        return r;
}

int store_memslots_set_state_all(Store *s, const char *uuid, const char *state) {
        sqlite3 *db = store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, "UPDATE memslots SET state = ?2 WHERE vm_uuid = ?1", -1, &st, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, uuid, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 2, state, -1, SQLITE_TRANSIENT);
                rc = sqlite3_step(st);
        }
        int r = rc_to_errno(rc);
        store_unlock(s);
        return r;
}

int store_memslot_set_state(Store *s, const char *uuid, unsigned as_id, unsigned slot, const char *state) {
        static const char sql[] = "UPDATE memslots SET state = ?4 WHERE vm_uuid = ?1 AND as_id = ?2 AND slot = ?3";
        return exec_bound(s, sql, uuid, as_id, slot, state, NULL);
}

int store_memslot_swap_state(Store *s, const char *uuid, unsigned as_id, unsigned slot, const char *from,
                             const char *to) {
        static const char sql[] = "UPDATE memslots SET state = ?5 WHERE vm_uuid = ?1 AND as_id = ?2 AND slot = ?3 "
                                  "AND state = ?4";
        return exec_bound(s, sql, uuid, as_id, slot, from, to);
}

int store_memslot_delete(Store *s, const char *uuid, unsigned as_id, unsigned slot) {
        static const char sql[] = "DELETE FROM memslots WHERE vm_uuid = ?1 AND as_id = ?2 AND slot = ?3";
        return exec_bound(s, sql, uuid, as_id, slot, NULL, NULL);
}

int store_memslots_replace(Store *s, const char *uuid, json_object *array) {
        sqlite3 *db = store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *del = NULL;
        int r = rc_to_errno(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL));
        if (r < 0)
                goto out;
        int rc = sqlite3_prepare_v2(db, "DELETE FROM memslots WHERE vm_uuid = ?1", -1, &del, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(del, 1, uuid, -1, SQLITE_TRANSIENT);
                rc = sqlite3_step(del);
        }
        r = rc_to_errno(rc);
        for (size_t i = 0; r >= 0 && i < json_object_array_length(array); i++)
                r = put_locked(s, uuid, json_object_array_get_idx(array, i), "active");
        (void) sqlite3_exec(db, r < 0 ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL);
out:
        store_unlock(s);
        return r;
}
