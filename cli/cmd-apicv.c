/* SPDX-License-Identifier: MIT */
/* kvmfleetctl vm apicv show|set, vm lapic: a VM's APIC virtualization (/v1/vms/{id}/apicv) and a
 * vCPU's decoded local APIC (/v1/vms/{id}/vcpus/{n}/lapic). */
#include <curl/curl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "json-util.h"
#include "str-util.h"

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

static int vm_path(char *buf, size_t n, const char *vm, const char *suffix) {
        char *e = curl_easy_escape(NULL, vm, 0);
        if (!e)
                return EXIT_FAILED;
        snprintf(buf, n, "/v1/vms/%s%s", e, suffix);
        curl_free(e);
        return EXIT_OK;
}

static json_object *sub(json_object *o, const char *key) {
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static void print_names(const char *label, json_object *arr) {
        printf("%-22s", label);
        size_t n = arr ? json_object_array_length(arr) : 0;
        for (size_t i = 0; i < n; i++)
                printf("%s%s", i ? "," : "", json_object_get_string(json_object_array_get_idx(arr, i)));
        printf("%s\n", n ? "" : "-");
}

static void print_apicv(json_object *o) {
        json_object *host = sub(o, "host"), *conf = sub(o, "configuration"), *live = sub(o, "live"),
                    *inferred = sub(o, "inferred");
        printf("%-22s%s\n", "VM:", json_str(sub(o, "vm"), "name") ?: "-");
        printf("%-22s%s (%s=%s, cpu_supported=%s)\n", "Host APICv/AVIC:",
               json_object_get_boolean(sub(host, "effective")) ? "effective" : "off", json_str(host, "parameter") ?: "no vendor parameter",
               json_str(host, "enabled") ?: "-", json_str(host, "cpu_supported") ?: "unknown");
        printf("%-22s%s\n", "irqchip:", json_str(conf, "irqchip") ?: "-");
        printf("%-22suse_32bit_ids=%s disable_broadcast_quirk=%s\n", "x2apic_api:",
               json_str(sub(conf, "x2apic_api"), "use_32bit_ids") ?: "-",
               json_str(sub(conf, "x2apic_api"), "disable_broadcast_quirk") ?: "-");
        printf("%-22s%s (in-kernel PIT: %s)\n", "pit_reinject:", json_str(sub(conf, "pit"), "reinject") ?: "-",
               json_str(sub(conf, "pit"), "in_kernel") ?: "-");
        size_t n = inferred ? json_object_array_length(inferred) : 0;
        printf("%-22s%s\n", "Inferred inhibits:", n ? "" : "none");
        for (size_t i = 0; i < n; i++) {
                json_object *it = json_object_array_get_idx(inferred, i);
                printf("  %-20s%s (%s)\n", json_str(it, "reason") ?: "?", json_str(it, "why") ?: "", json_str(it, "scope") ?: "");
        }
        if (!json_object_get_boolean(sub(live, "available"))) {
                printf("%-22sunavailable: %s\n", "Live inhibits:", json_str(live, "reason") ?: "-");
                return;
        }
        if (!json_str(live, "inhibits")) {
                printf("%-22s%s\n", "Live inhibits:", json_str(live, "detail") ?: "none seen");
                return;
        }
        uint64_t bits = (uint64_t) json_object_get_int64(sub(live, "inhibits"));
        char label[64];
        snprintf(label, sizeof label, "Live inhibits (0x%" PRIx64 "):", bits);
        print_names(label, sub(live, "names"));
        printf("%-22s%s (%s events, VM-wide view)\n", "Last change:", json_str(live, "last_change") ?: "-",
               json_str(live, "events") ?: "0");
}

int cmd_vm_apicv(Client *c, int argc, char **argv) {
        static const struct option options[] = {
                { "pit-reinject", required_argument, NULL, 'p' },
                {},
        };
        const char *what = argc > 1 ? argv[1] : NULL;
        json_object *o = NULL;
        char path[512];
        int ch, r, reinject = -1;

        if (!what || (!streq(what, "show") && !streq(what, "set"))) {
                fprintf(stderr, "kvmfleetctl: usage: kvmfleetctl vm apicv show VM | vm apicv set VM --pit-reinject on|off\n");
                return EXIT_USAGE;
        }
        argc--, argv++;
        optind = 0; /* 0: glibc re-initializes, so options may follow VM */
        while ((ch = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (ch) {
                case 'p':
                        reinject = parse_boolean(optarg);
                        if (reinject < 0) {
                                fprintf(stderr, "kvmfleetctl: --pit-reinject must be on or off, not \"%s\"\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                default: return EXIT_USAGE;
                }
        if (argc - optind != 1) {
                fprintf(stderr, "kvmfleetctl: vm apicv %s needs exactly one VM (uuid or name)\n", what);
                return EXIT_USAGE;
        }
        if ((r = vm_path(path, sizeof path, argv[optind], "/apicv")) != EXIT_OK)
                return r;
        if (streq(what, "show")) {
                if (reinject >= 0) {
                        fprintf(stderr, "kvmfleetctl: vm apicv show takes no --pit-reinject (use vm apicv set)\n");
                        return EXIT_USAGE;
                }
                r = request(c, "GET", path, NULL, &o);
        } else {
                if (reinject < 0) {
                        fprintf(stderr, "kvmfleetctl: usage: kvmfleetctl vm apicv set VM --pit-reinject on|off\n");
                        return EXIT_USAGE;
                }
                _cleanup_json_ json_object *body = json_object_new_object();
                if (!body || json_add_bool(body, "pit_reinject", reinject) < 0)
                        return EXIT_FAILED;
                r = request(c, "PATCH", path, body, &o);
        }
        if (r != EXIT_OK)
                return r;
        if (c->json_output)
                print_json(o);
        else
                print_apicv(o);
        json_object_put(o);
        return EXIT_OK;
}

static void print_lvt(const char *name, json_object *l) {
        printf("  %-8s vector=0x%02x %-16s %s%s%s\n", name, (unsigned) json_object_get_int(sub(l, "vector")),
               json_str(l, "delivery_mode") ?: json_str(l, "timer_mode") ?: "",
               json_object_get_boolean(sub(l, "masked")) ? "masked" : "unmasked",
               json_str(l, "trigger_mode") ? " " : "", json_str(l, "trigger_mode") ?: "");
}

static void print_vectors(const char *label, json_object *arr) {
        printf("%-12s", label);
        size_t n = arr ? json_object_array_length(arr) : 0;
        for (size_t i = 0; i < n; i++)
                printf("%s0x%02x", i ? "," : "", (unsigned) json_object_get_int(json_object_array_get_idx(arr, i)));
        printf("%s\n", n ? "" : "-");
}

static void print_lapic(json_object *o) {
        json_object *svr = sub(o, "svr"), *icr = sub(o, "icr"), *lvt = sub(o, "lvt"), *timer = sub(o, "timer"),
                    *base = sub(o, "apic_base");
        printf("%-12s%s (per-vCPU view)\n", "vcpu", json_str(o, "vcpu") ?: "-");
        printf("%-12s%s, base 0x%" PRIx64 "%s\n", "mode", json_str(o, "mode") ?: "-",
               (uint64_t) json_object_get_int64(sub(base, "address")), json_object_get_boolean(sub(base, "bsp")) ? ", BSP" : "");
        printf("%-12s%s\n", "id", json_str(o, "id") ?: "-");
        printf("%-12s0x%02x (max LVT %s)\n", "version", (unsigned) json_object_get_int(sub(o, "version")),
               json_str(o, "max_lvt") ?: "-");
        printf("%-12s0x%02x\n", "tpr", (unsigned) json_object_get_int(sub(o, "tpr")));
        printf("%-12s0x%02x\n", "ppr", (unsigned) json_object_get_int(sub(o, "ppr")));
        printf("%-12s0x%08x  dfr 0x%08x (%s)\n", "ldr", (unsigned) json_object_get_int64(sub(o, "ldr")),
               (unsigned) json_object_get_int64(sub(o, "dfr")), json_str(o, "dfr_model") ?: "-");
        printf("%-12s%s, spurious vector 0x%02x\n", "svr",
               json_object_get_boolean(sub(svr, "software_enabled")) ? "software-enabled" : "software-disabled",
               (unsigned) json_object_get_int(sub(svr, "spurious_vector")));
        print_vectors("isr", sub(o, "isr"));
        print_vectors("tmr", sub(o, "tmr"));
        print_vectors("irr", sub(o, "irr"));
        printf("%-12s0x%02x\n", "esr", (unsigned) json_object_get_int(sub(o, "esr")));
        printf("%-12svector 0x%02x %s %s, destination %s (%s)\n", "icr", (unsigned) json_object_get_int(sub(icr, "vector")),
               json_str(icr, "delivery_mode") ?: "-", json_str(icr, "destination_mode") ?: "-", json_str(icr, "destination") ?: "-",
               json_str(icr, "shorthand") ?: "-");
        printf("lvt\n");
        static const char *const lvts[] = { "timer", "cmci", "thermal", "perf", "lint0", "lint1", "error" };
        for (size_t i = 0; i < ELEMENTSOF(lvts); i++)
                if (sub(lvt, lvts[i]))
                        print_lvt(lvts[i], sub(lvt, lvts[i]));
        printf("%-12s%s, initial count %s, current count %s, divide by %s\n", "timer", json_str(timer, "mode") ?: "-",
               json_str(timer, "initial_count") ?: "-", json_str(timer, "current_count") ?: "-", json_str(timer, "divide") ?: "-");
}

int cmd_vm_lapic(Client *c, int argc, char **argv) {
        json_object *o = NULL;
        char path[512], suffix[64];
        unsigned vcpu;
        int r;

        optind = 1;
        if (argc - optind != 2) {
                fprintf(stderr, "kvmfleetctl: usage: kvmfleetctl vm lapic VM VCPU\n");
                return EXIT_USAGE;
        }
        if (safe_atou(argv[optind + 1], &vcpu) < 0) {
                fprintf(stderr, "kvmfleetctl: VCPU must be a vCPU number, not \"%s\"\n", argv[optind + 1]);
                return EXIT_USAGE;
        }
        snprintf(suffix, sizeof suffix, "/vcpus/%u/lapic", vcpu);
        if ((r = vm_path(path, sizeof path, argv[optind], suffix)) != EXIT_OK)
                return r;
        r = request(c, "GET", path, NULL, &o);
        if (r != EXIT_OK)
                return r;
        if (c->json_output)
                print_json(o);
        else
                print_lapic(o);
        json_object_put(o);
        return EXIT_OK;
}
