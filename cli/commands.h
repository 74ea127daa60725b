/* SPDX-License-Identifier: MIT */
#pragma once

/* Each command parses its own options with getopt_long() after setting optind = 0 (not 1): only 0
 * makes glibc start afresh, so options may follow the positional arguments ("vm stop NAME
 * --timeout 5") even though the top level parsed with "+" (stop at the command). */

#include "client.h"

/* One kvmfleetctl command: "GROUP VERB" (verb NULL for single-word commands). The handler gets
 * the arguments after the command words and returns an exit code. */
typedef struct Command {
        const char *group;
        const char *verb;
        int (*run)(Client *c, int argc, char **argv);
        const char *usage;
        const char *summary;
} Command;

int cmd_host_info(Client *c, int argc, char **argv);
int cmd_host_kvm(Client *c, int argc, char **argv);
int cmd_health(Client *c, int argc, char **argv);
int cmd_events(Client *c, int argc, char **argv);
int cmd_vm_create(Client *c, int argc, char **argv);
int cmd_vm_list(Client *c, int argc, char **argv);
int cmd_vm_show(Client *c, int argc, char **argv);
int cmd_vm_start(Client *c, int argc, char **argv);
int cmd_vm_stop(Client *c, int argc, char **argv);
int cmd_vm_pause(Client *c, int argc, char **argv);
int cmd_vm_resume(Client *c, int argc, char **argv);
int cmd_vm_restart(Client *c, int argc, char **argv);
int cmd_vm_delete(Client *c, int argc, char **argv);
int cmd_vm_console(Client *c, int argc, char **argv);
int cmd_vm_stats(Client *c, int argc, char **argv);
int cmd_vm_define(Client *c, int argc, char **argv);
int cmd_vm_dumpxml(Client *c, int argc, char **argv);
int cmd_vm_snapshot(Client *c, int argc, char **argv);
int cmd_vm_restore(Client *c, int argc, char **argv);
int cmd_vm_apicv(Client *c, int argc, char **argv);
int cmd_vm_lapic(Client *c, int argc, char **argv);
int cmd_vm_nested_state(Client *c, int argc, char **argv);
int cmd_memslot_list(Client *c, int argc, char **argv);
int cmd_memslot_add(Client *c, int argc, char **argv);
int cmd_memslot_move(Client *c, int argc, char **argv);
int cmd_memslot_set(Client *c, int argc, char **argv);
int cmd_memslot_delete(Client *c, int argc, char **argv);
int cmd_memslot_dirty_log(Client *c, int argc, char **argv);

/* Helpers for command files. */
const char *json_str(json_object *o, const char *key); /* "" → NULL-safe string, NULL when absent */
void print_json(json_object *o);
