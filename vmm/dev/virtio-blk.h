/* SPDX-License-Identifier: MIT */
/* virtio-blk on a raw image file: VIRTIO_BLK_T_IN/OUT (preadv/pwritev straight into guest memory,
 * on the device's I/O thread), FLUSH (fdatasync), GET_ID (the serial, 20 bytes, zero-padded);
 * VIRTIO_BLK_F_RO for read-only images, whose writes get VIRTIO_BLK_S_IOERR; any I/O error or a
 * sector range beyond the end gets VIRTIO_BLK_S_IOERR, unknown types VIRTIO_BLK_S_UNSUPP. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "dev/virtio-pci.h"

#define VIRTIO_BLK_SECTOR_SIZE 512
#define VIRTIO_BLK_SEG_MAX 254 /* data segments per request: the 256-entry queue less header and status */

typedef struct VirtioBlk VirtioBlk;

/* Opens path (O_RDWR, or O_RDONLY when readonly). serial may be NULL (GET_ID answers zeros). */
int virtio_blk_open(const char *path, bool readonly, const char *serial, VirtioBlk **ret);
VirtioBlk *virtio_blk_free(VirtioBlk *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(VirtioBlk *, virtio_blk_free);
uint64_t virtio_blk_capacity(const VirtioBlk *b); /* in 512-byte sectors */

/* Serves one request: reads the header from el's out buffers, does the I/O, writes the status byte
 * (last byte of the in buffers). Returns the bytes written into the in buffers (for the used ring);
 * *ret_status gets the VIRTIO_BLK_S_* written (0xff when the chain had no room for it). */
uint32_t virtio_blk_handle_request(VirtioBlk *b, const VirtqElement *el, uint8_t *ret_status);

/* Puts b on the bus as a virtio-pci function (takes b, also on failure). */
int virtio_blk_attach(VirtioBlk *b, const VirtioPciEnv *env, VirtioPci **ret);
