/* SPDX-License-Identifier: MIT */
/* virtio-blk requests against a temporary image, with plain buffers standing in for guest memory. */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dev/virtio-blk.h"
#include "test.h"

#define SECTORS 8

static char image[64];
static VirtqElement el;
static struct virtio_blk_outhdr hdr;
static uint8_t buf[4 * 512];
static uint8_t status;

static void make_image(void) {
        /* mkstemp's template: six 'X' at the end */
        snprintf(image, sizeof image, "/tmp/test-vmm-virtio-blk.%6s", "");
        memset(image + strlen(image) - 6, 'X', 6);
        int fd = mkstemp(image);
        if (fd < 0)
                return;
        for (unsigned s = 0; s < SECTORS; s++) {
                uint8_t sector[512];
                memset(sector, 'A' + (int) s, sizeof sector);
                (void) !write(fd, sector, sizeof sector);
        }
        close(fd);
}

static uint8_t file_byte(uint64_t off) {
        uint8_t b = 0;
        int fd = open(image, O_RDONLY | O_CLOEXEC);
        (void) !pread(fd, &b, 1, (off_t) off);
        close(fd);
        return b;
}

/* header (out) [+ data in or out] + status (in) */
static void request(uint32_t type, uint64_t sector, size_t data_len, bool data_in) {
        hdr = (struct virtio_blk_outhdr){ .type = type, .sector = sector };
        el = (VirtqElement){};
        el.out[el.n_out++] = (struct iovec){ &hdr, sizeof hdr };
        el.out_len = sizeof hdr;
        if (data_len && data_in) {
                el.in[el.n_in++] = (struct iovec){ buf, data_len };
                el.in_len += data_len;
        } else if (data_len) {
                el.out[el.n_out++] = (struct iovec){ buf, data_len };
                el.out_len += data_len;
        }
        el.in[el.n_in++] = (struct iovec){ &status, 1 };
        el.in_len += 1;
        status = 0xee;
}

static VirtioBlk *open_blk(bool readonly, const char *serial) {
        VirtioBlk *b = NULL;
        if (!image[0])
                make_image();
        if (virtio_blk_open(image, readonly, serial, &b) < 0)
                return NULL;
        return b;
}

__attribute__((destructor)) static void remove_image(void) {
        if (image[0])
                unlink(image);
}

TEST(read_sectors) {
        _cleanup_(virtio_blk_freep) VirtioBlk *b = open_blk(false, NULL);
        uint8_t st;
        ASSERT(b);
        CHECK_EQ_U64(virtio_blk_capacity(b), SECTORS);
        request(VIRTIO_BLK_T_IN, 2, 1024, true);
        CHECK_EQ_INT(virtio_blk_handle_request(b, &el, &st), 1025);
        CHECK_EQ_INT(st, VIRTIO_BLK_S_OK);
        CHECK_EQ_INT(status, VIRTIO_BLK_S_OK);
        CHECK_EQ_INT(buf[0], 'C');
        CHECK_EQ_INT(buf[1023], 'D');
}

TEST(write_then_flush) {
        _cleanup_(virtio_blk_freep) VirtioBlk *b = open_blk(false, NULL);
        uint8_t st;
        ASSERT(b);
        memset(buf, 'w', 512);
        request(VIRTIO_BLK_T_OUT, 5, 512, false);
        CHECK_EQ_INT(virtio_blk_handle_request(b, &el, &st), 1);
        CHECK_EQ_INT(status, VIRTIO_BLK_S_OK);
        CHECK_EQ_INT(file_byte(5 * 512), 'w');
        CHECK_EQ_INT(file_byte(6 * 512), 'G');
        request(VIRTIO_BLK_T_FLUSH, 0, 0, false);
        CHECK_EQ_INT(virtio_blk_handle_request(b, &el, &st), 1);
        CHECK_EQ_INT(status, VIRTIO_BLK_S_OK);
}

TEST(write_with_header_and_data_in_one_buffer) {
        _cleanup_(virtio_blk_freep) VirtioBlk *b = open_blk(false, NULL);
        uint8_t st, combined[16 + 512];
        ASSERT(b);
        struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_OUT, .sector = 7 };
        memcpy(combined, &h, sizeof h);
        memset(combined + 16, 'z', 512);
        el = (VirtqElement){ .n_out = 1, .out_len = sizeof combined, .n_in = 1, .in_len = 1 };
        el.out[0] = (struct iovec){ combined, sizeof combined };
        el.in[0] = (struct iovec){ &status, 1 };
        virtio_blk_handle_request(b, &el, &st);
        CHECK_EQ_INT(st, VIRTIO_BLK_S_OK);
        CHECK_EQ_INT(file_byte(7 * 512 + 511), 'z');
}

TEST(get_id_returns_serial) {
        _cleanup_(virtio_blk_freep) VirtioBlk *b = open_blk(false, "serial-0123456789abcdef-too-long");
        uint8_t st;
        ASSERT(b);
        memset(buf, 0xcc, 64);
        request(VIRTIO_BLK_T_GET_ID, 0, 64, true);
        CHECK_EQ_INT(virtio_blk_handle_request(b, &el, &st), 21);
        CHECK_EQ_INT(st, VIRTIO_BLK_S_OK);
        CHECK(memcmp(buf, "serial-0123456789abc", 20) == 0); /* 20 bytes, no terminator */
        CHECK_EQ_INT(buf[20], 0xcc);

        _cleanup_(virtio_blk_freep) VirtioBlk *c = open_blk(false, "short");
        ASSERT(c);
        request(VIRTIO_BLK_T_GET_ID, 0, 20, true);
        virtio_blk_handle_request(c, &el, &st);
        CHECK(memcmp(buf, "short\0\0\0", 8) == 0);
}

TEST(readonly_write_is_ioerr) {
        _cleanup_(virtio_blk_freep) VirtioBlk *b = open_blk(true, NULL);
        uint8_t st;
        ASSERT(b);
        uint8_t before = file_byte(3 * 512);
        memset(buf, 'x', 512);
        request(VIRTIO_BLK_T_OUT, 3, 512, false);
        virtio_blk_handle_request(b, &el, &st);
        CHECK_EQ_INT(st, VIRTIO_BLK_S_IOERR);
        CHECK_EQ_INT(status, VIRTIO_BLK_S_IOERR);
        CHECK_EQ_INT(file_byte(3 * 512), before);
        request(VIRTIO_BLK_T_IN, 3, 512, true); /* reads still work */
        virtio_blk_handle_request(b, &el, &st);
        CHECK_EQ_INT(st, VIRTIO_BLK_S_OK);
}

TEST(out_of_range_and_malformed_are_ioerr) {
        _cleanup_(virtio_blk_freep) VirtioBlk *b = open_blk(false, NULL);
        uint8_t st;
        ASSERT(b);
        request(VIRTIO_BLK_T_IN, SECTORS, 512, true); /* just past the end */
        CHECK_EQ_INT(virtio_blk_handle_request(b, &el, &st), 1);
        CHECK_EQ_INT(st, VIRTIO_BLK_S_IOERR);
        request(VIRTIO_BLK_T_IN, SECTORS - 1, 1024, true); /* crosses the end */
        virtio_blk_handle_request(b, &el, &st);
        CHECK_EQ_INT(st, VIRTIO_BLK_S_IOERR);
        request(VIRTIO_BLK_T_OUT, UINT64_MAX / 256, 512, false); /* sector * 512 would overflow */
        virtio_blk_handle_request(b, &el, &st);
        CHECK_EQ_INT(st, VIRTIO_BLK_S_IOERR);
        request(VIRTIO_BLK_T_IN, 0, 100, true); /* not whole sectors */
        virtio_blk_handle_request(b, &el, &st);
        CHECK_EQ_INT(st, VIRTIO_BLK_S_IOERR);
        request(VIRTIO_BLK_T_IN, 0, 0, true);
        el.out[0].iov_len = 8; /* header too short */
        el.out_len = 8;
        virtio_blk_handle_request(b, &el, &st);
        CHECK_EQ_INT(st, VIRTIO_BLK_S_IOERR);
        request(VIRTIO_BLK_T_IN, 0, 0, true);
        el.n_in = 0; /* no room for a status */
        el.in_len = 0;
        CHECK_EQ_INT(virtio_blk_handle_request(b, &el, &st), 0);
        CHECK_EQ_INT(st, 0xff);
}

TEST(unknown_type_is_unsupp) {
        _cleanup_(virtio_blk_freep) VirtioBlk *b = open_blk(false, NULL);
        uint8_t st;
        ASSERT(b);
        request(VIRTIO_BLK_T_DISCARD, 0, 0, false);
        virtio_blk_handle_request(b, &el, &st);
        CHECK_EQ_INT(st, VIRTIO_BLK_S_UNSUPP);
        request(0x1234, 0, 0, false);
        virtio_blk_handle_request(b, &el, &st);
        CHECK_EQ_INT(status, VIRTIO_BLK_S_UNSUPP);
}

TEST(open_errors) {
        VirtioBlk *b = NULL;
        CHECK_EQ_INT(virtio_blk_open("/nonexistent/disk.img", false, NULL, &b), -ENOENT);
        CHECK(!b);
}
