/* SPDX-License-Identifier: MIT */
#include "memslot-rules.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "json-util.h"
#include "macro.h"

static const char *const backing_names[_MEMSLOT_BACKING_MAX] = {
        [MEMSLOT_BACKING_MEMFD] = "memfd",
        [MEMSLOT_BACKING_HUGETLB] = "hugetlb",
        [MEMSLOT_BACKING_ANONYMOUS] = "anonymous",
        [MEMSLOT_BACKING_GUEST_MEMFD] = "guest_memfd",
};

const char *memslot_backing_to_string(MemslotBacking b) {
        return (unsigned) b < _MEMSLOT_BACKING_MAX ? backing_names[b] : "unknown";
}

int memslot_backing_from_string(const char *s, MemslotBacking *ret) {
        for (unsigned i = 0; i < _MEMSLOT_BACKING_MAX; i++)
                if (strcmp(s, backing_names[i]) == 0) {
                        *ret = (MemslotBacking) i;
                        return 0;
                }
        return -EINVAL;
}

const char *memslot_role_to_string(MemslotRole r) {
        return r == MEMSLOT_ROLE_RAM ? "ram" : "user";
}

uint64_t memslot_backing_alignment(MemslotBacking b) {
        return b == MEMSLOT_BACKING_HUGETLB ? MEMSLOT_HUGE_PAGE_SIZE : MEMSLOT_PAGE_SIZE;
}

void memslot_error_init(MemslotError *e) {
        memset(e, 0, sizeof *e);
        e->other_slot = -1;
}

static const struct {
        const char *code;
        int status;
} http_statuses[] = {
        { "invalid_argument", 400 },
        { "not_found", 404 },
        { "memslot_exists", 409 },
        { "memslot_overlap", 409 },
        { "memslot_move_dirty_log", 409 },
        { "memslot_force_required", 409 },
        { "memslot_immutable", 409 },
        { "memslot_dirty_log_disabled", 409 },
        { "memslot_no_free_id", 409 },
        { "memslot_size_invalid", 422 },
        { "memslot_unaligned", 422 },
        { "memslot_out_of_range", 422 },
        { "memslot_too_many_pages", 422 },
        { "memslot_id_out_of_range", 422 },
        { "memslot_flags_invalid", 422 },
        { "memslot_backing_unavailable", 422 },
        { "unsupported", 422 },
        { "memslot_apply_failed", 500 },
};

int memslot_error_http_status(const char *code) {
        for (size_t i = 0; i < ELEMENTSOF(http_statuses); i++)
                if (strcmp(code, http_statuses[i].code) == 0)
                        return http_statuses[i].status;
        return 400;
}

int memslot_error_set(MemslotError *e, int err, const char *code, int http_status, const char *field,
                      const char *fmt, ...) {
        va_list ap;
        snprintf(e->code, sizeof e->code, "%s", code);
        e->http_status = http_status ? http_status : memslot_error_http_status(code);
        snprintf(e->field, sizeof e->field, "%s", field ? field : "");
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof e->message, fmt, ap);
        va_end(ap);
        return err < 0 ? err : -EINVAL;
}

static int set_unsupported(MemslotError *e, const char *field, const char *capability, const char *what) {
        snprintf(e->capability, sizeof e->capability, "%s", capability);
        return memslot_error_set(e, -EOPNOTSUPP, "unsupported", 0, field, "%s needs %s, which this VM does not report",
                                 what, capability);
}

int memslot_find(const MemslotInfo *slots, size_t n, uint32_t slot, uint16_t as_id) {
        for (size_t i = 0; i < n; i++)
                if (slots[i].slot == slot && slots[i].as_id == as_id)
                        return (int) i;
        return -ENOENT;
}

int memslot_pick_id(const MemslotLimits *l, const MemslotInfo *slots, size_t n, uint16_t as_id, uint32_t *ret) {
        for (uint32_t id = 0; id < l->nr_memslots; id++)
                if (memslot_find(slots, n, id, as_id) < 0) {
                        *ret = id;
                        return 0;
                }
        return -ENOSPC;
}

static int check_id(const MemslotLimits *l, uint32_t slot, uint16_t as_id, MemslotError *e) {
        if (slot >= l->nr_memslots)
                return memslot_error_set(e, -EINVAL, "memslot_id_out_of_range", 0, "slot",
                                         "slot %" PRIu32 " is beyond KVM_CAP_NR_MEMSLOTS (%" PRIu32 " slots: 0-%" PRIu32 ")",
                                         slot, l->nr_memslots, l->nr_memslots ? l->nr_memslots - 1 : 0);
        if (as_id >= MAX(l->address_spaces, 1))
                return memslot_error_set(e, -EINVAL, "memslot_id_out_of_range", 0, "as_id",
                                         "address space %u is beyond KVM_CAP_MULTI_ADDRESS_SPACE (%u address space%s)",
                                         as_id, MAX(l->address_spaces, 1), MAX(l->address_spaces, 1) == 1 ? "" : "s");
        return 0;
}

static int find_existing(const MemslotInfo *slots, size_t n, uint32_t slot, uint16_t as_id, MemslotError *e) {
        int i = memslot_find(slots, n, slot, as_id);
        if (i < 0)
                return memslot_error_set(e, -ENOENT, "not_found", 0, "slot",
                                         "slot %" PRIu32 " in address space %u does not exist", slot, as_id);
        return i;
}

/* gpa and size against the alignment, page count, wrap and the guest's physical address width. */
static int check_range(const MemslotLimits *l, uint64_t gpa, uint64_t size, MemslotBacking backing, MemslotError *e) {
        uint64_t align = memslot_backing_alignment(backing);

        if (size == 0)
                return memslot_error_set(e, -EINVAL, "memslot_size_invalid", 0, "size",
                                         "size must not be 0 (size 0 deletes a slot in KVM; use delete)");
        if (!IS_ALIGNED(size, align))
                return memslot_error_set(e, -EINVAL, "memslot_size_invalid", 0, "size",
                                         "size 0x%" PRIx64 " is not a multiple of the %s page size (0x%" PRIx64 ")",
                                         size, memslot_backing_to_string(backing), align);
        if (size / MEMSLOT_PAGE_SIZE > MEMSLOT_MAX_PAGES)
                return memslot_error_set(e, -EINVAL, "memslot_too_many_pages", 0, "size",
                                         "%" PRIu64 " pages is more than KVM allows in one slot (%llu)",
                                         (uint64_t) (size / MEMSLOT_PAGE_SIZE), MEMSLOT_MAX_PAGES);
        if (!IS_ALIGNED(gpa, align))
                return memslot_error_set(e, -EINVAL, "memslot_unaligned", 0, "gpa",
                                         "gpa 0x%" PRIx64 " is not aligned to the %s page size (0x%" PRIx64 ")", gpa,
                                         memslot_backing_to_string(backing), align);
        if (gpa + size < gpa)
                return memslot_error_set(e, -EINVAL, "memslot_out_of_range", 0, "gpa",
                                         "gpa 0x%" PRIx64 " + size 0x%" PRIx64 " wraps around", gpa, size);
        if (l->phys_bits > 0 && l->phys_bits < 64 && gpa + size > (1ULL << l->phys_bits))
                return memslot_error_set(e, -EINVAL, "memslot_out_of_range", 0, "gpa",
                                         "[0x%" PRIx64 ", 0x%" PRIx64 ") is beyond the guest's physical address width "
                                         "(MAXPHYADDR %u bits, top 0x%llx)",
                                         gpa, gpa + size, l->phys_bits, 1ULL << l->phys_bits);
        return 0;
}

static int check_overlap(const MemslotInfo *slots, size_t n, int self, uint16_t as_id, uint64_t gpa, uint64_t size,
                         MemslotError *e) {
        for (size_t i = 0; i < n; i++) {
                const MemslotInfo *o = &slots[i];
                if ((int) i == self || o->as_id != as_id)
                        continue;
                if (gpa < o->gpa + o->size && o->gpa < gpa + size) {
                        e->other_slot = o->slot;
                        return memslot_error_set(e, -EEXIST, "memslot_overlap", 0, "gpa",
                                                 "[0x%" PRIx64 ", 0x%" PRIx64 ") overlaps slot %" PRIu32
                                                 " [0x%" PRIx64 ", 0x%" PRIx64 ") (%s) in address space %u",
                                                 gpa, gpa + size, o->slot, o->gpa, o->gpa + o->size,
                                                 memslot_role_to_string(o->role), as_id);
                }
        }
        return 0;
}

int memslot_check_create(const MemslotLimits *l, const MemslotInfo *slots, size_t n, const MemslotInfo *new,
                         MemslotError *e) {
        int r;

        if ((unsigned) new->backing >= _MEMSLOT_BACKING_MAX)
                return memslot_error_set(e, -EINVAL, "invalid_argument", 0, "backing", "unknown backing");
        r = check_id(l, new->slot, new->as_id, e);
        if (r < 0)
                return r;
        if (memslot_find(slots, n, new->slot, new->as_id) >= 0)
                return memslot_error_set(e, -EEXIST, "memslot_exists", 0, "slot",
                                         "slot %" PRIu32 " in address space %u already exists (KVM would treat this "
                                         "as a change of that slot)", new->slot, new->as_id);
        if (new->backing == MEMSLOT_BACKING_GUEST_MEMFD) {
                if (!l->guest_memfd)
                        return set_unsupported(e, "backing", "KVM_CAP_GUEST_MEMFD", "a guest_memfd backing");
                if (!l->user_memory2)
                        return set_unsupported(e, "backing", "KVM_CAP_USER_MEMORY2", "a guest_memfd backing");
                if (new->dirty_log || new->readonly)
                        return memslot_error_set(e, -EINVAL, "memslot_flags_invalid", 0, "flags",
                                                 "guest_memfd slots support neither dirty logging nor readonly");
                if (!IS_ALIGNED(new->guest_memfd_offset, MEMSLOT_PAGE_SIZE))
                        return memslot_error_set(e, -EINVAL, "memslot_unaligned", 0, "guest_memfd_offset",
                                                 "guest_memfd_offset 0x%" PRIx64 " is not page aligned",
                                                 new->guest_memfd_offset);
        } else if (new->guest_memfd_offset != 0)
                return memslot_error_set(e, -EINVAL, "invalid_argument", 0, "guest_memfd_offset",
                                         "guest_memfd_offset applies only to the guest_memfd backing");
        if (new->readonly && !l->readonly_mem)
                return set_unsupported(e, "flags.readonly", "KVM_CAP_READONLY_MEM", "a readonly slot");
        r = check_range(l, new->gpa, new->size, new->backing, e);
        if (r < 0)
                return r;
        if (new->guest_memfd_offset + new->size < new->size)
                return memslot_error_set(e, -EINVAL, "memslot_out_of_range", 0, "guest_memfd_offset",
                                         "guest_memfd_offset + size wraps around");
        r = check_overlap(slots, n, -1, new->as_id, new->gpa, new->size, e);
        if (r < 0)
                return r;

        /* The backing must be allocatable: nothing is allocated yet, so say so now rather than fail later. */
        if (new->backing == MEMSLOT_BACKING_HUGETLB) {
                uint64_t need = new->size / MEMSLOT_HUGE_PAGE_SIZE;
                if (!l->hugetlb_pool || l->hugetlb_free_pages < need)
                        return memslot_error_set(e, -ENOMEM, "memslot_backing_unavailable", 0, "backing",
                                                 "hugetlb needs %" PRIu64 " free 2MiB huge pages, the host has %" PRIu64
                                                 " (reserve them in /proc/sys/vm/nr_hugepages)",
                                                 need, l->hugetlb_pool ? l->hugetlb_free_pages : 0);
        } else if (l->host_memory && new->size > l->host_memory)
                return memslot_error_set(e, -ENOMEM, "memslot_backing_unavailable", 0, "size",
                                         "0x%" PRIx64 " bytes of %s backing is more than the host's memory (0x%" PRIx64 ")",
                                         new->size, memslot_backing_to_string(new->backing), l->host_memory);
        return 0;
}

static int check_force(const MemslotInfo *s, bool vm_live, bool force, const char *op, const char *impact,
                       MemslotError *e) {
        if (s->role != MEMSLOT_ROLE_RAM || !vm_live || force)
                return 0;
        snprintf(e->guest_impact, sizeof e->guest_impact, "%s", impact);
        return memslot_error_set(e, -EBUSY, "memslot_force_required", 0, "force",
                                 "slot %" PRIu32 " is guest RAM of a live VM; %s it only with force=true: %s", s->slot,
                                 op, impact);
}

void memslot_guest_impact_delete(const MemslotInfo *s, char *buf, size_t n) {
        snprintf(buf, n,
                 "guest accesses to [0x%" PRIx64 ", 0x%" PRIx64 ") exit to the VMM as MMIO: reads return all ones, "
                 "writes are dropped, the contents are gone",
                 s->gpa, s->gpa + s->size);
}

void memslot_guest_impact_move(const MemslotInfo *s, uint64_t new_gpa, char *buf, size_t n) {
        snprintf(buf, n,
                 "the guest finds the same contents at [0x%" PRIx64 ", 0x%" PRIx64 "); accesses to the old range "
                 "[0x%" PRIx64 ", 0x%" PRIx64 ") exit to the VMM as MMIO",
                 new_gpa, new_gpa + s->size, s->gpa, s->gpa + s->size);
}

int memslot_check_delete(const MemslotLimits *l, const MemslotInfo *slots, size_t n, uint32_t slot, uint16_t as_id,
                         bool vm_live, bool force, MemslotError *e) {
        char impact[sizeof e->guest_impact];
        int r = check_id(l, slot, as_id, e);
        if (r < 0)
                return r;
        int i = find_existing(slots, n, slot, as_id, e);
        if (i < 0)
                return i;
        memslot_guest_impact_delete(&slots[i], impact, sizeof impact);
        return check_force(&slots[i], vm_live, force, "delete", impact, e);
}

int memslot_check_move(const MemslotLimits *l, const MemslotInfo *slots, size_t n, uint32_t slot, uint16_t as_id,
                       uint64_t new_gpa, bool vm_live, bool force, MemslotError *e) {
        char impact[sizeof e->guest_impact];
        int r = check_id(l, slot, as_id, e);
        if (r < 0)
                return r;
        int i = find_existing(slots, n, slot, as_id, e);
        if (i < 0)
                return i;
        const MemslotInfo *s = &slots[i];
        if (s->backing == MEMSLOT_BACKING_GUEST_MEMFD)
                return memslot_error_set(e, -EINVAL, "memslot_immutable", 0, "slot",
                                         "slot %" PRIu32 " is backed by guest_memfd; KVM only lets such slots be deleted",
                                         slot);
        /* KVM reuses the dirty bitmap across a MOVE without shifting it: the log would name wrong pages. */
        if (s->dirty_log)
                return memslot_error_set(e, -EBUSY, "memslot_move_dirty_log", 0, "gpa",
                                         "slot %" PRIu32 " has dirty logging on; KVM would keep its bitmap unshifted "
                                         "across the move. Turn dirty logging off first", slot);
        if (new_gpa == s->gpa)
                return memslot_error_set(e, -EINVAL, "invalid_argument", 0, "gpa",
                                         "slot %" PRIu32 " is already at gpa 0x%" PRIx64, slot, new_gpa);
        r = check_range(l, new_gpa, s->size, s->backing, e);
        if (r < 0)
                return r;
        r = check_overlap(slots, n, i, as_id, new_gpa, s->size, e);
        if (r < 0)
                return r;
        memslot_guest_impact_move(s, new_gpa, impact, sizeof impact);
        return check_force(s, vm_live, force, "move", impact, e);
}

int memslot_check_set_flags(const MemslotLimits *l, const MemslotInfo *slots, size_t n, uint32_t slot,
                            uint16_t as_id, bool dirty_log, int readonly, MemslotError *e) {
        int r = check_id(l, slot, as_id, e);
        if (r < 0)
                return r;
        int i = find_existing(slots, n, slot, as_id, e);
        if (i < 0)
                return i;
        const MemslotInfo *s = &slots[i];
        if (readonly >= 0 && (readonly != 0) != s->readonly)
                return memslot_error_set(e, -EINVAL, "memslot_immutable", 0, "flags.readonly",
                                         "readonly is fixed when a slot is created; KVM cannot toggle it on slot %" PRIu32,
                                         slot);
        if (s->backing == MEMSLOT_BACKING_GUEST_MEMFD)
                return memslot_error_set(e, -EINVAL, "memslot_immutable", 0, "slot",
                                         "slot %" PRIu32 " is backed by guest_memfd; KVM only lets such slots be deleted",
                                         slot);
        (void) dirty_log;
        return 0;
}

int memslot_check_dirty_log(const MemslotLimits *l, const MemslotInfo *slots, size_t n, uint32_t slot,
                            uint16_t as_id, bool clear, MemslotError *e) {
        int r = check_id(l, slot, as_id, e);
        if (r < 0)
                return r;
        int i = find_existing(slots, n, slot, as_id, e);
        if (i < 0)
                return i;
        if (!slots[i].dirty_log)
                return memslot_error_set(e, -ENOENT, "memslot_dirty_log_disabled", 0, "slot",
                                         "slot %" PRIu32 " has dirty logging off; turn it on with flags.dirty_log", slot);
        (void) clear;
        return 0;
}

int memslot_check_private(const MemslotLimits *l, const MemslotInfo *slots, size_t n, uint64_t gpa, uint64_t size,
                          MemslotError *e) {
        /* KVM_MEMORY_ATTRIBUTE_PRIVATE */
        if (!(l->memory_attributes & (1ULL << 3)))
                return set_unsupported(e, "private", "KVM_CAP_MEMORY_ATTRIBUTES",
                                       "KVM_SET_MEMORY_ATTRIBUTES(PRIVATE)");
        if (size == 0 || !IS_ALIGNED(size, MEMSLOT_PAGE_SIZE) || !IS_ALIGNED(gpa, MEMSLOT_PAGE_SIZE) || gpa + size < gpa)
                return memslot_error_set(e, -EINVAL, "memslot_unaligned", 0, "gpa",
                                         "gpa and size must be non-zero multiples of 4 KiB without wrapping");
        /* Every page of the range must lie in a guest_memfd slot of address space 0. */
        for (uint64_t cur = gpa; cur < gpa + size;) {
                const MemslotInfo *hit = NULL;
                for (size_t i = 0; i < n; i++)
                        if (slots[i].as_id == 0 && cur >= slots[i].gpa && cur - slots[i].gpa < slots[i].size)
                                hit = &slots[i];
                if (!hit || hit->backing != MEMSLOT_BACKING_GUEST_MEMFD)
                        return memslot_error_set(e, -EINVAL, "invalid_argument", 0, "gpa",
                                                 "gpa 0x%" PRIx64 " is not in a guest_memfd slot", cur);
                cur = hit->gpa + hit->size;
        }
        return 0;
}

int memslot_info_to_json(const MemslotInfo *s, const char *state, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *flags = json_object_new_object();
        int r = 0;

        if (!o || !flags) {
                json_object_put(flags);
                return -ENOMEM;
        }
        r |= json_add_uint(o, "slot", s->slot);
        r |= json_add_uint(o, "as_id", s->as_id);
        r |= json_add_uint(o, "gpa", s->gpa);
        r |= json_add_uint(o, "size", s->size);
        r |= json_add(o, "flags", flags);
        r |= json_add_bool(flags, "dirty_log", s->dirty_log);
        r |= json_add_bool(flags, "readonly", s->readonly);
        r |= json_add_string(o, "backing", memslot_backing_to_string(s->backing));
        if (s->backing == MEMSLOT_BACKING_GUEST_MEMFD)
                r |= json_add_uint(o, "guest_memfd_offset", s->guest_memfd_offset);
        r |= json_add_string(o, "role", memslot_role_to_string(s->role));
        r |= json_add_string(o, "state", state);
        if (r < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

int memslot_error_to_json(const MemslotError *e, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *details = json_object_new_object();
        int r = 0;

        if (!o || !details) {
                json_object_put(details);
                return -ENOMEM;
        }
        r |= json_add_string(o, "code", e->code);
        r |= json_add_string(o, "message", e->message);
        r |= json_add(o, "details", details);
        r |= json_add_int(details, "http_status", e->http_status);
        if (e->field[0])
                r |= json_add_string(details, "field", e->field);
        if (e->capability[0])
                r |= json_add_string(details, "capability", e->capability);
        if (e->other_slot >= 0)
                r |= json_add_int(details, "other_slot", e->other_slot);
        if (e->step[0]) {
                r |= json_add_string(details, "step", e->step);
                r |= json_add_int(details, "errno", e->errnum);
                r |= json_add_string(details, "errno_name", strerrorname_np(e->errnum));
        }
        if (e->guest_impact[0])
                r |= json_add_string(details, "guest_impact", e->guest_impact);
        if (r < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

int memslot_limits_to_json(const MemslotLimits *l, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        int r = 0;
        if (!o)
                return -ENOMEM;
        r |= json_add_uint(o, "nr_memslots", l->nr_memslots);
        r |= json_add_uint(o, "address_spaces", l->address_spaces);
        r |= json_add_uint(o, "phys_bits", l->phys_bits);
        r |= json_add_bool(o, "readonly_mem", l->readonly_mem);
        r |= json_add_bool(o, "user_memory2", l->user_memory2);
        r |= json_add_bool(o, "guest_memfd", l->guest_memfd);
        r |= json_add_uint(o, "memory_attributes", l->memory_attributes);
        r |= json_add_bool(o, "manual_dirty_log_protect", l->manual_dirty_log_protect);
        r |= json_add_uint(o, "hugetlb_free_pages", l->hugetlb_pool ? l->hugetlb_free_pages : 0);
        if (r < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}
