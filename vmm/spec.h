/* SPDX-License-Identifier: MIT */
/* The VM spec of API contract v1 (docs/vmm-protocol.md): parsed strictly from JSON, written back in
 * canonical form (sizes as integer bytes). Shared by kvmfleet-vmm and the agent. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "cpuset.h"
#include "json-util.h"

#define VM_SPEC_NAME_MAX 64
#define VM_SPEC_VCPUS_MAX 255
#define VM_SPEC_MEMORY_MIN (2ULL << 20)
#define VM_SPEC_MEMORY_MAX (1ULL << 40)
#define VM_SPEC_CMDLINE_MAX 4095
#define VM_SPEC_DISKS_MAX 16
#define VM_SPEC_NICS_MAX 16

typedef enum VmBootKind {
        VM_BOOT_KERNEL, /* bzImage or ELF64, detected from the file */
        VM_BOOT_RAW,    /* flat binary at load_addr */
} VmBootKind;

typedef enum VmBootMode {
        VM_BOOT_MODE_REAL,
        VM_BOOT_MODE_LONG,
} VmBootMode;

typedef enum VmIrqchip {
        VM_IRQCHIP_KERNEL,
        VM_IRQCHIP_SPLIT,
        VM_IRQCHIP_NONE,
} VmIrqchip;

typedef enum VmMemoryBacking {
        VM_MEMORY_MEMFD,
        VM_MEMORY_HUGETLB,
        VM_MEMORY_ANONYMOUS,
} VmMemoryBacking;

typedef enum VmOnCrash {
        VM_ON_CRASH_DESTROY,
        VM_ON_CRASH_RESTART,
        VM_ON_CRASH_PRESERVE,
} VmOnCrash;

/* What the supervisor does when the guest powers off (on_poweroff), resets (on_reboot) or crashes
 * (on_crash); libvirt's lifecycle actions of the same names. */
typedef VmOnCrash VmLifecycleAction;

#define VM_SPEC_CPUSET_MAX CPUSET_MAX /* highest host CPU number a cpuset may name */
#define VM_SPEC_HUGEPAGE_SIZE (2ULL << 20)
#define VM_SPEC_LIBVIRT_TEXT_MAX 4096      /* title and description, bytes */
#define VM_SPEC_LIBVIRT_METADATA_MAX 16    /* foreign metadata elements */
#define VM_SPEC_LIBVIRT_METADATA_SIZE_MAX 16384 /* bytes of XML each */

typedef struct VmDisk {
        char *path;
        bool readonly;
        char *serial;
} VmDisk;

typedef struct VmNic {
        char *tap;
        char *mac;
} VmNic;

typedef struct VmSpec {
        char *name;
        char *uuid; /* NULL when not given */
        unsigned vcpus;
        uint64_t memory;
        VmBootKind boot_kind;
        char *kernel; /* VM_BOOT_KERNEL */
        char *initrd;
        char *cmdline;
        char *raw; /* VM_BOOT_RAW */
        uint64_t load_addr;
        uint64_t entry;
        VmBootMode mode;
        bool nested;
        /* KVM paravirtual features (CPUID 0x40000001 EAX bits, KVM_FEATURE_*) the spec turns on or off
         * by name under cpu.kvm_pv; every other bit is what KVM_GET_SUPPORTED_CPUID offers. A bit is
         * in at most one of the two masks. */
        uint32_t kvm_pv_on;
        uint32_t kvm_pv_off;
        VmIrqchip irqchip;
        bool pit_reinject;
        /* KVM_CAP_X2APIC_API flags, enabled on the VM before any vCPU exists. */
        bool x2apic_use_32bit_ids;
        bool x2apic_disable_broadcast_quirk;
        VmMemoryBacking memory_backing;
        VmOnCrash on_crash;
        char *console_log;
        VmDisk *disks;
        size_t n_disks;
        VmNic *nics;
        size_t n_nics;
        VmLifecycleAction on_poweroff; /* default destroy */
        VmLifecycleAction on_reboot;   /* default restart */
        char *cpuset;                  /* host CPUs the vCPUs may run on ("0-3,6"), canonical; NULL: any */
        uint64_t hugepage_size;        /* with VM_MEMORY_HUGETLB; 0 otherwise */
        /* Informational parts of a libvirt domain definition, kept and returned unchanged. */
        char *libvirt_title;
        char *libvirt_description;
        char **libvirt_metadata; /* raw XML of metadata elements in other namespaces */
        size_t n_libvirt_metadata;
} VmSpec;

/* Strict: unknown fields are refused; e->path names the offending field ("$.boot.kernel"). */
int vm_spec_from_json(json_object *obj, VmSpec **ret, JsonError *e);
/* Parses JSON text, then vm_spec_from_json(). */
int vm_spec_from_string(const char *text, size_t len, VmSpec **ret, JsonError *e);
VmSpec *vm_spec_free(VmSpec *spec);
DEFINE_TRIVIAL_CLEANUP_FUNC(VmSpec *, vm_spec_free);
#define _cleanup_vm_spec_ _cleanup_(vm_spec_freep)

/* The MAC address of nic index: the spec's, or one derived stably from the VM's uuid (its name when
 * there is none) and the index, locally administered and unicast (first octet 0x52). ret gets
 * "xx:xx:xx:xx:xx:xx" in lowercase. */
void vm_spec_nic_mac(const VmSpec *spec, size_t index, char ret[18]);

/* Canonical form: every field present with its default, sizes as integer bytes. */
int vm_spec_to_json(const VmSpec *spec, json_object **ret);

/* The boot files exist and are what they claim: boot.kernel an ELF64 (x86-64) or a bzImage with the
 * 64-bit entry point, boot.raw a regular non-empty file that fits in guest RAM at load_addr,
 * boot.initrd a regular file; every disk a raw image (regular file or block device, not qcow2) that
 * opens read-write (read-only when readonly), non-empty, a whole number of 512-byte sectors, no
 * image attached twice. */
int vm_spec_check_files(const VmSpec *spec, JsonError *e);

/* The cpu.kvm_pv name of KVM_FEATURE_* bit, or NULL for a bit without one. */
const char *vm_kvm_pv_feature_name(unsigned bit);
/* The bit of a cpu.kvm_pv name; -EINVAL for an unknown name. */
int vm_kvm_pv_feature_from_name(const char *name);

const char *vm_irqchip_to_string(VmIrqchip i);
const char *vm_memory_backing_to_string(VmMemoryBacking b);
const char *vm_on_crash_to_string(VmOnCrash c);
const char *vm_lifecycle_action_to_string(VmLifecycleAction a);
/* "destroy", "restart", "preserve" → action; -EINVAL otherwise. */
int vm_lifecycle_action_from_string(const char *s, VmLifecycleAction *ret);
/* Parses a CPU list ("0-3,6", "^2" exclusions as libvirt writes them) into its canonical form
 * ("0-1,3-6"); -EINVAL when malformed, empty or naming a CPU above VM_SPEC_CPUSET_MAX. Caller frees. */
int vm_cpuset_normalize(const char *s, char **ret);
const char *vm_boot_mode_to_string(VmBootMode m);

/* Kernel image formats that vm_spec_check_files() and the loader recognise. */
typedef enum KernelFormat {
        KERNEL_FORMAT_ELF64,
        KERNEL_FORMAT_BZIMAGE,
} KernelFormat;
/* Classifies the first bytes of a kernel file (at least 4 KiB or the whole file); -ENOEXEC with a
 * reason in *ret_reason when neither. */
int kernel_format_detect(const uint8_t *head, size_t len, KernelFormat *ret, const char **ret_reason);

/* Guest RAM layout around the x86 PCI hole: RAM below 3 GiB, the remainder from 4 GiB. */
#define X86_PCI_HOLE_START (3ULL << 30)
#define X86_HIGH_RAM_START (4ULL << 30)
