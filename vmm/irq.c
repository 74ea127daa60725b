/* SPDX-License-Identifier: MIT */
#include "irq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kvm.h"

#define LEGACY_GSIS 24 /* the IOAPIC's pins; GSI 0-15 are also the PIC's */

typedef struct MsiRoute {
        bool set;
        uint64_t addr;
        uint32_t data;
} MsiRoute;

struct IrqRouting {
        pthread_mutex_t lock;
        int vm_fd;
        VmIrqchip irqchip;
        MsiRoute routes[IRQ_ROUTING_MAX_GSI];
        bool allocated[IRQ_ROUTING_MAX_GSI];
};

int irq_routing_new(int vm_fd, VmIrqchip irqchip, IrqRouting **ret) {
        IrqRouting *rt = calloc(1, sizeof *rt);
        if (!rt)
                return -ENOMEM;
        pthread_mutex_init(&rt->lock, NULL);
        rt->vm_fd = vm_fd;
        rt->irqchip = irqchip;
        *ret = rt;
        return 0;
}

IrqRouting *irq_routing_free(IrqRouting *rt) {
        if (!rt)
                return NULL;
        pthread_mutex_destroy(&rt->lock);
        free(rt);
        return NULL;
}

int irq_routing_set_msi(IrqRouting *rt, uint32_t gsi, uint64_t addr, uint32_t data) {
        if (gsi >= IRQ_ROUTING_MAX_GSI)
                return -EINVAL;
        pthread_mutex_lock(&rt->lock);
        rt->routes[gsi] = (MsiRoute){ .set = true, .addr = addr, .data = data };
        pthread_mutex_unlock(&rt->lock);
        return 0;
}

void irq_routing_clear(IrqRouting *rt, uint32_t gsi) {
        if (gsi >= IRQ_ROUTING_MAX_GSI)
                return;
        pthread_mutex_lock(&rt->lock);
        rt->routes[gsi].set = false;
        pthread_mutex_unlock(&rt->lock);
}

static void add_irqchip(struct kvm_irq_routing *t, uint32_t gsi, uint32_t chip, uint32_t pin) {
        struct kvm_irq_routing_entry *e = &t->entries[t->nr++];
        e->gsi = gsi;
        e->type = KVM_IRQ_ROUTING_IRQCHIP;
        e->u.irqchip.irqchip = chip;
        e->u.irqchip.pin = pin;
}

int irq_routing_commit(IrqRouting *rt) {
        size_t max = 2 * LEGACY_GSIS + IRQ_ROUTING_MAX_GSI;
        struct kvm_irq_routing *t = calloc(1, sizeof *t + max * sizeof(struct kvm_irq_routing_entry));
        if (!t)
                return -ENOMEM;
        pthread_mutex_lock(&rt->lock);
        if (rt->irqchip == VM_IRQCHIP_KERNEL) {
                /* What kvm_setup_default_irq_routing() installs; replacing the table must keep it. */
                for (uint32_t gsi = 0; gsi < LEGACY_GSIS; gsi++) {
                        add_irqchip(t, gsi, KVM_IRQCHIP_IOAPIC, gsi);
                        if (gsi < 16)
                                add_irqchip(t, gsi, gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE, gsi % 8);
                }
        }
        for (uint32_t gsi = 0; gsi < IRQ_ROUTING_MAX_GSI; gsi++) {
                const MsiRoute *m = &rt->routes[gsi];
                if (!m->set || (rt->irqchip == VM_IRQCHIP_KERNEL && gsi < LEGACY_GSIS))
                        continue;
                struct kvm_irq_routing_entry *e = &t->entries[t->nr++];
                e->gsi = gsi;
                e->type = KVM_IRQ_ROUTING_MSI;
                e->u.msi.address_lo = (uint32_t) m->addr;
                e->u.msi.address_hi = (uint32_t) (m->addr >> 32);
                e->u.msi.data = m->data;
        }
        int r = __kvm_ioctl(rt->vm_fd, KVM_SET_GSI_ROUTING, t);
        pthread_mutex_unlock(&rt->lock);
        free(t);
        return r < 0 ? r : 0;
}

int irq_routing_alloc_gsi(IrqRouting *rt, uint32_t *ret) {
        int r = -ENOSPC;
        pthread_mutex_lock(&rt->lock);
        for (uint32_t gsi = IRQ_ROUTING_FIRST_MSI_GSI; gsi < IRQ_ROUTING_MAX_GSI; gsi++)
                if (!rt->allocated[gsi]) {
                        rt->allocated[gsi] = true;
                        *ret = gsi;
                        r = 0;
                        break;
                }
        pthread_mutex_unlock(&rt->lock);
        return r;
}

void irq_routing_free_gsi(IrqRouting *rt, uint32_t gsi) {
        if (gsi >= IRQ_ROUTING_MAX_GSI)
                return;
        pthread_mutex_lock(&rt->lock);
        rt->allocated[gsi] = false;
        rt->routes[gsi].set = false;
        pthread_mutex_unlock(&rt->lock);
}

int irq_msi_vector_init(IrqMsiVector *v, IrqRouting *rt) {
        uint32_t gsi;
        int r = irq_routing_alloc_gsi(rt, &gsi);
        if (r < 0)
                return r;
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd < 0) {
                r = -errno;
                irq_routing_free_gsi(rt, gsi);
                return r;
        }
        struct kvm_irqfd irqfd = { .fd = (uint32_t) fd, .gsi = gsi };
        r = kvm_ioctl(rt->vm_fd, KVM_IRQFD, &irqfd);
        if (r < 0) {
                safe_close(fd);
                irq_routing_free_gsi(rt, gsi);
                return r;
        }
        *v = (IrqMsiVector){ .rt = rt, .gsi = gsi, .eventfd = fd };
        return 0;
}

int irq_msi_vector_route(IrqMsiVector *v, uint64_t addr, uint32_t data) {
        int r = irq_routing_set_msi(v->rt, v->gsi, addr, data);
        if (r < 0)
                return r;
        return irq_routing_commit(v->rt);
}

int irq_msi_vector_signal(IrqMsiVector *v) {
        uint64_t one = 1;
        if (write(v->eventfd, &one, sizeof one) < 0)
                return -errno;
        return 0;
}

void irq_msi_vector_done(IrqMsiVector *v) {
        if (!v->rt)
                return;
        struct kvm_irqfd irqfd = { .fd = (uint32_t) v->eventfd, .gsi = v->gsi, .flags = KVM_IRQFD_FLAG_DEASSIGN };
        (void) kvm_ioctl(v->rt->vm_fd, KVM_IRQFD, &irqfd);
        irq_routing_free_gsi(v->rt, v->gsi);
        (void) irq_routing_commit(v->rt);
        v->eventfd = safe_close(v->eventfd);
        v->rt = NULL;
}
