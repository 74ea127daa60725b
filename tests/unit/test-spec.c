/* SPDX-License-Identifier: MIT */
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "spec.h"
#include "test.h"

/* Parses text; on failure copies the error into *e and returns the result. */
static int parse(const char *text, VmSpec **ret, JsonError *e) {
        memset(e, 0, sizeof *e);
        return vm_spec_from_string(text, strlen(text), ret, e);
}

#define BOOT "\"boot\":{\"kernel\":\"/k\"}"

static void expect_error(const char *text, const char *path, const char *message_part) {
        VmSpec *s = NULL;
        JsonError e;
        int r = parse(text, &s, &e);
        CHECK_EQ_INT(r, -EINVAL);
        CHECK(!s);
        CHECK_STREQ(e.path, path);
        CHECK_CONTAINS(e.message, message_part);
        vm_spec_free(s);
}

TEST(minimal_spec_gets_defaults) {
        VmSpec *s = NULL;
        JsonError e;
        ASSERT_EQ_INT(parse("{\"name\":\"a\",\"vcpus\":2,\"memory\":\"64MiB\"," BOOT "}", &s, &e), 0);
        CHECK_STREQ(s->name, "a");
        CHECK_EQ_INT(s->vcpus, 2);
        CHECK_EQ_U64(s->memory, 64ULL << 20);
        CHECK_EQ_INT(s->boot_kind, VM_BOOT_KERNEL);
        CHECK_STREQ(s->kernel, "/k");
        CHECK_EQ_INT(s->irqchip, VM_IRQCHIP_KERNEL);
        CHECK_EQ_INT(s->memory_backing, VM_MEMORY_MEMFD);
        CHECK(s->pit_reinject);
        CHECK(!s->nested);
        vm_spec_free(s);
}

TEST(full_spec_round_trips_canonically) {
        const char *text =
                "{\"name\":\"web-1\",\"uuid\":\"0e7c5a42-1c1e-4b43-9a44-5b6e5c1f2a3d\",\"vcpus\":4,\"memory\":\"0x100000000\","
                "\"boot\":{\"raw\":\"/r.bin\",\"load_addr\":\"1MiB\",\"entry\":1048576,\"mode\":\"long\"},"
                "\"cpu\":{\"nested\":true},\"irqchip\":\"split\",\"pit\":{\"reinject\":false},"
                "\"memory_backing\":\"anonymous\",\"on_crash\":\"restart\",\"console\":{\"log\":\"/tmp/c.log\"},"
                "\"disks\":[{\"path\":\"/d.img\",\"readonly\":true,\"serial\":\"S1\"}],"
                "\"nics\":[{\"tap\":\"tap0\",\"mac\":\"52:54:00:12:34:56\"}]}";
        VmSpec *s = NULL, *s2 = NULL;
        json_object *j = NULL;
        JsonError e;
        ASSERT_EQ_INT(parse(text, &s, &e), 0);
        CHECK_EQ_U64(s->memory, 4ULL << 30);
        CHECK_EQ_U64(s->load_addr, 1ULL << 20);
        ASSERT_EQ_INT(vm_spec_to_json(s, &j), 0);
        CHECK_STREQ(json_to_string(j),
                    "{\"name\":\"web-1\",\"uuid\":\"0e7c5a42-1c1e-4b43-9a44-5b6e5c1f2a3d\",\"vcpus\":4,\"memory\":4294967296,"
                    "\"boot\":{\"raw\":\"/r.bin\",\"load_addr\":1048576,\"entry\":1048576,\"mode\":\"long\"},"
                    "\"cpu\":{\"nested\":true},\"irqchip\":\"split\",\"pit\":{\"reinject\":false},"
                    "\"memory_backing\":\"anonymous\",\"on_crash\":\"restart\",\"console\":{\"log\":\"/tmp/c.log\"},"
                    "\"disks\":[{\"path\":\"/d.img\",\"readonly\":true,\"serial\":\"S1\"}],"
                    "\"nics\":[{\"tap\":\"tap0\",\"mac\":\"52:54:00:12:34:56\"}],"
                    "\"on_poweroff\":\"destroy\",\"on_reboot\":\"restart\"}");
        ASSERT_EQ_INT(vm_spec_from_json(j, &s2, &e), 0);
        CHECK_EQ_INT(s2->irqchip, VM_IRQCHIP_SPLIT);
        CHECK_STREQ(s2->nics[0].mac, "52:54:00:12:34:56");
        json_object_put(j);
        vm_spec_free(s);
        vm_spec_free(s2);
}

TEST(kvm_pv_features_round_trip) {
        VmSpec *s = NULL, *s2 = NULL;
        json_object *j = NULL;
        JsonError e;
        ASSERT_EQ_INT(parse("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT
                            ",\"cpu\":{\"kvm_pv\":{\"pv_eoi\":false,\"steal_time\":true,\"clocksource_stable_bit\":false}}}",
                            &s, &e),
                      0);
        CHECK_EQ_U64(s->kvm_pv_off, (1u << 6) | (1u << 24));
        CHECK_EQ_U64(s->kvm_pv_on, 1u << 5);
        ASSERT_EQ_INT(vm_spec_to_json(s, &j), 0);
        CHECK_CONTAINS(json_to_string(j),
                       "\"kvm_pv\":{\"steal_time\":true,\"pv_eoi\":false,\"clocksource_stable_bit\":false}");
        ASSERT_EQ_INT(vm_spec_from_json(j, &s2, &e), 0);
        CHECK_EQ_U64(s2->kvm_pv_off, s->kvm_pv_off);
        CHECK_EQ_U64(s2->kvm_pv_on, s->kvm_pv_on);
        json_object_put(j);
        vm_spec_free(s);
        vm_spec_free(s2);

        /* Nothing set: the canonical form leaves the object out. */
        ASSERT_EQ_INT(parse("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"cpu\":{\"kvm_pv\":{}}}", &s, &e), 0);
        ASSERT_EQ_INT(vm_spec_to_json(s, &j), 0);
        CHECK(!strstr(json_to_string(j), "kvm_pv"));
        json_object_put(j);
        vm_spec_free(s);

        CHECK_EQ_INT(vm_kvm_pv_feature_from_name("pv_unhalt"), 7);
        CHECK_STREQ(vm_kvm_pv_feature_name(11), "pv_send_ipi");
        CHECK(vm_kvm_pv_feature_name(8) == NULL);
        CHECK(vm_kvm_pv_feature_name(40) == NULL);
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"cpu\":{\"kvm_pv\":{\"pv_eio\":false}}}",
                     "$.cpu.kvm_pv.pv_eio", "unknown KVM paravirtual feature");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"cpu\":{\"kvm_pv\":{\"pv_eoi\":0}}}",
                     "$.cpu.kvm_pv.pv_eoi", "boolean");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"cpu\":{\"kvm_pv\":[]}}",
                     "$.cpu.kvm_pv", "object");
}

TEST(x2apic_api_flags_round_trip_and_need_a_lapic) {
        VmSpec *s = NULL, *s2 = NULL;
        json_object *j = NULL;
        JsonError e;
        ASSERT_EQ_INT(parse("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT
                            ",\"irqchip\":\"split\",\"x2apic_api\":{\"use_32bit_ids\":true}}",
                            &s, &e),
                      0);
        CHECK(s->x2apic_use_32bit_ids);
        CHECK(!s->x2apic_disable_broadcast_quirk);
        ASSERT_EQ_INT(vm_spec_to_json(s, &j), 0);
        CHECK_CONTAINS(json_to_string(j), "\"x2apic_api\":{\"use_32bit_ids\":true,\"disable_broadcast_quirk\":false}");
        ASSERT_EQ_INT(vm_spec_from_json(j, &s2, &e), 0);
        CHECK(s2->x2apic_use_32bit_ids);
        json_object_put(j);
        vm_spec_free(s);
        vm_spec_free(s2);

        /* All flags off: the canonical form leaves the object out. */
        ASSERT_EQ_INT(parse("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT
                            ",\"x2apic_api\":{\"use_32bit_ids\":false}}",
                            &s, &e),
                      0);
        ASSERT_EQ_INT(vm_spec_to_json(s, &j), 0);
        CHECK(!strstr(json_to_string(j), "x2apic_api"));
        json_object_put(j);
        vm_spec_free(s);

        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT
                     ",\"irqchip\":\"none\",\"x2apic_api\":{\"disable_broadcast_quirk\":true}}",
                     "$.x2apic_api", "in-kernel LAPIC");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"x2apic_api\":{\"ids\":true}}",
                     "$.x2apic_api.ids", "unknown field");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT
                     ",\"x2apic_api\":{\"use_32bit_ids\":1}}",
                     "$.x2apic_api.use_32bit_ids", "boolean");
}

TEST(bad_fields_name_their_path) {
        expect_error("{\"name\":\"a\",\"vcpus\":0,\"memory\":\"64MiB\"," BOOT "}", "$.vcpus", "between 1 and 255");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"2TiB\"," BOOT "}", "$.memory", "between 2MiB and 1TiB");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64 MiB\"," BOOT "}", "$.memory", "invalid size");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"colour\":1}", "$.colour",
                     "unknown field");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\",\"boot\":{\"kernel\":\"/k\",\"x\":1}}",
                     "$.boot.x", "unknown field");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\",\"boot\":{}}", "$.boot", "exactly one");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\",\"boot\":{\"kernel\":\"/k\",\"raw\":\"/r\"}}",
                     "$.boot", "exactly one");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\",\"boot\":{\"raw\":\"/r\",\"load_addr\":0,"
                     "\"entry\":\"2MiB\",\"mode\":\"real\"}}",
                     "$.boot.entry", "below 1MiB");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\",\"boot\":{\"raw\":\"/r\",\"load_addr\":0,"
                     "\"entry\":0,\"mode\":\"protected\"}}",
                     "$.boot.mode", "must be one of");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"irqchip\":\"apic\"}", "$.irqchip",
                     "\"kernel\", \"split\", \"none\"");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"disks\":[{\"path\":\"/a\"},{}]}",
                     "$.disks[1].path", "is required");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"nics\":[{\"tap\":\"t\",\"mac\":\"zz\"}]}",
                     "$.nics[0].mac", "MAC address");
        expect_error("{\"name\":\"a b\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT "}", "$.name", "characters");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"63MiB\",\"memory_backing\":\"hugetlb\"," BOOT "}",
                     "$.memory", "multiple of 2MiB");
        expect_error("{\"name\":\"a\",\"vcpus\":\"1\",\"memory\":\"64MiB\"," BOOT "}", "$.vcpus", "integer");
        expect_error("{\"vcpus\":1,\"memory\":\"64MiB\"," BOOT "}", "$.name", "is required");
        expect_error("[1]", "$", "object");
        /* white space at either end of a disk serial: domain XML strips it, so it would not come back */
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"disks\":[{\"path\":\"/a\",\"serial\":\"DATA1 \"}]}",
                     "$.disks[0].serial", "white space");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"disks\":[{\"path\":\"/a\",\"serial\":\"\\tD\"}]}",
                     "$.disks[0].serial", "white space");
        expect_error("{\"name\":", "$", "malformed JSON");
}

static void write_file(const char *path, const void *data, size_t len) {
        FILE *f = fopen(path, "we");
        if (!f)
                return;
        fwrite(data, 1, len, f);
        fclose(f);
}

TEST(check_files_detects_formats) {
        char kpath[512], text[1024];
        uint8_t buf[4096] = { 0x7f, 'E', 'L', 'F', 1 /* 32-bit */ };
        VmSpec *s = NULL;
        JsonError e;

        snprintf(kpath, sizeof kpath, "%s/kernel", test_tmpdir());
        write_file(kpath, buf, sizeof buf);
        snprintf(text, sizeof text, "{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\",\"boot\":{\"kernel\":\"%s\"}}", kpath);
        ASSERT_EQ_INT(parse(text, &s, &e), 0);
        CHECK_EQ_INT(vm_spec_check_files(s, &e), -EINVAL);
        CHECK_STREQ(e.path, "$.boot.kernel");
        CHECK_CONTAINS(e.message, "not 64-bit");

        memset(buf, 0, sizeof buf);
        memcpy(buf, "garbage", 7);
        write_file(kpath, buf, sizeof buf);
        CHECK_EQ_INT(vm_spec_check_files(s, &e), -EINVAL);
        CHECK_CONTAINS(e.message, "neither an ELF64 executable nor a bzImage");

        /* A bzImage header: boot flag, "HdrS", protocol 2.15, LOADED_HIGH, XLF_KERNEL_64. */
        buf[0x1fe] = 0x55;
        buf[0x1ff] = 0xaa;
        memcpy(buf + 0x202, "HdrS", 4);
        buf[0x206] = 0x0f;
        buf[0x207] = 0x02;
        buf[0x211] = 0x01;
        buf[0x236] = 0x01;
        write_file(kpath, buf, sizeof buf);
        CHECK_EQ_INT(vm_spec_check_files(s, &e), 0);
        buf[0x236] = 0;
        write_file(kpath, buf, sizeof buf);
        CHECK_EQ_INT(vm_spec_check_files(s, &e), -EINVAL);
        CHECK_CONTAINS(e.message, "XLF_KERNEL_64");

        unlink(kpath);
        CHECK_EQ_INT(vm_spec_check_files(s, &e), -EINVAL);
        CHECK_STREQ(e.path, "$.boot.kernel");
        CHECK_CONTAINS(e.message, "No such file");
        vm_spec_free(s);
}

TEST(libvirt_fields_round_trip) {
        const char *text =
                "{\"name\":\"a\",\"vcpus\":2,\"memory\":\"64MiB\",\"boot\":{\"kernel\":\"/k\"},"
                "\"memory_backing\":\"hugetlb\",\"on_poweroff\":\"preserve\",\"on_reboot\":\"destroy\","
                "\"cpuset\":\"4,0-2,^1,3\",\"libvirt\":{\"title\":\"T\",\"description\":\"D\\nE\","
                "\"metadata\":[\"<x:a xmlns:x=\\\"urn:x\\\"/>\"]}}";
        VmSpec *s = NULL, *s2 = NULL;
        json_object *j = NULL;
        JsonError e;
        ASSERT_EQ_INT(parse(text, &s, &e), 0);
        CHECK_STREQ(s->cpuset, "0,2-4");
        CHECK_EQ_U64(s->hugepage_size, 2ULL << 20);
        CHECK_EQ_INT(s->on_poweroff, VM_ON_CRASH_PRESERVE);
        CHECK_EQ_INT(s->on_reboot, VM_ON_CRASH_DESTROY);
        ASSERT_EQ_INT(vm_spec_to_json(s, &j), 0);
        CHECK_CONTAINS(json_to_string(j), "\"on_poweroff\":\"preserve\",\"on_reboot\":\"destroy\",\"cpuset\":\"0,2-4\","
                                          "\"hugepage_size\":2097152,\"libvirt\":{\"title\":\"T\",");
        ASSERT_EQ_INT(vm_spec_from_json(j, &s2, &e), 0);
        CHECK_STREQ(s2->libvirt_metadata[0], "<x:a xmlns:x=\"urn:x\"/>");
        CHECK_STREQ(s2->libvirt_description, "D\nE");
        json_object_put(j);
        vm_spec_free(s);
        vm_spec_free(s2);
}

TEST(libvirt_fields_refused) {
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"cpuset\":\"3-1\"}", "$.cpuset", "host CPUs");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"cpuset\":\"1024\"}", "$.cpuset", "host CPUs");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"cpuset\":\"^1\"}", "$.cpuset", "host CPUs");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"hugepage_size\":\"2MiB\"}",
                     "$.hugepage_size", "only valid");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"memory_backing\":\"hugetlb\","
                     "\"hugepage_size\":\"1GiB\"}", "$.hugepage_size", "must be 2MiB");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"on_reboot\":\"rename-restart\"}",
                     "$.on_reboot", "");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"libvirt\":{\"metadata\":[\"x\"]}}",
                     "$.libvirt.metadata[0]", "XML element");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"libvirt\":{\"owner\":\"x\"}}",
                     "$.libvirt.owner", "unknown field");
}

TEST(nic_mac_from_spec_or_uuid) {
        static const char text[] =
                "{\"name\":\"n\",\"vcpus\":1,\"uuid\":\"0b3f1c6e-94b0-4c55-9f5b-1f8a2d9e6c11\",\"memory\":\"16MiB\","
                "\"boot\":{\"kernel\":\"/k\"},\"nics\":[{\"tap\":\"t0\",\"mac\":\"52:54:00:AB:cd:01\"},{\"tap\":\"t1\"},{\"tap\":\"t2\"}]}";
        _cleanup_vm_spec_ VmSpec *spec = NULL;
        JsonError e = {};
        char a[18], b[18], c[18], again[18];
        int r = vm_spec_from_string(text, sizeof text - 1, &spec, &e);
        if (r < 0)
                printf("# %s: %s\n", e.path, e.message);
        ASSERT_EQ_INT(r, 0);
        vm_spec_nic_mac(spec, 0, a);
        CHECK_STREQ(a, "52:54:00:ab:cd:01");
        vm_spec_nic_mac(spec, 1, b);
        vm_spec_nic_mac(spec, 2, c);
        CHECK(strcmp(b, c) != 0);
        CHECK(strncmp(b, "52:", 3) == 0 && strlen(b) == 17);
        vm_spec_nic_mac(spec, 1, again);
        CHECK_STREQ(b, again);
        free(spec->uuid);
        spec->uuid = strdup("0b3f1c6e-94b0-4c55-9f5b-1f8a2d9e6c12");
        vm_spec_nic_mac(spec, 1, again);
        CHECK(strcmp(b, again) != 0);
}

TEST(devices_refused_at_parse) {
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"irqchip\":\"none\","
                     "\"disks\":[{\"path\":\"/a.img\"}]}",
                     "$.irqchip", "in-kernel LAPIC");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"irqchip\":\"none\","
                     "\"nics\":[{\"tap\":\"tap0\"}]}",
                     "$.irqchip", "MSI-X");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ","
                     "\"disks\":[{\"path\":\"/a.img\"},{\"path\":\"/b.img\"},{\"path\":\"/a.img\",\"readonly\":true}]}",
                     "$.disks[2].path", "already $.disks[0]");
        expect_error("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ","
                     "\"nics\":[{\"tap\":\"tap0\"},{\"tap\":\"tap0\",\"mac\":\"52:54:00:00:00:01\"}]}",
                     "$.nics[1].tap", "already $.nics[0]");

        VmSpec *s = NULL;
        JsonError e;
        CHECK_EQ_INT(parse("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\"," BOOT ",\"irqchip\":\"split\","
                           "\"disks\":[{\"path\":\"/a.img\"}],\"nics\":[{\"tap\":\"tap0\"},{\"tap\":\"tap1\"}]}",
                           &s, &e),
                     0);
        vm_spec_free(s);
}

/* A spec with a valid ELF64 kernel and the given disks JSON. */
static VmSpec *spec_with_disks(const char *disks_json) {
        char kpath[512], text[2048];
        uint8_t elf[4096] = { 0x7f, 'E', 'L', 'F', ELFCLASS64, ELFDATA2LSB };
        Elf64_Ehdr *eh = (Elf64_Ehdr *) elf;
        VmSpec *s = NULL;
        JsonError e;

        eh->e_machine = EM_X86_64;
        eh->e_type = ET_EXEC;
        eh->e_phnum = 1;
        eh->e_phentsize = sizeof(Elf64_Phdr);
        snprintf(kpath, sizeof kpath, "%s/elf-kernel", test_tmpdir());
        write_file(kpath, elf, sizeof elf);
        snprintf(text, sizeof text, "{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\",\"boot\":{\"kernel\":\"%s\"},\"disks\":%s}",
                 kpath, disks_json);
        if (parse(text, &s, &e) < 0)
                fprintf(stderr, "# %s: %s\n", e.path, e.message);
        return s;
}

static void expect_disk_error(const char *disks_json, const char *path, const char *message_part) {
        VmSpec *s = spec_with_disks(disks_json);
        JsonError e = {};
        ASSERT(s);
        CHECK_EQ_INT(vm_spec_check_files(s, &e), -EINVAL);
        CHECK_STREQ(e.path, path);
        CHECK_CONTAINS(e.message, message_part);
        vm_spec_free(s);
}

TEST(check_files_disks) {
        char raw[512], odd[512], empty[512], qcow[512], link[512], json[4096];
        uint8_t sectors[1024] = { 0 };
        VmSpec *s;
        JsonError e = {};

        snprintf(raw, sizeof raw, "%s/raw.img", test_tmpdir());
        snprintf(odd, sizeof odd, "%s/odd.img", test_tmpdir());
        snprintf(empty, sizeof empty, "%s/empty.img", test_tmpdir());
        snprintf(qcow, sizeof qcow, "%s/disk.qcow2", test_tmpdir());
        snprintf(link, sizeof link, "%s/link.img", test_tmpdir());
        write_file(raw, sectors, sizeof sectors);
        write_file(odd, sectors, 700);
        write_file(empty, sectors, 0);
        memcpy(sectors, "QFI\xfb\0\0\0\3", 8);
        write_file(qcow, sectors, sizeof sectors);
        unlink(link);
        CHECK_EQ_INT(symlink(raw, link), 0);

        snprintf(json, sizeof json, "[{\"path\":\"%s\"},{\"path\":\"/dev/null\",\"readonly\":true}]", raw);
        expect_disk_error(json, "$.disks[1].path", "neither a regular file nor a block device");
        snprintf(json, sizeof json, "[{\"path\":\"%s\"},{\"path\":\"%s\"}]", raw, odd);
        expect_disk_error(json, "$.disks[1].path", "not a multiple of 512");
        snprintf(json, sizeof json, "[{\"path\":\"%s\",\"readonly\":true}]", empty);
        expect_disk_error(json, "$.disks[0].path", "is empty");
        snprintf(json, sizeof json, "[{\"path\":\"%s/absent.img\"}]", test_tmpdir());
        expect_disk_error(json, "$.disks[0].path", "No such file");
        snprintf(json, sizeof json, "[{\"path\":\"%s\"}]", test_tmpdir());
        expect_disk_error(json, "$.disks[0].path", "cannot open");
        snprintf(json, sizeof json, "[{\"path\":\"%s\"}]", qcow);
        expect_disk_error(json, "$.disks[0].path",
                          "is a qcow2 image; kvmfleet attaches raw images only (convert with qemu-img convert -O raw)");
        snprintf(json, sizeof json, "[{\"path\":\"%s\"},{\"path\":\"%s\",\"readonly\":true}]", raw, link);
        expect_disk_error(json, "$.disks[1].path", "same image as $.disks[0]");

        snprintf(json, sizeof json, "[{\"path\":\"%s\",\"serial\":\"S1\"},{\"path\":\"%s\",\"readonly\":true}]", raw, odd);
        memset(sectors, 0, sizeof sectors);
        write_file(odd, sectors, 512);
        s = spec_with_disks(json);
        ASSERT(s);
        CHECK_EQ_INT(vm_spec_check_files(s, &e), 0);
        vm_spec_free(s);
}
