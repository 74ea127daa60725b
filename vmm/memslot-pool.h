/* SPDX-License-Identifier: MIT */
/* Memfd backings of user memslots, prepared and released off the control path.
 *
 * Creating a memfd backing (memfd_create, ftruncate, mmap, madvise) and releasing one (munmap,
 * close) are about half of what a memslot create or delete costs the VMM besides the ioctl itself
 * (≈13 of 25 µs and ≈11 of 20 µs for an empty 2 MiB slot, docs/BENCHMARKS.md). The
 * pool moves both out of the request: after a create of size S it prepares one spare backing of
 * size S for the next create, and a deleted slot's backing is handed over and released there: a
 * populated slot's release takes time in proportion to its memory (0.1–0.2 s per GiB here), which would
 * otherwise hold the VMM's control loop and the DELETE's answer. The work is done by one thread per
 * VMM, started with the first user slot, which the control loop wakes after its reply
 * (memslot_pool_hold_wakeups()).
 *
 * A spare is a fresh memfd, sized, mapped MAP_SHARED | MAP_NORESERVE and never touched: it holds no
 * memory until a guest writes to it, and no guest data (a deleted slot's backing is never reused).
 * At most MEMSLOT_POOL_SPARES spares of different sizes are kept (least recently wanted first out);
 * at most MEMSLOT_POOL_RETIRED backings wait to be released, beyond that the caller releases inline.
 * Only plain memfd backings are pooled: a hugetlb spare would hold huge pages from the host pool, and
 * guest_memfd belongs to one VM's KVM state. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define MEMSLOT_POOL_SPARES 2
#define MEMSLOT_POOL_RETIRED 16

typedef struct MemslotPool MemslotPool;

typedef struct MemslotPoolStats {
        uint64_t taken;     /* creates served from a spare */
        uint64_t missed;    /* creates that prepared their backing inline */
        uint64_t prepared;  /* spares the thread prepared */
        uint64_t retired;   /* backings the thread released */
        uint64_t failed;    /* spare preparations that failed (the next create prepares inline) */
} MemslotPoolStats;

/* Starts the pool's thread. NULL with errno set when it can't. */
MemslotPool *memslot_pool_new(void);
/* Stops the thread and releases every spare and every retired backing. */
MemslotPool *memslot_pool_free(MemslotPool *p);

/* A spare of exactly size bytes: 1 with *ret_fd and *ret_map (the caller owns both now), 0 without
 * one. Either way, a spare of this size is prepared for the next call. */
int memslot_pool_take(MemslotPool *p, uint64_t size, int *ret_fd, uint8_t **ret_map);
/* Hands a backing (mapping of map_size bytes, its memfd and guest_memfd, each optional: NULL, -1) over
 * to be unmapped and closed by the thread. false when the queue is full: the caller releases it. */
bool memslot_pool_retire(MemslotPool *p, uint8_t *map, uint64_t map_size, int fd, int guest_memfd);
/* Holds the wake-ups of every pool for work that this thread gives it until memslot_pool_wake():
 * the control loop holds them while it handles a request, so that the wake-up (a futex call, and
 * an inter-processor interrupt when the pool's CPU is idle) comes after the reply is sent and not
 * before it. */
void memslot_pool_hold_wakeups(void);
/* Ends the hold and wakes p's thread if work was given to it meanwhile (p may be NULL). */
void memslot_pool_wake(MemslotPool *p);
/* Waits until the thread has nothing left to do (tests). */
void memslot_pool_settle(MemslotPool *p);
void memslot_pool_stats(MemslotPool *p, MemslotPoolStats *ret);

/* What the pool prepares, also used inline: a memfd of size bytes (MFD_HUGETLB with huge) mapped
 * read-write and shared, MAP_NORESERVE unless huge, excluded from core dumps. On failure returns a
 * negative errno and *ret_step names the call that failed; nothing is left open. */
int memslot_backing_prepare(uint64_t size, bool huge, int *ret_fd, uint8_t **ret_map, const char **ret_step);
