/* SPDX-License-Identifier: MIT */
/* POST /v1/vms/{id}/snapshot; the restore half is POST /v1/vms with "restore_from" (api-vms.c). */
#include "api.h"
#include "json-util.h"
#include "snapshot.h"

int api_vm_snapshot(Manager *m, HttpRequest *req, HttpResponse *resp) {
        _cleanup_json_ json_object *body = NULL;
        VmError e = { 0 };
        VmRecord *r = NULL;
        json_object *o;
        int k;

        if (http_body_json(req, resp, &body) < 0)
                return 0;
        if (vms_snapshot(m, req->params[0], body, req->actor, &r, &e) < 0) {
                json_object *d = e.details;
                e.details = NULL;
                return http_reply_error(resp, e.status, e.code, d, "%s", e.message);
        }
        k = store_vm_to_json(r, &o);
        vm_record_free(r);
        if (k < 0)
                return k;
        return http_reply_json(resp, 200, o);
}
