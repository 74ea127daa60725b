/* SPDX-License-Identifier: MIT */
/* kvmfleetctl events [--after ID] [--limit N] [--object NAME] */
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "json-util.h"
#include "str-util.h"
#include "table.h"

int cmd_events(Client *c, int argc, char **argv) {
        static const struct option options[] = {
                { "after", required_argument, NULL, 'a' },
                { "limit", required_argument, NULL, 'l' },
                { "object", required_argument, NULL, 'o' },
                {},
        };
        uint64_t after = 0, limit = 100;
        const char *object = NULL;
        _cleanup_json_ json_object *o = NULL;
        json_object *events = NULL;
        char path[1024];
        int ch, r;

        optind = 0;
        while ((ch = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (ch) {
                case 'a':
                        if (safe_atou64(optarg, &after) < 0) {
                                fprintf(stderr, "kvmfleetctl: --after must be an event id\n");
                                return EXIT_USAGE;
                        }
                        break;
                case 'l':
                        if (safe_atou64(optarg, &limit) < 0 || limit < 1 || limit > 1000) {
                                fprintf(stderr, "kvmfleetctl: --limit must be 1-1000\n");
                                return EXIT_USAGE;
                        }
                        break;
                case 'o': object = optarg; break;
                default: return EXIT_USAGE;
                }
        if (optind < argc) {
                fprintf(stderr, "kvmfleetctl: events: unexpected argument \"%s\"\n", argv[optind]);
                return EXIT_USAGE;
        }
        int n = snprintf(path, sizeof path, "/v1/events?after=%llu&limit=%llu", (unsigned long long) after,
                         (unsigned long long) limit);
        if (object) {
                char *esc = curl_easy_escape(NULL, object, 0);
                snprintf(path + n, sizeof path - (size_t) n, "&object=%s", esc ? esc : "");
                curl_free(esc);
        }
        r = client_get_json(c, path, &o);
        if (r != EXIT_OK)
                return r;
        if (c->json_output) {
                print_json(o);
                return EXIT_OK;
        }
        json_object_object_get_ex(o, "events", &events);
        Table *t = table_new(7, (const char *const[]){ "ID", "TIME", "ACTOR", "OBJECT", "ACTION", "RESULT", "DETAIL" });
        for (size_t i = 0; events && i < json_object_array_length(events); i++) {
                json_object *e = json_object_array_get_idx(events, i);
                table_add_row(t, (const char *const[]){ json_str(e, "id"), json_str(e, "time"), json_str(e, "actor"), json_str(e, "object"),
                                                         json_str(e, "action"), json_str(e, "result"), json_str(e, "detail") });
        }
        table_print(t);
        table_free(t);
        return EXIT_OK;
}
