/* SPDX-License-Identifier: MIT */
/* kvmfleetctl: the operator CLI over kvmfleetd's REST API. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "fd-util.h"
#include "json-util.h"
#include "str-util.h"

static const Command commands[] = {
        { "host", "info", cmd_host_info, "host info", "hostname, CPU, KVM API version and capabilities" },
        { "host", "kvm", cmd_host_kvm, "host kvm", "KVM setup report: modules, parameters, CPU consistency" },
        { "host", "kvm", cmd_host_kvm, "host kvm set M.P=V... [--acknowledge-unsafe]",
          "record the desired KVM module parameters (the whole set)" },
        { "host", "kvm", cmd_host_kvm, "host kvm reload", "apply them: kvmfleet-load --reload (no VM may run)" },
        { "health", NULL, cmd_health, "health", "agent health checks (exit 1 when failing)" },
        { "events", NULL, cmd_events, "events [--after ID] [--limit N] [--object NAME]", "the audit log" },
        { "vm", "create", cmd_vm_create,
          "vm create (--file SPEC.json | --name N --kernel F|--raw F ...) [--start]",
          "define a VM (flags: --vcpus --memory --initrd --cmdline --load-addr --entry --mode --irqchip "
          "--memory-backing --on-crash --console-log --nested --uuid --disk PATH[,readonly][,serial=S] "
          "--nic tap=NAME[,mac=M], repeatable); prints its uuid" },
        { "vm", "list", cmd_vm_list, "vm list [--state S] [--name N] [--limit N --offset N]", "VMs (every page unless --limit)" },
        { "vm", "show", cmd_vm_show, "vm show VM", "one VM (VM: uuid or name)" },
        { "vm", "start", cmd_vm_start, "vm start VM", "start a defined, stopped or crashed VM" },
        { "vm", "stop", cmd_vm_stop, "vm stop VM [--timeout S] [--force]", "stop: graceful, then SIGTERM, then SIGKILL" },
        { "vm", "pause", cmd_vm_pause, "vm pause VM", "park every vCPU" },
        { "vm", "resume", cmd_vm_resume, "vm resume VM", "resume a paused VM" },
        { "vm", "restart", cmd_vm_restart, "vm restart VM", "stop and start a running VM" },
        { "vm", "delete", cmd_vm_delete, "vm delete VM [--force]", "remove a stopped VM (--force stops it first)" },
        { "vm", "console", cmd_vm_console, "vm console VM [--offset N] [--follow]", "the serial console log" },
        { "vm", "stats", cmd_vm_stats, "vm stats VM", "KVM binary statistics of the VM and its vCPUs" },
        { "vm", "define", cmd_vm_define, "vm define FILE.xml [--strict]", "define a VM from a libvirt domain XML" },
        { "vm", "dumpxml", cmd_vm_dumpxml, "vm dumpxml VM", "the VM as a libvirt domain XML" },
        { "vm", "apicv", cmd_vm_apicv, "vm apicv show VM", "APICv/AVIC: host, configuration, inferred and live inhibits" },
        { "vm", "apicv", cmd_vm_apicv, "vm apicv set VM --pit-reinject on|off", "switch PIT reinjection of a running VM" },
        { "vm", "lapic", cmd_vm_lapic, "vm lapic VM VCPU", "a vCPU's local APIC, decoded" },
        { "vm", "nested-state", cmd_vm_nested_state, "vm nested-state get VM VCPU [--raw FILE]",
          "a paused VM's vCPU nested state: format, flags, VMCB/VMCS addresses (--raw saves the blob)" },
        { "vm", "nested-state", cmd_vm_nested_state, "vm nested-state set VM VCPU FILE",
          "load a nested state blob (as saved by get --raw) into a paused VM's vCPU" },
        { "vm", "snapshot", cmd_vm_snapshot, "vm snapshot VM DIR", "save a paused VM into DIR (absent or empty)" },
        { "vm", "restore", cmd_vm_restore, "vm restore DIR [--name N] [--uuid U] [--paused]",
          "start a new VM from the snapshot in DIR" },
        { "memslot", "list", cmd_memslot_list, "memslot list VM", "the VM's KVM memslots and limits" },
        { "memslot", "add", cmd_memslot_add,
          "memslot add VM --gpa A --size S [--slot N] [--backing B] [--guest-memfd-offset O] [--dirty-log] [--readonly]",
          "add a memslot (backing: memfd, hugetlb, anonymous, guest_memfd)" },
        { "memslot", "move", cmd_memslot_move, "memslot move VM SLOT --gpa A [--force]", "move a memslot to a new base" },
        { "memslot", "set", cmd_memslot_set, "memslot set VM SLOT --dirty-log on|off", "turn dirty logging on or off" },
        { "memslot", "delete", cmd_memslot_delete, "memslot delete VM SLOT [--force]", "delete a memslot" },
        { "memslot", "dirty-log", cmd_memslot_dirty_log, "memslot dirty-log VM SLOT [--clear] [--bitmap]",
          "dirty pages of a slot with dirty logging on" },
};

const char *json_str(json_object *o, const char *key) {
        json_object *v;
        if (!o || !json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return NULL;
        if (json_object_is_type(v, json_type_object) || json_object_is_type(v, json_type_array))
                return json_to_string(v);
        return json_object_get_string(v);
}

void print_json(json_object *o) {
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

static void help(FILE *f) {
        fprintf(f, "kvmfleetctl [--socket PATH | --url URL --token-file FILE] [--json] COMMAND ...\n\n"
                   "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                fprintf(f, "  %-48s %s\n", commands[i].usage, commands[i].summary);
        fprintf(f, "\nOptions:\n"
                   "  --socket PATH      kvmfleetd's unix socket (default $KVMFLEET_SOCKET or %s)\n"
                   "  --url URL          reach kvmfleetd over TCP instead, e.g. http://host:8080\n"
                   "  --token-file FILE  bearer token for --url (default $KVMFLEET_TOKEN_FILE)\n"
                   "  --json             print the API's JSON instead of tables\n"
                   "  --timeout SECONDS  request timeout (default 120)\n\n"
                   "Exit codes: 0 ok, 1 refused by the API or check failing, 2 usage error, 3 kvmfleetd unreachable.\n",
                CLIENT_DEFAULT_SOCKET);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "socket", required_argument, NULL, 's' },
                { "url", required_argument, NULL, 'u' },
                { "token-file", required_argument, NULL, 't' },
                { "json", no_argument, NULL, 'j' },
                { "timeout", required_argument, NULL, 'T' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        Client client = { .socket_path = getenv("KVMFLEET_SOCKET") };
        const char *token_file = getenv("KVMFLEET_TOKEN_FILE");
        int c, r;

        if (!client.socket_path)
                client.socket_path = CLIENT_DEFAULT_SOCKET;
        /* "+": stop at the first command word so its own options stay for it */
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case 's': client.socket_path = optarg; break;
                case 'u': client.url = optarg; break;
                case 't': token_file = optarg; break;
                case 'j': client.json_output = true; break;
                case 'T': {
                        unsigned t;
                        if (safe_atou(optarg, &t) < 0 || t == 0) {
                                fprintf(stderr, "kvmfleetctl: --timeout must be a positive number of seconds\n");
                                return EXIT_USAGE;
                        }
                        client.timeout_s = t;
                        break;
                }
                case 'h': help(stdout); return EXIT_OK;
                case 'V': printf("kvmfleetctl %s\n", KVMFLEET_VERSION); return EXIT_OK;
                default: help(stderr); return EXIT_USAGE;
                }
        if (client.url) {
                if (!startswith(client.url, "http://") && !startswith(client.url, "https://")) {
                        fprintf(stderr, "kvmfleetctl: --url must start with http:// or https://\n");
                        return EXIT_USAGE;
                }
                if (token_file) {
                        r = read_one_line_file(token_file, &client.token);
                        if (r < 0) {
                                fprintf(stderr, "kvmfleetctl: cannot read token file %s: %s\n", token_file, strerror(-r));
                                return EXIT_USAGE;
                        }
                }
        }
        if (optind >= argc) {
                help(stderr);
                return EXIT_USAGE;
        }
        const char *group = argv[optind], *verb = optind + 1 < argc ? argv[optind + 1] : NULL;
        bool group_known = false;
        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                if (!streq(commands[i].group, group))
                        continue;
                group_known = true;
                if (!commands[i].verb) {
                        r = commands[i].run(&client, argc - optind, argv + optind);
                        goto done;
                }
                if (verb && streq(commands[i].verb, verb)) {
                        r = commands[i].run(&client, argc - optind - 1, argv + optind + 1);
                        goto done;
                }
        }
        if (group_known) {
                fprintf(stderr, "kvmfleetctl: \"%s\" needs one of:", group);
                for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                        if (streq(commands[i].group, group))
                                fprintf(stderr, " %s", commands[i].verb);
                fprintf(stderr, "%s%s\n", verb ? "; not " : "", verb ? verb : "");
        } else
                fprintf(stderr, "kvmfleetctl: unknown command \"%s\" (see kvmfleetctl --help)\n", group);
        r = EXIT_USAGE;
done:
        if (client.token)
                explicit_bzero(client.token, strlen(client.token));
        free(client.token);
        return r;
}
