/* SPDX-License-Identifier: MIT */
/* The control methods memslot.* and memory.* (docs/vmm-protocol.md, "Memslots"). */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "memslot-rules.h"
#include "vm.h"

/* Dirty ranges listed in one memslot.dirty_log reply at most (ranges_truncated beyond). */
#define MEMSLOT_DIRTY_RANGES_MAX 4096
/* Bytes one memory.read or memory.write moves at most. */
#define MEMORY_ACCESS_MAX 4096

bool memslot_control_method(const char *method);
/* Returns 1 with *ret_result, 0 with *e set (an error reply: code, message, details), or -errno for
 * an internal failure. */
int memslot_control_call(Vm *vm, const char *method, json_object *params, json_object **ret_result, MemslotError *e);
