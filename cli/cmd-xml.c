/* SPDX-License-Identifier: MIT */
/* kvmfleetctl vm define FILE.xml [--strict] | vm dumpxml VM: libvirt domain XML in and out. */
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "fd-util.h"
#include "json-util.h"
#include "str-util.h"

#define DOMAIN_FILE_MAX (1u << 20)

int cmd_vm_define(Client *c, int argc, char **argv) {
        static const struct option options[] = { { "strict", no_argument, NULL, 's' }, {} };
        _cleanup_free_ char *xml = NULL;
        ClientResponse resp;
        bool strict = false;
        size_t size;
        int o, r;

        optind = 0;
        while ((o = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                if (o != 's')
                        return EXIT_USAGE;
                strict = true;
        }
        if (optind + 1 != argc) {
                fprintf(stderr, "kvmfleetctl: vm define needs one domain XML file (- for stdin)\n");
                return EXIT_USAGE;
        }
        r = read_full_file(streq(argv[optind], "-") ? "/dev/stdin" : argv[optind], DOMAIN_FILE_MAX, &xml, &size);
        if (r < 0) {
                fprintf(stderr, "kvmfleetctl: cannot read %s: %s\n", argv[optind], strerror(-r));
                return EXIT_FAILED;
        }
        if (client_request(c, "POST", strict ? "/v1/vms?strict=true" : "/v1/vms", "application/xml", xml, size, &resp) < 0)
                return EXIT_UNREACHABLE;
        if (resp.status < 200 || resp.status >= 300) {
                json_object *err = NULL, *details = NULL, *refused = NULL;
                r = client_report_error(&resp);
                /* One line per refused element, so that a whole domain can be fixed at once. */
                if (resp.body && json_object_object_get_ex(resp.body, "error", &err) &&
                    json_object_object_get_ex(err, "details", &details) &&
                    json_object_object_get_ex(details, "refused", &refused))
                        for (size_t i = 0; i < json_object_array_length(refused); i++) {
                                json_object *item = json_object_array_get_idx(refused, i);
                                fprintf(stderr, "  %s: %s\n", json_str(item, "xpath") ?: "?", json_str(item, "reason") ?: "");
                        }
                client_response_done(&resp);
                return r;
        }
        if (c->json_output)
                print_json(resp.body);
        else {
                json_object *warnings = NULL;
                printf("VM %s (%s) defined\n", json_str(resp.body, "name") ?: "?", json_str(resp.body, "uuid") ?: "?");
                if (json_object_object_get_ex(resp.body, "warnings", &warnings))
                        for (size_t i = 0; i < json_object_array_length(warnings); i++) {
                                json_object *item = json_object_array_get_idx(warnings, i);
                                printf("warning: %s: %s\n", json_str(item, "xpath") ?: "?", json_str(item, "reason") ?: "");
                        }
        }
        client_response_done(&resp);
        return EXIT_OK;
}

int cmd_vm_dumpxml(Client *c, int argc, char **argv) {
        ClientResponse resp;
        char path[512];
        int r;

        optind = 1; /* no options to parse: the arguments start at argv[1] */
        if (argc != 2 || argv[1][0] == '-') {
                fprintf(stderr, "kvmfleetctl: vm dumpxml needs exactly one VM (uuid or name)\n");
                return EXIT_USAGE;
        }
        char *eid = curl_easy_escape(NULL, argv[1], 0);
        snprintf(path, sizeof path, "/v1/vms/%s?format=xml", eid ? eid : "");
        curl_free(eid);
        if (client_request(c, "GET", path, NULL, NULL, 0, &resp) < 0)
                return EXIT_UNREACHABLE;
        if (resp.status < 200 || resp.status >= 300) {
                r = client_report_error(&resp);
                client_response_done(&resp);
                return r;
        }
        fwrite(resp.raw, 1, resp.raw_size, stdout);
        client_response_done(&resp);
        return EXIT_OK;
}
