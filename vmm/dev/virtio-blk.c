/* SPDX-License-Identifier: MIT */
#include "dev/virtio-blk.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json-util.h"

#define BLK_HEADER_SIZE 16

struct VirtioBlk {
        int fd;
        bool readonly;
        uint64_t size; /* bytes; capacity rounds down to whole sectors */
        char *path;
        char serial[VIRTIO_BLK_ID_BYTES];
        VirtqElement *elem;
        uint64_t reads, writes, flushes, read_bytes, written_bytes;
};

int virtio_blk_open(const char *path, bool readonly, const char *serial, VirtioBlk **ret) {
        VirtioBlk *b = calloc(1, sizeof *b);
        if (!b)
                return -ENOMEM;
        b->fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
        if (b->fd < 0) {
                int r = -errno;
                free(b);
                return r;
        }
        b->readonly = readonly;
        off_t end = lseek(b->fd, 0, SEEK_END);
        b->path = strdup(path);
        b->elem = malloc(sizeof *b->elem);
        if (end < 0 || !b->path || !b->elem) {
                int r = end < 0 ? -errno : -ENOMEM;
                virtio_blk_free(b);
                return r;
        }
        b->size = (uint64_t) end;
        if (serial)
                /* not NUL-terminated at 20 bytes, as the spec has it */
                memcpy(b->serial, serial, MIN(strlen(serial), sizeof b->serial));
        *ret = b;
        return 0;
}

VirtioBlk *virtio_blk_free(VirtioBlk *b) {
        if (!b)
                return NULL;
        safe_close(b->fd);
        free(b->path);
        free(b->elem);
        free(b);
        return NULL;
}

uint64_t virtio_blk_capacity(const VirtioBlk *b) {
        return b->size / VIRTIO_BLK_SECTOR_SIZE;
}

/* The part [skip, skip + len) of an iovec array, as a new one in dst (at most max entries). */
static unsigned iov_slice(const struct iovec *src, unsigned n, size_t skip, size_t len, struct iovec *dst, unsigned max) {
        unsigned k = 0;
        for (unsigned i = 0; i < n && len > 0 && k < max; i++) {
                if (skip >= src[i].iov_len) {
                        skip -= src[i].iov_len;
                        continue;
                }
                size_t take = MIN(src[i].iov_len - skip, len);
                dst[k++] = (struct iovec){ .iov_base = (uint8_t *) src[i].iov_base + skip, .iov_len = take };
                len -= take;
                skip = 0;
        }
        return k;
}

/* preadv/pwritev until everything moved; -EIO on a short transfer. */
static int rw_all(int fd, bool write_op, struct iovec *iov, unsigned n, uint64_t offset) {
        while (n > 0) {
                ssize_t k = write_op ? pwritev(fd, iov, (int) n, (off_t) offset) : preadv(fd, iov, (int) n, (off_t) offset);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO;
                offset += (uint64_t) k;
                while (n > 0 && (size_t) k >= iov->iov_len) {
                        k -= (ssize_t) iov->iov_len;
                        iov++;
                        n--;
                }
                if (n > 0) {
                        iov->iov_base = (uint8_t *) iov->iov_base + k;
                        iov->iov_len -= (size_t) k;
                }
        }
        return 0;
}

static uint8_t do_rw(VirtioBlk *b, bool write_op, uint64_t sector, const struct iovec *src, unsigned n, size_t skip,
                     size_t len) {
        struct iovec iov[VIRTQ_MAX_SEGMENTS];
        if (len % VIRTIO_BLK_SECTOR_SIZE != 0 || sector > b->size / VIRTIO_BLK_SECTOR_SIZE ||
            len > b->size - sector * VIRTIO_BLK_SECTOR_SIZE)
                return VIRTIO_BLK_S_IOERR;
        if (write_op && b->readonly)
                return VIRTIO_BLK_S_IOERR;
        unsigned k = iov_slice(src, n, skip, len, iov, VIRTQ_MAX_SEGMENTS);
        if (rw_all(b->fd, write_op, iov, k, sector * VIRTIO_BLK_SECTOR_SIZE) < 0)
                return VIRTIO_BLK_S_IOERR;
        if (write_op) {
                b->writes++;
                b->written_bytes += len;
        } else {
                b->reads++;
                b->read_bytes += len;
        }
        return VIRTIO_BLK_S_OK;
}

uint32_t virtio_blk_handle_request(VirtioBlk *b, const VirtqElement *el, uint8_t *ret_status) {
        struct virtio_blk_outhdr hdr;
        uint8_t status;
        size_t data_in = 0; /* bytes of data written to the in buffers */

        if (el->in_len == 0) { /* no room for a status: nothing to answer with */
                *ret_status = 0xff;
                return 0;
        }
        size_t in_data_len = el->in_len - 1;
        if (iov_to_buf(el->out, el->n_out, 0, &hdr, sizeof hdr) != sizeof hdr)
                status = VIRTIO_BLK_S_IOERR;
        else
                switch (hdr.type) {
                case VIRTIO_BLK_T_IN:
                        status = do_rw(b, false, hdr.sector, el->in, el->n_in, 0, in_data_len);
                        if (status == VIRTIO_BLK_S_OK)
                                data_in = in_data_len;
                        break;
                case VIRTIO_BLK_T_OUT:
                        status = do_rw(b, true, hdr.sector, el->out, el->n_out, BLK_HEADER_SIZE, el->out_len - BLK_HEADER_SIZE);
                        break;
                case VIRTIO_BLK_T_FLUSH:
                        status = fdatasync(b->fd) < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
                        b->flushes++;
                        break;
                case VIRTIO_BLK_T_GET_ID:
                        data_in = MIN(in_data_len, sizeof b->serial);
                        iov_from_buf(el->in, el->n_in, 0, b->serial, data_in);
                        status = VIRTIO_BLK_S_OK;
                        break;
                default:
                        status = VIRTIO_BLK_S_UNSUPP;
                        break;
                }
        iov_from_buf(el->in, el->n_in, in_data_len, &status, 1);
        *ret_status = status;
        return (uint32_t) (data_in + 1);
}

/* ---- the virtio device ---- */

static void blk_config_read(VirtioPci *t, void *dev, uint32_t offset, void *data, uint32_t len) {
        VirtioBlk *b = dev;
        struct virtio_blk_config cfg = {
                .capacity = virtio_blk_capacity(b),
                .seg_max = VIRTIO_BLK_SEG_MAX,
                .blk_size = VIRTIO_BLK_SECTOR_SIZE,
                .num_queues = 1,
        };
        memcpy(data, (uint8_t *) &cfg + offset, len);
}

static void blk_queue_notify(VirtioPci *t, void *dev, unsigned q) {
        VirtioBlk *b = dev;
        Virtqueue *vq = virtio_pci_queue(t, q);
        int r;
        while ((r = virtqueue_pop(vq, b->elem)) > 0) {
                uint8_t status;
                uint32_t written = virtio_blk_handle_request(b, b->elem, &status);
                virtio_pci_count_request(t, status != VIRTIO_BLK_S_OK);
                r = virtqueue_push(vq, b->elem->head, written);
                if (r < 0)
                        break;
        }
        if (r < 0) {
                virtio_pci_device_error(t, r, "queue %u: malformed descriptor chain or ring outside guest memory", q);
                return;
        }
        virtio_pci_notify_queue(t, q);
}

static int blk_status_json(VirtioPci *t, void *dev, json_object *o) {
        VirtioBlk *b = dev;
        int r = 0;
        r |= json_add_string(o, "path", b->path);
        r |= json_add_bool(o, "readonly", b->readonly);
        r |= json_add_uint(o, "capacity", virtio_blk_capacity(b) * VIRTIO_BLK_SECTOR_SIZE);
        r |= json_add_uint(o, "reads", b->reads);
        r |= json_add_uint(o, "writes", b->writes);
        r |= json_add_uint(o, "flushes", b->flushes);
        r |= json_add_uint(o, "read_bytes", b->read_bytes);
        r |= json_add_uint(o, "written_bytes", b->written_bytes);
        return r < 0 ? -ENOMEM : 0;
}

static void blk_free(void *dev) {
        virtio_blk_free(dev);
}

static const VirtioDeviceOps blk_ops_rw = {
        .type = "virtio-blk",
        .device_id = VIRTIO_ID_BLOCK,
        .n_queues = 1,
        .max_queue_size = 256,
        .features = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_FLUSH),
        .config_size = sizeof(struct virtio_blk_config),
        .config_read = blk_config_read,
        .queue_notify = blk_queue_notify,
        .status_json = blk_status_json,
        .free = blk_free,
};

static const VirtioDeviceOps blk_ops_ro = {
        .type = "virtio-blk",
        .device_id = VIRTIO_ID_BLOCK,
        .n_queues = 1,
        .max_queue_size = 256,
        .features = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_FLUSH) |
                    (1ULL << VIRTIO_BLK_F_RO),
        .config_size = sizeof(struct virtio_blk_config),
        .config_read = blk_config_read,
        .queue_notify = blk_queue_notify,
        .status_json = blk_status_json,
        .free = blk_free,
};

int virtio_blk_attach(VirtioBlk *b, const VirtioPciEnv *env, VirtioPci **ret) {
        return virtio_pci_new(env, b->readonly ? &blk_ops_ro : &blk_ops_rw, b, ret);
}
