/* SPDX-License-Identifier: MIT */
/* The boot structures built for a spec: e820 map, zero page, identity page tables, entry registers. */
#include <stdio.h>

#include "arch/x86/boot.h"
#include "arch/x86/acpi.h"
#include "arch/x86/mptable.h"
#include "test.h"

static GuestMemory *memory(uint64_t size) {
        GuestMemory *m = NULL;
        if (guest_memory_new(size, VM_MEMORY_ANONYMOUS, &m) < 0 || guest_memory_layout_ram(m) < 0)
                return guest_memory_free(m);
        return m;
}

TEST(e820_small_guest) {
        struct boot_e820_entry t[8];
        int n = x86_e820_build(64ULL << 20, t, 8);
        ASSERT_EQ_INT(n, 3);
        CHECK_EQ_U64(t[0].addr, 0);
        CHECK_EQ_U64(t[0].size, 0x9fc00);
        CHECK_EQ_INT(t[0].type, 1);
        CHECK_EQ_U64(t[1].addr, 0x9fc00);
        CHECK_EQ_U64(t[1].addr + t[1].size, 0x100000);
        CHECK_EQ_INT(t[1].type, 2);
        CHECK_EQ_U64(t[2].addr, 0x100000);
        CHECK_EQ_U64(t[2].addr + t[2].size, 64ULL << 20);
        CHECK_EQ_INT(t[2].type, 1);
}

TEST(e820_splits_around_pci_hole) {
        struct boot_e820_entry t[8];
        int n = x86_e820_build(5ULL << 30, t, 8);
        ASSERT_EQ_INT(n, 4);
        CHECK_EQ_U64(t[2].addr + t[2].size, 3ULL << 30);
        CHECK_EQ_U64(t[3].addr, 4ULL << 30);
        CHECK_EQ_U64(t[3].size, 2ULL << 30);
        CHECK_EQ_INT(x86_e820_build(5ULL << 30, t, 3), -ENOSPC);
        CHECK_EQ_INT(x86_e820_build(1ULL << 20, t, 8), -EINVAL);
}

TEST(memory_layout_and_translation) {
        GuestMemory *m = memory(3ULL << 30 | 64ULL << 20); /* forces a slot above 4 GiB */
        ASSERT(m);
        ASSERT_EQ_INT(m->n_slots, 2);
        CHECK_EQ_U64(m->slots[0].size, 3ULL << 30);
        CHECK_EQ_U64(m->slots[1].gpa, 4ULL << 30);
        CHECK_EQ_U64(m->slots[1].size, 64ULL << 20);
        CHECK(guest_memory_gpa_to_hva(m, (3ULL << 30) - 8, 8) == m->base + (3ULL << 30) - 8);
        CHECK(guest_memory_gpa_to_hva(m, (3ULL << 30) - 8, 16) == NULL); /* runs into the hole */
        CHECK(guest_memory_gpa_to_hva(m, 3ULL << 30, 1) == NULL);
        CHECK(guest_memory_gpa_to_hva(m, 4ULL << 30, 4096) == m->base + (3ULL << 30));
        CHECK(guest_memory_gpa_to_hva(m, (4ULL << 30) + (64ULL << 20), 1) == NULL);
        guest_memory_free(m);
}

TEST(page_tables_identity_map_4g) {
        GuestMemory *m = memory(16ULL << 20);
        ASSERT(m);
        ASSERT_EQ_INT(x86_page_tables_build(m), 0);
        uint64_t *pml4 = guest_memory_gpa_to_hva(m, X86_BOOT_PML4, 4096);
        uint64_t *pdpt = guest_memory_gpa_to_hva(m, X86_BOOT_PDPT, 4096);
        CHECK_EQ_U64(pml4[0], X86_BOOT_PDPT | 3);
        CHECK_EQ_U64(pml4[1], 0);
        for (int i = 0; i < 4; i++)
                CHECK_EQ_U64(pdpt[i], (X86_BOOT_PD + (uint64_t) i * 4096) | 3);
        CHECK_EQ_U64(pdpt[4], 0);
        /* Walk a few addresses through the tables the way the MMU does. */
        uint64_t addrs[] = { 0, 0x100000, 0x7fffffff, 0xfee00000, 0xffffffff };
        for (size_t i = 0; i < ELEMENTSOF(addrs); i++) {
                uint64_t va = addrs[i];
                uint64_t pdpte = pdpt[(va >> 30) & 511];
                uint64_t *pd = guest_memory_gpa_to_hva(m, pdpte & ~0xfffULL, 4096);
                ASSERT(pd);
                uint64_t pde = pd[(va >> 21) & 511];
                CHECK(pde & 0x80);
                CHECK_EQ_U64((pde & ~0x1fffffULL & ~(1ULL << 63)) | (va & 0x1fffff), va);
        }
        guest_memory_free(m);
}

TEST(zero_page_for_elf_guest) {
        GuestMemory *m = memory(32ULL << 20);
        ASSERT(m);
        ASSERT_EQ_INT(x86_zero_page_build(m, NULL, "exit=3 console=ttyS0", 0x1000000, 0x2000), 0);
        struct boot_params *bp = guest_memory_gpa_to_hva(m, X86_BOOT_ZERO_PAGE, sizeof *bp);
        CHECK_EQ_U64(bp->hdr.header, 0x53726448);
        CHECK_EQ_INT(bp->hdr.type_of_loader, 0xff);
        CHECK_EQ_U64(bp->hdr.cmd_line_ptr, X86_BOOT_CMDLINE);
        CHECK_STREQ((const char *) guest_memory_gpa_to_hva(m, X86_BOOT_CMDLINE, 1), "exit=3 console=ttyS0");
        CHECK_EQ_U64(bp->hdr.ramdisk_image, 0x1000000);
        CHECK_EQ_U64(bp->hdr.ramdisk_size, 0x2000);
        CHECK_EQ_INT(bp->e820_entries, 3);
        CHECK_EQ_U64(bp->e820_table[2].addr + bp->e820_table[2].size, 32ULL << 20);
        CHECK(bp->hdr.loadflags & CAN_USE_HEAP);
        guest_memory_free(m);
}

/* A synthetic bzImage: setup sectors, header, a "kernel" whose bytes are recognisable. */
static void make_bzimage(const char *path, unsigned setup_sects, size_t kernel_size, uint32_t init_size) {
        size_t setup = (setup_sects + 1) * 512, size = setup + kernel_size;
        uint8_t *img = calloc(1, size);
        if (!img)
                return;
        img[0x1f1] = (uint8_t) setup_sects;
        img[0x1fe] = 0x55;
        img[0x1ff] = 0xaa;
        img[0x201] = 0x6a; /* jump over the header to 0x26c */
        memcpy(img + 0x202, "HdrS", 4);
        img[0x206] = 0x0f;
        img[0x207] = 0x02;
        img[0x211] = 0x01;                      /* LOADED_HIGH */
        memcpy(img + 0x22c, &(uint32_t){ 0x37ffffff }, 4); /* initrd_addr_max */
        memcpy(img + 0x238, &(uint32_t){ 2048 }, 4);       /* cmdline_size */
        img[0x236] = 0x01;                                 /* XLF_KERNEL_64 */
        memcpy(img + 0x260, &init_size, 4);
        for (size_t i = 0; i < kernel_size; i++)
                img[setup + i] = (uint8_t) (i * 7 + 1);
        FILE *f = fopen(path, "we");
        if (f) {
                fwrite(img, 1, size, f);
                fclose(f);
        }
        free(img);
}

TEST(bzimage_load_with_initrd) {
        char kpath[512], ipath[512], text[1400];
        VmSpec *spec = NULL;
        JsonError e = {};
        X86Boot b;

        snprintf(kpath, sizeof kpath, "%s/bzImage", test_tmpdir());
        snprintf(ipath, sizeof ipath, "%s/initrd", test_tmpdir());
        make_bzimage(kpath, 4, 8192, 4 << 20);
        FILE *f = fopen(ipath, "we");
        ASSERT(f);
        for (int i = 0; i < 5000; i++)
                fputc('i', f);
        fclose(f);
        snprintf(text, sizeof text,
                 "{\"name\":\"l\",\"vcpus\":1,\"memory\":\"64MiB\",\"boot\":{\"kernel\":\"%s\",\"initrd\":\"%s\","
                 "\"cmdline\":\"console=ttyS0 quiet\"}}",
                 kpath, ipath);
        ASSERT_EQ_INT(vm_spec_from_string(text, strlen(text), &spec, &e), 0);
        GuestMemory *m = memory(spec->memory);
        ASSERT(m);
        int r = x86_boot_load(spec, m, &b, &e);
        if (r < 0)
                test_fail(__FILE__, __LINE__, "x86_boot_load: %s: %s", e.path, e.message);
        ASSERT_EQ_INT(r, 0);
        CHECK_EQ_INT(b.format, KERNEL_FORMAT_BZIMAGE);
        CHECK(b.long_mode);
        CHECK(b.bsp_only);
        CHECK_EQ_U64(b.entry, 0x100200);
        CHECK_EQ_U64(b.zero_page, X86_BOOT_ZERO_PAGE);
        const uint8_t *k = guest_memory_gpa_to_hva(m, 0x100000, 8192);
        CHECK_EQ_INT(k[0], 1);
        CHECK_EQ_INT(k[100], (uint8_t) (100 * 7 + 1));
        /* initrd: page-aligned, at the top of RAM, below initrd_addr_max */
        CHECK_EQ_U64(b.initrd_size, 5000);
        CHECK_EQ_U64(b.initrd_addr, ((64ULL << 20) - 5000) & ~0xfffULL);
        struct boot_params *bp = guest_memory_gpa_to_hva(m, X86_BOOT_ZERO_PAGE, sizeof *bp);
        CHECK_EQ_U64(bp->hdr.ramdisk_image, b.initrd_addr);
        CHECK_EQ_U64(bp->hdr.ramdisk_size, 5000);
        CHECK_EQ_U64(bp->hdr.version, 0x20f);
        CHECK_EQ_U64(bp->hdr.init_size, 4 << 20);
        CHECK_EQ_INT(bp->hdr.type_of_loader, 0xff);
        CHECK_STREQ((const char *) guest_memory_gpa_to_hva(m, bp->hdr.cmd_line_ptr, 1), "console=ttyS0 quiet");

        struct kvm_sregs sregs = {};
        struct kvm_regs regs;
        x86_boot_sregs(&b, &sregs);
        CHECK_EQ_U64(sregs.cr3, X86_BOOT_PML4);
        CHECK(sregs.cr0 & 0x80000001);
        CHECK_EQ_U64(sregs.efer & 0x500, 0x500);
        CHECK_EQ_INT(sregs.cs.l, 1);
        CHECK_EQ_INT(sregs.cs.selector, X86_GDT_CODE64);
        x86_boot_regs(&b, 0, 1, &regs);
        CHECK_EQ_U64(regs.rip, 0x100200);
        CHECK_EQ_U64(regs.rsi, X86_BOOT_ZERO_PAGE);
        uint64_t *gdt = guest_memory_gpa_to_hva(m, X86_BOOT_GDT, 40);
        CHECK_EQ_U64(gdt[2], 0x00af9b000000ffffULL);
        CHECK_EQ_U64(gdt[3], 0x00cf93000000ffffULL);

        guest_memory_free(m);
        vm_spec_free(spec);

        /* A kernel whose decompression footprint exceeds RAM is refused, naming $.memory. */
        make_bzimage(kpath, 4, 8192, 200 << 20);
        ASSERT_EQ_INT(vm_spec_from_string(text, strlen(text), &spec, &e), 0);
        m = memory(spec->memory);
        ASSERT(m);
        CHECK_EQ_INT(x86_boot_load(spec, m, &b, &e), -EINVAL);
        CHECK_STREQ(e.path, "$.memory");
        guest_memory_free(m);
        vm_spec_free(spec);
}

/* A Linux boot with an in-kernel LAPIC gets an MP table in the e820-reserved BIOS area, one processor per
 * vCPU; without an irqchip (no LAPIC to start APs with) it gets none. */
TEST(bzimage_load_writes_mptable) {
        static const char *const irqchips[] = { "kernel", "split", "none" };
        char kpath[512], text[1400];

        snprintf(kpath, sizeof kpath, "%s/bzImage-mp", test_tmpdir());
        make_bzimage(kpath, 4, 8192, 4 << 20);
        for (size_t i = 0; i < 3; i++) {
                VmSpec *spec = NULL;
                JsonError e = {};
                X86Boot b;

                snprintf(text, sizeof text,
                         "{\"name\":\"l\",\"vcpus\":3,\"memory\":\"64MiB\",\"irqchip\":\"%s\","
                         "\"boot\":{\"kernel\":\"%s\"}}",
                         irqchips[i], kpath);
                ASSERT_EQ_INT(vm_spec_from_string(text, strlen(text), &spec, &e), 0);
                GuestMemory *m = memory(spec->memory);
                ASSERT(m);
                ASSERT_EQ_INT(x86_boot_load(spec, m, &b, &e), 0);
                const MpFloatingPointer *mpf = guest_memory_gpa_to_hva(m, X86_BOOT_MPTABLE, sizeof *mpf);
                ASSERT(mpf);
                if (i == 2) {
                        CHECK_EQ_INT(mpf->signature[0], 0);
                        const struct boot_params *zp = guest_memory_gpa_to_hva(m, X86_BOOT_ZERO_PAGE, sizeof *zp);
                        CHECK_EQ_U64(zp->acpi_rsdp_addr, 0);
                } else {
                        CHECK(memcmp(mpf->signature, "_MP_", 4) == 0);
                        const MpConfigHeader *h = guest_memory_gpa_to_hva(m, mpf->config_table, sizeof *h);
                        ASSERT(h);
                        CHECK(memcmp(h->signature, "PCMP", 4) == 0);
                        /* 3 processors, 2 buses, IOAPIC, 15 ISA IRQs, LINT0/1 */
                        CHECK_EQ_INT(h->entry_count, 3 + 2 + 1 + 15 + 2);
                        /* the whole table lies in a reserved e820 range below 1 MiB */
                        struct boot_params *bp = guest_memory_gpa_to_hva(m, X86_BOOT_ZERO_PAGE, sizeof *bp);
                        bool reserved = false;
                        for (unsigned k = 0; k < bp->e820_entries; k++) {
                                const struct boot_e820_entry *t = &bp->e820_table[k];
                                if (t->type == 2 && t->addr <= X86_BOOT_MPTABLE &&
                                    mpf->config_table + h->length <= t->addr + t->size)
                                        reserved = true;
                        }
                        CHECK(reserved);
                        CHECK(mpf->config_table + h->length <= 0x100000);
                        /* ACPI: the RSDP where the zero page says, the MADT listing 3 processors */
                        CHECK_EQ_U64(bp->acpi_rsdp_addr, X86_BOOT_ACPI);
                        const AcpiRsdp *rsdp = guest_memory_gpa_to_hva(m, X86_BOOT_ACPI, sizeof *rsdp);
                        ASSERT(rsdp);
                        CHECK(memcmp(rsdp->signature, "RSD PTR ", 8) == 0);
                }
                guest_memory_free(m);
                vm_spec_free(spec);
        }
}

TEST(real_mode_raw_entry) {
        X86Boot b = { .entry = 0x18000, .long_mode = false };
        struct kvm_sregs sregs = { .cr0 = 0x60000010 };
        struct kvm_regs regs;
        x86_boot_sregs(&b, &sregs);
        x86_boot_regs(&b, 0, 1, &regs);
        CHECK_EQ_U64(sregs.cs.base, 0x10000);
        CHECK_EQ_INT(sregs.cs.selector, 0x1000);
        CHECK_EQ_U64(regs.rip, 0x8000);
        CHECK_EQ_U64(sregs.cr0 & 1, 0);
}
