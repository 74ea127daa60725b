/* SPDX-License-Identifier: MIT */
/* kvmfleetctl vm create|list|show|start|stop|pause|resume|restart|delete|console|stats */
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "fd-util.h"
#include "json-util.h"
#include "str-util.h"
#include "table.h"

#define SPEC_FILE_MAX (4u << 20)

/* The VM id as a path segment. */
static char *escape_id(const char *id) {
        char *e = curl_easy_escape(NULL, id, 0);
        char *copy = e ? strdup(e) : NULL;
        curl_free(e);
        return copy;
}

static int one_id(int argc, char **argv, const char *verb, const char **ret) {
        if (optind + 1 != argc) {
                fprintf(stderr, "kvmfleetctl: vm %s needs exactly one VM (uuid or name)\n", verb);
                return EXIT_USAGE;
        }
        *ret = argv[optind];
        return EXIT_OK;
}

/* One line per disk and NIC, in the order the guest sees them (vda, vdb…; eth0…). */
static void print_devices(json_object *spec) {
        json_object *arr = NULL;
        if (spec && json_object_object_get_ex(spec, "disks", &arr) && json_object_is_type(arr, json_type_array))
                for (size_t i = 0; i < json_object_array_length(arr); i++) {
                        json_object *d = json_object_array_get_idx(arr, i), *ro = NULL;
                        bool readonly = json_object_object_get_ex(d, "readonly", &ro) && json_object_get_boolean(ro);
                        printf("Disk %-7zu %s%s%s%s\n", i, json_str(d, "path") ?: "-", readonly ? " (read-only)" : "",
                               json_str(d, "serial") ? " serial=" : "", json_str(d, "serial") ?: "");
                }
        if (spec && json_object_object_get_ex(spec, "nics", &arr) && json_object_is_type(arr, json_type_array))
                for (size_t i = 0; i < json_object_array_length(arr); i++) {
                        json_object *n = json_object_array_get_idx(arr, i);
                        printf("NIC %-8zu tap %s, mac %s\n", i, json_str(n, "tap") ?: "-", json_str(n, "mac") ?: "-");
                }
}

/* --disk PATH[,readonly][,serial=S] → {"path", "readonly"?, "serial"?} appended to spec.disks. */
static int add_disk(json_object *spec, const char *arg) {
        _cleanup_free_ char *copy = strdup(arg);
        json_object *arr, *d;
        char *save = NULL, *tok;
        if (!copy)
                return EXIT_FAILED;
        tok = strtok_r(copy, ",", &save);
        if (!tok || !*tok || arg[0] == ',') {
                fprintf(stderr, "kvmfleetctl: --disk needs PATH[,readonly][,serial=S], not \"%s\"\n", arg);
                return EXIT_USAGE;
        }
        d = json_object_new_object();
        json_add_string(d, "path", tok);
        while ((tok = strtok_r(NULL, ",", &save))) {
                if (streq(tok, "readonly") || streq(tok, "ro"))
                        json_add_bool(d, "readonly", true);
                else if (startswith(tok, "serial="))
                        json_add_string(d, "serial", tok + strlen("serial="));
                else {
                        fprintf(stderr, "kvmfleetctl: --disk: unknown option \"%s\" (readonly, serial=S)\n", tok);
                        json_object_put(d);
                        return EXIT_USAGE;
                }
        }
        if (!json_object_object_get_ex(spec, "disks", &arr)) {
                arr = json_object_new_array();
                json_add(spec, "disks", arr);
        }
        json_object_array_add(arr, d);
        return EXIT_OK;
}

/* --nic tap=NAME[,mac=M] → {"tap", "mac"?} appended to spec.nics. */
static int add_nic(json_object *spec, const char *arg) {
        _cleanup_free_ char *copy = strdup(arg);
        json_object *arr, *n;
        char *save = NULL, *tok;
        bool tap = false;
        if (!copy)
                return EXIT_FAILED;
        n = json_object_new_object();
        for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (startswith(tok, "tap=")) {
                        json_add_string(n, "tap", tok + strlen("tap="));
                        tap = true;
                } else if (startswith(tok, "mac="))
                        json_add_string(n, "mac", tok + strlen("mac="));
                else {
                        fprintf(stderr, "kvmfleetctl: --nic: unknown option \"%s\" (tap=NAME, mac=M)\n", tok);
                        json_object_put(n);
                        return EXIT_USAGE;
                }
        }
        if (!tap) {
                fprintf(stderr, "kvmfleetctl: --nic needs tap=NAME[,mac=M], not \"%s\"\n", arg);
                json_object_put(n);
                return EXIT_USAGE;
        }
        if (!json_object_object_get_ex(spec, "nics", &arr)) {
                arr = json_object_new_array();
                json_add(spec, "nics", arr);
        }
        json_object_array_add(arr, n);
        return EXIT_OK;
}

static void print_vm(json_object *vm) {
        json_object *spec = NULL, *vmm = NULL, *boot = NULL;
        json_object_object_get_ex(vm, "spec", &spec);
        json_object_object_get_ex(vm, "vmm", &vmm);
        if (spec)
                json_object_object_get_ex(spec, "boot", &boot);
        printf("Name:        %s\n", json_str(vm, "name") ?: "-");
        printf("UUID:        %s\n", json_str(vm, "uuid") ?: "-");
        printf("State:       %s\n", json_str(vm, "state") ?: "-");
        printf("vCPUs:       %s\n", json_str(spec, "vcpus") ?: "-");
        printf("Memory:      %s bytes\n", json_str(spec, "memory") ?: "-");
        printf("Boot:        %s\n", json_str(boot, "kernel") ?: json_str(boot, "raw") ?: "-");
        printf("Irqchip:     %s\n", json_str(spec, "irqchip") ?: "-");
        printf("On crash:    %s\n", json_str(spec, "on_crash") ?: "-");
        print_devices(spec);
        printf("VMM pid:     %s\n", json_str(vmm, "pid") ?: "-");
        printf("Exit reason: %s\n", json_str(vm, "exit_reason") ?: "-");
        printf("Created:     %s\n", json_str(vm, "created_at") ?: "-");
        printf("Updated:     %s\n", json_str(vm, "updated_at") ?: "-");
}

/* Sends method path with an optional JSON body; prints the VM object (or JSON) on success. */
static int vm_call(Client *c, const char *method, const char *path, json_object *body, bool print) {
        ClientResponse resp;
        const char *text = body ? json_to_string(body) : NULL;
        if (client_request(c, method, path, text ? "application/json" : NULL, text, text ? strlen(text) : 0, &resp) < 0)
                return EXIT_UNREACHABLE;
        if (resp.status < 200 || resp.status >= 300) {
                int e = client_report_error(&resp);
                client_response_done(&resp);
                return e;
        }
        if (print && resp.body) {
                if (c->json_output)
                        print_json(resp.body);
                else
                        print_vm(resp.body);
        }
        client_response_done(&resp);
        return EXIT_OK;
}

static int add_size(json_object *o, const char *key, const char *value) {
        uint64_t v;
        if (parse_size(value, &v) < 0) {
                fprintf(stderr, "kvmfleetctl: --%s must be a size (bytes, or with a unit such as 64MiB), not \"%s\"\n", key, value);
                return EXIT_USAGE;
        }
        json_add_uint(o, key, v);
        return EXIT_OK;
}

int cmd_vm_create(Client *c, int argc, char **argv) {
        enum { O_FILE = 1, O_NAME, O_VCPUS, O_MEMORY, O_KERNEL, O_INITRD, O_CMDLINE, O_RAW, O_LOAD, O_ENTRY, O_MODE,
               O_IRQCHIP, O_BACKING, O_ON_CRASH, O_CONSOLE, O_NESTED, O_UUID, O_START, O_DISK, O_NIC };
        static const struct option options[] = {
                { "file", required_argument, NULL, O_FILE },       { "name", required_argument, NULL, O_NAME },
                { "vcpus", required_argument, NULL, O_VCPUS },     { "memory", required_argument, NULL, O_MEMORY },
                { "kernel", required_argument, NULL, O_KERNEL },   { "initrd", required_argument, NULL, O_INITRD },
                { "cmdline", required_argument, NULL, O_CMDLINE }, { "raw", required_argument, NULL, O_RAW },
                { "load-addr", required_argument, NULL, O_LOAD },  { "entry", required_argument, NULL, O_ENTRY },
                { "mode", required_argument, NULL, O_MODE },       { "irqchip", required_argument, NULL, O_IRQCHIP },
                { "memory-backing", required_argument, NULL, O_BACKING },
                { "on-crash", required_argument, NULL, O_ON_CRASH },
                { "console-log", required_argument, NULL, O_CONSOLE },
                { "nested", no_argument, NULL, O_NESTED },         { "uuid", required_argument, NULL, O_UUID },
                { "start", no_argument, NULL, O_START },           { "disk", required_argument, NULL, O_DISK },
                { "nic", required_argument, NULL, O_NIC },         {},
        };
        _cleanup_json_ json_object *spec = json_object_new_object(), *boot = json_object_new_object();
        _cleanup_json_ json_object *file_spec = NULL;
        const char *file = NULL;
        bool start = false, flags = false;
        int ch, r;

        optind = 0;
        while ((ch = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                r = EXIT_OK;
                if (ch != O_FILE && ch != O_START)
                        flags = true;
                switch (ch) {
                case O_FILE: file = optarg; break;
                case O_NAME: json_add_string(spec, "name", optarg); break;
                case O_UUID: json_add_string(spec, "uuid", optarg); break;
                case O_VCPUS: {
                        unsigned v;
                        if (safe_atou(optarg, &v) < 0) {
                                fprintf(stderr, "kvmfleetctl: --vcpus must be a number\n");
                                return EXIT_USAGE;
                        }
                        json_add_uint(spec, "vcpus", v);
                        break;
                }
                case O_MEMORY: r = add_size(spec, "memory", optarg); break;
                case O_KERNEL: json_add_string(boot, "kernel", optarg); break;
                case O_INITRD: json_add_string(boot, "initrd", optarg); break;
                case O_CMDLINE: json_add_string(boot, "cmdline", optarg); break;
                case O_RAW: json_add_string(boot, "raw", optarg); break;
                case O_LOAD: r = add_size(boot, "load_addr", optarg); break;
                case O_ENTRY: r = add_size(boot, "entry", optarg); break;
                case O_MODE: json_add_string(boot, "mode", optarg); break;
                case O_IRQCHIP: json_add_string(spec, "irqchip", optarg); break;
                case O_BACKING: json_add_string(spec, "memory_backing", optarg); break;
                case O_ON_CRASH: json_add_string(spec, "on_crash", optarg); break;
                case O_CONSOLE: {
                        json_object *con = json_object_new_object();
                        json_add_string(con, "log", optarg);
                        json_add(spec, "console", con);
                        break;
                }
                case O_NESTED: {
                        json_object *cpu = json_object_new_object();
                        json_add_bool(cpu, "nested", true);
                        json_add(spec, "cpu", cpu);
                        break;
                }
                case O_START: start = true; break;
                case O_DISK: r = add_disk(spec, optarg); break;
                case O_NIC: r = add_nic(spec, optarg); break;
                default: return EXIT_USAGE;
                }
                if (r != EXIT_OK)
                        return r;
        }
        if (optind < argc) {
                fprintf(stderr, "kvmfleetctl: vm create: unexpected argument \"%s\"\n", argv[optind]);
                return EXIT_USAGE;
        }
        if (file && flags) {
                fprintf(stderr, "kvmfleetctl: vm create takes --file or spec flags, not both\n");
                return EXIT_USAGE;
        }
        if (file) {
                _cleanup_free_ char *text = NULL;
                size_t n;
                JsonError e;
                r = streq(file, "-") ? read_full_fd(0, SPEC_FILE_MAX, &text, &n) : read_full_file(file, SPEC_FILE_MAX, &text, &n);
                if (r < 0) {
                        fprintf(stderr, "kvmfleetctl: cannot read %s: %s\n", file, strerror(-r));
                        return EXIT_USAGE;
                }
                if (json_parse(text, n, 64, &file_spec, &e) < 0) {
                        fprintf(stderr, "kvmfleetctl: %s is not valid JSON: %s\n", file, e.message);
                        return EXIT_USAGE;
                }
        } else {
                if (!flags) {
                        fprintf(stderr, "kvmfleetctl: vm create needs --file SPEC.json or at least --name and --kernel/--raw\n");
                        return EXIT_USAGE;
                }
                if (!json_object_object_get_ex(spec, "vcpus", NULL))
                        json_add_uint(spec, "vcpus", 1);
                json_add(spec, "boot", json_object_get(boot));
        }

        ClientResponse resp;
        const char *text = json_to_string(file ? file_spec : spec);
        if (client_request(c, "POST", "/v1/vms", "application/json", text, strlen(text), &resp) < 0)
                return EXIT_UNREACHABLE;
        if (resp.status != 201) {
                r = client_report_error(&resp);
                client_response_done(&resp);
                return r;
        }
        _cleanup_free_ char *uuid = json_str(resp.body, "uuid") ? strdup(json_str(resp.body, "uuid")) : NULL;
        if (!start) {
                if (c->json_output)
                        print_json(resp.body);
                else
                        printf("%s\n", uuid ? uuid : "");
                client_response_done(&resp);
                return EXIT_OK;
        }
        client_response_done(&resp);
        if (!uuid)
                return EXIT_FAILED;
        char path[128];
        snprintf(path, sizeof path, "/v1/vms/%s/start", uuid);
        r = vm_call(c, "POST", path, NULL, c->json_output);
        if (r == EXIT_OK && !c->json_output)
                printf("%s\n", uuid);
        return r;
}

int cmd_vm_list(Client *c, int argc, char **argv) {
        static const struct option options[] = {
                { "state", required_argument, NULL, 's' },
                { "name", required_argument, NULL, 'n' },
                { "limit", required_argument, NULL, 'l' },
                { "offset", required_argument, NULL, 'o' },
                {},
        };
        const char *state = NULL, *name = NULL;
        uint64_t limit = 0, offset = 0;
        int ch;

        optind = 0;
        while ((ch = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (ch) {
                case 's': state = optarg; break;
                case 'n': name = optarg; break;
                case 'l':
                        if (safe_atou64(optarg, &limit) < 0 || limit < 1 || limit > 1000) {
                                fprintf(stderr, "kvmfleetctl: --limit must be 1-1000\n");
                                return EXIT_USAGE;
                        }
                        break;
                case 'o':
                        if (safe_atou64(optarg, &offset) < 0) {
                                fprintf(stderr, "kvmfleetctl: --offset must be a number\n");
                                return EXIT_USAGE;
                        }
                        break;
                default: return EXIT_USAGE;
                }
        if (optind < argc) {
                fprintf(stderr, "kvmfleetctl: vm list: unexpected argument \"%s\"\n", argv[optind]);
                return EXIT_USAGE;
        }
        /* without --limit, every page */
        bool all = limit == 0;
        Table *t = c->json_output ? NULL : table_new(6, (const char *const[]){ "NAME", "UUID", "STATE", "VCPUS", "MEMORY", "PID" });
        _cleanup_json_ json_object *collected = json_object_new_array();
        for (;;) {
                _cleanup_json_ json_object *o = NULL;
                char path[1024];
                int n = snprintf(path, sizeof path, "/v1/vms?limit=%llu&offset=%llu", (unsigned long long) (limit ?: 1000),
                                 (unsigned long long) offset);
                if (state || name) {
                        char *es = state ? curl_easy_escape(NULL, state, 0) : NULL, *en = name ? curl_easy_escape(NULL, name, 0) : NULL;
                        snprintf(path + n, sizeof path - (size_t) n, "%s%s%s%s", es ? "&state=" : "", es ? es : "",
                                 en ? "&name=" : "", en ? en : "");
                        curl_free(es);
                        curl_free(en);
                }
                int r = client_get_json(c, path, &o);
                if (r != EXIT_OK) {
                        table_free(t);
                        return r;
                }
                json_object *vms = NULL, *next = NULL;
                json_object_object_get_ex(o, "vms", &vms);
                for (size_t i = 0; vms && i < json_object_array_length(vms); i++) {
                        json_object *vm = json_object_array_get_idx(vms, i), *spec = NULL, *vmm = NULL;
                        json_object_object_get_ex(vm, "spec", &spec);
                        json_object_object_get_ex(vm, "vmm", &vmm);
                        if (t) {
                                char mem[32];
                                uint64_t bytes = 0;
                                const char *ms = json_str(spec, "memory");
                                if (ms)
                                        safe_atou64(ms, &bytes);
                                table_add_row(t, (const char *const[]){ json_str(vm, "name"), json_str(vm, "uuid"), json_str(vm, "state"),
                                                                         json_str(spec, "vcpus"), format_size(mem, sizeof mem, bytes),
                                                                         json_str(vmm, "pid") });
                        } else
                                json_object_array_add(collected, json_object_get(vm));
                }
                if (!all || !json_object_object_get_ex(o, "next_offset", &next) || json_object_is_type(next, json_type_null))
                        break;
                offset = (uint64_t) json_object_get_int64(next);
        }
        if (t) {
                table_print(t);
                table_free(t);
        } else
                print_json(collected);
        return EXIT_OK;
}

int cmd_vm_show(Client *c, int argc, char **argv) {
        const char *id;
        optind = 1; /* no options to parse: the arguments start at argv[1] */
        int r = one_id(argc, argv, "show", &id);
        if (r != EXIT_OK)
                return r;
        _cleanup_free_ char *eid = escape_id(id);
        char path[512];
        snprintf(path, sizeof path, "/v1/vms/%s", eid ? eid : "");
        return vm_call(c, "GET", path, NULL, true);
}

static int simple_action(Client *c, int argc, char **argv, const char *action) {
        const char *id;
        optind = 1; /* no options to parse: the arguments start at argv[1] */
        if (argc > 1 && argv[1][0] == '-' && !streq(argv[1], "-")) {
                fprintf(stderr, "kvmfleetctl: vm %s takes no options\n", action);
                return EXIT_USAGE;
        }
        int r = one_id(argc, argv, action, &id);
        if (r != EXIT_OK)
                return r;
        _cleanup_free_ char *eid = escape_id(id);
        char path[512];
        snprintf(path, sizeof path, "/v1/vms/%s/%s", eid ? eid : "", action);
        r = vm_call(c, "POST", path, NULL, c->json_output);
        if (r == EXIT_OK && !c->json_output)
                printf("%s: %s\n", id, streq(action, "pause") ? "paused" : streq(action, "start") ? "started"
                                               : streq(action, "resume") ? "resumed" : "restarted");
        return r;
}

int cmd_vm_start(Client *c, int argc, char **argv) {
        return simple_action(c, argc, argv, "start");
}
int cmd_vm_pause(Client *c, int argc, char **argv) {
        return simple_action(c, argc, argv, "pause");
}
int cmd_vm_resume(Client *c, int argc, char **argv) {
        return simple_action(c, argc, argv, "resume");
}
int cmd_vm_restart(Client *c, int argc, char **argv) {
        return simple_action(c, argc, argv, "restart");
}

int cmd_vm_stop(Client *c, int argc, char **argv) {
        static const struct option options[] = {
                { "timeout", required_argument, NULL, 't' },
                { "force", no_argument, NULL, 'f' },
                {},
        };
        _cleanup_json_ json_object *body = json_object_new_object();
        const char *id;
        int ch, r;

        optind = 0;
        while ((ch = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (ch) {
                case 't': {
                        unsigned t;
                        if (safe_atou(optarg, &t) < 0 || t > 3600) {
                                fprintf(stderr, "kvmfleetctl: --timeout must be 0-3600 seconds\n");
                                return EXIT_USAGE;
                        }
                        json_add_uint(body, "timeout_s", t);
                        break;
                }
                case 'f': json_add_bool(body, "force", true); break;
                default: return EXIT_USAGE;
                }
        if ((r = one_id(argc, argv, "stop", &id)) != EXIT_OK)
                return r;
        _cleanup_free_ char *eid = escape_id(id);
        char path[512];
        snprintf(path, sizeof path, "/v1/vms/%s/stop", eid ? eid : "");
        r = vm_call(c, "POST", path, body, c->json_output);
        if (r == EXIT_OK && !c->json_output)
                printf("%s: stopped\n", id);
        return r;
}

int cmd_vm_delete(Client *c, int argc, char **argv) {
        static const struct option options[] = {
                { "force", no_argument, NULL, 'f' },
                {},
        };
        bool force = false;
        const char *id;
        int ch, r;

        optind = 0;
        while ((ch = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (ch) {
                case 'f': force = true; break;
                default: return EXIT_USAGE;
                }
        if ((r = one_id(argc, argv, "delete", &id)) != EXIT_OK)
                return r;
        _cleanup_free_ char *eid = escape_id(id);
        char path[512];
        snprintf(path, sizeof path, "/v1/vms/%s%s", eid ? eid : "", force ? "?force=true" : "");
        r = vm_call(c, "DELETE", path, NULL, false);
        if (r == EXIT_OK && !c->json_output)
                printf("%s: deleted\n", id);
        return r;
}

int cmd_vm_console(Client *c, int argc, char **argv) {
        static const struct option options[] = {
                { "offset", required_argument, NULL, 'o' },
                { "follow", no_argument, NULL, 'f' },
                {},
        };
        uint64_t offset = 0;
        bool follow = false;
        const char *id;
        int ch, r;

        optind = 0;
        while ((ch = getopt_long(argc, argv, "f", options, NULL)) >= 0)
                switch (ch) {
                case 'o':
                        if (safe_atou64(optarg, &offset) < 0) {
                                fprintf(stderr, "kvmfleetctl: --offset must be a byte offset\n");
                                return EXIT_USAGE;
                        }
                        break;
                case 'f': follow = true; break;
                default: return EXIT_USAGE;
                }
        if ((r = one_id(argc, argv, "console", &id)) != EXIT_OK)
                return r;
        _cleanup_free_ char *eid = escape_id(id);
        char path[512];
        if (follow) {
                snprintf(path, sizeof path, "/v1/vms/%s/console?follow=true&offset=%llu", eid ? eid : "", (unsigned long long) offset);
                return client_stream(c, path, stdout);
        }
        /* everything from offset, page by page */
        for (;;) {
                _cleanup_json_ json_object *o = NULL;
                snprintf(path, sizeof path, "/v1/vms/%s/console?offset=%llu", eid ? eid : "", (unsigned long long) offset);
                if (c->json_output)
                        return vm_call(c, "GET", path, NULL, true);
                r = client_get_json(c, path, &o);
                if (r != EXIT_OK)
                        return r;
                const char *data = json_str(o, "data");
                uint64_t next = 0;
                const char *ns = json_str(o, "next_offset");
                if (ns)
                        safe_atou64(ns, &next);
                if (data)
                        fputs(data, stdout);
                if (next <= offset)
                        break;
                offset = next;
        }
        return EXIT_OK;
}

int cmd_vm_stats(Client *c, int argc, char **argv) {
        const char *id;
        optind = 1; /* no options to parse: the arguments start at argv[1] */
        int r = one_id(argc, argv, "stats", &id);
        if (r != EXIT_OK)
                return r;
        _cleanup_free_ char *eid = escape_id(id);
        _cleanup_json_ json_object *o = NULL;
        char path[512];
        snprintf(path, sizeof path, "/v1/vms/%s/stats", eid ? eid : "");
        r = client_get_json(c, path, &o);
        if (r != EXIT_OK)
                return r;
        if (c->json_output) {
                print_json(o);
                return EXIT_OK;
        }
        Table *t = table_new(3, (const char *const[]){ "SCOPE", "STAT", "VALUE" });
        json_object *vm = NULL, *vcpus = NULL;
        if (json_object_object_get_ex(o, "vm", &vm)) {
                json_object_object_foreach(vm, k, v) table_add_row(t, (const char *const[]){ "vm", k, json_object_get_string(v) });
        }
        if (json_object_object_get_ex(o, "vcpus", &vcpus))
                for (size_t i = 0; i < json_object_array_length(vcpus); i++) {
                        json_object *vc = json_object_array_get_idx(vcpus, i), *st = NULL;
                        char scope[32];
                        snprintf(scope, sizeof scope, "vcpu%s", json_str(vc, "index") ?: "?");
                        if (json_object_object_get_ex(vc, "stats", &st)) {
                                json_object_object_foreach(st, k2, v2)
                                        table_add_row(t, (const char *const[]){ scope, k2, json_object_get_string(v2) });
                        }
                }
        table_print(t);
        table_free(t);
        return EXIT_OK;
}
