/* SPDX-License-Identifier: MIT */
/* What KVM_SET_USER_MEMORY_REGION(2) would refuse, and kvmfleet's own memslot policy, as pure
 * functions over a table of slots and the VM's limits. No KVM call, no allocation: the VMM runs
 * these before it touches the VM, and the agent links this module (build/vmm/memslot-rules.o) to
 * refuse early with the same codes. Every check returns 0, or -errno (what KVM would return where it
 * would refuse; -EBUSY, -ENOENT... for policy) with *e set: e->code is the API error code
 * (docs/vmm-protocol.md, "Memslots"), e->http_status its HTTP status. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEMSLOT_PAGE_SIZE 4096ULL
#define MEMSLOT_HUGE_PAGE_SIZE (2ULL << 20)
/* KVM_MEM_MAX_NR_PAGES on x86: a slot's page count must fit in 31 bits. */
#define MEMSLOT_MAX_PAGES ((1ULL << 31) - 1)

typedef enum MemslotRole {
        MEMSLOT_ROLE_RAM,  /* created by the VMM for guest RAM */
        MEMSLOT_ROLE_USER, /* added later through the control socket */
} MemslotRole;

typedef enum MemslotBacking {
        MEMSLOT_BACKING_MEMFD,
        MEMSLOT_BACKING_HUGETLB, /* memfd of 2 MiB huge pages */
        MEMSLOT_BACKING_ANONYMOUS,
        MEMSLOT_BACKING_GUEST_MEMFD, /* KVM_CREATE_GUEST_MEMFD, plus a memfd for the shared view */
        _MEMSLOT_BACKING_MAX,
} MemslotBacking;

/* One slot as KVM sees it. */
typedef struct MemslotInfo {
        uint32_t slot;
        uint16_t as_id;
        uint64_t gpa;
        uint64_t size;
        bool dirty_log;
        bool readonly;
        MemslotBacking backing;
        uint64_t guest_memfd_offset;
        MemslotRole role;
} MemslotInfo;

/* What the VM and the host allow, probed by the VMM (KVM_CHECK_EXTENSION on the VM fd, the guest's
 * CPUID, /proc and /sys) and reported by memslot.list. */
typedef struct MemslotLimits {
        uint32_t nr_memslots;      /* KVM_CAP_NR_MEMSLOTS */
        uint16_t address_spaces;   /* KVM_CAP_MULTI_ADDRESS_SPACE, 1 when absent */
        unsigned phys_bits;        /* the guest's MAXPHYADDR */
        bool readonly_mem;         /* KVM_CAP_READONLY_MEM */
        bool user_memory2;         /* KVM_CAP_USER_MEMORY2 */
        bool guest_memfd;          /* KVM_CAP_GUEST_MEMFD */
        uint64_t memory_attributes; /* KVM_CAP_MEMORY_ATTRIBUTES: supported attribute bits, 0 when absent */
        bool manual_dirty_log_protect; /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 enabled for the VM */
        uint64_t host_memory;      /* bytes of host RAM; 0 when unknown */
        bool hugetlb_pool;         /* the 2 MiB huge page pool exists */
        uint64_t hugetlb_free_pages;
} MemslotLimits;

typedef struct MemslotError {
        char code[40];        /* API error code */
        int http_status;
        char message[384];
        char field[40];       /* the request field at fault, "" when none */
        char capability[48];  /* the missing KVM capability (code "unsupported") */
        int64_t other_slot;   /* memslot_overlap: the slot in the way, else -1 */
        char step[48];        /* memslot_apply_failed: the step that failed */
        int errnum;           /* memslot_apply_failed: its errno */
        char guest_impact[200]; /* what the guest sees (force of a ram slot) */
} MemslotError;

const char *memslot_backing_to_string(MemslotBacking b);
int memslot_backing_from_string(const char *s, MemslotBacking *ret);
const char *memslot_role_to_string(MemslotRole r);
/* The page size a backing needs size and gpa aligned to. */
uint64_t memslot_backing_alignment(MemslotBacking b);

void memslot_error_init(MemslotError *e);
/* Sets e (code, status, message) and returns err (negative). */
int memslot_error_set(MemslotError *e, int err, const char *code, int http_status, const char *field,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* The error code's HTTP status (400 for unknown codes). */
int memslot_error_http_status(const char *code);

/* Index of (slot, as_id) in slots, or -ENOENT. */
int memslot_find(const MemslotInfo *slots, size_t n, uint32_t slot, uint16_t as_id);

/* Lowest free slot id in as_id, or -ENOSPC. */
int memslot_pick_id(const MemslotLimits *l, const MemslotInfo *slots, size_t n, uint16_t as_id, uint32_t *ret);

/* A new slot: id and address space in range and free, size and gpa aligned for the backing, no wrap,
 * inside the guest's physical address width, not too many pages, no overlap (naming the other slot),
 * flags the VM supports, backing available. */
int memslot_check_create(const MemslotLimits *l, const MemslotInfo *slots, size_t n, const MemslotInfo *new,
                         MemslotError *e);
/* vm_live: the VM has run (running or paused); then a ram slot needs force. */
int memslot_check_delete(const MemslotLimits *l, const MemslotInfo *slots, size_t n, uint32_t slot, uint16_t as_id,
                         bool vm_live, bool force, MemslotError *e);
int memslot_check_move(const MemslotLimits *l, const MemslotInfo *slots, size_t n, uint32_t slot, uint16_t as_id,
                       uint64_t new_gpa, bool vm_live, bool force, MemslotError *e);
/* readonly: -1 when not given, else it must equal the slot's (KVM cannot toggle it). */
int memslot_check_set_flags(const MemslotLimits *l, const MemslotInfo *slots, size_t n, uint32_t slot,
                            uint16_t as_id, bool dirty_log, int readonly, MemslotError *e);
int memslot_check_dirty_log(const MemslotLimits *l, const MemslotInfo *slots, size_t n, uint32_t slot,
                            uint16_t as_id, bool clear, MemslotError *e);
/* KVM_SET_MEMORY_ATTRIBUTES(PRIVATE) over [gpa, gpa+size): needs KVM_CAP_MEMORY_ATTRIBUTES with the
 * PRIVATE bit, and the range inside guest_memfd slots. */
int memslot_check_private(const MemslotLimits *l, const MemslotInfo *slots, size_t n, uint64_t gpa, uint64_t size,
                          MemslotError *e);

/* What the guest sees once a slot is deleted, or moved from gpa. */
void memslot_guest_impact_delete(const MemslotInfo *s, char *buf, size_t n);
void memslot_guest_impact_move(const MemslotInfo *s, uint64_t new_gpa, char *buf, size_t n);

/* The memslot object of the API: {"slot", "as_id", "gpa", "size", "flags": {"dirty_log",
 * "readonly"}, "backing", "role", "state"} (+ "guest_memfd_offset" for guest_memfd). */
int memslot_info_to_json(const MemslotInfo *s, const char *state, json_object **ret);
/* {"code", "message", "details": {...}} */
int memslot_error_to_json(const MemslotError *e, json_object **ret);
int memslot_limits_to_json(const MemslotLimits *l, json_object **ret);
