/* SPDX-License-Identifier: MIT */
/* virtio-net (device id 1) on a tap (vmm/dev/tap.h): queue 0 receives, queue 1 transmits, every
 * buffer starts with the 12-byte struct virtio_net_hdr_mrg_rxbuf that the tap also uses
 * (IFF_VNET_HDR), so frames pass between the guest and the tap without conversion. Features:
 * VIRTIO_NET_F_MAC (the spec's address or one derived from the uuid), VIRTIO_NET_F_STATUS (link
 * up), VIRTIO_F_VERSION_1; no offloads, no mergeable receive buffers, no control queue.
 *
 * Transmit: each chain (header + frame, device-readable only) is one writev() to the tap; a full tap
 * queue drops the frame, as a NIC does. Receive: frames are read from the tap (non-blocking) into a
 * bounce buffer and copied into the guest's receive buffers; with no buffer available the frame waits
 * and reading stops until the guest adds buffers (its kick). The tap is read when the guest kicks
 * either queue. A malformed chain (no room for the header, device-writable buffers on the transmit
 * queue) is a device error (DEVICE_NEEDS_RESET), never a crash. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "dev/virtio-pci.h"

#define VIRTIO_NET_RX_QUEUE 0
#define VIRTIO_NET_TX_QUEUE 1
#define VIRTIO_NET_HDR_SIZE 12
#define VIRTIO_NET_FRAME_MAX 65535 /* without offloads frames are at most MTU + 14, but taps allow more */

typedef struct VirtioNet VirtioNet;

/* Takes tap_fd (closed by virtio_net_free, also on failure). mac: 6 bytes. name: for status. */
int virtio_net_new(int tap_fd, const uint8_t mac[6], const char *name, VirtioNet **ret);
VirtioNet *virtio_net_free(VirtioNet *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(VirtioNet *, virtio_net_free);

/* One transmit chain to the tap: 1 sent, 0 dropped (tap queue full), -EINVAL for a malformed chain,
 * other -errno from the tap. */
int virtio_net_transmit(VirtioNet *n, const VirtqElement *el);
/* Reads the next frame from the tap unless one is already waiting: 1 when a frame waits, 0 when the
 * tap has none, -errno on a tap error. */
int virtio_net_receive_pending(VirtioNet *n);
/* Copies the waiting frame into el's device-writable buffers (header with num_buffers = 1, then the
 * frame). Returns the bytes written (for the used ring), 0 when the frame did not fit and was
 * dropped; -EINVAL when el has no room for the header or device-readable buffers. */
int virtio_net_receive_into(VirtioNet *n, const VirtqElement *el);

/* Parses "xx:xx:xx:xx:xx:xx"; -EINVAL otherwise. */
int virtio_net_parse_mac(const char *s, uint8_t ret[6]);

/* Puts n on the bus as a virtio-pci function (takes n, also on failure). */
int virtio_net_attach(VirtioNet *n, const VirtioPciEnv *env, VirtioPci **ret);
