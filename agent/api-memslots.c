/* SPDX-License-Identifier: MIT */
/* /v1/vms/{id}/memslots: a VM's KVM memslots. The work is in memslots.c; this file maps HTTP to it.
 * Query parameters: as_id (default 0) on the per-slot routes, force=true for DELETE and PATCH of a
 * ram slot of a live VM, clear and bitmap on dirty-log. */
#include <errno.h>
#include <stdio.h>

#include "api.h"
#include "json-util.h"
#include "memslots.h"
#include "str-util.h"

static int reply_error(HttpResponse *resp, VmError *e) {
        json_object *d = e->details;
        e->details = NULL;
        return http_reply_error(resp, e->status, e->code, d, "%s", e->message);
}

static int query_bool(const HttpRequest *req, HttpResponse *resp, const char *key, bool *ret) {
        const char *v = http_query(req, key);
        if (!v)
                return 0;
        int b = parse_boolean(v);
        if (b < 0) {
                json_object *d = json_object_new_object();
                json_add_string(d, "parameter", key);
                http_reply_error(resp, 400, "invalid_argument", d, "query parameter \"%s\" must be true or false, not \"%s\"",
                                 key, v);
                return -EINVAL;
        }
        *ret = b;
        return 1;
}

/* {slot} and ?as_id; -EINVAL with a 400 written. */
static int slot_params(const HttpRequest *req, HttpResponse *resp, unsigned *ret_slot, unsigned *ret_as_id) {
        unsigned slot;
        uint64_t as_id = 0;
        if (safe_atou(req->params[1], &slot) < 0) {
                json_object *d = json_object_new_object();
                json_add_string(d, "parameter", "slot");
                http_reply_error(resp, 400, "invalid_argument", d, "slot must be a non-negative integer, not \"%s\"",
                                 req->params[1]);
                return -EINVAL;
        }
        if (http_query_uint(req, resp, "as_id", 0, 65535, &as_id) < 0)
                return -EINVAL;
        *ret_slot = slot;
        *ret_as_id = (unsigned) as_id;
        return 0;
}

int api_memslots_list(Manager *m, HttpRequest *req, HttpResponse *resp) {
        json_object *o;
        VmError e = { 0 };
        if (memslots_list(m, req->params[0], &o, &e) < 0)
                return reply_error(resp, &e);
        return http_reply_json(resp, 200, o);
}

int api_memslots_create(Manager *m, HttpRequest *req, HttpResponse *resp) {
        _cleanup_json_ json_object *body = NULL;
        json_object *o;
        VmError e = { 0 };
        if (http_body_json(req, resp, &body) < 0)
                return 0;
        if (memslots_create(m, req->params[0], body, req->actor, &o, &e) < 0)
                return reply_error(resp, &e);
        return http_reply_json(resp, 201, o);
}

int api_memslot_get(Manager *m, HttpRequest *req, HttpResponse *resp) {
        unsigned slot, as_id;
        json_object *o;
        VmError e = { 0 };
        if (slot_params(req, resp, &slot, &as_id) < 0)
                return 0;
        if (memslots_get(m, req->params[0], as_id, slot, &o, &e) < 0)
                return reply_error(resp, &e);
        return http_reply_json(resp, 200, o);
}

int api_memslot_patch(Manager *m, HttpRequest *req, HttpResponse *resp) {
        _cleanup_json_ json_object *body = NULL;
        unsigned slot, as_id;
        bool force = false;
        json_object *o;
        VmError e = { 0 };
        if (slot_params(req, resp, &slot, &as_id) < 0 || query_bool(req, resp, "force", &force) < 0)
                return 0;
        if (http_body_json(req, resp, &body) < 0)
                return 0;
        if (memslots_patch(m, req->params[0], as_id, slot, body, force, req->actor, &o, &e) < 0)
                return reply_error(resp, &e);
        return http_reply_json(resp, 200, o);
}

int api_memslot_delete(Manager *m, HttpRequest *req, HttpResponse *resp) {
        unsigned slot, as_id;
        bool force = false;
        json_object *o;
        VmError e = { 0 };
        if (slot_params(req, resp, &slot, &as_id) < 0 || query_bool(req, resp, "force", &force) < 0)
                return 0;
        if (memslots_delete(m, req->params[0], as_id, slot, force, req->actor, &o, &e) < 0)
                return reply_error(resp, &e);
        return http_reply_json(resp, 200, o);
}

int api_memslot_dirty_log(Manager *m, HttpRequest *req, HttpResponse *resp) {
        unsigned slot, as_id;
        bool clear = false, bitmap = false;
        json_object *o;
        VmError e = { 0 };
        if (slot_params(req, resp, &slot, &as_id) < 0 || query_bool(req, resp, "clear", &clear) < 0 ||
            query_bool(req, resp, "bitmap", &bitmap) < 0)
                return 0;
        if (memslots_dirty_log(m, req->params[0], as_id, slot, clear, bitmap, &o, &e) < 0)
                return reply_error(resp, &e);
        return http_reply_json(resp, 200, o);
}
