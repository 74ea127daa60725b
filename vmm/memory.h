/* SPDX-License-Identifier: MIT */
/* Guest memory of one VM: the backing (memfd, hugetlb memfd or anonymous) and the VMM's memslot
 * table, which mirrors every slot KVM has for the VM. The RAM slots are laid out around the x86 PCI
 * hole: [0, min(size, 3GiB)) and, for larger guests, [4GiB, 4GiB + size - 3GiB). */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memslot-rules.h"
#include "spec.h"

typedef struct Memslot {
        uint32_t slot; /* KVM slot id, without the address-space bits */
        uint16_t as_id;
        uint32_t flags; /* KVM_MEM_* */
        uint64_t gpa;
        uint64_t size;
        uint8_t *host; /* userspace_addr */
        MemslotBacking backing;
        MemslotRole role;
        bool registered; /* KVM knows this slot */
        /* What a user slot owns (a RAM slot points into GuestMemory.base and owns nothing): */
        uint8_t *map;       /* == host, map_size bytes */
        uint64_t map_size;
        int backing_fd;     /* memfd, or -1 */
        int guest_memfd;    /* KVM_CREATE_GUEST_MEMFD fd, or -1 */
        uint64_t guest_memfd_offset;
} Memslot;

typedef struct GuestMemory {
        VmMemoryBacking backing;
        int backing_fd; /* memfd for memfd/hugetlb, -1 for anonymous */
        uint8_t *base;  /* the whole RAM mapping, size bytes */
        uint64_t size;
        Memslot *slots;
        size_t n_slots;
        MemslotLimits limits; /* probed by vm_memslot_probe() */
        struct MemslotPool *pool; /* prepares and releases user slots' backings; NULL until the first one */
        /* Taken for writing while the slot table changes (insert, remove, move) on the main thread;
         * device I/O threads hold it for reading while they use host pointers of a request. */
        pthread_rwlock_t lock;
} GuestMemory;

static inline void guest_memory_read_lock(GuestMemory *m) {
        pthread_rwlock_rdlock(&m->lock);
}
static inline void guest_memory_read_unlock(GuestMemory *m) {
        pthread_rwlock_unlock(&m->lock);
}
static inline void guest_memory_write_lock(GuestMemory *m) {
        pthread_rwlock_wrlock(&m->lock);
}
static inline void guest_memory_write_unlock(GuestMemory *m) {
        pthread_rwlock_unlock(&m->lock);
}

/* Allocates and maps the backing of size bytes. hugetlb needs enough free 2 MiB pages
 * (-ENOMEM otherwise, see guest_memory_hugetlb_free_pages()). No KVM call. */
int guest_memory_new(uint64_t size, VmMemoryBacking backing, GuestMemory **ret);
GuestMemory *guest_memory_free(GuestMemory *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(GuestMemory *, guest_memory_free);

/* Free 2 MiB huge pages on the host, or -errno when the pool does not exist. */
int guest_memory_hugetlb_free_pages(uint64_t *ret);

/* Fills the table with the RAM slots (not yet registered with KVM). */
int guest_memory_layout_ram(GuestMemory *m);
/* KVM_SET_USER_MEMORY_REGION for every unregistered slot. */
int guest_memory_register(GuestMemory *m, int vm_fd);

Memslot *guest_memory_find_slot(GuestMemory *m, uint32_t slot, uint16_t as_id);
/* The table as the rules see it (caller frees; NULL with n == 0 is fine). */
int guest_memory_slot_infos(const GuestMemory *m, MemslotInfo **ret, size_t *ret_n);
void memslot_to_info(const Memslot *s, MemslotInfo *ret);
/* Adds a registered slot to the table (taking what it owns), or removes entry i (releasing what it owns,
 * through the pool's thread where the VM has one). Both take the write lock. */
int guest_memory_slot_insert(GuestMemory *m, const Memslot *s);
void guest_memory_slot_remove(GuestMemory *m, size_t i);
/* Unmaps and closes what a user slot owns; safe on a RAM slot (it owns nothing). */
void memslot_release(Memslot *s);
/* Host address for [gpa, gpa+len) when the range lies in one slot, else NULL. */
void *guest_memory_gpa_to_hva(const GuestMemory *m, uint64_t gpa, uint64_t len);
/* Copies into guest memory; -EFAULT when the range is not RAM. */
int guest_memory_write(GuestMemory *m, uint64_t gpa, const void *data, size_t len);
/* The RAM below the PCI hole, and above 4 GiB (0 when none). */
uint64_t guest_memory_low_size(uint64_t size);
uint64_t guest_memory_high_size(uint64_t size);
