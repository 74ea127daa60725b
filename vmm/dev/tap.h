/* SPDX-License-Identifier: MIT */
/* The host side of a virtio-net NIC: a tap device opened through /dev/net/tun with IFF_TAP |
 * IFF_NO_PI | IFF_VNET_HDR, so every frame read or written carries the 12-byte struct
 * virtio_net_hdr_mrg_rxbuf of virtio 1.x in front of it. The name is the spec's "tap": an existing
 * persistent tap is attached to (needs only access to /dev/net/tun and, for a tap owned by another
 * user, that user's or group's identity), a missing one is created (needs CAP_NET_ADMIN). Offloads
 * stay off (TUNSETOFFLOAD 0): frames come complete and checksummed. */
#pragma once

#include <stddef.h>

#define TAP_VNET_HDR_SIZE 12
#define TAP_DEV_PATH "/dev/net/tun"

/* Opens the tap named name (at most IFNAMSIZ - 1 bytes) from tun_path (TAP_DEV_PATH; tests pass
 * another). Returns an O_RDWR | O_CLOEXEC | O_NONBLOCK fd, or -errno. */
int tap_open(const char *tun_path, const char *name, int *ret_fd);
/* A sentence for a tap_open() error, for "$.nics[N].tap: <sentence>" messages. */
const char *tap_strerror(int err, const char *name, char *buf, size_t size);
