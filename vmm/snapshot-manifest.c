/* SPDX-License-Identifier: MIT */
#include "snapshot-manifest.h"

#include <cpuid.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd-util.h"
#include "str-util.h"

static const char *const vcpu_run_names[] = { "running", "halted", "offline", NULL };
static const char *const irqchip_names[] = { "kernel", "split", "none", NULL };
static const char *const backing_names[] = { "memfd", "hugetlb", "anonymous", "guest_memfd", NULL };
static const char *const role_names[] = { "ram", "user", NULL };

SnapshotManifest *snapshot_manifest_free(SnapshotManifest *m) {
        if (!m)
                return NULL;
        free(m->vcpu_run);
        free(m->memslots);
        free(m->files);
        free(m);
        return NULL;
}

const char *snapshot_vcpu_run_to_string(SnapshotVcpuRun r) {
        return (unsigned) r < 3 ? vcpu_run_names[r] : "unknown";
}

static bool file_name_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > SNAPSHOT_FILE_NAME_MAX || streq(s, ".") || streq(s, ".."))
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
                      *p == '_' || *p == '-'))
                        return false;
        return true;
}

static bool sha256_hex_valid(const char *s) {
        if (strlen(s) != SHA256_HEX_SIZE - 1)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

const SnapshotFile *snapshot_manifest_find_file(const SnapshotManifest *m, const char *name) {
        for (size_t i = 0; i < m->n_files; i++)
                if (streq(m->files[i].name, name))
                        return &m->files[i];
        return NULL;
}

int snapshot_manifest_add_file(SnapshotManifest *m, const char *name, uint64_t size, const char *sha256) {
        if (!file_name_valid(name) || !sha256_hex_valid(sha256) || snapshot_manifest_find_file(m, name))
                return -EINVAL;
        if (m->n_files >= SNAPSHOT_FILES_MAX)
                return -E2BIG;
        SnapshotFile *f = realloc(m->files, (m->n_files + 1) * sizeof *f);
        if (!f)
                return -ENOMEM;
        m->files = f;
        f = &m->files[m->n_files++];
        *f = (SnapshotFile){ .size = size };
        strscpy(f->name, sizeof f->name, name);
        strscpy(f->sha256, sizeof f->sha256, sha256);
        return 0;
}

static int parse_files(SnapshotManifest *m, json_object *arr, JsonError *e) {
        static const char *const keys[] = { "name", "size", "sha256", NULL };
        size_t n = json_object_array_length(arr);
        char path[64];

        if (n > SNAPSHOT_FILES_MAX)
                return json_error_set(e, "$.files", "more than %d files", SNAPSHOT_FILES_MAX);
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_array_get_idx(arr, i);
                const char *name, *sum;
                uint64_t size;
                json_path_index(path, sizeof path, "$.files", i);
                if (json_expect_object(o, path, e) < 0 || json_check_keys(o, path, keys, e) < 0 ||
                    json_get_string(o, path, "name", true, &name, e) < 0 ||
                    json_get_uint64(o, path, "size", true, 0, UINT64_MAX, &size, e) < 0 ||
                    json_get_string(o, path, "sha256", true, &sum, e) < 0)
                        return -EINVAL;
                if (!file_name_valid(name))
                        return json_error_set(e, path, "name \"%.80s\" is not a plain file name", name);
                if (snapshot_manifest_find_file(m, name))
                        return json_error_set(e, path, "file \"%s\" is listed twice", name);
                if (!sha256_hex_valid(sum))
                        return json_error_set(e, path, "sha256 must be 64 lowercase hex digits");
                int r = snapshot_manifest_add_file(m, name, size, sum);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_memslots(SnapshotManifest *m, json_object *arr, JsonError *e) {
        static const char *const keys[] = { "slot", "as_id", "gpa", "size", "flags", "backing", "role", "file", NULL };
        static const char *const flag_keys[] = { "dirty_log", "readonly", NULL };
        size_t n = json_object_array_length(arr);
        char path[64], fpath[80];

        if (n > SNAPSHOT_FILES_MAX)
                return json_error_set(e, "$.memslots", "more than %d memslots", SNAPSHOT_FILES_MAX);
        m->memslots = calloc(n ?: 1, sizeof *m->memslots);
        if (!m->memslots)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_array_get_idx(arr, i), *flags = NULL;
                SnapshotMemslot *s = &m->memslots[i];
                const char *file;
                uint64_t slot, as_id;
                int backing = 0, role = 0;
                json_path_index(path, sizeof path, "$.memslots", i);
                json_path_key(fpath, sizeof fpath, path, "flags");
                if (json_expect_object(o, path, e) < 0 || json_check_keys(o, path, keys, e) < 0 ||
                    json_get_uint64(o, path, "slot", true, 0, UINT16_MAX, &slot, e) < 0 ||
                    json_get_uint64(o, path, "as_id", true, 0, UINT16_MAX, &as_id, e) < 0 ||
                    json_get_uint64(o, path, "gpa", true, 0, UINT64_MAX, &s->info.gpa, e) < 0 ||
                    json_get_uint64(o, path, "size", true, 1, UINT64_MAX, &s->info.size, e) < 0 ||
                    json_get_object(o, path, "flags", true, &flags, e) < 0 ||
                    json_check_keys(flags, fpath, flag_keys, e) < 0 ||
                    json_get_bool(flags, fpath, "dirty_log", true, &s->info.dirty_log, e) < 0 ||
                    json_get_bool(flags, fpath, "readonly", true, &s->info.readonly, e) < 0 ||
                    json_get_enum(o, path, "backing", true, backing_names, &backing, e) < 0 ||
                    json_get_enum(o, path, "role", true, role_names, &role, e) < 0 ||
                    json_get_string(o, path, "file", true, &file, e) < 0)
                        return -EINVAL;
                s->info.slot = (uint32_t) slot;
                s->info.as_id = (uint16_t) as_id;
                s->info.backing = (MemslotBacking) backing;
                s->info.role = (MemslotRole) role;
                if (!file_name_valid(file))
                        return json_error_set(e, path, "file \"%.80s\" is not a plain file name", file);
                strscpy(s->file, sizeof s->file, file);
                for (size_t j = 0; j < i; j++)
                        if (m->memslots[j].info.slot == s->info.slot && m->memslots[j].info.as_id == s->info.as_id)
                                return json_error_set(e, path, "slot %u of address space %u is listed twice",
                                                      s->info.slot, s->info.as_id);
                m->n_memslots = i + 1;
        }
        return 0;
}

int snapshot_manifest_from_json(json_object *obj, SnapshotManifest **ret, JsonError *e) {
        static const char *const keys[] = { "format", "version", "kvmfleet_version", "created_at", "host", "vcpus",
                                            "irqchip", "xsave_size", "vcpu_run", "memslots", "files", NULL };
        static const char *const host_keys[] = { "cpu_vendor", "nested_state_size", NULL };
        _cleanup_(snapshot_manifest_freep) SnapshotManifest *m = NULL;
        json_object *host, *runs, *slots, *files;
        const char *format, *version_str, *vendor;
        uint64_t version, vcpus, nested, xsave;
        int irqchip;
        char path[64];

        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        if (json_expect_object(obj, "$", e) < 0 ||
            json_get_string(obj, "$", "format", true, &format, e) < 0)
                return -EINVAL;
        if (!streq(format, SNAPSHOT_FORMAT))
                return json_error_set(e, "$.format", "is \"%.64s\", not a kvmfleet snapshot", format);
        if (json_get_uint64(obj, "$", "version", true, 0, UINT32_MAX, &version, e) < 0)
                return -EINVAL;
        if (version != SNAPSHOT_FORMAT_VERSION) {
                json_error_set(e, "$.version", "format version %llu; this kvmfleet reads version %d",
                               (unsigned long long) version, SNAPSHOT_FORMAT_VERSION);
                return -EPROTONOSUPPORT;
        }
        if (json_check_keys(obj, "$", keys, e) < 0 ||
            json_get_string(obj, "$", "kvmfleet_version", true, &version_str, e) < 0 ||
            json_get_uint64(obj, "$", "created_at", true, 0, UINT64_MAX, &m->created_at, e) < 0 ||
            json_get_object(obj, "$", "host", true, &host, e) < 0 || json_check_keys(host, "$.host", host_keys, e) < 0 ||
            json_get_string(host, "$.host", "cpu_vendor", true, &vendor, e) < 0 ||
            json_get_uint64(host, "$.host", "nested_state_size", true, 0, UINT32_MAX, &nested, e) < 0 ||
            json_get_uint64(obj, "$", "vcpus", true, 1, VM_SPEC_VCPUS_MAX, &vcpus, e) < 0 ||
            json_get_enum(obj, "$", "irqchip", true, irqchip_names, &irqchip, e) < 0 ||
            json_get_uint64(obj, "$", "xsave_size", true, 0, 1024 * 1024, &xsave, e) < 0 ||
            json_get_array(obj, "$", "vcpu_run", true, &runs, e) < 0 ||
            json_get_array(obj, "$", "memslots", true, &slots, e) < 0 ||
            json_get_array(obj, "$", "files", true, &files, e) < 0)
                return -EINVAL;
        if (strlen(vendor) != 12)
                return json_error_set(e, "$.host.cpu_vendor", "must be the 12-character CPUID vendor string");
        m->version = (unsigned) version;
        strscpy(m->kvmfleet_version, sizeof m->kvmfleet_version, version_str);
        strscpy(m->cpu_vendor, sizeof m->cpu_vendor, vendor);
        m->nested_state_size = (uint32_t) nested;
        m->xsave_size = (uint32_t) xsave;
        m->vcpus = (unsigned) vcpus;
        m->irqchip = (VmIrqchip) irqchip;

        if (json_object_array_length(runs) != m->vcpus)
                return json_error_set(e, "$.vcpu_run", "has %zu entries for %u vCPUs", json_object_array_length(runs),
                                      m->vcpus);
        m->vcpu_run = calloc(m->vcpus, sizeof *m->vcpu_run);
        if (!m->vcpu_run)
                return -ENOMEM;
        for (unsigned i = 0; i < m->vcpus; i++) {
                const char *s = json_object_get_string(json_object_array_get_idx(runs, i));
                int k = -1;
                for (int j = 0; vcpu_run_names[j]; j++)
                        if (s && json_object_is_type(json_object_array_get_idx(runs, i), json_type_string) &&
                            streq(s, vcpu_run_names[j]))
                                k = j;
                json_path_index(path, sizeof path, "$.vcpu_run", i);
                if (k < 0)
                        return json_error_set(e, path, "must be \"running\", \"halted\" or \"offline\"");
                m->vcpu_run[i] = (SnapshotVcpuRun) k;
        }
        if (parse_files(m, files, e) < 0 || parse_memslots(m, slots, e) < 0)
                return -EINVAL;
        if (!snapshot_manifest_find_file(m, SNAPSHOT_SPEC_FILE))
                return json_error_set(e, "$.files", "does not list %s", SNAPSHOT_SPEC_FILE);
        for (size_t i = 0; i < m->n_memslots; i++) {
                const SnapshotFile *f = snapshot_manifest_find_file(m, m->memslots[i].file);
                json_path_index(path, sizeof path, "$.memslots", i);
                if (!f)
                        return json_error_set(e, path, "its file \"%s\" is not in $.files", m->memslots[i].file);
                if (f->size != m->memslots[i].info.size)
                        return json_error_set(e, path, "its file \"%s\" has %llu bytes for a slot of %llu", f->name,
                                              (unsigned long long) f->size, (unsigned long long) m->memslots[i].info.size);
        }
        *ret = TAKE_PTR(m);
        return 0;
}

int snapshot_manifest_to_json(const SnapshotManifest *m, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *host = json_object_new_object(), *runs = json_object_new_array(), *slots = json_object_new_array(),
                    *files = json_object_new_array();
        int r = 0;

        if (!o || !host || !runs || !slots || !files) {
                json_object_put(host);
                json_object_put(runs);
                json_object_put(slots);
                json_object_put(files);
                return -ENOMEM;
        }
        r |= json_add_string(o, "format", SNAPSHOT_FORMAT);
        r |= json_add_uint(o, "version", m->version);
        r |= json_add_string(o, "kvmfleet_version", m->kvmfleet_version);
        r |= json_add_uint(o, "created_at", m->created_at);
        r |= json_add(o, "host", host);
        r |= json_add_string(host, "cpu_vendor", m->cpu_vendor);
        r |= json_add_uint(host, "nested_state_size", m->nested_state_size);
        r |= json_add_uint(o, "vcpus", m->vcpus);
        r |= json_add_string(o, "irqchip", irqchip_names[m->irqchip]);
        r |= json_add_uint(o, "xsave_size", m->xsave_size);
        r |= json_add(o, "vcpu_run", runs);
        for (unsigned i = 0; i < m->vcpus && m->vcpu_run; i++)
                r |= json_object_array_add(runs, json_object_new_string(snapshot_vcpu_run_to_string(m->vcpu_run[i])));
        r |= json_add(o, "memslots", slots);
        for (size_t i = 0; i < m->n_memslots; i++) {
                const SnapshotMemslot *s = &m->memslots[i];
                json_object *so = json_object_new_object(), *fl = json_object_new_object();
                if (!so || !fl || json_object_array_add(slots, so) < 0) {
                        json_object_put(so);
                        json_object_put(fl);
                        return -ENOMEM;
                }
                r |= json_add_uint(so, "slot", s->info.slot);
                r |= json_add_uint(so, "as_id", s->info.as_id);
                r |= json_add_uint(so, "gpa", s->info.gpa);
                r |= json_add_uint(so, "size", s->info.size);
                r |= json_add(so, "flags", fl);
                r |= json_add_bool(fl, "dirty_log", s->info.dirty_log);
                r |= json_add_bool(fl, "readonly", s->info.readonly);
                r |= json_add_string(so, "backing", memslot_backing_to_string(s->info.backing));
                r |= json_add_string(so, "role", memslot_role_to_string(s->info.role));
                r |= json_add_string(so, "file", s->file);
        }
        r |= json_add(o, "files", files);
        for (size_t i = 0; i < m->n_files; i++) {
                json_object *fo = json_object_new_object();
                if (!fo || json_object_array_add(files, fo) < 0) {
                        json_object_put(fo);
                        return -ENOMEM;
                }
                r |= json_add_string(fo, "name", m->files[i].name);
                r |= json_add_uint(fo, "size", m->files[i].size);
                r |= json_add_string(fo, "sha256", m->files[i].sha256);
        }
        if (r < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

void snapshot_host_cpu_vendor(char ret[13]) {
        unsigned a = 0, b = 0, c = 0, d = 0;
        __cpuid(0, a, b, c, d);
        memcpy(ret, &b, 4);
        memcpy(ret + 4, &d, 4);
        memcpy(ret + 8, &c, 4);
        ret[12] = 0;
}

int snapshot_manifest_check_host(const SnapshotManifest *m, const char *host_vendor, uint32_t host_nested_size,
                                 JsonError *e) {
        if (!streq(m->cpu_vendor, host_vendor)) {
                json_error_set(e, "$.host.cpu_vendor", "the snapshot was taken on a %s host, this host is %s",
                               m->cpu_vendor, host_vendor);
                return -EXDEV;
        }
        if (m->nested_state_size > host_nested_size) {
                json_error_set(e, "$.host.nested_state_size",
                               "the snapshot's nested state size %u exceeds this host's KVM_CAP_NESTED_STATE %u",
                               m->nested_state_size, host_nested_size);
                return -E2BIG;
        }
        return 0;
}

static int verify_file(int dir_fd, const SnapshotFile *f, JsonError *e) {
        _cleanup_close_ int fd = openat(dir_fd, f->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        char hex[SHA256_HEX_SIZE];
        struct stat st;
        uint64_t size;
        int r;

        if (fd < 0) {
                r = -errno;
                json_error_set(e, f->name, "cannot open: %s", strerror(-r));
                return r == -ELOOP ? -EINVAL : r;
        }
        if (fstat(fd, &st) < 0)
                return json_error_set(e, f->name, "cannot stat: %s", strerror(errno)), -EIO;
        if (!S_ISREG(st.st_mode))
                return json_error_set(e, f->name, "is not a regular file");
        if ((uint64_t) st.st_size != f->size) {
                json_error_set(e, f->name, "has %llu bytes, the manifest says %llu (truncated or replaced)",
                               (unsigned long long) st.st_size, (unsigned long long) f->size);
                return -EMSGSIZE;
        }
        r = sha256_fd(fd, hex, &size);
        if (r < 0)
                return json_error_set(e, f->name, "cannot read: %s", strerror(-r)), r;
        if (size != f->size) {
                json_error_set(e, f->name, "changed size while it was read");
                return -EMSGSIZE;
        }
        if (!streq(hex, f->sha256)) {
                json_error_set(e, f->name, "SHA-256 %s does not match the manifest's %s", hex, f->sha256);
                return -EBADMSG;
        }
        return 0;
}

int snapshot_verify_dir(const char *dir, SnapshotManifest **ret_manifest, VmSpec **ret_spec, JsonError *e) {
        _cleanup_(snapshot_manifest_freep) SnapshotManifest *m = NULL;
        _cleanup_vm_spec_ VmSpec *spec = NULL;
        _cleanup_json_ json_object *obj = NULL;
        _cleanup_free_ char *text = NULL, *spec_text = NULL, *path = NULL;
        _cleanup_close_ int dir_fd = -1;
        JsonError je = {};
        size_t len;
        int r;

        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0) {
                r = -errno;
                json_error_set(e, "$.dir", "cannot open \"%.200s\": %s", dir, strerror(-r));
                return r;
        }
        if (asprintf(&path, "%s/%s", dir, SNAPSHOT_MANIFEST_FILE) < 0)
                return -ENOMEM;
        r = read_full_file(path, SNAPSHOT_MANIFEST_SIZE_MAX, &text, &len);
        if (r < 0) {
                json_error_set(e, SNAPSHOT_MANIFEST_FILE, "cannot read: %s", strerror(-r));
                return r == -ENOENT ? r : -EINVAL;
        }
        if (json_parse(text, len, 16, &obj, &je) < 0)
                return json_error_set(e, SNAPSHOT_MANIFEST_FILE, "%s", je.message);
        r = snapshot_manifest_from_json(obj, &m, &je);
        if (r < 0) {
                if (r == -EINVAL || r == -EPROTONOSUPPORT)
                        snprintf(e->path, sizeof e->path, "%s: %.200s", SNAPSHOT_MANIFEST_FILE, je.path);
                snprintf(e->message, sizeof e->message, "%s", je.message);
                return r;
        }
        for (size_t i = 0; i < m->n_files; i++) {
                r = verify_file(dir_fd, &m->files[i], e);
                if (r < 0)
                        return r;
        }
        free(path);
        path = NULL;
        if (asprintf(&path, "%s/%s", dir, SNAPSHOT_SPEC_FILE) < 0)
                return -ENOMEM;
        r = read_full_file(path, SNAPSHOT_SPEC_SIZE_MAX, &spec_text, &len);
        if (r < 0)
                return json_error_set(e, SNAPSHOT_SPEC_FILE, "cannot read: %s", strerror(-r));
        r = vm_spec_from_string(spec_text, len, &spec, &je);
        if (r < 0) {
                snprintf(e->path, sizeof e->path, "%s: %.200s", SNAPSHOT_SPEC_FILE, je.path);
                snprintf(e->message, sizeof e->message, "%s", je.message);
                return -EINVAL;
        }
        if (spec->vcpus != m->vcpus)
                return json_error_set(e, "manifest.json: $.vcpus", "%u vCPUs, but spec.json has %u", m->vcpus, spec->vcpus);
        if (spec->irqchip != m->irqchip)
                return json_error_set(e, "manifest.json: $.irqchip", "\"%s\", but spec.json has \"%s\"",
                                      irqchip_names[m->irqchip], vm_irqchip_to_string(spec->irqchip));
        if (ret_manifest)
                *ret_manifest = TAKE_PTR(m);
        if (ret_spec)
                *ret_spec = TAKE_PTR(spec);
        return 0;
}

int snapshot_check_target(const char *dir, JsonError *e) {
        struct stat st;
        size_t n = strlen(dir);

        if (dir[0] != '/')
                return json_error_set(e, "$.dir", "must be an absolute path");
        if (n > SNAPSHOT_DIR_MAX)
                return json_error_set(e, "$.dir", "must be at most %d bytes", SNAPSHOT_DIR_MAX);
        if (n == 1)
                return json_error_set(e, "$.dir", "must not be the root directory");
        for (const char *p = dir; *p; p++)
                if (*p == '/' && (startswith(p, "/./") || startswith(p, "/../") || streq(p, "/.") || streq(p, "/..")))
                        return json_error_set(e, "$.dir", "must not contain \".\" or \"..\" components");
        if (lstat(dir, &st) < 0) {
                if (errno == ENOENT)
                        return 0;
                int r = -errno;
                json_error_set(e, "$.dir", "cannot inspect \"%.200s\": %s", dir, strerror(-r));
                return r;
        }
        if (!S_ISDIR(st.st_mode)) {
                json_error_set(e, "$.dir", "\"%.200s\" exists and is not a directory", dir);
                return -ENOTDIR;
        }
        DIR *d = opendir(dir);
        if (!d) {
                int r = -errno;
                json_error_set(e, "$.dir", "cannot read \"%.200s\": %s", dir, strerror(-r));
                return r;
        }
        struct dirent *de;
        bool empty = true;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..")) {
                        empty = false;
                        break;
                }
        closedir(d);
        if (!empty) {
                json_error_set(e, "$.dir", "\"%.200s\" exists and is not empty", dir);
                return -EEXIST;
        }
        return 0;
}
