/* SPDX-License-Identifier: MIT */
/* MSI-X for one PCI function: the capability, the vector table and the pending bit array (PBA),
 * both in a memory BAR. Per-vector mask and the function mask: a vector that fires while masked (or
 * while MSI-X is disabled) sets its PBA bit and is delivered when it is unmasked. Table writes go
 * to the router, which keeps one interrupt route per vector (in the VMM: an MSI entry in KVM's GSI
 * routing table with a KVM_IRQFD eventfd, vmm/irq.h; in unit tests: a fake).
 *
 * Not locked: the owner serializes calls (virtio-pci does it under its device lock). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "dev/pci.h"

#define MSIX_ENTRY_SIZE 16
#define MSIX_VECTORS_MAX 64
#define MSIX_NO_VECTOR 0xffff
#define PCI_MSIX_FLAGS 2 /* message control, from the capability start */
#define PCI_MSIX_FLAGS_ENABLE 0x8000
#define PCI_MSIX_FLAGS_MASKALL 0x4000
#define PCI_MSIX_ENTRY_CTRL_MASKBIT 1

typedef struct MsixRouter {
        /* The vector's message is (addr, data) and it may fire: (re)program its route. */
        int (*set_route)(void *opaque, unsigned vector, uint64_t addr, uint32_t data);
        /* Deliver the vector's message now. */
        int (*signal)(void *opaque, unsigned vector);
        void *opaque;
} MsixRouter;

typedef struct Msix {
        unsigned n_vectors;
        uint8_t table[MSIX_VECTORS_MAX * MSIX_ENTRY_SIZE];
        uint64_t pba; /* bit per vector */
        bool enabled, function_masked;
        uint8_t cap_offset;
        /* The message last given to the router per vector, to skip unchanged updates. */
        uint64_t routed_addr[MSIX_VECTORS_MAX];
        uint32_t routed_data[MSIX_VECTORS_MAX];
        bool routed[MSIX_VECTORS_MAX];
        uint64_t delivered, route_errors;
        MsixRouter router;
} Msix;

/* n_vectors 1..MSIX_VECTORS_MAX, every vector masked; adds the capability to d pointing at BAR bar
 * (table at table_offset, PBA at pba_offset, both 8-byte aligned). */
int msix_init(Msix *m, PciDevice *d, unsigned n_vectors, unsigned bar, uint32_t table_offset, uint32_t pba_offset,
              const MsixRouter *router);
/* Call after the guest wrote configuration space: picks up enable and function mask changes from
 * the capability's message control, delivering what became unmasked and pending. */
void msix_config_written(Msix *m, const PciDevice *d);
/* Guest accesses to the table and PBA (offsets relative to each; any width up to 8). */
void msix_table_access(Msix *m, uint64_t offset, bool is_write, uint8_t *data, unsigned len);
void msix_pba_access(Msix *m, uint64_t offset, bool is_write, uint8_t *data, unsigned len);
/* Fires vector: delivered now, or pending when masked or disabled. MSIX_NO_VECTOR and vectors out
 * of range are ignored. Returns 1 when delivered, 0 when left pending or ignored, -errno when the
 * router failed. */
int msix_notify(Msix *m, unsigned vector);
bool msix_vector_masked(const Msix *m, unsigned vector);
/* Back to power-on: disabled, every vector masked, nothing pending (the routes stay). */
void msix_reset(Msix *m, PciDevice *d);
