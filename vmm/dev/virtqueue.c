/* SPDX-License-Identifier: MIT */
#include "dev/virtqueue.h"

#include <errno.h>
#include <string.h>

#include "macro.h"

struct virtq_desc {
        uint64_t addr;
        uint32_t len;
        uint16_t flags;
        uint16_t next;
};

/* Ring fields live in guest memory that the driver changes concurrently: read each once. */
#define READ_ONCE(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

static bool is_power_of_two(unsigned v) {
        return v && !(v & (v - 1));
}

int virtqueue_setup(Virtqueue *vq, uint16_t size, uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa,
                    VirtqTranslateFn translate, void *opaque) {
        if (!is_power_of_two(size) || size > VIRTQ_MAX_SIZE)
                return -EINVAL;
        if (!IS_ALIGNED(desc_gpa, 16) || !IS_ALIGNED(avail_gpa, 2) || !IS_ALIGNED(used_gpa, 4))
                return -EINVAL;
        *vq = (Virtqueue){ .size = size, .desc_gpa = desc_gpa, .avail_gpa = avail_gpa, .used_gpa = used_gpa,
                           .event_idx = vq->event_idx, .indirect = vq->indirect,
                           .translate = translate, .opaque = opaque };
        return 0;
}

static uint16_t *avail_ring(Virtqueue *vq) {
        /* flags, idx, ring[size], used_event */
        return vq->translate(vq->opaque, vq->avail_gpa, 6 + 2ULL * vq->size);
}

static uint16_t *used_ring(Virtqueue *vq) {
        /* flags, idx, ring[size] of {id, len}, avail_event */
        return vq->translate(vq->opaque, vq->used_gpa, 6 + 8ULL * vq->size);
}

static int add_buffer(VirtqElement *el, const struct virtq_desc *d, Virtqueue *vq) {
        if (el->n_out + el->n_in >= VIRTQ_MAX_SEGMENTS)
                return -EINVAL;
        void *p = d->len ? vq->translate(vq->opaque, d->addr, d->len) : NULL;
        if (d->len && !p)
                return -EFAULT;
        if (d->flags & VIRTQ_DESC_F_WRITE) {
                el->in[el->n_in++] = (struct iovec){ .iov_base = p, .iov_len = d->len };
                el->in_len += d->len;
        } else {
                /* the spec puts device-readable buffers before device-writable ones */
                if (el->n_in > 0)
                        return -EINVAL;
                el->out[el->n_out++] = (struct iovec){ .iov_base = p, .iov_len = d->len };
                el->out_len += d->len;
        }
        return 0;
}

static int walk_indirect(Virtqueue *vq, const struct virtq_desc *table_desc, VirtqElement *el) {
        if (!vq->indirect || table_desc->len == 0 || table_desc->len % sizeof(struct virtq_desc) != 0 ||
            table_desc->len / sizeof(struct virtq_desc) > VIRTQ_MAX_SEGMENTS)
                return -EINVAL;
        unsigned n = table_desc->len / sizeof(struct virtq_desc);
        const struct virtq_desc *table = vq->translate(vq->opaque, table_desc->addr, table_desc->len);
        if (!table)
                return -EFAULT;
        unsigned i = 0;
        for (unsigned count = 0;; count++) {
                struct virtq_desc d;
                if (count >= n) /* a loop, or a chain longer than the table */
                        return -EINVAL;
                memcpy(&d, &table[i], sizeof d);
                if (d.flags & VIRTQ_DESC_F_INDIRECT) /* nesting is forbidden */
                        return -EINVAL;
                int r = add_buffer(el, &d, vq);
                if (r < 0)
                        return r;
                if (!(d.flags & VIRTQ_DESC_F_NEXT))
                        return 0;
                if (d.next >= n)
                        return -EINVAL;
                i = d.next;
        }
}

int virtqueue_pop(Virtqueue *vq, VirtqElement *ret) {
        uint16_t *avail = avail_ring(vq);
        const struct virtq_desc *desc = vq->translate(vq->opaque, vq->desc_gpa, 16ULL * vq->size);
        if (!avail || !desc)
                return -EFAULT;

        uint16_t avail_idx = READ_ONCE(avail[1]);
        uint16_t pending = (uint16_t) (avail_idx - vq->last_avail_idx);
        if (pending == 0 && vq->event_idx) {
                /* With EVENT_IDX the driver kicks only when avail passes avail_event: ask for the next
                 * one, then look again for what it may have added before it saw the request. */
                uint16_t *used = used_ring(vq);
                if (!used)
                        return -EFAULT;
                WRITE_ONCE(used[2 + 4 * vq->size], vq->last_avail_idx);
                __atomic_thread_fence(__ATOMIC_SEQ_CST);
                avail_idx = READ_ONCE(avail[1]);
                pending = (uint16_t) (avail_idx - vq->last_avail_idx);
        }
        if (pending == 0)
                return 0;
        if (pending > vq->size)
                return -EINVAL;
        /* read the ring entry only after the index that published it */
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        uint16_t head = READ_ONCE(avail[2 + (vq->last_avail_idx & (vq->size - 1))]);
        if (head >= vq->size)
                return -EINVAL;

        ret->head = head;
        ret->n_out = ret->n_in = 0;
        ret->out_len = ret->in_len = 0;
        uint16_t i = head;
        for (unsigned count = 0;; count++) {
                struct virtq_desc d;
                if (count >= vq->size) /* a loop, or longer than the queue */
                        return -EINVAL;
                memcpy(&d, &desc[i], sizeof d);
                int r;
                if (d.flags & VIRTQ_DESC_F_INDIRECT) {
                        /* an indirect descriptor is the whole chain from here: no NEXT alongside it */
                        if (d.flags & VIRTQ_DESC_F_NEXT)
                                return -EINVAL;
                        r = walk_indirect(vq, &d, ret);
                        if (r < 0)
                                return r;
                        break;
                }
                r = add_buffer(ret, &d, vq);
                if (r < 0)
                        return r;
                if (!(d.flags & VIRTQ_DESC_F_NEXT))
                        break;
                if (d.next >= vq->size)
                        return -EINVAL;
                i = d.next;
        }
        vq->last_avail_idx++;
        return 1;
}

int virtqueue_push(Virtqueue *vq, uint16_t head, uint32_t len) {
        uint16_t *used = used_ring(vq);
        if (!used)
                return -EFAULT;
        uint32_t *elem = (uint32_t *) (used + 2) + 2 * (vq->used_idx & (vq->size - 1));
        WRITE_ONCE(elem[0], (uint32_t) head);
        WRITE_ONCE(elem[1], len);
        vq->used_idx++;
        /* the element must be visible before the index that publishes it */
        __atomic_thread_fence(__ATOMIC_RELEASE);
        WRITE_ONCE(used[1], vq->used_idx);
        return 0;
}

bool virtqueue_should_notify(Virtqueue *vq) {
        uint16_t *avail = avail_ring(vq);
        if (!avail)
                return false;
        /* the used idx store must be visible before the driver's flags/used_event are read */
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (!vq->event_idx)
                return !(READ_ONCE(avail[0]) & VIRTQ_AVAIL_F_NO_INTERRUPT);
        uint16_t old = vq->signalled_used, new = vq->used_idx;
        bool valid = vq->signalled_used_valid;
        vq->signalled_used = new;
        vq->signalled_used_valid = true;
        if (!valid)
                return true;
        uint16_t used_event = READ_ONCE(avail[2 + vq->size]);
        /* vring_need_event(): the driver asked to hear when used passes used_event */
        return (uint16_t) (new - used_event - 1) < (uint16_t) (new - old);
}

void virtqueue_set_notification(Virtqueue *vq, bool enable) {
        uint16_t *used = used_ring(vq);
        if (!used)
                return;
        if (vq->event_idx) {
                if (enable)
                        WRITE_ONCE(used[2 + 4 * vq->size], vq->last_avail_idx);
        } else
                WRITE_ONCE(used[0], (uint16_t) (enable ? 0 : VIRTQ_USED_F_NO_NOTIFY));
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len) {
        size_t done = 0;
        for (unsigned i = 0; i < n && done < len; i++) {
                if (skip >= iov[i].iov_len) {
                        skip -= iov[i].iov_len;
                        continue;
                }
                size_t k = MIN(iov[i].iov_len - skip, len - done);
                memcpy((uint8_t *) buf + done, (const uint8_t *) iov[i].iov_base + skip, k);
                done += k;
                skip = 0;
        }
        return done;
}

size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf, size_t len) {
        size_t done = 0;
        for (unsigned i = 0; i < n && done < len; i++) {
                if (skip >= iov[i].iov_len) {
                        skip -= iov[i].iov_len;
                        continue;
                }
                size_t k = MIN(iov[i].iov_len - skip, len - done);
                memcpy((uint8_t *) iov[i].iov_base + skip, (const uint8_t *) buf + done, k);
                done += k;
                skip = 0;
        }
        return done;
}
