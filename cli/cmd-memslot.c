/* SPDX-License-Identifier: MIT */
/* kvmfleetctl memslot list|add|move|set|delete|dirty-log: a VM's KVM memslots
 * (/v1/vms/{id}/memslots). */
#include <curl/curl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "json-util.h"
#include "str-util.h"
#include "table.h"

static int request(Client *c, const char *method, const char *path, json_object *body, json_object **ret) {
        ClientResponse resp;
        const char *text = body ? json_to_string(body) : NULL;
        if (client_request(c, method, path, text ? "application/json" : NULL, text, text ? strlen(text) : 0, &resp) < 0)
                return EXIT_UNREACHABLE;
        if (resp.status < 200 || resp.status >= 300) {
                int e = client_report_error(&resp);
                client_response_done(&resp);
                return e;
        }
        *ret = resp.body ? json_object_get(resp.body) : NULL;
        client_response_done(&resp);
        return EXIT_OK;
}

/* "/v1/vms/VM/memslots[/SLOT][suffix]" with VM escaped; SLOT must be a number. */
static int memslot_path(char *buf, size_t n, const char *vm, const char *slot, const char *suffix) {
        unsigned s;
        char *e = curl_easy_escape(NULL, vm, 0);
        if (!e)
                return EXIT_FAILED;
        if (slot && safe_atou(slot, &s) < 0) {
                curl_free(e);
                fprintf(stderr, "kvmfleetctl: SLOT must be a slot number, not \"%s\"\n", slot);
                return EXIT_USAGE;
        }
        if (slot)
                snprintf(buf, n, "/v1/vms/%s/memslots/%u%s", e, s, suffix ? suffix : "");
        else
                snprintf(buf, n, "/v1/vms/%s/memslots", e);
        curl_free(e);
        return EXIT_OK;
}

static int args(int argc, char **argv, int want, const char *usage) {
        if (argc - optind != want) {
                fprintf(stderr, "kvmfleetctl: usage: kvmfleetctl %s\n", usage);
                return EXIT_USAGE;
        }
        return EXIT_OK;
}

static void print_slot(json_object *s) {
        json_object *flags = NULL, *v;
        json_object_object_get_ex(s, "flags", &flags);
        bool dirty = flags && json_object_object_get_ex(flags, "dirty_log", &v) && json_object_get_boolean(v);
        bool ro = flags && json_object_object_get_ex(flags, "readonly", &v) && json_object_get_boolean(v);
        printf("slot %s as %s gpa 0x%" PRIx64 " size %s %s%s%s %s %s\n", json_str(s, "slot") ?: "-", json_str(s, "as_id") ?: "0",
               json_object_object_get_ex(s, "gpa", &v) ? (uint64_t) json_object_get_int64(v) : 0,
               json_str(s, "size") ?: "-", json_str(s, "backing") ?: "-", dirty ? " dirty_log" : "", ro ? " readonly" : "",
               json_str(s, "role") ?: "-", json_str(s, "state") ?: "-");
        if (json_str(s, "guest_impact"))
                printf("guest impact: %s\n", json_str(s, "guest_impact"));
}

static int finish(Client *c, int r, json_object *o, void (*print)(json_object *)) {
        if (r == EXIT_OK && o) {
                if (c->json_output)
                        print_json(o);
                else
                        print(o);
        }
        json_object_put(o);
        return r;
}

static void print_list(json_object *o) {
        static const char *const headers[] = { "SLOT", "AS", "GPA", "SIZE", "FLAGS", "BACKING", "ROLE", "STATE" };
        json_object *arr = NULL;
        Table *t = table_new(ELEMENTSOF(headers), headers);
        if (!t || !json_object_object_get_ex(o, "memslots", &arr)) {
                table_free(t);
                return;
        }
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *s = json_object_array_get_idx(arr, i), *flags = NULL, *v;
                char gpa[32], fl[32] = "";
                json_object_object_get_ex(s, "flags", &flags);
                snprintf(gpa, sizeof gpa, "0x%" PRIx64, json_object_object_get_ex(s, "gpa", &v) ? (uint64_t) json_object_get_int64(v) : 0);
                if (flags && json_object_object_get_ex(flags, "dirty_log", &v) && json_object_get_boolean(v))
                        strcat(fl, "dirty_log ");
                if (flags && json_object_object_get_ex(flags, "readonly", &v) && json_object_get_boolean(v))
                        strcat(fl, "readonly");
                const char *cells[] = { json_str(s, "slot"), json_str(s, "as_id"), gpa, json_str(s, "size"),
                                        fl[0] ? strstrip(fl) : NULL, json_str(s, "backing"), json_str(s, "role"),
                                        json_str(s, "state") };
                table_add_row(t, cells);
        }
        table_print(t);
        table_free(t);
}

int cmd_memslot_list(Client *c, int argc, char **argv) {
        char path[512];
        json_object *o = NULL;
        int r;
        optind = 1; /* no options to parse: the arguments start at argv[1] */
        if ((r = args(argc, argv, 1, "memslot list VM")) != EXIT_OK ||
            (r = memslot_path(path, sizeof path, argv[optind], NULL, NULL)) != EXIT_OK)
                return r;
        r = request(c, "GET", path, NULL, &o);
        return finish(c, r, o, print_list);
}

static int add_size(json_object *o, const char *key, const char *opt, const char *value) {
        uint64_t v;
        if (parse_size(value, &v) < 0) {
                fprintf(stderr, "kvmfleetctl: --%s must be a size or address (bytes, 0x..., or with a unit), not \"%s\"\n",
                        opt, value);
                return EXIT_USAGE;
        }
        json_add_uint(o, key, v);
        return EXIT_OK;
}

int cmd_memslot_add(Client *c, int argc, char **argv) {
        static const struct option options[] = {
                { "gpa", required_argument, NULL, 'g' },
                { "size", required_argument, NULL, 's' },
                { "slot", required_argument, NULL, 'n' },
                { "backing", required_argument, NULL, 'b' },
                { "guest-memfd-offset", required_argument, NULL, 'o' },
                { "dirty-log", no_argument, NULL, 'd' },
                { "readonly", no_argument, NULL, 'r' },
                {},
        };
        _cleanup_json_ json_object *body = json_object_new_object(), *flags = json_object_new_object();
        json_object *o = NULL;
        char path[512];
        unsigned slot;
        int ch, r;

        optind = 0; /* 0: glibc re-initializes, so options may follow VM and SLOT */
        while ((ch = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                r = EXIT_OK;
                switch (ch) {
                case 'g': r = add_size(body, "gpa", "gpa", optarg); break;
                case 's': r = add_size(body, "size", "size", optarg); break;
                case 'o': r = add_size(body, "guest_memfd_offset", "guest-memfd-offset", optarg); break;
                case 'n':
                        if (safe_atou(optarg, &slot) < 0) {
                                fprintf(stderr, "kvmfleetctl: --slot must be a slot number\n");
                                return EXIT_USAGE;
                        }
                        json_add_uint(body, "slot", slot);
                        break;
                case 'b': json_add_string(body, "backing", optarg); break;
                case 'd': json_add_bool(flags, "dirty_log", true); break;
                case 'r': json_add_bool(flags, "readonly", true); break;
                default: return EXIT_USAGE;
                }
                if (r != EXIT_OK)
                        return r;
        }
        if ((r = args(argc, argv, 1, "memslot add VM --gpa A --size S [...]")) != EXIT_OK ||
            (r = memslot_path(path, sizeof path, argv[optind], NULL, NULL)) != EXIT_OK)
                return r;
        json_add(body, "flags", json_object_get(flags));
        r = request(c, "POST", path, body, &o);
        return finish(c, r, o, print_slot);
}

int cmd_memslot_move(Client *c, int argc, char **argv) {
        static const struct option options[] = {
                { "gpa", required_argument, NULL, 'g' },
                { "force", no_argument, NULL, 'f' },
                {},
        };
        _cleanup_json_ json_object *body = json_object_new_object();
        json_object *o = NULL;
        char path[512];
        bool force = false;
        int ch, r;

        optind = 0; /* 0: glibc re-initializes, so options may follow VM and SLOT */
        while ((ch = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (ch) {
                case 'g':
                        if ((r = add_size(body, "gpa", "gpa", optarg)) != EXIT_OK)
                                return r;
                        break;
                case 'f': force = true; break;
                default: return EXIT_USAGE;
                }
        if ((r = args(argc, argv, 2, "memslot move VM SLOT --gpa A [--force]")) != EXIT_OK ||
            (r = memslot_path(path, sizeof path, argv[optind], argv[optind + 1], force ? "?force=true" : NULL)) != EXIT_OK)
                return r;
        r = request(c, "PATCH", path, body, &o);
        return finish(c, r, o, print_slot);
}

int cmd_memslot_set(Client *c, int argc, char **argv) {
        static const struct option options[] = {
                { "dirty-log", required_argument, NULL, 'd' },
                {},
        };
        _cleanup_json_ json_object *body = json_object_new_object(), *flags = json_object_new_object();
        json_object *o = NULL;
        char path[512];
        int ch, r, on = -1;

        optind = 0; /* 0: glibc re-initializes, so options may follow VM and SLOT */
        while ((ch = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (ch) {
                case 'd':
                        on = parse_boolean(optarg);
                        if (on < 0) {
                                fprintf(stderr, "kvmfleetctl: --dirty-log must be on or off\n");
                                return EXIT_USAGE;
                        }
                        break;
                default: return EXIT_USAGE;
                }
        if (on < 0) {
                fprintf(stderr, "kvmfleetctl: usage: kvmfleetctl memslot set VM SLOT --dirty-log on|off\n");
                return EXIT_USAGE;
        }
        if ((r = args(argc, argv, 2, "memslot set VM SLOT --dirty-log on|off")) != EXIT_OK ||
            (r = memslot_path(path, sizeof path, argv[optind], argv[optind + 1], NULL)) != EXIT_OK)
                return r;
        json_add_bool(flags, "dirty_log", on);
        json_add(body, "flags", json_object_get(flags));
        r = request(c, "PATCH", path, body, &o);
        return finish(c, r, o, print_slot);
}

static void print_deleted(json_object *o) {
        json_object *d;
        if (json_object_object_get_ex(o, "deleted", &d))
                printf("deleted ");
        print_slot(json_object_object_get_ex(o, "deleted", &d) ? d : o);
        if (json_str(o, "guest_impact"))
                printf("guest impact: %s\n", json_str(o, "guest_impact"));
}

int cmd_memslot_delete(Client *c, int argc, char **argv) {
        static const struct option options[] = {
                { "force", no_argument, NULL, 'f' },
                {},
        };
        json_object *o = NULL;
        char path[512];
        bool force = false;
        int ch, r;

        optind = 0; /* 0: glibc re-initializes, so options may follow VM and SLOT */
        while ((ch = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (ch) {
                case 'f': force = true; break;
                default: return EXIT_USAGE;
                }
        if ((r = args(argc, argv, 2, "memslot delete VM SLOT [--force]")) != EXIT_OK ||
            (r = memslot_path(path, sizeof path, argv[optind], argv[optind + 1], force ? "?force=true" : NULL)) != EXIT_OK)
                return r;
        r = request(c, "DELETE", path, NULL, &o);
        return finish(c, r, o, print_deleted);
}

static void print_dirty_log(json_object *o) {
        json_object *ranges = NULL;
        printf("dirty pages: %s of %s%s\n", json_str(o, "dirty_pages") ?: "-", json_str(o, "pages") ?: "-",
               json_str(o, "cleared") && streq(json_str(o, "cleared"), "true") ? " (cleared)" : "");
        if (json_object_object_get_ex(o, "ranges", &ranges))
                for (size_t i = 0; i < json_object_array_length(ranges); i++) {
                        json_object *rg = json_object_array_get_idx(ranges, i), *v;
                        uint64_t gpa = json_object_object_get_ex(rg, "gpa", &v) ? (uint64_t) json_object_get_int64(v) : 0;
                        uint64_t size = json_object_object_get_ex(rg, "size", &v) ? (uint64_t) json_object_get_int64(v) : 0;
                        printf("  0x%" PRIx64 "-0x%" PRIx64 " (%" PRIu64 " pages)\n", gpa, gpa + size, size / 4096);
                }
        if (json_str(o, "bitmap"))
                printf("bitmap: %s\n", json_str(o, "bitmap"));
}

int cmd_memslot_dirty_log(Client *c, int argc, char **argv) {
        static const struct option options[] = {
                { "clear", no_argument, NULL, 'c' },
                { "bitmap", no_argument, NULL, 'b' },
                {},
        };
        json_object *o = NULL;
        char path[512], query[64] = "";
        bool clear = false, bitmap = false;
        int ch, r;

        optind = 0; /* 0: glibc re-initializes, so options may follow VM and SLOT */
        while ((ch = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (ch) {
                case 'c': clear = true; break;
                case 'b': bitmap = true; break;
                default: return EXIT_USAGE;
                }
        snprintf(query, sizeof query, "/dirty-log?clear=%s&bitmap=%s", clear ? "true" : "false", bitmap ? "true" : "false");
        if ((r = args(argc, argv, 2, "memslot dirty-log VM SLOT [--clear] [--bitmap]")) != EXIT_OK ||
            (r = memslot_path(path, sizeof path, argv[optind], argv[optind + 1], query)) != EXIT_OK)
                return r;
        r = request(c, "GET", path, NULL, &o);
        return finish(c, r, o, print_dirty_log);
}
