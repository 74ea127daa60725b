/* SPDX-License-Identifier: MIT */
#include "memory.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fd-util.h"
#include "kvm.h"
#include "memslot-pool.h"
#include "str-util.h"

#define HUGE_2M (2ULL << 20)

uint64_t guest_memory_low_size(uint64_t size) {
        return MIN(size, X86_PCI_HOLE_START);
}

uint64_t guest_memory_high_size(uint64_t size) {
        return size > X86_PCI_HOLE_START ? size - X86_PCI_HOLE_START : 0;
}

int guest_memory_hugetlb_free_pages(uint64_t *ret) {
        _cleanup_free_ char *line = NULL;
        int r = read_one_line_file("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", &line);
        if (r < 0)
                return r;
        return safe_atou64(strstrip(line), ret);
}

int guest_memory_new(uint64_t size, VmMemoryBacking backing, GuestMemory **ret) {
        _cleanup_(guest_memory_freep) GuestMemory *m = NULL;
        int prot = PROT_READ | PROT_WRITE;

        if (size == 0 || !IS_ALIGNED(size, 4096))
                return -EINVAL;
        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->backing = backing;
        m->backing_fd = -1;
        pthread_rwlock_init(&m->lock, NULL);
        m->base = MAP_FAILED;
        m->size = size;

        switch (backing) {
        case VM_MEMORY_MEMFD:
        case VM_MEMORY_HUGETLB: {
                unsigned flags = MFD_CLOEXEC;
                if (backing == VM_MEMORY_HUGETLB) {
                        uint64_t free_pages = 0;
                        if (!IS_ALIGNED(size, HUGE_2M))
                                return -EINVAL;
                        if (guest_memory_hugetlb_free_pages(&free_pages) < 0 || free_pages < size / HUGE_2M)
                                return -ENOMEM;
                        flags |= MFD_HUGETLB | MFD_HUGE_2MB;
                }
                m->backing_fd = memfd_create("kvmfleet-guest-ram", flags);
                if (m->backing_fd < 0)
                        return -errno;
                if (ftruncate(m->backing_fd, (off_t) size) < 0)
                        return -errno;
                m->base = mmap(NULL, size, prot, MAP_SHARED | MAP_NORESERVE, m->backing_fd, 0);
                break;
        }
        case VM_MEMORY_ANONYMOUS:
                m->base = mmap(NULL, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
                break;
        default:
                return -EINVAL;
        }
        if (m->base == MAP_FAILED)
                return -errno;
        /* Guest RAM is large and private to the guest: keep it out of core dumps. */
        (void) madvise(m->base, size, MADV_DONTDUMP);
        *ret = TAKE_PTR(m);
        return 0;
}

static MemslotBacking backing_of(VmMemoryBacking b) {
        switch (b) {
        case VM_MEMORY_HUGETLB:
                return MEMSLOT_BACKING_HUGETLB;
        case VM_MEMORY_ANONYMOUS:
                return MEMSLOT_BACKING_ANONYMOUS;
        default:
                return MEMSLOT_BACKING_MEMFD;
        }
}

void memslot_release(Memslot *s) {
        if (s->map && s->map != MAP_FAILED)
                munmap(s->map, s->map_size);
        s->map = NULL;
        s->backing_fd = safe_close(s->backing_fd);
        s->guest_memfd = safe_close(s->guest_memfd);
}

void memslot_to_info(const Memslot *s, MemslotInfo *ret) {
        *ret = (MemslotInfo){
                .slot = s->slot,
                .as_id = s->as_id,
                .gpa = s->gpa,
                .size = s->size,
                .dirty_log = s->flags & KVM_MEM_LOG_DIRTY_PAGES,
                .readonly = s->flags & KVM_MEM_READONLY,
                .backing = s->backing,
                .guest_memfd_offset = s->guest_memfd_offset,
                .role = s->role,
        };
}

int guest_memory_slot_infos(const GuestMemory *m, MemslotInfo **ret, size_t *ret_n) {
        MemslotInfo *infos = calloc(MAX(m->n_slots, 1), sizeof *infos);
        if (!infos)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_slots; i++)
                memslot_to_info(&m->slots[i], &infos[i]);
        *ret = infos;
        *ret_n = m->n_slots;
        return 0;
}

GuestMemory *guest_memory_free(GuestMemory *m) {
        if (!m)
                return NULL;
        memslot_pool_free(m->pool);
        for (size_t i = 0; i < m->n_slots; i++)
                memslot_release(&m->slots[i]);
        if (m->base && m->base != MAP_FAILED)
                munmap(m->base, m->size);
        safe_close(m->backing_fd);
        free(m->slots);
        pthread_rwlock_destroy(&m->lock);
        free(m);
        return NULL;
}

int guest_memory_slot_insert(GuestMemory *m, const Memslot *s) {
        guest_memory_write_lock(m);
        Memslot *n = realloc(m->slots, (m->n_slots + 1) * sizeof *n);
        if (!n) {
                guest_memory_write_unlock(m);
                return -ENOMEM;
        }
        m->slots = n;
        m->slots[m->n_slots++] = *s;
        guest_memory_write_unlock(m);
        return 0;
}

void guest_memory_slot_remove(GuestMemory *m, size_t i) {
        if (i >= m->n_slots)
                return;
        guest_memory_write_lock(m);
        Memslot s = m->slots[i];
        memmove(&m->slots[i], &m->slots[i + 1], (m->n_slots - i - 1) * sizeof *m->slots);
        m->n_slots--;
        guest_memory_write_unlock(m);
        /* Nothing can reach the backing any more: the pool's thread releases it where there is one. */
        if (!m->pool || !s.map || !memslot_pool_retire(m->pool, s.map, s.map_size, s.backing_fd, s.guest_memfd))
                memslot_release(&s);
}

int guest_memory_layout_ram(GuestMemory *m) {
        uint64_t low = guest_memory_low_size(m->size), high = guest_memory_high_size(m->size);
        int r;

        if (m->n_slots > 0)
                return -EBUSY;
        r = guest_memory_slot_insert(m, &(Memslot){ .slot = 0, .gpa = 0, .size = low, .host = m->base,
                                        .backing = backing_of(m->backing), .role = MEMSLOT_ROLE_RAM,
                                        .backing_fd = -1, .guest_memfd = -1 });
        if (r < 0)
                return r;
        if (high > 0) {
                r = guest_memory_slot_insert(m, &(Memslot){ .slot = 1, .gpa = X86_HIGH_RAM_START, .size = high,
                                                .host = m->base + low,
                                                .backing = backing_of(m->backing), .role = MEMSLOT_ROLE_RAM,
                                                .backing_fd = -1, .guest_memfd = -1 });
                if (r < 0)
                        return r;
        }
        return 0;
}

int guest_memory_register(GuestMemory *m, int vm_fd) {
        for (size_t i = 0; i < m->n_slots; i++) {
                Memslot *s = &m->slots[i];
                if (s->registered)
                        continue;
                struct kvm_userspace_memory_region region = {
                        .slot = s->slot | ((uint32_t) s->as_id << 16),
                        .flags = s->flags,
                        .guest_phys_addr = s->gpa,
                        .memory_size = s->size,
                        .userspace_addr = (uint64_t) (uintptr_t) s->host,
                };
                int r = kvm_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region);
                if (r < 0)
                        return r;
                s->registered = true;
        }
        return 0;
}

Memslot *guest_memory_find_slot(GuestMemory *m, uint32_t slot, uint16_t as_id) {
        for (size_t i = 0; i < m->n_slots; i++)
                if (m->slots[i].slot == slot && m->slots[i].as_id == as_id)
                        return &m->slots[i];
        return NULL;
}

void *guest_memory_gpa_to_hva(const GuestMemory *m, uint64_t gpa, uint64_t len) {
        for (size_t i = 0; i < m->n_slots; i++) {
                const Memslot *s = &m->slots[i];
                if (s->as_id != 0 || gpa < s->gpa || gpa - s->gpa > s->size || len > s->size - (gpa - s->gpa))
                        continue;
                return s->host + (gpa - s->gpa);
        }
        return NULL;
}

int guest_memory_write(GuestMemory *m, uint64_t gpa, const void *data, size_t len) {
        void *p = guest_memory_gpa_to_hva(m, gpa, len);
        if (!p)
                return -EFAULT;
        memcpy(p, data, len);
        return 0;
}
