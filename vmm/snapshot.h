/* SPDX-License-Identifier: MIT */
/* Save and restore of a whole VM (docs/snapshot.md): spec, every memslot's memory, each vCPU's
 * architectural state as KVM reports it, the in-kernel irqchip, PIT and clock, and the VMM's own
 * devices. A snapshot is written into a temporary directory next to the target and renamed into
 * place, so a failure leaves nothing behind. */
#pragma once

#include "json-util.h"
#include "snapshot-manifest.h"
#include "vm.h"

#define SNAPSHOT_VCPU_TIMEOUT_MS 2000

/* The VM must be paused. dir: see snapshot_check_target(). e->path names the field or file at fault;
 * -EBUSY when the VM is not paused, -EINVAL/-EEXIST/-ENOTDIR for dir, other -errno from KVM (e says
 * which ioctl) or the file system. */
int vm_snapshot_save(Vm *vm, const char *dir, JsonError *e);

/* The spec a restore runs with: the snapshot's, or given one that differs only in what does not
 * shape the machine (name, uuid, console, lifecycle actions, cpuset). -EINVAL naming the field
 * otherwise. */
int snapshot_spec_compatible(const VmSpec *snapshot, const VmSpec *given, JsonError *e);

/* After vm_create_for_restore(): lays out the memslots as the manifest says, fills them from the
 * files, then sets the VM's and every vCPU's state. The manifest was verified (snapshot_verify_dir,
 * snapshot_manifest_check_host). */
int vm_snapshot_restore(Vm *vm, const SnapshotManifest *m, const char *dir, JsonError *e);
