/* SPDX-License-Identifier: MIT */
#include "arch/x86/acpi.h"

#include <errno.h>
#include <string.h>

#include "macro.h"

_Static_assert(sizeof(AcpiHeader) == 36, "ACPI table header is 36 bytes");
_Static_assert(sizeof(AcpiRsdp) == 36, "ACPI 2.0 RSDP is 36 bytes");

#define FADT_SIZE 276 /* revision 6 */
#define MADT_FIXED_SIZE (sizeof(AcpiHeader) + 8)
#define MADT_LOCAL_APIC_SIZE 8
#define MADT_IO_APIC_SIZE 12
#define MADT_OVERRIDE_SIZE 10
#define MADT_NMI_SIZE 6
#define LAPIC_ADDR 0xfee00000U
#define IOAPIC_ADDR 0xfec00000U
#define I8042_COMMAND_PORT 0x64
#define I8042_CMD_RESET 0xfe

/* AML of the DSDT body: Scope (\_SB) { Device (PCI0) { _HID PNP0A03, _UID 0, _SEG 0, _BBN 0, _CRS }
 * Device (COM1) { _HID PNP0501, _UID 0, _CRS } }.
 * Resource descriptors (ACPI 6.5 section 6.4): */
static const uint8_t pci0_resources[] = {
        /* WordBusNumber: producer, min/max fixed, bus 0..0, length 1 */
        0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
        /* IO (Decode16) 0xcf8, length 8: the configuration mechanism #1 ports, consumed by the bridge */
        0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08,
        /* WordIO 0x0000-0x0cf7, entire range */
        0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0x00, 0x00, 0x00, 0x00, 0xf7, 0x0c, 0x00, 0x00, 0xf8, 0x0c,
        /* WordIO 0x0d00-0xffff */
        0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0x00, 0x00, 0x00, 0x0d, 0xff, 0xff, 0x00, 0x00, 0x00, 0xf3,
        /* DWordMemory, read-write, non-cacheable: the 32-bit MMIO window, filled in below */
        0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00,
        0x00, 0, 0, 0, 0,
        /* End tag */
        0x79, 0x00,
};
#define RES_MMIO_MIN 66 /* offsets of the DWordMemory fields filled in */
#define RES_MMIO_MAX 70
#define RES_MMIO_LEN 78

/* A little AML writer: packages are written into a scratch buffer, then prefixed with their length. */
typedef struct Aml {
        uint8_t *p;
        size_t len, max;
        int error;
} Aml;

static void aml_bytes(Aml *a, const void *data, size_t n) {
        if (a->error || a->len + n > a->max) {
                a->error = -ENOSPC;
                return;
        }
        memcpy(a->p + a->len, data, n);
        a->len += n;
}

static void aml_byte(Aml *a, uint8_t b) {
        aml_bytes(a, &b, 1);
}

/* PkgLength (ACPI 6.5 section 20.2.4): the length includes its own encoding. */
static void aml_pkg_length(Aml *a, size_t content) {
        if (content + 1 <= 0x3f) {
                aml_byte(a, (uint8_t) (content + 1));
        } else if (content + 2 <= 0xfff) {
                size_t n = content + 2;
                aml_byte(a, (uint8_t) (0x40 | (n & 0xf)));
                aml_byte(a, (uint8_t) (n >> 4));
        } else {
                size_t n = content + 3;
                aml_byte(a, (uint8_t) (0x80 | (n & 0xf)));
                aml_byte(a, (uint8_t) (n >> 4));
                aml_byte(a, (uint8_t) (n >> 12));
        }
}

static void aml_name_dword(Aml *a, const char seg[4], uint32_t v) {
        aml_byte(a, 0x08); /* NameOp */
        aml_bytes(a, seg, 4);
        if (v == 0) {
                aml_byte(a, 0x00); /* ZeroOp */
                return;
        }
        aml_byte(a, 0x0c); /* DWordPrefix */
        aml_bytes(a, &v, 4);
}

static void aml_name_buffer(Aml *a, const char seg[4], const uint8_t *data, size_t n) {
        aml_byte(a, 0x08); /* NameOp */
        aml_bytes(a, seg, 4);
        aml_byte(a, 0x11); /* BufferOp */
        aml_pkg_length(a, 2 + n);
        aml_byte(a, 0x0a); /* BytePrefix: buffer size */
        aml_byte(a, (uint8_t) n);
        aml_bytes(a, data, n);
}

/* Device (NAME) { body } appended to a. */
static void aml_device(Aml *a, const char name[4], const Aml *body) {
        aml_byte(a, 0x5b); /* DeviceOp */
        aml_byte(a, 0x82);
        aml_pkg_length(a, 4 + body->len);
        aml_bytes(a, name, 4);
        aml_bytes(a, body->p, body->len);
        if (body->error)
                a->error = body->error;
}

/* COM1 (PNP0501) with its ports and ISA IRQ 4. Needed with the hardware-reduced FADT: Linux then
 * sets up no legacy ISA interrupts, so its 8250 driver's request for IRQ 4 fails (the console can't
 * be opened for /init) unless a device's _CRS names the interrupt and ACPI maps it to IOAPIC pin 4. */
static const uint8_t com1_resources[] = {
        0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, /* IO (Decode16) 0x3f8, length 8 */
        0x22, 0x10, 0x00,                               /* IRQNoFlags () {4}: edge, active high */
        0x79, 0x00,                                     /* End tag */
};

static size_t dsdt_body(uint8_t *out, size_t max, int *ret_error) {
        uint8_t res[sizeof pci0_resources];
        uint8_t pci_body[256], com_body[96], devices[448], scope[464];
        Aml d = { .p = pci_body, .max = sizeof pci_body };
        uint32_t mmio_min = X86_ACPI_PCI_MMIO_START, mmio_max = X86_ACPI_PCI_MMIO_END - 1,
                 mmio_len = X86_ACPI_PCI_MMIO_END - X86_ACPI_PCI_MMIO_START;

        memcpy(res, pci0_resources, sizeof res);
        memcpy(res + RES_MMIO_MIN, &mmio_min, 4);
        memcpy(res + RES_MMIO_MAX, &mmio_max, 4);
        memcpy(res + RES_MMIO_LEN, &mmio_len, 4);

        aml_name_dword(&d, "_HID", 0x030ad041); /* EisaId ("PNP0A03") */
        aml_name_dword(&d, "_UID", 0);
        aml_name_dword(&d, "_SEG", 0);
        aml_name_dword(&d, "_BBN", 0);
        aml_name_buffer(&d, "_CRS", res, sizeof res);

        Aml c = { .p = com_body, .max = sizeof com_body };
        aml_name_dword(&c, "_HID", 0x0105d041); /* EisaId ("PNP0501") */
        aml_name_dword(&c, "_UID", 0);
        aml_name_buffer(&c, "_CRS", com1_resources, sizeof com1_resources);

        Aml v = { .p = devices, .max = sizeof devices };
        aml_device(&v, "PCI0", &d);
        aml_device(&v, "COM1", &c);

        Aml s = { .p = scope, .max = sizeof scope, .error = v.error };
        aml_byte(&s, 0x10); /* ScopeOp */
        aml_pkg_length(&s, 5 + v.len);
        aml_bytes(&s, "\\_SB_", 5);
        aml_bytes(&s, devices, v.len);

        if (out) {
                Aml o = { .p = out, .max = max, .error = s.error };
                aml_bytes(&o, scope, s.len);
                s.error = o.error;
        }
        *ret_error = s.error;
        return s.len;
}

static uint8_t checksum_complement(const void *p, size_t len) {
        const uint8_t *b = p;
        uint8_t sum = 0;
        for (size_t i = 0; i < len; i++)
                sum = (uint8_t) (sum + b[i]);
        return (uint8_t) -sum;
}

static size_t align16(size_t n) {
        return (n + 15) & ~(size_t) 15;
}

static size_t madt_size(const X86AcpiConfig *cfg) {
        return MADT_FIXED_SIZE + cfg->n_cpus * MADT_LOCAL_APIC_SIZE + MADT_IO_APIC_SIZE +
               (cfg->irq0_gsi != 0 ? MADT_OVERRIDE_SIZE : 0) + MADT_NMI_SIZE;
}

typedef struct Layout {
        size_t rsdt, xsdt, fadt, madt, dsdt, end;
        size_t dsdt_len;
} Layout;

static int layout(const X86AcpiConfig *cfg, Layout *l) {
        int r;
        size_t aml = dsdt_body(NULL, 0, &r);
        if (r < 0)
                return r;
        l->rsdt = align16(sizeof(AcpiRsdp));
        l->xsdt = align16(l->rsdt + sizeof(AcpiHeader) + 2 * 4);
        l->fadt = align16(l->xsdt + sizeof(AcpiHeader) + 2 * 8);
        l->madt = align16(l->fadt + FADT_SIZE);
        l->dsdt = align16(l->madt + madt_size(cfg));
        l->dsdt_len = sizeof(AcpiHeader) + aml;
        l->end = l->dsdt + l->dsdt_len;
        return 0;
}

size_t x86_acpi_size(const X86AcpiConfig *cfg) {
        Layout l;
        if (layout(cfg, &l) < 0)
                return 0;
        return l.end;
}

static void header(void *at, const char sig[4], size_t len, uint8_t revision) {
        AcpiHeader h = {
                .length = (uint32_t) len,
                .revision = revision,
                .oem_revision = 1,
                .creator_revision = 1,
        };
        memcpy(h.signature, sig, 4);
        memcpy(h.oem_id, "KVMFLT", 6);
        memcpy(h.oem_table_id, "KVMFLEET", 8);
        memcpy(h.creator_id, "KVMF", 4);
        memcpy(at, &h, sizeof h);
}

static void finish(void *table) {
        AcpiHeader *h = table;
        h->checksum = 0;
        h->checksum = checksum_complement(table, h->length);
}

static void put_u8(uint8_t *b, size_t off, uint8_t v) {
        b[off] = v;
}
static void put_u16(uint8_t *b, size_t off, uint16_t v) {
        memcpy(b + off, &v, 2);
}
static void put_u32(uint8_t *b, size_t off, uint32_t v) {
        memcpy(b + off, &v, 4);
}
static void put_u64(uint8_t *b, size_t off, uint64_t v) {
        memcpy(b + off, &v, 8);
}

/* Generic Address Structure: space (1 = system I/O), bit width, bit offset, access size (1 = byte). */
static void put_gas_io8(uint8_t *b, size_t off, uint16_t port) {
        put_u8(b, off, 1);
        put_u8(b, off + 1, 8);
        put_u8(b, off + 2, 0);
        put_u8(b, off + 3, 1);
        put_u64(b, off + 4, port);
}

static void write_fadt(uint8_t *t, uint64_t dsdt_gpa, bool hw_reduced) {
        header(t, "FACP", FADT_SIZE, 6);
        if (!hw_reduced)
                put_u16(t, 46, 9);
        put_u32(t, 40, (uint32_t) dsdt_gpa);                    /* DSDT */
        put_u16(t, 109, (1u << 0) | (1u << 1));                 /* IA-PC boot arch: legacy devices, 8042 */
        put_u32(t, 112, (hw_reduced ? ACPI_FADT_HW_REDUCED : 0) | ACPI_FADT_RESET_REG_SUP);
        put_gas_io8(t, 116, I8042_COMMAND_PORT);                /* RESET_REG */
        put_u8(t, 128, I8042_CMD_RESET);                        /* RESET_VALUE */
        put_u8(t, 131, 5);                                      /* FADT minor version: ACPI 6.5 */
        put_u64(t, 140, dsdt_gpa);                              /* X_DSDT */
        memcpy(t + 268, "KVMFLEET", 8);                         /* hypervisor vendor identity */
        finish(t);
}

static void write_madt(uint8_t *t, const X86AcpiConfig *cfg) {
        size_t off = MADT_FIXED_SIZE;
        uint8_t ioapic_id = (uint8_t) cfg->n_cpus;

        header(t, "APIC", madt_size(cfg), 5);
        put_u32(t, 36, LAPIC_ADDR);
        put_u32(t, 40, cfg->pcat_compat ? 1 : 0);
        for (unsigned i = 0; i < cfg->n_cpus; i++, off += MADT_LOCAL_APIC_SIZE) {
                put_u8(t, off, ACPI_MADT_TYPE_LOCAL_APIC);
                put_u8(t, off + 1, MADT_LOCAL_APIC_SIZE);
                put_u8(t, off + 2, (uint8_t) i); /* ACPI processor UID */
                put_u8(t, off + 3, (uint8_t) i); /* APIC id, as CPUID reports it */
                put_u32(t, off + 4, 1);          /* enabled */
        }
        put_u8(t, off, ACPI_MADT_TYPE_IO_APIC);
        put_u8(t, off + 1, MADT_IO_APIC_SIZE);
        put_u8(t, off + 2, ioapic_id);
        put_u32(t, off + 4, IOAPIC_ADDR);
        put_u32(t, off + 8, 0); /* GSI base */
        off += MADT_IO_APIC_SIZE;
        if (cfg->irq0_gsi != 0) {
                put_u8(t, off, ACPI_MADT_TYPE_INTERRUPT_OVERRIDE);
                put_u8(t, off + 1, MADT_OVERRIDE_SIZE);
                put_u8(t, off + 2, 0); /* ISA */
                put_u8(t, off + 3, 0); /* IRQ 0 */
                put_u32(t, off + 4, cfg->irq0_gsi);
                put_u16(t, off + 8, 0); /* conforms to the bus: edge, active high */
                off += MADT_OVERRIDE_SIZE;
        }
        put_u8(t, off, ACPI_MADT_TYPE_LOCAL_APIC_NMI);
        put_u8(t, off + 1, MADT_NMI_SIZE);
        put_u8(t, off + 2, 0xff); /* all processors */
        put_u16(t, off + 3, 0);
        put_u8(t, off + 5, 1); /* LINT1 */
        finish(t);
}

int x86_acpi_build(const X86AcpiConfig *cfg, uint64_t gpa, void *buf, size_t size, size_t *ret_size) {
        uint8_t *b = buf;
        Layout l;
        int r;

        if (cfg->n_cpus == 0 || cfg->n_cpus > X86_ACPI_MAX_CPUS || cfg->irq0_gsi >= 24)
                return -EINVAL;
        r = layout(cfg, &l);
        if (r < 0)
                return r;
        if (gpa % 16 != 0 || gpa + l.end > UINT32_MAX)
                return -EINVAL;
        if (size < l.end)
                return -ENOSPC;
        memset(b, 0, l.end);

        AcpiRsdp rsdp = {
                .revision = 2,
                .rsdt_address = (uint32_t) (gpa + l.rsdt),
                .length = sizeof rsdp,
                .xsdt_address = gpa + l.xsdt,
        };
        memcpy(rsdp.signature, "RSD PTR ", 8);
        memcpy(rsdp.oem_id, "KVMFLT", 6);
        rsdp.checksum = checksum_complement(&rsdp, 20);
        rsdp.extended_checksum = checksum_complement(&rsdp, sizeof rsdp);
        memcpy(b, &rsdp, sizeof rsdp);

        header(b + l.rsdt, "RSDT", sizeof(AcpiHeader) + 2 * 4, 1);
        put_u32(b + l.rsdt, 36, (uint32_t) (gpa + l.fadt));
        put_u32(b + l.rsdt, 40, (uint32_t) (gpa + l.madt));
        finish(b + l.rsdt);

        header(b + l.xsdt, "XSDT", sizeof(AcpiHeader) + 2 * 8, 1);
        put_u64(b + l.xsdt, 36, gpa + l.fadt);
        put_u64(b + l.xsdt, 44, gpa + l.madt);
        finish(b + l.xsdt);

        write_fadt(b + l.fadt, gpa + l.dsdt, cfg->hw_reduced);
        write_madt(b + l.madt, cfg);

        header(b + l.dsdt, "DSDT", l.dsdt_len, 2);
        dsdt_body(b + l.dsdt + sizeof(AcpiHeader), l.dsdt_len - sizeof(AcpiHeader), &r);
        if (r < 0)
                return r;
        finish(b + l.dsdt);

        *ret_size = l.end;
        return 0;
}
