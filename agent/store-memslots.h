/* SPDX-License-Identifier: MIT */
/* The memslots table of the inventory: one row per KVM memslot of a VM, kept in step with the VMM's
 * table by agent/memslots.c. Rows are memslot objects of the API ({"slot", "as_id", "gpa", "size",
 * "flags": {"dirty_log", "readonly"}, "backing", "role", "state"}). */
#pragma once

#include <json-c/json.h>
#include <stdint.h>

#include "store.h"

/* Every row of the VM, ordered by address space and slot: a JSON array of memslot objects. */
int store_memslots_list(Store *s, const char *uuid, json_object **ret);
/* One row, or -ENOENT. */
int store_memslot_get(Store *s, const char *uuid, unsigned as_id, unsigned slot, json_object **ret);
/* Inserts or replaces the row of memslot object m, with state. */
int store_memslot_put(Store *s, const char *uuid, json_object *m, const char *state);
int store_memslot_set_state(Store *s, const char *uuid, unsigned as_id, unsigned slot, const char *state);
/* state from -> to, only if the row is in state from: -ENOENT when it is not (or there is no row). */
int store_memslot_swap_state(Store *s, const char *uuid, unsigned as_id, unsigned slot, const char *from,
                             const char *to);
int store_memslot_delete(Store *s, const char *uuid, unsigned as_id, unsigned slot);
/* Sets the state of every row of the VM (its VMM ended: "inactive"). */
int store_memslots_set_state_all(Store *s, const char *uuid, const char *state);
/* Replaces every row of the VM with the memslot objects in array (state "active"), in one transaction. */
int store_memslots_replace(Store *s, const char *uuid, json_object *array);
