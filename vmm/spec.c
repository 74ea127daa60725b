/* SPDX-License-Identifier: MIT */
#include "spec.h"

#include <ctype.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpuset.h"
#include "sha256.h"
#include "str-util.h"

static const char *const irqchip_names[] = { "kernel", "split", "none", NULL };
static const char *const backing_names[] = { "memfd", "hugetlb", "anonymous", NULL };
static const char *const on_crash_names[] = { "destroy", "restart", "preserve", NULL };
static const char *const mode_names[] = { "real", "long", NULL };
/* KVM_FEATURE_* of Documentation/virt/kvm/x86/cpuid.rst by bit, without the prefix, lowercase. */
static const char *const kvm_pv_names[32] = {
        [0] = "clocksource",         [1] = "nop_io_delay",     [2] = "mmu_op",          [3] = "clocksource2",
        [4] = "async_pf",            [5] = "steal_time",       [6] = "pv_eoi",          [7] = "pv_unhalt",
        [9] = "pv_tlb_flush",        [10] = "async_pf_vmexit", [11] = "pv_send_ipi",    [12] = "poll_control",
        [13] = "pv_sched_yield",     [14] = "async_pf_int",    [15] = "msi_ext_dest_id", [16] = "hc_map_gpa_range",
        [17] = "migration_control", [24] = "clocksource_stable_bit",
};

const char *vm_kvm_pv_feature_name(unsigned bit) {
        return bit < ELEMENTSOF(kvm_pv_names) ? kvm_pv_names[bit] : NULL;
}

int vm_kvm_pv_feature_from_name(const char *name) {
        for (unsigned i = 0; i < ELEMENTSOF(kvm_pv_names); i++)
                if (kvm_pv_names[i] && streq(kvm_pv_names[i], name))
                        return (int) i;
        return -EINVAL;
}

static int parse_kvm_pv(json_object *obj, VmSpec *spec, JsonError *e) {
        int r = json_expect_object(obj, "$.cpu.kvm_pv", e);
        if (r < 0)
                return r;
        json_object_object_foreach(obj, key, val) {
                char path[64];
                int bit = vm_kvm_pv_feature_from_name(key);
                snprintf(path, sizeof path, "$.cpu.kvm_pv.%.40s", key);
                if (bit < 0)
                        return json_error_set(e, path, "unknown KVM paravirtual feature (known: pv_eoi, pv_unhalt, "
                                                       "pv_send_ipi, pv_tlb_flush, steal_time, async_pf, ...)");
                if (!json_object_is_type(val, json_type_boolean))
                        return json_error_set(e, path, "must be a boolean");
                if (json_object_get_boolean(val))
                        spec->kvm_pv_on |= 1u << bit;
                else
                        spec->kvm_pv_off |= 1u << bit;
        }
        return 0;
}

const char *vm_irqchip_to_string(VmIrqchip i) {
        return (unsigned) i < ELEMENTSOF(irqchip_names) - 1 ? irqchip_names[i] : NULL;
}
const char *vm_memory_backing_to_string(VmMemoryBacking b) {
        return (unsigned) b < ELEMENTSOF(backing_names) - 1 ? backing_names[b] : NULL;
}
const char *vm_on_crash_to_string(VmOnCrash c) {
        return (unsigned) c < ELEMENTSOF(on_crash_names) - 1 ? on_crash_names[c] : NULL;
}
const char *vm_lifecycle_action_to_string(VmLifecycleAction a) {
        return vm_on_crash_to_string(a);
}
int vm_lifecycle_action_from_string(const char *s, VmLifecycleAction *ret) {
        for (size_t i = 0; on_crash_names[i]; i++)
                if (streq(s, on_crash_names[i])) {
                        *ret = (VmLifecycleAction) i;
                        return 0;
                }
        return -EINVAL;
}

int vm_cpuset_normalize(const char *s, char **ret) {
        cpu_set_t set;
        int r = cpuset_parse(s, &set);
        return r < 0 ? r : cpuset_format(&set, ret);
}

const char *vm_boot_mode_to_string(VmBootMode m) {
        return (unsigned) m < ELEMENTSOF(mode_names) - 1 ? mode_names[m] : NULL;
}

VmSpec *vm_spec_free(VmSpec *spec) {
        if (!spec)
                return NULL;
        free(spec->name);
        free(spec->uuid);
        free(spec->kernel);
        free(spec->initrd);
        free(spec->cmdline);
        free(spec->raw);
        free(spec->console_log);
        for (size_t i = 0; i < spec->n_disks; i++) {
                free(spec->disks[i].path);
                free(spec->disks[i].serial);
        }
        free(spec->disks);
        for (size_t i = 0; i < spec->n_nics; i++) {
                free(spec->nics[i].tap);
                free(spec->nics[i].mac);
        }
        free(spec->nics);
        free(spec->cpuset);
        free(spec->libvirt_title);
        free(spec->libvirt_description);
        for (size_t i = 0; i < spec->n_libvirt_metadata; i++)
                free(spec->libvirt_metadata[i]);
        free(spec->libvirt_metadata);
        free(spec);
        return NULL;
}

/* Copies an optional string field; 1 when present, 0 when absent. */
static int get_string_dup(json_object *obj, const char *path, const char *key, bool required, char **ret,
                          JsonError *e) {
        const char *s;
        int r = json_get_string(obj, path, key, required, &s, e);
        if (r <= 0)
                return r;
        char *copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        free(*ret);
        *ret = copy;
        return 1;
}

static int get_path_dup(json_object *obj, const char *path, const char *key, bool required, char **ret,
                        JsonError *e) {
        char fp[256];
        int r = get_string_dup(obj, path, key, required, ret, e);
        if (r <= 0)
                return r;
        json_path_key(fp, sizeof fp, path, key);
        if (!**ret)
                return json_error_set(e, fp, "must not be empty");
        if (strlen(*ret) >= 4096)
                return json_error_set(e, fp, "path is too long");
        return 1;
}

static bool name_is_valid(const char *s) {
        size_t l = strlen(s);
        if (l == 0 || l > VM_SPEC_NAME_MAX || s[0] == '-' || s[0] == '.')
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '-' || *p == '_' || *p == '.'))
                        return false;
        return true;
}

static bool mac_is_valid(const char *s) {
        if (strlen(s) != 17)
                return false;
        for (int i = 0; i < 17; i++) {
                char c = s[i];
                if (i % 3 == 2) {
                        if (c != ':')
                                return false;
                } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
                        return false;
        }
        return true;
}

static int parse_boot(json_object *boot, VmSpec *spec, JsonError *e) {
        static const char *const kernel_keys[] = { "kernel", "initrd", "cmdline", NULL };
        static const char *const raw_keys[] = { "raw", "load_addr", "entry", "mode", NULL };
        const char *path = "$.boot";
        int r, mode = VM_BOOT_MODE_LONG;

        bool has_kernel = json_object_object_get_ex(boot, "kernel", NULL);
        bool has_raw = json_object_object_get_ex(boot, "raw", NULL);
        if (has_kernel == has_raw)
                return json_error_set(e, path, "must have exactly one of \"kernel\" or \"raw\"");

        if (has_kernel) {
                spec->boot_kind = VM_BOOT_KERNEL;
                r = json_check_keys(boot, path, kernel_keys, e);
                if (r < 0)
                        return r;
                r = get_path_dup(boot, path, "kernel", true, &spec->kernel, e);
                if (r < 0)
                        return r;
                r = get_path_dup(boot, path, "initrd", false, &spec->initrd, e);
                if (r < 0)
                        return r;
                r = get_string_dup(boot, path, "cmdline", false, &spec->cmdline, e);
                if (r < 0)
                        return r;
                if (spec->cmdline && strlen(spec->cmdline) > VM_SPEC_CMDLINE_MAX)
                        return json_error_set(e, "$.boot.cmdline", "must be at most %d bytes", VM_SPEC_CMDLINE_MAX);
                return 0;
        }

        spec->boot_kind = VM_BOOT_RAW;
        r = json_check_keys(boot, path, raw_keys, e);
        if (r < 0)
                return r;
        r = get_path_dup(boot, path, "raw", true, &spec->raw, e);
        if (r < 0)
                return r;
        r = json_get_size(boot, path, "load_addr", true, 0, X86_PCI_HOLE_START - 1, &spec->load_addr, e);
        if (r < 0)
                return r;
        r = json_get_size(boot, path, "entry", true, 0, X86_PCI_HOLE_START - 1, &spec->entry, e);
        if (r < 0)
                return r;
        r = json_get_enum(boot, path, "mode", true, mode_names, &mode, e);
        if (r < 0)
                return r;
        spec->mode = (VmBootMode) mode;
        if (spec->mode == VM_BOOT_MODE_REAL) {
                if (spec->entry >= 0x100000)
                        return json_error_set(e, "$.boot.entry", "must be below 1MiB for real mode");
                if (spec->load_addr >= 0x100000)
                        return json_error_set(e, "$.boot.load_addr", "must be below 1MiB for real mode");
        }
        if (spec->load_addr + 0x1000 > spec->memory)
                return json_error_set(e, "$.boot.load_addr", "is outside guest memory");
        if (spec->entry >= spec->memory)
                return json_error_set(e, "$.boot.entry", "is outside guest memory");
        return 0;
}

static int parse_disks(json_object *arr, VmSpec *spec, JsonError *e) {
        static const char *const keys[] = { "path", "readonly", "serial", NULL };
        size_t n = json_object_array_length(arr);
        if (n > VM_SPEC_DISKS_MAX)
                return json_error_set(e, "$.disks", "at most %d disks", VM_SPEC_DISKS_MAX);
        if (n == 0)
                return 0;
        spec->disks = calloc(n, sizeof *spec->disks);
        if (!spec->disks)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *d = json_object_array_get_idx(arr, i);
                VmDisk *disk = &spec->disks[i];
                char p[64];
                int r;
                spec->n_disks = i + 1;
                json_path_index(p, sizeof p, "$.disks", i);
                r = json_expect_object(d, p, e);
                if (r < 0)
                        return r;
                r = json_check_keys(d, p, keys, e);
                if (r < 0)
                        return r;
                r = get_path_dup(d, p, "path", true, &disk->path, e);
                if (r < 0)
                        return r;
                r = json_get_bool(d, p, "readonly", false, &disk->readonly, e);
                if (r < 0)
                        return r;
                r = get_string_dup(d, p, "serial", false, &disk->serial, e);
                if (r < 0)
                        return r;
                if (disk->serial && strlen(disk->serial) > 20) {
                        char fp[96];
                        json_path_key(fp, sizeof fp, p, "serial");
                        return json_error_set(e, fp, "must be at most 20 characters");
                }
                /* Domain XML cannot tell such white space from its own formatting, and strips it: a
                 * spec that said it would not come back from its XML the same. */
                size_t len = disk->serial ? strlen(disk->serial) : 0;
                if (len > 0 && (isspace((unsigned char) disk->serial[0]) || isspace((unsigned char) disk->serial[len - 1]))) {
                        char fp[96];
                        json_path_key(fp, sizeof fp, p, "serial");
                        return json_error_set(e, fp, "must not begin or end with white space");
                }
        }
        return 0;
}

static int parse_nics(json_object *arr, VmSpec *spec, JsonError *e) {
        static const char *const keys[] = { "tap", "mac", NULL };
        size_t n = json_object_array_length(arr);
        if (n > VM_SPEC_NICS_MAX)
                return json_error_set(e, "$.nics", "at most %d nics", VM_SPEC_NICS_MAX);
        if (n == 0)
                return 0;
        spec->nics = calloc(n, sizeof *spec->nics);
        if (!spec->nics)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *d = json_object_array_get_idx(arr, i);
                VmNic *nic = &spec->nics[i];
                char p[64], fp[96];
                int r;
                spec->n_nics = i + 1;
                json_path_index(p, sizeof p, "$.nics", i);
                r = json_expect_object(d, p, e);
                if (r < 0)
                        return r;
                r = json_check_keys(d, p, keys, e);
                if (r < 0)
                        return r;
                r = get_string_dup(d, p, "tap", true, &nic->tap, e);
                if (r < 0)
                        return r;
                json_path_key(fp, sizeof fp, p, "tap");
                if (!nic->tap[0] || strlen(nic->tap) >= 16 || strchr(nic->tap, '/'))
                        return json_error_set(e, fp, "must be an interface name of 1 to 15 characters");
                r = get_string_dup(d, p, "mac", false, &nic->mac, e);
                if (r < 0)
                        return r;
                json_path_key(fp, sizeof fp, p, "mac");
                if (nic->mac && !mac_is_valid(nic->mac))
                        return json_error_set(e, fp, "must be a MAC address such as \"52:54:00:12:34:56\"");
        }
        return 0;
}

/* What a device list may not say whatever the host: the same image twice (two queues writing one
 * file behind each other's back), the same tap twice (a tap has one reader), devices without an
 * in-kernel LAPIC (virtio-pci interrupts are MSI-X messages, delivered only by one). */
static int check_devices(const VmSpec *spec, JsonError *e) {
        char p[96];
        if ((spec->n_disks > 0 || spec->n_nics > 0) && spec->irqchip == VM_IRQCHIP_NONE)
                return json_error_set(e, "$.irqchip",
                                      "disks and nics need an in-kernel LAPIC for their MSI-X interrupts (irqchip \"kernel\" or \"split\"), not irqchip \"none\"");
        for (size_t i = 0; i < spec->n_disks; i++)
                for (size_t j = 0; j < i; j++)
                        if (streq(spec->disks[i].path, spec->disks[j].path)) {
                                snprintf(p, sizeof p, "$.disks[%zu].path", i);
                                return json_error_set(e, p, "\"%.128s\" is already $.disks[%zu]", spec->disks[i].path, j);
                        }
        for (size_t i = 0; i < spec->n_nics; i++)
                for (size_t j = 0; j < i; j++)
                        if (streq(spec->nics[i].tap, spec->nics[j].tap)) {
                                snprintf(p, sizeof p, "$.nics[%zu].tap", i);
                                return json_error_set(e, p, "tap \"%s\" is already $.nics[%zu]; a tap has one reader",
                                                      spec->nics[i].tap, j);
                        }
        return 0;
}

void vm_spec_nic_mac(const VmSpec *spec, size_t index, char ret[18]) {
        if (index < spec->n_nics && spec->nics[index].mac) {
                for (size_t i = 0; i < 17; i++)
                        ret[i] = (char) tolower((unsigned char) spec->nics[index].mac[i]);
                ret[17] = 0;
                return;
        }
        /* A fleet has many hosts and no shared allocator: five hashed octets keep collisions between
         * VMs as rare as 2^-40 per pair, where QEMU-style 52:54:00 prefixes leave only 24 bits. */
        uint8_t digest[SHA256_DIGEST_SIZE];
        char idx[24];
        Sha256 h;
        const char *id = spec->uuid ? spec->uuid : spec->name ? spec->name : "";
        snprintf(idx, sizeof idx, "/nic/%zu", index);
        sha256_init(&h);
        sha256_update(&h, id, strlen(id));
        sha256_update(&h, idx, strlen(idx));
        sha256_final(&h, digest);
        snprintf(ret, 18, "52:%02x:%02x:%02x:%02x:%02x", digest[0], digest[1], digest[2], digest[3], digest[4]);
}

static int parse_libvirt(json_object *obj, VmSpec *spec, JsonError *e) {
        static const char *const keys[] = { "title", "description", "metadata", NULL };
        const char *path = "$.libvirt";
        json_object *arr;
        int r;

        r = json_check_keys(obj, path, keys, e);
        if (r < 0)
                return r;
        r = get_string_dup(obj, path, "title", false, &spec->libvirt_title, e);
        if (r < 0)
                return r;
        if (spec->libvirt_title && (strlen(spec->libvirt_title) > VM_SPEC_LIBVIRT_TEXT_MAX ||
                                    strchr(spec->libvirt_title, '\n')))
                return json_error_set(e, "$.libvirt.title", "must be one line of at most %d bytes",
                                      VM_SPEC_LIBVIRT_TEXT_MAX);
        r = get_string_dup(obj, path, "description", false, &spec->libvirt_description, e);
        if (r < 0)
                return r;
        if (spec->libvirt_description && strlen(spec->libvirt_description) > VM_SPEC_LIBVIRT_TEXT_MAX)
                return json_error_set(e, "$.libvirt.description", "must be at most %d bytes",
                                      VM_SPEC_LIBVIRT_TEXT_MAX);
        r = json_get_array(obj, path, "metadata", false, &arr, e);
        if (r <= 0)
                return r;
        size_t n = json_object_array_length(arr);
        if (n > VM_SPEC_LIBVIRT_METADATA_MAX)
                return json_error_set(e, "$.libvirt.metadata", "at most %d elements", VM_SPEC_LIBVIRT_METADATA_MAX);
        if (n == 0)
                return 0;
        spec->libvirt_metadata = calloc(n, sizeof *spec->libvirt_metadata);
        if (!spec->libvirt_metadata)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *item = json_object_array_get_idx(arr, i);
                char p[64];
                json_path_index(p, sizeof p, "$.libvirt.metadata", i);
                if (!json_object_is_type(item, json_type_string))
                        return json_error_set(e, p, "must be a string");
                const char *text = json_object_get_string(item);
                if (text[0] != '<' || strlen(text) > VM_SPEC_LIBVIRT_METADATA_SIZE_MAX)
                        return json_error_set(e, p, "must be one XML element of at most %d bytes",
                                              VM_SPEC_LIBVIRT_METADATA_SIZE_MAX);
                spec->libvirt_metadata[i] = strdup(text);
                if (!spec->libvirt_metadata[i])
                        return -ENOMEM;
                spec->n_libvirt_metadata = i + 1;
        }
        return 0;
}

int vm_spec_from_json(json_object *obj, VmSpec **ret, JsonError *e) {
        static const char *const keys[] = { "name",           "uuid",     "vcpus",   "memory", "boot",  "cpu",
                                             "irqchip",        "pit",      "memory_backing",    "on_crash",
                                             "console",        "disks",    "nics",    "on_poweroff",
                                             "on_reboot",      "cpuset",   "hugepage_size",     "libvirt",
                                             "x2apic_api",     NULL };
        static const char *const cpu_keys[] = { "nested", "kvm_pv", NULL };
        static const char *const pit_keys[] = { "reinject", NULL };
        static const char *const console_keys[] = { "log", NULL };
        static const char *const x2apic_keys[] = { "use_32bit_ids", "disable_broadcast_quirk", NULL };
        _cleanup_vm_spec_ VmSpec *spec = NULL;
        json_object *boot, *sub;
        uint64_t vcpus;
        int r, choice;

        r = json_expect_object(obj, "$", e);
        if (r < 0)
                return r;
        r = json_check_keys(obj, "$", keys, e);
        if (r < 0)
                return r;

        spec = calloc(1, sizeof *spec);
        if (!spec)
                return -ENOMEM;
        spec->irqchip = VM_IRQCHIP_KERNEL;
        spec->pit_reinject = true;
        spec->memory_backing = VM_MEMORY_MEMFD;
        spec->on_crash = VM_ON_CRASH_DESTROY;
        spec->on_poweroff = VM_ON_CRASH_DESTROY;
        spec->on_reboot = VM_ON_CRASH_RESTART;

        r = get_string_dup(obj, "$", "name", true, &spec->name, e);
        if (r < 0)
                return r;
        if (!name_is_valid(spec->name))
                return json_error_set(e, "$.name",
                                      "must be 1 to %d characters of A-Z a-z 0-9 - _ . not starting with - or .",
                                      VM_SPEC_NAME_MAX);
        r = get_string_dup(obj, "$", "uuid", false, &spec->uuid, e);
        if (r < 0)
                return r;
        if (spec->uuid && !uuid_is_valid(spec->uuid))
                return json_error_set(e, "$.uuid", "must be a UUID such as \"0e7c5a42-1c1e-4b43-9a44-5b6e5c1f2a3d\"");
        r = json_get_uint64(obj, "$", "vcpus", true, 1, VM_SPEC_VCPUS_MAX, &vcpus, e);
        if (r < 0)
                return r;
        spec->vcpus = (unsigned) vcpus;
        r = json_get_size(obj, "$", "memory", true, VM_SPEC_MEMORY_MIN, VM_SPEC_MEMORY_MAX, &spec->memory, e);
        if (r < 0)
                return r;
        if (!IS_ALIGNED(spec->memory, 4096))
                return json_error_set(e, "$.memory", "must be a multiple of 4KiB");

        r = json_get_enum(obj, "$", "memory_backing", false, backing_names, &choice, e);
        if (r < 0)
                return r;
        if (r > 0)
                spec->memory_backing = (VmMemoryBacking) choice;
        if (spec->memory_backing == VM_MEMORY_HUGETLB && !IS_ALIGNED(spec->memory, 2ULL << 20))
                return json_error_set(e, "$.memory", "must be a multiple of 2MiB with hugetlb backing");
        r = json_get_size(obj, "$", "hugepage_size", false, 0, UINT64_MAX, &spec->hugepage_size, e);
        if (r < 0)
                return r;
        if (r > 0 && spec->memory_backing != VM_MEMORY_HUGETLB)
                return json_error_set(e, "$.hugepage_size", "is only valid with memory_backing \"hugetlb\"");
        if (r > 0 && spec->hugepage_size != VM_SPEC_HUGEPAGE_SIZE)
                return json_error_set(e, "$.hugepage_size", "must be 2MiB, the huge page size kvmfleet-vmm uses");
        if (spec->memory_backing == VM_MEMORY_HUGETLB)
                spec->hugepage_size = VM_SPEC_HUGEPAGE_SIZE;

        r = json_get_object(obj, "$", "boot", true, &boot, e);
        if (r < 0)
                return r;
        r = parse_boot(boot, spec, e);
        if (r < 0)
                return r;

        r = json_get_object(obj, "$", "cpu", false, &sub, e);
        if (r < 0)
                return r;
        if (r > 0) {
                r = json_check_keys(sub, "$.cpu", cpu_keys, e);
                if (r < 0)
                        return r;
                r = json_get_bool(sub, "$.cpu", "nested", false, &spec->nested, e);
                if (r < 0)
                        return r;
                json_object *pv;
                if (json_object_object_get_ex(sub, "kvm_pv", &pv)) {
                        r = parse_kvm_pv(pv, spec, e);
                        if (r < 0)
                                return r;
                }
        }
        r = json_get_enum(obj, "$", "irqchip", false, irqchip_names, &choice, e);
        if (r < 0)
                return r;
        if (r > 0)
                spec->irqchip = (VmIrqchip) choice;
        r = json_get_object(obj, "$", "pit", false, &sub, e);
        if (r < 0)
                return r;
        if (r > 0) {
                r = json_check_keys(sub, "$.pit", pit_keys, e);
                if (r < 0)
                        return r;
                r = json_get_bool(sub, "$.pit", "reinject", false, &spec->pit_reinject, e);
                if (r < 0)
                        return r;
        }
        r = json_get_object(obj, "$", "x2apic_api", false, &sub, e);
        if (r < 0)
                return r;
        if (r > 0) {
                r = json_check_keys(sub, "$.x2apic_api", x2apic_keys, e);
                if (r < 0)
                        return r;
                r = json_get_bool(sub, "$.x2apic_api", "use_32bit_ids", false, &spec->x2apic_use_32bit_ids, e);
                if (r < 0)
                        return r;
                r = json_get_bool(sub, "$.x2apic_api", "disable_broadcast_quirk", false,
                                  &spec->x2apic_disable_broadcast_quirk, e);
                if (r < 0)
                        return r;
                /* The flags change how KVM formats APIC IDs in routing, MSIs and LAPIC state, and how an
                 * in-kernel LAPIC treats x2APIC broadcasts: without an in-kernel LAPIC there is nothing
                 * for them to act on. */
                if ((spec->x2apic_use_32bit_ids || spec->x2apic_disable_broadcast_quirk) &&
                    spec->irqchip == VM_IRQCHIP_NONE)
                        return json_error_set(e, "$.x2apic_api",
                                              "needs an in-kernel LAPIC (irqchip \"kernel\" or \"split\"), not irqchip \"none\"");
        }
        r = json_get_enum(obj, "$", "on_crash", false, on_crash_names, &choice, e);
        if (r < 0)
                return r;
        if (r > 0)
                spec->on_crash = (VmOnCrash) choice;
        r = json_get_enum(obj, "$", "on_poweroff", false, on_crash_names, &choice, e);
        if (r < 0)
                return r;
        if (r > 0)
                spec->on_poweroff = (VmLifecycleAction) choice;
        r = json_get_enum(obj, "$", "on_reboot", false, on_crash_names, &choice, e);
        if (r < 0)
                return r;
        if (r > 0)
                spec->on_reboot = (VmLifecycleAction) choice;
        {
                const char *cpuset;
                r = json_get_string(obj, "$", "cpuset", false, &cpuset, e);
                if (r < 0)
                        return r;
                if (r > 0) {
                        r = vm_cpuset_normalize(cpuset, &spec->cpuset);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0)
                                return json_error_set(e, "$.cpuset",
                                                      "must be a list of host CPUs 0 to %d such as \"0-3,6\"",
                                                      VM_SPEC_CPUSET_MAX);
                }
        }
        r = json_get_object(obj, "$", "libvirt", false, &sub, e);
        if (r < 0)
                return r;
        if (r > 0) {
                r = parse_libvirt(sub, spec, e);
                if (r < 0)
                        return r;
        }
        r = json_get_object(obj, "$", "console", false, &sub, e);
        if (r < 0)
                return r;
        if (r > 0) {
                r = json_check_keys(sub, "$.console", console_keys, e);
                if (r < 0)
                        return r;
                r = get_path_dup(sub, "$.console", "log", false, &spec->console_log, e);
                if (r < 0)
                        return r;
        }
        r = json_get_array(obj, "$", "disks", false, &sub, e);
        if (r < 0)
                return r;
        if (r > 0) {
                r = parse_disks(sub, spec, e);
                if (r < 0)
                        return r;
        }
        r = json_get_array(obj, "$", "nics", false, &sub, e);
        if (r < 0)
                return r;
        if (r > 0) {
                r = parse_nics(sub, spec, e);
                if (r < 0)
                        return r;
        }
        r = check_devices(spec, e);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(spec);
        return 0;
}

int vm_spec_from_string(const char *text, size_t len, VmSpec **ret, JsonError *e) {
        _cleanup_json_ json_object *obj = NULL;
        int r = json_parse(text, len, 32, &obj, e);
        if (r < 0)
                return r;
        return vm_spec_from_json(obj, ret, e);
}

int vm_spec_to_json(const VmSpec *spec, json_object **ret) {
        _cleanup_json_ json_object *obj = json_object_new_object();
        json_object *boot, *sub, *arr;
        int r = 0;

        if (!obj)
                return -ENOMEM;
        r |= json_add_string(obj, "name", spec->name);
        if (spec->uuid)
                r |= json_add_string(obj, "uuid", spec->uuid);
        r |= json_add_uint(obj, "vcpus", spec->vcpus);
        r |= json_add_uint(obj, "memory", spec->memory);
        if (!(boot = json_object_new_object()))
                return -ENOMEM;
        r |= json_add(obj, "boot", boot);
        if (spec->boot_kind == VM_BOOT_KERNEL) {
                r |= json_add_string(boot, "kernel", spec->kernel);
                if (spec->initrd)
                        r |= json_add_string(boot, "initrd", spec->initrd);
                if (spec->cmdline)
                        r |= json_add_string(boot, "cmdline", spec->cmdline);
        } else {
                r |= json_add_string(boot, "raw", spec->raw);
                r |= json_add_uint(boot, "load_addr", spec->load_addr);
                r |= json_add_uint(boot, "entry", spec->entry);
                r |= json_add_string(boot, "mode", vm_boot_mode_to_string(spec->mode));
        }
        if (!(sub = json_object_new_object()))
                return -ENOMEM;
        r |= json_add(obj, "cpu", sub);
        r |= json_add_bool(sub, "nested", spec->nested);
        /* Only when set, so that specs written before the option existed keep their canonical form. */
        if (spec->kvm_pv_on | spec->kvm_pv_off) {
                json_object *pv = json_object_new_object();
                if (!pv)
                        return -ENOMEM;
                r |= json_add(sub, "kvm_pv", pv);
                for (unsigned i = 0; i < ELEMENTSOF(kvm_pv_names); i++)
                        if ((spec->kvm_pv_on | spec->kvm_pv_off) & (1u << i))
                                r |= json_add_bool(pv, kvm_pv_names[i], spec->kvm_pv_on & (1u << i));
        }
        r |= json_add_string(obj, "irqchip", vm_irqchip_to_string(spec->irqchip));
        if (!(sub = json_object_new_object()))
                return -ENOMEM;
        r |= json_add(obj, "pit", sub);
        r |= json_add_bool(sub, "reinject", spec->pit_reinject);
        /* Only when set, so that specs written before the option existed keep their canonical form. */
        if (spec->x2apic_use_32bit_ids || spec->x2apic_disable_broadcast_quirk) {
                if (!(sub = json_object_new_object()))
                        return -ENOMEM;
                r |= json_add(obj, "x2apic_api", sub);
                r |= json_add_bool(sub, "use_32bit_ids", spec->x2apic_use_32bit_ids);
                r |= json_add_bool(sub, "disable_broadcast_quirk", spec->x2apic_disable_broadcast_quirk);
        }
        r |= json_add_string(obj, "memory_backing", vm_memory_backing_to_string(spec->memory_backing));
        r |= json_add_string(obj, "on_crash", vm_on_crash_to_string(spec->on_crash));
        if (!(sub = json_object_new_object()))
                return -ENOMEM;
        r |= json_add(obj, "console", sub);
        if (spec->console_log)
                r |= json_add_string(sub, "log", spec->console_log);
        if (!(arr = json_object_new_array()))
                return -ENOMEM;
        r |= json_add(obj, "disks", arr);
        for (size_t i = 0; i < spec->n_disks; i++) {
                json_object *d = json_object_new_object();
                if (!d || json_object_array_add(arr, d) < 0) {
                        json_object_put(d);
                        return -ENOMEM;
                }
                r |= json_add_string(d, "path", spec->disks[i].path);
                r |= json_add_bool(d, "readonly", spec->disks[i].readonly);
                if (spec->disks[i].serial)
                        r |= json_add_string(d, "serial", spec->disks[i].serial);
        }
        if (!(arr = json_object_new_array()))
                return -ENOMEM;
        r |= json_add(obj, "nics", arr);
        for (size_t i = 0; i < spec->n_nics; i++) {
                json_object *d = json_object_new_object();
                if (!d || json_object_array_add(arr, d) < 0) {
                        json_object_put(d);
                        return -ENOMEM;
                }
                r |= json_add_string(d, "tap", spec->nics[i].tap);
                if (spec->nics[i].mac)
                        r |= json_add_string(d, "mac", spec->nics[i].mac);
        }
        r |= json_add_string(obj, "on_poweroff", vm_lifecycle_action_to_string(spec->on_poweroff));
        r |= json_add_string(obj, "on_reboot", vm_lifecycle_action_to_string(spec->on_reboot));
        if (spec->cpuset)
                r |= json_add_string(obj, "cpuset", spec->cpuset);
        if (spec->memory_backing == VM_MEMORY_HUGETLB)
                r |= json_add_uint(obj, "hugepage_size", spec->hugepage_size ?: VM_SPEC_HUGEPAGE_SIZE);
        if (spec->libvirt_title || spec->libvirt_description || spec->n_libvirt_metadata > 0) {
                if (!(sub = json_object_new_object()))
                        return -ENOMEM;
                r |= json_add(obj, "libvirt", sub);
                if (spec->libvirt_title)
                        r |= json_add_string(sub, "title", spec->libvirt_title);
                if (spec->libvirt_description)
                        r |= json_add_string(sub, "description", spec->libvirt_description);
                if (spec->n_libvirt_metadata > 0) {
                        if (!(arr = json_object_new_array()))
                                return -ENOMEM;
                        r |= json_add(sub, "metadata", arr);
                        for (size_t i = 0; i < spec->n_libvirt_metadata; i++) {
                                json_object *m = json_object_new_string(spec->libvirt_metadata[i]);
                                if (!m || json_object_array_add(arr, m) < 0) {
                                        json_object_put(m);
                                        return -ENOMEM;
                                }
                        }
                }
        }
        if (r < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(obj);
        return 0;
}

static uint16_t le16(const uint8_t *p) {
        return (uint16_t) (p[0] | p[1] << 8);
}
static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

int kernel_format_detect(const uint8_t *head, size_t len, KernelFormat *ret, const char **ret_reason) {
        const char *reason;

        if (len >= 4 && memcmp(head, ELFMAG, SELFMAG) == 0) {
                const Elf64_Ehdr *eh = (const Elf64_Ehdr *) head;
                if (len < sizeof(Elf64_Ehdr))
                        reason = "ELF file is truncated";
                else if (head[EI_CLASS] != ELFCLASS64)
                        reason = "ELF file is not 64-bit (ELFCLASS64)";
                else if (head[EI_DATA] != ELFDATA2LSB)
                        reason = "ELF file is not little-endian";
                else if (le16((const uint8_t *) &eh->e_machine) != EM_X86_64)
                        reason = "ELF file is not for x86-64";
                else if (le16((const uint8_t *) &eh->e_type) != ET_EXEC)
                        reason = "ELF file is not an executable (ET_EXEC)";
                else if (le16((const uint8_t *) &eh->e_phnum) == 0 ||
                         le16((const uint8_t *) &eh->e_phentsize) != sizeof(Elf64_Phdr))
                        reason = "ELF file has no usable program headers";
                else {
                        *ret = KERNEL_FORMAT_ELF64;
                        return 0;
                }
        } else if (len >= 0x240 && memcmp(head + 0x202, "HdrS", 4) == 0) {
                uint16_t version = le16(head + 0x206);
                if (le16(head + 0x1fe) != 0xaa55)
                        reason = "bzImage boot sector signature is missing";
                else if (version < 0x20c)
                        reason = "bzImage boot protocol is older than 2.12";
                else if (!(le16(head + 0x236) & 0x1))
                        reason = "bzImage has no 64-bit entry point (XLF_KERNEL_64)";
                else if (!(head[0x211] & 0x1))
                        reason = "bzImage is not loaded high (LOADED_HIGH)";
                else {
                        (void) le32;
                        *ret = KERNEL_FORMAT_BZIMAGE;
                        return 0;
                }
        } else
                reason = "neither an ELF64 executable nor a bzImage";
        if (ret_reason)
                *ret_reason = reason;
        return -ENOEXEC;
}

static int check_regular_file(const char *path, const char *jpath, struct stat *st, JsonError *e) {
        if (stat(path, st) < 0)
                return json_error_set(e, jpath, "cannot access \"%.128s\": %s", path, strerror(errno));
        if (!S_ISREG(st->st_mode))
                return json_error_set(e, jpath, "\"%.128s\" is not a regular file", path);
        if (access(path, R_OK) < 0)
                return json_error_set(e, jpath, "cannot read \"%.128s\": %s", path, strerror(errno));
        return 0;
}

/* A disk image: a regular file or block device that opens with the access the guest gets, holds
 * whole 512-byte sectors, and is raw (a qcow2 image would show the guest its metadata as data). */
static int check_disk(const VmDisk *disk, size_t index, struct stat *ret_st, JsonError *e) {
        _cleanup_close_ int fd = -1;
        char jpath[64];
        uint8_t magic[4];
        struct stat st;
        uint64_t size;
        ssize_t n;

        snprintf(jpath, sizeof jpath, "$.disks[%zu].path", index);
        fd = open(disk->path, (disk->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return json_error_set(e, jpath, "cannot open \"%.128s\" %s: %s", disk->path,
                                      disk->readonly ? "for reading" : "for reading and writing", strerror(errno));
        if (fstat(fd, &st) < 0)
                return json_error_set(e, jpath, "cannot access \"%.128s\": %s", disk->path, strerror(errno));
        if (S_ISREG(st.st_mode))
                size = (uint64_t) st.st_size;
        else if (S_ISBLK(st.st_mode)) {
                off_t end = lseek(fd, 0, SEEK_END);
                if (end < 0)
                        return json_error_set(e, jpath, "cannot size \"%.128s\": %s", disk->path, strerror(errno));
                size = (uint64_t) end;
        } else
                return json_error_set(e, jpath, "\"%.128s\" is neither a regular file nor a block device", disk->path);
        if (size == 0)
                return json_error_set(e, jpath, "\"%.128s\" is empty", disk->path);
        if (size % 512 != 0)
                return json_error_set(e, jpath, "\"%.128s\" is %" PRIu64 " bytes, not a multiple of 512", disk->path,
                                      size);
        n = pread(fd, magic, sizeof magic, 0);
        if (n < 0)
                return json_error_set(e, jpath, "cannot read \"%.128s\": %s", disk->path, strerror(errno));
        if (n == (ssize_t) sizeof magic && memcmp(magic, "QFI\xfb", 4) == 0)
                return json_error_set(e, jpath,
                                      "\"%.128s\" is a qcow2 image; kvmfleet attaches raw images only (convert with qemu-img convert -O raw)",
                                      disk->path);
        *ret_st = st;
        return 0;
}

static int check_disks(const VmSpec *spec, JsonError *e) {
        _cleanup_free_ struct stat *seen = calloc(spec->n_disks ?: 1, sizeof *seen);
        if (!seen)
                return -ENOMEM;
        for (size_t i = 0; i < spec->n_disks; i++) {
                int r = check_disk(&spec->disks[i], i, &seen[i], e);
                if (r < 0)
                        return r;
                /* Two names (a symlink, a bind mount) for one image are the same disk twice. */
                for (size_t j = 0; j < i; j++)
                        if (seen[j].st_mode == seen[i].st_mode &&
                            (S_ISBLK(seen[i].st_mode) ? seen[j].st_rdev == seen[i].st_rdev :
                                                         seen[j].st_dev == seen[i].st_dev && seen[j].st_ino == seen[i].st_ino)) {
                                char jpath[64];
                                snprintf(jpath, sizeof jpath, "$.disks[%zu].path", i);
                                return json_error_set(e, jpath, "\"%.128s\" is the same image as $.disks[%zu]",
                                                      spec->disks[i].path, j);
                        }
        }
        return 0;
}

static int check_boot_files(const VmSpec *spec, JsonError *e) {
        struct stat st;
        int r;

        if (spec->boot_kind == VM_BOOT_KERNEL) {
                uint8_t head[4096];
                const char *reason = NULL;
                KernelFormat fmt;
                _cleanup_close_ int fd = -1;
                ssize_t n;

                r = check_regular_file(spec->kernel, "$.boot.kernel", &st, e);
                if (r < 0)
                        return r;
                fd = open(spec->kernel, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return json_error_set(e, "$.boot.kernel", "cannot open \"%.128s\": %s", spec->kernel,
                                              strerror(errno));
                n = pread(fd, head, sizeof head, 0);
                if (n < 0)
                        return json_error_set(e, "$.boot.kernel", "cannot read \"%.128s\": %s", spec->kernel,
                                              strerror(errno));
                if (kernel_format_detect(head, (size_t) n, &fmt, &reason) < 0)
                        return json_error_set(e, "$.boot.kernel", "\"%.128s\": %s", spec->kernel, reason);
                if ((uint64_t) st.st_size >= spec->memory)
                        return json_error_set(e, "$.boot.kernel", "\"%.128s\" is larger than guest memory",
                                              spec->kernel);
                if (spec->initrd) {
                        r = check_regular_file(spec->initrd, "$.boot.initrd", &st, e);
                        if (r < 0)
                                return r;
                        if ((uint64_t) st.st_size >= spec->memory / 2)
                                return json_error_set(e, "$.boot.initrd",
                                                      "\"%.128s\" is larger than half of guest memory", spec->initrd);
                }
                return 0;
        }

        r = check_regular_file(spec->raw, "$.boot.raw", &st, e);
        if (r < 0)
                return r;
        if (st.st_size == 0)
                return json_error_set(e, "$.boot.raw", "\"%.128s\" is empty", spec->raw);
        if (spec->load_addr + (uint64_t) st.st_size > MIN(spec->memory, X86_PCI_HOLE_START))
                return json_error_set(e, "$.boot.raw", "\"%.128s\" (%lld bytes) does not fit in guest RAM at 0x%llx",
                                      spec->raw, (long long) st.st_size, (unsigned long long) spec->load_addr);
        return 0;
}

int vm_spec_check_files(const VmSpec *spec, JsonError *e) {
        int r = check_boot_files(spec, e);
        if (r < 0)
                return r;
        return check_disks(spec, e);
}
