/* SPDX-License-Identifier: MIT */
/* The split virtqueue against a fake guest RAM: a plain buffer with canaries on both sides that no
 * case, malicious or not, may touch. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dev/virtqueue.h"
#include "test.h"

#define RAM_GPA 0x100000ULL
#define RAM_SIZE 0x10000ULL
#define GUARD 4096
#define QSZ 8
#define DESC_GPA (RAM_GPA + 0x0000)
#define AVAIL_GPA (RAM_GPA + 0x1000)
#define USED_GPA (RAM_GPA + 0x2000)
#define TABLE_GPA (RAM_GPA + 0x3000)
#define BUF_GPA (RAM_GPA + 0x4000)

struct desc {
        uint64_t addr;
        uint32_t len;
        uint16_t flags;
        uint16_t next;
};

static uint8_t *area; /* GUARD + RAM + GUARD */
static uint8_t *ram;
static VirtqElement elem;

__attribute__((destructor)) static void area_free(void) {
        free(area);
}

static void *translate(void *opaque, uint64_t gpa, uint64_t len) {
        (void) opaque;
        if (gpa < RAM_GPA || gpa - RAM_GPA > RAM_SIZE || len > RAM_SIZE - (gpa - RAM_GPA))
                return NULL;
        return ram + (gpa - RAM_GPA);
}

static void *at(uint64_t gpa) {
        return ram + (gpa - RAM_GPA);
}
static struct desc *desc_table(void) {
        return at(DESC_GPA);
}
static uint16_t *avail(void) {
        return at(AVAIL_GPA);
}
static uint16_t *used(void) {
        return at(USED_GPA);
}

static void setup(Virtqueue *vq) {
        free(area);
        area = malloc(RAM_SIZE + 2 * GUARD);
        memset(area, 0xa5, RAM_SIZE + 2 * GUARD);
        ram = area + GUARD;
        memset(ram, 0, RAM_SIZE);
        memset(vq, 0, sizeof *vq);
        vq->indirect = true;
        CHECK_EQ_INT(virtqueue_setup(vq, QSZ, DESC_GPA, AVAIL_GPA, USED_GPA, translate, NULL), 0);
}

static bool guards_intact(void) {
        for (size_t i = 0; i < GUARD; i++)
                if (area[i] != 0xa5 || area[GUARD + RAM_SIZE + i] != 0xa5)
                        return false;
        return true;
}

/* Publishes head as the next available entry. */
static void offer(uint16_t head) {
        uint16_t idx = avail()[1];
        avail()[2 + (idx % QSZ)] = head;
        avail()[1] = (uint16_t) (idx + 1);
}

static void set_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
        desc_table()[i] = (struct desc){ addr, len, flags, next };
}

/* The usual request: 16-byte header (out), 512 bytes (in), status byte (in). */
static void three_part_chain(void) {
        set_desc(0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
        set_desc(1, BUF_GPA + 0x100, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
        set_desc(2, BUF_GPA + 0x400, 1, VIRTQ_DESC_F_WRITE, 0);
}

TEST(chain_is_split_into_out_and_in) {
        Virtqueue vq;
        setup(&vq);
        three_part_chain();
        offer(0);
        ASSERT_EQ_INT(virtqueue_pop(&vq, &elem), 1);
        CHECK_EQ_INT(elem.head, 0);
        CHECK_EQ_INT(elem.n_out, 1);
        CHECK_EQ_INT(elem.n_in, 2);
        CHECK_EQ_INT(elem.out_len, 16);
        CHECK_EQ_INT(elem.in_len, 513);
        CHECK(elem.out[0].iov_base == at(BUF_GPA));
        CHECK(elem.in[1].iov_base == at(BUF_GPA + 0x400));
        CHECK_EQ_INT(virtqueue_pop(&vq, &elem), 0);
        CHECK_EQ_INT(virtqueue_push(&vq, 0, 513), 0);
        CHECK_EQ_INT(used()[1], 1);
        uint32_t *u = (uint32_t *) (used() + 2);
        CHECK_EQ_INT(u[0], 0);
        CHECK_EQ_INT(u[1], 513);
        CHECK(guards_intact());
}

TEST(indirect_table_is_followed) {
        Virtqueue vq;
        setup(&vq);
        struct desc *t = at(TABLE_GPA);
        t[0] = (struct desc){ BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 1 };
        t[1] = (struct desc){ BUF_GPA + 0x100, 512, VIRTQ_DESC_F_NEXT, 2 };
        t[2] = (struct desc){ BUF_GPA + 0x400, 1, VIRTQ_DESC_F_WRITE, 0 };
        set_desc(5, TABLE_GPA, 3 * sizeof(struct desc), VIRTQ_DESC_F_INDIRECT, 0);
        offer(5);
        ASSERT_EQ_INT(virtqueue_pop(&vq, &elem), 1);
        CHECK_EQ_INT(elem.head, 5);
        CHECK_EQ_INT(elem.n_out, 2);
        CHECK_EQ_INT(elem.n_in, 1);
        CHECK_EQ_INT(elem.out_len, 528);
        CHECK(guards_intact());
}

TEST(indirect_refused_unless_negotiated) {
        Virtqueue vq;
        setup(&vq);
        vq.indirect = false;
        struct desc *t = at(TABLE_GPA);
        t[0] = (struct desc){ BUF_GPA, 16, 0, 0 };
        set_desc(0, TABLE_GPA, sizeof(struct desc), VIRTQ_DESC_F_INDIRECT, 0);
        offer(0);
        CHECK_EQ_INT(virtqueue_pop(&vq, &elem), -EINVAL);
}

TEST(indices_wrap_at_65535) {
        Virtqueue vq;
        setup(&vq);
        vq.last_avail_idx = 65534;
        vq.used_idx = 65534;
        avail()[1] = 65534;
        used()[1] = 65534;
        three_part_chain();
        set_desc(3, BUF_GPA + 0x800, 8, VIRTQ_DESC_F_WRITE, 0);
        offer(0);          /* avail idx 65535 */
        offer(3);          /* avail idx 0 */
        CHECK_EQ_INT(avail()[1], 0);
        ASSERT_EQ_INT(virtqueue_pop(&vq, &elem), 1);
        CHECK_EQ_INT(elem.head, 0);
        CHECK_EQ_INT(virtqueue_push(&vq, elem.head, 1), 0);
        ASSERT_EQ_INT(virtqueue_pop(&vq, &elem), 1);
        CHECK_EQ_INT(elem.head, 3);
        CHECK_EQ_INT(vq.last_avail_idx, 0);
        CHECK_EQ_INT(virtqueue_push(&vq, elem.head, 8), 0);
        CHECK_EQ_INT(used()[1], 0);
        uint32_t *u = (uint32_t *) (used() + 2);
        CHECK_EQ_INT(u[2 * (65534 % QSZ)], 0);
        CHECK_EQ_INT(u[2 * (65535 % QSZ)], 3);
        CHECK_EQ_INT(virtqueue_pop(&vq, &elem), 0);
}

/* Every malicious layout: an error, and nothing outside RAM touched. */
static void expect_error(Virtqueue *vq, int expected) {
        CHECK_EQ_INT(virtqueue_pop(vq, &elem), expected);
        CHECK(guards_intact());
}

TEST(buffer_outside_ram_is_efault) {
        Virtqueue vq;
        setup(&vq);
        set_desc(0, RAM_GPA + RAM_SIZE, 16, 0, 0);
        offer(0);
        expect_error(&vq, -EFAULT);

        setup(&vq);
        set_desc(0, RAM_GPA - 16, 32, 0, 0); /* starts before RAM */
        offer(0);
        expect_error(&vq, -EFAULT);

        setup(&vq);
        set_desc(0, RAM_GPA + RAM_SIZE - 8, 16, VIRTQ_DESC_F_WRITE, 0); /* runs past the end */
        offer(0);
        expect_error(&vq, -EFAULT);

        setup(&vq);
        set_desc(0, UINT64_MAX - 7, 16, 0, 0); /* wraps */
        offer(0);
        expect_error(&vq, -EFAULT);
}

TEST(loops_and_long_chains_are_einval) {
        Virtqueue vq;
        setup(&vq);
        set_desc(0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 0); /* points at itself */
        offer(0);
        expect_error(&vq, -EINVAL);

        setup(&vq);
        for (unsigned i = 0; i < QSZ; i++) /* a ring of every descriptor: longer than the queue */
                set_desc(i, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, (uint16_t) ((i + 1) % QSZ));
        offer(0);
        expect_error(&vq, -EINVAL);

        setup(&vq);
        set_desc(0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, QSZ); /* next out of range */
        offer(0);
        expect_error(&vq, -EINVAL);

        setup(&vq);
        offer(QSZ); /* head out of range */
        expect_error(&vq, -EINVAL);

        setup(&vq);
        set_desc(0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
        set_desc(1, BUF_GPA, 16, 0, 0); /* readable after writable */
        offer(0);
        expect_error(&vq, -EINVAL);
}

TEST(bad_indirect_tables_are_refused) {
        Virtqueue vq;
        struct desc *t;

        setup(&vq);
        set_desc(0, TABLE_GPA, 24, VIRTQ_DESC_F_INDIRECT, 0); /* not a multiple of 16 */
        offer(0);
        expect_error(&vq, -EINVAL);

        setup(&vq);
        set_desc(0, TABLE_GPA, 0, VIRTQ_DESC_F_INDIRECT, 0); /* empty */
        offer(0);
        expect_error(&vq, -EINVAL);

        setup(&vq);
        t = at(TABLE_GPA);
        t[0] = (struct desc){ TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0 }; /* nested */
        set_desc(0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
        offer(0);
        expect_error(&vq, -EINVAL);

        setup(&vq);
        t = at(TABLE_GPA);
        t[0] = (struct desc){ BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 1 };
        t[1] = (struct desc){ BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 0 }; /* loop inside the table */
        set_desc(0, TABLE_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
        offer(0);
        expect_error(&vq, -EINVAL);

        setup(&vq);
        t = at(TABLE_GPA);
        t[0] = (struct desc){ BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 2 }; /* next beyond the table */
        set_desc(0, TABLE_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
        offer(0);
        expect_error(&vq, -EINVAL);

        setup(&vq);
        set_desc(0, RAM_GPA + RAM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, 0); /* table outside RAM */
        offer(0);
        expect_error(&vq, -EFAULT);

        setup(&vq);
        set_desc(0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1); /* indirect with NEXT */
        offer(0);
        expect_error(&vq, -EINVAL);

        setup(&vq);
        set_desc(0, TABLE_GPA, (VIRTQ_MAX_SEGMENTS + 1) * 16, VIRTQ_DESC_F_INDIRECT, 0); /* too long */
        offer(0);
        expect_error(&vq, -EINVAL);
}

TEST(avail_index_jumping_ahead_is_einval) {
        Virtqueue vq;
        setup(&vq);
        three_part_chain();
        avail()[1] = QSZ + 1;
        expect_error(&vq, -EINVAL);
        setup(&vq);
        avail()[1] = 0x8000;
        expect_error(&vq, -EINVAL);
}

TEST(rings_outside_ram_are_efault) {
        Virtqueue vq;
        setup(&vq);
        CHECK_EQ_INT(virtqueue_setup(&vq, QSZ, RAM_GPA + RAM_SIZE - 64, AVAIL_GPA, USED_GPA, translate, NULL), 0);
        offer(0);
        expect_error(&vq, -EFAULT);
        setup(&vq);
        CHECK_EQ_INT(virtqueue_setup(&vq, QSZ, DESC_GPA, AVAIL_GPA, RAM_GPA + RAM_SIZE - 8, translate, NULL), 0);
        CHECK_EQ_INT(virtqueue_push(&vq, 0, 0), -EFAULT);
        CHECK(guards_intact());
}

TEST(setup_checks_geometry) {
        Virtqueue vq = {};
        CHECK_EQ_INT(virtqueue_setup(&vq, 6, DESC_GPA, AVAIL_GPA, USED_GPA, translate, NULL), -EINVAL);
        CHECK_EQ_INT(virtqueue_setup(&vq, 0, DESC_GPA, AVAIL_GPA, USED_GPA, translate, NULL), -EINVAL);
        CHECK_EQ_INT(virtqueue_setup(&vq, 2048, DESC_GPA, AVAIL_GPA, USED_GPA, translate, NULL), -EINVAL);
        CHECK_EQ_INT(virtqueue_setup(&vq, QSZ, DESC_GPA + 8, AVAIL_GPA, USED_GPA, translate, NULL), -EINVAL);
        CHECK_EQ_INT(virtqueue_setup(&vq, QSZ, DESC_GPA, AVAIL_GPA + 1, USED_GPA, translate, NULL), -EINVAL);
        CHECK_EQ_INT(virtqueue_setup(&vq, QSZ, DESC_GPA, AVAIL_GPA, USED_GPA + 2, translate, NULL), -EINVAL);
}

TEST(notification_suppression) {
        Virtqueue vq;
        setup(&vq);
        CHECK(virtqueue_should_notify(&vq));
        avail()[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
        CHECK(!virtqueue_should_notify(&vq));

        setup(&vq);
        vq.event_idx = true;
        three_part_chain();
        offer(0);
        offer(0);
        avail()[2 + QSZ] = 1; /* used_event: interrupt once used passes 1 */
        ASSERT_EQ_INT(virtqueue_pop(&vq, &elem), 1);
        virtqueue_push(&vq, 0, 1);
        CHECK(virtqueue_should_notify(&vq)); /* the first one always */
        ASSERT_EQ_INT(virtqueue_pop(&vq, &elem), 1);
        virtqueue_push(&vq, 0, 1);
        CHECK(virtqueue_should_notify(&vq)); /* used went 1 -> 2, past used_event 1 */
        avail()[2 + QSZ] = 10;
        offer(0);
        ASSERT_EQ_INT(virtqueue_pop(&vq, &elem), 1);
        virtqueue_push(&vq, 0, 1);
        CHECK(!virtqueue_should_notify(&vq));
        /* the driver kicks only when avail passes avail_event: an empty pop asks for the next one */
        CHECK_EQ_INT(virtqueue_pop(&vq, &elem), 0);
        CHECK_EQ_INT(used()[2 + 4 * QSZ], 3);
        /* ... and sees what was added meanwhile */
        offer(0);
        CHECK_EQ_INT(virtqueue_pop(&vq, &elem), 1);
        CHECK_EQ_INT(virtqueue_pop(&vq, &elem), 0);
        CHECK_EQ_INT(used()[2 + 4 * QSZ], 4);
        virtqueue_set_notification(&vq, true);
        CHECK_EQ_INT(used()[2 + 4 * QSZ], 4); /* avail_event = next avail index */
}

TEST(iov_copy_with_skip) {
        char a[4] = "abcd", b[3] = "efg", out[8] = { 0 };
        struct iovec iov[2] = { { a, 4 }, { b, 3 } };
        CHECK_EQ_INT(iov_to_buf(iov, 2, 2, out, 4), 4);
        CHECK(memcmp(out, "cdef", 4) == 0);
        CHECK_EQ_INT(iov_to_buf(iov, 2, 6, out, 4), 1);
        CHECK_EQ_INT(iov_from_buf(iov, 2, 3, "XYZ", 3), 3);
        CHECK(memcmp(a, "abcX", 4) == 0 && memcmp(b, "YZg", 3) == 0);
        CHECK_EQ_INT(iov_from_buf(iov, 2, 7, "Q", 1), 0);
}
