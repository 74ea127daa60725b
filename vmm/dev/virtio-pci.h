/* SPDX-License-Identifier: MIT */
/* The virtio-pci modern transport (virtio 1.x, "4.1 Virtio Over PCI Bus") and the interface a
 * virtio device implements on top of it.
 *
 * The PCI function: vendor 0x1af4, device 0x1040 + device id, revision 1, subsystem vendor 0x1af4 and
 * subsystem id = device id. BAR 0 (16 KiB, memory) holds the common configuration (0x0000), the ISR
 * status (0x1000), the device-specific configuration (0x2000) and the notification area (0x3000,
 * notify_off_multiplier 4: queue q is kicked by a write at 0x3000 + 4 * q). BAR 1 (4 KiB) holds the
 * MSI-X table (0x000) and PBA (0x800); vector 0..n_queues are available, the driver picks them with
 * msix_config / queue_msix_vector. VIRTIO_F_VERSION_1 is always offered and must be accepted
 * (FEATURES_OK is refused otherwise), as are VIRTIO_RING_F_INDIRECT_DESC and VIRTIO_RING_F_EVENT_IDX
 * (offered, optional).
 *
 * Queue kicks: an eventfd per queue bound with KVM_IOEVENTFD to the queue's notify address while
 * BAR 0 decodes, so a kick does not exit to the vCPU loop. Each device has one I/O thread that waits
 * on those eventfds and calls ops->queue_notify().
 *
 * Implementing a device (see virtio-rng.c for the smallest one):
 *   static const VirtioDeviceOps my_ops = { .type = "virtio-foo", .device_id = VIRTIO_ID_FOO,
 *           .n_queues = 1, .max_queue_size = 256, .features = 1ULL << VIRTIO_FOO_F_BAR,
 *           .config_size = sizeof(struct virtio_foo_config), .config_read = ..., .queue_notify = ... };
 *   r = virtio_pci_new(&env, &my_ops, my_state, &t);      (virtio_pci_free(t) frees my_state via ops->free)
 * and in queue_notify:
 *   Virtqueue *vq = virtio_pci_queue(t, q);
 *   while ((r = virtqueue_pop(vq, elem)) > 0) { ...serve elem...; virtqueue_push(vq, elem->head, written); }
 *   if (r < 0) return virtio_pci_device_error(t, r, "queue %u: malformed descriptor chain", q);
 *   virtio_pci_notify_queue(t, q);
 * Every callback runs with the transport lock held, so callbacks never race each other, a reset, or
 * a guest access to the common configuration; queue_notify also runs with the guest memory read
 * lock held, so the host pointers in a VirtqElement stay valid until it returns. A callback may block
 * (disk I/O): only this device's I/O thread and guest accesses to this device's registers wait.
 * The helpers below must be called from inside a callback (they expect the lock held). */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "dev/pci.h"
#include "dev/virtqueue.h"
#include "irq.h"
#include "memory.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040
#define VIRTIO_PCI_MAX_QUEUES 16

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4

/* Device status bits */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* Transport feature bits */
#define VIRTIO_F_VERSION_1 32

typedef struct VirtioPci VirtioPci;

typedef struct VirtioDeviceOps {
        const char *type;        /* "virtio-blk", for status */
        uint16_t device_id;      /* VIRTIO_ID_* */
        uint16_t n_queues;       /* 1..VIRTIO_PCI_MAX_QUEUES */
        uint16_t max_queue_size; /* power of two <= VIRTQ_MAX_SIZE */
        uint64_t features;       /* device feature bits offered (transport bits are added) */
        uint32_t config_size;    /* bytes of device-specific configuration, <= 256 */
        /* Device configuration reads and writes; offset + len <= config_size. */
        void (*config_read)(VirtioPci *t, void *dev, uint32_t offset, void *data, uint32_t len);
        void (*config_write)(VirtioPci *t, void *dev, uint32_t offset, const void *data, uint32_t len);
        /* The driver set DRIVER_OK; features is what was negotiated. < 0 refuses (DEVICE_NEEDS_RESET). */
        int (*activate)(VirtioPci *t, void *dev, uint64_t features);
        /* The driver reset the device (status 0) or the VMM did: drop every in-flight request. */
        void (*reset)(VirtioPci *t, void *dev);
        /* The guest kicked queue q (enabled, device active). On the device's I/O thread. */
        void (*queue_notify)(VirtioPci *t, void *dev, unsigned q);
        /* Adds device fields to its status object ("path", ...). */
        int (*status_json)(VirtioPci *t, void *dev, json_object *o);
        /* Frees dev; called by virtio_pci_free() after the I/O thread ended. */
        void (*free)(void *dev);
} VirtioDeviceOps;

/* What a device is attached to. */
typedef struct VirtioPciEnv {
        int vm_fd;
        GuestMemory *mem;
        IrqRouting *irq;
        PciBus *bus;
} VirtioPciEnv;

/* Creates the PCI function in the next free slot, its MSI-X vectors (GSI routes + irqfds) and queue
 * eventfds, and starts the I/O thread. Takes dev (ops->free on failure too). */
int virtio_pci_new(const VirtioPciEnv *env, const VirtioDeviceOps *ops, void *dev, VirtioPci **ret);
/* Stops and joins the I/O thread, unbinds the ioeventfds and irqfds, removes the function from the
 * bus, frees dev. Accepts NULL. */
VirtioPci *virtio_pci_free(VirtioPci *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(VirtioPci *, virtio_pci_free);

/* ---- for devices, from inside a callback ---- */
Virtqueue *virtio_pci_queue(VirtioPci *t, unsigned q);
uint64_t virtio_pci_negotiated_features(VirtioPci *t);
/* Raises queue q's MSI-X vector when the driver wants an interrupt for what was pushed. */
void virtio_pci_notify_queue(VirtioPci *t, unsigned q);
/* Raises the configuration-change vector (after the device configuration changed). */
void virtio_pci_notify_config(VirtioPci *t);
/* The device cannot go on (malformed queue, lost backend): sets DEVICE_NEEDS_RESET, raises the
 * configuration vector, stops serving queues until the driver resets it, records and logs the
 * message. Returns err. */
int virtio_pci_device_error(VirtioPci *t, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Counts one request served, and whether it ended in an error reported to the guest. */
void virtio_pci_count_request(VirtioPci *t, bool error);

/* ---- for the VMM ---- */
/* The device status register (0 while no driver has touched it). Thread-safe. */
uint8_t virtio_pci_device_status(VirtioPci *t);
/* {"bdf", "type", "status", "features", "requests", "errors", "last_error"?, ...device fields}. */
int virtio_pci_status_json(VirtioPci *t, json_object **ret);
/* Resets the device as a write of 0 to device_status would. */
void virtio_pci_reset(VirtioPci *t);
