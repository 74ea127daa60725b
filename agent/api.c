/* SPDX-License-Identifier: MIT */
/* The route table: every REST resource and the handler behind each method. */
#include "api.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "str-util.h"

typedef struct Route {
        const char *method;
        const char *pattern; /* "/v1/vms/{id}/start": {x} matches one non-empty segment */
        ApiHandler handler;
        bool any_body_type; /* the handler checks Content-Type itself (JSON or XML) */
} Route;

static const Route routes[] = {
        { "GET", "/v1/host", api_host_get, false },
        { "GET", "/v1/host/kvm", api_host_kvm_get, false },
        { "PUT", "/v1/host/kvm/params", api_host_kvm_params_put, false },
        { "POST", "/v1/host/kvm/reload", api_host_kvm_reload, false },
        { "GET", "/v1/health", api_health_get, false },
        { "GET", "/v1/events", api_events_get, false },
        { "GET", "/v1/vms", api_vms_list, false },
        { "POST", "/v1/vms", api_vms_create, true },
        { "GET", "/v1/vms/{id}", api_vm_get, false },
        { "DELETE", "/v1/vms/{id}", api_vm_delete, false },
        { "POST", "/v1/vms/{id}/start", api_vm_action, false },
        { "POST", "/v1/vms/{id}/stop", api_vm_action, false },
        { "POST", "/v1/vms/{id}/pause", api_vm_action, false },
        { "POST", "/v1/vms/{id}/resume", api_vm_action, false },
        { "POST", "/v1/vms/{id}/restart", api_vm_action, false },
        { "POST", "/v1/vms/{id}/snapshot", api_vm_snapshot, false },
        { "GET", "/v1/vms/{id}/console", api_vm_console, false },
        { "GET", "/v1/vms/{id}/stats", api_vm_stats, false },
        { "GET", "/v1/vms/{id}/memslots", api_memslots_list, false },
        { "POST", "/v1/vms/{id}/memslots", api_memslots_create, false },
        { "GET", "/v1/vms/{id}/memslots/{slot}", api_memslot_get, false },
        { "PATCH", "/v1/vms/{id}/memslots/{slot}", api_memslot_patch, false },
        { "DELETE", "/v1/vms/{id}/memslots/{slot}", api_memslot_delete, false },
        { "GET", "/v1/vms/{id}/memslots/{slot}/dirty-log", api_memslot_dirty_log, false },
        { "GET", "/v1/vms/{id}/apicv", api_vm_apicv_get, false },
        { "PATCH", "/v1/vms/{id}/apicv", api_vm_apicv_patch, false },
        { "GET", "/v1/vms/{id}/vcpus/{n}/lapic", api_vm_lapic_get, false },
        { "GET", "/v1/vms/{id}/vcpus/{n}/nested-state", api_nested_state_get, false },
        { "PUT", "/v1/vms/{id}/vcpus/{n}/nested-state", api_nested_state_put, true },
        { "GET", "/metrics", api_metrics_get, false },
};

/* Matches path against pattern; on success fills params (caller frees) and returns true. */
static bool route_match(const char *pattern, const char *path, HttpRequest *req) {
        const char *p = pattern, *s = path;
        unsigned n = 0;
        char *params[HTTP_MAX_PATH_PARAMS];

        while (*p && *s) {
                if (*p != '/' || *s != '/')
                        goto fail;
                p++, s++;
                size_t pl = strcspn(p, "/"), sl = strcspn(s, "/");
                if (p[0] == '{') {
                        if (sl == 0 || n >= HTTP_MAX_PATH_PARAMS)
                                goto fail;
                        params[n] = strndup(s, sl); /* libmicrohttpd has percent-decoded the path */
                        if (!params[n])
                                goto fail;
                        n++;
                } else if (pl != sl || strncmp(p, s, pl) != 0)
                        goto fail;
                p += pl, s += sl;
        }
        if (*p || (*s && !streq(s, "/")))
                goto fail;
        if (req) {
                memcpy(req->params, params, n * sizeof params[0]);
                req->n_params = n;
        } else
                for (unsigned i = 0; i < n; i++)
                        free(params[i]);
        return true;
fail:
        for (unsigned i = 0; i < n; i++)
                free(params[i]);
        return false;
}

void api_dispatch(Manager *m, HttpRequest *req, HttpResponse *resp) {
        char allow[96] = "";
        const Route *found = NULL;
        bool path_known = false;

        for (size_t i = 0; i < ELEMENTSOF(routes); i++) {
                if (!route_match(routes[i].pattern, req->path, NULL))
                        continue;
                path_known = true;
                if (!req->route)
                        req->route = routes[i].pattern; /* for the metrics, also on 405 and 415 */
                if (!strstr(allow, routes[i].method))
                        snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s", allow[0] ? ", " : "",
                                 routes[i].method);
                if (!found && streq(routes[i].method, req->method)) {
                        found = &routes[i];
                        req->route = found->pattern;
                }
        }
        /* HEAD is GET without a body; libmicrohttpd drops the body itself. */
        if (!found && streq(req->method, "HEAD"))
                for (size_t i = 0; i < ELEMENTSOF(routes) && !found; i++)
                        if (streq(routes[i].method, "GET") && route_match(routes[i].pattern, req->path, NULL))
                                found = &routes[i];

        if (!path_known) {
                json_object *d = json_object_new_object();
                json_add_string(d, "path", req->path);
                http_reply_error(resp, 404, "not_found", d, "no such resource: %s", req->path);
                return;
        }
        if (!found) {
                json_object *d = json_object_new_object();
                json_add_string(d, "method", req->method);
                json_add_string(d, "allow", allow);
                http_reply_error(resp, 405, "method_not_allowed", d, "%s is not allowed on %s (allowed: %s)", req->method,
                                 req->path, allow);
                strscpy(resp->allow, sizeof resp->allow, allow);
                return;
        }
        /* Bodies are JSON everywhere; handlers that accept other types check them themselves. */
        if (req->body_size > 0 && !found->any_body_type && !streq(req->content_type, "application/json")) {
                json_object *d = json_object_new_object();
                json_add_string(d, "content_type", req->content_type);
                json_add_string(d, "expected", "application/json");
                http_reply_error(resp, 415, "unsupported_media_type", d, "request body must be application/json, not \"%s\"",
                                 req->content_type[0] ? req->content_type : "(none)");
                return;
        }
        route_match(found->pattern, req->path, req);
        int r = found->handler(m, req, resp);
        if (r < 0 && resp->status == 0) {
                char rid[64];
                snprintf(rid, sizeof rid, "REQUEST_ID=%s", req->request_id);
                log_struct(LOG_ERR, r, LOG_FIELDS(rid), "%s %s failed: %m", req->method, req->path);
                http_reply_error(resp, r == -ENOMEM ? 503 : 500, "internal", NULL, "internal error: %s (request %s)",
                                 strerror(-r), req->request_id);
        }
}
