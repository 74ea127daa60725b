/* SPDX-License-Identifier: MIT */
/* VM save/restore through the agent (docs/snapshot.md): POST /v1/vms/{id}/snapshot asks the paused
 * VM's VMM to write a snapshot; POST /v1/vms {"restore_from"} verifies a snapshot (manifest,
 * checksums, host compatibility) before it creates an inventory row or a process, then defines the
 * VM from the snapshot's spec and starts a VMM that restores it. */
#pragma once

#include <json-c/json.h>

#include "vms.h"

#define SNAPSHOT_CONTROL_TIMEOUT_MS (10 * 60 * 1000) /* writing and checksumming all guest memory */

/* body: {"dir": PATH}. 409 invalid_state unless paused; 422 invalid_argument naming $.dir. */
int vms_snapshot(Manager *m, const char *id, json_object *body, const char *actor, VmRecord **ret, VmError *e);
/* body: {"restore_from": DIR, "name"?, "uuid"?, "paused"?}. 422 snapshot_invalid (or
 * snapshot_incompatible) with details {"path", "reason"} before anything is created. */
int vms_restore(Manager *m, json_object *body, const char *actor, VmRecord **ret, VmError *e);
