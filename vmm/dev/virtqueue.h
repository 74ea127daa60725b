/* SPDX-License-Identifier: MIT */
/* A split virtqueue (virtio 1.x, "2.7 Split Virtqueues") as the device side sees it. Pure: it touches
 * guest memory only through the translate callback, so unit tests can use a plain buffer, and every
 * address the driver gives (ring areas, descriptor buffers, indirect tables) is translated and
 * bounds-checked before use. A malformed queue (a buffer outside RAM, a descriptor loop, a chain
 * longer than the queue, an indirect table of bad length or nested, an avail index that runs more
 * than the queue size ahead) makes virtqueue_pop() return -EINVAL or -EFAULT; the transport then
 * sets DEVICE_NEEDS_RESET. Nothing outside the translated ranges is ever read or written.
 *
 * Not thread-safe: one thread (the device's I/O thread, under the transport lock) uses a queue, and
 * the guest memory table must not change meanwhile (GuestMemory's read lock). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX 29

#define VIRTQ_MAX_SIZE 1024     /* largest queue size a device may offer (power of two) */
#define VIRTQ_MAX_SEGMENTS 1024 /* descriptors in one chain, indirect ones included */

/* Host address of [gpa, gpa + len) or NULL when that range is not wholly guest RAM. */
typedef void *(*VirtqTranslateFn)(void *opaque, uint64_t gpa, uint64_t len);

typedef struct Virtqueue {
        /* Set by the driver through the transport: */
        uint16_t size;          /* power of two, <= VIRTQ_MAX_SIZE */
        uint64_t desc_gpa;      /* 16 * size bytes, 16-byte aligned */
        uint64_t avail_gpa;     /* 6 + 2 * size bytes, 2-byte aligned */
        uint64_t used_gpa;      /* 6 + 8 * size bytes, 4-byte aligned */
        bool event_idx;         /* VIRTIO_RING_F_EVENT_IDX negotiated */
        bool indirect;          /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
        /* Device state: */
        uint16_t last_avail_idx; /* next avail entry to take */
        uint16_t used_idx;       /* the used ring's idx as last written */
        uint16_t signalled_used; /* used_idx at the last interrupt (EVENT_IDX) */
        bool signalled_used_valid;
        VirtqTranslateFn translate;
        void *opaque;
} Virtqueue;

/* One request: a descriptor chain split into what the driver wrote (out, device-readable) and what
 * the device may write (in), in chain order. iov_base are host pointers, valid while the caller holds
 * the guest memory read lock. */
typedef struct VirtqElement {
        uint16_t head; /* descriptor index to give back with virtqueue_push() */
        unsigned n_out, n_in;
        uint64_t out_len, in_len; /* total bytes */
        struct iovec out[VIRTQ_MAX_SEGMENTS];
        struct iovec in[VIRTQ_MAX_SEGMENTS];
} VirtqElement;

/* Resets the device state (indices) and sets the ring geometry; call when the driver enables the
 * queue. -EINVAL when size is not a power of two in 1..VIRTQ_MAX_SIZE or an area is misaligned. */
int virtqueue_setup(Virtqueue *vq, uint16_t size, uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa,
                    VirtqTranslateFn translate, void *opaque);

/* Takes the next available chain into *ret: 1 when one was taken, 0 when the ring is empty,
 * -EFAULT when a ring or buffer lies outside guest memory, -EINVAL for a malformed chain or avail
 * index. *ret is only meaningful on 1. After an error the queue is broken until reset. */
int virtqueue_pop(Virtqueue *vq, VirtqElement *ret);

/* Puts head back on the used ring with len bytes written into its in buffers. -EFAULT when the used
 * ring is not in guest memory. */
int virtqueue_push(Virtqueue *vq, uint16_t head, uint32_t len);

/* Whether the driver wants an interrupt for what was pushed since the last one (the avail ring's
 * NO_INTERRUPT flag, or used_event with EVENT_IDX). Records the interrupt as sent when true. */
bool virtqueue_should_notify(Virtqueue *vq);

/* Sets or clears the used ring's NO_NOTIFY flag (without EVENT_IDX) or writes avail_event (with it),
 * so the driver skips kicks while the device is busy. Optional. */
void virtqueue_set_notification(Virtqueue *vq, bool enable);

/* Copies up to len bytes out of / into an iovec array, starting skip bytes in; returns bytes copied. */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf, size_t len);
