/* SPDX-License-Identifier: MIT */
/* Memslot changes on a live VM, in the order that keeps a failure harmless: check every rule
 * (memslot-rules.h) → prepare the backing (allocate and map it) → one KVM_SET_USER_MEMORY_REGION(2)
 * → update the VMM's table. Until the ioctl succeeds nothing the guest or the table can see has
 * changed, so a failure at any step leaves the old slot, its backing and guest memory as they were;
 * e->step and e->errnum then name the step and its errno (code memslot_apply_failed). Called from the
 * main thread only (the vCPU threads never read the table). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "memslot-rules.h"
#include "vm.h"

/* Probes the VM's limits into vm->mem->limits and enables KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 (without
 * INITIALLY_SET) where KVM offers it, so that reading a dirty log does not clear it. Call once after
 * KVM_CREATE_VM and KVM_GET_SUPPORTED_CPUID, before any slot has dirty logging on. */
int vm_memslot_probe(Vm *vm);
/* The limits with the host's current memory, and its free huge pages when hugetlb (otherwise the
 * pool as last read). */
void vm_memslot_limits(Vm *vm, bool hugetlb, MemslotLimits *ret);

/* req->slot is used when pick_id is false; role is always user. */
int vm_memslot_create(Vm *vm, const MemslotInfo *req, bool pick_id, MemslotInfo *ret, MemslotError *e);
int vm_memslot_delete(Vm *vm, uint32_t slot, uint16_t as_id, bool force, MemslotInfo *ret_deleted,
                      MemslotError *e);
int vm_memslot_move(Vm *vm, uint32_t slot, uint16_t as_id, uint64_t new_gpa, bool force, MemslotInfo *ret,
                    MemslotError *e);
/* readonly: -1 when not given. */
int vm_memslot_set_flags(Vm *vm, uint32_t slot, uint16_t as_id, bool dirty_log, int readonly, MemslotInfo *ret,
                         MemslotError *e);

typedef struct MemslotDirtyLog {
        MemslotInfo slot;
        uint64_t pages;
        uint64_t dirty_pages;
        uint64_t *bitmap; /* one bit per page, little-endian words as KVM returns them */
        size_t bitmap_bytes;
        bool cleared; /* the bits reported are now clear in KVM */
} MemslotDirtyLog;
void memslot_dirty_log_done(MemslotDirtyLog *d);

/* KVM_GET_DIRTY_LOG; with clear and manual protection, KVM_CLEAR_DIRTY_LOG of exactly the bits read
 * (without manual protection KVM clears on every read anyway). */
int vm_memslot_dirty_log(Vm *vm, uint32_t slot, uint16_t as_id, bool clear, MemslotDirtyLog *ret, MemslotError *e);

/* KVM_SET_MEMORY_ATTRIBUTES with or without PRIVATE over a range of guest_memfd slots. */
int vm_memory_set_private(Vm *vm, uint64_t gpa, uint64_t size, bool private, MemslotError *e);
