/* SPDX-License-Identifier: MIT */
/* VM lifecycle and the VMM supervisor.
 *
 * Every operation follows the same order so the inventory and the VMMs can't disagree after a
 * crash of either: write the intent (a transitional state) to the inventory, act on the VMM, write
 * the result. vms_reconcile() resolves every point in between when the agent starts.
 *
 * Operations on one VM are serialized by a per-VM lock; operations on different VMs run in
 * parallel on libmicrohttpd's threads. VMM processes are watched through pidfds in the main loop;
 * exits nobody asked for are handled on a worker thread (crashed, on_crash, reboot). */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "store.h"

typedef struct Manager Manager;
typedef struct VmSupervisor VmSupervisor;

/* Why an operation was refused or failed, ready for an HTTP error body. */
typedef struct VmError {
        unsigned status;        /* 4xx/5xx */
        const char *code;       /* API error code */
        char message[768];
        json_object *details;   /* owned; may be NULL */
} VmError;

void vm_error_done(VmError *e);

int vm_supervisor_new(Manager *m, VmSupervisor **ret);
/* Stops watching (the VMMs keep running) and frees. */
VmSupervisor *vm_supervisor_free(VmSupervisor *s);
/* Hooks the pidfd watches into the manager's event loop; call once the loop exists. */
int vm_supervisor_attach_event(VmSupervisor *s);

/* At agent start: adopt live VMMs, mark dead ones crashed, report VMMs unknown to the inventory. */
int vms_reconcile(Manager *m);

/* Each returns 0 and the VM's record, or -errno with *e filled (status, code, message). */
int vms_create(Manager *m, json_object *spec, const char *actor, VmRecord **ret, VmError *e);
int vms_start(Manager *m, const char *id, const char *actor, VmRecord **ret, VmError *e);
/* For a restore (agent/snapshot.h): vms_create() without the boot-file check (a restored VM does not
 * boot), and a start whose VMM restores dir (kvmfleet-vmm --restore) instead of booting, paused or
 * running; its event is "restore". */
int vms_create_restored(Manager *m, json_object *spec, const char *actor, VmRecord **ret, VmError *e);
int vms_start_restored(Manager *m, const char *id, const char *dir, bool paused, const char *actor, VmRecord **ret,
                       VmError *e);
/* timeout_s < 0: the configured stop_timeout. force: SIGKILL without asking. */
int vms_stop(Manager *m, const char *id, int timeout_s, bool force, const char *actor, VmRecord **ret, VmError *e);
int vms_pause(Manager *m, const char *id, const char *actor, VmRecord **ret, VmError *e);
int vms_resume(Manager *m, const char *id, const char *actor, VmRecord **ret, VmError *e);
int vms_restart(Manager *m, const char *id, const char *actor, VmRecord **ret, VmError *e);
int vms_delete(Manager *m, const char *id, bool force, const char *actor, VmError *e);

/* A call to the VM's VMM control socket (stats and other read-only methods); 409 when no VMM runs. */
int vms_control(Manager *m, const char *id, const char *method, json_object *params, json_object **ret, VmError *e);

/* Runs fn with the VM's operation lock held, so that it is serialized with start, stop and the
 * other operations on the VM. control_path is the VMM's control socket while the VM is running or
 * paused, NULL otherwise. Returns what fn returns. */
typedef int (*VmLockedFn)(Manager *m, const VmRecord *r, const char *control_path, void *userdata, VmError *e);
int vms_locked(Manager *m, const char *id, VmLockedFn fn, void *userdata, VmError *e);

/* Path of the console log the VMM writes for this VM (the spec's console.log or the agent's). */
int vms_console_path(Manager *m, const VmRecord *r, char **ret);
/* True while a VMM process for this uuid is being watched. */
bool vms_vmm_alive(Manager *m, const char *uuid);

/* Counts by state, for health and metrics: fills a JSON object {state: n}. */
int vms_count_by_state(Manager *m, json_object **ret);
