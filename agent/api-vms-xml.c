/* SPDX-License-Identifier: MIT */
/* /v1/vms in libvirt domain XML: POST with Content-Type: application/xml defines a VM from a domain
 * (?strict=true refuses everything not mapped), GET with Accept: application/xml returns one. The
 * mapping is agent/domain-xml.c; creation is the same vms_create() the JSON body goes through. */
#include <errno.h>
#include <string.h>

#include "api.h"
#include "domain-xml.h"
#include "json-util.h"
#include "str-util.h"
#include "vms.h"

bool api_content_type_is_xml(const char *content_type) {
        return streq(content_type, "application/xml") || streq(content_type, "text/xml");
}

int api_vms_create_xml(Manager *m, HttpRequest *req, HttpResponse *resp) {
        _cleanup_json_ json_object *spec = NULL, *warnings = NULL;
        DomainXmlOptions opts = {};
        DomainXmlError xe = {};
        VmError e = {};
        VmRecord *record = NULL;
        json_object *vm;
        const char *strict = http_query(req, "strict");
        int r;

        if (strict) {
                int b = parse_boolean(strict);
                if (b < 0) {
                        json_object *d = json_object_new_object();
                        json_add_string(d, "parameter", "strict");
                        return http_reply_error(resp, 400, "invalid_argument", d,
                                                "query parameter \"strict\" must be true or false, not \"%s\"", strict);
                }
                opts.strict = b;
        }
        if (req->body_size == 0)
                return http_reply_error(resp, 400, "invalid_argument", NULL, "request body is required (a domain XML)");

        r = domain_xml_to_spec(req->body, req->body_size, &opts, &spec, &warnings, &xe);
        if (r == -EINVAL) {
                json_object *d = TAKE_PTR(xe.details);
                return http_reply_error(resp, domain_xml_error_http_status(&xe), domain_xml_error_code(&xe), d, "%s",
                                        xe.message);
        }
        if (r < 0)
                return r;

        if (vms_create(m, spec, req->actor, &record, &e) < 0) {
                json_object *d = TAKE_PTR(e.details);
                return http_reply_error(resp, e.status, e.code, d, "%s", e.message);
        }
        r = store_vm_to_json(record, &vm);
        vm_record_free(record);
        if (r < 0)
                return r;
        if (json_add(vm, "warnings", TAKE_PTR(warnings)) < 0) {
                json_object_put(vm);
                return -ENOMEM;
        }
        return http_reply_json(resp, 201, vm);
}

int api_vm_reply_xml(HttpResponse *resp, VmRecord *record) {
        _cleanup_vm_spec_ VmSpec *spec = NULL;
        char *xml = NULL;
        size_t len;
        JsonError je;
        int r;

        r = vm_spec_from_string(record->spec, strlen(record->spec), &spec, &je);
        if (r < 0) {
                json_object *d = json_object_new_object();
                json_add_string(d, "path", je.path);
                r = http_reply_error(resp, 500, "internal", d, "stored spec of VM %s is invalid: %s: %s", record->uuid,
                                     je.path, je.message);
                vm_record_free(record);
                return r;
        }
        r = domain_xml_from_spec(spec, record->uuid, NULL, &xml, &len);
        vm_record_free(record);
        if (r < 0)
                return r;
        free(resp->raw);
        resp->raw = xml;
        resp->raw_size = len;
        resp->content_type = "application/xml";
        resp->status = 200;
        return 0;
}
