/* SPDX-License-Identifier: MIT */
#include "dev/ioapic.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvm.h"
#include "macro.h"

#define RTE_MASKED (1ULL << 16)
#define RTE_LEVEL (1ULL << 15)
#define RTE_REMOTE_IRR (1ULL << 14)
#define RTE_DEST_LOGICAL (1ULL << 11)
#define RTE_RO_BITS (RTE_REMOTE_IRR | (1ULL << 12))

static void msi_of(uint64_t rte, uint32_t *addr, uint32_t *data) {
        uint32_t dest = (uint32_t) (rte >> 56);
        *addr = 0xfee00000u | (dest << 12) | ((rte & RTE_DEST_LOGICAL) ? (1u << 2) : 0);
        *data = (uint32_t) (rte & 0xff) | (uint32_t) (rte & 0x700) | ((rte & RTE_LEVEL) ? (1u << 15) : 0) | (1u << 14);
}

/* Mirrors the redirection table into KVM's GSI routes (through the VM's one routing owner, so the
 * MSI-X routes stay): KVM learns the level-triggered vectors from it. */
static int routes_update_locked(Ioapic *io) {
        for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
                if (io->redtbl[pin] & RTE_MASKED) {
                        irq_routing_clear(io->routing, pin);
                        continue;
                }
                uint32_t addr, data;
                msi_of(io->redtbl[pin], &addr, &data);
                int r = irq_routing_set_msi(io->routing, pin, addr, data);
                if (r < 0)
                        return r;
        }
        return irq_routing_commit(io->routing);
}

static void deliver_locked(Ioapic *io, unsigned pin) {
        uint64_t rte = io->redtbl[pin];
        if (rte & RTE_MASKED)
                return;
        if (rte & RTE_LEVEL) {
                if (rte & RTE_REMOTE_IRR)
                        return;
                io->redtbl[pin] |= RTE_REMOTE_IRR;
        }
        struct kvm_irq_level line = { .irq = pin, .level = 1 };
        if (kvm_ioctl(io->vm_fd, KVM_IRQ_LINE, &line) >= 0)
                io->delivered++;
}

int ioapic_init(Ioapic *io, int vm_fd, IrqRouting *routing) {
        memset(io, 0, sizeof *io);
        pthread_mutex_init(&io->lock, NULL);
        io->vm_fd = vm_fd;
        io->routing = routing;
        for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
                io->redtbl[pin] = RTE_MASKED;
        return routes_update_locked(io);
}

void ioapic_get_state(Ioapic *io, IoapicState *ret) {
        pthread_mutex_lock(&io->lock);
        *ret = (IoapicState){ .ioregsel = io->ioregsel, .id = io->id, .level = io->level };
        memcpy(ret->redtbl, io->redtbl, sizeof ret->redtbl);
        pthread_mutex_unlock(&io->lock);
}

int ioapic_set_state(Ioapic *io, const IoapicState *st) {
        pthread_mutex_lock(&io->lock);
        io->ioregsel = st->ioregsel;
        io->id = st->id & 0xf;
        io->level = st->level;
        memcpy(io->redtbl, st->redtbl, sizeof io->redtbl);
        int r = routes_update_locked(io);
        pthread_mutex_unlock(&io->lock);
        return r;
}

void ioapic_done(Ioapic *io) {
        pthread_mutex_destroy(&io->lock);
}

static uint32_t reg_read_locked(Ioapic *io) {
        uint32_t sel = io->ioregsel & 0xff;
        switch (sel) {
        case 0x00:
                return io->id << 24;
        case 0x01:
                return ((IOAPIC_PINS - 1) << 16) | 0x11;
        case 0x02:
                return io->id << 24;
        default:
                if (sel >= 0x10 && sel < 0x10 + 2 * IOAPIC_PINS) {
                        uint64_t rte = io->redtbl[(sel - 0x10) / 2];
                        return (sel & 1) ? (uint32_t) (rte >> 32) : (uint32_t) rte;
                }
                return 0;
        }
}

static void reg_write_locked(Ioapic *io, uint32_t v) {
        uint32_t sel = io->ioregsel & 0xff;
        if (sel == 0x00) {
                io->id = (v >> 24) & 0xf;
                return;
        }
        if (sel < 0x10 || sel >= 0x10 + 2 * IOAPIC_PINS)
                return;
        unsigned pin = (sel - 0x10) / 2;
        uint64_t old = io->redtbl[pin], rte;
        if (sel & 1)
                rte = (old & 0xffffffffULL) | ((uint64_t) v << 32);
        else
                rte = (old & ~0xffffffffULL & ~RTE_RO_BITS) | (v & ~(uint32_t) RTE_RO_BITS) | (old & RTE_RO_BITS);
        io->redtbl[pin] = rte;
        (void) routes_update_locked(io);
        if ((io->level & (1u << pin)) && (rte & RTE_LEVEL) && !(rte & RTE_MASKED))
                deliver_locked(io, pin);
}

void ioapic_mmio(Ioapic *io, uint64_t offset, bool is_write, uint8_t *data, unsigned len) {
        uint32_t v = 0;
        pthread_mutex_lock(&io->lock);
        if (is_write) {
                memcpy(&v, data, MIN(len, 4u));
                if (offset == 0x00)
                        io->ioregsel = v;
                else if (offset == 0x10)
                        reg_write_locked(io, v);
        } else {
                if (offset == 0x00)
                        v = io->ioregsel;
                else if (offset == 0x10)
                        v = reg_read_locked(io);
                memset(data, 0, len);
                memcpy(data, &v, MIN(len, 4u));
        }
        pthread_mutex_unlock(&io->lock);
}

void ioapic_set_irq(Ioapic *io, unsigned pin, bool level) {
        if (pin >= IOAPIC_PINS)
                return;
        pthread_mutex_lock(&io->lock);
        bool was = io->level & (1u << pin);
        if (level)
                io->level |= 1u << pin;
        else
                io->level &= ~(1u << pin);
        if (level && (!was || (io->redtbl[pin] & RTE_LEVEL)))
                deliver_locked(io, pin);
        pthread_mutex_unlock(&io->lock);
}

void ioapic_eoi(Ioapic *io, uint8_t vector) {
        pthread_mutex_lock(&io->lock);
        for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
                uint64_t rte = io->redtbl[pin];
                if ((rte & 0xff) != vector || !(rte & RTE_LEVEL))
                        continue;
                io->redtbl[pin] &= ~RTE_REMOTE_IRR;
                if (io->level & (1u << pin))
                        deliver_locked(io, pin);
        }
        pthread_mutex_unlock(&io->lock);
}
