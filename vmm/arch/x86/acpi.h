/* SPDX-License-Identifier: MIT */
/* ACPI tables for guests without firmware: what a stock distribution kernel needs to see every vCPU,
 * the IOAPIC and the PCI bus. Debian's kernels are built without CONFIG_X86_MPPARSE, so the MP table
 * (mptable.h) alone leaves them uniprocessor; the MADT here is what they read.
 *
 * The set, all in one blob at a guest address below 1 MiB:
 * - RSDP (ACPI 2.0) → RSDT and XSDT → FADT and MADT; FADT → DSDT.
 * - FADT revision 6, hardware-reduced ACPI (no PM timer, no SCI, no fixed-feature registers, so the
 *   guest needs no ACPI PM hardware; Linux then also leaves the 8259 PIC and the PIT alone and times
 *   with the LAPIC timer and kvm-clock), the reset register on the i8042 (port 0x64, value 0xfe) that
 *   the VMM already treats as reset, IA-PC boot flags "legacy devices" and "8042".
 * - MADT: local APIC address, one enabled Processor Local APIC entry per vCPU (UID = APIC id = vCPU
 *   index), one IOAPIC (id after the last APIC id, GSI base 0), an interrupt source override when IRQ 0
 *   is not on GSI 0, and LINT1 as NMI on every processor.
 * - DSDT: \_SB.PCI0, a PCI host bridge (PNP0A03, segment 0, bus 0) whose _CRS gives bus 0, the
 *   configuration ports 0xcf8-0xcff, the rest of I/O space, and the 32-bit MMIO window the VMM
 *   assigns BARs from. No _PRT: devices interrupt through MSI-X.
 * The builder is pure: it writes into a caller's buffer that the loader puts at gpa. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define X86_ACPI_PCI_MMIO_START 0xc0000000U /* the PCI hole, up to the IOAPIC */
#define X86_ACPI_PCI_MMIO_END 0xfec00000U   /* exclusive */
#define X86_ACPI_MAX_CPUS 255

#define ACPI_MADT_TYPE_LOCAL_APIC 0
#define ACPI_MADT_TYPE_IO_APIC 1
#define ACPI_MADT_TYPE_INTERRUPT_OVERRIDE 2
#define ACPI_MADT_TYPE_LOCAL_APIC_NMI 4
#define ACPI_FADT_HW_REDUCED (1u << 20)
#define ACPI_FADT_RESET_REG_SUP (1u << 10)

typedef struct __attribute__((packed)) AcpiHeader {
        char signature[4];
        uint32_t length;
        uint8_t revision;
        uint8_t checksum;
        char oem_id[6];
        char oem_table_id[8];
        uint32_t oem_revision;
        char creator_id[4];
        uint32_t creator_revision;
} AcpiHeader;

typedef struct __attribute__((packed)) AcpiRsdp {
        char signature[8]; /* "RSD PTR " */
        uint8_t checksum;  /* of the first 20 bytes */
        char oem_id[6];
        uint8_t revision; /* 2: ACPI 2.0 and later, XSDT present */
        uint32_t rsdt_address;
        uint32_t length;
        uint64_t xsdt_address;
        uint8_t extended_checksum;
        uint8_t reserved[3];
} AcpiRsdp;

typedef struct X86AcpiConfig {
        unsigned n_cpus;
        uint8_t irq0_gsi;    /* where ISA IRQ 0 arrives; an override entry when not 0 */
        bool pcat_compat;    /* the VM has 8259 PICs (irqchip kernel) */
        bool hw_reduced;     /* false: a full FADT with SCI on IRQ 9 and no PM registers */
} X86AcpiConfig;

/* Bytes the tables for cfg take. */
size_t x86_acpi_size(const X86AcpiConfig *cfg);
/* Writes the tables into buf for buf living at guest address gpa (16-byte aligned, below 4 GiB), RSDP
 * first. -EINVAL for a config it cannot describe, -ENOSPC when size is too small. ret_size gets the
 * bytes written. */
int x86_acpi_build(const X86AcpiConfig *cfg, uint64_t gpa, void *buf, size_t size, size_t *ret_size);
