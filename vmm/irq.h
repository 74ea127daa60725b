/* SPDX-License-Identifier: MIT */
/* The one owner of the VM's GSI routing table. KVM_SET_GSI_ROUTING replaces the whole table, so
 * every user (the userspace IOAPIC of irqchip "split", MSI-X vectors of PCI devices) sets its
 * entries here and irq_routing_commit() installs the union:
 * - irqchip "kernel": KVM's default routes (GSI 0-15 to the PIC master/slave pin and the IOAPIC
 *   pin, GSI 16-23 to the IOAPIC pin, as kvm_setup_default_irq_routing() sets them), plus MSI routes;
 * - irqchip "split": the IOAPIC's pins as MSI routes (GSI = pin, 0-23; KVM scans GSIs below the
 *   reserved pin count for level-triggered vectors), plus MSI routes;
 * MSI routes get GSIs from IRQ_ROUTING_FIRST_MSI_GSI up. Thread-safe. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "macro.h"
#include "spec.h"

#define IRQ_ROUTING_FIRST_MSI_GSI 24
#define IRQ_ROUTING_MAX_GSI 1024

typedef struct IrqRouting IrqRouting;

int irq_routing_new(int vm_fd, VmIrqchip irqchip, IrqRouting **ret);
IrqRouting *irq_routing_free(IrqRouting *rt);
DEFINE_TRIVIAL_CLEANUP_FUNC(IrqRouting *, irq_routing_free);

/* Sets gsi's route to the MSI (addr, data), or removes it; takes effect at the next commit. */
int irq_routing_set_msi(IrqRouting *rt, uint32_t gsi, uint64_t addr, uint32_t data);
void irq_routing_clear(IrqRouting *rt, uint32_t gsi);
/* KVM_SET_GSI_ROUTING with the defaults of the irqchip mode plus every entry set. */
int irq_routing_commit(IrqRouting *rt);
/* A GSI for an MSI route, IRQ_ROUTING_FIRST_MSI_GSI and up; -ENOSPC when none is left. */
int irq_routing_alloc_gsi(IrqRouting *rt, uint32_t *ret);
void irq_routing_free_gsi(IrqRouting *rt, uint32_t gsi);

/* One MSI(-X) vector delivered by KVM: a GSI with an MSI route and an eventfd bound to it with
 * KVM_IRQFD, so that signalling is one write(2) from any thread. */
typedef struct IrqMsiVector {
        IrqRouting *rt;
        uint32_t gsi;
        int eventfd;
} IrqMsiVector;

int irq_msi_vector_init(IrqMsiVector *v, IrqRouting *rt);
/* Routes the vector to (addr, data) and commits. */
int irq_msi_vector_route(IrqMsiVector *v, uint64_t addr, uint32_t data);
int irq_msi_vector_signal(IrqMsiVector *v);
/* Unbinds the eventfd, drops the route (committed) and frees the GSI. */
void irq_msi_vector_done(IrqMsiVector *v);
