/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the domain XML mapping. Whatever the input, import must not crash, leak or read
 * outside its buffer; when it succeeds, the spec must be valid, and export followed by import must give
 * the same spec again with no warnings. The first byte picks strict mode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/domain-xml.h"
#include "json-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip(json_object *spec_json) {
        _cleanup_json_ json_object *again = NULL, *warnings = NULL;
        _cleanup_vm_spec_ VmSpec *spec = NULL;
        _cleanup_free_ char *xml = NULL;
        DomainXmlExportOptions eopts = { .nested_feature = "vmx" };
        DomainXmlError e = {};
        JsonError je;
        size_t len;
        int r;

        if (vm_spec_from_json(spec_json, &spec, &je) < 0) {
                fprintf(stderr, "imported spec is invalid: %s: %s\n", je.path, je.message);
                abort();
        }
        r = domain_xml_from_spec(spec, NULL, &eopts, &xml, &len);
        if (r == -ENOMEM)
                return;
        if (r < 0) {
                fprintf(stderr, "export failed: %d\n", r);
                abort();
        }
        r = domain_xml_to_spec(xml, len, NULL, &again, &warnings, &e);
        if (r == -ENOMEM)
                return;
        if (r < 0) {
                fprintf(stderr, "re-import failed: %s\n%s\n%s\n", e.message,
                        e.details ? json_to_string(e.details) : "", xml);
                abort();
        }
        if (strcmp(json_to_string(again), json_to_string(spec_json)) != 0 ||
            json_object_array_length(warnings) != 0) {
                fprintf(stderr, "round trip differs:\n%s\n%s\n%s\n", json_to_string(spec_json), json_to_string(again),
                        json_to_string(warnings));
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_json_ json_object *spec = NULL, *warnings = NULL;
        DomainXmlOptions opts = {};
        DomainXmlError e = {};
        int r;

        if (size < 1)
                return 0;
        opts.strict = data[0] & 1;
        r = domain_xml_to_spec((const char *) data + 1, size - 1, &opts, &spec, &warnings, &e);
        if (r == -EINVAL) {
                if (!e.details || domain_xml_error_http_status(&e) < 400)
                        abort();
                domain_xml_error_done(&e);
                return 0;
        }
        if (r < 0)
                return 0;
        check_round_trip(spec);
        return 0;
}
