/* SPDX-License-Identifier: MIT */
/* PCI bus 0 through ports 0xcf8/0xcfc, BARs and their mapping, the capability list, and MSI-X with
 * a fake router that records routes and deliveries. */
#include <errno.h>
#include <string.h>

#include "dev/msix.h"
#include "dev/pci.h"
#include "test.h"

static PciBus *bus;

static void cfg_select(unsigned slot, unsigned func, unsigned bus_nr, unsigned reg) {
        uint32_t a = 0x80000000u | (bus_nr << 16) | (slot << 11) | (func << 8) | (reg & 0xfc);
        CHECK(pci_bus_port_io(bus, 0xcf8, true, (uint8_t *) &a, 4));
}

static uint32_t cfg_read(unsigned slot, unsigned reg, unsigned len) {
        uint32_t v = 0;
        cfg_select(slot, 0, 0, reg);
        CHECK(pci_bus_port_io(bus, (uint16_t) (0xcfc + (reg & 3)), false, (uint8_t *) &v, len));
        return v;
}

static void cfg_write(unsigned slot, unsigned reg, uint32_t v, unsigned len) {
        cfg_select(slot, 0, 0, reg);
        CHECK(pci_bus_port_io(bus, (uint16_t) (0xcfc + (reg & 3)), true, (uint8_t *) &v, len));
}

/* ---- a test device that records what the bus tells it ---- */

typedef struct Recorder {
        unsigned accesses;
        unsigned last_bar;
        uint64_t last_offset;
        unsigned mapped_calls;
        bool mapped;
        uint64_t mapped_addr;
        unsigned config_writes;
        Msix *msix;
} Recorder;

static void rec_bar_access(PciDevice *d, unsigned bar, uint64_t offset, bool is_write, uint8_t *data, unsigned len) {
        Recorder *r = d->userdata;
        r->accesses++;
        r->last_bar = bar;
        r->last_offset = offset;
        if (r->msix && bar == 1) {
                if (offset < 0x800)
                        msix_table_access(r->msix, offset, is_write, data, len);
                else
                        msix_pba_access(r->msix, offset - 0x800, is_write, data, len);
        } else if (!is_write)
                memset(data, 0x5a, len);
}

static void rec_bar_mapped(PciDevice *d, unsigned bar, uint64_t addr, bool mapped) {
        Recorder *r = d->userdata;
        r->mapped_calls++;
        if (bar == 0) {
                r->mapped = mapped;
                r->mapped_addr = addr;
        }
}

static void rec_config_written(PciDevice *d, unsigned offset, unsigned len) {
        Recorder *r = d->userdata;
        r->config_writes++;
        if (r->msix)
                msix_config_written(r->msix, d);
}

static const PciDeviceOps rec_ops = {
        .bar_access = rec_bar_access,
        .bar_mapped = rec_bar_mapped,
        .config_written = rec_config_written,
};

static PciDevice dev;
static Recorder rec;

static void setup(void) {
        pci_bus_free(bus);
        ASSERT_EQ_INT(pci_bus_new(&bus), 0);
        rec = (Recorder){};
        pci_device_init(&dev, 0x1af4, 0x1042, 0x018000, 1, 0x1af4, 2, &rec_ops, &rec);
        ASSERT_EQ_INT(pci_device_add_bar(&dev, 0, 0x4000), 0);
        ASSERT_EQ_INT(pci_device_add_bar(&dev, 1, 0x1000), 0);
        ASSERT_EQ_INT(pci_bus_add_device(bus, &dev), 0);
}

__attribute__((destructor)) static void bus_cleanup(void) {
        pci_bus_free(bus);
}

TEST(host_bridge_at_every_width) {
        setup();
        CHECK_EQ_U64(cfg_read(0, 0x00, 4), 0x0d578086);
        CHECK_EQ_U64(cfg_read(0, 0x00, 2), 0x8086);
        CHECK_EQ_U64(cfg_read(0, 0x02, 2), 0x0d57);
        CHECK_EQ_U64(cfg_read(0, 0x00, 1), 0x86);
        CHECK_EQ_U64(cfg_read(0, 0x01, 1), 0x80);
        CHECK_EQ_U64(cfg_read(0, 0x02, 1), 0x57);
        CHECK_EQ_U64(cfg_read(0, 0x03, 1), 0x0d);
        CHECK_EQ_U64(cfg_read(0, 0x08, 4) >> 8, 0x060000);
        CHECK_EQ_U64(cfg_read(0, 0x0e, 1), 0);
}

TEST(absent_functions_read_all_ones) {
        uint32_t v = 0;
        setup();
        CHECK_EQ_U64(cfg_read(5, 0x00, 4), 0xffffffffu);
        CHECK_EQ_U64(cfg_read(31, 0x02, 2), 0xffff);
        cfg_select(1, 1, 0, 0); /* function 1 */
        pci_bus_port_io(bus, 0xcfc, false, (uint8_t *) &v, 4);
        CHECK_EQ_U64(v, 0xffffffffu);
        cfg_select(1, 0, 1, 0); /* bus 1 */
        pci_bus_port_io(bus, 0xcfc, false, (uint8_t *) &v, 4);
        CHECK_EQ_U64(v, 0xffffffffu);
        uint32_t a = 0x00000800; /* enable bit clear */
        pci_bus_port_io(bus, 0xcf8, true, (uint8_t *) &a, 4);
        pci_bus_port_io(bus, 0xcfc, false, (uint8_t *) &v, 4);
        CHECK_EQ_U64(v, 0xffffffffu);
        cfg_write(5, 0x04, 0x6, 2); /* writes to nothing are dropped */
        CHECK_EQ_U64(cfg_read(5, 0x04, 2), 0xffff);
}

TEST(address_register_and_other_ports) {
        uint32_t a = 0x80000810, back = 0;
        uint8_t b = 0;
        setup();
        pci_bus_port_io(bus, 0xcf8, true, (uint8_t *) &a, 4);
        pci_bus_port_io(bus, 0xcf8, false, (uint8_t *) &back, 4);
        CHECK_EQ_U64(back, 0x80000810);
        CHECK(pci_bus_port_io(bus, 0xcf9, false, &b, 1));
        CHECK_EQ_INT(b, 0xff);
        CHECK(!pci_bus_port_io(bus, 0xcf7, false, &b, 1));
        CHECK(!pci_bus_port_io(bus, 0xd00, false, &b, 1));
}

TEST(device_header_and_read_only_fields) {
        setup();
        CHECK_EQ_INT(dev.slot, 1);
        CHECK_EQ_U64(cfg_read(1, 0x00, 4), 0x10421af4);
        cfg_write(1, 0x00, 0x12345678, 4);
        CHECK_EQ_U64(cfg_read(1, 0x00, 4), 0x10421af4);
        CHECK_EQ_U64(cfg_read(1, 0x2c, 4), 0x00021af4);
        CHECK_EQ_INT(cfg_read(1, 0x08, 1), 1);
        cfg_write(1, 0x3c, 0x0b, 1); /* interrupt line: writable */
        CHECK_EQ_INT(cfg_read(1, 0x3c, 1), 0x0b);
        CHECK_EQ_INT(cfg_read(1, 0x3d, 1), 0); /* no INTx pin */
        cfg_write(1, 0x0d, 0x40, 1); /* latency timer at byte width */
        CHECK_EQ_INT(cfg_read(1, 0x0c, 4) >> 8 & 0xff, 0x40);
        cfg_write(1, 0x04, 0xffff, 2); /* only memory, master and INTx-disable stick */
        CHECK_EQ_U64(cfg_read(1, 0x04, 2), 0x406);
        CHECK(rec.config_writes >= 4);
}

TEST(bars_assigned_sized_and_mapped) {
        uint8_t data[4];
        setup();
        uint32_t bar0 = cfg_read(1, 0x10, 4), bar1 = cfg_read(1, 0x14, 4);
        CHECK(bar0 >= PCI_MMIO_WINDOW_START && bar0 < PCI_MMIO_WINDOW_END);
        CHECK_EQ_INT(bar0 % 0x4000, 0);
        CHECK_EQ_INT(bar1 % 0x1000, 0);
        CHECK(bar1 >= bar0 + 0x4000 || bar1 + 0x1000 <= bar0);
        CHECK_EQ_U64(cfg_read(1, 0x18, 4), 0); /* no BAR 2 */
        cfg_write(1, 0x18, 0xffffffff, 4);
        CHECK_EQ_U64(cfg_read(1, 0x18, 4), 0);

        /* sizing: all ones reads back the size mask, then the address is restored */
        cfg_write(1, 0x10, 0xffffffff, 4);
        CHECK_EQ_U64(cfg_read(1, 0x10, 4), 0xffffc000);
        CHECK(!rec.mapped);
        cfg_write(1, 0x10, bar0, 4);
        CHECK_EQ_U64(cfg_read(1, 0x10, 4), bar0);

        /* memory decoding off: nothing decodes */
        CHECK(!pci_bus_mmio(bus, bar0 + 8, false, data, 4));
        CHECK_EQ_INT(rec.mapped_calls, 0);
        cfg_write(1, 0x04, PCI_COMMAND_MEMORY, 2);
        CHECK(rec.mapped);
        CHECK_EQ_U64(rec.mapped_addr, bar0);
        CHECK(pci_bus_mmio(bus, bar0 + 8, false, data, 4));
        CHECK_EQ_INT(rec.last_bar, 0);
        CHECK_EQ_U64(rec.last_offset, 8);
        CHECK_EQ_INT(data[0], 0x5a);
        CHECK(pci_bus_mmio(bus, bar1 + 0x10, true, data, 4));
        CHECK_EQ_INT(rec.last_bar, 1);
        CHECK(!pci_bus_mmio(bus, bar0 + 0x3ffe, false, data, 4)); /* straddles the end */

        /* the guest moves BAR 0: unmapped at the old place, mapped at the new */
        unsigned calls = rec.mapped_calls;
        cfg_write(1, 0x10, 0xd0000000, 4);
        CHECK_EQ_INT(rec.mapped_calls, calls + 2);
        CHECK_EQ_U64(rec.mapped_addr, 0xd0000000);
        CHECK(!pci_bus_mmio(bus, bar0 + 8, false, data, 4));
        CHECK(pci_bus_mmio(bus, 0xd0000008, false, data, 4));
        /* a 16-bit write to the upper half of the BAR */
        cfg_write(1, 0x12, 0xd100, 2);
        CHECK_EQ_U64(rec.mapped_addr, 0xd1000000);

        cfg_write(1, 0x04, 0, 2);
        CHECK(!rec.mapped);
        CHECK(!pci_bus_mmio(bus, 0xd1000008, false, data, 4));
}

TEST(bar_sizes_checked_and_window_runs_out) {
        PciDevice big[4];
        setup();
        CHECK_EQ_INT(pci_device_add_bar(&big[0], 6, 4096), -EINVAL);
        CHECK_EQ_INT(pci_device_add_bar(&big[0], 0, 3000), -EINVAL);
        unsigned added = 0;
        for (unsigned i = 0; i < 4; i++) {
                pci_device_init(&big[i], 1, 2, 0, 0, 0, 0, NULL, NULL);
                CHECK_EQ_INT(pci_device_add_bar(&big[i], 0, 1ULL << 30), 0);
                if (pci_bus_add_device(bus, &big[i]) == 0)
                        added++;
        }
        CHECK_EQ_INT(added, 0); /* a 1 GiB BAR does not fit in the window */
        pci_device_init(&big[0], 1, 2, 0, 0, 0, 0, NULL, NULL);
        CHECK_EQ_INT(pci_device_add_bar(&big[0], 0, 1ULL << 28), 0);
        CHECK_EQ_INT(pci_bus_add_device(bus, &big[0]), 0);
        CHECK_EQ_U64(pci_device_bar_address(&big[0], 0), 0xd0000000);
        pci_bus_remove_device(bus, &big[0]);
        CHECK_EQ_U64(cfg_read(big[0].slot, 0, 4), 0xffffffffu);
}

TEST(capability_list_walk) {
        pci_bus_free(bus);
        ASSERT_EQ_INT(pci_bus_new(&bus), 0);
        pci_device_init(&dev, 0x1af4, 0x1044, 0xff0000, 1, 0x1af4, 4, NULL, NULL);
        uint8_t cap_a[16] = { 0x09, 0xee, 16, 1 }, cap_b[20] = { 0x09, 0, 20, 2 }, cap_c[3] = { 0x05, 0, 0 };
        uint8_t off[3];
        CHECK_EQ_INT(pci_device_add_capability(&dev, cap_a, sizeof cap_a, &off[0]), 0);
        CHECK_EQ_INT(pci_device_add_capability(&dev, cap_b, sizeof cap_b, &off[1]), 0);
        CHECK_EQ_INT(pci_device_add_capability(&dev, cap_c, sizeof cap_c, &off[2]), 0);
        ASSERT_EQ_INT(pci_bus_add_device(bus, &dev), 0);
        CHECK(cfg_read(1, 0x06, 2) & PCI_STATUS_CAP_LIST);
        uint8_t p = (uint8_t) cfg_read(1, 0x34, 1);
        CHECK_EQ_INT(p, 0x40);
        unsigned n = 0;
        uint8_t ids[8];
        while (p && n < 8) {
                CHECK_EQ_INT(p % 4, 0);
                CHECK_EQ_INT(p, off[n]);
                ids[n++] = (uint8_t) cfg_read(1, p, 1);
                p = (uint8_t) cfg_read(1, p + 1, 1);
        }
        CHECK_EQ_INT(n, 3);
        CHECK_EQ_INT(ids[0], 0x09);
        CHECK_EQ_INT(ids[2], 0x05);
        CHECK_EQ_INT(cfg_read(1, off[1] + 2, 1), 20);
        cfg_write(1, off[0] + 1, 0, 1); /* the list is read-only */
        CHECK_EQ_INT(cfg_read(1, off[0] + 1, 1), off[1]);
        uint8_t huge[250] = { 0x09 };
        CHECK_EQ_INT(pci_device_add_capability(&dev, huge, sizeof huge, NULL), -ENOSPC);
}

/* ---- MSI-X ---- */

typedef struct FakeRouter {
        unsigned routes, signals;
        uint64_t addr[8];
        uint32_t data[8];
        unsigned signalled[8];
        int fail;
} FakeRouter;

static int fake_route(void *opaque, unsigned vector, uint64_t addr, uint32_t data) {
        FakeRouter *f = opaque;
        if (f->fail)
                return f->fail;
        f->routes++;
        f->addr[vector] = addr;
        f->data[vector] = data;
        return 0;
}

static int fake_signal(void *opaque, unsigned vector) {
        FakeRouter *f = opaque;
        f->signals++;
        f->signalled[vector]++;
        return 0;
}

static Msix msix;
static FakeRouter fr;

static uint64_t msix_setup(void) {
        setup();
        fr = (FakeRouter){};
        MsixRouter router = { fake_route, fake_signal, &fr };
        /* MSI-X is added after the bus assigned the slot: fine, capabilities are plain config bytes */
        CHECK_EQ_INT(msix_init(&msix, &dev, 3, 1, 0, 0x800, &router), 0);
        rec.msix = &msix;
        cfg_write(1, 0x04, PCI_COMMAND_MEMORY, 2);
        return pci_device_bar_address(&dev, 1);
}

static void table_write32(uint64_t bar, unsigned vector, unsigned field, uint32_t v) {
        CHECK(pci_bus_mmio(bus, bar + 16 * vector + field, true, (uint8_t *) &v, 4));
}

static uint32_t mmio_read32(uint64_t gpa) {
        uint32_t v = 0;
        CHECK(pci_bus_mmio(bus, gpa, false, (uint8_t *) &v, 4));
        return v;
}

TEST(msix_capability_layout) {
        msix_setup();
        uint8_t cap = msix.cap_offset;
        CHECK_EQ_INT(cfg_read(1, 0x34, 1), cap);
        CHECK_EQ_INT(cfg_read(1, cap, 1), PCI_CAP_ID_MSIX);
        CHECK_EQ_INT(cfg_read(1, cap + 2, 2), 2); /* table size - 1 */
        CHECK_EQ_U64(cfg_read(1, cap + 4, 4), 0x1); /* BIR 1, offset 0 */
        CHECK_EQ_U64(cfg_read(1, cap + 8, 4), 0x801);
        cfg_write(1, cap + 2, 0x3fff, 2); /* table size is read-only */
        CHECK_EQ_INT(cfg_read(1, cap + 2, 2), 2);
}

TEST(msix_masked_vector_is_pending_until_unmasked) {
        uint64_t bar = msix_setup();
        uint8_t cap = msix.cap_offset;
        CHECK_EQ_U64(mmio_read32(bar + 16 * 1 + 12), 1); /* masked at reset */
        table_write32(bar, 1, 0, 0xfee01000);
        table_write32(bar, 1, 4, 0);
        table_write32(bar, 1, 8, 0x4041);
        CHECK_EQ_INT(fr.routes, 0); /* masked: no route yet */
        CHECK_EQ_U64(mmio_read32(bar + 16 + 8), 0x4041);

        /* MSI-X still disabled: pending */
        CHECK_EQ_INT(msix_notify(&msix, 1), 0);
        CHECK_EQ_U64(mmio_read32(bar + 0x800), 0x2);
        cfg_write(1, cap + 2, PCI_MSIX_FLAGS_ENABLE, 2);
        CHECK(msix.enabled);
        CHECK_EQ_INT(fr.signals, 0); /* the entry is still masked */

        /* unmask: routed and the pending one delivered */
        table_write32(bar, 1, 12, 0);
        CHECK_EQ_INT(fr.routes, 1);
        CHECK_EQ_U64(fr.addr[1], 0xfee01000);
        CHECK_EQ_U64(fr.data[1], 0x4041);
        CHECK_EQ_INT(fr.signalled[1], 1);
        CHECK_EQ_U64(mmio_read32(bar + 0x800), 0);

        /* unmasked: delivered at once; a changed message is re-routed */
        CHECK_EQ_INT(msix_notify(&msix, 1), 1);
        CHECK_EQ_INT(fr.signalled[1], 2);
        table_write32(bar, 1, 8, 0x4042);
        CHECK_EQ_INT(fr.routes, 2);
        CHECK_EQ_U64(fr.data[1], 0x4042);
        table_write32(bar, 1, 8, 0x4042); /* unchanged: no new route */
        CHECK_EQ_INT(fr.routes, 2);

        /* function mask: pending again, delivered when lifted */
        cfg_write(1, cap + 3, (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8, 1);
        CHECK(msix.function_masked);
        CHECK_EQ_INT(msix_notify(&msix, 1), 0);
        CHECK_EQ_U64(mmio_read32(bar + 0x800), 0x2);
        cfg_write(1, cap + 3, PCI_MSIX_FLAGS_ENABLE >> 8, 1);
        CHECK_EQ_INT(fr.signalled[1], 3);
        CHECK_EQ_U64(mmio_read32(bar + 0x800), 0);

        /* vectors out of range and "no vector" are ignored */
        CHECK_EQ_INT(msix_notify(&msix, 3), 0);
        CHECK_EQ_INT(msix_notify(&msix, MSIX_NO_VECTOR), 0);
        CHECK_EQ_U64(mmio_read32(bar + 0x800), 0);
}

TEST(msix_table_bits_and_bounds) {
        uint64_t bar = msix_setup();
        table_write32(bar, 0, 12, 0xfffffffe); /* only the mask bit of vector control is writable */
        CHECK_EQ_U64(mmio_read32(bar + 12), 0);
        table_write32(bar, 0, 12, 0xffffffff);
        CHECK_EQ_U64(mmio_read32(bar + 12), 1);
        uint64_t q = 0x1122334455667788ULL, back = 0;
        CHECK(pci_bus_mmio(bus, bar + 16 * 2, true, (uint8_t *) &q, 8)); /* 64-bit access */
        CHECK(pci_bus_mmio(bus, bar + 16 * 2, false, (uint8_t *) &back, 8));
        CHECK_EQ_U64(back, q);
        CHECK_EQ_U64(mmio_read32(bar + 16 * 3), 0xffffffffu); /* beyond the table */
        uint32_t v = 0xffffffff;
        CHECK(pci_bus_mmio(bus, bar + 0x800, true, (uint8_t *) &v, 4)); /* the PBA is read-only */
        CHECK_EQ_U64(mmio_read32(bar + 0x800), 0);
}

TEST(msix_route_failure_is_counted) {
        uint64_t bar = msix_setup();
        cfg_write(1, msix.cap_offset + 2, PCI_MSIX_FLAGS_ENABLE, 2);
        fr.fail = -ENOSPC;
        table_write32(bar, 0, 12, 0);
        CHECK_EQ_INT(msix.route_errors, 1);
        CHECK_EQ_INT(msix_notify(&msix, 0), -ENOSPC);
        fr.fail = 0;
        CHECK_EQ_INT(msix_notify(&msix, 0), 1);
        msix_reset(&msix, &dev);
        CHECK(!msix.enabled);
        CHECK_EQ_U64(mmio_read32(bar + 12), 1);
}
