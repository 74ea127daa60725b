/* SPDX-License-Identifier: MIT */
#include "dev/msix.h"

#include <errno.h>
#include <string.h>

#define ENTRY_ADDR_LO 0
#define ENTRY_ADDR_HI 4
#define ENTRY_DATA 8
#define ENTRY_CTRL 12

static uint32_t entry_u32(const Msix *m, unsigned vector, unsigned field) {
        uint32_t v;
        memcpy(&v, m->table + vector * MSIX_ENTRY_SIZE + field, 4);
        return v;
}

bool msix_vector_masked(const Msix *m, unsigned vector) {
        if (vector >= m->n_vectors)
                return true;
        return !m->enabled || m->function_masked || (entry_u32(m, vector, ENTRY_CTRL) & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

/* Gives the router the vector's current message when it differs from what the route has. */
static int sync_route(Msix *m, unsigned vector) {
        uint64_t addr = entry_u32(m, vector, ENTRY_ADDR_LO) | ((uint64_t) entry_u32(m, vector, ENTRY_ADDR_HI) << 32);
        uint32_t data = entry_u32(m, vector, ENTRY_DATA);
        if (m->routed[vector] && m->routed_addr[vector] == addr && m->routed_data[vector] == data)
                return 0;
        int r = m->router.set_route ? m->router.set_route(m->router.opaque, vector, addr, data) : 0;
        if (r < 0) {
                m->route_errors++;
                m->routed[vector] = false;
                return r;
        }
        m->routed[vector] = true;
        m->routed_addr[vector] = addr;
        m->routed_data[vector] = data;
        return 0;
}

static int deliver(Msix *m, unsigned vector) {
        int r = sync_route(m, vector);
        if (r < 0)
                return r;
        r = m->router.signal ? m->router.signal(m->router.opaque, vector) : 0;
        if (r < 0)
                return r;
        m->delivered++;
        return 1;
}

/* After something that may have unmasked vectors: route them and deliver what is pending. */
static void unmasked_update(Msix *m, unsigned first, unsigned last) {
        for (unsigned v = first; v <= last && v < m->n_vectors; v++) {
                if (msix_vector_masked(m, v))
                        continue;
                (void) sync_route(m, v);
                if (m->pba & (1ULL << v)) {
                        m->pba &= ~(1ULL << v);
                        (void) deliver(m, v);
                }
        }
}

int msix_init(Msix *m, PciDevice *d, unsigned n_vectors, unsigned bar, uint32_t table_offset, uint32_t pba_offset,
              const MsixRouter *router) {
        if (n_vectors == 0 || n_vectors > MSIX_VECTORS_MAX || bar >= PCI_NUM_BARS || !IS_ALIGNED(table_offset, 8) ||
            !IS_ALIGNED(pba_offset, 8))
                return -EINVAL;
        memset(m, 0, sizeof *m);
        m->n_vectors = n_vectors;
        m->router = *router;
        for (unsigned v = 0; v < n_vectors; v++)
                m->table[v * MSIX_ENTRY_SIZE + ENTRY_CTRL] = PCI_MSIX_ENTRY_CTRL_MASKBIT;
        uint8_t cap[12] = { PCI_CAP_ID_MSIX, 0 };
        uint16_t control = (uint16_t) (n_vectors - 1);
        uint32_t table = table_offset | bar, pba = pba_offset | bar;
        memcpy(cap + 2, &control, 2);
        memcpy(cap + 4, &table, 4);
        memcpy(cap + 8, &pba, 4);
        int r = pci_device_add_capability(d, cap, sizeof cap, &m->cap_offset);
        if (r < 0)
                return r;
        /* enable and function mask are the only writable bits */
        d->wmask[m->cap_offset + PCI_MSIX_FLAGS + 1] = (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8;
        return 0;
}

void msix_config_written(Msix *m, const PciDevice *d) {
        uint16_t control = pci_config_read16(d, m->cap_offset + PCI_MSIX_FLAGS);
        bool enabled = control & PCI_MSIX_FLAGS_ENABLE, masked = control & PCI_MSIX_FLAGS_MASKALL;
        if (enabled == m->enabled && masked == m->function_masked)
                return;
        m->enabled = enabled;
        m->function_masked = masked;
        unmasked_update(m, 0, m->n_vectors - 1);
}

void msix_table_access(Msix *m, uint64_t offset, bool is_write, uint8_t *data, unsigned len) {
        uint64_t size = (uint64_t) m->n_vectors * MSIX_ENTRY_SIZE;
        if (offset >= size || len > size - offset) {
                if (!is_write)
                        memset(data, 0xff, len);
                return;
        }
        if (!is_write) {
                memcpy(data, m->table + offset, len);
                return;
        }
        unsigned first = (unsigned) (offset / MSIX_ENTRY_SIZE), last = (unsigned) ((offset + len - 1) / MSIX_ENTRY_SIZE);
        for (unsigned i = 0; i < len; i++) {
                uint64_t at = offset + i;
                /* of the vector control word only the mask bit is writable */
                if (at % MSIX_ENTRY_SIZE >= ENTRY_CTRL) {
                        if (at % MSIX_ENTRY_SIZE == ENTRY_CTRL)
                                m->table[at] = (uint8_t) ((m->table[at] & ~PCI_MSIX_ENTRY_CTRL_MASKBIT) |
                                                          (data[i] & PCI_MSIX_ENTRY_CTRL_MASKBIT));
                        continue;
                }
                m->table[at] = data[i];
        }
        unmasked_update(m, first, last);
}

void msix_pba_access(Msix *m, uint64_t offset, bool is_write, uint8_t *data, unsigned len) {
        if (is_write) /* read-only */
                return;
        for (unsigned i = 0; i < len; i++) {
                uint64_t byte = offset + i;
                data[i] = byte < 8 ? (uint8_t) (m->pba >> (8 * byte)) : 0;
        }
}

int msix_notify(Msix *m, unsigned vector) {
        if (vector >= m->n_vectors)
                return 0;
        if (msix_vector_masked(m, vector)) {
                m->pba |= 1ULL << vector;
                return 0;
        }
        return deliver(m, vector);
}

void msix_reset(Msix *m, PciDevice *d) {
        uint16_t control = pci_config_read16(d, m->cap_offset + PCI_MSIX_FLAGS);
        pci_config_set16(d, m->cap_offset + PCI_MSIX_FLAGS, control & ~(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL));
        m->enabled = m->function_masked = false;
        m->pba = 0;
        for (unsigned v = 0; v < m->n_vectors; v++) {
                memset(m->table + v * MSIX_ENTRY_SIZE, 0, MSIX_ENTRY_SIZE);
                m->table[v * MSIX_ENTRY_SIZE + ENTRY_CTRL] = PCI_MSIX_ENTRY_CTRL_MASKBIT;
        }
}
