/* SPDX-License-Identifier: MIT */
#include "memslots.h"

#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "store-memslots.h"
#include "str-util.h"
#include "vmm/control-client.h"
#include "vmm/memslot-rules.h"

#define MEMSLOT_CONTROL_TIMEOUT_MS 10000

_printf_(5, 6) static int set_error(VmError *e, unsigned status, const char *code, json_object *details,
                                    const char *fmt, ...) {
        va_list ap;
        json_object_put(e->details);
        e->details = details;
        e->status = status;
        e->code = code;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof e->message, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* Codes are static strings in VmError; keep the ones a VMM or the rules can return. */
static const char *code_intern(const char *code) {
        static const char *const codes[] = {
                "invalid_argument", "not_found", "memslot_exists", "memslot_overlap", "memslot_move_dirty_log",
                "memslot_force_required", "memslot_immutable", "memslot_dirty_log_disabled", "memslot_no_free_id",
                "memslot_size_invalid", "memslot_unaligned", "memslot_out_of_range", "memslot_too_many_pages",
                "memslot_id_out_of_range", "memslot_flags_invalid", "memslot_backing_unavailable", "unsupported",
                "memslot_apply_failed", "invalid_state", "payload_too_large",
        };
        for (size_t i = 0; i < ELEMENTSOF(codes); i++)
                if (streq(code, codes[i]))
                        return codes[i];
        return "vmm_failed";
}

static int error_from_rules(VmError *e, const MemslotError *me) {
        _cleanup_json_ json_object *o = NULL;
        json_object *details = NULL;
        if (memslot_error_to_json(me, &o) >= 0 && json_object_object_get_ex(o, "details", &details))
                json_object_get(details);
        return set_error(e, (unsigned) me->http_status, code_intern(me->code), details, "%s", me->message);
}

/* An error object the VMM sent: {"code", "message", "details"?}. */
static int error_from_vmm(VmError *e, json_object *err) {
        json_object *v, *details = NULL, *status;
        const char *code = json_object_object_get_ex(err, "code", &v) ? json_object_get_string(v) : "vmm_failed";
        const char *message = json_object_object_get_ex(err, "message", &v) ? json_object_get_string(v) : "";
        unsigned http = (unsigned) memslot_error_http_status(code);
        if (json_object_object_get_ex(err, "details", &details)) {
                json_object_get(details);
                if (json_object_object_get_ex(details, "http_status", &status))
                        http = (unsigned) json_object_get_int(status);
        }
        const char *c = code_intern(code);
        if (streq(c, "vmm_failed"))
                http = 500;
        return set_error(e, http, c, details, "%s", message);
}

static int call(const char *ctl, const char *method, json_object *params, json_object **ret, VmError *e) {
        _cleanup_json_ json_object *err = NULL;
        int k = vmm_control_call_full(ctl, method, params, MEMSLOT_CONTROL_TIMEOUT_MS, ret, &err);
        if (k == 1)
                return error_from_vmm(e, err);
        if (k < 0)
                return set_error(e, 500, "vmm_failed", NULL, "the VMM did not answer %s: %s", method, strerror(-k));
        return 0;
}

static int need_vmm(const VmRecord *r, const char *ctl, const char *what, VmError *e) {
        if (ctl)
                return 0;
        json_object *d = json_object_new_object();
        json_add_string(d, "state", r->state);
        json_add_string(d, "uuid", r->uuid);
        return set_error(e, 409, "invalid_state", d, "cannot %s of VM \"%s\" in state %s: its memslots exist only while it runs",
                         what, r->name, r->state);
}

static void event(Manager *m, const char *actor, const VmRecord *r, const char *action, const char *result,
                  json_object *slot, const VmError *e) {
        char object[48];
        json_object *d = json_object_new_object();
        snprintf(object, sizeof object, "vm/%s", r->uuid);
        if (d) {
                json_add_string(d, "name", r->name);
                if (slot)
                        json_add(d, "memslot", json_object_get(slot));
                if (e) {
                        json_add_string(d, "code", e->code);
                        json_add_string(d, "message", e->message);
                }
        }
        manager_event(m, actor, object, action, result, d);
        json_object_put(d);
}

/* ---- the VMM's table and limits, as the rules want them ---- */

static uint64_t u64_of(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? (uint64_t) json_object_get_int64(v) : 0;
}

static bool bool_of(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static void info_from_json(json_object *o, MemslotInfo *ret) {
        json_object *flags = NULL, *v;
        *ret = (MemslotInfo){
                .slot = (uint32_t) u64_of(o, "slot"),
                .as_id = (uint16_t) u64_of(o, "as_id"),
                .gpa = u64_of(o, "gpa"),
                .size = u64_of(o, "size"),
                .guest_memfd_offset = u64_of(o, "guest_memfd_offset"),
                .role = json_object_object_get_ex(o, "role", &v) && streq(json_object_get_string(v), "ram")
                                ? MEMSLOT_ROLE_RAM : MEMSLOT_ROLE_USER,
        };
        if (json_object_object_get_ex(o, "flags", &flags)) {
                ret->dirty_log = bool_of(flags, "dirty_log");
                ret->readonly = bool_of(flags, "readonly");
        }
        if (!json_object_object_get_ex(o, "backing", &v) || memslot_backing_from_string(json_object_get_string(v), &ret->backing) < 0)
                ret->backing = MEMSLOT_BACKING_MEMFD;
}

typedef struct Live {
        json_object *list; /* the VMM's memslot.list result */
        MemslotInfo *infos;
        size_t n;
        MemslotLimits limits;
} Live;

static void live_done(Live *l) {
        json_object_put(l->list);
        free(l->infos);
}

static int live_get(const char *ctl, Live *l, VmError *e) {
        json_object *arr, *lim;
        int k = call(ctl, "memslot.list", NULL, &l->list, e);
        if (k < 0)
                return k;
        if (!json_object_object_get_ex(l->list, "memslots", &arr) || !json_object_object_get_ex(l->list, "limits", &lim))
                return set_error(e, 500, "vmm_failed", NULL, "the VMM's memslot.list reply has no memslots or limits");
        l->n = json_object_array_length(arr);
        l->infos = calloc(MAX(l->n, (size_t) 1), sizeof *l->infos);
        if (!l->infos)
                return set_error(e, 500, "internal", NULL, "out of memory");
        for (size_t i = 0; i < l->n; i++)
                info_from_json(json_object_array_get_idx(arr, i), &l->infos[i]);
        l->limits = (MemslotLimits){
                .nr_memslots = (uint32_t) u64_of(lim, "nr_memslots"),
                .address_spaces = (uint16_t) u64_of(lim, "address_spaces"),
                .phys_bits = (unsigned) u64_of(lim, "phys_bits"),
                .readonly_mem = bool_of(lim, "readonly_mem"),
                .user_memory2 = bool_of(lim, "user_memory2"),
                .guest_memfd = bool_of(lim, "guest_memfd"),
                .memory_attributes = u64_of(lim, "memory_attributes"),
                .manual_dirty_log_protect = bool_of(lim, "manual_dirty_log_protect"),
                .hugetlb_pool = true,
                .hugetlb_free_pages = u64_of(lim, "hugetlb_free_pages"),
        };
        return 0;
}

/* The VMM's table as the agent last saw it, per VM, so that a change costs one call to the VMM and
 * not two. Every change to a VM's memslots goes through this file under the VM's operation lock,
 * so the copy stays exact: it is updated from each successful change's result and dropped on any
 * failure. It is keyed by the VMM's pid: a restarted VMM starts with a fresh read. The VMM checks
 * every rule again itself; a stale copy can only turn into a refusal from the VMM, never into a
 * wrong change. Huge page requests always read afresh (the free page count moves). */
#define LIVE_CACHE_SIZE 64

typedef struct LiveCacheEntry {
        char uuid[37];
        int64_t vmm_pid;
        MemslotInfo *infos; /* NULL: free entry */
        size_t n;
        MemslotLimits limits;
        uint64_t last_used;
} LiveCacheEntry;

static pthread_mutex_t live_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static LiveCacheEntry live_cache[LIVE_CACHE_SIZE];
static uint64_t live_cache_clock;

/* Takes the VM's cached table out of the cache (the caller owns it now); false when there is none. */
static bool live_cache_take(const VmRecord *r, Live *l) {
        bool found = false;
        pthread_mutex_lock(&live_cache_lock);
        for (size_t i = 0; i < LIVE_CACHE_SIZE; i++) {
                LiveCacheEntry *c = &live_cache[i];
                if (!c->infos || !streq(c->uuid, r->uuid))
                        continue;
                if (c->vmm_pid == r->vmm_pid) {
                        l->infos = TAKE_PTR(c->infos);
                        l->n = c->n;
                        l->limits = c->limits;
                        found = true;
                } else
                        c->infos = mfree(c->infos);
        }
        pthread_mutex_unlock(&live_cache_lock);
        return found;
}

/* Gives l's table to the cache as the VM's current one. */
static void live_cache_put(const VmRecord *r, Live *l) {
        size_t victim = 0;
        pthread_mutex_lock(&live_cache_lock);
        for (size_t i = 0; i < LIVE_CACHE_SIZE; i++) {
                if (!live_cache[i].infos) {
                        victim = i;
                        break;
                }
                if (live_cache[i].last_used < live_cache[victim].last_used)
                        victim = i;
        }
        LiveCacheEntry *c = &live_cache[victim];
        free(c->infos);
        snprintf(c->uuid, sizeof c->uuid, "%s", r->uuid);
        c->vmm_pid = r->vmm_pid;
        c->infos = TAKE_PTR(l->infos);
        c->n = l->n;
        c->limits = l->limits;
        c->last_used = ++live_cache_clock;
        pthread_mutex_unlock(&live_cache_lock);
}

static void live_cache_drop(const char *uuid) {
        pthread_mutex_lock(&live_cache_lock);
        for (size_t i = 0; i < LIVE_CACHE_SIZE; i++)
                if (live_cache[i].infos && streq(live_cache[i].uuid, uuid))
                        live_cache[i].infos = mfree(live_cache[i].infos);
        pthread_mutex_unlock(&live_cache_lock);
}

/* The table for a change: the cached copy, or the VMM's. */
static int live_get_for_change(const VmRecord *r, const char *ctl, bool fresh, Live *l, VmError *e) {
        if (fresh)
                live_cache_drop(r->uuid);
        else if (live_cache_take(r, l))
                return 0;
        return live_get(ctl, l, e);
}

/* After a change the VMM made: slot's entry becomes result (NULL: removed), and the table goes
 * back to the cache. */
static void live_update_and_keep(const VmRecord *r, Live *l, uint32_t slot, uint16_t as_id, json_object *result) {
        int i = memslot_find(l->infos, l->n, slot, as_id);
        if (result) {
                MemslotInfo info = {};
                info_from_json(result, &info);
                if (i < 0) {
                        MemslotInfo *grown = reallocarray(l->infos, l->n + 1, sizeof *grown);
                        if (!grown)
                                return; /* not kept: the next change reads the VMM's table */
                        l->infos = grown;
                        i = (int) l->n++;
                }
                l->infos[i] = info;
        } else if (i >= 0) {
                memmove(&l->infos[i], &l->infos[i + 1], (l->n - (size_t) i - 1) * sizeof *l->infos);
                l->n--;
        }
        live_cache_put(r, l);
}

static bool vm_live(const VmRecord *r) {
        return streq(r->state, "running") || streq(r->state, "paused");
}

void memslots_vmm_ended(Manager *m, const char *uuid) {
        live_cache_drop(uuid);
        int k = store_memslots_set_state_all(m->store, uuid, "inactive");
        if (k < 0)
                log_warning_errno(k, "Cannot mark the memslots of VM %s inactive: %m", uuid);
}

/* The rows a change left behind unfinished (pending, deleting, moving, updating): a change in
 * flight when the agent stopped. Each is reported with what KVM has for that slot now. */
static json_object *unfinished_rows(json_object *rows, json_object *live) {
        json_object *out = NULL;
        for (size_t i = 0; i < json_object_array_length(rows); i++) {
                json_object *row = json_object_array_get_idx(rows, i), *v;
                const char *state = json_object_object_get_ex(row, "state", &v) ? json_object_get_string(v) : "";
                if (streq(state, "active") || streq(state, "inactive"))
                        continue;
                json_object *now = NULL;
                for (size_t j = 0; j < json_object_array_length(live) && !now; j++) {
                        json_object *l = json_object_array_get_idx(live, j);
                        if (u64_of(l, "slot") == u64_of(row, "slot") && u64_of(l, "as_id") == u64_of(row, "as_id"))
                                now = l;
                }
                json_object *o = json_object_new_object();
                if (!out)
                        out = json_object_new_array();
                if (!o || !out || json_object_array_add(out, o) < 0) {
                        json_object_put(o);
                        break;
                }
                json_add_uint(o, "slot", u64_of(row, "slot"));
                json_add_uint(o, "as_id", u64_of(row, "as_id"));
                json_add_string(o, "recorded_state", state);
                json_add(o, "kvm", now ? json_object_get(now) : NULL);
        }
        return out;
}

int memslots_sync(Manager *m, const char *uuid, const char *name, const char *control_path) {
        _cleanup_json_ json_object *list = NULL, *before = NULL;
        json_object *arr;
        int k;
        if (!control_path)
                return -EINVAL;
        k = vmm_control_call(control_path, "memslot.list", NULL, MEMSLOT_CONTROL_TIMEOUT_MS, &list, NULL, NULL);
        if (k != 0 || !json_object_object_get_ex(list, "memslots", &arr)) {
                log_warning("Cannot read the memslots of VM %s from its VMM; the inventory keeps the last known ones.",
                            name);
                return k < 0 ? k : -EBADMSG;
        }
        if (store_memslots_list(m->store, uuid, &before) < 0)
                before = NULL;
        k = store_memslots_replace(m->store, uuid, arr);
        if (k < 0) {
                log_warning_errno(k, "Cannot record the memslots of VM %s in the inventory: %m", name);
                return k;
        }
        /* A change the agent stopped in the middle of has no "ok" or "failed" event: say what became of it. */
        _cleanup_json_ json_object *unfinished = before ? unfinished_rows(before, arr) : NULL;
        if (unfinished) {
                char object[48];
                json_object *d = json_object_new_object();
                snprintf(object, sizeof object, "vm/%s", uuid);
                json_add_string(d, "name", name);
                json_add(d, "unfinished", json_object_get(unfinished));
                manager_event(m, "agent", object, "memslot_reconcile", "ok", d);
                json_object_put(d);
        }
        return 0;
}

/* ---- read ---- */

typedef struct Op {
        json_object *body;
        const char *actor;
        unsigned as_id, slot;
        bool force, clear, bitmap;
        json_object *result;
} Op;

static int do_list(Manager *m, const VmRecord *r, const char *ctl, void *userdata, VmError *e) {
        Op *op = userdata;
        if (ctl)
                return call(ctl, "memslot.list", NULL, &op->result, e);
        json_object *rows = NULL, *o = json_object_new_object();
        int k = store_memslots_list(m->store, r->uuid, &rows);
        if (k < 0 || !o || json_add(o, "memslots", rows) < 0) {
                json_object_put(o);
                return set_error(e, 500, "internal", NULL, "inventory: %s", strerror(k < 0 ? -k : ENOMEM));
        }
        op->result = o;
        return 0;
}

int memslots_list(Manager *m, const char *id, json_object **ret, VmError *e) {
        Op op = {};
        int k = vms_locked(m, id, do_list, &op, e);
        if (k >= 0)
                *ret = op.result;
        return k;
}

static int not_found(VmError *e, const VmRecord *r, unsigned as_id, unsigned slot) {
        json_object *d = json_object_new_object();
        json_add_uint(d, "slot", slot);
        json_add_uint(d, "as_id", as_id);
        return set_error(e, 404, "not_found", d, "VM \"%s\" has no slot %u in address space %u", r->name, slot, as_id);
}

static int do_get(Manager *m, const VmRecord *r, const char *ctl, void *userdata, VmError *e) {
        Op *op = userdata;
        if (!ctl) {
                int k = store_memslot_get(m->store, r->uuid, op->as_id, op->slot, &op->result);
                if (k == -ENOENT)
                        return not_found(e, r, op->as_id, op->slot);
                return k < 0 ? set_error(e, 500, "internal", NULL, "inventory: %s", strerror(-k)) : 0;
        }
        _cleanup_(live_done) Live l = {};
        int k = live_get(ctl, &l, e);
        if (k < 0)
                return k;
        int i = memslot_find(l.infos, l.n, op->slot, (uint16_t) op->as_id);
        if (i < 0)
                return not_found(e, r, op->as_id, op->slot);
        json_object *arr;
        json_object_object_get_ex(l.list, "memslots", &arr);
        op->result = json_object_get(json_object_array_get_idx(arr, (size_t) i));
        return 0;
}

int memslots_get(Manager *m, const char *id, unsigned as_id, unsigned slot, json_object **ret, VmError *e) {
        Op op = { .as_id = as_id, .slot = slot };
        int k = vms_locked(m, id, do_get, &op, e);
        if (k >= 0)
                *ret = op.result;
        return k;
}

/* ---- changes ---- */

static int bad_body(VmError *e, const JsonError *je) {
        json_object *d = json_object_new_object();
        json_add_string(d, "path", je->path);
        return set_error(e, 400, "invalid_argument", d, "%s: %s", je->path, je->message);
}

/* The body of POST: the memslot object's fields (slot optional). */
static int parse_create(json_object *body, MemslotInfo *req, bool *have_slot, VmError *e) {
        static const char *const keys[] = { "slot", "as_id", "gpa", "size", "flags", "backing", "guest_memfd_offset",
                                            "role", "state", NULL };
        static const char *const flag_keys[] = { "dirty_log", "readonly", NULL };
        json_object *flags = NULL;
        const char *backing = NULL;
        uint64_t slot = 0, as_id = 0;
        JsonError je = {};
        int k;

        *req = (MemslotInfo){ .backing = MEMSLOT_BACKING_MEMFD, .role = MEMSLOT_ROLE_USER };
        if (json_expect_object(body, "$", &je) < 0 || json_check_keys(body, "$", keys, &je) < 0)
                return bad_body(e, &je);
        k = json_get_uint64(body, "$", "slot", false, 0, UINT32_MAX, &slot, &je);
        if (k < 0 || json_get_uint64(body, "$", "as_id", false, 0, UINT16_MAX, &as_id, &je) < 0 ||
            json_get_size(body, "$", "gpa", true, 0, UINT64_MAX, &req->gpa, &je) < 0 ||
            json_get_size(body, "$", "size", true, 0, UINT64_MAX, &req->size, &je) < 0 ||
            json_get_size(body, "$", "guest_memfd_offset", false, 0, UINT64_MAX, &req->guest_memfd_offset, &je) < 0 ||
            json_get_object(body, "$", "flags", false, &flags, &je) < 0 ||
            json_get_string(body, "$", "backing", false, &backing, &je) < 0)
                return bad_body(e, &je);
        if (flags && (json_check_keys(flags, "$.flags", flag_keys, &je) < 0 ||
                      json_get_bool(flags, "$.flags", "dirty_log", false, &req->dirty_log, &je) < 0 ||
                      json_get_bool(flags, "$.flags", "readonly", false, &req->readonly, &je) < 0))
                return bad_body(e, &je);
        json_object *role;
        if (json_object_object_get_ex(body, "role", &role) && !streq(json_object_get_string(role), "user"))
                return set_error(e, 400, "invalid_argument", NULL, "$.role: only user slots can be created");
        if (backing && memslot_backing_from_string(backing, &req->backing) < 0)
                return set_error(e, 400, "invalid_argument", NULL,
                                 "$.backing: must be memfd, hugetlb, anonymous or guest_memfd, not \"%s\"", backing);
        req->slot = (uint32_t) slot;
        req->as_id = (uint16_t) as_id;
        *have_slot = k > 0;
        return 0;
}

/* ---- a change's result ---- */

/* What a change left to record once KVM has it: the slot's row (NULL: the slot is gone) and the
 * event. Own copies of everything, since it may be written on another thread. */
typedef struct Record {
        Manager *m;
        char uuid[37];
        char *name, *actor;
        const char *action; /* static */
        unsigned as_id, slot;
        json_object *row, *detail;
        LogContext log;
} Record;

static void record_free(Record *x) {
        if (!x)
                return;
        free(x->name);
        free(x->actor);
        json_object_put(x->row);
        json_object_put(x->detail);
        free(x);
}

/* The row and the event in one inventory transaction; without it (BEGIN failed) both are still
 * written, each on its own. A failure here cannot undo the change KVM made: it is logged, and the
 * next reconciliation (agent start) corrects the row from the VMM's table. */
static void record_write(Store *s, const Record *x) {
        VmRecord r = { .name = x->name };
        memcpy(r.uuid, x->uuid, sizeof r.uuid);
        bool tx = store_tx_begin(s) >= 0;
        int k = x->row ? store_memslot_put(s, x->uuid, x->row, "active") : store_memslot_delete(s, x->uuid, x->as_id, x->slot);
        if (k < 0 && !(k == -ENOENT && !x->row))
                log_warning_errno(k, "Cannot record %s of memslot %u of VM %s in the inventory: %m", x->action, x->slot,
                                  x->name);
        event(x->m, x->actor, &r, x->action, "ok", x->detail, NULL);
        k = tx ? store_tx_end(s, true) : 0;
        if (k < 0)
                log_warning_errno(k, "Cannot record %s of VM %s in the inventory: %m", x->action, x->name);
}

/* store_defer()'s job: on whichever thread flushes, with the logging context of the request. */
static void record_write_deferred(Store *s, void *userdata) {
        Record *x = userdata;
        LogContext mine;
        log_context_swap(&x->log, &mine);
        record_write(s, x);
        log_context_swap(&mine, NULL);
        record_free(x);
}

/* Records a change KVM has made. The write is deferred until the reply is sent (store_defer():
 * the HTTP layer flushes it then, and any other use of the inventory in this process before that
 * flushes it first), so the client does not wait for it; crash in between and the row the change
 * left pending is resolved at the next start (memslots_sync()), with an event. When the copies or
 * the queueing fail, it is written now. */
static void record_result(Manager *m, const VmRecord *r, const char *actor, const char *action, unsigned as_id,
                          unsigned slot, json_object *row, json_object *detail) {
        Record *x = calloc(1, sizeof *x);
        if (x) {
                *x = (Record){ .m = m, .action = action, .as_id = as_id, .slot = slot, .name = strdup(r->name),
                               .actor = strdup(actor) };
                memcpy(x->uuid, r->uuid, sizeof x->uuid);
                log_context_save(&x->log);
                /* deep copies: json-c's reference counts are not atomic, and the reply still uses these */
                if ((!row || json_object_deep_copy(row, &x->row, NULL) >= 0) &&
                    json_object_deep_copy(detail, &x->detail, NULL) >= 0 && x->name && x->actor &&
                    store_defer(m->store, record_write_deferred, x) >= 0)
                        return;
                record_free(x);
        }
        Record now = { .m = m, .action = action, .as_id = as_id, .slot = slot, .name = r->name, .actor = (char *) actor,
                       .row = row, .detail = detail };
        memcpy(now.uuid, r->uuid, sizeof now.uuid);
        record_write(m->store, &now);
}

static int do_create(Manager *m, const VmRecord *r, const char *ctl, void *userdata, VmError *e) {
        Op *op = userdata;
        _cleanup_(live_done) Live l = {};
        _cleanup_json_ json_object *params = NULL, *pending = NULL;
        MemslotError me;
        MemslotInfo req;
        bool have_slot = false;
        int k;

        if ((k = parse_create(op->body, &req, &have_slot, e)) < 0 || (k = need_vmm(r, ctl, "add a memslot", e)) < 0 ||
            (k = live_get_for_change(r, ctl, req.backing == MEMSLOT_BACKING_HUGETLB, &l, e)) < 0)
                return k;
        memslot_error_init(&me);
        if (!have_slot && memslot_pick_id(&l.limits, l.infos, l.n, req.as_id, &req.slot) < 0)
                return set_error(e, 409, "memslot_no_free_id", NULL, "every slot id of address space %u is in use", req.as_id);
        k = memslot_check_create(&l.limits, l.infos, l.n, &req, &me);
        if (k < 0) {
                error_from_rules(e, &me);
                event(m, op->actor, r, "memslot_create", "refused", NULL, e);
                return k;
        }
        /* pending: the row exists before KVM has the slot, so a crash in between leaves a trace that
         * reconciliation resolves from the VMM's table */
        if (memslot_info_to_json(&req, "pending", &pending) < 0)
                return set_error(e, 500, "internal", NULL, "out of memory");
        k = store_memslot_put(m->store, r->uuid, pending, "pending");
        if (k < 0)
                return set_error(e, 500, "internal", NULL, "inventory: %s", strerror(-k));
        params = json_object_get(pending);
        json_object_object_del(params, "role");
        json_object_object_del(params, "state");
        k = call(ctl, "memslot.create", params, &op->result, e);
        if (k < 0) {
                store_memslot_delete(m->store, r->uuid, req.as_id, req.slot);
                event(m, op->actor, r, "memslot_create", "failed", pending, e);
                return k;
        }
        live_update_and_keep(r, &l, req.slot, req.as_id, op->result);
        record_result(m, r, op->actor, "memslot_create", req.as_id, req.slot, op->result, op->result);
        return 0;
}

int memslots_create(Manager *m, const char *id, json_object *body, const char *actor, json_object **ret, VmError *e) {
        Op op = { .body = body, .actor = actor };
        int k = vms_locked(m, id, do_create, &op, e);
        if (k >= 0)
                *ret = op.result;
        return k;
}

/* Marks the row (state) for the duration of the VMM call; puts it back as it was on failure. The
 * usual row is active: one conditional update marks it and the undo flips it back. Any other row
 * (one a failed record left behind, say) is read first and written back whole. */
static int change(Manager *m, const VmRecord *r, const char *ctl, Op *op, const Live *l, const char *method,
                  json_object *params, const char *state, const char *action, VmError *e) {
        _cleanup_json_ json_object *before = NULL;
        bool swapped = store_memslot_swap_state(m->store, r->uuid, op->as_id, op->slot, "active", state) >= 0;
        bool had_row = swapped;
        if (!swapped && store_memslot_get(m->store, r->uuid, op->as_id, op->slot, &before) >= 0) {
                had_row = true;
                int k = store_memslot_set_state(m->store, r->uuid, op->as_id, op->slot, state);
                if (k < 0)
                        return set_error(e, 500, "internal", NULL, "inventory: %s", strerror(-k));
        }
        int k = call(ctl, method, params, &op->result, e);
        if (k < 0) {
                if (swapped)
                        store_memslot_swap_state(m->store, r->uuid, op->as_id, op->slot, state, "active");
                else if (had_row)
                        store_memslot_put(m->store, r->uuid, before, NULL);
                int i = before ? -1 : memslot_find(l->infos, l->n, op->slot, (uint16_t) op->as_id);
                if (i >= 0 && memslot_info_to_json(&l->infos[i], "active", &before) < 0)
                        before = NULL;
                event(m, op->actor, r, action, "failed", before, e);
                return k;
        }
        return 0;
}

static int do_patch(Manager *m, const VmRecord *r, const char *ctl, void *userdata, VmError *e) {
        static const char *const keys[] = { "gpa", "flags", "force", NULL };
        static const char *const flag_keys[] = { "dirty_log", "readonly", NULL };
        Op *op = userdata;
        _cleanup_(live_done) Live l = {};
        _cleanup_json_ json_object *params = json_object_new_object();
        json_object *flags = NULL;
        MemslotError me;
        JsonError je = {};
        uint64_t gpa = 0;
        bool dirty_log = false, readonly = false, force = op->force;
        int k, has_gpa, has_ro = 0;

        if (!params)
                return set_error(e, 500, "internal", NULL, "out of memory");
        if (json_expect_object(op->body, "$", &je) < 0 || json_check_keys(op->body, "$", keys, &je) < 0 ||
            (has_gpa = json_get_size(op->body, "$", "gpa", false, 0, UINT64_MAX, &gpa, &je)) < 0 ||
            json_get_object(op->body, "$", "flags", false, &flags, &je) < 0 ||
            json_get_bool(op->body, "$", "force", false, &force, &je) < 0)
                return bad_body(e, &je);
        if ((has_gpa > 0) == (flags != NULL))
                return set_error(e, 400, "invalid_argument", NULL, "$: give either gpa (move) or flags.dirty_log, not %s",
                                 has_gpa > 0 ? "both" : "neither");
        if (flags && (json_check_keys(flags, "$.flags", flag_keys, &je) < 0 ||
                      json_get_bool(flags, "$.flags", "dirty_log", true, &dirty_log, &je) < 0 ||
                      (has_ro = json_get_bool(flags, "$.flags", "readonly", false, &readonly, &je)) < 0))
                return bad_body(e, &je);
        if ((k = need_vmm(r, ctl, "change a memslot", e)) < 0 || (k = live_get_for_change(r, ctl, false, &l, e)) < 0)
                return k;
        memslot_error_init(&me);
        const char *action = has_gpa > 0 ? "memslot_move" : "memslot_flags";
        if (has_gpa > 0)
                k = memslot_check_move(&l.limits, l.infos, l.n, op->slot, (uint16_t) op->as_id, gpa, vm_live(r), force, &me);
        else
                k = memslot_check_set_flags(&l.limits, l.infos, l.n, op->slot, (uint16_t) op->as_id, dirty_log,
                                            has_ro > 0 ? readonly : -1, &me);
        if (k < 0) {
                error_from_rules(e, &me);
                event(m, op->actor, r, action, "refused", NULL, e);
                return k;
        }
        json_add_uint(params, "slot", op->slot);
        json_add_uint(params, "as_id", op->as_id);
        if (has_gpa > 0) {
                json_add_uint(params, "gpa", gpa);
                json_add_bool(params, "force", force);
        } else
                json_add(params, "flags", json_object_get(flags));
        k = change(m, r, ctl, op, &l, has_gpa > 0 ? "memslot.move" : "memslot.set_flags", params,
                   has_gpa > 0 ? "moving" : "updating", action, e);
        if (k < 0)
                return k;
        live_update_and_keep(r, &l, op->slot, (uint16_t) op->as_id, op->result);
        record_result(m, r, op->actor, action, op->as_id, op->slot, op->result, op->result);
        return 0;
}

int memslots_patch(Manager *m, const char *id, unsigned as_id, unsigned slot, json_object *body, bool force,
                   const char *actor, json_object **ret, VmError *e) {
        Op op = { .body = body, .actor = actor, .as_id = as_id, .slot = slot, .force = force };
        int k = vms_locked(m, id, do_patch, &op, e);
        if (k >= 0)
                *ret = op.result;
        return k;
}

static int do_delete(Manager *m, const VmRecord *r, const char *ctl, void *userdata, VmError *e) {
        Op *op = userdata;
        _cleanup_(live_done) Live l = {};
        _cleanup_json_ json_object *params = json_object_new_object();
        MemslotError me;
        int k;

        if (!params)
                return set_error(e, 500, "internal", NULL, "out of memory");
        if ((k = need_vmm(r, ctl, "delete a memslot", e)) < 0 || (k = live_get_for_change(r, ctl, false, &l, e)) < 0)
                return k;
        memslot_error_init(&me);
        k = memslot_check_delete(&l.limits, l.infos, l.n, op->slot, (uint16_t) op->as_id, vm_live(r), op->force, &me);
        if (k < 0) {
                error_from_rules(e, &me);
                event(m, op->actor, r, "memslot_delete", "refused", NULL, e);
                return k;
        }
        json_add_uint(params, "slot", op->slot);
        json_add_uint(params, "as_id", op->as_id);
        json_add_bool(params, "force", op->force);
        k = change(m, r, ctl, op, &l, "memslot.delete", params, "deleting", "memslot_delete", e);
        if (k < 0)
                return k;
        live_update_and_keep(r, &l, op->slot, (uint16_t) op->as_id, NULL);
        record_result(m, r, op->actor, "memslot_delete", op->as_id, op->slot, NULL, op->result);
        return 0;
}

int memslots_delete(Manager *m, const char *id, unsigned as_id, unsigned slot, bool force, const char *actor,
                    json_object **ret, VmError *e) {
        Op op = { .actor = actor, .as_id = as_id, .slot = slot, .force = force };
        int k = vms_locked(m, id, do_delete, &op, e);
        if (k >= 0)
                *ret = op.result;
        return k;
}

static int do_dirty_log(Manager *m, const VmRecord *r, const char *ctl, void *userdata, VmError *e) {
        Op *op = userdata;
        _cleanup_json_ json_object *params = json_object_new_object();
        int k;
        (void) m;
        if (!params)
                return set_error(e, 500, "internal", NULL, "out of memory");
        if ((k = need_vmm(r, ctl, "read a dirty log", e)) < 0)
                return k;
        /* The VMM checks the slot and its flags itself (same rules); one round trip keeps this path fast. */
        json_add_uint(params, "slot", op->slot);
        json_add_uint(params, "as_id", op->as_id);
        json_add_bool(params, "clear", op->clear);
        json_add_bool(params, "bitmap", op->bitmap);
        return call(ctl, "memslot.dirty_log", params, &op->result, e);
}

int memslots_dirty_log(Manager *m, const char *id, unsigned as_id, unsigned slot, bool clear, bool bitmap,
                       json_object **ret, VmError *e) {
        Op op = { .as_id = as_id, .slot = slot, .clear = clear, .bitmap = bitmap };
        int k = vms_locked(m, id, do_dirty_log, &op, e);
        if (k >= 0)
                *ret = op.result;
        return k;
}
