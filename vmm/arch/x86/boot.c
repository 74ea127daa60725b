/* SPDX-License-Identifier: MIT */
#include "arch/x86/boot.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/mptable.h"
#include "dev/pci.h"
#include "fd-util.h"
#include "macro.h"

#define E820_RAM 1
#define E820_RESERVED 2

#define PTE_PRESENT (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_PS (1ULL << 7)

#define CR0_PE (1ULL << 0)
#define CR0_MP (1ULL << 1)
#define CR0_ET (1ULL << 4)
#define CR0_NE (1ULL << 5)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)

int x86_e820_build(uint64_t mem_size, struct boot_e820_entry *table, size_t max) {
        uint64_t low = guest_memory_low_size(mem_size), high = guest_memory_high_size(mem_size);
        struct boot_e820_entry entries[4] = {
                { .addr = 0, .size = X86_BOOT_EBDA, .type = E820_RAM },
                { .addr = X86_BOOT_EBDA, .size = 0x100000 - X86_BOOT_EBDA, .type = E820_RESERVED },
                { .addr = 0x100000, .size = low - 0x100000, .type = E820_RAM },
                { .addr = X86_HIGH_RAM_START, .size = high, .type = E820_RAM },
        };
        size_t n = high > 0 ? 4 : 3;

        if (low <= 0x100000)
                return -EINVAL;
        if (n > max)
                return -ENOSPC;
        memcpy(table, entries, n * sizeof entries[0]);
        return (int) n;
}

int x86_page_tables_build(GuestMemory *m) {
        uint64_t *pml4 = guest_memory_gpa_to_hva(m, X86_BOOT_PML4, 4096);
        uint64_t *pdpt = guest_memory_gpa_to_hva(m, X86_BOOT_PDPT, 4096);
        uint64_t *pd = guest_memory_gpa_to_hva(m, X86_BOOT_PD, 4 * 4096);

        if (!pml4 || !pdpt || !pd)
                return -EFAULT;
        memset(pml4, 0, 4096);
        memset(pdpt, 0, 4096);
        pml4[0] = X86_BOOT_PDPT | PTE_PRESENT | PTE_RW;
        for (uint64_t i = 0; i < 4; i++)
                pdpt[i] = (X86_BOOT_PD + i * 4096) | PTE_PRESENT | PTE_RW;
        for (uint64_t i = 0; i < 4 * 512; i++)
                pd[i] = (i << 21) | PTE_PRESENT | PTE_RW | PTE_PS;
        return 0;
}

static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit) {
        return ((uint64_t) (base & 0xff000000) << 32) | ((uint64_t) (flags & 0xf0ff) << 40) |
               ((uint64_t) (limit & 0x000f0000) << 32) | ((uint64_t) (base & 0x00ffffff) << 16) |
               (uint64_t) (limit & 0x0000ffff);
}

int x86_gdt_build(GuestMemory *m) {
        const uint64_t gdt[5] = {
                0,
                0,
                gdt_entry(0xa09b, 0, 0xfffff), /* 0x10: 64-bit code */
                gdt_entry(0xc093, 0, 0xfffff), /* 0x18: data */
                gdt_entry(0x808b, 0, 0xfffff), /* 0x20: TSS, which VM entry needs valid */
        };
        const uint64_t idt = 0;
        int r = guest_memory_write(m, X86_BOOT_GDT, gdt, sizeof gdt);
        if (r < 0)
                return r;
        return guest_memory_write(m, X86_BOOT_IDT, &idt, sizeof idt);
}

int x86_zero_page_build(GuestMemory *m, const struct setup_header *hdr, const char *cmdline, uint64_t initrd_addr,
                        uint64_t initrd_size) {
        struct boot_params *bp = guest_memory_gpa_to_hva(m, X86_BOOT_ZERO_PAGE, sizeof *bp);
        size_t cmdline_len = cmdline ? strlen(cmdline) : 0;
        int n;

        if (!bp)
                return -EFAULT;
        if (cmdline_len >= X86_BOOT_CMDLINE_MAX)
                return -E2BIG;
        memset(bp, 0, sizeof *bp);
        if (hdr)
                bp->hdr = *hdr;
        else {
                bp->hdr.boot_flag = 0xaa55;
                bp->hdr.header = 0x53726448; /* "HdrS" */
                bp->hdr.version = 0x20c;
        }
        bp->hdr.type_of_loader = 0xff;
        bp->hdr.vid_mode = 0xffff;
        bp->hdr.loadflags |= CAN_USE_HEAP;
        bp->hdr.heap_end_ptr = 0xfe00;
        bp->hdr.cmd_line_ptr = (uint32_t) X86_BOOT_CMDLINE;
        bp->ext_cmd_line_ptr = 0;
        bp->hdr.cmdline_size = (uint32_t) cmdline_len;
        bp->hdr.ramdisk_image = (uint32_t) initrd_addr;
        bp->hdr.ramdisk_size = (uint32_t) initrd_size;
        bp->ext_ramdisk_image = (uint32_t) (initrd_addr >> 32);
        bp->ext_ramdisk_size = (uint32_t) (initrd_size >> 32);

        n = x86_e820_build(m->size, bp->e820_table, E820_MAX_ENTRIES_ZEROPAGE);
        if (n < 0)
                return n;
        bp->e820_entries = (uint8_t) n;

        char *dst = guest_memory_gpa_to_hva(m, X86_BOOT_CMDLINE, X86_BOOT_CMDLINE_MAX);
        if (!dst)
                return -EFAULT;
        memset(dst, 0, X86_BOOT_CMDLINE_MAX);
        if (cmdline_len)
                memcpy(dst, cmdline, cmdline_len);
        return 0;
}

/* The DSDT's host bridge window is where the PCI bus assigns BARs. */
_Static_assert(X86_ACPI_PCI_MMIO_START == PCI_MMIO_WINDOW_START && X86_ACPI_PCI_MMIO_END == PCI_MMIO_WINDOW_END,
               "ACPI host bridge window and PCI BAR window agree");

int x86_boot_platform_write(GuestMemory *m, unsigned n_vcpus, VmIrqchip irqchip) {
        const X86AcpiConfig acpi = {
                .n_cpus = n_vcpus,
                .irq0_gsi = X86_BOOT_IRQ0_PIN,
                .pcat_compat = irqchip == VM_IRQCHIP_KERNEL,
                .hw_reduced = true,
        };
        const X86MpConfig cfg = {
                .n_cpus = n_vcpus,
                .irq0_pin = X86_BOOT_IRQ0_PIN,
                .cpu_signature = 0x600, /* family 6: the MP specification's "integrated APIC" generation */
                .cpu_features = (1u << 0) | (1u << 9), /* FPU, APIC */
        };
        size_t size = x86_acpi_size(&acpi), written;
        struct boot_params *bp = guest_memory_gpa_to_hva(m, X86_BOOT_ZERO_PAGE, sizeof *bp);
        void *dst;
        int r;

        /* One vCPU needs no MADT; without ACPI tables Linux keeps the 8259 and the PIT as its
         * timer, the platform single-vCPU boots were validated on (tests/hostvm/README.md: with ACPI
         * tables it times with the LAPIC timer, which stalls often under nested TCG). */
        if (n_vcpus > 1) {
                if (size == 0 || size > X86_BOOT_ACPI_MAX)
                        return -E2BIG;
                dst = guest_memory_gpa_to_hva(m, X86_BOOT_ACPI, size);
                if (!dst || !bp)
                        return -EFAULT;
                r = x86_acpi_build(&acpi, X86_BOOT_ACPI, dst, size, &written);
                if (r < 0)
                        return r;
                bp->acpi_rsdp_addr = X86_BOOT_ACPI;
        }

        size = x86_mptable_size(&cfg);
        if (X86_BOOT_MPTABLE + size > 0x100000)
                return -E2BIG;
        dst = guest_memory_gpa_to_hva(m, X86_BOOT_MPTABLE, size);
        if (!dst)
                return -EFAULT;
        return x86_mptable_build(&cfg, X86_BOOT_MPTABLE, dst, size, &written);
}

/* Reads a whole file of at most max bytes into a fresh buffer. */
static int read_file_bounded(const char *path, uint64_t max, uint8_t **ret, size_t *ret_size, const char *jpath,
                             JsonError *e) {
        char *data;
        size_t size;
        int r = read_full_file(path, (size_t) MIN(max, (uint64_t) SIZE_MAX / 2), &data, &size);
        if (r == -EFBIG)
                return json_error_set(e, jpath, "\"%.128s\" does not fit in guest memory", path);
        if (r < 0)
                return json_error_set(e, jpath, "cannot read \"%.128s\": %s", path, strerror(-r));
        *ret = (uint8_t *) data;
        *ret_size = size;
        return 0;
}

static int load_elf64(const uint8_t *img, size_t size, GuestMemory *m, X86Boot *b, JsonError *e) {
        const Elf64_Ehdr *eh = (const Elf64_Ehdr *) img;
        uint64_t lo = UINT64_MAX, hi = 0;

        if (eh->e_phoff > size || (uint64_t) eh->e_phnum * sizeof(Elf64_Phdr) > size - eh->e_phoff)
                return json_error_set(e, "$.boot.kernel", "ELF program headers lie outside the file");
        for (unsigned i = 0; i < eh->e_phnum; i++) {
                Elf64_Phdr ph;
                memcpy(&ph, img + eh->e_phoff + i * sizeof ph, sizeof ph);
                if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
                        continue;
                if (ph.p_filesz > ph.p_memsz || ph.p_offset > size || ph.p_filesz > size - ph.p_offset)
                        return json_error_set(e, "$.boot.kernel", "ELF segment %u lies outside the file", i);
                if (ph.p_paddr < X86_BOOT_KERNEL_ADDR)
                        return json_error_set(e, "$.boot.kernel",
                                              "ELF segment %u at 0x%llx overlaps the boot area below 1MiB", i,
                                              (unsigned long long) ph.p_paddr);
                uint8_t *dst = guest_memory_gpa_to_hva(m, ph.p_paddr, ph.p_memsz);
                if (!dst)
                        return json_error_set(e, "$.boot.kernel",
                                              "ELF segment %u [0x%llx, +0x%llx) is outside guest RAM", i,
                                              (unsigned long long) ph.p_paddr, (unsigned long long) ph.p_memsz);
                memcpy(dst, img + ph.p_offset, ph.p_filesz);
                memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
                lo = MIN(lo, ph.p_paddr);
                hi = MAX(hi, ph.p_paddr + ph.p_memsz);
        }
        if (hi == 0)
                return json_error_set(e, "$.boot.kernel", "ELF file has no loadable segment");
        if (eh->e_entry < lo || eh->e_entry >= hi)
                return json_error_set(e, "$.boot.kernel", "ELF entry point 0x%llx is outside the loaded segments",
                                      (unsigned long long) eh->e_entry);
        b->entry = eh->e_entry;
        b->kernel_start = lo;
        b->kernel_end = hi;
        return 0;
}

static int load_bzimage(const uint8_t *img, size_t size, GuestMemory *m, struct setup_header *hdr, X86Boot *b,
                        JsonError *e) {
        unsigned setup_sects = img[0x1f1] ? img[0x1f1] : 4;
        size_t setup_size = (setup_sects + 1) * 512ULL;
        size_t hdr_len = 0x202 + img[0x201] - 0x1f1; /* the header ends where the jump at 0x200 lands */

        if (setup_size >= size)
                return json_error_set(e, "$.boot.kernel", "bzImage setup (%zu bytes) is not followed by a kernel",
                                      setup_size);
        memset(hdr, 0, sizeof *hdr);
        memcpy(hdr, img + 0x1f1, MIN(hdr_len, sizeof *hdr));

        uint64_t kernel_size = size - setup_size;
        uint64_t footprint = MAX(kernel_size, (uint64_t) hdr->init_size);
        if (!guest_memory_gpa_to_hva(m, X86_BOOT_KERNEL_ADDR, footprint))
                return json_error_set(e, "$.memory",
                                      "too small for the kernel: it needs %llu bytes from 1MiB while decompressing",
                                      (unsigned long long) footprint);
        int r = guest_memory_write(m, X86_BOOT_KERNEL_ADDR, img + setup_size, kernel_size);
        if (r < 0)
                return json_error_set(e, "$.boot.kernel", "kernel does not fit in guest RAM");
        b->entry = X86_BOOT_KERNEL_ADDR + 0x200; /* startup_64 */
        b->kernel_start = X86_BOOT_KERNEL_ADDR;
        b->kernel_end = X86_BOOT_KERNEL_ADDR + footprint;
        b->bsp_only = true;
        return 0;
}

static int load_initrd(const VmSpec *spec, GuestMemory *m, const struct setup_header *hdr, X86Boot *b, JsonError *e) {
        _cleanup_free_ uint8_t *data = NULL;
        size_t size;
        uint64_t top = guest_memory_low_size(m->size);
        int r;

        r = read_file_bounded(spec->initrd, m->size, &data, &size, "$.boot.initrd", e);
        if (r < 0)
                return r;
        if (hdr && hdr->initrd_addr_max)
                top = MIN(top, (uint64_t) hdr->initrd_addr_max + 1);
        if (size > top)
                return json_error_set(e, "$.boot.initrd", "\"%.128s\" does not fit below 0x%llx", spec->initrd,
                                      (unsigned long long) top);
        uint64_t addr = (top - size) & ~0xfffULL;
        if (addr < b->kernel_end)
                return json_error_set(e, "$.boot.initrd",
                                      "\"%.128s\" (%zu bytes) does not fit in guest RAM above the kernel", spec->initrd,
                                      size);
        r = guest_memory_write(m, addr, data, size);
        if (r < 0)
                return json_error_set(e, "$.boot.initrd", "initrd does not fit in guest RAM");
        b->initrd_addr = addr;
        b->initrd_size = size;
        return 0;
}

int x86_boot_load(const VmSpec *spec, GuestMemory *m, X86Boot *ret, JsonError *e) {
        X86Boot b = { .long_mode = true };
        struct setup_header hdr;
        bool have_hdr = false;
        int r;

        if (spec->boot_kind == VM_BOOT_RAW) {
                _cleanup_free_ uint8_t *data = NULL;
                size_t size;

                r = read_file_bounded(spec->raw, m->size, &data, &size, "$.boot.raw", e);
                if (r < 0)
                        return r;
                b.long_mode = spec->mode == VM_BOOT_MODE_LONG;
                if (b.long_mode && spec->load_addr < X86_BOOT_AREA_END)
                        return json_error_set(e, "$.boot.load_addr",
                                              "long-mode images must be loaded at or above 0x%llx (boot structures)",
                                              (unsigned long long) X86_BOOT_AREA_END);
                if (guest_memory_write(m, spec->load_addr, data, size) < 0)
                        return json_error_set(e, "$.boot.raw", "\"%.128s\" does not fit in guest RAM at 0x%llx",
                                              spec->raw, (unsigned long long) spec->load_addr);
                b.entry = spec->entry;
                b.kernel_start = spec->load_addr;
                b.kernel_end = spec->load_addr + size;
                if (!b.long_mode) {
                        *ret = b;
                        return 0;
                }
        } else {
                _cleanup_free_ uint8_t *data = NULL;
                const char *reason = NULL;
                size_t size;

                r = read_file_bounded(spec->kernel, m->size, &data, &size, "$.boot.kernel", e);
                if (r < 0)
                        return r;
                if (kernel_format_detect(data, size, &b.format, &reason) < 0)
                        return json_error_set(e, "$.boot.kernel", "\"%.128s\": %s", spec->kernel, reason);
                if (b.format == KERNEL_FORMAT_ELF64)
                        r = load_elf64(data, size, m, &b, e);
                else {
                        r = load_bzimage(data, size, m, &hdr, &b, e);
                        have_hdr = true;
                }
                if (r < 0)
                        return r;
                if (spec->initrd) {
                        r = load_initrd(spec, m, have_hdr ? &hdr : NULL, &b, e);
                        if (r < 0)
                                return r;
                }
        }

        const char *cmdline = spec->cmdline ? spec->cmdline : have_hdr ? X86_BOOT_DEFAULT_CMDLINE : "";
        if (have_hdr && hdr.cmdline_size && strlen(cmdline) > hdr.cmdline_size)
                return json_error_set(e, "$.boot.cmdline", "is longer than the kernel accepts (%u bytes)",
                                      hdr.cmdline_size);
        r = x86_zero_page_build(m, have_hdr ? &hdr : NULL, cmdline, b.initrd_addr, b.initrd_size);
        if (r < 0)
                return json_error_set(e, "$.boot", "cannot write the zero page: %s", strerror(-r));
        r = x86_page_tables_build(m);
        if (r < 0)
                return json_error_set(e, "$.boot", "cannot write the page tables: %s", strerror(-r));
        r = x86_gdt_build(m);
        if (r < 0)
                return json_error_set(e, "$.boot", "cannot write the GDT: %s", strerror(-r));
        if (spec->boot_kind == VM_BOOT_KERNEL && spec->irqchip != VM_IRQCHIP_NONE) {
                r = x86_boot_platform_write(m, spec->vcpus, spec->irqchip);
                if (r < 0)
                        return json_error_set(e, "$.vcpus", "cannot write the ACPI and MP tables: %s", strerror(-r));
        }
        b.zero_page = X86_BOOT_ZERO_PAGE;
        *ret = b;
        return 0;
}

static void segment_flat(struct kvm_segment *s, uint16_t selector, uint8_t type, bool code64) {
        *s = (struct kvm_segment){
                .base = 0,
                .limit = 0xffffffff,
                .selector = selector,
                .type = type,
                .present = 1,
                .dpl = 0,
                .db = code64 ? 0 : 1,
                .s = 1,
                .l = code64 ? 1 : 0,
                .g = 1,
        };
}

void x86_boot_sregs(const X86Boot *b, struct kvm_sregs *sregs) {
        if (!b->long_mode) {
                uint64_t base = b->entry & ~0xffffULL;
                struct kvm_segment *segs[] = { &sregs->cs, &sregs->ds, &sregs->es, &sregs->fs, &sregs->gs, &sregs->ss };
                for (size_t i = 0; i < ELEMENTSOF(segs); i++) {
                        segs[i]->base = base;
                        segs[i]->selector = (uint16_t) (base >> 4);
                        segs[i]->limit = 0xffff;
                }
                sregs->cr0 &= ~(CR0_PE | CR0_PG);
                return;
        }
        segment_flat(&sregs->cs, X86_GDT_CODE64, 11, true);
        segment_flat(&sregs->ds, X86_GDT_DATA, 3, false);
        sregs->es = sregs->fs = sregs->gs = sregs->ss = sregs->ds;
        sregs->tr = (struct kvm_segment){
                .base = 0, .limit = 0xfffff, .selector = X86_GDT_TSS, .type = 11, .present = 1, .s = 0, .g = 1,
        };
        sregs->gdt.base = X86_BOOT_GDT;
        sregs->gdt.limit = 5 * 8 - 1;
        sregs->idt.base = X86_BOOT_IDT;
        sregs->idt.limit = 7;
        sregs->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_PG;
        sregs->cr3 = X86_BOOT_PML4;
        sregs->cr4 = CR4_PAE;
        sregs->efer = EFER_LME | EFER_LMA;
}

void x86_boot_regs(const X86Boot *b, unsigned vcpu_index, unsigned n_vcpus, struct kvm_regs *regs) {
        memset(regs, 0, sizeof *regs);
        regs->rflags = 0x2;
        if (!b->long_mode) {
                regs->rip = b->entry & 0xffff;
                regs->rdi = vcpu_index;
                regs->rdx = n_vcpus;
                return;
        }
        regs->rip = b->entry;
        regs->rsi = b->zero_page;
        regs->rdi = vcpu_index;
        regs->rdx = n_vcpus;
}
