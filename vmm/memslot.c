/* SPDX-License-Identifier: MIT */
#include "memslot.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm.h"
#include "memslot-pool.h"

/* The huge-page pool is a sysfs read (open, read, close: tens of µs): done only when asked for. */
static void limits_refresh(MemslotLimits *l, bool hugetlb) {
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        uint64_t free_pages = 0;

        l->host_memory = pages > 0 && page > 0 ? (uint64_t) pages * (uint64_t) page : 0;
        if (!hugetlb)
                return;
        l->hugetlb_pool = guest_memory_hugetlb_free_pages(&free_pages) >= 0;
        l->hugetlb_free_pages = l->hugetlb_pool ? free_pages : 0;
}

static unsigned guest_phys_bits(const struct kvm_cpuid2 *cpuid) {
        for (uint32_t i = 0; cpuid && i < cpuid->nent; i++) {
                const struct kvm_cpuid_entry2 *c = &cpuid->entries[i];
                if (c->function != 0x80000008)
                        continue;
                /* EAX[23:16] is the guest's width where KVM reports one (GuestPhysBits), else EAX[7:0]. */
                unsigned guest = (c->eax >> 16) & 0xff;
                return guest ? guest : c->eax & 0xff;
        }
        return 36; /* no leaf 0x80000008: the architectural default */
}

int vm_memslot_probe(Vm *vm) {
        MemslotLimits *l = &vm->mem->limits;
        int fd = vm->vm_fd;

        *l = (MemslotLimits){
                .nr_memslots = (uint32_t) kvm_check_extension(fd, KVM_CAP_NR_MEMSLOTS),
                .address_spaces = (uint16_t) MAX(kvm_check_extension(fd, KVM_CAP_MULTI_ADDRESS_SPACE), 1),
                .phys_bits = guest_phys_bits(vm->cpuid),
                .readonly_mem = kvm_check_extension(fd, KVM_CAP_READONLY_MEM) > 0,
                .user_memory2 = kvm_check_extension(fd, KVM_CAP_USER_MEMORY2) > 0,
                .guest_memfd = kvm_check_extension(fd, KVM_CAP_GUEST_MEMFD) > 0,
                .memory_attributes = (uint64_t) kvm_check_extension(fd, KVM_CAP_MEMORY_ATTRIBUTES),
        };
        if (l->nr_memslots == 0)
                l->nr_memslots = 32; /* KVM_CAP_NR_MEMSLOTS absent: KVM's historic minimum */
        if (kvm_check_extension(fd, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) {
                int r = kvm_enable_cap(fd, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
                if (r < 0)
                        return r;
                l->manual_dirty_log_protect = true;
        }
        limits_refresh(l, true);
        return 0;
}

void vm_memslot_limits(Vm *vm, bool hugetlb, MemslotLimits *ret) {
        limits_refresh(&vm->mem->limits, hugetlb);
        *ret = vm->mem->limits;
}

static bool vm_live(Vm *vm) {
        pthread_mutex_lock(&vm->lock);
        bool live = vm->state == VM_STATE_RUNNING || vm->state == VM_STATE_PAUSED;
        pthread_mutex_unlock(&vm->lock);
        return live;
}

static int apply_failed(MemslotError *e, int err, const char *op, uint32_t slot, const char *step) {
        snprintf(e->step, sizeof e->step, "%s", step);
        e->errnum = -err;
        return memslot_error_set(e, err, "memslot_apply_failed", err == -ENOMEM || err == -EAGAIN ? 503 : 500, NULL,
                                 "%s of slot %" PRIu32 " failed at %s: %s (%s); the slot, its backing and guest "
                                 "memory are unchanged",
                                 op, slot, step, strerror(-err), strerrorname_np(-err) ?: "?");
}

/* One KVM_SET_USER_MEMORY_REGION(2) for s with the given flags, base and size (0: delete). */
static int set_region(Vm *vm, const Memslot *s, uint32_t flags, uint64_t gpa, uint64_t size, const char **ret_step) {
        uint32_t id = s->slot | ((uint32_t) s->as_id << 16);
        if (s->guest_memfd >= 0) {
                struct kvm_userspace_memory_region2 region = {
                        .slot = id,
                        .flags = flags | KVM_MEM_GUEST_MEMFD,
                        .guest_phys_addr = gpa,
                        .memory_size = size,
                        .userspace_addr = (uint64_t) (uintptr_t) s->host,
                        .guest_memfd_offset = s->guest_memfd_offset,
                        .guest_memfd = (uint32_t) s->guest_memfd,
                };
                *ret_step = "KVM_SET_USER_MEMORY_REGION2";
                return kvm_ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION2, &region);
        }
        struct kvm_userspace_memory_region region = {
                .slot = id,
                .flags = flags,
                .guest_phys_addr = gpa,
                .memory_size = size,
                .userspace_addr = (uint64_t) (uintptr_t) s->host,
        };
        *ret_step = "KVM_SET_USER_MEMORY_REGION";
        return kvm_ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region);
}

/* Allocates and maps the backing of a new slot into s. On failure s owns nothing and *ret_step names
 * the call that failed. */
static int backing_prepare(Vm *vm, Memslot *s, const char **ret_step) {
        int prot = PROT_READ | PROT_WRITE;
        int r;

        s->backing_fd = s->guest_memfd = -1;
        s->map = MAP_FAILED;
        s->map_size = s->size;
        switch (s->backing) {
        case MEMSLOT_BACKING_ANONYMOUS:
                *ret_step = "mmap";
                s->map = mmap(NULL, s->size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
                if (s->map == MAP_FAILED)
                        goto fail_errno;
                (void) madvise(s->map, s->size, MADV_DONTDUMP);
                break;
        case MEMSLOT_BACKING_MEMFD:
                /* A spare prepared after the previous create of this size, where there is one. */
                if (!vm->mem->pool)
                        vm->mem->pool = memslot_pool_new(); /* without one (no thread), everything is inline */
                if (vm->mem->pool && memslot_pool_take(vm->mem->pool, s->size, &s->backing_fd, &s->map) > 0)
                        break;
                __attribute__((fallthrough));
        case MEMSLOT_BACKING_HUGETLB:
        case MEMSLOT_BACKING_GUEST_MEMFD:
                r = memslot_backing_prepare(s->size, s->backing == MEMSLOT_BACKING_HUGETLB, &s->backing_fd, &s->map,
                                            ret_step);
                if (r < 0)
                        goto fail;
                break;
        default:
                *ret_step = "backing";
                r = -EINVAL;
                goto fail;
        }
        s->host = s->map;

        if (s->backing == MEMSLOT_BACKING_GUEST_MEMFD) {
                struct kvm_create_guest_memfd gmem = { .size = s->guest_memfd_offset + s->size };
                *ret_step = "KVM_CREATE_GUEST_MEMFD";
                r = kvm_ioctl(vm->vm_fd, KVM_CREATE_GUEST_MEMFD, &gmem);
                if (r < 0)
                        goto fail;
                s->guest_memfd = r;
        }
        return 0;

fail_errno:
        r = negative_errno();
fail:
        if (s->map == MAP_FAILED)
                s->map = NULL;
        memslot_release(s);
        s->host = NULL;
        return r;
}

/* The table as MemslotInfo, for the rules. */
typedef struct Table {
        MemslotInfo *infos;
        size_t n;
} Table;

static void table_done(Table *t) {
        free(t->infos);
}

static int table_get(Vm *vm, Table *t) {
        return guest_memory_slot_infos(vm->mem, &t->infos, &t->n);
}

int vm_memslot_create(Vm *vm, const MemslotInfo *req, bool pick_id, MemslotInfo *ret, MemslotError *e) {
        _cleanup_(table_done) Table t = {};
        MemslotLimits l;
        MemslotInfo info = *req;
        const char *step = "";
        int r;

        info.role = MEMSLOT_ROLE_USER;
        r = table_get(vm, &t);
        if (r < 0)
                return r;
        vm_memslot_limits(vm, info.backing == MEMSLOT_BACKING_HUGETLB, &l);
        if (pick_id && memslot_pick_id(&l, t.infos, t.n, info.as_id, &info.slot) < 0)
                return memslot_error_set(e, -ENOSPC, "memslot_no_free_id", 0, "slot",
                                         "every slot id of address space %u is in use", info.as_id);
        r = memslot_check_create(&l, t.infos, t.n, &info, e);
        if (r < 0)
                return r;

        Memslot s = {
                .slot = info.slot,
                .as_id = info.as_id,
                .flags = (info.dirty_log ? KVM_MEM_LOG_DIRTY_PAGES : 0) | (info.readonly ? KVM_MEM_READONLY : 0),
                .gpa = info.gpa,
                .size = info.size,
                .backing = info.backing,
                .role = MEMSLOT_ROLE_USER,
                .guest_memfd_offset = info.guest_memfd_offset,
        };
        r = backing_prepare(vm, &s, &step);
        if (r < 0)
                return apply_failed(e, r, "create", info.slot, step);
        /* Room in the table first: once KVM has the slot, recording it must not fail. */
        r = guest_memory_slot_insert(vm->mem, &s);
        if (r < 0) {
                memslot_release(&s);
                return apply_failed(e, r, "create", info.slot, "table");
        }
        Memslot *added = &vm->mem->slots[vm->mem->n_slots - 1];
        r = set_region(vm, added, added->flags, added->gpa, added->size, &step);
        if (r < 0) {
                guest_memory_slot_remove(vm->mem, vm->mem->n_slots - 1);
                return apply_failed(e, r, "create", info.slot, step);
        }
        added->registered = true;
        memslot_to_info(added, ret);
        return 0;
}

int vm_memslot_delete(Vm *vm, uint32_t slot, uint16_t as_id, bool force, MemslotInfo *ret_deleted, MemslotError *e) {
        _cleanup_(table_done) Table t = {};
        MemslotLimits l;
        const char *step = "";
        int r;

        r = table_get(vm, &t);
        if (r < 0)
                return r;
        l = vm->mem->limits; /* free memory matters only to create */
        r = memslot_check_delete(&l, t.infos, t.n, slot, as_id, vm_live(vm), force, e);
        if (r < 0)
                return r;
        int i = memslot_find(t.infos, t.n, slot, as_id);
        Memslot *s = &vm->mem->slots[i];
        r = set_region(vm, s, s->flags, s->gpa, 0, &step);
        if (r < 0)
                return apply_failed(e, r, "delete", slot, step);
        if (s->role == MEMSLOT_ROLE_RAM && force)
                memslot_guest_impact_delete(&t.infos[i], e->guest_impact, sizeof e->guest_impact);
        *ret_deleted = t.infos[i];
        /* Only now, with KVM no longer mapping it, the backing of a user slot goes. */
        guest_memory_slot_remove(vm->mem, (size_t) i);
        return 0;
}

int vm_memslot_move(Vm *vm, uint32_t slot, uint16_t as_id, uint64_t new_gpa, bool force, MemslotInfo *ret,
                    MemslotError *e) {
        _cleanup_(table_done) Table t = {};
        MemslotLimits l;
        const char *step = "";
        int r;

        r = table_get(vm, &t);
        if (r < 0)
                return r;
        l = vm->mem->limits; /* free memory matters only to create */
        r = memslot_check_move(&l, t.infos, t.n, slot, as_id, new_gpa, vm_live(vm), force, e);
        if (r < 0)
                return r;
        int i = memslot_find(t.infos, t.n, slot, as_id);
        Memslot *s = &vm->mem->slots[i];
        r = set_region(vm, s, s->flags, new_gpa, s->size, &step);
        if (r < 0)
                return apply_failed(e, r, "move", slot, step);
        if (s->role == MEMSLOT_ROLE_RAM && force)
                memslot_guest_impact_move(&t.infos[i], new_gpa, e->guest_impact, sizeof e->guest_impact);
        guest_memory_write_lock(vm->mem); /* device threads translate addresses through the table */
        s->gpa = new_gpa;
        guest_memory_write_unlock(vm->mem);
        memslot_to_info(s, ret);
        return 0;
}

int vm_memslot_set_flags(Vm *vm, uint32_t slot, uint16_t as_id, bool dirty_log, int readonly, MemslotInfo *ret,
                         MemslotError *e) {
        _cleanup_(table_done) Table t = {};
        MemslotLimits l;
        const char *step = "";
        int r;

        r = table_get(vm, &t);
        if (r < 0)
                return r;
        l = vm->mem->limits; /* free memory matters only to create */
        r = memslot_check_set_flags(&l, t.infos, t.n, slot, as_id, dirty_log, readonly, e);
        if (r < 0)
                return r;
        int i = memslot_find(t.infos, t.n, slot, as_id);
        Memslot *s = &vm->mem->slots[i];
        uint32_t flags = (s->flags & ~(uint32_t) KVM_MEM_LOG_DIRTY_PAGES) | (dirty_log ? KVM_MEM_LOG_DIRTY_PAGES : 0);
        if (flags != s->flags) {
                r = set_region(vm, s, flags, s->gpa, s->size, &step);
                if (r < 0)
                        return apply_failed(e, r, "flags change", slot, step);
                s->flags = flags;
        }
        memslot_to_info(s, ret);
        return 0;
}

void memslot_dirty_log_done(MemslotDirtyLog *d) {
        free(d->bitmap);
        d->bitmap = NULL;
}

int vm_memslot_dirty_log(Vm *vm, uint32_t slot, uint16_t as_id, bool clear, MemslotDirtyLog *ret, MemslotError *e) {
        _cleanup_(table_done) Table t = {};
        _cleanup_free_ uint64_t *bitmap = NULL;
        MemslotLimits l;
        int r;

        r = table_get(vm, &t);
        if (r < 0)
                return r;
        l = vm->mem->limits; /* free memory matters only to create */
        r = memslot_check_dirty_log(&l, t.infos, t.n, slot, as_id, clear, e);
        if (r < 0)
                return r;
        int i = memslot_find(t.infos, t.n, slot, as_id);
        uint64_t pages = t.infos[i].size / MEMSLOT_PAGE_SIZE;
        size_t words = (size_t) ((pages + 63) / 64);
        bitmap = calloc(MAX(words, (size_t) 1), sizeof *bitmap);
        if (!bitmap)
                return -ENOMEM;
        uint32_t id = slot | ((uint32_t) as_id << 16);
        struct kvm_dirty_log log = { .slot = id, .dirty_bitmap = bitmap };
        r = kvm_ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log);
        if (r < 0)
                return apply_failed(e, r, "dirty log", slot, "KVM_GET_DIRTY_LOG");
        uint64_t dirty = 0;
        for (size_t w = 0; w < words; w++)
                dirty += (uint64_t) __builtin_popcountll(bitmap[w]);
        bool cleared = !l.manual_dirty_log_protect; /* without manual protection, reading cleared it */
        if (clear && l.manual_dirty_log_protect && dirty > 0) {
                struct kvm_clear_dirty_log cl = {
                        .slot = id,
                        .num_pages = (uint32_t) pages,
                        .first_page = 0,
                        .dirty_bitmap = bitmap,
                };
                r = kvm_ioctl(vm->vm_fd, KVM_CLEAR_DIRTY_LOG, &cl);
                if (r < 0)
                        return apply_failed(e, r, "dirty log clear", slot, "KVM_CLEAR_DIRTY_LOG");
                cleared = true;
        } else if (clear)
                cleared = true;
        *ret = (MemslotDirtyLog){
                .slot = t.infos[i],
                .pages = pages,
                .dirty_pages = dirty,
                .bitmap = TAKE_PTR(bitmap),
                .bitmap_bytes = (size_t) ((pages + 7) / 8),
                .cleared = cleared,
        };
        return 0;
}

int vm_memory_set_private(Vm *vm, uint64_t gpa, uint64_t size, bool private, MemslotError *e) {
        _cleanup_(table_done) Table t = {};
        MemslotLimits l;
        int r;

        r = table_get(vm, &t);
        if (r < 0)
                return r;
        l = vm->mem->limits; /* free memory matters only to create */
        r = memslot_check_private(&l, t.infos, t.n, gpa, size, e);
        if (r < 0)
                return r;
        struct kvm_memory_attributes attr = {
                .address = gpa,
                .size = size,
                .attributes = private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0,
        };
        r = kvm_ioctl(vm->vm_fd, KVM_SET_MEMORY_ATTRIBUTES, &attr);
        if (r < 0)
                return apply_failed(e, r, "memory attributes", 0, "KVM_SET_MEMORY_ATTRIBUTES");
        return 0;
}
