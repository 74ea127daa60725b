/* SPDX-License-Identifier: MIT */
/* The Intel MultiProcessor Specification 1.4 table: how a guest without firmware (and without ACPI
 * tables) learns its processors, its IOAPIC and how the ISA interrupt lines reach it. Linux scans the
 * BIOS area 0xF0000-0xFFFFF for the floating pointer "_MP_", which points at the configuration table
 * "PCMP" that follows it here.
 *
 * What the table says:
 * - one processor entry per vCPU, local APIC id = vCPU index (as vmm/arch/x86/cpuid.c reports it),
 *   vCPU 0 the bootstrap processor, all enabled;
 * - bus 0 is PCI (so PCI bus numbers and MP bus ids agree, as Linux assumes), bus 1 is ISA;
 * - one IOAPIC at 0xfec00000 with the id after the last local APIC id;
 * - ISA IRQ 0 on IOAPIC pin irq0_pin, the other ISA IRQs on the pin of the same number, IRQ 2 left
 *   out (the 8259 cascade), all edge-triggered active-high (ISA conforming);
 * - optional PCI INTx lines (level, active-low) for devices that have them;
 * - ExtINT on LINT0 and NMI on LINT1 of every local APIC (virtual wire mode, no IMCR).
 * The builder is pure: it writes into a caller's buffer, which the loader puts at X86_BOOT_MPTABLE
 * (vmm/arch/x86/boot.h). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define X86_MPTABLE_IOAPIC_ADDR 0xfec00000U
#define X86_MPTABLE_LAPIC_ADDR 0xfee00000U
#define X86_MPTABLE_IOAPIC_VERSION 0x11 /* KVM's in-kernel IOAPIC and vmm/dev/ioapic.c, 24 pins */
#define X86_MPTABLE_LAPIC_VERSION 0x14  /* KVM's local APIC */
#define X86_MPTABLE_IOAPIC_PINS 24
/* APIC ids are 8 bits. With 255 vCPUs the IOAPIC gets id 255, which x86-64 Linux accepts (it only
 * needs IOAPIC ids unique among IOAPICs). */
#define X86_MPTABLE_MAX_CPUS 255
#define X86_MPTABLE_BUS_PCI 0
#define X86_MPTABLE_BUS_ISA 1
#define X86_MPTABLE_ISA_IRQS 16

/* Entry types and fields, MP specification 1.4 chapter 4. */
#define MP_ENTRY_PROCESSOR 0
#define MP_ENTRY_BUS 1
#define MP_ENTRY_IOAPIC 2
#define MP_ENTRY_IO_INTERRUPT 3
#define MP_ENTRY_LOCAL_INTERRUPT 4
#define MP_CPU_ENABLED 0x01
#define MP_CPU_BSP 0x02
#define MP_IOAPIC_ENABLED 0x01
#define MP_IRQ_INT 0
#define MP_IRQ_NMI 1
#define MP_IRQ_EXTINT 3
#define MP_IRQ_FLAGS_CONFORMING 0x0
#define MP_IRQ_FLAGS_PCI 0xf /* level-triggered (3 << 2), active low (3) */
#define MP_APIC_ALL 0xff

typedef struct __attribute__((packed)) MpFloatingPointer {
        char signature[4]; /* "_MP_" */
        uint32_t config_table;
        uint8_t length; /* in 16-byte units: 1 */
        uint8_t spec_rev; /* 4: version 1.4 */
        uint8_t checksum;
        uint8_t features[5]; /* [0] = 0: a configuration table is present; [1] bit 7 = 0: virtual wire */
} MpFloatingPointer;

typedef struct __attribute__((packed)) MpConfigHeader {
        char signature[4]; /* "PCMP" */
        uint16_t length;   /* header and base entries */
        uint8_t spec_rev;
        uint8_t checksum;
        char oem_id[8];
        char product_id[12];
        uint32_t oem_table;
        uint16_t oem_table_size;
        uint16_t entry_count;
        uint32_t lapic_addr;
        uint16_t ext_table_length;
        uint8_t ext_table_checksum;
        uint8_t reserved;
} MpConfigHeader;

typedef struct __attribute__((packed)) MpProcessor {
        uint8_t type;
        uint8_t apic_id;
        uint8_t apic_version;
        uint8_t flags;
        uint32_t signature;
        uint32_t features;
        uint32_t reserved[2];
} MpProcessor;

typedef struct __attribute__((packed)) MpBus {
        uint8_t type;
        uint8_t bus_id;
        char bus_type[6];
} MpBus;

typedef struct __attribute__((packed)) MpIoapic {
        uint8_t type;
        uint8_t apic_id;
        uint8_t apic_version;
        uint8_t flags;
        uint32_t addr;
} MpIoapic;

/* Both I/O (type 3) and local (type 4) interrupt assignments. */
typedef struct __attribute__((packed)) MpInterrupt {
        uint8_t type;
        uint8_t irq_type;
        uint16_t flags;
        uint8_t src_bus;
        uint8_t src_irq; /* ISA: the IRQ; PCI: slot << 2 | (INTA=0 .. INTD=3) */
        uint8_t dst_apic;
        uint8_t dst_pin;
} MpInterrupt;

/* A PCI device's INTx line wired to an IOAPIC pin. */
typedef struct X86MpPciIrq {
        uint8_t slot;       /* device number on bus 0 */
        uint8_t intx;       /* 0 = INTA# ... 3 = INTD# */
        uint8_t ioapic_pin;
} X86MpPciIrq;

typedef struct X86MpConfig {
        unsigned n_cpus;
        uint8_t irq0_pin;            /* the IOAPIC pin the PIT's IRQ 0 arrives on */
        uint32_t cpu_signature;      /* CPUID 1 EAX (family/model/stepping), informational */
        uint32_t cpu_features;       /* CPUID 1 EDX, informational */
        const X86MpPciIrq *pci_irqs;
        size_t n_pci_irqs;
} X86MpConfig;

/* Bytes the table for cfg takes (floating pointer included). */
size_t x86_mptable_size(const X86MpConfig *cfg);
/* Writes the floating pointer at buf and the configuration table after it, with addresses computed for
 * buf living at guest address gpa (16-byte aligned, below 4 GiB). -EINVAL for a config the table cannot
 * describe (no or too many CPUs, a pin beyond the IOAPIC, a bad PCI line), -ENOSPC when size is too
 * small. ret_size gets the bytes written. */
int x86_mptable_build(const X86MpConfig *cfg, uint64_t gpa, void *buf, size_t size, size_t *ret_size);
