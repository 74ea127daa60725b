/* SPDX-License-Identifier: MIT */
/* A VM's KVM memslots over REST (docs/vmm-protocol.md "Memslots" for the VMM side). Each change runs
 * in the order that keeps the inventory and KVM from disagreeing: validate (vmm/memslot-rules.h,
 * against the VMM's live table and limits) → record the change as pending in the inventory → the
 * VMM's memslot.* method (which prepares the backing, then the ioctl) → record the result (or put the
 * row back as it was) → event. Runs under the VM's operation lock (vms_locked()). */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "vms.h"

/* Replaces the VM's inventory rows with the VMM's table (after a start, and when an agent re-adopts a
 * running VMM). Logs and returns -errno when the VMM does not answer. */
/* The VM's VMM ended: its slots no longer exist in KVM. The rows stay, as the last layout the VM
 * had, with state "inactive", until the next start replaces them with the new VMM's table. */
void memslots_vmm_ended(Manager *m, const char *uuid);
int memslots_sync(Manager *m, const char *uuid, const char *name, const char *control_path);

/* GET /v1/vms/{id}/memslots: {"memslots": [...], "limits"?: {...}} (limits while a VMM runs). */
int memslots_list(Manager *m, const char *id, json_object **ret, VmError *e);
int memslots_get(Manager *m, const char *id, unsigned as_id, unsigned slot, json_object **ret, VmError *e);
int memslots_create(Manager *m, const char *id, json_object *body, const char *actor, json_object **ret, VmError *e);
/* body: {"gpa"} (move) or {"flags": {"dirty_log"}}; force for a ram slot of a live VM. */
int memslots_patch(Manager *m, const char *id, unsigned as_id, unsigned slot, json_object *body, bool force,
                   const char *actor, json_object **ret, VmError *e);
int memslots_delete(Manager *m, const char *id, unsigned as_id, unsigned slot, bool force, const char *actor,
                    json_object **ret, VmError *e);
int memslots_dirty_log(Manager *m, const char *id, unsigned as_id, unsigned slot, bool clear, bool bitmap,
                       json_object **ret, VmError *e);
