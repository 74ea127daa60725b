/* SPDX-License-Identifier: MIT */
/* /v1/vms/{id}/vcpus/{n}/nested-state: a vCPU's KVM nested state on a paused VM, as the decoded
 * header plus the blob in base64 (JSON), or the blob alone (application/octet-stream). The VMM reads
 * and checks it (vmm/nested-control.c, docs/vmm-protocol.md "Nested state"); this file maps HTTP to
 * the VMM's nested_state_get/nested_state_set and records PUTs as events. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "json-util.h"
#include "manager.h"
#include "str-util.h"
#include "vmm/control-client.h"

#define NESTED_CONTROL_TIMEOUT_MS 5000
#define OCTET_STREAM "application/octet-stream"

typedef struct NestedRequest {
        const char *method;     /* the VMM's */
        unsigned vcpu;
        const char *data;       /* base64, for set */
        const char *actor;
        json_object *result;    /* owned, on success */
} NestedRequest;

_printf_(4, 5) static int set_error(VmError *e, unsigned status, const char *code, const char *fmt, ...) {
        va_list ap;
        e->status = status;
        e->code = code;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof e->message, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* The VMM's error {"code", "message", "details"?} as the HTTP error it stands for. */
static int error_from_vmm(VmError *e, json_object *err) {
        static const struct {
                const char *code;
                unsigned status;
        } map[] = {
                { "invalid_argument", 422 }, { "unsupported", 422 }, { "nested_state_rejected", 422 },
                { "invalid_state", 409 },    { "not_found", 404 },   { "payload_too_large", 413 },
        };
        json_object *v, *details = NULL;
        const char *code = json_object_object_get_ex(err, "code", &v) ? json_object_get_string(v) : "";
        const char *message = json_object_object_get_ex(err, "message", &v) ? json_object_get_string(v) : "";
        if (json_object_object_get_ex(err, "details", &details))
                e->details = json_object_get(details);
        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (streq(code, map[i].code))
                        return set_error(e, map[i].status, map[i].code, "%s", message);
        return set_error(e, 500, "vmm_failed", "the VMM failed: %s", message);
}

static void record_event(Manager *m, const VmRecord *r, const NestedRequest *nr, const VmError *e) {
        char object[48];
        json_object *d = json_object_new_object();
        snprintf(object, sizeof object, "vm/%s", r->uuid);
        if (d) {
                json_add_string(d, "name", r->name);
                json_add_uint(d, "vcpu", nr->vcpu);
                if (e) {
                        json_add_string(d, "code", e->code);
                        json_add_string(d, "message", e->message);
                } else {
                        json_object *v;
                        if (json_object_object_get_ex(nr->result, "format", &v))
                                json_add_string(d, "format", json_object_get_string(v));
                        if (json_object_object_get_ex(nr->result, "size", &v))
                                json_add(d, "size", json_object_get(v));
                }
        }
        manager_event(m, nr->actor, object, "nested_state_set", e ? "failed" : "ok", d);
        json_object_put(d);
}

static int locked_call(Manager *m, const VmRecord *r, const char *ctl, void *userdata, VmError *e) {
        NestedRequest *nr = userdata;
        _cleanup_json_ json_object *params = json_object_new_object(), *err = NULL;
        if (!ctl) {
                e->details = json_object_new_object();
                json_add_string(e->details, "state", r->state);
                json_add_string(e->details, "uuid", r->uuid);
                return set_error(e, 409, "invalid_state",
                                 "VM \"%s\" is %s: nested state exists only while it is paused", r->name, r->state);
        }
        if (!params || json_add_uint(params, "vcpu", nr->vcpu) < 0 || (nr->data && json_add_string(params, "data", nr->data) < 0))
                return set_error(e, 500, "internal", "out of memory");
        int k = vmm_control_call_full(ctl, nr->method, params, NESTED_CONTROL_TIMEOUT_MS, &nr->result, &err);
        if (k == 1)
                k = error_from_vmm(e, err);
        else if (k < 0)
                k = set_error(e, 500, "vmm_failed", "the VMM of \"%s\" did not answer %s: %s", r->name, nr->method, strerror(-k));
        /* refusals before the VMM is asked (not paused, unknown vCPU) change nothing and are not events */
        if (nr->data && (k >= 0 || (e->status != 409 && e->status != 404 && e->status != 500)))
                record_event(m, r, nr, k < 0 ? e : NULL);
        return k;
}

static int reply_error(HttpResponse *resp, VmError *e) {
        json_object *d = e->details;
        e->details = NULL;
        return http_reply_error(resp, e->status, e->code, d, "%s", e->message);
}

static int vcpu_param(const HttpRequest *req, HttpResponse *resp, unsigned *ret) {
        if (safe_atou(req->params[1], ret) < 0) {
                json_object *d = json_object_new_object();
                json_add_string(d, "parameter", "n");
                http_reply_error(resp, 400, "invalid_argument", d, "vCPU index must be a non-negative integer, not \"%s\"",
                                 req->params[1]);
                return -EINVAL;
        }
        return 0;
}

static int call(Manager *m, HttpRequest *req, HttpResponse *resp, NestedRequest *nr) {
        VmError e = { 0 };
        nr->actor = req->actor;
        int k = vms_locked(m, req->params[0], locked_call, nr, &e);
        if (k < 0) {
                json_object_put(TAKE_PTR(nr->result));
                return reply_error(resp, &e);
        }
        return 1;
}

int api_nested_state_get(Manager *m, HttpRequest *req, HttpResponse *resp) {
        NestedRequest nr = { .method = "nested_state_get" };
        json_object *v;
        if (vcpu_param(req, resp, &nr.vcpu) < 0)
                return 0;
        int k = call(m, req, resp, &nr);
        if (k <= 0)
                return k;
        if (!http_accepts(req, OCTET_STREAM))
                return http_reply_json(resp, 200, nr.result);

        _cleanup_json_ json_object *result = nr.result;
        void *blob = NULL;
        size_t len = 0;
        if (!json_object_object_get_ex(result, "data", &v) || base64_decode(json_object_get_string(v), &blob, &len) < 0)
                return http_reply_error(resp, 500, "vmm_failed", NULL, "the VMM's nested state is not valid base64");
        http_response_done(resp);
        resp->status = 200;
        resp->raw = blob;
        resp->raw_size = len;
        resp->content_type = OCTET_STREAM;
        return 0;
}

static int too_large(HttpResponse *resp, size_t size) {
        json_object *d = json_object_new_object();
        json_add_uint(d, "size", size);
        json_add_uint(d, "limit", NESTED_STATE_BODY_MAX);
        return http_reply_error(resp, 413, "payload_too_large", d, "a nested state of %zu bytes exceeds the limit of %d bytes",
                                size, NESTED_STATE_BODY_MAX);
}

int api_nested_state_put(Manager *m, HttpRequest *req, HttpResponse *resp) {
        NestedRequest nr = { .method = "nested_state_set" };
        _cleanup_json_ json_object *body = NULL;
        _cleanup_free_ char *encoded = NULL;
        if (vcpu_param(req, resp, &nr.vcpu) < 0)
                return 0;

        if (streq(req->content_type, OCTET_STREAM)) {
                if (req->body_size > NESTED_STATE_BODY_MAX)
                        return too_large(resp, req->body_size);
                if (req->body_size == 0)
                        return http_reply_error(resp, 422, "invalid_argument", NULL, "the nested state body is empty");
                encoded = base64_encode(req->body, req->body_size);
                if (!encoded)
                        return -ENOMEM;
                nr.data = encoded;
        } else if (streq(req->content_type, "application/json") || req->body_size == 0) {
                static const char *const keys[] = { "data", NULL };
                JsonError je = {};
                if (http_body_json(req, resp, &body) < 0)
                        return 0;
                if (json_check_keys(body, "$", keys, &je) < 0 || json_get_string(body, "$", "data", true, &nr.data, &je) < 0)
                        return http_reply_json_error(resp, 422, &je);
                /* base64 grows 3 bytes to 4 */
                if (strlen(nr.data) / 4 * 3 > NESTED_STATE_BODY_MAX)
                        return too_large(resp, strlen(nr.data) / 4 * 3);
        } else {
                json_object *d = json_object_new_object();
                json_add_string(d, "content_type", req->content_type);
                json_add_string(d, "expected", "application/json or " OCTET_STREAM);
                return http_reply_error(resp, 415, "unsupported_media_type", d,
                                        "a nested state is application/json {\"data\": base64} or " OCTET_STREAM ", not \"%s\"",
                                        req->content_type);
        }
        int k = call(m, req, resp, &nr);
        if (k <= 0)
                return k;
        return http_reply_json(resp, 200, nr.result);
}
