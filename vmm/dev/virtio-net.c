/* SPDX-License-Identifier: MIT */
#include "dev/virtio-net.h"

#include <errno.h>
#include <limits.h>
#include <linux/virtio_net.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fd-util.h"
#include "json-util.h"

_Static_assert(sizeof(struct virtio_net_hdr_mrg_rxbuf) == VIRTIO_NET_HDR_SIZE, "virtio 1.x net header is 12 bytes");

struct VirtioNet {
        int tap_fd;
        char *name;
        uint8_t config[8]; /* struct virtio_net_config up to status: mac[6], status */
        VirtqElement elem;
        uint8_t frame[VIRTIO_NET_HDR_SIZE + VIRTIO_NET_FRAME_MAX]; /* header + frame read from the tap */
        size_t frame_len;                                          /* 0: none waiting */
        uint64_t rx_frames, rx_bytes, rx_dropped, tx_frames, tx_bytes, tx_dropped;
};

int virtio_net_parse_mac(const char *s, uint8_t ret[6]) {
        unsigned b[6];
        char end;
        if (!s || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &end) != 6 ||
            strlen(s) != 17)
                return -EINVAL;
        for (int i = 0; i < 6; i++)
                ret[i] = (uint8_t) b[i];
        return 0;
}

int virtio_net_new(int tap_fd, const uint8_t mac[6], const char *name, VirtioNet **ret) {
        _cleanup_close_ int fd = tap_fd;
        VirtioNet *n = calloc(1, sizeof *n);
        if (!n)
                return -ENOMEM;
        n->name = strdup(name ? name : "");
        if (!n->name) {
                free(n);
                return -ENOMEM;
        }
        memcpy(n->config, mac, 6);
        uint16_t status = VIRTIO_NET_S_LINK_UP;
        memcpy(n->config + 6, &status, 2);
        n->tap_fd = TAKE_FD(fd);
        *ret = n;
        return 0;
}

VirtioNet *virtio_net_free(VirtioNet *n) {
        if (!n)
                return NULL;
        safe_close(n->tap_fd);
        free(n->name);
        free(n);
        return NULL;
}

int virtio_net_transmit(VirtioNet *n, const VirtqElement *el) {
        if (el->n_in > 0 || el->out_len < VIRTIO_NET_HDR_SIZE || el->n_out > IOV_MAX)
                return -EINVAL;
        for (;;) {
                ssize_t k = writev(n->tap_fd, el->out, (int) el->n_out);
                if (k >= 0) {
                        n->tx_frames++;
                        n->tx_bytes += el->out_len - VIRTIO_NET_HDR_SIZE;
                        return 1;
                }
                if (errno == EINTR)
                        continue;
                /* The tap's queue is full, or the frame is one the tap refuses (too long, bad
                 * header): dropped, as on a wire. */
                if (errno == EAGAIN || errno == EINVAL || errno == EMSGSIZE || errno == EIO) {
                        n->tx_dropped++;
                        return 0;
                }
                return -errno;
        }
}

int virtio_net_receive_pending(VirtioNet *n) {
        if (n->frame_len > 0)
                return 1;
        for (;;) {
                ssize_t k = read(n->tap_fd, n->frame, sizeof n->frame);
                if (k > VIRTIO_NET_HDR_SIZE) {
                        n->frame_len = (size_t) k;
                        return 1;
                }
                if (k == 0) /* end of file: a tap does not do that, a stand-in may */
                        return 0;
                if (k > 0) /* a frame without payload: nothing to deliver */
                        continue;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN)
                        return 0;
                return -errno;
        }
}

int virtio_net_receive_into(VirtioNet *n, const VirtqElement *el) {
        if (el->n_out > 0 || el->in_len < VIRTIO_NET_HDR_SIZE)
                return -EINVAL;
        if (n->frame_len == 0)
                return 0;
        size_t len = n->frame_len;
        n->frame_len = 0;
        if (len > el->in_len) {
                n->rx_dropped++;
                return 0;
        }
        /* The tap fills the 10-byte virtio_net_hdr; num_buffers is ours to set. */
        struct virtio_net_hdr_mrg_rxbuf *hdr = (struct virtio_net_hdr_mrg_rxbuf *) n->frame;
        hdr->num_buffers = 1;
        iov_from_buf(el->in, el->n_in, 0, n->frame, len);
        n->rx_frames++;
        n->rx_bytes += len - VIRTIO_NET_HDR_SIZE;
        return (int) len;
}

/* ---- on the transport ---- */

static void net_config_read(VirtioPci *t, void *dev, uint32_t offset, void *data, uint32_t len) {
        VirtioNet *n = dev;
        memcpy(data, n->config + offset, len);
}

static void net_receive(VirtioPci *t, VirtioNet *n) {
        Virtqueue *vq = virtio_pci_queue(t, VIRTIO_NET_RX_QUEUE);
        bool pushed = false;
        int r;

        if (!vq)
                return;
        for (;;) {
                r = virtio_net_receive_pending(n);
                if (r < 0) {
                        virtio_pci_device_error(t, r, "tap \"%s\": read failed", n->name);
                        return;
                }
                if (r == 0)
                        break;
                r = virtqueue_pop(vq, &n->elem);
                if (r <= 0) /* no buffer (or a broken ring): the frame waits for the guest's next kick */
                        break;
                r = virtio_net_receive_into(n, &n->elem);
                if (r < 0) {
                        virtio_pci_device_error(t, r, "receive queue: a buffer without room for the %d-byte header",
                                                VIRTIO_NET_HDR_SIZE);
                        return;
                }
                virtio_pci_count_request(t, r == 0);
                r = virtqueue_push(vq, n->elem.head, (uint32_t) r);
                if (r < 0)
                        break;
                pushed = true;
        }
        if (r < 0) {
                virtio_pci_device_error(t, r, "receive queue: malformed descriptor chain or ring outside guest memory");
                return;
        }
        if (pushed)
                virtio_pci_notify_queue(t, VIRTIO_NET_RX_QUEUE);
}

static void net_transmit(VirtioPci *t, VirtioNet *n) {
        Virtqueue *vq = virtio_pci_queue(t, VIRTIO_NET_TX_QUEUE);
        bool pushed = false;
        int r;

        if (!vq)
                return;
        while ((r = virtqueue_pop(vq, &n->elem)) > 0) {
                r = virtio_net_transmit(n, &n->elem);
                if (r == -EINVAL) {
                        virtio_pci_device_error(t, r, "transmit queue: a chain without the %d-byte header or with "
                                                "device-writable buffers", VIRTIO_NET_HDR_SIZE);
                        return;
                }
                if (r < 0) {
                        virtio_pci_device_error(t, r, "tap \"%s\": write failed", n->name);
                        return;
                }
                virtio_pci_count_request(t, r == 0);
                r = virtqueue_push(vq, n->elem.head, 0);
                if (r < 0)
                        break;
                pushed = true;
        }
        if (r < 0) {
                virtio_pci_device_error(t, r, "transmit queue: malformed descriptor chain or ring outside guest memory");
                return;
        }
        if (pushed)
                virtio_pci_notify_queue(t, VIRTIO_NET_TX_QUEUE);
}

static void net_queue_notify(VirtioPci *t, void *dev, unsigned q) {
        VirtioNet *n = dev;
        if (q == VIRTIO_NET_TX_QUEUE)
                net_transmit(t, n);
        /* Replies to what was just sent are often already waiting on the tap. */
        net_receive(t, n);
}

static void net_reset(VirtioPci *t, void *dev) {
        VirtioNet *n = dev;
        n->frame_len = 0;
}

static int net_status_json(VirtioPci *t, void *dev, json_object *o) {
        VirtioNet *n = dev;
        char mac[18];
        snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", n->config[0], n->config[1], n->config[2],
                 n->config[3], n->config[4], n->config[5]);
        if (json_add_string(o, "tap", n->name) < 0 || json_add_string(o, "mac", mac) < 0 ||
            json_add_uint(o, "rx_frames", n->rx_frames) < 0 || json_add_uint(o, "rx_bytes", n->rx_bytes) < 0 ||
            json_add_uint(o, "rx_dropped", n->rx_dropped) < 0 || json_add_uint(o, "tx_frames", n->tx_frames) < 0 ||
            json_add_uint(o, "tx_bytes", n->tx_bytes) < 0 || json_add_uint(o, "tx_dropped", n->tx_dropped) < 0)
                return -ENOMEM;
        return 0;
}

static void net_free(void *dev) {
        virtio_net_free(dev);
}

static const VirtioDeviceOps net_ops = {
        .type = "virtio-net",
        .device_id = VIRTIO_ID_NET,
        .n_queues = 2,
        .max_queue_size = 256,
        .features = (1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_STATUS),
        .config_size = 8,
        .config_read = net_config_read,
        .reset = net_reset,
        .queue_notify = net_queue_notify,
        .status_json = net_status_json,
        .free = net_free,
};

int virtio_net_attach(VirtioNet *n, const VirtioPciEnv *env, VirtioPci **ret) {
        return virtio_pci_new(env, &net_ops, n, ret);
}
