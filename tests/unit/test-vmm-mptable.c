/* SPDX-License-Identifier: MIT */
/* The MP table as a guest reads it: floating pointer and configuration table checksums, entry counts,
 * processor APIC ids and flags, the IOAPIC entry, ISA IRQ routing with IRQ 0 on its own pin, PCI INTx
 * lines, the LINT0/LINT1 entries, and the configs it refuses. */
#include <errno.h>

#include "arch/x86/mptable.h"
#include "test.h"

#define GPA 0xf0000ULL

static uint8_t sum_bytes(const void *p, size_t len) {
        const uint8_t *b = p;
        uint8_t s = 0;
        for (size_t i = 0; i < len; i++)
                s = (uint8_t) (s + b[i]);
        return s;
}

/* What a reader of the table finds, walking it the way Linux's smp_read_mpc() does. */
typedef struct Parsed {
        unsigned n_cpus, n_bsp, n_buses, n_ioapics, n_io_irqs, n_local_irqs, n_entries;
        uint8_t cpu_apic_id[256];
        uint8_t cpu_flags[256];
        MpBus buses[4];
        MpIoapic ioapic;
        int isa_pin[16]; /* -1: no entry */
        MpInterrupt io_irqs[64];
        MpInterrupt local_irqs[4];
        int bad_entry;
} Parsed;

static int parse(const uint8_t *buf, size_t size, uint64_t gpa, Parsed *p) {
        memset(p, 0, sizeof *p);
        for (int i = 0; i < 16; i++)
                p->isa_pin[i] = -1;
        const MpFloatingPointer *mpf = (const void *) buf;
        if (memcmp(mpf->signature, "_MP_", 4) != 0 || mpf->length != 1 || sum_bytes(mpf, 16) != 0)
                return -1;
        if (mpf->config_table < gpa || mpf->config_table - gpa + sizeof(MpConfigHeader) > size)
                return -2;
        const MpConfigHeader *h = (const void *) (buf + (mpf->config_table - gpa));
        if (memcmp(h->signature, "PCMP", 4) != 0 || (h->spec_rev != 1 && h->spec_rev != 4))
                return -3;
        if ((const uint8_t *) h + h->length > buf + size || sum_bytes(h, h->length) != 0)
                return -4;
        if (h->lapic_addr != 0xfee00000)
                return -5;
        const uint8_t *e = (const uint8_t *) (h + 1), *end = (const uint8_t *) h + h->length;
        while (e < end) {
                p->n_entries++;
                switch (e[0]) {
                case MP_ENTRY_PROCESSOR: {
                        const MpProcessor *c = (const void *) e;
                        p->cpu_apic_id[p->n_cpus] = c->apic_id;
                        p->cpu_flags[p->n_cpus] = c->flags;
                        if (c->flags & MP_CPU_BSP)
                                p->n_bsp++;
                        if (c->apic_version < 0x10) /* Linux would take it for an 82489DX */
                                p->bad_entry++;
                        p->n_cpus++;
                        e += sizeof *c;
                        break;
                }
                case MP_ENTRY_BUS:
                        if (p->n_buses < 4)
                                memcpy(&p->buses[p->n_buses], e, 8);
                        p->n_buses++;
                        e += 8;
                        break;
                case MP_ENTRY_IOAPIC:
                        memcpy(&p->ioapic, e, 8);
                        p->n_ioapics++;
                        e += 8;
                        break;
                case MP_ENTRY_IO_INTERRUPT: {
                        MpInterrupt irq;
                        memcpy(&irq, e, 8);
                        if (p->n_io_irqs < 64)
                                p->io_irqs[p->n_io_irqs] = irq;
                        p->n_io_irqs++;
                        if (irq.src_bus == X86_MPTABLE_BUS_ISA && irq.src_irq < 16) {
                                if (p->isa_pin[irq.src_irq] != -1)
                                        p->bad_entry++; /* one pin per ISA IRQ */
                                p->isa_pin[irq.src_irq] = irq.dst_pin;
                        }
                        e += 8;
                        break;
                }
                case MP_ENTRY_LOCAL_INTERRUPT:
                        if (p->n_local_irqs < 4)
                                memcpy(&p->local_irqs[p->n_local_irqs], e, 8);
                        p->n_local_irqs++;
                        e += 8;
                        break;
                default:
                        return -6;
                }
        }
        if (e != end || p->n_entries != h->entry_count)
                return -7;
        return 0;
}

static int build(const X86MpConfig *cfg, uint8_t *buf, size_t size, size_t *written) {
        return x86_mptable_build(cfg, GPA, buf, size, written);
}

TEST(mptable_two_cpus_reads_back) {
        static uint8_t buf[4096];
        static Parsed p;
        const X86MpConfig cfg = { .n_cpus = 2, .irq0_pin = 2 };
        size_t written = 0;

        memset(buf, 0xaa, sizeof buf);
        ASSERT_EQ_INT(build(&cfg, buf, sizeof buf, &written), 0);
        CHECK_EQ_U64(written, x86_mptable_size(&cfg));
        /* 16 + 44 + 2 processors (20) + 2 buses + IOAPIC + 15 ISA IRQs + LINT0/1 (8 each) */
        CHECK_EQ_U64(written, 16 + 44 + 2 * 20 + (2 + 1 + 15 + 2) * 8);
        CHECK_EQ_INT(buf[written], 0xaa); /* nothing written past the end */
        ASSERT_EQ_INT(parse(buf, written, GPA, &p), 0);
        CHECK_EQ_U64(((const MpFloatingPointer *) buf)->config_table, GPA + 16);
        CHECK_EQ_INT(((const MpFloatingPointer *) buf)->spec_rev, 4);
        CHECK_EQ_INT(((const MpFloatingPointer *) buf)->features[0], 0); /* table present, no default config */
        CHECK_EQ_INT(((const MpFloatingPointer *) buf)->features[1], 0); /* virtual wire: no IMCR */

        CHECK_EQ_INT(p.n_cpus, 2);
        CHECK_EQ_INT(p.n_bsp, 1);
        CHECK_EQ_INT(p.cpu_apic_id[0], 0);
        CHECK_EQ_INT(p.cpu_apic_id[1], 1);
        CHECK_EQ_INT(p.cpu_flags[0], MP_CPU_ENABLED | MP_CPU_BSP);
        CHECK_EQ_INT(p.cpu_flags[1], MP_CPU_ENABLED);
        CHECK_EQ_INT(p.bad_entry, 0);

        ASSERT_EQ_INT(p.n_buses, 2);
        CHECK_EQ_INT(p.buses[0].bus_id, 0);
        CHECK(memcmp(p.buses[0].bus_type, "PCI   ", 6) == 0);
        CHECK_EQ_INT(p.buses[1].bus_id, 1);
        CHECK(memcmp(p.buses[1].bus_type, "ISA   ", 6) == 0);

        ASSERT_EQ_INT(p.n_ioapics, 1);
        CHECK_EQ_INT(p.ioapic.apic_id, 2); /* after the last local APIC id */
        CHECK_EQ_INT(p.ioapic.apic_version, 0x11);
        CHECK_EQ_INT(p.ioapic.flags, MP_IOAPIC_ENABLED);
        CHECK_EQ_U64(p.ioapic.addr, 0xfec00000);

        CHECK_EQ_INT(p.n_io_irqs, 15);
        CHECK_EQ_INT(p.isa_pin[0], 2); /* the PIT's IRQ 0 on pin 2 */
        CHECK_EQ_INT(p.isa_pin[2], -1); /* the cascade has no entry */
        for (int irq = 1; irq < 16; irq++)
                if (irq != 2)
                        CHECK_EQ_INT(p.isa_pin[irq], irq);
        for (unsigned i = 0; i < p.n_io_irqs; i++) {
                CHECK_EQ_INT(p.io_irqs[i].irq_type, MP_IRQ_INT);
                CHECK_EQ_INT(p.io_irqs[i].flags, 0); /* ISA: edge, active high */
                CHECK_EQ_INT(p.io_irqs[i].dst_apic, p.ioapic.apic_id);
        }

        ASSERT_EQ_INT(p.n_local_irqs, 2);
        CHECK_EQ_INT(p.local_irqs[0].irq_type, MP_IRQ_EXTINT);
        CHECK_EQ_INT(p.local_irqs[0].dst_apic, 0xff);
        CHECK_EQ_INT(p.local_irqs[0].dst_pin, 0);
        CHECK_EQ_INT(p.local_irqs[1].irq_type, MP_IRQ_NMI);
        CHECK_EQ_INT(p.local_irqs[1].dst_apic, 0xff);
        CHECK_EQ_INT(p.local_irqs[1].dst_pin, 1);
}

TEST(mptable_cpu_counts) {
        static uint8_t buf[8192];
        static Parsed p;
        const unsigned counts[] = { 1, 3, 8, 64, 255 };
        for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
                const X86MpConfig cfg = { .n_cpus = counts[i], .irq0_pin = 2 };
                size_t written;
                ASSERT_EQ_INT(build(&cfg, buf, sizeof buf, &written), 0);
                ASSERT_EQ_INT(parse(buf, written, GPA, &p), 0);
                CHECK_EQ_INT(p.n_cpus, counts[i]);
                CHECK_EQ_INT(p.n_bsp, 1);
                for (unsigned c = 0; c < p.n_cpus; c++) {
                        CHECK_EQ_INT(p.cpu_apic_id[c], c);
                        CHECK(p.cpu_flags[c] & MP_CPU_ENABLED);
                }
                CHECK_EQ_INT(p.ioapic.apic_id, counts[i]);
        }
}

TEST(mptable_irq0_pin_follows_config) {
        static uint8_t buf[4096];
        static Parsed p;
        const X86MpConfig cfg = { .n_cpus = 1, .irq0_pin = 0 };
        size_t written;
        ASSERT_EQ_INT(build(&cfg, buf, sizeof buf, &written), 0);
        ASSERT_EQ_INT(parse(buf, written, GPA, &p), 0);
        CHECK_EQ_INT(p.isa_pin[0], 0);
        CHECK_EQ_INT(p.isa_pin[1], 1);
}

TEST(mptable_pci_lines) {
        static uint8_t buf[4096];
        static Parsed p;
        const X86MpPciIrq lines[] = { { .slot = 1, .intx = 0, .ioapic_pin = 16 }, { .slot = 3, .intx = 2, .ioapic_pin = 18 } };
        const X86MpConfig cfg = { .n_cpus = 2, .irq0_pin = 2, .pci_irqs = lines, .n_pci_irqs = 2 };
        size_t written;
        ASSERT_EQ_INT(build(&cfg, buf, sizeof buf, &written), 0);
        ASSERT_EQ_INT(parse(buf, written, GPA, &p), 0);
        ASSERT_EQ_INT(p.n_io_irqs, 17);
        const MpInterrupt *a = &p.io_irqs[15], *b = &p.io_irqs[16];
        CHECK_EQ_INT(a->src_bus, X86_MPTABLE_BUS_PCI);
        CHECK_EQ_INT(a->src_irq, 1 << 2 | 0);
        CHECK_EQ_INT(a->dst_pin, 16);
        CHECK_EQ_INT(a->flags, 0xf);
        CHECK_EQ_INT(b->src_irq, 3 << 2 | 2);
        CHECK_EQ_INT(b->dst_pin, 18);
}

TEST(mptable_refuses_what_it_cannot_describe) {
        static uint8_t buf[8192];
        size_t written = 12345;
        const X86MpPciIrq bad_slot = { .slot = 32 }, bad_pin = { .slot = 1, .ioapic_pin = 24 }, bad_intx = { .intx = 4 };

        CHECK_EQ_INT(build(&(X86MpConfig){ .n_cpus = 0 }, buf, sizeof buf, &written), -EINVAL);
        CHECK_EQ_INT(build(&(X86MpConfig){ .n_cpus = 256 }, buf, sizeof buf, &written), -EINVAL);
        CHECK_EQ_INT(build(&(X86MpConfig){ .n_cpus = 1, .irq0_pin = 24 }, buf, sizeof buf, &written), -EINVAL);
        CHECK_EQ_INT(build(&(X86MpConfig){ .n_cpus = 1, .pci_irqs = &bad_slot, .n_pci_irqs = 1 }, buf, sizeof buf,
                           &written),
                     -EINVAL);
        CHECK_EQ_INT(build(&(X86MpConfig){ .n_cpus = 1, .pci_irqs = &bad_pin, .n_pci_irqs = 1 }, buf, sizeof buf,
                           &written),
                     -EINVAL);
        CHECK_EQ_INT(build(&(X86MpConfig){ .n_cpus = 1, .pci_irqs = &bad_intx, .n_pci_irqs = 1 }, buf, sizeof buf,
                           &written),
                     -EINVAL);
        CHECK_EQ_INT(build(&(X86MpConfig){ .n_cpus = 1, .pci_irqs = NULL, .n_pci_irqs = 1 }, buf, sizeof buf, &written),
                     -EINVAL);
        CHECK_EQ_INT(x86_mptable_build(&(X86MpConfig){ .n_cpus = 1 }, GPA + 8, buf, sizeof buf, &written), -EINVAL);
        CHECK_EQ_INT(x86_mptable_build(&(X86MpConfig){ .n_cpus = 1 }, 0xfffffff0ULL, buf, sizeof buf, &written),
                     -EINVAL);
        const X86MpConfig two = { .n_cpus = 2 };
        CHECK_EQ_INT(build(&two, buf, x86_mptable_size(&two) - 1, &written), -ENOSPC);
        CHECK_EQ_U64(written, 12345); /* untouched on failure */
}
