/* SPDX-License-Identifier: MIT */
/* Loading a guest per the x86 boot protocols: the Linux 64-bit boot protocol for bzImage (zero page
 * with the kernel's setup header, e820 map, command line, initrd), ELF64 kernels (same zero page,
 * entered in long mode), raw flat binaries (real or long mode). Long-mode entry gets identity page
 * tables over the first 4 GiB (2 MiB pages) and a flat GDT.
 *
 * Fixed guest addresses of the boot structures (all below 1 MiB): */
#pragma once

#include <asm/bootparam.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "json-util.h"
#include "memory.h"
#include "spec.h"

#define X86_BOOT_GDT 0x500ULL
#define X86_BOOT_IDT 0x520ULL
#define X86_BOOT_ZERO_PAGE 0x7000ULL
#define X86_BOOT_PML4 0x9000ULL
#define X86_BOOT_PDPT 0xa000ULL
#define X86_BOOT_PD 0xb000ULL /* four pages: 0xb000-0xefff */
#define X86_BOOT_CMDLINE 0x20000ULL
#define X86_BOOT_CMDLINE_MAX 0x1000ULL
#define X86_BOOT_AREA_END (X86_BOOT_CMDLINE + X86_BOOT_CMDLINE_MAX) /* raw long-mode images start above */
#define X86_BOOT_EBDA 0x9fc00ULL
#define X86_BOOT_ACPI 0xe0000ULL    /* ACPI tables, RSDP first; in [EBDA, 1MiB), which the e820 map reserves */
#define X86_BOOT_ACPI_MAX 0x10000ULL
#define X86_BOOT_MPTABLE 0xf0000ULL /* likewise */
#define X86_BOOT_KERNEL_ADDR 0x100000ULL /* bzImage protected-mode part */
#define X86_BOOT_DEFAULT_CMDLINE "console=ttyS0"

#define X86_GDT_CODE64 0x10
#define X86_GDT_DATA 0x18
#define X86_GDT_TSS 0x20

typedef struct X86Boot {
        uint64_t entry;         /* RIP (long mode) or linear address (real mode) */
        bool long_mode;
        bool bsp_only;          /* Linux: APs wait for INIT/SIPI. Test guests: every vCPU starts at entry. */
        uint64_t zero_page;     /* RSI at entry; 0 in real mode */
        uint64_t kernel_start;  /* what was loaded, for status and tests */
        uint64_t kernel_end;
        uint64_t initrd_addr;
        uint64_t initrd_size;
        KernelFormat format;    /* for VM_BOOT_KERNEL */
} X86Boot;

/* The e820 map for a guest of mem_size bytes: RAM [0, EBDA), reserved [EBDA, 1MiB), RAM [1MiB, low end),
 * RAM [4GiB, ...). Returns the number of entries written (at most max) or -ENOSPC. */
int x86_e820_build(uint64_t mem_size, struct boot_e820_entry *table, size_t max);
/* Identity map of [0, 4GiB) with 2 MiB pages at X86_BOOT_PML4/PDPT/PD. */
int x86_page_tables_build(GuestMemory *m);
int x86_gdt_build(GuestMemory *m);
/* The zero page at X86_BOOT_ZERO_PAGE: hdr (the kernel's setup header, or NULL for non-Linux
 * guests), e820 map, command line pointer, initrd. */
int x86_zero_page_build(GuestMemory *m, const struct setup_header *hdr, const char *cmdline, uint64_t initrd_addr,
                        uint64_t initrd_size);

/* The IOAPIC pin the in-kernel PIT's IRQ 0 reaches, as the MP table and the MADT tell the guest.
 * KVM's default GSI routing (kept by vmm/irq.c) sends GSI 0 to IOAPIC pin 0 and PIC pin 0; real PCs
 * wire IRQ 0 to pin 2, which QEMU imitates by rerouting GSI 0. Telling the guest pin 2 without that
 * rerouting would leave its timer pin silent. */
#define X86_BOOT_IRQ0_PIN 0
/* The platform description for kernel boots with an in-kernel LAPIC (irqchip kernel or split), which
 * x86_boot_load() writes: with more than one vCPU ACPI tables (vmm/arch/x86/acpi.h) at X86_BOOT_ACPI,
 * whose address it also puts in the zero page; always the MP table (vmm/arch/x86/mptable.h) at
 * X86_BOOT_MPTABLE for kernels that read that instead. */
int x86_boot_platform_write(GuestMemory *m, unsigned n_vcpus, VmIrqchip irqchip);

/* Loads the spec's boot files into guest memory and writes the boot structures. Errors name the
 * spec field in e. */
int x86_boot_load(const VmSpec *spec, GuestMemory *m, X86Boot *ret, JsonError *e);

/* Register state at entry. sregs starts as KVM's reset state (KVM_GET_SREGS). */
void x86_boot_sregs(const X86Boot *b, struct kvm_sregs *sregs);
/* Test-guest convention in long mode: RDI = vCPU index, RDX = vCPU count, RSI = zero page. */
void x86_boot_regs(const X86Boot *b, unsigned vcpu_index, unsigned n_vcpus, struct kvm_regs *regs);
