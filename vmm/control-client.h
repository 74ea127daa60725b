/* SPDX-License-Identifier: MIT */
/* Client side of the VMM control socket, for the agent and tests (docs/vmm-protocol.md). */
#pragma once

#include <json-c/json.h>

/* Sends {"id", "method", "params"} over a kept connection to socket_path when there is one (see
 * control-client.c), else a new one (params may be NULL) and waits up to timeout_ms for the reply.
 * Returns 0 with *ret_result (caller puts) when the VMM answered with a result; 1 with
 * *ret_error_code and *ret_error_message (caller frees; either pointer may be NULL to ignore) when it
 * answered with an error; -errno when there was no valid answer: -ENOENT/-ECONNREFUSED (no VMM
 * listening), -ETIMEDOUT, -EBADMSG (malformed reply), -EMSGSIZE. */
int vmm_control_call(const char *socket_path, const char *method, json_object *params, int timeout_ms,
                     json_object **ret_result, char **ret_error_code, char **ret_error_message);
/* The same, but an error reply comes back whole: *ret_error is the VMM's {"code", "message",
 * "details"?} object (caller puts), returned with 1. */
int vmm_control_call_full(const char *socket_path, const char *method, json_object *params, int timeout_ms,
                          json_object **ret_result, json_object **ret_error);
/* Closes the kept connections to socket_path (all of them for NULL): call when its VMM ended. */
void vmm_control_forget(const char *socket_path);
