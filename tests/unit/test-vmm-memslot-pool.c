/* SPDX-License-Identifier: MIT */
/* The memslot backing pool: spares of the size last asked for, prepared by its thread; retired
 * backings unmapped and closed there; everything released when the pool goes. Real memfds and
 * mappings: a released fd is checked with fcntl, a released mapping with mincore. */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memslot-pool.h"
#include "test.h"

#define MiB (1024ull * 1024)

static bool fd_open(int fd) {
        return fcntl(fd, F_GETFD) >= 0;
}

static bool mapped(void *p) {
        unsigned char v;
        return mincore(p, 4096, &v) == 0; /* ENOMEM once unmapped */
}

TEST(first_create_misses_then_a_spare_of_that_size_is_ready) {
        MemslotPool *p = memslot_pool_new();
        ASSERT(p);
        int fd = -1;
        uint8_t *map = NULL;
        CHECK_EQ_INT(memslot_pool_take(p, 2 * MiB, &fd, &map), 0);
        CHECK_EQ_INT(fd, -1);
        memslot_pool_settle(p);
        ASSERT_EQ_INT(memslot_pool_take(p, 2 * MiB, &fd, &map), 1);
        ASSERT(fd >= 0 && map);
        /* exactly the size asked for, zero, writable, shared with the memfd */
        CHECK_EQ_INT(lseek(fd, 0, SEEK_END), (long long) (2 * MiB));
        CHECK_EQ_INT(map[0] | map[2 * MiB - 1], 0);
        map[4096] = 0x5a;
        unsigned char back = 0;
        CHECK_EQ_INT(pread(fd, &back, 1, 4096), 1);
        CHECK_EQ_INT(back, 0x5a);
        /* a different size is not served from it */
        int fd2 = -1;
        uint8_t *map2 = NULL;
        CHECK_EQ_INT(memslot_pool_take(p, 4 * MiB, &fd2, &map2), 0);
        MemslotPoolStats st;
        memslot_pool_stats(p, &st);
        CHECK_EQ_U64(st.taken, 1);
        CHECK_EQ_U64(st.missed, 2);
        munmap(map, 2 * MiB);
        close(fd);
        memslot_pool_free(p);
}

TEST(retired_backings_are_unmapped_and_closed) {
        MemslotPool *p = memslot_pool_new();
        ASSERT(p);
        int fd = -1, gfd = -1;
        uint8_t *map = NULL;
        const char *step = NULL;
        ASSERT_EQ_INT(memslot_backing_prepare(4 * MiB, false, &fd, &map, &step), 0);
        map[0] = 1; /* a populated page, as a guest would leave it */
        gfd = dup(fd);
        ASSERT(gfd >= 0);
        ASSERT(mapped(map));
        CHECK(memslot_pool_retire(p, map, 4 * MiB, fd, gfd));
        memslot_pool_settle(p);
        CHECK(!fd_open(fd));
        CHECK(!fd_open(gfd));
        CHECK(!mapped(map));
        MemslotPoolStats st;
        memslot_pool_stats(p, &st);
        CHECK_EQ_U64(st.retired, 1);
        memslot_pool_free(p);
}

/* While this thread holds wake-ups, work it gives waits in the queue; memslot_pool_wake() starts
 * it. Nothing is lost: a retire left held is released by the wake, a wanted spare prepared. */
TEST(held_wakeups_leave_the_work_queued_until_the_wake) {
        MemslotPool *p = memslot_pool_new();
        ASSERT(p);
        int fd = -1;
        uint8_t *map = NULL;
        const char *step = NULL;
        ASSERT_EQ_INT(memslot_backing_prepare(2 * MiB, false, &fd, &map, &step), 0);
        /* one round of work first: once settled, the thread waits to be woken */
        CHECK(memslot_pool_retire(p, NULL, 0, dup(fd), -1));
        memslot_pool_settle(p);
        memslot_pool_hold_wakeups();
        CHECK(memslot_pool_retire(p, map, 2 * MiB, fd, -1));
        int tfd = -1;
        uint8_t *tmap = NULL;
        CHECK_EQ_INT(memslot_pool_take(p, 4 * MiB, &tfd, &tmap), 0);
        usleep(50 * 1000); /* a woken thread would have released and prepared by now */
        MemslotPoolStats st;
        memslot_pool_stats(p, &st);
        CHECK_EQ_U64(st.retired, 1);
        CHECK_EQ_U64(st.prepared, 0);
        CHECK(mapped(map));
        memslot_pool_wake(p);
        memslot_pool_settle(p);
        memslot_pool_stats(p, &st);
        CHECK_EQ_U64(st.retired, 2);
        CHECK_EQ_U64(st.prepared, 1); /* (map's range may be the new spare's now) */
        /* the hold is over: the next work wakes the thread by itself */
        ASSERT_EQ_INT(memslot_pool_take(p, 4 * MiB, &tfd, &tmap), 1);
        for (int i = 0; i < 500; i++) {
                memslot_pool_stats(p, &st);
                if (st.prepared == 2)
                        break;
                usleep(2000);
        }
        CHECK_EQ_U64(st.prepared, 2);
        munmap(tmap, 4 * MiB);
        close(tfd);
        memslot_pool_free(p);
}

TEST(every_retire_is_queued_or_refused_and_queued_ones_are_released) {
        MemslotPool *p = memslot_pool_new();
        ASSERT(p);
        /* The thread takes entries while they are queued, so how many are refused varies from run to
         * run; what must hold is that each retire is queued or refused (then the caller releases it),
         * and that every queued one is released. */
        int fds[MEMSLOT_POOL_RETIRED + 8];
        size_t refused = 0, queued = 0;
        for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
                fds[i] = memfd_create("test", MFD_CLOEXEC);
                ASSERT(fds[i] >= 0);
                if (memslot_pool_retire(p, NULL, 0, fds[i], -1))
                        queued++;
                else {
                        refused++;
                        close(fds[i]); /* the caller's to release */
                }
        }
        memslot_pool_settle(p);
        for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
                CHECK(!fd_open(fds[i]));
        MemslotPoolStats st;
        memslot_pool_stats(p, &st);
        CHECK_EQ_U64(st.retired, queued);
        CHECK_EQ_U64(queued + refused, sizeof fds / sizeof fds[0]);
        memslot_pool_free(p);
}

TEST(sizes_beyond_the_spare_count_replace_the_oldest) {
        MemslotPool *p = memslot_pool_new();
        ASSERT(p);
        int fd;
        uint8_t *map;
        /* want 2, 4 and 6 MiB: with two spares kept, 2 MiB (the oldest) is dropped */
        for (uint64_t size = 2 * MiB; size <= 6 * MiB; size += 2 * MiB) {
                CHECK_EQ_INT(memslot_pool_take(p, size, &fd, &map), 0);
                memslot_pool_settle(p);
        }
        CHECK_EQ_INT(memslot_pool_take(p, 2 * MiB, &fd, &map), 0);
        memslot_pool_settle(p);
        /* now 6 and 2 MiB are kept, 4 MiB went */
        ASSERT_EQ_INT(memslot_pool_take(p, 6 * MiB, &fd, &map), 1);
        munmap(map, 6 * MiB);
        close(fd);
        ASSERT_EQ_INT(memslot_pool_take(p, 2 * MiB, &fd, &map), 1);
        munmap(map, 2 * MiB);
        close(fd);
        CHECK_EQ_INT(memslot_pool_take(p, 4 * MiB, &fd, &map), 0);
        memslot_pool_free(p);
}

TEST(free_releases_spares_and_pending_work) {
        MemslotPool *p = memslot_pool_new();
        ASSERT(p);
        int fd = -1;
        uint8_t *map = NULL;
        CHECK_EQ_INT(memslot_pool_take(p, 2 * MiB, &fd, &map), 0);
        memslot_pool_settle(p); /* a spare now exists: free must release it (valgrind and ASan see a leak otherwise) */
        int rfd = memfd_create("test", MFD_CLOEXEC);
        ASSERT(rfd >= 0);
        CHECK(memslot_pool_retire(p, NULL, 0, rfd, -1));
        memslot_pool_free(p);
        CHECK(!fd_open(rfd));
}

TEST(inline_preparation_names_the_failing_step) {
        int fd = -1;
        uint8_t *map = NULL;
        const char *step = NULL;
        /* a size no memfd can have: ftruncate refuses it */
        int r = memslot_backing_prepare(UINT64_MAX & ~4095ull, false, &fd, &map, &step);
        CHECK(r < 0);
        CHECK(step && (strcmp(step, "ftruncate") == 0 || strcmp(step, "mmap") == 0));
        CHECK_EQ_INT(fd, -1);
}
