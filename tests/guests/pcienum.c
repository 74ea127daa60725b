/* Walks PCI bus 0 through ports 0xcf8/0xcfc and prints, per function present:
 *   pci 00:SS.0 VVVV:DDDD class CCCCCC bar0 ADDRESS size SIZE caps ID,ID,...
 * (BAR 0 sized by writing all ones and reading back, then restored), then "pcienum: N functions"
 * and leaves through the debug-exit port with code 0. */
#include "guest.h"
#include "pci.h"

void guest_main(uint64_t vcpu, const uint8_t *boot_params, uint64_t n_vcpus) {
        unsigned found = 0;
        (void) boot_params;
        (void) n_vcpus;
        if (vcpu != 0)
                halt_forever();
        for (unsigned slot = 0; slot < 32; slot++) {
                uint32_t id = pci_read32(slot, 0x00);
                if ((id & 0xffff) == 0xffff)
                        continue;
                found++;
                uint32_t class = pci_read32(slot, 0x08) >> 8;
                uint32_t bar0 = pci_read32(slot, 0x10);
                pci_write32(slot, 0x10, 0xffffffffu);
                uint32_t mask = pci_read32(slot, 0x10);
                pci_write32(slot, 0x10, bar0);
                uint32_t size = mask & ~0xfu ? ~(mask & ~0xfu) + 1 : 0;
                puts_raw("pci 00:");
                put_hexw(slot, 2);
                puts_raw(".0 ");
                put_hexw(id & 0xffff, 4);
                putc_raw(':');
                put_hexw(id >> 16, 4);
                puts_raw(" class ");
                put_hexw(class, 6);
                puts_raw(" bar0 ");
                put_hexw(bar0, 8);
                puts_raw(" size ");
                put_hexw(size, 8);
                puts_raw(" caps ");
                if (pci_read16(slot, 0x06) & 0x10) {
                        unsigned n = 0;
                        for (uint8_t p = pci_read8(slot, 0x34) & 0xfc; p && n < 48; n++) {
                                if (n)
                                        putc_raw(',');
                                put_hexw(pci_read8(slot, p), 2);
                                p = pci_read8(slot, p + 1) & 0xfc;
                        }
                } else
                        puts_raw("-");
                putc_raw('\n');
        }
        /* an absent function and another bus read all ones */
        if (pci_read32(31, 0x00) != 0xffffffffu || (outl(0xcf8, 0x80010000u), inl(0xcfc)) != 0xffffffffu)
                puts_raw("pcienum: absent function did not read all ones\n");
        puts_raw("pcienum: ");
        put_dec(found);
        puts_raw(" functions\n");
        debug_exit(0);
}
