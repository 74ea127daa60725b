/* SPDX-License-Identifier: MIT */
/* PCI bus 0 of the VM: configuration mechanism #1 (address register at port 0xcf8, data at
 * 0xcfc-0xcff, any width and offset), a host bridge at 00:00.0, devices in slots 1..31 with one
 * function each, 256 bytes of configuration space per function with a writable-bits mask, 32-bit
 * memory BARs that the VMM assigns from the MMIO window [PCI_MMIO_WINDOW_START, PCI_MMIO_WINDOW_END)
 * (the x86 PCI hole below the IOAPIC), BAR sizing (write all ones, read back the size mask), the
 * command register's memory-enable bit, and the capability list. Absent functions read all ones.
 *
 * Locking: the bus has one mutex around configuration space and the address register. Device
 * callbacks run with it held (config_written, bar_mapped) or without it (bar_access); a device must
 * not call back into the bus from them. Lock order: bus, then the device's own lock. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

#define PCI_CONFIG_ADDRESS_PORT 0xcf8
#define PCI_CONFIG_DATA_PORT 0xcfc
#define PCI_MMIO_WINDOW_START 0xc0000000ULL
#define PCI_MMIO_WINDOW_END 0xfec00000ULL
#define PCI_SLOTS 32
#define PCI_NUM_BARS 6
#define PCI_CONFIG_SIZE 256

/* Configuration space offsets and bits (PCI Local Bus 3.0, type 0 header). */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS 0x06
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_REVISION_ID 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_HEADER_TYPE 0x0e
#define PCI_BASE_ADDRESS_0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d
#define PCI_CAP_ID_MSIX 0x11
#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAPS_START 0x40

#define PCI_CLASS_BRIDGE_HOST 0x060000
#define PCI_HOST_BRIDGE_VENDOR 0x8086
#define PCI_HOST_BRIDGE_DEVICE 0x0d57

typedef struct PciBus PciBus;
typedef struct PciDevice PciDevice;

typedef struct PciDeviceOps {
        /* A guest access to [offset, offset + len) of BAR bar while it is mapped (len 1, 2, 4 or 8;
         * data in guest byte order, the device fills it on reads). Called on a vCPU thread without
         * the bus lock. */
        void (*bar_access)(PciDevice *d, unsigned bar, uint64_t offset, bool is_write, uint8_t *data, unsigned len);
        /* The guest wrote [offset, offset + len) of configuration space (already stored, masked). */
        void (*config_written)(PciDevice *d, unsigned offset, unsigned len);
        /* BAR bar now decodes at addr (mapped) or not at all (moved away, or memory decoding off):
         * for ioeventfds and anything else bound to the guest address. */
        void (*bar_mapped)(PciDevice *d, unsigned bar, uint64_t addr, bool mapped);
} PciDeviceOps;

struct PciDevice {
        uint8_t config[PCI_CONFIG_SIZE];
        uint8_t wmask[PCI_CONFIG_SIZE]; /* bits the guest may change */
        uint64_t bar_size[PCI_NUM_BARS]; /* 0: no BAR */
        bool bar_mapped[PCI_NUM_BARS];
        uint64_t bar_mapped_addr[PCI_NUM_BARS];
        uint8_t last_cap; /* offset of the last capability, 0 when none */
        uint8_t next_cap_offset;
        unsigned slot;
        PciBus *bus;
        const PciDeviceOps *ops;
        void *userdata;
};

/* Sets up the header of a type 0 function (no INTx pin: devices interrupt with MSI-X only). */
void pci_device_init(PciDevice *d, uint16_t vendor, uint16_t device, uint32_t class_code, uint8_t revision,
                     uint16_t subsystem_vendor, uint16_t subsystem_id, const PciDeviceOps *ops, void *userdata);
/* Declares BAR bar as a 32-bit non-prefetchable memory BAR of size bytes (a power of two >= 16). */
int pci_device_add_bar(PciDevice *d, unsigned bar, uint64_t size);
/* Appends a capability: cap[0] is its id, cap[1] (next pointer) is filled in; len >= 2, 4-byte
 * aligned placement. *ret_offset gets its offset in configuration space. -ENOSPC when full. */
int pci_device_add_capability(PciDevice *d, const void *cap, uint8_t len, uint8_t *ret_offset);
/* The BAR's current guest address (as programmed, whether mapped or not). */
uint64_t pci_device_bar_address(const PciDevice *d, unsigned bar);

static inline uint16_t pci_config_read16(const PciDevice *d, unsigned off) {
        return (uint16_t) (d->config[off] | (d->config[off + 1] << 8));
}
static inline uint32_t pci_config_read32(const PciDevice *d, unsigned off) {
        return (uint32_t) d->config[off] | ((uint32_t) d->config[off + 1] << 8) | ((uint32_t) d->config[off + 2] << 16) |
               ((uint32_t) d->config[off + 3] << 24);
}
void pci_config_set16(PciDevice *d, unsigned off, uint16_t v);
void pci_config_set32(PciDevice *d, unsigned off, uint32_t v);

/* A bus with the host bridge at slot 0. */
int pci_bus_new(PciBus **ret);
PciBus *pci_bus_free(PciBus *bus);
DEFINE_TRIVIAL_CLEANUP_FUNC(PciBus *, pci_bus_free);
/* Puts d in the next free slot (1, 2, ...) and assigns its BARs from the MMIO window, naturally
 * aligned; memory decoding stays off until the guest enables it. -ENOSPC when slots or the window
 * run out. d must outlive the bus or be removed with pci_bus_remove_device(). */
int pci_bus_add_device(PciBus *bus, PciDevice *d);
void pci_bus_remove_device(PciBus *bus, PciDevice *d);

/* Port I/O: true when port is 0xcf8-0xcff (handled), false otherwise. */
bool pci_bus_port_io(PciBus *bus, uint16_t port, bool is_write, uint8_t *data, unsigned len);
/* MMIO: true when gpa lies in a mapped BAR (handled by its device), false otherwise. */
bool pci_bus_mmio(PciBus *bus, uint64_t gpa, bool is_write, uint8_t *data, unsigned len);
/* "00:SS.0" of a device on the bus. */
void pci_device_bdf(const PciDevice *d, char ret[8]);
