/* SPDX-License-Identifier: MIT */
/* kvmfleetctl vm snapshot|restore (docs/snapshot.md) */
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "json-util.h"
#include "str-util.h"

/* POSTs body to path; on success prints "NAME UUID STATE" of the VM object (or the JSON). */
static int post_vm(Client *c, const char *path, json_object *body, const char *done) {
        ClientResponse resp;
        const char *text = json_to_string(body);
        if (client_request(c, "POST", path, "application/json", text, strlen(text), &resp) < 0)
                return EXIT_UNREACHABLE;
        if (resp.status < 200 || resp.status >= 300) {
                int e = client_report_error(&resp);
                client_response_done(&resp);
                return e;
        }
        if (c->json_output)
                print_json(resp.body);
        else
                printf("%s %s %s (%s)\n", json_str(resp.body, "name") ?: "-", json_str(resp.body, "uuid") ?: "-",
                       json_str(resp.body, "state") ?: "-", done);
        client_response_done(&resp);
        return EXIT_OK;
}

int cmd_vm_snapshot(Client *c, int argc, char **argv) {
        _cleanup_json_ json_object *body = json_object_new_object();
        if (argc != 3 || argv[1][0] == '-') {
                fprintf(stderr, "kvmfleetctl: usage: vm snapshot VM DIR (the VM paused, DIR absent or empty)\n");
                return EXIT_USAGE;
        }
        char *e = curl_easy_escape(NULL, argv[1], 0);
        char path[512];
        snprintf(path, sizeof path, "/v1/vms/%s/snapshot", e ? e : "");
        curl_free(e);
        if (!body || json_add_string(body, "dir", argv[2]) < 0)
                return EXIT_FAILED;
        return post_vm(c, path, body, "snapshot written");
}

int cmd_vm_restore(Client *c, int argc, char **argv) {
        static const struct option options[] = {
                { "name", required_argument, NULL, 'n' },
                { "uuid", required_argument, NULL, 'u' },
                { "paused", no_argument, NULL, 'p' },
                {},
        };
        _cleanup_json_ json_object *body = json_object_new_object();
        const char *name = NULL, *uuid = NULL;
        bool paused = false;
        int ch;

        optind = 0; /* 0: glibc re-initializes, so options may follow DIR */
        while ((ch = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (ch) {
                case 'n':
                        name = optarg;
                        break;
                case 'u':
                        uuid = optarg;
                        break;
                case 'p':
                        paused = true;
                        break;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind + 1 != argc) {
                fprintf(stderr, "kvmfleetctl: usage: vm restore DIR [--name N] [--uuid U] [--paused]\n");
                return EXIT_USAGE;
        }
        if (!body || json_add_string(body, "restore_from", argv[optind]) < 0 ||
            (name && json_add_string(body, "name", name) < 0) || (uuid && json_add_string(body, "uuid", uuid) < 0) ||
            (paused && json_add_bool(body, "paused", true) < 0))
                return EXIT_FAILED;
        return post_vm(c, "/v1/vms", body, "restored");
}
