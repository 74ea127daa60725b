/* SPDX-License-Identifier: MIT */
#include "memslot-pool.h"

#include <errno.h>
#include <linux/memfd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fd-util.h"
#include "macro.h"
#include "placement.h"

typedef struct Spare {
        uint64_t size; /* 0: free entry */
        int fd;        /* -1 while wanted but not prepared yet */
        uint8_t *map;
        uint64_t wanted; /* pool clock of the last want: the oldest goes first */
} Spare;

typedef struct Retired {
        uint8_t *map;
        uint64_t map_size;
        int fd, guest_memfd;
} Retired;

struct MemslotPool {
        pthread_mutex_t lock;
        pthread_cond_t work;    /* to the thread: something to do, or stop */
        pthread_cond_t settled; /* from the thread: nothing left to do */
        pthread_t thread;
        bool stop, busy;
        bool wake_pending; /* work was given while wake-ups were held (memslot_pool_hold_wakeups()) */
        uint64_t clock;
        Spare spares[MEMSLOT_POOL_SPARES];
        Retired retired[MEMSLOT_POOL_RETIRED];
        size_t n_retired;
        MemslotPoolStats stats;
};

int memslot_backing_prepare(uint64_t size, bool huge, int *ret_fd, uint8_t **ret_map, const char **ret_step) {
        *ret_step = "memfd_create";
        _cleanup_close_ int fd = memfd_create("kvmfleet-memslot", MFD_CLOEXEC | (huge ? MFD_HUGETLB | MFD_HUGE_2MB : 0));
        if (fd < 0)
                return -errno;
        *ret_step = "ftruncate";
        if (ftruncate(fd, (off_t) size) < 0)
                return -errno;
        /* hugetlb: no MAP_NORESERVE, so that a short pool fails here and not at the guest's first touch. */
        *ret_step = "mmap";
        void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | (huge ? 0 : MAP_NORESERVE), fd, 0);
        if (map == MAP_FAILED)
                return -errno;
        (void) madvise(map, size, MADV_DONTDUMP);
        *ret_fd = TAKE_FD(fd);
        *ret_map = map;
        return 0;
}

static void retired_release(Retired *r) {
        if (r->map)
                munmap(r->map, r->map_size);
        safe_close(r->fd);
        safe_close(r->guest_memfd);
}

static void spare_release(uint8_t *map, uint64_t size, int fd) {
        retired_release(&(Retired){ .map = map, .map_size = size, .fd = fd, .guest_memfd = -1 });
}

/* Per thread: only the thread that holds wake-ups defers them. */
static __thread bool hold_wakeups;

void memslot_pool_hold_wakeups(void) {
        hold_wakeups = true;
}

/* With p->lock held: wakes the thread for work just given, or notes it for memslot_pool_wake(). */
static void give_work(MemslotPool *p) {
        if (hold_wakeups)
                p->wake_pending = true;
        else
                pthread_cond_signal(&p->work);
}

/* With p->lock held: the wake-up that a hold left pending, if any. */
static void wake_pending(MemslotPool *p) {
        if (p->wake_pending) {
                p->wake_pending = false;
                pthread_cond_signal(&p->work);
        }
}

void memslot_pool_wake(MemslotPool *p) {
        hold_wakeups = false;
        if (!p)
                return;
        pthread_mutex_lock(&p->lock);
        wake_pending(p);
        pthread_mutex_unlock(&p->lock);
}

static bool has_work(const MemslotPool *p) {
        if (p->n_retired > 0)
                return true;
        for (size_t i = 0; i < MEMSLOT_POOL_SPARES; i++)
                if (p->spares[i].size && p->spares[i].fd < 0)
                        return true;
        return false;
}

static void *pool_thread(void *userdata) {
        MemslotPool *p = userdata;
        /* An ordinary thread, not SCHED_IDLE: munmap holds the VMM's mmap_lock, and a thread that gets
         * no CPU time while holding it would stall the main thread's next mmap behind it. */
        pthread_setname_np(pthread_self(), "memslot-pool");

        pthread_mutex_lock(&p->lock);
        for (;;) {
                while (!p->stop && !has_work(p)) {
                        p->busy = false;
                        pthread_cond_broadcast(&p->settled);
                        pthread_cond_wait(&p->work, &p->lock);
                }
                if (p->stop)
                        break;
                p->busy = true;
                if (p->n_retired > 0) {
                        Retired r = p->retired[--p->n_retired];
                        p->stats.retired++;
                        pthread_mutex_unlock(&p->lock);
                        retired_release(&r);
                        pthread_mutex_lock(&p->lock);
                        continue;
                }
                for (size_t i = 0; i < MEMSLOT_POOL_SPARES; i++) {
                        Spare *s = &p->spares[i];
                        if (!s->size || s->fd >= 0)
                                continue;
                        uint64_t size = s->size, wanted = s->wanted;
                        const char *step;
                        int fd = -1;
                        uint8_t *map = NULL;
                        pthread_mutex_unlock(&p->lock);
                        int r = memslot_backing_prepare(size, false, &fd, &map, &step);
                        pthread_mutex_lock(&p->lock);
                        /* The entry may have been taken or replaced meanwhile: keep the spare only
                         * if it is still wanted for this size. */
                        if (r < 0) {
                                p->stats.failed++;
                                if (s->size == size && s->wanted == wanted && s->fd < 0)
                                        s->size = 0;
                        } else if (s->size == size && s->fd < 0) {
                                s->fd = fd;
                                s->map = map;
                                p->stats.prepared++;
                        } else {
                                pthread_mutex_unlock(&p->lock);
                                spare_release(map, size, fd);
                                pthread_mutex_lock(&p->lock);
                        }
                        break;
                }
        }
        p->busy = false;
        pthread_cond_broadcast(&p->settled);
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

MemslotPool *memslot_pool_new(void) {
        MemslotPool *p = calloc(1, sizeof *p);
        if (!p)
                return NULL;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->work, NULL);
        pthread_cond_init(&p->settled, NULL);
        for (size_t i = 0; i < MEMSLOT_POOL_SPARES; i++)
                p->spares[i].fd = -1;
        /* Preparing and releasing guest memory is the guest's work: on the guest CPUs when the
         * agent places threads, off the CPU that answers the control socket. */
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        int r = placement_guest_attr(&attr);
        r = r < 0 ? -r : pthread_create(&p->thread, &attr, pool_thread, p);
        pthread_attr_destroy(&attr);
        if (r != 0) {
                pthread_cond_destroy(&p->settled);
                pthread_cond_destroy(&p->work);
                pthread_mutex_destroy(&p->lock);
                free(p);
                errno = r;
                return NULL;
        }
        return p;
}

MemslotPool *memslot_pool_free(MemslotPool *p) {
        if (!p)
                return NULL;
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_signal(&p->work);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
        for (size_t i = 0; i < MEMSLOT_POOL_SPARES; i++)
                if (p->spares[i].size && p->spares[i].fd >= 0)
                        spare_release(p->spares[i].map, p->spares[i].size, p->spares[i].fd);
        for (size_t i = 0; i < p->n_retired; i++)
                retired_release(&p->retired[i]);
        pthread_cond_destroy(&p->settled);
        pthread_cond_destroy(&p->work);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
}

int memslot_pool_take(MemslotPool *p, uint64_t size, int *ret_fd, uint8_t **ret_map) {
        int found = 0;
        Spare *s = NULL;

        pthread_mutex_lock(&p->lock);
        p->clock++;
        for (size_t i = 0; i < MEMSLOT_POOL_SPARES && !s; i++)
                if (p->spares[i].size == size)
                        s = &p->spares[i];
        if (s && s->fd >= 0) {
                *ret_fd = s->fd;
                *ret_map = s->map;
                s->fd = -1;
                s->map = NULL;
                found = 1;
        }
        if (found)
                p->stats.taken++;
        else
                p->stats.missed++;
        if (!s) {
                /* A new size: it takes the entry wanted longest ago, whose spare goes to be released. */
                s = &p->spares[0];
                for (size_t i = 1; i < MEMSLOT_POOL_SPARES; i++)
                        if (p->spares[i].wanted < s->wanted)
                                s = &p->spares[i];
                if (s->size && s->fd >= 0) {
                        if (p->n_retired < MEMSLOT_POOL_RETIRED)
                                p->retired[p->n_retired++] = (Retired){ .map = s->map, .map_size = s->size, .fd = s->fd, .guest_memfd = -1 };
                        else
                                spare_release(s->map, s->size, s->fd);
                }
                *s = (Spare){ .size = size, .fd = -1 };
        }
        s->wanted = p->clock;
        give_work(p);
        pthread_mutex_unlock(&p->lock);
        return found;
}

bool memslot_pool_retire(MemslotPool *p, uint8_t *map, uint64_t map_size, int fd, int guest_memfd) {
        pthread_mutex_lock(&p->lock);
        bool queued = p->n_retired < MEMSLOT_POOL_RETIRED;
        if (queued) {
                p->retired[p->n_retired++] = (Retired){ .map = map, .map_size = map_size, .fd = fd, .guest_memfd = guest_memfd };
                give_work(p);
        }
        pthread_mutex_unlock(&p->lock);
        return queued;
}

void memslot_pool_settle(MemslotPool *p) {
        pthread_mutex_lock(&p->lock);
        wake_pending(p);
        while (p->busy || has_work(p))
                pthread_cond_wait(&p->settled, &p->lock);
        pthread_mutex_unlock(&p->lock);
}

void memslot_pool_stats(MemslotPool *p, MemslotPoolStats *ret) {
        pthread_mutex_lock(&p->lock);
        *ret = p->stats;
        pthread_mutex_unlock(&p->lock);
}
