/* Drives the first virtio-blk function (1af4:1042) the way a driver does, by polling: finds the
 * virtio capabilities, negotiates VIRTIO_F_VERSION_1 (FEATURES_OK), sets up queue 0 with 8 entries,
 * reads sector 0, writes "written by vblk" to sector 1, flushes, asks for the serial, and prints:
 *   vblk: slot S capacity N
 *   vblk: read status X data <first 32 bytes of sector 0>
 *   vblk: write status X
 *   vblk: flush status X
 *   vblk: id status X serial <serial>
 *   vblk: pba HHHHHHHH            (hex; MSI-X disabled: the queue's vector is left pending)
 * With "move=1" BAR 0 is moved to 0xe0000000 before anything else ("vblk: bar0 moved to e0000000"),
 * so the queue kicks must reach the device at the new address. With "early=1" the first request is queued and kicked before DRIVER_OK is set (as Linux's hwrng
 * does while probing): the device must serve it once DRIVER_OK comes. With "ring=1" it negotiates VIRTIO_RING_F_INDIRECT_DESC and VIRTIO_RING_F_EVENT_IDX too, sends
 * every request through an indirect table and prints "vblk: avail_event N" (what the device asked
 * for next: 6 after the six requests). With "msix=1" it then programs MSI-X vector 1 to LAPIC vector 0x45 while masked, enables MSI-X
 * and unmasks it: "vblk: msix masked pba X irr 0", then "vblk: msix unmasked pba 00000000 irr 1"
 * (the pending interrupt delivered through KVM at unmask; interrupts stay disabled, so it waits in
 * the LAPIC's IRR). With "evil=1" on the command line it then submits a descriptor outside guest RAM and prints the
 * device status it reads back ("vblk: evil status X"). With "halt=1" it prints "vblk: halting" and
 * halts instead of leaving, the device still bound. Leaves through debug-exit with code 0, or 1
 * when a step failed ("vblk: FAIL ..."). */
#include "guest.h"
#include "pci.h"

#define VIRTIO_F_VERSION_1_HI 1 /* bit 32 */
#define QSIZE 8

struct desc {
        uint64_t addr;
        uint32_t len;
        uint16_t flags;
        uint16_t next;
};

static struct desc ring_desc[QSIZE] __attribute__((aligned(4096)));
static volatile uint16_t ring_avail[2 + QSIZE + 1] __attribute__((aligned(4096)));
static volatile uint32_t ring_used[1 + 2 * QSIZE + 1] __attribute__((aligned(4096)));
static struct {
        uint32_t type, reserved;
        uint64_t sector;
} req_hdr __attribute__((aligned(16)));
static uint8_t data[512] __attribute__((aligned(512)));
static volatile uint8_t req_status;
static struct desc indirect_table[3] __attribute__((aligned(16)));
static int driver_ok_after_kick; /* "early=1": the first request is kicked before DRIVER_OK */
static int use_ring_features; /* "ring=1": EVENT_IDX and INDIRECT_DESC negotiated, requests indirect */

static uint64_t common, notify, isr_addr, devcfg, pba, msix_table;
static uint8_t msix_cap;
static uint32_t notify_mult;
static uint16_t avail_idx, used_seen;

static uint8_t mmio_r8(uint64_t a) { return *(volatile uint8_t *) a; }
static uint16_t mmio_r16(uint64_t a) { return *(volatile uint16_t *) a; }
static uint32_t mmio_r32(uint64_t a) { return *(volatile uint32_t *) a; }
static void mmio_w8(uint64_t a, uint8_t v) { *(volatile uint8_t *) a = v; }
static void mmio_w16(uint64_t a, uint16_t v) { *(volatile uint16_t *) a = v; }
static void mmio_w32(uint64_t a, uint32_t v) { *(volatile uint32_t *) a = v; }

__attribute__((noreturn)) static void fail(const char *what) {
        puts_raw("vblk: FAIL ");
        puts_raw(what);
        putc_raw('\n');
        debug_exit(1);
}

static void put_status(const char *what, unsigned v) {
        puts_raw("vblk: ");
        puts_raw(what);
        puts_raw(" status ");
        put_dec(v);
}

/* One request of 2 or 3 descriptors; returns the status byte, 0xff on a timeout. With evil set it
 * waits for the device to flag DEVICE_NEEDS_RESET instead and returns the device status. */
static unsigned submit_ex(uint32_t type, uint64_t sector, uint32_t data_len, int data_writable, uint64_t data_addr,
                          int evil) {
        req_hdr.type = type;
        req_hdr.sector = sector;
        req_status = 0xee;
        ring_desc[0] = (struct desc){ (uint64_t) (uintptr_t) &req_hdr, 16, 1, 1 };
        unsigned n = 1;
        if (data_len) {
                ring_desc[1] = (struct desc){ data_addr, data_len, (uint16_t) (1 | (data_writable ? 2 : 0)), 2 };
                n = 2;
        }
        ring_desc[n - 1].next = (uint16_t) n;
        ring_desc[n] = (struct desc){ (uint64_t) (uintptr_t) &req_status, 1, 2, 0 };
        if (use_ring_features) {
                /* the same chain, from an indirect table */
                for (unsigned i = 0; i <= n; i++)
                        indirect_table[i] = ring_desc[i];
                ring_desc[0] = (struct desc){ (uint64_t) (uintptr_t) indirect_table, (uint32_t) (16 * (n + 1)), 4, 0 };
        }
        ring_avail[2 + (avail_idx % QSIZE)] = 0;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        avail_idx++;
        ring_avail[1] = avail_idx;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        mmio_w16(notify, 0); /* queue 0, notify_off 0 */
        if (driver_ok_after_kick) {
                driver_ok_after_kick = 0;
                /* give the device time to see the kick while it is not live yet */
                for (unsigned i = 0; i < 2000; i++)
                        (void) mmio_r8(common + 0x14);
                mmio_w8(common + 0x14, 1 | 2 | 8 | 4);
        }
        for (unsigned long spin = 0; evil && spin < 100000; spin++) {
                uint8_t status = mmio_r8(common + 0x14);
                if (status & 64)
                        return status;
        }
        for (unsigned long spin = 0; !evil && spin < 2000000; spin++) {
                uint16_t used = (uint16_t) (ring_used[0] >> 16); /* flags, then idx */
                if (used != used_seen) {
                        used_seen = used;
                        return req_status;
                }
                cpu_relax();
        }
        return 0xff;
}

static unsigned submit(uint32_t type, uint64_t sector, uint32_t data_len, int data_writable, uint64_t data_addr) {
        return submit_ex(type, sector, data_len, data_writable, data_addr, 0);
}

void guest_main(uint64_t vcpu, const uint8_t *boot_params, uint64_t n_vcpus) {
        (void) n_vcpus;
        if (vcpu != 0)
                halt_forever();
        unsigned slot;
        for (slot = 1; slot < 32; slot++)
                if (pci_read32(slot, 0) == 0x10421af4u)
                        break;
        if (slot == 32)
                fail("no virtio-blk function");
        uint64_t bar[2] = { pci_read32(slot, 0x10) & ~0xfu, pci_read32(slot, 0x14) & ~0xfu };
        pci_write16(slot, 0x04, 0x6); /* memory decoding, bus master */
        if (cmdline_get(boot_params, "move", 0)) {
                /* decode once at the assigned place, then move BAR 0 while decoding is off */
                pci_write16(slot, 0x04, 0x0);
                bar[0] = 0xe0000000u;
                pci_write32(slot, 0x10, (uint32_t) bar[0]);
                pci_write16(slot, 0x04, 0x6);
                puts_raw("vblk: bar0 moved to ");
                put_hexw(pci_read32(slot, 0x10), 8);
                putc_raw('\n');
        }
        for (uint8_t p = pci_read8(slot, 0x34); p; p = pci_read8(slot, p + 1)) {
                uint8_t id = pci_read8(slot, p);
                if (id == 0x11) {
                        uint32_t table_reg = pci_read32(slot, p + 4), pba_reg = pci_read32(slot, p + 8);
                        msix_table = bar[table_reg & 7] + (table_reg & ~7u);
                        pba = bar[pba_reg & 7] + (pba_reg & ~7u);
                        msix_cap = p;
                        continue;
                }
                if (id != 0x09)
                        continue;
                uint8_t type = pci_read8(slot, p + 3), b = pci_read8(slot, p + 4);
                uint64_t at = bar[b & 1] + pci_read32(slot, p + 8);
                if (type == 1)
                        common = at;
                else if (type == 2) {
                        notify = at;
                        notify_mult = pci_read32(slot, p + 16);
                } else if (type == 3)
                        isr_addr = at;
                else if (type == 4)
                        devcfg = at;
        }
        if (!common || !notify || !isr_addr || !devcfg || !pba)
                fail("capabilities missing");

        mmio_w8(common + 0x14, 0); /* reset */
        mmio_w8(common + 0x14, 1 | 2);
        mmio_w32(common + 0x00, 1);
        if (!(mmio_r32(common + 0x04) & VIRTIO_F_VERSION_1_HI))
                fail("VERSION_1 not offered");
        use_ring_features = (int) cmdline_get(boot_params, "ring", 0);
        mmio_w32(common + 0x08, 0);
        mmio_w32(common + 0x0c, use_ring_features ? (1u << 28) | (1u << 29) : 0);
        mmio_w32(common + 0x08, 1);
        mmio_w32(common + 0x0c, VIRTIO_F_VERSION_1_HI);
        mmio_w8(common + 0x14, 1 | 2 | 8);
        if (!(mmio_r8(common + 0x14) & 8))
                fail("FEATURES_OK not accepted");
        mmio_w16(common + 0x10, 0); /* config vector 0 */
        mmio_w16(common + 0x16, 0);
        if (mmio_r16(common + 0x18) < QSIZE)
                fail("queue too small");
        mmio_w16(common + 0x18, QSIZE);
        mmio_w16(common + 0x1a, 1); /* queue vector 1 */
        uint64_t d = (uint64_t) (uintptr_t) ring_desc, a = (uint64_t) (uintptr_t) ring_avail, u = (uint64_t) (uintptr_t) ring_used;
        mmio_w32(common + 0x20, (uint32_t) d);
        mmio_w32(common + 0x24, (uint32_t) (d >> 32));
        mmio_w32(common + 0x28, (uint32_t) a);
        mmio_w32(common + 0x2c, (uint32_t) (a >> 32));
        mmio_w32(common + 0x30, (uint32_t) u);
        mmio_w32(common + 0x34, (uint32_t) (u >> 32));
        notify += (uint64_t) mmio_r16(common + 0x1e) * notify_mult;
        mmio_w16(common + 0x1c, 1);
        driver_ok_after_kick = (int) cmdline_get(boot_params, "early", 0);
        if (!driver_ok_after_kick)
                mmio_w8(common + 0x14, 1 | 2 | 8 | 4);

        uint64_t capacity = mmio_r32(devcfg) | ((uint64_t) mmio_r32(devcfg + 4) << 32);
        puts_raw("vblk: slot ");
        put_dec(slot);
        puts_raw(" capacity ");
        put_dec(capacity);
        putc_raw('\n');

        unsigned st = submit(0, 0, 512, 1, (uint64_t) (uintptr_t) data);
        put_status("read", st);
        puts_raw(" data ");
        for (unsigned i = 0; i < 32 && data[i] >= 0x20 && data[i] < 0x7f; i++)
                putc_raw((char) data[i]);
        putc_raw('\n');

        const char *msg = "written by vblk";
        for (unsigned i = 0; i < 512; i++)
                data[i] = 0;
        for (unsigned i = 0; msg[i]; i++)
                data[i] = (uint8_t) msg[i];
        put_status("write", submit(1, 1, 512, 0, (uint64_t) (uintptr_t) data));
        putc_raw('\n');
        put_status("flush", submit(4, 0, 0, 0, 0));
        putc_raw('\n');
        for (unsigned i = 0; i < 21; i++)
                data[i] = 0;
        st = submit(8, 0, 20, 1, (uint64_t) (uintptr_t) data);
        put_status("id", st);
        puts_raw(" serial ");
        puts_raw((const char *) data);
        putc_raw('\n');
        put_status("beyond-end read", submit(0, capacity, 512, 1, (uint64_t) (uintptr_t) data));
        putc_raw('\n');
        put_status("unknown type", submit(0x55, 0, 0, 0, 0));
        putc_raw('\n');
        if (use_ring_features) {
                puts_raw("vblk: avail_event ");
                put_dec(ring_used[1 + 2 * QSIZE] & 0xffff);
                putc_raw('\n');
        }
        puts_raw("vblk: pba ");
        put_hexw(mmio_r32(pba), 8);
        putc_raw('\n');

        if (cmdline_get(boot_params, "msix", 0)) {
                /* Interrupts stay disabled (IF=0): a delivered MSI shows up in the LAPIC's IRR. */
                const unsigned vector = 0x45;
                volatile uint32_t *apic = (volatile uint32_t *) 0xfee00000UL;
                apic[0xf0 / 4] = 0x1ff; /* software-enable, spurious vector 0xff */
                uint64_t entry = msix_table + 16 * 1;
                mmio_w32(entry + 0, 0xfee00000u); /* destination APIC id 0, physical */
                mmio_w32(entry + 4, 0);
                mmio_w32(entry + 8, vector); /* fixed, edge */
                pci_write16(slot, msix_cap + 2, 0x8000); /* MSI-X enable; vector 1 is still masked */
                puts_raw("vblk: msix masked pba ");
                put_hexw(mmio_r32(pba), 8);
                puts_raw(" irr ");
                put_dec((apic[(0x200 + 0x10 * (vector / 32)) / 4] >> (vector % 32)) & 1);
                putc_raw('\n');
                mmio_w32(entry + 12, 0); /* unmask: the pending vector is delivered now */
                puts_raw("vblk: msix unmasked pba ");
                put_hexw(mmio_r32(pba), 8);
                puts_raw(" irr ");
                unsigned irr = 0;
                for (unsigned spin = 0; spin < 100000 && !irr; spin++)
                        irr = (apic[(0x200 + 0x10 * (vector / 32)) / 4] >> (vector % 32)) & 1;
                put_dec(irr);
                putc_raw('\n');
        }
        if (cmdline_get(boot_params, "evil", 0)) {
                /* a data buffer far outside guest RAM: the device must refuse the whole queue */
                unsigned status = submit_ex(0, 0, 512, 1, 0x7f00000000ULL, 1);
                puts_raw("vblk: evil status ");
                put_dec(status);
                putc_raw('\n');
        }
        if (cmdline_get(boot_params, "halt", 0)) {
                puts_raw("vblk: halting\n");
                halt_forever();
        }
        debug_exit(0);
}
