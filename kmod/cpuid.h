/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The CPUID leaves and VMX capability MSRs that decide what KVM sets up, read per CPU, masked of
 * per-CPU fields, and compared bit by bit with names. */

typedef enum CpuVendor {
        CPU_VENDOR_UNKNOWN,
        CPU_VENDOR_INTEL,
        CPU_VENDOR_AMD,
} CpuVendor;

typedef struct CpuidRegs {
        uint32_t eax, ebx, ecx, edx;
} CpuidRegs;

typedef struct CpuidLeafId {
        uint32_t leaf;
        uint32_t subleaf;
} CpuidLeafId;

/* 0x0, 0x1, 0x7.0, 0xD.1, 0x80000000, 0x80000001, 0x80000008, 0x8000000A */
#define CPUID_N_LEAVES 8
extern const CpuidLeafId cpuid_leaves[CPUID_N_LEAVES];

#define VMX_MSR_FIRST 0x480u
#define VMX_N_MSRS 18 /* 0x480..0x491 */

typedef enum CpuidSource {
        CPUID_SOURCE_DEV,    /* /dev/cpu/N/cpuid */
        CPUID_SOURCE_PINNED, /* the CPUID instruction, with this thread pinned to N */
} CpuidSource;

typedef struct CpuSnapshot {
        unsigned cpu;
        CpuidSource source;
        CpuidRegs regs[CPUID_N_LEAVES];
        bool present[CPUID_N_LEAVES]; /* leaf within the CPU's max basic/extended leaf */
        bool msrs_read;
        int msr_error;                /* -errno why the VMX MSRs could not be read (Intel only) */
        uint64_t msrs[VMX_N_MSRS];
        bool msr_present[VMX_N_MSRS]; /* an MSR the CPU does not implement reads as EIO */
} CpuSnapshot;

typedef struct CpuDifference {
        unsigned cpu;
        char leaf[24];    /* "0x8000000a", "0x7.0", "msr 0x48b" */
        char reg[8];      /* "eax".."edx", "msr" */
        unsigned bit;     /* lowest bit of the field */
        unsigned width;   /* 1 for a feature flag */
        char feature[48]; /* "svm", "npt", "ept", "maxphyaddr", or "0x7.0.ebx[6]" when unnamed */
        uint64_t target_value;
        uint64_t value;
} CpuDifference;

int cpuid_read_dev(const char *sysroot, unsigned cpu, uint32_t leaf, uint32_t subleaf, CpuidRegs *ret);
int cpuid_read_pinned(unsigned cpu, uint32_t leaf, uint32_t subleaf, CpuidRegs *ret); /* restores affinity */
int msr_read_dev(const char *sysroot, unsigned cpu, uint32_t msr, uint64_t *ret);

CpuVendor cpuid_vendor(const CpuidRegs *leaf0);
const char *cpu_vendor_to_string(CpuVendor v);

/* Reads every leaf of cpu (and, for Intel, the VMX MSRs) from /dev/cpu/N/{cpuid,msr} under sysroot,
 * or with the CPUID instruction pinned to cpu when allow_pinned and the device is missing. */
int cpu_snapshot_read(const char *sysroot, unsigned cpu, CpuVendor vendor, bool allow_pinned, CpuSnapshot *ret);
/* Clears fields that differ between CPUs by design: APIC IDs, and state-dependent sizes. */
void cpu_snapshot_mask(CpuSnapshot *s);

/* Appends one entry per differing named field (or unnamed bit) of other against target. Returns the
 * number appended, or -ENOMEM. */
int cpu_snapshot_compare(const CpuSnapshot *target, const CpuSnapshot *other, CpuDifference **diffs, size_t *n_diffs);

/* The name of a CPUID bit ("svm") or field, or NULL; width gets the field's width. */
const char *cpuid_bit_name(uint32_t leaf, uint32_t subleaf, unsigned reg, unsigned bit, unsigned *ret_lo,
                           unsigned *ret_width);
const char *vmx_msr_bit_name(uint32_t msr, unsigned bit);

/* Online CPUs from <sysroot>/sys/devices/system/cpu/online ("0-3,5"). */
int online_cpus_read(const char *sysroot, unsigned **ret, size_t *ret_n);
int cpu_list_parse(const char *s, unsigned **ret, size_t *ret_n);
