/* SPDX-License-Identifier: MIT */
/* The manifest of a VM snapshot directory (docs/snapshot.md): what was saved, from which host, and
 * every file's size and SHA-256. Parsing and verification are pure (files and JSON, no KVM object),
 * so that the VMM and the agent both refuse a snapshot before they create anything. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "json-util.h"
#include "memslot-rules.h"
#include "sha256.h"
#include "spec.h"

#define SNAPSHOT_FORMAT "kvmfleet-snapshot"
#define SNAPSHOT_FORMAT_VERSION 1
#define SNAPSHOT_MANIFEST_FILE "manifest.json"
#define SNAPSHOT_SPEC_FILE "spec.json"
#define SNAPSHOT_MANIFEST_SIZE_MAX (4 * 1024 * 1024)
#define SNAPSHOT_SPEC_SIZE_MAX (1024 * 1024)
#define SNAPSHOT_FILES_MAX 8192
#define SNAPSHOT_FILE_NAME_MAX 64
#define SNAPSHOT_DIR_MAX 1024 /* bytes of a snapshot directory's path */

/* What the VMM's own vCPU loop was doing, beyond what KVM holds. */
typedef enum SnapshotVcpuRun {
        SNAPSHOT_VCPU_RUNNING, /* runs (or waits in KVM) after restore */
        SNAPSHOT_VCPU_HALTED,  /* HLT without an in-kernel irqchip: stays halted */
        SNAPSHOT_VCPU_OFFLINE, /* an AP that never started (irqchip none) */
} SnapshotVcpuRun;

typedef struct SnapshotFile {
        char name[SNAPSHOT_FILE_NAME_MAX + 1];
        uint64_t size;
        char sha256[SHA256_HEX_SIZE];
} SnapshotFile;

typedef struct SnapshotMemslot {
        MemslotInfo info;
        char file[SNAPSHOT_FILE_NAME_MAX + 1];
} SnapshotMemslot;

typedef struct SnapshotManifest {
        unsigned version;
        char kvmfleet_version[64];
        uint64_t created_at; /* seconds since the epoch */
        char cpu_vendor[13]; /* CPUID leaf 0 vendor string */
        uint32_t nested_state_size; /* KVM_CAP_NESTED_STATE of the host that saved it */
        uint32_t xsave_size;        /* bytes of each vCPU's xsave file */
        unsigned vcpus;
        VmIrqchip irqchip;
        SnapshotVcpuRun *vcpu_run; /* vcpus entries */
        SnapshotMemslot *memslots;
        size_t n_memslots;
        SnapshotFile *files;
        size_t n_files;
} SnapshotManifest;

SnapshotManifest *snapshot_manifest_free(SnapshotManifest *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(SnapshotManifest *, snapshot_manifest_free);

const char *snapshot_vcpu_run_to_string(SnapshotVcpuRun r);

/* Strict: unknown keys, bad names (anything but [A-Za-z0-9._-], "." and ".."), duplicate files,
 * malformed checksums, a memslot file or spec.json missing from the file list are refused with
 * e->path naming the field ("$.files[3].sha256"). A version other than SNAPSHOT_FORMAT_VERSION is
 * -EPROTONOSUPPORT. */
int snapshot_manifest_from_json(json_object *obj, SnapshotManifest **ret, JsonError *e);
int snapshot_manifest_to_json(const SnapshotManifest *m, json_object **ret);

/* Adds a file entry (the caller wrote it and knows its size and checksum). */
int snapshot_manifest_add_file(SnapshotManifest *m, const char *name, uint64_t size, const char *sha256);
const SnapshotFile *snapshot_manifest_find_file(const SnapshotManifest *m, const char *name);

/* This host may restore it: same CPU vendor, nested state no larger than host_nested_size.
 * -EXDEV (vendor) or -E2BIG (nested size), e->path "$.host.cpu_vendor" / "$.host.nested_state_size". */
int snapshot_manifest_check_host(const SnapshotManifest *m, const char *host_vendor, uint32_t host_nested_size,
                                 JsonError *e);

/* The CPU vendor string of this host (CPUID leaf 0), e.g. "GenuineIntel", "AuthenticAMD". */
void snapshot_host_cpu_vendor(char ret[13]);

/* Reads and parses dir's manifest, then checks every listed file: a regular file (no symlinks), of
 * the recorded size, with the recorded SHA-256; then parses spec.json and checks it against the
 * manifest (vcpus, irqchip). e->path names the file (or "manifest.json: $.field") at fault, and the
 * return value says what kind of fault: -ENOENT missing, -EBADMSG checksum, -EMSGSIZE size,
 * -EINVAL malformed, -EPROTONOSUPPORT version. Does not check the host (snapshot_manifest_check_host). */
int snapshot_verify_dir(const char *dir, SnapshotManifest **ret_manifest, VmSpec **ret_spec, JsonError *e);

/* A snapshot target: an absolute path of at most SNAPSHOT_DIR_MAX bytes, with no "." or ".."
 * components, that does not exist or is an empty directory. -EINVAL / -EEXIST / -ENOTDIR with e->path
 * "$.dir". */
int snapshot_check_target(const char *dir, JsonError *e);
