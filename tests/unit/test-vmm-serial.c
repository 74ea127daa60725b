/* SPDX-License-Identifier: MIT */
/* The 16550A as a guest driver sees it, and the output ring as the control socket reads it. */
#include "dev/serial.h"
#include "test.h"

static int irq_changes;
static bool irq_level;

static void on_irq(void *userdata, bool level) {
        (void) userdata;
        irq_changes++;
        irq_level = level;
}

static uint8_t rd(Serial *s, unsigned off) {
        uint8_t v = 0;
        serial_io(s, off, false, &v);
        return v;
}

static void wr(Serial *s, unsigned off, uint8_t v) {
        serial_io(s, off, true, &v);
}

TEST(transmit_reaches_ring) {
        Serial *s = NULL;
        uint8_t *data;
        size_t len;
        uint64_t off, next;
        ASSERT_EQ_INT(serial_new(16, &s), 0);
        CHECK(rd(s, 5) & 0x20); /* THR empty */
        for (const char *p = "hello"; *p; p++)
                wr(s, 0, (uint8_t) *p);
        ASSERT_EQ_INT(serial_read_ring(s, 0, 100, &data, &len, &off, &next), 0);
        CHECK_EQ_INT(len, 5);
        CHECK(memcmp(data, "hello", 5) == 0);
        CHECK_EQ_U64(next, 5);
        free(data);
        /* Wrap the 16-byte ring: the oldest kept byte is offset 4. */
        for (const char *p = "0123456789abcdef"; *p; p++)
                wr(s, 0, (uint8_t) *p);
        ASSERT_EQ_INT(serial_read_ring(s, 0, 100, &data, &len, &off, &next), 0);
        CHECK_EQ_U64(off, 5);
        CHECK_EQ_U64(next, 21);
        CHECK(memcmp(data, "0123456789abcdef", 16) == 0);
        free(data);
        ASSERT_EQ_INT(serial_read_ring(s, 30, 100, &data, &len, &off, &next), 0);
        CHECK_EQ_INT(len, 0);
        CHECK_EQ_U64(next, 21);
        free(data);
        serial_free(s);
}

TEST(fifo_detect_and_divisor_latch) {
        Serial *s = NULL;
        ASSERT_EQ_INT(serial_new(64, &s), 0);
        wr(s, 2, 0x01); /* FCR: enable FIFO -> IIR reports 16550A FIFOs */
        CHECK_EQ_INT(rd(s, 2) & 0xc0, 0xc0);
        wr(s, 3, 0x80); /* DLAB */
        wr(s, 0, 0x01);
        wr(s, 1, 0x00);
        CHECK_EQ_INT(rd(s, 0), 0x01);
        wr(s, 3, 0x03);
        CHECK_EQ_U64(serial_output_total(s), 0); /* the divisor write was not output */
        wr(s, 7, 0x5a);
        CHECK_EQ_INT(rd(s, 7), 0x5a);
        serial_free(s);
}

TEST(interrupts_thre_and_rx) {
        Serial *s = NULL;
        ASSERT_EQ_INT(serial_new(64, &s), 0);
        serial_set_irq(s, on_irq, NULL);
        irq_changes = 0;
        wr(s, 1, 0x02); /* enable THRE interrupt: fires at once, THR is empty */
        CHECK(irq_level);
        CHECK_EQ_INT(rd(s, 2) & 0x0f, 0x02);
        CHECK(!irq_level); /* reading IIR acknowledged it */
        wr(s, 0, 'x');
        CHECK(irq_level);
        wr(s, 1, 0x01); /* only RX interrupts */
        CHECK(!irq_level);
        CHECK_EQ_INT(serial_input(s, (const uint8_t *) "ab", 2), 2);
        CHECK(irq_level);
        CHECK(rd(s, 5) & 0x01);
        CHECK_EQ_INT(rd(s, 2) & 0x0f, 0x04);
        CHECK_EQ_INT(rd(s, 0), 'a');
        CHECK_EQ_INT(rd(s, 0), 'b');
        CHECK(!(rd(s, 5) & 0x01));
        CHECK(!irq_level);
        serial_free(s);
}

TEST(loopback_does_not_reach_output) {
        Serial *s = NULL;
        ASSERT_EQ_INT(serial_new(64, &s), 0);
        wr(s, 4, 0x10 | 0x0b);
        CHECK_EQ_INT(rd(s, 6) & 0xf0, 0xb0); /* DTR->DSR, RTS->CTS, OUT2->DCD */
        wr(s, 0, 'q');
        CHECK_EQ_U64(serial_output_total(s), 0);
        CHECK_EQ_INT(rd(s, 0), 'q');
        serial_free(s);
}
