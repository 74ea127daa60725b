/* SPDX-License-Identifier: MIT */
/* virtio-net's data path with a SOCK_SEQPACKET socketpair in place of the tap (one message per frame,
 * like a tap with IFF_VNET_HDR) and plain buffers in place of guest memory: transmit chains, receive
 * into one or several buffers, frames that do not fit, malformed chains, a full tap queue. */
#include <errno.h>
#include <linux/virtio_net.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dev/virtio-net.h"
#include "test.h"

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

/* n with one end of a socketpair as its tap; *peer gets the other end (the host side). */
static VirtioNet *net_with_peer(int *peer) {
        int sv[2];
        VirtioNet *n = NULL;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
                return NULL;
        if (virtio_net_new(sv[0], mac, "tap-test", &n) < 0) {
                close(sv[1]);
                return NULL;
        }
        *peer = sv[1];
        return n;
}

TEST(mac_parse) {
        uint8_t m[6];
        ASSERT_EQ_INT(virtio_net_parse_mac("52:54:00:ab:CD:0f", m), 0);
        CHECK_EQ_INT(m[0], 0x52);
        CHECK_EQ_INT(m[4], 0xcd);
        CHECK_EQ_INT(m[5], 0x0f);
        CHECK_EQ_INT(virtio_net_parse_mac("52:54:00:ab:cd", m), -EINVAL);
        CHECK_EQ_INT(virtio_net_parse_mac("52:54:00:ab:cd:0f:11", m), -EINVAL);
        CHECK_EQ_INT(virtio_net_parse_mac("52-54-00-ab-cd-0f", m), -EINVAL);
        CHECK_EQ_INT(virtio_net_parse_mac(NULL, m), -EINVAL);
}

TEST(transmit_gathers_header_and_frame) {
        int peer = -1;
        _cleanup_(virtio_net_freep) VirtioNet *n = net_with_peer(&peer);
        static VirtqElement el;
        struct virtio_net_hdr_mrg_rxbuf hdr = { .num_buffers = 0 };
        uint8_t part1[20], part2[44], got[256];
        ASSERT(n);
        memset(part1, 0x11, sizeof part1);
        memset(part2, 0x22, sizeof part2);
        el = (VirtqElement){ .n_out = 3, .out_len = sizeof hdr + sizeof part1 + sizeof part2 };
        el.out[0] = (struct iovec){ &hdr, sizeof hdr };
        el.out[1] = (struct iovec){ part1, sizeof part1 };
        el.out[2] = (struct iovec){ part2, sizeof part2 };
        CHECK_EQ_INT(virtio_net_transmit(n, &el), 1);
        ssize_t k = read(peer, got, sizeof got);
        CHECK_EQ_INT(k, 12 + 20 + 44);
        CHECK_EQ_INT(got[12], 0x11);
        CHECK_EQ_INT(got[12 + 20], 0x22);
        close(peer);
}

TEST(transmit_refuses_malformed_chains) {
        int peer = -1;
        _cleanup_(virtio_net_freep) VirtioNet *n = net_with_peer(&peer);
        static VirtqElement el;
        uint8_t b[64];
        ASSERT(n);
        /* shorter than the header */
        el = (VirtqElement){ .n_out = 1, .out_len = 8 };
        el.out[0] = (struct iovec){ b, 8 };
        CHECK_EQ_INT(virtio_net_transmit(n, &el), -EINVAL);
        /* device-writable buffers on the transmit queue */
        el = (VirtqElement){ .n_out = 1, .out_len = 64, .n_in = 1, .in_len = 64 };
        el.out[0] = (struct iovec){ b, 64 };
        el.in[0] = (struct iovec){ b, 64 };
        CHECK_EQ_INT(virtio_net_transmit(n, &el), -EINVAL);
        uint8_t got[64];
        CHECK(read(peer, got, sizeof got) < 0); /* nothing reached the tap */
        close(peer);
}

TEST(transmit_drops_when_the_tap_is_full) {
        int peer = -1;
        _cleanup_(virtio_net_freep) VirtioNet *n = net_with_peer(&peer);
        static VirtqElement el;
        static uint8_t frame[1500];
        int sent = 0, dropped = 0;
        ASSERT(n);
        el = (VirtqElement){ .n_out = 1, .out_len = sizeof frame };
        el.out[0] = (struct iovec){ frame, sizeof frame };
        for (int i = 0; i < 10000 && dropped == 0; i++) {
                int r = virtio_net_transmit(n, &el);
                ASSERT(r >= 0);
                if (r == 1)
                        sent++;
                else
                        dropped++;
        }
        CHECK(sent > 0);
        CHECK_EQ_INT(dropped, 1);
        close(peer);
}

TEST(receive_scatters_into_buffers) {
        int peer = -1;
        _cleanup_(virtio_net_freep) VirtioNet *n = net_with_peer(&peer);
        static VirtqElement el;
        uint8_t msg[12 + 60], a[30], b[100];
        ASSERT(n);
        CHECK_EQ_INT(virtio_net_receive_pending(n), 0); /* empty tap */
        memset(msg, 0, 12);
        msg[10] = 0x77; /* whatever the tap left in num_buffers */
        for (int i = 0; i < 60; i++)
                msg[12 + i] = (uint8_t) i;
        ASSERT_EQ_INT(write(peer, msg, sizeof msg), sizeof msg);
        CHECK_EQ_INT(virtio_net_receive_pending(n), 1);
        CHECK_EQ_INT(virtio_net_receive_pending(n), 1); /* still the same frame, not read twice */
        el = (VirtqElement){ .n_in = 2, .in_len = sizeof a + sizeof b };
        el.in[0] = (struct iovec){ a, sizeof a };
        el.in[1] = (struct iovec){ b, sizeof b };
        CHECK_EQ_INT(virtio_net_receive_into(n, &el), 72);
        struct virtio_net_hdr_mrg_rxbuf hdr;
        memcpy(&hdr, a, sizeof hdr);
        CHECK_EQ_INT(hdr.num_buffers, 1);
        CHECK_EQ_INT(a[12], 0);
        CHECK_EQ_INT(a[29], 17);
        CHECK_EQ_INT(b[0], 18);
        CHECK_EQ_INT(b[41], 59);
        CHECK_EQ_INT(virtio_net_receive_pending(n), 0); /* consumed */
        close(peer);
}

TEST(receive_drops_a_frame_that_does_not_fit) {
        int peer = -1;
        _cleanup_(virtio_net_freep) VirtioNet *n = net_with_peer(&peer);
        static VirtqElement el;
        uint8_t msg[12 + 200] = { 0 }, small[64];
        ASSERT(n);
        ASSERT_EQ_INT(write(peer, msg, sizeof msg), sizeof msg);
        ASSERT_EQ_INT(virtio_net_receive_pending(n), 1);
        el = (VirtqElement){ .n_in = 1, .in_len = sizeof small };
        el.in[0] = (struct iovec){ small, sizeof small };
        CHECK_EQ_INT(virtio_net_receive_into(n, &el), 0);
        CHECK_EQ_INT(virtio_net_receive_pending(n), 0);
        close(peer);
}

TEST(receive_refuses_malformed_buffers) {
        int peer = -1;
        _cleanup_(virtio_net_freep) VirtioNet *n = net_with_peer(&peer);
        static VirtqElement el;
        uint8_t msg[12 + 20] = { 0 }, b[64];
        ASSERT(n);
        ASSERT_EQ_INT(write(peer, msg, sizeof msg), sizeof msg);
        ASSERT_EQ_INT(virtio_net_receive_pending(n), 1);
        el = (VirtqElement){ .n_in = 1, .in_len = 8 }; /* no room for the header */
        el.in[0] = (struct iovec){ b, 8 };
        CHECK_EQ_INT(virtio_net_receive_into(n, &el), -EINVAL);
        el = (VirtqElement){ .n_out = 1, .out_len = 64, .n_in = 1, .in_len = 64 }; /* device-readable part */
        el.out[0] = (struct iovec){ b, 64 };
        el.in[0] = (struct iovec){ b, 64 };
        CHECK_EQ_INT(virtio_net_receive_into(n, &el), -EINVAL);
        /* the frame still waits for a proper buffer */
        el = (VirtqElement){ .n_in = 1, .in_len = 64 };
        el.in[0] = (struct iovec){ b, 64 };
        CHECK_EQ_INT(virtio_net_receive_into(n, &el), 32);
        close(peer);
}

TEST(receive_reports_a_closed_tap) {
        int peer = -1;
        _cleanup_(virtio_net_freep) VirtioNet *n = net_with_peer(&peer);
        ASSERT(n);
        close(peer);
        /* end of file on a socketpair: no frame (a tap never reports EOF) */
        CHECK(virtio_net_receive_pending(n) <= 0);
}
