/* SPDX-License-Identifier: MIT */
/* The VMM's control socket (docs/vmm-protocol.md): unix SOCK_SEQPACKET, one JSON message per packet,
 * requests {"id", "method", "params"} and replies {"id", "result"} or {"id", "error": {"code",
 * "message"}}. Requests larger than CONTROL_MESSAGE_MAX are refused with payload_too_large. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "vm.h"

#define CONTROL_MESSAGE_MAX (64 * 1024)
#define CONTROL_REPLY_MAX (1024 * 1024)
#define CONTROL_CONSOLE_CHUNK_MAX 12288
#define CONTROL_PAUSE_TIMEOUT_MS 2000

/* Binds and listens on path. A socket file nobody answers on is stale and replaced; a live one is
 * -EADDRINUSE. */
int control_listen(const char *path, int *ret_fd);

typedef enum ControlAction {
        CONTROL_ACTION_NONE,
        CONTROL_ACTION_STOP, /* reply sent: stop the VM */
} ControlAction;

/* Handles one request packet (len may exceed CONTROL_MESSAGE_MAX when it was truncated) and returns
 * the reply text (caller frees). Never fails on bad input: that yields an error reply. */
int control_handle(Vm *vm, const char *msg, size_t len, char **ret_reply, ControlAction *ret_action);

/* The reply to send instead of one the socket refused as too large (EMSGSIZE): payload_too_large,
 * with the request's id when msg has one. */
int control_reply_too_large(const char *msg, size_t len, size_t reply_len, char **ret_reply);

/* Sets up an accepted control connection: a send buffer that holds the largest reply. */
void control_conn_setup(int fd);
