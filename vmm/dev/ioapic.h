/* SPDX-License-Identifier: MIT */
/* The userspace IOAPIC of irqchip "split" (KVM_CAP_SPLIT_IRQCHIP: LAPICs in the kernel, IOAPIC and
 * PIC in userspace). What it does: 24 pins with the register-select/window MMIO interface at
 * 0xfec00000, redirection entries mirrored into KVM's GSI routing table as MSI routes (so that KVM
 * knows the level-triggered vectors and exits with KVM_EXIT_IOAPIC_EOI), edge and level pins with
 * remote IRR, re-delivery at EOI while a level pin stays asserted. What it does not: no PIC (an
 * ExtINT guest gets nothing), no lowest-priority arbitration beyond what KVM does for the MSI, no
 * IOAPIC version-0x20 directed EOI register. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "irq.h"

#define IOAPIC_BASE 0xfec00000ULL
#define IOAPIC_SIZE 0x1000ULL
#define IOAPIC_PINS 24

typedef struct Ioapic {
        pthread_mutex_t lock;
        int vm_fd;
        IrqRouting *routing; /* not owned */
        uint32_t ioregsel;
        uint32_t id;
        uint64_t redtbl[IOAPIC_PINS];
        uint32_t level; /* pins asserted */
        uint64_t delivered;
} Ioapic;

/* Sets the pins' routes through routing (shared with the MSI-X vectors). */
int ioapic_init(Ioapic *io, int vm_fd, IrqRouting *routing);

/* The guest-visible registers, for snapshots (fixed-width, saved as is). */
typedef struct IoapicState {
        uint32_t ioregsel;
        uint32_t id;
        uint32_t level;
        uint32_t reserved;
        uint64_t redtbl[IOAPIC_PINS];
} IoapicState;
void ioapic_get_state(Ioapic *io, IoapicState *ret);
/* Loads the registers and mirrors the redirection table into KVM's GSI routes. */
int ioapic_set_state(Ioapic *io, const IoapicState *st);
void ioapic_done(Ioapic *io);
void ioapic_mmio(Ioapic *io, uint64_t offset, bool is_write, uint8_t *data, unsigned len);
void ioapic_set_irq(Ioapic *io, unsigned pin, bool level);
void ioapic_eoi(Ioapic *io, uint8_t vector);
