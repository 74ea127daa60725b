/* SPDX-License-Identifier: MIT */
#include "dev/pci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCI_CONFIG_ENABLE 0x80000000u
#define PCI_BAR_MEM_FLAGS_MASK 0xfu
#define FOUR_GIB 0x100000000ULL

struct PciBus {
        pthread_mutex_t lock;
        uint32_t config_address;
        PciDevice host_bridge;
        PciDevice *slots[PCI_SLOTS];
        uint64_t next_mmio;
};

void pci_config_set16(PciDevice *d, unsigned off, uint16_t v) {
        d->config[off] = (uint8_t) v;
        d->config[off + 1] = (uint8_t) (v >> 8);
}

void pci_config_set32(PciDevice *d, unsigned off, uint32_t v) {
        for (unsigned i = 0; i < 4; i++)
                d->config[off + i] = (uint8_t) (v >> (8 * i));
}

static void set_wmask16(PciDevice *d, unsigned off, uint16_t m) {
        d->wmask[off] = (uint8_t) m;
        d->wmask[off + 1] = (uint8_t) (m >> 8);
}

static void set_wmask32(PciDevice *d, unsigned off, uint32_t m) {
        for (unsigned i = 0; i < 4; i++)
                d->wmask[off + i] = (uint8_t) (m >> (8 * i));
}

void pci_device_init(PciDevice *d, uint16_t vendor, uint16_t device, uint32_t class_code, uint8_t revision,
                     uint16_t subsystem_vendor, uint16_t subsystem_id, const PciDeviceOps *ops, void *userdata) {
        memset(d, 0, sizeof *d);
        pci_config_set16(d, PCI_VENDOR_ID, vendor);
        pci_config_set16(d, PCI_DEVICE_ID, device);
        d->config[PCI_REVISION_ID] = revision;
        d->config[PCI_CLASS_PROG] = (uint8_t) class_code;
        d->config[PCI_CLASS_PROG + 1] = (uint8_t) (class_code >> 8);
        d->config[PCI_CLASS_PROG + 2] = (uint8_t) (class_code >> 16);
        d->config[PCI_HEADER_TYPE] = 0;
        pci_config_set16(d, PCI_SUBSYSTEM_VENDOR_ID, subsystem_vendor);
        pci_config_set16(d, PCI_SUBSYSTEM_ID, subsystem_id);
        set_wmask16(d, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
        d->wmask[0x0c] = 0xff; /* cache line size */
        d->wmask[0x0d] = 0xff; /* latency timer */
        d->wmask[PCI_INTERRUPT_LINE] = 0xff;
        d->next_cap_offset = PCI_CAPS_START;
        d->ops = ops;
        d->userdata = userdata;
}

int pci_device_add_bar(PciDevice *d, unsigned bar, uint64_t size) {
        if (bar >= PCI_NUM_BARS || size < 16 || (size & (size - 1)) || size > (1ULL << 31))
                return -EINVAL;
        d->bar_size[bar] = size;
        /* the address bits above the size are writable: all ones reads back as the size mask */
        set_wmask32(d, PCI_BASE_ADDRESS_0 + 4 * bar, (uint32_t) ~(size - 1) & ~PCI_BAR_MEM_FLAGS_MASK);
        return 0;
}

uint64_t pci_device_bar_address(const PciDevice *d, unsigned bar) {
        if (bar >= PCI_NUM_BARS || !d->bar_size[bar])
                return 0;
        return pci_config_read32(d, PCI_BASE_ADDRESS_0 + 4 * bar) & ~(uint64_t) PCI_BAR_MEM_FLAGS_MASK;
}

int pci_device_add_capability(PciDevice *d, const void *cap, uint8_t len, uint8_t *ret_offset) {
        unsigned off = ALIGN_UP((unsigned) d->next_cap_offset, 4u);
        if (len < 2 || off + len > PCI_CONFIG_SIZE)
                return -ENOSPC;
        memcpy(d->config + off, cap, len);
        d->config[off + 1] = 0;
        if (d->last_cap)
                d->config[d->last_cap + 1] = (uint8_t) off;
        else
                d->config[PCI_CAPABILITY_LIST] = (uint8_t) off;
        d->config[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
        d->last_cap = (uint8_t) off;
        d->next_cap_offset = (uint8_t) MIN(off + len, 0xffu);
        if (ret_offset)
                *ret_offset = (uint8_t) off;
        return 0;
}

void pci_device_bdf(const PciDevice *d, char ret[8]) {
        snprintf(ret, 8, "00:%02x.0", d->slot & 0x1f);
}

int pci_bus_new(PciBus **ret) {
        PciBus *bus = calloc(1, sizeof *bus);
        if (!bus)
                return -ENOMEM;
        pthread_mutex_init(&bus->lock, NULL);
        pci_device_init(&bus->host_bridge, PCI_HOST_BRIDGE_VENDOR, PCI_HOST_BRIDGE_DEVICE, PCI_CLASS_BRIDGE_HOST, 0,
                        0, 0, NULL, NULL);
        bus->host_bridge.bus = bus;
        bus->slots[0] = &bus->host_bridge;
        bus->next_mmio = PCI_MMIO_WINDOW_START;
        *ret = bus;
        return 0;
}

PciBus *pci_bus_free(PciBus *bus) {
        if (!bus)
                return NULL;
        pthread_mutex_destroy(&bus->lock);
        free(bus);
        return NULL;
}

int pci_bus_add_device(PciBus *bus, PciDevice *d) {
        int r = -ENOSPC;
        pthread_mutex_lock(&bus->lock);
        unsigned slot;
        for (slot = 1; slot < PCI_SLOTS && bus->slots[slot]; slot++)
                ;
        if (slot == PCI_SLOTS)
                goto out;
        uint64_t next = bus->next_mmio;
        uint64_t addr[PCI_NUM_BARS] = { 0 };
        for (unsigned bar = 0; bar < PCI_NUM_BARS; bar++) {
                if (!d->bar_size[bar])
                        continue;
                addr[bar] = ALIGN_UP(next, d->bar_size[bar]);
                next = addr[bar] + d->bar_size[bar];
                if (next > PCI_MMIO_WINDOW_END)
                        goto out;
        }
        for (unsigned bar = 0; bar < PCI_NUM_BARS; bar++)
                if (d->bar_size[bar])
                        pci_config_set32(d, PCI_BASE_ADDRESS_0 + 4 * bar, (uint32_t) addr[bar]);
        bus->next_mmio = next;
        d->slot = slot;
        d->bus = bus;
        bus->slots[slot] = d;
        r = 0;
out:
        pthread_mutex_unlock(&bus->lock);
        return r;
}

void pci_bus_remove_device(PciBus *bus, PciDevice *d) {
        pthread_mutex_lock(&bus->lock);
        if (d->slot > 0 && d->slot < PCI_SLOTS && bus->slots[d->slot] == d)
                bus->slots[d->slot] = NULL;
        pthread_mutex_unlock(&bus->lock);
}

/* Recomputes where each BAR decodes after a write to the command register or a BAR. */
static void update_mappings_locked(PciDevice *d) {
        bool mem_on = pci_config_read16(d, PCI_COMMAND) & PCI_COMMAND_MEMORY;
        for (unsigned bar = 0; bar < PCI_NUM_BARS; bar++) {
                uint64_t size = d->bar_size[bar];
                if (!size)
                        continue;
                uint64_t addr = pci_device_bar_address(d, bar);
                /* zero and the all-ones sizing pattern (addr + size == 4 GiB) are no place to decode */
                bool mapped = mem_on && addr != 0 && addr + size < FOUR_GIB;
                if (mapped == d->bar_mapped[bar] && (!mapped || addr == d->bar_mapped_addr[bar]))
                        continue;
                if (d->bar_mapped[bar] && d->ops && d->ops->bar_mapped)
                        d->ops->bar_mapped(d, bar, d->bar_mapped_addr[bar], false);
                d->bar_mapped[bar] = mapped;
                d->bar_mapped_addr[bar] = mapped ? addr : 0;
                if (mapped && d->ops && d->ops->bar_mapped)
                        d->ops->bar_mapped(d, bar, addr, true);
        }
}

static void config_write_locked(PciDevice *d, unsigned reg, uint32_t v, unsigned len) {
        for (unsigned i = 0; i < len; i++) {
                uint8_t b = (uint8_t) (v >> (8 * i)), m = d->wmask[reg + i];
                d->config[reg + i] = (uint8_t) ((d->config[reg + i] & ~m) | (b & m));
        }
        if (reg < PCI_BASE_ADDRESS_0 + 4 * PCI_NUM_BARS && reg + len > PCI_COMMAND)
                update_mappings_locked(d);
        if (d->ops && d->ops->config_written)
                d->ops->config_written(d, reg, len);
}

/* The function the address register selects, or NULL (another bus, function or an empty slot). */
static PciDevice *selected_locked(PciBus *bus) {
        uint32_t a = bus->config_address;
        if (!(a & PCI_CONFIG_ENABLE) || ((a >> 16) & 0xff) != 0 || ((a >> 8) & 0x7) != 0)
                return NULL;
        return bus->slots[(a >> 11) & 0x1f];
}

bool pci_bus_port_io(PciBus *bus, uint16_t port, bool is_write, uint8_t *data, unsigned len) {
        if (port < PCI_CONFIG_ADDRESS_PORT || port >= PCI_CONFIG_DATA_PORT + 4)
                return false;
        if (len != 1 && len != 2 && len != 4)
                len = 1;
        pthread_mutex_lock(&bus->lock);
        if (port < PCI_CONFIG_DATA_PORT) {
                /* the address register answers 32-bit accesses only */
                if (port == PCI_CONFIG_ADDRESS_PORT && len == 4) {
                        if (is_write)
                                memcpy(&bus->config_address, data, 4);
                        else
                                memcpy(data, &bus->config_address, 4);
                } else if (!is_write)
                        memset(data, 0xff, len);
                pthread_mutex_unlock(&bus->lock);
                return true;
        }
        unsigned reg = (bus->config_address & 0xfc) + (port - PCI_CONFIG_DATA_PORT);
        PciDevice *d = selected_locked(bus);
        if (reg + len > PCI_CONFIG_SIZE)
                d = NULL;
        if (is_write) {
                uint32_t v = 0;
                memcpy(&v, data, len);
                if (d)
                        config_write_locked(d, reg, v, len);
        } else if (d)
                memcpy(data, d->config + reg, len);
        else
                memset(data, 0xff, len);
        pthread_mutex_unlock(&bus->lock);
        return true;
}

bool pci_bus_mmio(PciBus *bus, uint64_t gpa, bool is_write, uint8_t *data, unsigned len) {
        PciDevice *hit = NULL;
        unsigned hit_bar = 0;
        uint64_t offset = 0;

        pthread_mutex_lock(&bus->lock);
        for (unsigned slot = 1; slot < PCI_SLOTS && !hit; slot++) {
                PciDevice *d = bus->slots[slot];
                if (!d)
                        continue;
                for (unsigned bar = 0; bar < PCI_NUM_BARS; bar++) {
                        if (!d->bar_mapped[bar])
                                continue;
                        uint64_t base = d->bar_mapped_addr[bar], size = d->bar_size[bar];
                        if (gpa >= base && gpa - base < size && len <= size - (gpa - base)) {
                                hit = d;
                                hit_bar = bar;
                                offset = gpa - base;
                                break;
                        }
                }
        }
        pthread_mutex_unlock(&bus->lock);
        if (!hit)
                return false;
        if (hit->ops && hit->ops->bar_access)
                hit->ops->bar_access(hit, hit_bar, offset, is_write, data, len);
        else if (!is_write)
                memset(data, 0xff, len);
        return true;
}
