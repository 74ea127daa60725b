/* SPDX-License-Identifier: MIT */
#include "arch/x86/mptable.h"

#include <errno.h>
#include <string.h>

/* The layout is fixed by the MP specification. */
_Static_assert(sizeof(MpFloatingPointer) == 16, "MP floating pointer is 16 bytes");
_Static_assert(sizeof(MpConfigHeader) == 44, "MP configuration table header is 44 bytes");
_Static_assert(sizeof(MpProcessor) == 20, "MP processor entry is 20 bytes");
_Static_assert(sizeof(MpBus) == 8 && sizeof(MpIoapic) == 8 && sizeof(MpInterrupt) == 8, "MP entries are 8 bytes");

#define MP_SPEC_REV 4

/* ISA IRQ 2 is the 8259 cascade: no device raises it, so it gets no entry. */
static const unsigned isa_irq_entries = X86_MPTABLE_ISA_IRQS - 1;

static size_t entry_count(const X86MpConfig *cfg) {
        return cfg->n_cpus + 2 /* buses */ + 1 /* IOAPIC */ + isa_irq_entries + cfg->n_pci_irqs + 2 /* LINT0/1 */;
}

size_t x86_mptable_size(const X86MpConfig *cfg) {
        return sizeof(MpFloatingPointer) + sizeof(MpConfigHeader) + cfg->n_cpus * sizeof(MpProcessor) +
               (entry_count(cfg) - cfg->n_cpus) * 8;
}

static uint8_t checksum_complement(const void *p, size_t len) {
        const uint8_t *b = p;
        uint8_t sum = 0;
        for (size_t i = 0; i < len; i++)
                sum = (uint8_t) (sum + b[i]);
        return (uint8_t) -sum;
}

static void put(uint8_t **cursor, const void *entry, size_t len) {
        memcpy(*cursor, entry, len);
        *cursor += len;
}

static void put_interrupt(uint8_t **cursor, uint8_t entry_type, uint8_t irq_type, uint16_t flags, uint8_t src_bus,
                          uint8_t src_irq, uint8_t dst_apic, uint8_t dst_pin) {
        MpInterrupt e = { .type = entry_type, .irq_type = irq_type, .flags = flags, .src_bus = src_bus,
                          .src_irq = src_irq, .dst_apic = dst_apic, .dst_pin = dst_pin };
        put(cursor, &e, sizeof e);
}

static int config_check(const X86MpConfig *cfg, uint64_t gpa) {
        if (cfg->n_cpus == 0 || cfg->n_cpus > X86_MPTABLE_MAX_CPUS)
                return -EINVAL;
        if (cfg->irq0_pin >= X86_MPTABLE_IOAPIC_PINS)
                return -EINVAL;
        if (cfg->n_pci_irqs > 0 && !cfg->pci_irqs)
                return -EINVAL;
        for (size_t i = 0; i < cfg->n_pci_irqs; i++) {
                const X86MpPciIrq *p = &cfg->pci_irqs[i];
                if (p->slot >= 32 || p->intx > 3 || p->ioapic_pin >= X86_MPTABLE_IOAPIC_PINS)
                        return -EINVAL;
        }
        if (gpa % 16 != 0 || gpa + x86_mptable_size(cfg) > UINT32_MAX)
                return -EINVAL;
        if (x86_mptable_size(cfg) - sizeof(MpFloatingPointer) > UINT16_MAX)
                return -EINVAL;
        return 0;
}

int x86_mptable_build(const X86MpConfig *cfg, uint64_t gpa, void *buf, size_t size, size_t *ret_size) {
        size_t total = x86_mptable_size(cfg);
        uint8_t ioapic_id = (uint8_t) cfg->n_cpus;
        int r;

        r = config_check(cfg, gpa);
        if (r < 0)
                return r;
        if (size < total)
                return -ENOSPC;
        memset(buf, 0, total);

        MpFloatingPointer *mpf = buf;
        memcpy(mpf->signature, "_MP_", 4);
        mpf->config_table = (uint32_t) (gpa + sizeof *mpf);
        mpf->length = 1;
        mpf->spec_rev = MP_SPEC_REV;

        MpConfigHeader *hdr = (MpConfigHeader *) (mpf + 1);
        memcpy(hdr->signature, "PCMP", 4);
        hdr->length = (uint16_t) (total - sizeof *mpf);
        hdr->spec_rev = MP_SPEC_REV;
        memcpy(hdr->oem_id, "KVMFLEET", 8);
        memcpy(hdr->product_id, "KVMFLEET-VMM", 12);
        hdr->entry_count = (uint16_t) entry_count(cfg);
        hdr->lapic_addr = X86_MPTABLE_LAPIC_ADDR;

        uint8_t *cursor = (uint8_t *) (hdr + 1);
        for (unsigned i = 0; i < cfg->n_cpus; i++) {
                MpProcessor cpu = {
                        .type = MP_ENTRY_PROCESSOR,
                        .apic_id = (uint8_t) i,
                        .apic_version = X86_MPTABLE_LAPIC_VERSION,
                        .flags = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0),
                        .signature = cfg->cpu_signature,
                        .features = cfg->cpu_features,
                };
                put(&cursor, &cpu, sizeof cpu);
        }
        MpBus pci = { .type = MP_ENTRY_BUS, .bus_id = X86_MPTABLE_BUS_PCI };
        memcpy(pci.bus_type, "PCI   ", 6);
        put(&cursor, &pci, sizeof pci);
        MpBus isa = { .type = MP_ENTRY_BUS, .bus_id = X86_MPTABLE_BUS_ISA };
        memcpy(isa.bus_type, "ISA   ", 6);
        put(&cursor, &isa, sizeof isa);
        MpIoapic ioapic = { .type = MP_ENTRY_IOAPIC, .apic_id = ioapic_id, .apic_version = X86_MPTABLE_IOAPIC_VERSION,
                            .flags = MP_IOAPIC_ENABLED, .addr = X86_MPTABLE_IOAPIC_ADDR };
        put(&cursor, &ioapic, sizeof ioapic);
        for (uint8_t irq = 0; irq < X86_MPTABLE_ISA_IRQS; irq++) {
                if (irq == 2)
                        continue;
                put_interrupt(&cursor, MP_ENTRY_IO_INTERRUPT, MP_IRQ_INT, MP_IRQ_FLAGS_CONFORMING, X86_MPTABLE_BUS_ISA,
                              irq, ioapic_id, irq == 0 ? cfg->irq0_pin : irq);
        }
        for (size_t i = 0; i < cfg->n_pci_irqs; i++) {
                const X86MpPciIrq *p = &cfg->pci_irqs[i];
                put_interrupt(&cursor, MP_ENTRY_IO_INTERRUPT, MP_IRQ_INT, MP_IRQ_FLAGS_PCI, X86_MPTABLE_BUS_PCI,
                              (uint8_t) (p->slot << 2 | p->intx), ioapic_id, p->ioapic_pin);
        }
        put_interrupt(&cursor, MP_ENTRY_LOCAL_INTERRUPT, MP_IRQ_EXTINT, MP_IRQ_FLAGS_CONFORMING, X86_MPTABLE_BUS_ISA, 0,
                      MP_APIC_ALL, 0);
        put_interrupt(&cursor, MP_ENTRY_LOCAL_INTERRUPT, MP_IRQ_NMI, MP_IRQ_FLAGS_CONFORMING, X86_MPTABLE_BUS_ISA, 0,
                      MP_APIC_ALL, 1);

        hdr->checksum = checksum_complement(hdr, hdr->length);
        mpf->checksum = checksum_complement(mpf, sizeof *mpf);
        *ret_size = (size_t) (cursor - (uint8_t *) buf);
        return 0;
}
