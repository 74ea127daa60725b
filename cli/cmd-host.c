/* SPDX-License-Identifier: MIT */
/* kvmfleetctl host info | host kvm | health */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "json-util.h"
#include "str-util.h"
#include "table.h"

static int no_args(int argc, char **argv, const char *cmd) {
        if (argc > 1) {
                fprintf(stderr, "kvmfleetctl: %s takes no arguments (got \"%s\")\n", cmd, argv[1]);
                return EXIT_USAGE;
        }
        return EXIT_OK;
}

int cmd_host_info(Client *c, int argc, char **argv) {
        _cleanup_json_ json_object *o = NULL;
        json_object *cpu = NULL, *kvm = NULL, *caps = NULL;
        int r = no_args(argc, argv, "host info");
        if (r != EXIT_OK)
                return r;
        r = client_get_json(c, "/v1/host", &o);
        if (r != EXIT_OK)
                return r;
        if (c->json_output) {
                print_json(o);
                return EXIT_OK;
        }
        json_object_object_get_ex(o, "cpu", &cpu);
        json_object_object_get_ex(o, "kvm", &kvm);
        printf("Hostname:        %s\n", json_str(o, "hostname"));
        printf("Kernel:          %s\n", json_str(o, "kernel_release"));
        printf("Agent:           %s\n", json_str(o, "agent_version"));
        printf("CPU:             %s (%s), %s CPUs\n", json_str(cpu, "model"), json_str(cpu, "vendor"), json_str(cpu, "count"));
        printf("KVM:             %s, API version %s\n", json_str(kvm, "type"), json_str(kvm, "api_version") ? json_str(kvm, "api_version") : "-");
        json_object *placement = NULL;
        if (json_object_object_get_ex(o, "cpu_placement", &placement) && placement)
                printf("CPU placement:   housekeeping on %s%s, guests on %s\n", json_str(placement, "housekeeping_cpus"),
                       streq_ptr(json_str(placement, "mode"), "auto") ? " (auto)" : "", json_str(placement, "guest_cpus"));
        else
                printf("CPU placement:   none\n");
        if (json_object_object_get_ex(kvm, "capabilities", &caps)) {
                Table *t = table_new(2, (const char *const[]){ "CAPABILITY", "VALUE" });
                json_object_object_foreach(caps, k, v) table_add_row(t, (const char *const[]){ k, json_object_get_string(v) });
                putchar('\n');
                table_print(t);
                table_free(t);
        }
        return EXIT_OK;
}

/* host kvm set MODULE.PARAM=VALUE... [--acknowledge-unsafe]: replaces the desired parameter set. */
static int host_kvm_set(Client *c, int argc, char **argv) {
        _cleanup_json_ json_object *body = json_object_new_object(), *params = json_object_new_object();
        bool ack = false;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--acknowledge-unsafe") == 0) {
                        ack = true;
                        continue;
                }
                char *eq = strchr(argv[i], '=');
                if (!eq || eq == argv[i] || argv[i][0] == '-') {
                        fprintf(stderr, "kvmfleetctl: host kvm set takes MODULE.PARAM=VALUE arguments, not \"%s\"\n", argv[i]);
                        return EXIT_USAGE;
                }
                *eq = 0;
                json_add_string(params, argv[i], eq + 1);
                *eq = '=';
        }
        json_add(body, "params", json_object_get(params));
        json_add_bool(body, "acknowledge_unsafe", ack);
        ClientResponse resp;
        const char *text = json_to_string(body);
        if (client_request(c, "PUT", "/v1/host/kvm/params", "application/json", text, strlen(text), &resp) < 0)
                return EXIT_UNREACHABLE;
        int r = EXIT_OK;
        if (resp.status != 200)
                r = client_report_error(&resp);
        else if (c->json_output)
                print_json(resp.body);
        else {
                json_object *desired = NULL;
                json_object_object_get_ex(resp.body, "desired_params", &desired);
                printf("Desired KVM parameters (applied by \"kvmfleetctl host kvm reload\"):\n");
                for (size_t i = 0; desired && i < json_object_array_length(desired); i++) {
                        json_object *d = json_object_array_get_idx(desired, i);
                        printf("  %s.%s=%s\n", json_str(d, "module"), json_str(d, "name"), json_str(d, "value"));
                }
        }
        client_response_done(&resp);
        return r;
}

static int host_kvm_reload(Client *c, int argc, char **argv) {
        int r = no_args(argc, argv, "host kvm reload");
        if (r != EXIT_OK)
                return r;
        ClientResponse resp;
        if (client_request(c, "POST", "/v1/host/kvm/reload", NULL, NULL, 0, &resp) < 0)
                return EXIT_UNREACHABLE;
        if (resp.status != 200)
                r = client_report_error(&resp);
        else if (c->json_output)
                print_json(resp.body);
        else {
                fputs(json_str(resp.body, "output") ?: "", stdout);
                const char *st = json_str(resp.body, "exit_status");
                r = st && strcmp(st, "0") == 0 ? EXIT_OK : EXIT_FAILED;
        }
        client_response_done(&resp);
        return r;
}

int cmd_host_kvm(Client *c, int argc, char **argv) {
        _cleanup_json_ json_object *o = NULL;
        json_object *setup = NULL, *report = NULL, *mods = NULL;
        if (argc > 1 && strcmp(argv[1], "set") == 0)
                return host_kvm_set(c, argc - 1, argv + 1);
        if (argc > 1 && strcmp(argv[1], "reload") == 0)
                return host_kvm_reload(c, argc - 1, argv + 1);
        int r = no_args(argc, argv, "host kvm");
        if (r != EXIT_OK)
                return r;
        r = client_get_json(c, "/v1/host/kvm", &o);
        if (r != EXIT_OK)
                return r;
        if (c->json_output) {
                print_json(o);
                return EXIT_OK;
        }
        json_object_object_get_ex(o, "setup", &setup);
        if (setup)
                json_object_object_get_ex(setup, "report", &report);
        if (!report)
                printf("Setup report:    none ingested (expected at %s; run kvmfleet-load)\n", json_str(o, "report_path"));
        else {
                json_object *cons = NULL, *diffs = NULL;
                json_object_object_get_ex(report, "consistency", &cons);
                printf("Setup report:    #%s, generated %s, ingested %s\n", json_str(setup, "id"),
                       json_str(report, "generated_at"), json_str(setup, "ingested_at"));
                printf("Result:          %s\n", json_str(report, "ok") && strcmp(json_str(report, "ok"), "true") == 0 ? "ok" : "problem");
                printf("Vendor module:   %s on CPU %s\n", json_str(report, "vendor_module"), json_str(report, "target_cpu"));
                printf("Params in effect: %s\n", json_str(report, "params_in_effect"));
                printf("CPUs consistent: %s\n", json_str(cons, "consistent"));
                if (cons && json_object_object_get_ex(cons, "differences", &diffs) && json_object_array_length(diffs) > 0) {
                        Table *t = table_new(5, (const char *const[]){ "CPU", "LEAF", "FEATURE", "TARGET", "VALUE" });
                        for (size_t i = 0; i < json_object_array_length(diffs); i++) {
                                json_object *d = json_object_array_get_idx(diffs, i);
                                table_add_row(t, (const char *const[]){ json_str(d, "cpu"), json_str(d, "leaf"), json_str(d, "feature"),
                                                                         json_str(d, "target_value"), json_str(d, "value") });
                        }
                        table_print(t);
                        table_free(t);
                }
        }
        printf("Nested state:    %s bytes max (0 = unsupported)\n", json_str(o, "nested_state_max_size"));
        json_object *nested = NULL, *np = NULL, *unsafe = NULL, *apicv = NULL, *cpu = NULL, *aparams = NULL;
        if (json_object_object_get_ex(o, "nested", &nested) && json_object_object_get_ex(nested, "parameter", &np) && np)
                printf("Nested:          %s.nested effective %s, desired %s\n", json_str(np, "module"),
                       json_str(np, "effective") ?: "-", json_str(np, "desired") ?: "-");
        else
                printf("Nested:          %s\n", json_str(nested, "detail") ?: "-");
        if (json_object_object_get_ex(o, "allow_unsafe_mappings", &unsafe))
                printf("Unsafe mappings: kvm.allow_unsafe_mappings %s%s%s\n",
                       json_str(unsafe, "effective") ?: "(absent on this kernel)",
                       json_str(unsafe, "desired") ? ", desired " : "", json_str(unsafe, "desired") ?: "");
        if (json_object_object_get_ex(o, "apicv", &apicv)) {
                json_object_object_get_ex(apicv, "cpu", &cpu);
                printf("APIC virt:       CPU %s: %s (%s)\n", json_str(cpu, "feature") ?: "?",
                       json_str(cpu, "supported") ?: "unknown", json_str(cpu, "source") ?: "");
                if (json_object_object_get_ex(apicv, "parameters", &aparams))
                        for (size_t i = 0; i < json_object_array_length(aparams); i++) {
                                json_object *p = json_object_array_get_idx(aparams, i);
                                if (json_str(p, "effective") || json_str(p, "desired"))
                                        printf("                 %s.%s effective %s, desired %s\n", json_str(p, "module"),
                                               json_str(p, "name"), json_str(p, "effective") ?: "-", json_str(p, "desired") ?: "-");
                        }
        }
        if (json_object_object_get_ex(o, "modules", &mods)) {
                Table *t = table_new(3, (const char *const[]){ "MODULE", "TYPE", "PARAMETERS" });
                json_object_object_foreach(mods, name, mod) {
                        json_object *params = NULL;
                        char buf[1024] = "";
                        size_t l = 0;
                        json_object_object_get_ex(mod, "parameters", &params);
                        json_object_object_foreach(params, k, v) if (l < sizeof buf)
                                l += (size_t) snprintf(buf + l, sizeof buf - l, "%s%s=%s", l ? " " : "", k, json_object_get_string(v));
                        table_add_row(t, (const char *const[]){ name, json_str(mod, "type"), buf });
                }
                putchar('\n');
                table_print(t);
                table_free(t);
        }
        return EXIT_OK;
}

int cmd_health(Client *c, int argc, char **argv) {
        ClientResponse resp;
        json_object *checks = NULL;
        int r = no_args(argc, argv, "health");
        if (r != EXIT_OK)
                return r;
        if (client_request(c, "GET", "/v1/health", NULL, NULL, 0, &resp) < 0)
                return EXIT_UNREACHABLE;
        /* 503 carries the same document as 200: the checks say what is failing. */
        if ((resp.status != 200 && resp.status != 503) || !resp.body) {
                r = client_report_error(&resp);
                client_response_done(&resp);
                return r;
        }
        const char *status = json_str(resp.body, "status");
        if (c->json_output)
                print_json(resp.body);
        else {
                printf("Status: %s\n\n", status);
                Table *t = table_new(3, (const char *const[]){ "CHECK", "STATUS", "DETAIL" });
                json_object_object_get_ex(resp.body, "checks", &checks);
                for (size_t i = 0; checks && i < json_object_array_length(checks); i++) {
                        json_object *ch = json_object_array_get_idx(checks, i);
                        table_add_row(t, (const char *const[]){ json_str(ch, "name"), json_str(ch, "status"), json_str(ch, "detail") });
                }
                table_print(t);
                table_free(t);
        }
        r = status && strcmp(status, "failing") == 0 ? EXIT_FAILED : EXIT_OK;
        client_response_done(&resp);
        return r;
}
