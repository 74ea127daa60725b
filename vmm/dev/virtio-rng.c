/* SPDX-License-Identifier: MIT */
#include "dev/virtio-rng.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "json-util.h"

typedef struct VirtioRng {
        VirtqElement elem;
        uint64_t bytes;
} VirtioRng;

static uint32_t fill(const VirtqElement *el) {
        uint32_t total = 0;
        for (unsigned i = 0; i < el->n_in; i++) {
                size_t done = 0;
                while (done < el->in[i].iov_len) {
                        ssize_t k = getrandom((uint8_t *) el->in[i].iov_base + done, el->in[i].iov_len - done, 0);
                        if (k < 0) {
                                if (errno == EINTR)
                                        continue;
                                return total;
                        }
                        done += (size_t) k;
                        total += (uint32_t) k;
                }
        }
        return total;
}

static void rng_queue_notify(VirtioPci *t, void *dev, unsigned q) {
        VirtioRng *rng = dev;
        Virtqueue *vq = virtio_pci_queue(t, q);
        int r;
        while ((r = virtqueue_pop(vq, &rng->elem)) > 0) {
                uint32_t written = fill(&rng->elem);
                rng->bytes += written;
                virtio_pci_count_request(t, written < rng->elem.in_len);
                r = virtqueue_push(vq, rng->elem.head, written);
                if (r < 0)
                        break;
        }
        if (r < 0) {
                virtio_pci_device_error(t, r, "queue %u: malformed descriptor chain or ring outside guest memory", q);
                return;
        }
        virtio_pci_notify_queue(t, q);
}

static int rng_status_json(VirtioPci *t, void *dev, json_object *o) {
        VirtioRng *rng = dev;
        return json_add_uint(o, "bytes", rng->bytes) < 0 ? -ENOMEM : 0;
}

static const VirtioDeviceOps rng_ops = {
        .type = "virtio-rng",
        .device_id = VIRTIO_ID_RNG,
        .n_queues = 1,
        .max_queue_size = 256,
        .queue_notify = rng_queue_notify,
        .status_json = rng_status_json,
        .free = free,
};

int virtio_rng_attach(const VirtioPciEnv *env, VirtioPci **ret) {
        VirtioRng *rng = calloc(1, sizeof *rng);
        if (!rng)
                return -ENOMEM;
        return virtio_pci_new(env, &rng_ops, rng, ret);
}
