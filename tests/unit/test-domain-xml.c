/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "agent/domain-xml.h"
#include "json-util.h"
#include "test.h"

#define DOMAIN_HEAD "<domain type='kvm'><name>t</name>"
#define DOMAIN_OS "<os><type arch='x86_64'>hvm</type><kernel>/boot/vmlinuz</kernel></os>"
#define DOMAIN_TAIL DOMAIN_OS "</domain>"

typedef struct Result {
        int r;
        json_object *spec, *warnings;
        DomainXmlError e;
} Result;

static Result import_opts(const char *xml, size_t len, bool strict) {
        DomainXmlOptions opts = { .strict = strict };
        Result res = {};
        res.r = domain_xml_to_spec(xml, len, &opts, &res.spec, &res.warnings, &res.e);
        return res;
}

static Result import(const char *xml) {
        return import_opts(xml, strlen(xml), false);
}

static void result_done(Result *res) {
        json_object_put(res->spec);
        json_object_put(res->warnings);
        if (res->r == -EINVAL)
                domain_xml_error_done(&res->e);
}

static const char *details_string(const Result *res) {
        return res->e.details ? json_to_string(res->e.details) : "";
}

static uint64_t spec_u64(json_object *spec, const char *key) {
        json_object *v;
        return json_object_object_get_ex(spec, key, &v) ? (uint64_t) json_object_get_uint64(v) : 0;
}

static const char *spec_str(json_object *spec, const char *key) {
        json_object *v;
        return json_object_object_get_ex(spec, key, &v) ? json_object_get_string(v) : NULL;
}

TEST(every_libvirt_unit) {
        static const struct {
                const char *unit;
                uint64_t scale;
        } units[] = {
                { NULL, 1024 },     { "", 1024 },       { "b", 1 },         { "B", 1 },
                { "bytes", 1 },     { "byte", 1 },      { "k", 1ULL << 10 }, { "K", 1ULL << 10 },
                { "KiB", 1ULL << 10 }, { "kib", 1ULL << 10 }, { "KB", 1000 }, { "kb", 1000 },
                { "M", 1ULL << 20 }, { "MiB", 1ULL << 20 }, { "MB", 1000000 }, { "G", 1ULL << 30 },
                { "GiB", 1ULL << 30 }, { "GB", 1000000000 }, { "T", 1ULL << 40 }, { "TiB", 1ULL << 40 },
                { "TB", 1000000000000ULL }, { "P", 1ULL << 50 }, { "PiB", 1ULL << 50 },
                { "PB", 1000000000000000ULL }, { "E", 1ULL << 60 }, { "EiB", 1ULL << 60 },
                { "EB", 1000000000000000000ULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                uint64_t v = 0;
                CHECK_EQ_INT(domain_xml_parse_size("3", units[i].unit, 1024, &v), 0);
                CHECK_EQ_U64(v, 3 * units[i].scale);
        }
}

TEST(invalid_units_and_overflow) {
        static const char *const bad_units[] = { "KiBB", "x", "Mi", "iB", "KB2", "kbytes", "bit", "MiB ", "Z", "ZiB" };
        static const char *const bad_values[] = { "", " ", "-1", "1.5", "0x10", "1e3", "12abc", "+4" };
        uint64_t v = 42;
        for (size_t i = 0; i < ELEMENTSOF(bad_units); i++)
                CHECK_EQ_INT(domain_xml_parse_size("1", bad_units[i], 1024, &v), -EINVAL);
        for (size_t i = 0; i < ELEMENTSOF(bad_values); i++)
                CHECK_EQ_INT(domain_xml_parse_size(bad_values[i], "KiB", 1024, &v), -EINVAL);
        CHECK_EQ_U64(v, 42);
        CHECK_EQ_INT(domain_xml_parse_size("16", "EiB", 1024, &v), -ERANGE);
        CHECK_EQ_INT(domain_xml_parse_size("18446744073709551615", "KiB", 1024, &v), -ERANGE);
        CHECK_EQ_INT(domain_xml_parse_size("18446744073709551616", "b", 1024, &v), -ERANGE);
        CHECK_EQ_INT(domain_xml_parse_size("15", "EiB", 1024, &v), 0);
        CHECK_EQ_U64(v, 15ULL << 60);
        CHECK_EQ_INT(domain_xml_parse_size(" 7 ", "MB", 1024, &v), 0);
        CHECK_EQ_U64(v, 7000000);
}

TEST(memory_units_reach_the_spec) {
        static const struct {
                const char *memory;
                uint64_t bytes;
        } cases[] = {
                { "<memory>65536</memory>", 64ULL << 20 },
                { "<memory unit='MiB'>512</memory>", 512ULL << 20 },
                { "<memory unit='G'>2</memory>", 2ULL << 30 },
                { "<memory unit='MB'>1024</memory>", 1024000000 },
                { "<memory unit='bytes'>67108864</memory>", 64ULL << 20 },
                { "<memory unit='KB'>65536</memory>", 65536000 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char xml[512];
                snprintf(xml, sizeof xml, DOMAIN_HEAD "%s<vcpu>1</vcpu>" DOMAIN_TAIL, cases[i].memory);
                Result res = import(xml);
                CHECK_EQ_INT(res.r, 0);
                if (res.r == 0)
                        CHECK_EQ_U64(spec_u64(res.spec, "memory"), cases[i].bytes);
                else
                        test_fail(__FILE__, __LINE__, "%s: %s", cases[i].memory, res.e.message);
                result_done(&res);
        }
}

TEST(memory_overflow_and_bad_unit_refused) {
        Result res = import(DOMAIN_HEAD "<memory unit='EiB'>16</memory><vcpu>1</vcpu>" DOMAIN_TAIL);
        ASSERT_EQ_INT(res.r, -EINVAL);
        CHECK_EQ_INT(res.e.kind, DOMAIN_XML_ERROR_UNSUPPORTED);
        CHECK_CONTAINS(details_string(&res), "\"xpath\":\"/domain/memory\",\"reason\":\"size overflows 64 bits\"");
        result_done(&res);
        res = import(DOMAIN_HEAD "<memory unit='MiX'>16</memory><vcpu>1</vcpu>" DOMAIN_TAIL);
        ASSERT_EQ_INT(res.r, -EINVAL);
        CHECK_CONTAINS(details_string(&res), "not a size");
        result_done(&res);
        /* Maps, but the spec refuses it: the error names the JSON path and the element. */
        res = import(DOMAIN_HEAD "<memory unit='MiB'>1</memory><vcpu>1</vcpu>" DOMAIN_TAIL);
        ASSERT_EQ_INT(res.r, -EINVAL);
        CHECK_EQ_INT(res.e.kind, DOMAIN_XML_ERROR_INVALID);
        CHECK_EQ_INT(domain_xml_error_http_status(&res.e), 422);
        CHECK_CONTAINS(res.e.message, "/domain/memory $.memory");
        result_done(&res);
}

TEST(every_refused_device_is_listed) {
        Result res = import(DOMAIN_HEAD "<memory>65536</memory><vcpu>1</vcpu>" DOMAIN_OS
                            "<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                            "<source file='/a.qcow2'/><target dev='vda'/></disk>"
                            "<disk type='file' device='disk'><source file='/b.img'/><target dev='vdb'/></disk>"
                            "<disk type='network' device='disk'><source protocol='nbd'/><target dev='vdc'/></disk>"
                            "<interface type='network'><source network='default'/></interface>"
                            "<interface type='ethernet'><target dev='tap0'/><model type='e1000'/></interface>"
                            "<hostdev mode='subsystem'/><controller type='usb'/></devices></domain>");
        ASSERT_EQ_INT(res.r, -EINVAL);
        CHECK_EQ_INT(res.e.kind, DOMAIN_XML_ERROR_UNSUPPORTED);
        CHECK_EQ_INT(domain_xml_error_http_status(&res.e), 422);
        CHECK_STREQ(domain_xml_error_code(&res.e), "unsupported");
        json_object *refused;
        ASSERT(json_object_object_get_ex(res.e.details, "refused", &refused));
        const char *expected[] = { "/domain/devices/disk[1]/driver/@type", "/domain/devices/disk[3]/@type",
                                   "/domain/devices/interface[1]/@type", "/domain/devices/interface[2]/model/@type",
                                   "/domain/devices/hostdev" };
        ASSERT_EQ_INT(json_object_array_length(refused), ELEMENTSOF(expected));
        for (size_t i = 0; i < ELEMENTSOF(expected); i++) {
                json_object *item = json_object_array_get_idx(refused, i);
                CHECK_STREQ(spec_str(item, "xpath"), expected[i]);
        }
        CHECK_CONTAINS(details_string(&res), "raw images only, not qcow2");
        result_done(&res);
}

TEST(disks_and_interfaces_map) {
        Result res = import(DOMAIN_HEAD "<memory>65536</memory><vcpu>1</vcpu>" DOMAIN_OS
                            "<devices><disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/>"
                            "<source file='/a.img'/><target dev='vda' bus='virtio'/><serial>S-1</serial>"
                            "<alias name='virtio-disk0'/></disk>"
                            "<disk type='block'><source dev='/dev/sdz'/><target dev='vdb'/><readonly/></disk>"
                            "<interface type='ethernet'><mac address='52:54:00:aa:bb:cc'/><target dev='tap9' managed='no'/>"
                            "<model type='virtio'/><address type='pci' domain='0' bus='0' slot='5' function='0'/></interface>"
                            "</devices></domain>");
        ASSERT_EQ_INT(res.r, 0);
        json_object *disks, *nics;
        ASSERT(json_object_object_get_ex(res.spec, "disks", &disks));
        ASSERT(json_object_object_get_ex(res.spec, "nics", &nics));
        CHECK_STREQ(json_to_string(disks), "[{\"path\":\"/a.img\",\"readonly\":false,\"serial\":\"S-1\"},"
                                           "{\"path\":\"/dev/sdz\",\"readonly\":true}]");
        CHECK_STREQ(json_to_string(nics), "[{\"tap\":\"tap9\",\"mac\":\"52:54:00:aa:bb:cc\"}]");
        CHECK_CONTAINS(json_to_string(res.warnings), "/domain/devices/disk[1]/driver/@cache");
        CHECK_CONTAINS(json_to_string(res.warnings), "/domain/devices/interface/address");
        result_done(&res);

        /* A serial too long for virtio-blk is found when the spec is validated, named by XPath. */
        res = import(DOMAIN_HEAD "<memory>65536</memory><vcpu>1</vcpu>" DOMAIN_OS
                     "<devices><disk type='file'><source file='/a.img'/><target dev='vda'/>"
                     "<serial>0123456789012345678901</serial></disk></devices></domain>");
        ASSERT_EQ_INT(res.r, -EINVAL);
        CHECK_EQ_INT(res.e.kind, DOMAIN_XML_ERROR_INVALID);
        CHECK_CONTAINS(res.e.message, "/domain/devices/disk $.disks[0].serial");
        result_done(&res);
}

TEST(disk_names_follow_linux) {
        char buf[16];
        CHECK_STREQ(domain_xml_disk_name(0, buf, sizeof buf), "vda");
        CHECK_STREQ(domain_xml_disk_name(25, buf, sizeof buf), "vdz");
        CHECK_STREQ(domain_xml_disk_name(26, buf, sizeof buf), "vdaa");
        CHECK_STREQ(domain_xml_disk_name(701, buf, sizeof buf), "vdzz");
        CHECK_STREQ(domain_xml_disk_name(702, buf, sizeof buf), "vdaaa");
}

TEST(warnings_for_ignored_elements_and_strict_refuses_them) {
        const char *xml = DOMAIN_HEAD "<memory>65536</memory><currentMemory>32768</currentMemory><vcpu>1</vcpu>"
                          DOMAIN_OS "<features><acpi/><apic/></features><clock offset='utc'/>"
                          "<devices><controller type='usb' model='ich9-ehci1'/><memballoon model='virtio'/></devices></domain>";
        Result res = import(xml);
        ASSERT_EQ_INT(res.r, 0);
        CHECK_STREQ(json_to_string(res.warnings),
                    "[{\"xpath\":\"/domain/features/acpi\",\"reason\":\"ignored: kvmfleet-vmm writes ACPI tables for guests with more than one vCPU\"},"
                    "{\"xpath\":\"/domain/clock\",\"reason\":\"ignored: kvmfleet sets the guest clock itself (fixed CMOS clock, kvmclock)\"},"
                    "{\"xpath\":\"/domain/devices/controller\",\"reason\":\"ignored: kvmfleet has no usb controller\"},"
                    "{\"xpath\":\"/domain/devices/memballoon\",\"reason\":\"ignored: kvmfleet has no memory balloon\"},"
                    "{\"xpath\":\"/domain/currentMemory\",\"reason\":\"ignored: kvmfleet has no balloon; the guest gets all of <memory>\"}]");
        result_done(&res);
        res = import_opts(xml, strlen(xml), true);
        ASSERT_EQ_INT(res.r, -EINVAL);
        CHECK_EQ_INT(res.e.kind, DOMAIN_XML_ERROR_UNSUPPORTED);
        CHECK_CONTAINS(details_string(&res), "not mapped (strict)");
        json_object *refused;
        ASSERT(json_object_object_get_ex(res.e.details, "refused", &refused));
        CHECK_EQ_INT(json_object_array_length(refused), 5);
        result_done(&res);
}

TEST(mapping_of_every_supported_element) {
        Result res = import(
                "<domain type='kvm'><name>web-1</name><uuid>0E7C5A421C1E4B439A445B6E5C1F2A3D</uuid>"
                "<title>Web</title><description>front end</description>"
                "<memory unit='GiB'>1</memory><memoryBacking><hugepages><page size='2' unit='M'/></hugepages></memoryBacking>"
                "<vcpu placement='static' cpuset='3,0-1'>4</vcpu>"
                "<os><type>hvm</type><kernel>/k</kernel><initrd>/i</initrd><cmdline>console=ttyS0 quiet</cmdline></os>"
                "<features><apic/><ioapic driver='qemu'/></features>"
                "<cpu mode='host-passthrough'><feature policy='require' name='vmx'/></cpu>"
                "<on_poweroff>preserve</on_poweroff><on_reboot>destroy</on_reboot><on_crash>restart</on_crash>"
                "<devices><serial type='file'><source path='/var/log/c.log'/><target port='0'/></serial></devices>"
                "<metadata><kvmfleet:vm xmlns:kvmfleet='https://kvmfleet.dev/xmlns/domain/1'><kvmfleet:pit reinject='no'/>"
                "</kvmfleet:vm><app:info xmlns:app='urn:app'>x</app:info></metadata></domain>");
        ASSERT_EQ_INT(res.r, 0);
        CHECK_STREQ(json_to_string(res.spec),
                    "{\"name\":\"web-1\",\"uuid\":\"0e7c5a42-1c1e-4b43-9a44-5b6e5c1f2a3d\",\"vcpus\":4,\"memory\":1073741824,"
                    "\"boot\":{\"kernel\":\"/k\",\"initrd\":\"/i\",\"cmdline\":\"console=ttyS0 quiet\"},"
                    "\"cpu\":{\"nested\":true},\"irqchip\":\"split\",\"pit\":{\"reinject\":false},"
                    "\"memory_backing\":\"hugetlb\",\"on_crash\":\"restart\",\"console\":{\"log\":\"/var/log/c.log\"},"
                    "\"disks\":[],\"nics\":[],\"on_poweroff\":\"preserve\",\"on_reboot\":\"destroy\",\"cpuset\":\"0-1,3\","
                    "\"hugepage_size\":2097152,\"libvirt\":{\"title\":\"Web\",\"description\":\"front end\","
                    "\"metadata\":[\"<app:info xmlns:app=\\\"urn:app\\\">x</app:info>\"]}}");
        CHECK_EQ_INT(json_object_array_length(res.warnings), 0);
        result_done(&res);
}

TEST(value_refusals) {
        Result res = import("<domain type='qemu'><name>t</name><memory>65536</memory><vcpu>1</vcpu>"
                            "<os><type arch='aarch64'>hvm</type></os><on_crash>coredump-destroy</on_crash>"
                            "<features><ioapic driver='xen'/></features>"
                            "<memoryBacking><source type='file'/></memoryBacking>"
                            "<devices><serial type='tcp'/></devices><qemu:commandline xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'/>"
                            "<launchSecurity type='sev'/></domain>");
        ASSERT_EQ_INT(res.r, -EINVAL);
        const char *d = details_string(&res);
        CHECK_CONTAINS(d, "/domain/@type");
        CHECK_CONTAINS(d, "/domain/os/type/@arch");
        CHECK_CONTAINS(d, "/domain/on_crash");
        CHECK_CONTAINS(d, "/domain/features/ioapic/@driver");
        CHECK_CONTAINS(d, "/domain/memoryBacking/source/@type");
        CHECK_CONTAINS(d, "/domain/devices/serial/@type");
        CHECK_CONTAINS(d, "/domain/qemu:commandline");
        CHECK_CONTAINS(d, "/domain/launchSecurity");
        CHECK_CONTAINS(d, "no <kernel>");
        result_done(&res);

        res = import(DOMAIN_HEAD "<memory>65536</memory><vcpu>1</vcpu><features><ioapic driver='kvm'/></features>"
                     "<metadata><k:vm xmlns:k='https://kvmfleet.dev/xmlns/domain/1'><k:irqchip mode='split'/></k:vm></metadata>"
                     DOMAIN_TAIL);
        ASSERT_EQ_INT(res.r, -EINVAL);
        CHECK_CONTAINS(details_string(&res), "conflicts with");
        result_done(&res);
}

TEST(syntax_errors_give_line_and_column) {
        Result res = import("<domain type='kvm'>\n  <name>t</nam>\n</domain>");
        ASSERT_EQ_INT(res.r, -EINVAL);
        CHECK_EQ_INT(res.e.kind, DOMAIN_XML_ERROR_SYNTAX);
        CHECK_EQ_INT(domain_xml_error_http_status(&res.e), 400);
        CHECK_EQ_INT(res.e.line, 2);
        CHECK(res.e.column > 0);
        CHECK_CONTAINS(res.e.message, "line 2, column");
        CHECK_CONTAINS(details_string(&res), "\"line\":2");
        result_done(&res);
        res = import("<network/>");
        ASSERT_EQ_INT(res.r, -EINVAL);
        CHECK_CONTAINS(res.e.message, "<domain>");
        result_done(&res);
}

static double elapsed_since(const struct timespec *start) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double) (now.tv_sec - start->tv_sec) + (double) (now.tv_nsec - start->tv_nsec) / 1e9;
}

TEST(external_entities_are_never_read) {
        char dir[64], path[128], xml[1024];
        /* mkdtemp's template ends in six 'X'. */
        size_t n = (size_t) snprintf(dir, sizeof dir, "/tmp/test-domain-xml-");
        memset(dir + n, 'X', 6);
        dir[n + 6] = '\0';
        ASSERT(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/secret", dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ASSERT(fd >= 0);
        ASSERT_EQ_INT(write(fd, "MARKER-7f3a9", 12), 12);
        close(fd);
        const char *sources[] = { path, "http://127.0.0.1:9/evil.dtd" };
        for (size_t i = 0; i < 2; i++) {
                struct timespec start;
                clock_gettime(CLOCK_MONOTONIC, &start);
                snprintf(xml, sizeof xml,
                         "<?xml version='1.0'?>\n<!DOCTYPE domain [\n<!ENTITY x SYSTEM '%s%s'>\n]>\n"
                         "<domain type='kvm'><name>&x;</name><memory>65536</memory><vcpu>1</vcpu>" DOMAIN_TAIL,
                         i == 0 ? "file://" : "", sources[i]);
                Result res = import(xml);
                CHECK_EQ_INT(res.r, -EINVAL);
                CHECK_EQ_INT(res.e.kind, DOMAIN_XML_ERROR_SYNTAX);
                CHECK_CONTAINS(res.e.message, "DOCTYPE");
                CHECK(!strstr(res.e.message, "MARKER"));
                CHECK(elapsed_since(&start) < 1.0);
                result_done(&res);
                /* An external DTD subset too. */
                snprintf(xml, sizeof xml, "<!DOCTYPE domain SYSTEM '%s'><domain type='kvm'/>", sources[i]);
                res = import(xml);
                CHECK_EQ_INT(res.r, -EINVAL);
                CHECK_EQ_INT(res.e.kind, DOMAIN_XML_ERROR_SYNTAX);
                result_done(&res);
        }
        unlink(path);
        rmdir(dir);
}

TEST(billion_laughs_refused_quickly) {
        char xml[4096];
        size_t n = 0;
        struct timespec start;
        n += (size_t) snprintf(xml + n, sizeof xml - n, "<!DOCTYPE domain [<!ENTITY l0 'lol'>");
        for (int i = 1; i <= 10; i++)
                n += (size_t) snprintf(xml + n, sizeof xml - n,
                                       "<!ENTITY l%d '&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;'>", i, i - 1,
                                       i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
        snprintf(xml + n, sizeof xml - n, "]><domain type='kvm'><name>&l10;</name></domain>");
        clock_gettime(CLOCK_MONOTONIC, &start);
        Result res = import(xml);
        CHECK_EQ_INT(res.r, -EINVAL);
        CHECK_EQ_INT(res.e.kind, DOMAIN_XML_ERROR_SYNTAX);
        CHECK(elapsed_since(&start) < 1.0);
        result_done(&res);
}

TEST(oversized_document_refused_before_parsing) {
        size_t len = 100U << 20;
        char *xml = malloc(len);
        struct timespec start;
        ASSERT(xml);
        memset(xml, ' ', len);
        memcpy(xml, "<domain type='kvm'>", 19);
        clock_gettime(CLOCK_MONOTONIC, &start);
        Result res = import_opts(xml, len, false);
        CHECK_EQ_INT(res.r, -EINVAL);
        CHECK_EQ_INT(res.e.kind, DOMAIN_XML_ERROR_TOO_LARGE);
        CHECK_EQ_INT(domain_xml_error_http_status(&res.e), 413);
        CHECK(elapsed_since(&start) < 0.1);
        result_done(&res);
        free(xml);
}

TEST(deep_nesting_refused) {
        static const int depths[] = { 40, 100000 };
        for (size_t d = 0; d < ELEMENTSOF(depths); d++) {
                size_t len = 0, cap = (size_t) depths[d] * 8 + 256;
                char *xml = malloc(cap);
                ASSERT(xml);
                len += (size_t) sprintf(xml, "<domain type='kvm'><metadata>");
                for (int i = 0; i < depths[d]; i++)
                        len += (size_t) sprintf(xml + len, "<a:a xmlns:a='u'>" + (i ? 16 : 0));
                Result res = import_opts(xml, len, false);
                CHECK_EQ_INT(res.r, -EINVAL);
                CHECK_EQ_INT(res.e.kind, DOMAIN_XML_ERROR_SYNTAX);
                result_done(&res);
                free(xml);
        }
}

TEST(invalid_utf8_refused_with_position) {
        Result res = import("<domain type='kvm'>\n<name>a\xff\xfe</name></domain>");
        ASSERT_EQ_INT(res.r, -EINVAL);
        CHECK_EQ_INT(res.e.kind, DOMAIN_XML_ERROR_SYNTAX);
        CHECK_EQ_INT(res.e.line, 2);
        result_done(&res);
}

static void round_trip(const char *spec_json) {
        VmSpec *spec = NULL;
        JsonError je;
        char *xml = NULL;
        size_t len = 0;
        json_object *canonical = NULL;
        DomainXmlExportOptions opts = { .nested_feature = "svm" };

        ASSERT_EQ_INT(vm_spec_from_string(spec_json, strlen(spec_json), &spec, &je), 0);
        ASSERT_EQ_INT(vm_spec_to_json(spec, &canonical), 0);
        ASSERT_EQ_INT(domain_xml_from_spec(spec, NULL, &opts, &xml, &len), 0);
        CHECK_EQ_INT(strlen(xml), len);
        Result res = import(xml);
        CHECK_EQ_INT(res.r, 0);
        if (res.r == 0) {
                CHECK_STREQ(json_to_string(res.spec), json_to_string(canonical));
                CHECK_STREQ(json_to_string(res.warnings), "[]");
        } else
                test_fail(__FILE__, __LINE__, "%s\n%s", res.e.message, details_string(&res));
        result_done(&res);
        json_object_put(canonical);
        free(xml);
        vm_spec_free(spec);
}

TEST(export_round_trips) {
        round_trip("{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\",\"boot\":{\"kernel\":\"/k\"}}");
        round_trip("{\"name\":\"b\",\"uuid\":\"0e7c5a42-1c1e-4b43-9a44-5b6e5c1f2a3d\",\"vcpus\":8,\"memory\":\"3GiB\","
                   "\"boot\":{\"raw\":\"/r.bin\",\"load_addr\":\"1MiB\",\"entry\":\"0x100010\",\"mode\":\"long\"},"
                   "\"cpu\":{\"nested\":true},\"irqchip\":\"split\",\"pit\":{\"reinject\":false},"
                   "\"memory_backing\":\"anonymous\",\"on_crash\":\"preserve\",\"console\":{\"log\":\"/l <&>.log\"},"
                   "\"disks\":[{\"path\":\"/d.img\",\"readonly\":true,\"serial\":\"S1\"},{\"path\":\"/e.img\"}],"
                   "\"nics\":[{\"tap\":\"tap0\",\"mac\":\"52:54:00:12:34:56\"}],\"on_poweroff\":\"restart\","
                   "\"on_reboot\":\"destroy\",\"cpuset\":\"0,2-5\"}");
        round_trip("{\"name\":\"c\",\"vcpus\":2,\"memory\":\"4GiB\",\"boot\":{\"kernel\":\"/k\",\"initrd\":\"/i\","
                   "\"cmdline\":\"a=\\\"b c\\\" <x>\"},\"irqchip\":\"split\",\"memory_backing\":\"hugetlb\","
                   "\"libvirt\":{\"title\":\"T\",\"description\":\"line 1\\nline 2 & more\","
                   "\"metadata\":[\"<app:x xmlns:app=\\\"urn:app\\\" a=\\\"1\\\"><app:y>t</app:y><app:z/></app:x>\","
                   "\"<o:p xmlns:o=\\\"urn:o\\\"/>\"]}}");
        round_trip("{\"name\":\"d\",\"vcpus\":2,\"memory\":\"64MiB\",\"boot\":{\"kernel\":\"/k\"},"
                   "\"cpu\":{\"kvm_pv\":{\"pv_eoi\":false,\"pv_unhalt\":true}}}");
        /* features libvirt has no element for, and pv_eoi without an irqchip, go through the metadata */
        round_trip("{\"name\":\"e\",\"vcpus\":1,\"memory\":\"64MiB\",\"boot\":{\"kernel\":\"/k\"},\"irqchip\":\"none\","
                   "\"cpu\":{\"kvm_pv\":{\"steal_time\":false,\"pv_eoi\":false,\"pv_send_ipi\":true}}}");
}

TEST(kvm_pv_switches_map) {
        Result res = import(DOMAIN_HEAD "<memory>65536</memory><vcpu>2</vcpu>"
                            "<features><apic eoi='off'/><pvspinlock state='on'/></features>" DOMAIN_TAIL);
        ASSERT_EQ_INT(res.r, 0);
        CHECK_CONTAINS(json_to_string(res.spec), "\"kvm_pv\":{\"pv_eoi\":false,\"pv_unhalt\":true}");
        result_done(&res);
        res = import(DOMAIN_HEAD "<memory>65536</memory><vcpu>1</vcpu><features><apic eoi='maybe'/></features>" DOMAIN_TAIL);
        ASSERT_EQ_INT(res.r, -EINVAL);
        CHECK_CONTAINS(details_string(&res), "/domain/features/apic/@eoi");
        result_done(&res);
        res = import(DOMAIN_HEAD "<memory>65536</memory><vcpu>1</vcpu>"
                     "<metadata><k:vm xmlns:k='https://kvmfleet.dev/xmlns/domain/1'><k:kvm-pv steal_tim='off'/></k:vm></metadata>"
                     DOMAIN_TAIL);
        ASSERT_EQ_INT(res.r, -EINVAL);
        CHECK_CONTAINS(details_string(&res), "unknown KVM paravirtual feature");
        result_done(&res);
}

TEST(export_uses_the_given_uuid_and_refuses_bad_metadata) {
        VmSpec *spec = NULL;
        JsonError je;
        char *xml = NULL;
        const char *text = "{\"name\":\"a\",\"vcpus\":1,\"memory\":\"64MiB\",\"boot\":{\"kernel\":\"/k\"},"
                           "\"libvirt\":{\"metadata\":[\"<unclosed\"]}}";
        ASSERT_EQ_INT(vm_spec_from_string(text, strlen(text), &spec, &je), 0);
        CHECK_EQ_INT(domain_xml_from_spec(spec, "11111111-2222-3333-4444-555555555555", NULL, &xml, NULL), -EINVAL);
        free(spec->libvirt_metadata[0]);
        spec->n_libvirt_metadata = 0;
        ASSERT_EQ_INT(domain_xml_from_spec(spec, "11111111-2222-3333-4444-555555555555", NULL, &xml, NULL), 0);
        CHECK_CONTAINS(xml, "<uuid>11111111-2222-3333-4444-555555555555</uuid>");
        free(xml);
        vm_spec_free(spec);
}
