/* SPDX-License-Identifier: MIT */
#include "dev/virtio-pci.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dev/msix.h"
#include "json-util.h"
#include "kvm.h"
#include "log.h"
#include "placement.h"

/* BAR 0: the virtio structures; BAR 1: MSI-X. */
#define VIRTIO_BAR 0
#define VIRTIO_BAR_SIZE 0x4000
#define COMMON_OFFSET 0x0000
#define COMMON_SIZE 0x38
#define ISR_OFFSET 0x1000
#define DEVICE_OFFSET 0x2000
#define NOTIFY_OFFSET 0x3000
#define NOTIFY_MULTIPLIER 4
#define MSIX_BAR 1
#define MSIX_BAR_SIZE 0x1000
#define MSIX_TABLE_OFFSET 0x000
#define MSIX_PBA_OFFSET 0x800

#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4

/* struct virtio_pci_common_cfg */
#define CC_DFSELECT 0x00
#define CC_DF 0x04
#define CC_GFSELECT 0x08
#define CC_GF 0x0c
#define CC_MSIX 0x10
#define CC_NUMQ 0x12
#define CC_STATUS 0x14
#define CC_CFGGENERATION 0x15
#define CC_Q_SELECT 0x16
#define CC_Q_SIZE 0x18
#define CC_Q_MSIX 0x1a
#define CC_Q_ENABLE 0x1c
#define CC_Q_NOFF 0x1e
#define CC_Q_DESCLO 0x20
#define CC_Q_DESCHI 0x24
#define CC_Q_AVAILLO 0x28
#define CC_Q_AVAILHI 0x2c
#define CC_Q_USEDLO 0x30
#define CC_Q_USEDHI 0x34

#define ISR_QUEUE 1
#define ISR_CONFIG 2

typedef struct VirtioPciQueue {
        uint16_t size;
        uint16_t msix_vector;
        bool enabled;
        uint64_t desc, avail, used;
        Virtqueue vq;
        int kick_fd;
        bool bound;       /* KVM_IOEVENTFD registered */
        uint64_t bound_addr;
} VirtioPciQueue;

struct VirtioPci {
        pthread_mutex_t lock;
        PciDevice pci;
        Msix msix;
        IrqMsiVector vectors[VIRTIO_PCI_MAX_QUEUES + 1];
        unsigned n_vectors;
        const VirtioDeviceOps *ops;
        void *dev;
        VirtioPciEnv env;
        bool on_bus;
        unsigned ioeventfd_len;

        uint32_t device_feature_select, driver_feature_select;
        uint64_t offered, driver_features;
        uint16_t msix_config;
        uint16_t queue_select;
        uint8_t status; /* read without the lock by virtio_pci_device_status() */
        uint8_t config_generation;
        uint8_t isr;
        VirtioPciQueue queues[VIRTIO_PCI_MAX_QUEUES];

        pthread_t thread;
        bool thread_started;
        int stop_fd, epoll_fd;
        uint64_t requests, errors;
        uint64_t notify_exits; /* kicks that came as MMIO exits instead of through an ioeventfd */
        char last_error[160];
};

/* ---- MSI-X router: KVM GSI routes and irqfds ---- */

static int route_vector(void *opaque, unsigned vector, uint64_t addr, uint32_t data) {
        VirtioPci *t = opaque;
        return irq_msi_vector_route(&t->vectors[vector], addr, data);
}

static int signal_vector(void *opaque, unsigned vector) {
        VirtioPci *t = opaque;
        return irq_msi_vector_signal(&t->vectors[vector]);
}

/* ---- helpers for devices ---- */

Virtqueue *virtio_pci_queue(VirtioPci *t, unsigned q) {
        return q < t->ops->n_queues ? &t->queues[q].vq : NULL;
}

uint64_t virtio_pci_negotiated_features(VirtioPci *t) {
        return t->driver_features;
}

void virtio_pci_notify_queue(VirtioPci *t, unsigned q) {
        if (q >= t->ops->n_queues || !virtqueue_should_notify(&t->queues[q].vq))
                return;
        t->isr |= ISR_QUEUE;
        (void) msix_notify(&t->msix, t->queues[q].msix_vector);
}

void virtio_pci_notify_config(VirtioPci *t) {
        t->isr |= ISR_CONFIG;
        t->config_generation++;
        (void) msix_notify(&t->msix, t->msix_config);
}

int virtio_pci_device_error(VirtioPci *t, int err, const char *fmt, ...) {
        char bdf[8];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->last_error, sizeof t->last_error, fmt, ap);
        va_end(ap);
        pci_device_bdf(&t->pci, bdf);
        log_warning_errno(err, "%s %s: %s: %m; device needs reset", t->ops->type, bdf, t->last_error);
        __atomic_store_n(&t->status, (uint8_t) (t->status | VIRTIO_STATUS_DEVICE_NEEDS_RESET), __ATOMIC_RELAXED);
        t->isr |= ISR_CONFIG;
        (void) msix_notify(&t->msix, t->msix_config);
        return err;
}

void virtio_pci_count_request(VirtioPci *t, bool error) {
        __atomic_add_fetch(&t->requests, 1, __ATOMIC_RELAXED);
        if (error)
                __atomic_add_fetch(&t->errors, 1, __ATOMIC_RELAXED);
}

uint8_t virtio_pci_device_status(VirtioPci *t) {
        return __atomic_load_n(&t->status, __ATOMIC_RELAXED);
}

/* ---- guest memory for the queues ---- */

static void *translate(void *opaque, uint64_t gpa, uint64_t len) {
        VirtioPci *t = opaque;
        return guest_memory_gpa_to_hva(t->env.mem, gpa, len);
}

/* ---- reset and status ---- */

static void reset_locked(VirtioPci *t) {
        __atomic_store_n(&t->status, 0, __ATOMIC_RELAXED);
        t->device_feature_select = t->driver_feature_select = 0;
        t->driver_features = 0;
        t->msix_config = MSIX_NO_VECTOR;
        t->queue_select = 0;
        t->isr = 0;
        for (unsigned q = 0; q < t->ops->n_queues; q++) {
                VirtioPciQueue *vq = &t->queues[q];
                vq->size = t->ops->max_queue_size;
                vq->msix_vector = MSIX_NO_VECTOR;
                vq->enabled = false;
                vq->desc = vq->avail = vq->used = 0;
                memset(&vq->vq, 0, sizeof vq->vq);
        }
        if (t->ops->reset)
                t->ops->reset(t, t->dev);
}

void virtio_pci_reset(VirtioPci *t) {
        pthread_mutex_lock(&t->lock);
        reset_locked(t);
        pthread_mutex_unlock(&t->lock);
}

static void kick(VirtioPci *t, unsigned q) {
        uint64_t one = 1;
        if (q < t->ops->n_queues)
                (void) !write(t->queues[q].kick_fd, &one, sizeof one);
}

static void status_write_locked(VirtioPci *t, uint8_t v) {
        uint8_t old = t->status;
        if (v == 0) {
                reset_locked(t);
                return;
        }
        if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
                /* FEATURES_OK sticks only for a subset of what was offered that includes VERSION_1 */
                if ((t->driver_features & ~t->offered) || !(t->driver_features & (1ULL << VIRTIO_F_VERSION_1)))
                        v &= (uint8_t) ~VIRTIO_STATUS_FEATURES_OK;
        }
        v |= old & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
        __atomic_store_n(&t->status, v, __ATOMIC_RELAXED);
        if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
                if (!(v & VIRTIO_STATUS_FEATURES_OK)) {
                        virtio_pci_device_error(t, -EINVAL, "DRIVER_OK without FEATURES_OK");
                        return;
                }
                int r = t->ops->activate ? t->ops->activate(t, t->dev, t->driver_features) : 0;
                if (r < 0) {
                        virtio_pci_device_error(t, r, "activation failed");
                        return;
                }
                /* A driver may queue buffers and kick before DRIVER_OK (Linux's hwrng does while
                 * probing); those kicks were dropped, so look at every enabled queue once now. */
                for (unsigned q = 0; q < t->ops->n_queues; q++)
                        if (t->queues[q].enabled)
                                kick(t, q);
        }
}

static bool queue_ready_locked(VirtioPci *t, unsigned q) {
        return q < t->ops->n_queues && t->queues[q].enabled && (t->status & VIRTIO_STATUS_DRIVER_OK) &&
               !(t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

static void queue_enable_locked(VirtioPci *t, VirtioPciQueue *vq) {
        if (vq->enabled)
                return;
        if (vq->size > t->ops->max_queue_size) {
                virtio_pci_device_error(t, -EINVAL, "queue size %u above the maximum %u", vq->size, t->ops->max_queue_size);
                return;
        }
        vq->vq.event_idx = t->driver_features & (1ULL << VIRTIO_RING_F_EVENT_IDX);
        vq->vq.indirect = t->driver_features & (1ULL << VIRTIO_RING_F_INDIRECT_DESC);
        int r = virtqueue_setup(&vq->vq, vq->size, vq->desc, vq->avail, vq->used, translate, t);
        if (r < 0) {
                virtio_pci_device_error(t, r, "queue %u: size %u or ring addresses invalid", (unsigned) (vq - t->queues),
                                        vq->size);
                return;
        }
        vq->enabled = true;
}

/* ---- the common configuration ---- */

static uint64_t common_read_locked(VirtioPci *t, unsigned off) {
        VirtioPciQueue *q = t->queue_select < t->ops->n_queues ? &t->queues[t->queue_select] : NULL;
        switch (off) {
        case CC_DFSELECT:
                return t->device_feature_select;
        case CC_DF:
                return t->device_feature_select < 2 ? (uint32_t) (t->offered >> (32 * t->device_feature_select)) : 0;
        case CC_GFSELECT:
                return t->driver_feature_select;
        case CC_GF:
                return t->driver_feature_select < 2 ? (uint32_t) (t->driver_features >> (32 * t->driver_feature_select)) : 0;
        case CC_MSIX:
                return t->msix_config;
        case CC_NUMQ:
                return t->ops->n_queues;
        case CC_STATUS:
                return t->status;
        case CC_CFGGENERATION:
                return t->config_generation;
        case CC_Q_SELECT:
                return t->queue_select;
        case CC_Q_SIZE:
                return q ? q->size : 0;
        case CC_Q_MSIX:
                return q ? q->msix_vector : MSIX_NO_VECTOR;
        case CC_Q_ENABLE:
                return q ? q->enabled : 0;
        case CC_Q_NOFF:
                return t->queue_select;
        case CC_Q_DESCLO:
                return q ? (uint32_t) q->desc : 0;
        case CC_Q_DESCHI:
                return q ? (uint32_t) (q->desc >> 32) : 0;
        case CC_Q_AVAILLO:
                return q ? (uint32_t) q->avail : 0;
        case CC_Q_AVAILHI:
                return q ? (uint32_t) (q->avail >> 32) : 0;
        case CC_Q_USEDLO:
                return q ? (uint32_t) q->used : 0;
        case CC_Q_USEDHI:
                return q ? (uint32_t) (q->used >> 32) : 0;
        default:
                return 0;
        }
}

static void set_half(uint64_t *field, bool high, uint32_t v) {
        if (high)
                *field = (*field & 0xffffffffULL) | ((uint64_t) v << 32);
        else
                *field = (*field & ~0xffffffffULL) | v;
}

static void common_write_locked(VirtioPci *t, unsigned off, uint64_t v, unsigned len) {
        VirtioPciQueue *q = t->queue_select < t->ops->n_queues ? &t->queues[t->queue_select] : NULL;
        bool queue_writable = q && !q->enabled;

        if (len == 8 && off >= CC_Q_DESCLO && off <= CC_Q_USEDLO && off % 8 == 0) {
                common_write_locked(t, off, (uint32_t) v, 4);
                common_write_locked(t, off + 4, (uint32_t) (v >> 32), 4);
                return;
        }
        switch (off) {
        case CC_DFSELECT:
                t->device_feature_select = (uint32_t) v;
                break;
        case CC_GFSELECT:
                t->driver_feature_select = (uint32_t) v;
                break;
        case CC_GF:
                if (t->driver_feature_select < 2 && !(t->status & VIRTIO_STATUS_FEATURES_OK)) {
                        unsigned shift = 32 * t->driver_feature_select;
                        t->driver_features = (t->driver_features & ~(0xffffffffULL << shift)) | ((uint64_t) (uint32_t) v << shift);
                }
                break;
        case CC_MSIX:
                t->msix_config = (uint16_t) v < t->n_vectors ? (uint16_t) v : MSIX_NO_VECTOR;
                break;
        case CC_STATUS:
                status_write_locked(t, (uint8_t) v);
                break;
        case CC_Q_SELECT:
                t->queue_select = (uint16_t) v;
                break;
        case CC_Q_SIZE:
                if (queue_writable)
                        q->size = (uint16_t) v;
                break;
        case CC_Q_MSIX:
                if (q)
                        q->msix_vector = (uint16_t) v < t->n_vectors ? (uint16_t) v : MSIX_NO_VECTOR;
                break;
        case CC_Q_ENABLE:
                if (q && v == 1)
                        queue_enable_locked(t, q);
                break;
        case CC_Q_DESCLO:
        case CC_Q_DESCHI:
                if (queue_writable)
                        set_half(&q->desc, off == CC_Q_DESCHI, (uint32_t) v);
                break;
        case CC_Q_AVAILLO:
        case CC_Q_AVAILHI:
                if (queue_writable)
                        set_half(&q->avail, off == CC_Q_AVAILHI, (uint32_t) v);
                break;
        case CC_Q_USEDLO:
        case CC_Q_USEDHI:
                if (queue_writable)
                        set_half(&q->used, off == CC_Q_USEDHI, (uint32_t) v);
                break;
        default: /* read-only fields and reserved space */
                break;
        }
}

/* The field of the common configuration that byte off belongs to: its start and size. */
static unsigned common_field_of(unsigned off, unsigned *ret_size) {
        static const struct {
                uint8_t off, size;
        } fields[] = {
                { CC_DFSELECT, 4 }, { CC_DF, 4 },      { CC_GFSELECT, 4 },      { CC_GF, 4 },
                { CC_MSIX, 2 },     { CC_NUMQ, 2 },    { CC_STATUS, 1 },        { CC_CFGGENERATION, 1 },
                { CC_Q_SELECT, 2 }, { CC_Q_SIZE, 2 },  { CC_Q_MSIX, 2 },        { CC_Q_ENABLE, 2 },
                { CC_Q_NOFF, 2 },   { CC_Q_DESCLO, 4 }, { CC_Q_DESCHI, 4 },     { CC_Q_AVAILLO, 4 },
                { CC_Q_AVAILHI, 4 }, { CC_Q_USEDLO, 4 }, { CC_Q_USEDHI, 4 },
        };
        for (unsigned i = 0; i < ELEMENTSOF(fields); i++)
                if (off >= fields[i].off && off < fields[i].off + fields[i].size) {
                        *ret_size = fields[i].size;
                        return fields[i].off;
                }
        *ret_size = 1;
        return off;
}

static void common_access_locked(VirtioPci *t, unsigned off, bool is_write, uint8_t *data, unsigned len) {
        if (is_write) {
                uint64_t v = 0;
                memcpy(&v, data, MIN(len, 8u));
                common_write_locked(t, off, v, len);
                return;
        }
        /* reads of any width: assembled from the fields the bytes belong to */
        for (unsigned i = 0; i < len;) {
                unsigned at = off + i, size, field = common_field_of(at, &size);
                uint64_t v = at < COMMON_SIZE ? common_read_locked(t, field) : 0;
                unsigned k = MIN(size - (at - field), len - i);
                for (unsigned b = 0; b < k; b++)
                        data[i + b] = (uint8_t) (v >> (8 * (at - field + b)));
                i += k;
        }
}

/* ---- BAR accesses ---- */


static void virtio_bar_access(PciDevice *d, unsigned bar, uint64_t offset, bool is_write, uint8_t *data, unsigned len) {
        VirtioPci *t = d->userdata;
        pthread_mutex_lock(&t->lock);
        if (bar == MSIX_BAR) {
                if (offset < MSIX_PBA_OFFSET)
                        msix_table_access(&t->msix, offset - MSIX_TABLE_OFFSET, is_write, data, len);
                else
                        msix_pba_access(&t->msix, offset - MSIX_PBA_OFFSET, is_write, data, len);
        } else if (offset < COMMON_OFFSET + COMMON_SIZE) {
                common_access_locked(t, (unsigned) offset, is_write, data, len);
        } else if (offset >= ISR_OFFSET && offset < ISR_OFFSET + 4) {
                if (!is_write) {
                        memset(data, 0, len);
                        data[0] = t->isr; /* reading clears it */
                        t->isr = 0;
                }
        } else if (offset >= DEVICE_OFFSET && offset - DEVICE_OFFSET + len <= t->ops->config_size) {
                if (is_write) {
                        if (t->ops->config_write)
                                t->ops->config_write(t, t->dev, (uint32_t) (offset - DEVICE_OFFSET), data, len);
                } else if (t->ops->config_read)
                        t->ops->config_read(t, t->dev, (uint32_t) (offset - DEVICE_OFFSET), data, len);
                else
                        memset(data, 0, len);
        } else if (offset >= NOTIFY_OFFSET && offset < NOTIFY_OFFSET + (uint64_t) NOTIFY_MULTIPLIER * t->ops->n_queues) {
                /* a kick KVM did not catch with the ioeventfd (not bound yet): same path */
                if (is_write) {
                        t->notify_exits++;
                        kick(t, (unsigned) ((offset - NOTIFY_OFFSET) / NOTIFY_MULTIPLIER));
                }
                else
                        memset(data, 0, len);
        } else if (!is_write)
                memset(data, 0, len);
        pthread_mutex_unlock(&t->lock);
}

static void virtio_config_written(PciDevice *d, unsigned offset, unsigned len) {
        VirtioPci *t = d->userdata;
        pthread_mutex_lock(&t->lock);
        msix_config_written(&t->msix, d);
        pthread_mutex_unlock(&t->lock);
}

static int ioeventfd(VirtioPci *t, VirtioPciQueue *q, uint64_t addr, bool assign) {
        struct kvm_ioeventfd io = {
                .addr = addr,
                .len = t->ioeventfd_len,
                .fd = q->kick_fd,
                .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
        };
        return kvm_ioctl(t->env.vm_fd, KVM_IOEVENTFD, &io);
}

static void unbind_locked(VirtioPci *t) {
        for (unsigned q = 0; q < t->ops->n_queues; q++) {
                VirtioPciQueue *vq = &t->queues[q];
                if (vq->bound)
                        (void) ioeventfd(t, vq, vq->bound_addr, false);
                vq->bound = false;
        }
}

static void virtio_bar_mapped(PciDevice *d, unsigned bar, uint64_t addr, bool mapped) {
        VirtioPci *t = d->userdata;
        if (bar != VIRTIO_BAR || t->env.vm_fd < 0)
                return;
        pthread_mutex_lock(&t->lock);
        unbind_locked(t);
        for (unsigned q = 0; mapped && q < t->ops->n_queues; q++) {
                VirtioPciQueue *vq = &t->queues[q];
                uint64_t at = addr + NOTIFY_OFFSET + (uint64_t) NOTIFY_MULTIPLIER * q;
                /* without the ioeventfd the kick still works through the MMIO exit */
                if (ioeventfd(t, vq, at, true) >= 0) {
                        vq->bound = true;
                        vq->bound_addr = at;
                }
        }
        pthread_mutex_unlock(&t->lock);
}

static const PciDeviceOps virtio_pci_device_ops = {
        .bar_access = virtio_bar_access,
        .config_written = virtio_config_written,
        .bar_mapped = virtio_bar_mapped,
};

/* ---- the I/O thread ---- */

/* epoll data: a queue's kick eventfd is the queue index; a watched device fd sets this bit. */
#define WATCHED_FD 0x80000000u

int virtio_pci_watch_fd(VirtioPci *t, int fd, unsigned q) {
        if (q >= t->ops->n_queues)
                return -EINVAL;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u32 = WATCHED_FD | q };
        return epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void *io_thread(void *userdata) {
        VirtioPci *t = userdata;
        char name[16];
        snprintf(name, sizeof name, "virtio-%02x", t->pci.slot);
        pthread_setname_np(pthread_self(), name);

        for (;;) {
                struct epoll_event ev[VIRTIO_PCI_MAX_QUEUES + 1];
                int n = epoll_wait(t->epoll_fd, ev, (int) ELEMENTSOF(ev), -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                for (int i = 0; i < n; i++) {
                        uint64_t value;
                        unsigned q = ev[i].data.u32;
                        if (q == UINT32_MAX)
                                return NULL;
                        if (q & WATCHED_FD)
                                q &= ~WATCHED_FD;
                        else if (read(t->queues[q].kick_fd, &value, sizeof value) < 0)
                                continue;
                        pthread_mutex_lock(&t->lock);
                        if (queue_ready_locked(t, q) && t->ops->queue_notify) {
                                guest_memory_read_lock(t->env.mem);
                                t->ops->queue_notify(t, t->dev, q);
                                guest_memory_read_unlock(t->env.mem);
                        }
                        pthread_mutex_unlock(&t->lock);
                }
        }
        return NULL;
}

/* ---- construction ---- */

static int add_virtio_cap(PciDevice *d, uint8_t type, uint32_t offset, uint32_t length, const uint32_t *multiplier) {
        uint8_t cap[20] = { PCI_CAP_ID_VNDR, 0, multiplier ? 20 : 16, type, VIRTIO_BAR };
        memcpy(cap + 8, &offset, 4);
        memcpy(cap + 12, &length, 4);
        if (multiplier)
                memcpy(cap + 16, multiplier, 4);
        return pci_device_add_capability(d, cap, cap[2], NULL);
}

int virtio_pci_new(const VirtioPciEnv *env, const VirtioDeviceOps *ops, void *dev, VirtioPci **ret) {
        VirtioPci *t;
        int r;

        if (ops->n_queues == 0 || ops->n_queues > VIRTIO_PCI_MAX_QUEUES || ops->config_size > 0x1000 ||
            ops->max_queue_size == 0 || ops->max_queue_size > VIRTQ_MAX_SIZE ||
            (ops->max_queue_size & (ops->max_queue_size - 1))) {
                if (ops->free)
                        ops->free(dev);
                return -EINVAL;
        }
        t = calloc(1, sizeof *t);
        if (!t) {
                if (ops->free)
                        ops->free(dev);
                return -ENOMEM;
        }
        pthread_mutex_init(&t->lock, NULL);
        t->ops = ops;
        t->dev = dev;
        t->env = *env;
        t->stop_fd = t->epoll_fd = -1;
        for (unsigned q = 0; q < VIRTIO_PCI_MAX_QUEUES; q++)
                t->queues[q].kick_fd = -1;
        for (unsigned v = 0; v < ELEMENTSOF(t->vectors); v++)
                t->vectors[v].eventfd = -1;
        t->offered = ops->features | (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |
                     (1ULL << VIRTIO_RING_F_EVENT_IDX);
        t->ioeventfd_len = env->vm_fd >= 0 && kvm_check_extension(env->vm_fd, KVM_CAP_IOEVENTFD_ANY_LENGTH) ? 0 : 2;

        pci_device_init(&t->pci, VIRTIO_PCI_VENDOR, (uint16_t) (VIRTIO_PCI_DEVICE_BASE + ops->device_id),
                        ops->device_id == VIRTIO_ID_BLOCK ? 0x018000 : ops->device_id == VIRTIO_ID_NET ? 0x020000 : 0xff0000,
                        1, VIRTIO_PCI_VENDOR, ops->device_id, &virtio_pci_device_ops, t);
        r = pci_device_add_bar(&t->pci, VIRTIO_BAR, VIRTIO_BAR_SIZE);
        if (r >= 0)
                r = pci_device_add_bar(&t->pci, MSIX_BAR, MSIX_BAR_SIZE);
        t->n_vectors = ops->n_queues + 1u;
        MsixRouter router = { .set_route = route_vector, .signal = signal_vector, .opaque = t };
        if (r >= 0)
                r = msix_init(&t->msix, &t->pci, t->n_vectors, MSIX_BAR, MSIX_TABLE_OFFSET, MSIX_PBA_OFFSET, &router);
        uint32_t multiplier = NOTIFY_MULTIPLIER;
        if (r >= 0)
                r = add_virtio_cap(&t->pci, VIRTIO_PCI_CAP_COMMON_CFG, COMMON_OFFSET, COMMON_SIZE, NULL);
        if (r >= 0)
                r = add_virtio_cap(&t->pci, VIRTIO_PCI_CAP_NOTIFY_CFG, NOTIFY_OFFSET, NOTIFY_MULTIPLIER * ops->n_queues,
                                   &multiplier);
        if (r >= 0)
                r = add_virtio_cap(&t->pci, VIRTIO_PCI_CAP_ISR_CFG, ISR_OFFSET, 4, NULL);
        if (r >= 0 && ops->config_size)
                r = add_virtio_cap(&t->pci, VIRTIO_PCI_CAP_DEVICE_CFG, DEVICE_OFFSET, ops->config_size, NULL);
        if (r < 0)
                goto fail;

        for (unsigned v = 0; v < t->n_vectors; v++) {
                r = irq_msi_vector_init(&t->vectors[v], env->irq);
                if (r < 0)
                        goto fail;
        }
        t->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        t->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (t->epoll_fd < 0 || t->stop_fd < 0) {
                r = -errno;
                goto fail;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = UINT32_MAX };
        if (epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, t->stop_fd, &ev) < 0) {
                r = -errno;
                goto fail;
        }
        for (unsigned q = 0; q < ops->n_queues; q++) {
                t->queues[q].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                ev = (struct epoll_event){ .events = EPOLLIN, .data.u32 = q };
                if (t->queues[q].kick_fd < 0 || epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, t->queues[q].kick_fd, &ev) < 0) {
                        r = -errno;
                        goto fail;
                }
        }
        reset_locked(t);
        r = pci_bus_add_device(env->bus, &t->pci);
        if (r < 0)
                goto fail;
        t->on_bus = true;
        /* the I/O thread takes no signals: the main thread reads them from a signalfd */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        /* on the guest CPUs when the agent places threads: its work is the guest's I/O */
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        r = placement_guest_attr(&attr);
        if (r >= 0)
                r = -pthread_create(&t->thread, &attr, io_thread, t);
        pthread_attr_destroy(&attr);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                goto fail;
        t->thread_started = true;
        *ret = t;
        return 0;
fail:
        virtio_pci_free(t);
        return r;
}

VirtioPci *virtio_pci_free(VirtioPci *t) {
        if (!t)
                return NULL;
        if (t->thread_started) {
                uint64_t one = 1;
                (void) !write(t->stop_fd, &one, sizeof one);
                pthread_join(t->thread, NULL);
        }
        if (t->on_bus)
                pci_bus_remove_device(t->env.bus, &t->pci);
        unbind_locked(t);
        for (unsigned v = 0; v < ELEMENTSOF(t->vectors); v++)
                irq_msi_vector_done(&t->vectors[v]);
        for (unsigned q = 0; q < VIRTIO_PCI_MAX_QUEUES; q++)
                safe_close(t->queues[q].kick_fd);
        safe_close(t->stop_fd);
        safe_close(t->epoll_fd);
        if (t->ops->free)
                t->ops->free(t->dev);
        pthread_mutex_destroy(&t->lock);
        free(t);
        return NULL;
}

int virtio_pci_status_json(VirtioPci *t, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        char bdf[8];
        int r = 0;
        if (!o)
                return -ENOMEM;
        pci_device_bdf(&t->pci, bdf);
        pthread_mutex_lock(&t->lock);
        r |= json_add_string(o, "bdf", bdf);
        r |= json_add_string(o, "type", t->ops->type);
        r |= json_add_uint(o, "status", t->status);
        r |= json_add_uint(o, "features", t->driver_features);
        r |= json_add_uint(o, "requests", __atomic_load_n(&t->requests, __ATOMIC_RELAXED));
        r |= json_add_uint(o, "errors", __atomic_load_n(&t->errors, __ATOMIC_RELAXED));
        r |= json_add_uint(o, "interrupts", t->msix.delivered);
        r |= json_add_uint(o, "notify_exits", t->notify_exits);
        if (t->last_error[0])
                r |= json_add_string(o, "last_error", t->last_error);
        if (t->ops->status_json)
                r |= t->ops->status_json(t, t->dev, o);
        pthread_mutex_unlock(&t->lock);
        if (r < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}
