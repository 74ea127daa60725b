/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd-util.h"
#include "snapshot-manifest.h"
#include "test.h"

#define SPEC_TEXT "{\"name\":\"t\",\"vcpus\":2,\"memory\":\"16MiB\",\"boot\":{\"kernel\":\"/nonexistent\"}}"

static const char *hex_of(const char *s, char hex[SHA256_HEX_SIZE]) {
        sha256_hex(s, strlen(s), hex);
        return hex;
}

/* A valid manifest for a 2-vCPU VM with one 8-byte memslot. */
static json_object *good_manifest(void) {
        char text[2048], a[SHA256_HEX_SIZE], b[SHA256_HEX_SIZE];
        snprintf(text, sizeof text,
                 "{\"format\":\"kvmfleet-snapshot\",\"version\":1,\"kvmfleet_version\":\"1.0\",\"created_at\":1,"
                 "\"host\":{\"cpu_vendor\":\"GenuineIntel\",\"nested_state_size\":0},\"vcpus\":2,\"irqchip\":\"kernel\","
                 "\"xsave_size\":4096,\"vcpu_run\":[\"running\",\"halted\"],"
                 "\"memslots\":[{\"slot\":0,\"as_id\":0,\"gpa\":0,\"size\":8,\"flags\":{\"dirty_log\":false,"
                 "\"readonly\":false},\"backing\":\"memfd\",\"role\":\"ram\",\"file\":\"memslot-0-0.bin\"}],"
                 "\"files\":[{\"name\":\"spec.json\",\"size\":%zu,\"sha256\":\"%s\"},"
                 "{\"name\":\"memslot-0-0.bin\",\"size\":8,\"sha256\":\"%s\"}]}",
                 strlen(SPEC_TEXT), hex_of(SPEC_TEXT, a), hex_of("ABCDEFGH", b));
        return json_tokener_parse(text);
}

static int parse(json_object *o, JsonError *e) {
        SnapshotManifest *m = NULL;
        int r = snapshot_manifest_from_json(o, &m, e);
        snapshot_manifest_free(m);
        json_object_put(o);
        return r;
}

TEST(manifest_round_trip) {
        _cleanup_(snapshot_manifest_freep) SnapshotManifest *m = NULL, *again = NULL;
        _cleanup_json_ json_object *o = good_manifest(), *out = NULL;
        JsonError e = {};
        ASSERT(o);
        ASSERT_EQ_INT(snapshot_manifest_from_json(o, &m, &e), 0);
        CHECK_EQ_INT(m->vcpus, 2);
        CHECK_EQ_INT(m->vcpu_run[1], SNAPSHOT_VCPU_HALTED);
        CHECK_EQ_INT(m->n_memslots, 1);
        CHECK_EQ_INT(m->memslots[0].info.role, MEMSLOT_ROLE_RAM);
        CHECK_EQ_INT(m->n_files, 2);
        CHECK(strcmp(m->cpu_vendor, "GenuineIntel") == 0);
        ASSERT_EQ_INT(snapshot_manifest_to_json(m, &out), 0);
        ASSERT_EQ_INT(snapshot_manifest_from_json(out, &again, &e), 0);
        CHECK_EQ_INT(again->n_files, 2);
        CHECK(strcmp(again->files[1].sha256, m->files[1].sha256) == 0);
        CHECK_EQ_U64(again->memslots[0].info.size, 8);
}

TEST(manifest_refusals) {
        JsonError e = {};
        json_object *o, *files, *f;

        o = good_manifest();
        json_object_object_add(o, "extra", json_object_new_int(1));
        CHECK_EQ_INT(parse(o, &e), -EINVAL);
        CHECK(strstr(e.message, "extra") || strstr(e.path, "extra"));

        o = good_manifest();
        json_object_object_add(o, "version", json_object_new_int(2));
        CHECK_EQ_INT(parse(o, &e), -EPROTONOSUPPORT);
        CHECK(strcmp(e.path, "$.version") == 0);

        o = good_manifest();
        json_object_object_add(o, "format", json_object_new_string("qemu"));
        CHECK_EQ_INT(parse(o, &e), -EINVAL);
        CHECK(strcmp(e.path, "$.format") == 0);

        o = good_manifest();
        json_object_object_get_ex(o, "files", &files);
        f = json_object_array_get_idx(files, 1);
        json_object_object_add(f, "name", json_object_new_string("../memslot-0-0.bin"));
        CHECK_EQ_INT(parse(o, &e), -EINVAL);
        CHECK(strcmp(e.path, "$.files[1]") == 0);

        o = good_manifest();
        json_object_object_get_ex(o, "files", &files);
        f = json_object_array_get_idx(files, 1);
        json_object_object_add(f, "sha256", json_object_new_string("ABC"));
        CHECK_EQ_INT(parse(o, &e), -EINVAL);

        o = good_manifest();
        json_object_object_get_ex(o, "files", &files);
        json_object_array_add(files, json_object_get(json_object_array_get_idx(files, 0)));
        CHECK_EQ_INT(parse(o, &e), -EINVAL);
        CHECK(strstr(e.message, "twice") != NULL);

        o = good_manifest(); /* the memslot's file is not listed */
        json_object_object_get_ex(o, "files", &files);
        json_object_array_del_idx(files, 1, 1);
        CHECK_EQ_INT(parse(o, &e), -EINVAL);
        CHECK(strcmp(e.path, "$.memslots[0]") == 0);

        o = good_manifest(); /* no spec.json */
        json_object_object_get_ex(o, "files", &files);
        json_object_array_del_idx(files, 0, 1);
        CHECK_EQ_INT(parse(o, &e), -EINVAL);
        CHECK(strcmp(e.path, "$.files") == 0);

        o = good_manifest(); /* a vcpu_run entry per vCPU */
        json_object_object_add(o, "vcpus", json_object_new_int(3));
        CHECK_EQ_INT(parse(o, &e), -EINVAL);
        CHECK(strcmp(e.path, "$.vcpu_run") == 0);

        o = good_manifest(); /* the memslot's size and its file's must agree */
        json_object *slots;
        json_object_object_get_ex(o, "memslots", &slots);
        json_object_object_add(json_object_array_get_idx(slots, 0), "size", json_object_new_int(4096));
        CHECK_EQ_INT(parse(o, &e), -EINVAL);
        CHECK(strcmp(e.path, "$.memslots[0]") == 0);
}

TEST(manifest_host_checks) {
        _cleanup_(snapshot_manifest_freep) SnapshotManifest *m = NULL;
        _cleanup_json_ json_object *o = good_manifest();
        JsonError e = {};
        ASSERT_EQ_INT(snapshot_manifest_from_json(o, &m, &e), 0);
        CHECK_EQ_INT(snapshot_manifest_check_host(m, "GenuineIntel", 0, &e), 0);
        CHECK_EQ_INT(snapshot_manifest_check_host(m, "AuthenticAMD", 4224, &e), -EXDEV);
        CHECK(strcmp(e.path, "$.host.cpu_vendor") == 0);
        m->nested_state_size = 8320;
        CHECK_EQ_INT(snapshot_manifest_check_host(m, "GenuineIntel", 4224, &e), -E2BIG);
        CHECK(strcmp(e.path, "$.host.nested_state_size") == 0);
        CHECK_EQ_INT(snapshot_manifest_check_host(m, "GenuineIntel", 8320, &e), 0);
        char vendor[13];
        snapshot_host_cpu_vendor(vendor);
        CHECK_EQ_INT(strlen(vendor), 12);
}

static void write_file(const char *dir, const char *name, const char *data, size_t len) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
                (void) !write(fd, data, len);
                close(fd);
        }
}

static void remove_snapshot(const char *dir) {
        static const char *const names[] = { "manifest.json", "spec.json", "memslot-0-0.bin" };
        char path[600];
        for (size_t i = 0; i < 3; i++) {
                snprintf(path, sizeof path, "%s/%s", dir, names[i]);
                unlink(path);
        }
        rmdir(dir);
}

static void make_snapshot(char *dir) {
        _cleanup_json_ json_object *o = good_manifest();
        const char *text = json_object_to_json_string(o);
        write_file(dir, "manifest.json", text, strlen(text));
        write_file(dir, "spec.json", SPEC_TEXT, strlen(SPEC_TEXT));
        write_file(dir, "memslot-0-0.bin", "ABCDEFGH", 8);
}

TEST(verify_dir) {
        char dir[256];
        SnapshotManifest *m = NULL;
        VmSpec *spec = NULL;
        JsonError e = {};
        snprintf(dir, sizeof dir, "%s/verify", test_tmpdir());
        ASSERT(mkdir(dir, 0700) == 0);
        make_snapshot(dir);
        CHECK_EQ_INT(snapshot_verify_dir(dir, &m, &spec, &e), 0);
        CHECK(m && spec && spec->vcpus == 2);
        snapshot_manifest_free(m);
        vm_spec_free(spec);

        write_file(dir, "memslot-0-0.bin", "ABCDEFGX", 8);
        CHECK_EQ_INT(snapshot_verify_dir(dir, NULL, NULL, &e), -EBADMSG);
        CHECK(strcmp(e.path, "memslot-0-0.bin") == 0);

        write_file(dir, "memslot-0-0.bin", "ABCD", 4);
        CHECK_EQ_INT(snapshot_verify_dir(dir, NULL, NULL, &e), -EMSGSIZE);
        CHECK(strcmp(e.path, "memslot-0-0.bin") == 0);

        char path[600];
        snprintf(path, sizeof path, "%s/memslot-0-0.bin", dir);
        unlink(path);
        CHECK(symlink("/etc/passwd", path) == 0);
        CHECK(snapshot_verify_dir(dir, NULL, NULL, &e) < 0);
        unlink(path);

        make_snapshot(dir);
        write_file(dir, "manifest.json", "{", 1);
        CHECK_EQ_INT(snapshot_verify_dir(dir, NULL, NULL, &e), -EINVAL);
        CHECK(strcmp(e.path, "manifest.json") == 0);
        remove_snapshot(dir);
        CHECK_EQ_INT(snapshot_verify_dir(dir, NULL, NULL, &e), -ENOENT);
}

TEST(check_target) {
        char dir[256], path[600];
        JsonError e = {};
        snprintf(dir, sizeof dir, "%s/target", test_tmpdir());
        ASSERT(mkdir(dir, 0700) == 0);
        CHECK_EQ_INT(snapshot_check_target(dir, &e), 0); /* empty */
        snprintf(path, sizeof path, "%s/new", dir);
        CHECK_EQ_INT(snapshot_check_target(path, &e), 0); /* absent */
        CHECK_EQ_INT(snapshot_check_target("relative", &e), -EINVAL);
        CHECK(strcmp(e.path, "$.dir") == 0);
        CHECK_EQ_INT(snapshot_check_target("/", &e), -EINVAL);
        CHECK_EQ_INT(snapshot_check_target("/tmp/../etc", &e), -EINVAL);
        write_file(dir, "spec.json", "x", 1);
        CHECK_EQ_INT(snapshot_check_target(dir, &e), -EEXIST);
        snprintf(path, sizeof path, "%s/spec.json", dir);
        CHECK_EQ_INT(snapshot_check_target(path, &e), -ENOTDIR);
        unlink(path);
        rmdir(dir);
        char long_path[SNAPSHOT_DIR_MAX + 8];
        memset(long_path, 'a', sizeof long_path - 1);
        long_path[0] = '/';
        long_path[sizeof long_path - 1] = 0;
        CHECK_EQ_INT(snapshot_check_target(long_path, &e), -EINVAL);
}
