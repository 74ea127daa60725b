/* SPDX-License-Identifier: MIT */
/* kvmfleetctl vm nested-state get|set: a vCPU's KVM nested state on a paused VM
 * (/v1/vms/{id}/vcpus/{n}/nested-state). get prints the decoded header and can save the raw blob;
 * set sends a raw blob as saved by get --raw. */
#include <curl/curl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "fd-util.h"
#include "json-util.h"
#include "str-util.h"

#define GET_USAGE "vm nested-state get VM VCPU [--raw FILE]"
#define SET_USAGE "vm nested-state set VM VCPU FILE"
/* the agent refuses bigger bodies (413) anyway; don't read more than that */
#define NESTED_FILE_MAX (1024 * 1024)

static int usage(void) {
        fprintf(stderr, "kvmfleetctl: usage: kvmfleetctl " GET_USAGE "\n"
                        "             kvmfleetctl " SET_USAGE "\n");
        return EXIT_USAGE;
}

static int state_path(char *buf, size_t n, const char *vm, const char *vcpu) {
        unsigned v;
        if (safe_atou(vcpu, &v) < 0) {
                fprintf(stderr, "kvmfleetctl: VCPU must be a vCPU index, not \"%s\"\n", vcpu);
                return EXIT_USAGE;
        }
        char *e = curl_easy_escape(NULL, vm, 0);
        if (!e)
                return EXIT_FAILED;
        snprintf(buf, n, "/v1/vms/%s/vcpus/%u/nested-state", e, v);
        curl_free(e);
        return EXIT_OK;
}

static const char *yes_no(json_object *o, const char *key) {
        json_object *v;
        return o && json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v) ? "yes" : "no";
}

static void print_gpa(const char *label, json_object *o, const char *key) {
        json_object *v;
        if (o && json_object_object_get_ex(o, key, &v) && v)
                printf("%-18s 0x%" PRIx64 "\n", label, (uint64_t) json_object_get_int64(v));
        else
                printf("%-18s none\n", label);
}

static void print_state(json_object *o) {
        json_object *flags = NULL, *svm = NULL, *vmx = NULL, *smm = NULL, *vflags = NULL;
        json_object_object_get_ex(o, "flags", &flags);
        printf("vCPU:              %s\n", json_str(o, "vcpu") ?: "-");
        printf("Format:            %s\n", json_str(o, "format") ?: "-");
        printf("Size:              %s bytes (max %s)\n", json_str(o, "size") ?: "-", json_str(o, "max_size") ?: "-");
        printf("Flags:             0x%" PRIx64 " guest_mode=%s run_pending=%s evmcs=%s mtf_pending=%s gif_set=%s\n",
               (uint64_t) strtoull(json_str(flags, "raw") ?: "0", NULL, 10), yes_no(flags, "guest_mode"),
               yes_no(flags, "run_pending"), yes_no(flags, "evmcs"), yes_no(flags, "mtf_pending"), yes_no(flags, "gif_set"));
        if (json_object_object_get_ex(o, "svm", &svm))
                print_gpa("VMCB:", svm, "vmcb_pa");
        if (json_object_object_get_ex(o, "vmx", &vmx)) {
                print_gpa("VMXON region:", vmx, "vmxon_pa");
                print_gpa("VMCS12:", vmx, "vmcs12_pa");
                json_object_object_get_ex(vmx, "smm", &smm);
                json_object_object_get_ex(vmx, "flags", &vflags);
                printf("SMM:               guest_mode=%s vmxon=%s\n", yes_no(smm, "guest_mode"), yes_no(smm, "vmxon"));
                if (json_object_get_boolean(json_object_object_get(vflags, "preemption_timer_deadline_valid")))
                        printf("Preemption timer:  deadline %s\n", json_str(vmx, "preemption_timer_deadline") ?: "-");
                else
                        printf("Preemption timer:  no deadline\n");
        }
}

static int finish(Client *c, ClientResponse *resp, const char *raw_file) {
        if (resp->status < 200 || resp->status >= 300) {
                int e = client_report_error(resp);
                client_response_done(resp);
                return e;
        }
        json_object *o = resp->body;
        if (raw_file) {
                _cleanup_free_ void *blob = NULL;
                size_t len = 0;
                int r = base64_decode(json_str(o, "data") ?: "", &blob, &len);
                if (r >= 0)
                        r = write_file_atomic(raw_file, blob, len, 0600);
                if (r < 0) {
                        fprintf(stderr, "kvmfleetctl: cannot write %s: %s\n", raw_file, strerror(-r));
                        client_response_done(resp);
                        return EXIT_FAILED;
                }
        }
        if (c->json_output)
                print_json(o);
        else {
                print_state(o);
                if (raw_file)
                        printf("Saved:             %s\n", raw_file);
        }
        client_response_done(resp);
        return EXIT_OK;
}

static int nested_get(Client *c, int argc, char **argv) {
        static const struct option options[] = { { "raw", required_argument, NULL, 'r' }, {} };
        const char *raw_file = NULL;
        char path[512];
        int o;
        optind = 0; /* 0: glibc re-initializes, so --raw may follow VM and VCPU */
        while ((o = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (o) {
                case 'r': raw_file = optarg; break;
                default: return usage();
                }
        if (argc - optind != 2)
                return usage();
        int r = state_path(path, sizeof path, argv[optind], argv[optind + 1]);
        if (r != EXIT_OK)
                return r;
        ClientResponse resp;
        if (client_request(c, "GET", path, NULL, NULL, 0, &resp) < 0)
                return EXIT_UNREACHABLE;
        return finish(c, &resp, raw_file);
}

static int nested_set(Client *c, int argc, char **argv) {
        _cleanup_free_ char *blob = NULL;
        char path[512];
        size_t len = 0;
        if (argc != 4)
                return usage();
        int r = state_path(path, sizeof path, argv[1], argv[2]);
        if (r != EXIT_OK)
                return r;
        r = read_full_file(argv[3], NESTED_FILE_MAX, &blob, &len);
        if (r < 0) {
                fprintf(stderr, "kvmfleetctl: cannot read %s: %s\n", argv[3], strerror(-r));
                return EXIT_FAILED;
        }
        ClientResponse resp;
        if (client_request(c, "PUT", path, "application/octet-stream", blob, len, &resp) < 0)
                return EXIT_UNREACHABLE;
        return finish(c, &resp, NULL);
}

int cmd_vm_nested_state(Client *c, int argc, char **argv) {
        /* argv[0] is "nested-state" */
        if (argc > 1 && streq(argv[1], "get"))
                return nested_get(c, argc - 1, argv + 1);
        if (argc > 1 && streq(argv[1], "set"))
                return nested_set(c, argc - 1, argv + 1);
        return usage();
}
