/* SPDX-License-Identifier: MIT */
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "json-util.h"
#include "manager.h"
#include "str-util.h"
#include "vmm/control-client.h"
#include "vmm/snapshot-manifest.h"

_printf_(5, 6) static int fail(VmError *e, unsigned status, const char *code, json_object *details, const char *fmt, ...) {
        va_list ap;
        json_object_put(e->details);
        e->details = details;
        e->status = status;
        e->code = code;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof e->message, fmt, ap);
        va_end(ap);
        return status == 409 ? -EBUSY : status == 404 ? -ENOENT : status < 500 ? -EINVAL : -EIO;
}

static json_object *path_details(const char *path, const char *reason) {
        json_object *d = json_object_new_object();
        json_add_string(d, "path", path);
        json_add_string(d, "reason", reason);
        return d;
}

static void event(Manager *m, const char *actor, const char *uuid, const char *name, const char *action,
                  const char *result, const char *dir, const char *reason) {
        char object[48];
        json_object *d = json_object_new_object();
        snprintf(object, sizeof object, "vm/%s", uuid);
        json_add_string(d, "name", name);
        json_add_string(d, "dir", dir);
        if (reason)
                json_add_string(d, "reason", reason);
        manager_event(m, actor, object, action, result, d);
        json_object_put(d);
}

typedef struct SnapshotCall {
        const char *dir;
        const char *actor;
} SnapshotCall;

static int snapshot_locked(Manager *m, const VmRecord *r, const char *control_path, void *userdata, VmError *e) {
        SnapshotCall *c = userdata;
        _cleanup_free_ char *code = NULL, *msg = NULL;
        _cleanup_json_ json_object *params = json_object_new_object(), *res = NULL;

        if (!streq(r->state, "paused") || !control_path) {
                json_object *d = json_object_new_object();
                json_add_string(d, "state", r->state);
                json_add_string(d, "uuid", r->uuid);
                return fail(e, 409, "invalid_state", d, "cannot snapshot VM \"%s\" in state %s (pause it first)", r->name,
                            r->state);
        }
        if (!params || json_add_string(params, "dir", c->dir) < 0)
                return fail(e, 500, "internal", NULL, "out of memory");
        int k = vmm_control_call(control_path, "snapshot", params, SNAPSHOT_CONTROL_TIMEOUT_MS, &res, &code, &msg);
        if (k == 1) {
                event(m, c->actor, r->uuid, r->name, "snapshot", "failed", c->dir, msg);
                if (streq(code, "invalid_state"))
                        return fail(e, 409, "invalid_state", NULL, "%s", msg);
                if (streq(code, "invalid_argument"))
                        return fail(e, 422, "invalid_argument", path_details("$.dir", msg), "%s", msg);
                return fail(e, 500, "snapshot_failed", path_details("$.dir", msg), "snapshot of \"%s\" failed: %s", r->name, msg);
        }
        if (k < 0) {
                event(m, c->actor, r->uuid, r->name, "snapshot", "failed", c->dir, strerror(-k));
                return fail(e, 500, "vmm_failed", NULL, "the VMM of \"%s\" did not answer snapshot: %s", r->name, strerror(-k));
        }
        event(m, c->actor, r->uuid, r->name, "snapshot", "ok", c->dir, NULL);
        return 0;
}

int vms_snapshot(Manager *m, const char *id, json_object *body, const char *actor, VmRecord **ret, VmError *e) {
        static const char *const keys[] = { "dir", NULL };
        JsonError je = { .path = "" };
        const char *dir = NULL;
        int k;

        if (json_check_keys(body, "$", keys, &je) < 0 || json_get_string(body, "$", "dir", true, &dir, &je) < 0 ||
            snapshot_check_target(dir, &je) < 0)
                return fail(e, 422, "invalid_argument", path_details(je.path, je.message), "%s: %s", je.path, je.message);
        SnapshotCall c = { .dir = dir, .actor = actor };
        k = vms_locked(m, id, snapshot_locked, &c, e);
        if (k < 0)
                return k;
        k = store_vm_get(m->store, id, ret);
        if (k < 0)
                return fail(e, 500, "internal", NULL, "inventory: %s", strerror(-k));
        return 0;
}

static uint32_t host_nested_state_size(void) {
        _cleanup_close_ int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return 0;
        int r = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE);
        return r > 0 ? (uint32_t) r : 0;
}

int vms_restore(Manager *m, json_object *body, const char *actor, VmRecord **ret, VmError *e) {
        static const char *const keys[] = { "restore_from", "name", "uuid", "paused", NULL };
        _cleanup_(snapshot_manifest_freep) SnapshotManifest *manifest = NULL;
        _cleanup_vm_spec_ VmSpec *spec = NULL;
        _cleanup_json_ json_object *spec_json = NULL;
        _cleanup_(vm_record_freep) VmRecord *defined = NULL;
        JsonError je = { .path = "" };
        const char *dir = NULL, *name = NULL, *uuid = NULL;
        bool paused = false;
        char vendor[13], uuid_buf[37];
        int k;

        if (json_check_keys(body, "$", keys, &je) < 0 || json_get_string(body, "$", "restore_from", true, &dir, &je) < 0 ||
            json_get_string(body, "$", "name", false, &name, &je) < 0 ||
            json_get_string(body, "$", "uuid", false, &uuid, &je) < 0 ||
            json_get_bool(body, "$", "paused", false, &paused, &je) < 0)
                return fail(e, 422, "invalid_argument", path_details(je.path, je.message), "%s: %s", je.path, je.message);
        if (dir[0] != '/' || strlen(dir) > SNAPSHOT_DIR_MAX)
                return fail(e, 422, "invalid_argument", path_details("$.restore_from", "must be an absolute path"),
                            "$.restore_from: must be an absolute path of at most %d bytes", SNAPSHOT_DIR_MAX);

        /* everything about the snapshot is checked before a row or a process exists */
        k = snapshot_verify_dir(dir, &manifest, &spec, &je);
        if (k < 0) {
                json_object *d = path_details(je.path, je.message);
                json_add_string(d, "dir", dir);
                return fail(e, 422, "snapshot_invalid", d, "snapshot %s refused: %s: %s", dir, je.path, je.message);
        }
        snapshot_host_cpu_vendor(vendor);
        k = snapshot_manifest_check_host(manifest, vendor, host_nested_state_size(), &je);
        if (k < 0) {
                char path[300];
                snprintf(path, sizeof path, "manifest.json: %s", je.path);
                json_object *d = path_details(path, je.message);
                json_add_string(d, "dir", dir);
                return fail(e, 422, "snapshot_incompatible", d, "snapshot %s refused: %s: %s", dir, path, je.message);
        }

        /* the snapshot's spec, under a new identity unless one is asked for */
        free(spec->uuid);
        if (!uuid) {
                uuid_generate_str(uuid_buf);
                uuid = uuid_buf;
        }
        spec->uuid = strdup(uuid);
        if (name) {
                free(spec->name);
                spec->name = strdup(name);
        }
        if (!spec->uuid || !spec->name)
                return fail(e, 500, "internal", NULL, "out of memory");
        free(spec->console_log); /* the snapshot's console log belongs to the VM it was taken from */
        spec->console_log = NULL;
        k = vm_spec_to_json(spec, &spec_json);
        if (k < 0)
                return fail(e, 500, "internal", NULL, "cannot format the spec: %s", strerror(-k));
        k = vms_create_restored(m, spec_json, actor, &defined, e);
        if (k < 0)
                return k;
        k = vms_start_restored(m, defined->uuid, dir, paused, actor, ret, e);
        if (k < 0) {
                /* a restore that did not start leaves no VM behind */
                VmError ignored = { 0 };
                (void) vms_delete(m, defined->uuid, true, actor, &ignored);
                vm_error_done(&ignored);
                return k;
        }
        return 0;
}
