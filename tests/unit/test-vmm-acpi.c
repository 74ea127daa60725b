/* SPDX-License-Identifier: MIT */
/* The ACPI tables as a guest walks them: RSDP checksums and pointers, RSDT/XSDT entries, every table's
 * checksum, the FADT's flags and DSDT pointers, the MADT's processors, IOAPIC, IRQ 0 override and NMI
 * entries, the DSDT's PCI host bridge, and the configs the builder refuses. */
#include <errno.h>

#include "arch/x86/acpi.h"
#include "test.h"

#define GPA 0xe0000ULL

static uint8_t buf[16384];

static uint8_t sum_bytes(const void *p, size_t len) {
        const uint8_t *b = p;
        uint8_t s = 0;
        for (size_t i = 0; i < len; i++)
                s = (uint8_t) (s + b[i]);
        return s;
}

static const AcpiHeader *table_at(uint64_t gpa, size_t written) {
        if (gpa < GPA || gpa - GPA + sizeof(AcpiHeader) > written)
                return NULL;
        const AcpiHeader *h = (const void *) (buf + (gpa - GPA));
        if (gpa - GPA + h->length > written || sum_bytes(h, h->length) != 0)
                return NULL;
        return h;
}

static uint32_t u32_at(const void *p, size_t off) {
        uint32_t v;
        memcpy(&v, (const uint8_t *) p + off, 4);
        return v;
}
static uint64_t u64_at(const void *p, size_t off) {
        uint64_t v;
        memcpy(&v, (const uint8_t *) p + off, 8);
        return v;
}

TEST(acpi_tables_walk) {
        const X86AcpiConfig cfg = { .n_cpus = 2, .irq0_gsi = 0, .pcat_compat = true, .hw_reduced = true };
        size_t written = 0;
        ASSERT_EQ_INT(x86_acpi_build(&cfg, GPA, buf, sizeof buf, &written), 0);
        CHECK_EQ_U64(written, x86_acpi_size(&cfg));

        const AcpiRsdp *rsdp = (const void *) buf;
        CHECK(memcmp(rsdp->signature, "RSD PTR ", 8) == 0);
        CHECK_EQ_INT(sum_bytes(rsdp, 20), 0);
        CHECK_EQ_INT(sum_bytes(rsdp, sizeof *rsdp), 0);
        CHECK_EQ_INT(rsdp->revision, 2);

        const AcpiHeader *rsdt = table_at(rsdp->rsdt_address, written), *xsdt = table_at(rsdp->xsdt_address, written);
        ASSERT(rsdt && xsdt);
        CHECK(memcmp(rsdt->signature, "RSDT", 4) == 0);
        CHECK(memcmp(xsdt->signature, "XSDT", 4) == 0);
        ASSERT_EQ_INT(xsdt->length, 36 + 2 * 8);
        CHECK_EQ_U64(u32_at(rsdt, 36), u64_at(xsdt, 36));
        CHECK_EQ_U64(u32_at(rsdt, 40), u64_at(xsdt, 44));

        const AcpiHeader *fadt = table_at(u64_at(xsdt, 36), written), *madt = table_at(u64_at(xsdt, 44), written);
        ASSERT(fadt && madt);
        CHECK(memcmp(fadt->signature, "FACP", 4) == 0);
        CHECK_EQ_INT(fadt->length, 276);
        CHECK_EQ_INT(fadt->revision, 6);
        CHECK(u32_at(fadt, 112) & ACPI_FADT_HW_REDUCED);
        CHECK(u32_at(fadt, 112) & ACPI_FADT_RESET_REG_SUP);
        CHECK_EQ_U64(u64_at(fadt, 116 + 4), 0x64); /* reset register: i8042 command port */
        CHECK_EQ_INT(((const uint8_t *) fadt)[128], 0xfe);
        CHECK_EQ_U64(u32_at(fadt, 40), u64_at(fadt, 140)); /* DSDT and X_DSDT agree */

        const AcpiHeader *dsdt = table_at(u64_at(fadt, 140), written);
        ASSERT(dsdt);
        CHECK(memcmp(dsdt->signature, "DSDT", 4) == 0);
        CHECK(memmem(dsdt, dsdt->length, "PCI0", 4) != NULL);
        const uint8_t pnp0a03[] = { 0x0c, 0x41, 0xd0, 0x0a, 0x03 }; /* DWordPrefix EisaId ("PNP0A03") */
        CHECK(memmem(dsdt, dsdt->length, pnp0a03, sizeof pnp0a03) != NULL);
        const uint8_t window[] = { 0x00, 0x00, 0x00, 0xc0, 0xff, 0xff, 0xbf, 0xfe }; /* 0xc0000000-0xfebfffff */
        CHECK(memmem(dsdt, dsdt->length, window, sizeof window) != NULL);
        /* COM1: without it Linux maps no ISA interrupt under the hardware-reduced FADT. */
        CHECK(memmem(dsdt, dsdt->length, "COM1", 4) != NULL);
        const uint8_t pnp0501[] = { 0x0c, 0x41, 0xd0, 0x05, 0x01 }; /* DWordPrefix EisaId ("PNP0501") */
        CHECK(memmem(dsdt, dsdt->length, pnp0501, sizeof pnp0501) != NULL);
        const uint8_t com1_crs[] = { 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, 0x22, 0x10, 0x00, 0x79, 0x00 };
        CHECK(memmem(dsdt, dsdt->length, com1_crs, sizeof com1_crs) != NULL);

        CHECK(memcmp(madt->signature, "APIC", 4) == 0);
        CHECK_EQ_U64(u32_at(madt, 36), 0xfee00000);
        CHECK_EQ_U64(u32_at(madt, 40), 1); /* PCAT_COMPAT */
        const uint8_t *e = (const uint8_t *) madt + 44, *end = (const uint8_t *) madt + madt->length;
        unsigned cpus = 0, ioapics = 0, overrides = 0, nmis = 0;
        while (e < end) {
                ASSERT(e[1] >= 2 && e + e[1] <= end);
                switch (e[0]) {
                case ACPI_MADT_TYPE_LOCAL_APIC:
                        CHECK_EQ_INT(e[2], cpus); /* processor UID */
                        CHECK_EQ_INT(e[3], cpus); /* APIC id */
                        CHECK_EQ_U64(u32_at(e, 4), 1);
                        cpus++;
                        break;
                case ACPI_MADT_TYPE_IO_APIC:
                        CHECK_EQ_INT(e[2], 2);
                        CHECK_EQ_U64(u32_at(e, 4), 0xfec00000);
                        CHECK_EQ_U64(u32_at(e, 8), 0);
                        ioapics++;
                        break;
                case ACPI_MADT_TYPE_INTERRUPT_OVERRIDE:
                        overrides++;
                        break;
                case ACPI_MADT_TYPE_LOCAL_APIC_NMI:
                        CHECK_EQ_INT(e[2], 0xff);
                        CHECK_EQ_INT(e[5], 1);
                        nmis++;
                        break;
                default:
                        test_fail(__FILE__, __LINE__, "unexpected MADT entry type %d", e[0]);
                }
                e += e[1];
        }
        CHECK_EQ_INT(cpus, 2);
        CHECK_EQ_INT(ioapics, 1);
        CHECK_EQ_INT(overrides, 0); /* IRQ 0 is GSI 0 */
        CHECK_EQ_INT(nmis, 1);
}

TEST(acpi_irq0_override_and_full_fadt) {
        const X86AcpiConfig cfg = { .n_cpus = 255, .irq0_gsi = 2, .hw_reduced = false };
        size_t written = 0;
        ASSERT_EQ_INT(x86_acpi_build(&cfg, GPA, buf, sizeof buf, &written), 0);
        const AcpiRsdp *rsdp = (const void *) buf;
        const AcpiHeader *xsdt = table_at(rsdp->xsdt_address, written);
        ASSERT(xsdt);
        const AcpiHeader *fadt = table_at(u64_at(xsdt, 36), written), *madt = table_at(u64_at(xsdt, 44), written);
        ASSERT(fadt && madt);
        CHECK_EQ_U64(u32_at(fadt, 112) & ACPI_FADT_HW_REDUCED, 0);
        CHECK_EQ_INT(((const uint8_t *) fadt)[46], 9); /* SCI on IRQ 9 */
        CHECK_EQ_U64(u32_at(madt, 40), 0);              /* no PCAT_COMPAT */
        const uint8_t override[] = { ACPI_MADT_TYPE_INTERRUPT_OVERRIDE, 10, 0, 0, 2, 0, 0, 0, 0, 0 };
        CHECK(memmem(madt, madt->length, override, sizeof override) != NULL);
        CHECK_EQ_INT(madt->length, 44 + 255 * 8 + 12 + 10 + 6);
}

TEST(acpi_refuses_what_it_cannot_describe) {
        size_t written = 777;
        CHECK_EQ_INT(x86_acpi_build(&(X86AcpiConfig){ .n_cpus = 0 }, GPA, buf, sizeof buf, &written), -EINVAL);
        CHECK_EQ_INT(x86_acpi_build(&(X86AcpiConfig){ .n_cpus = 256 }, GPA, buf, sizeof buf, &written), -EINVAL);
        CHECK_EQ_INT(x86_acpi_build(&(X86AcpiConfig){ .n_cpus = 1, .irq0_gsi = 24 }, GPA, buf, sizeof buf, &written),
                     -EINVAL);
        CHECK_EQ_INT(x86_acpi_build(&(X86AcpiConfig){ .n_cpus = 1 }, GPA + 4, buf, sizeof buf, &written), -EINVAL);
        const X86AcpiConfig one = { .n_cpus = 1 };
        CHECK_EQ_INT(x86_acpi_build(&one, GPA, buf, x86_acpi_size(&one) - 1, &written), -ENOSPC);
        CHECK_EQ_U64(written, 777);
}
