/* SPDX-License-Identifier: MIT */
#include "memslot-control.h"

#include <errno.h>
#include <string.h>

#include "json-util.h"
#include "memslot.h"
#include "str-util.h"

bool memslot_control_method(const char *method) {
        return strncmp(method, "memslot.", 8) == 0 || strncmp(method, "memory.", 7) == 0;
}

static int bad_params(MemslotError *e, const JsonError *je) {
        return memslot_error_set(e, -EINVAL, "invalid_argument", 400, NULL, "%s: %s", je->path, je->message);
}

/* Checks the keys of params (which may be NULL: then it is empty). */
static int params_keys(json_object *params, const char *const *keys, MemslotError *e) {
        JsonError je = {};
        if (params && json_check_keys(params, "$.params", keys, &je) < 0)
                return bad_params(e, &je);
        return 0;
}

/* "slot" (required or not) and "as_id". */
static int params_slot(json_object *params, bool required, uint32_t *slot, uint16_t *as_id, MemslotError *e) {
        JsonError je = {};
        uint64_t v = 0, a = 0;
        int r;

        if (!params) {
                if (required)
                        return memslot_error_set(e, -EINVAL, "invalid_argument", 400, NULL,
                                                 "$.params.slot: is required");
                return 0;
        }
        r = json_get_uint64(params, "$.params", "slot", required, 0, UINT32_MAX, &v, &je);
        if (r < 0)
                return bad_params(e, &je);
        if (r > 0)
                *slot = (uint32_t) v;
        if (json_get_uint64(params, "$.params", "as_id", false, 0, UINT16_MAX, &a, &je) < 0)
                return bad_params(e, &je);
        *as_id = (uint16_t) a;
        return r;
}

static int result_info(const MemslotInfo *s, const MemslotError *e, json_object **ret) {
        json_object *o;
        int r = memslot_info_to_json(s, "active", &o);
        if (r < 0)
                return r;
        if (e->guest_impact[0] && json_add_string(o, "guest_impact", e->guest_impact) < 0) {
                json_object_put(o);
                return -ENOMEM;
        }
        *ret = o;
        return 1;
}

static int method_list(Vm *vm, json_object *params, json_object **ret, MemslotError *e) {
        static const char *const keys[] = { NULL };
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *arr = json_object_new_array(), *limits = NULL;
        MemslotLimits l;
        int r;

        if (!o || !arr || json_add(o, "memslots", arr) < 0) {
                json_object_put(arr);
                return -ENOMEM;
        }
        r = params_keys(params, keys, e);
        if (r < 0)
                return 0;
        for (size_t i = 0; i < vm->mem->n_slots; i++) {
                const Memslot *s = &vm->mem->slots[i];
                MemslotInfo info;
                json_object *m;
                memslot_to_info(s, &info);
                r = memslot_info_to_json(&info, s->registered ? "active" : "pending", &m);
                if (r < 0)
                        return r;
                if (json_object_array_add(arr, m) < 0) {
                        json_object_put(m);
                        return -ENOMEM;
                }
        }
        vm_memslot_limits(vm, true, &l);
        r = memslot_limits_to_json(&l, &limits);
        if (r < 0)
                return r;
        if (json_add(o, "limits", limits) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 1;
}

static int method_create(Vm *vm, json_object *params, json_object **ret, MemslotError *e) {
        static const char *const keys[] = { "slot", "as_id", "gpa", "size", "flags", "backing", "guest_memfd_offset", NULL };
        static const char *const flag_keys[] = { "dirty_log", "readonly", NULL };
        MemslotInfo req = { .backing = MEMSLOT_BACKING_MEMFD, .role = MEMSLOT_ROLE_USER };
        json_object *flags = NULL;
        const char *backing = NULL;
        JsonError je = {};
        int r, have_slot;

        if (!params)
                return memslot_error_set(e, -EINVAL, "invalid_argument", 400, NULL, "$.params: gpa and size are required");
        if (params_keys(params, keys, e) < 0)
                return 0;
        have_slot = params_slot(params, false, &req.slot, &req.as_id, e);
        if (have_slot < 0)
                return 0;
        if (json_get_size(params, "$.params", "gpa", true, 0, UINT64_MAX, &req.gpa, &je) < 0 ||
            json_get_size(params, "$.params", "size", true, 0, UINT64_MAX, &req.size, &je) < 0 ||
            json_get_size(params, "$.params", "guest_memfd_offset", false, 0, UINT64_MAX, &req.guest_memfd_offset, &je) < 0 ||
            json_get_object(params, "$.params", "flags", false, &flags, &je) < 0 ||
            json_get_string(params, "$.params", "backing", false, &backing, &je) < 0)
                return bad_params(e, &je);
        if (flags && (json_check_keys(flags, "$.params.flags", flag_keys, &je) < 0 ||
                      json_get_bool(flags, "$.params.flags", "dirty_log", false, &req.dirty_log, &je) < 0 ||
                      json_get_bool(flags, "$.params.flags", "readonly", false, &req.readonly, &je) < 0))
                return bad_params(e, &je);
        if (backing && memslot_backing_from_string(backing, &req.backing) < 0)
                return memslot_error_set(e, -EINVAL, "invalid_argument", 400, "backing",
                                         "$.params.backing: must be memfd, hugetlb, anonymous or guest_memfd");
        MemslotInfo out;
        r = vm_memslot_create(vm, &req, have_slot == 0, &out, e);
        if (r < 0)
                return e->code[0] ? 0 : r;
        return result_info(&out, e, ret);
}

static int method_delete(Vm *vm, json_object *params, json_object **ret, MemslotError *e) {
        static const char *const keys[] = { "slot", "as_id", "force", NULL };
        uint32_t slot = 0;
        uint16_t as_id = 0;
        bool force = false;
        JsonError je = {};
        MemslotInfo old;
        int r;

        if (params_keys(params, keys, e) < 0 || params_slot(params, true, &slot, &as_id, e) < 0)
                return 0;
        if (json_get_bool(params, "$.params", "force", false, &force, &je) < 0)
                return bad_params(e, &je);
        r = vm_memslot_delete(vm, slot, as_id, force, &old, e);
        if (r < 0)
                return e->code[0] ? 0 : r;
        json_object *o = json_object_new_object(), *d = NULL;
        if (!o || memslot_info_to_json(&old, "deleted", &d) < 0 || json_add(o, "deleted", d) < 0 ||
            (e->guest_impact[0] && json_add_string(o, "guest_impact", e->guest_impact) < 0)) {
                json_object_put(o);
                return -ENOMEM;
        }
        *ret = o;
        return 1;
}

static int method_move(Vm *vm, json_object *params, json_object **ret, MemslotError *e) {
        static const char *const keys[] = { "slot", "as_id", "gpa", "force", NULL };
        uint32_t slot = 0;
        uint16_t as_id = 0;
        uint64_t gpa = 0;
        bool force = false;
        JsonError je = {};
        MemslotInfo out;
        int r;

        if (params_keys(params, keys, e) < 0 || params_slot(params, true, &slot, &as_id, e) < 0)
                return 0;
        if (json_get_size(params, "$.params", "gpa", true, 0, UINT64_MAX, &gpa, &je) < 0 ||
            json_get_bool(params, "$.params", "force", false, &force, &je) < 0)
                return bad_params(e, &je);
        r = vm_memslot_move(vm, slot, as_id, gpa, force, &out, e);
        if (r < 0)
                return e->code[0] ? 0 : r;
        return result_info(&out, e, ret);
}

static int method_set_flags(Vm *vm, json_object *params, json_object **ret, MemslotError *e) {
        static const char *const keys[] = { "slot", "as_id", "flags", NULL };
        static const char *const flag_keys[] = { "dirty_log", "readonly", NULL };
        uint32_t slot = 0;
        uint16_t as_id = 0;
        bool dirty_log = false, readonly = false;
        json_object *flags = NULL;
        JsonError je = {};
        MemslotInfo out;
        int r, have_ro;

        if (params_keys(params, keys, e) < 0 || params_slot(params, true, &slot, &as_id, e) < 0)
                return 0;
        if (json_get_object(params, "$.params", "flags", true, &flags, &je) < 0 ||
            json_check_keys(flags, "$.params.flags", flag_keys, &je) < 0 ||
            json_get_bool(flags, "$.params.flags", "dirty_log", true, &dirty_log, &je) < 0)
                return bad_params(e, &je);
        have_ro = json_get_bool(flags, "$.params.flags", "readonly", false, &readonly, &je);
        if (have_ro < 0)
                return bad_params(e, &je);
        r = vm_memslot_set_flags(vm, slot, as_id, dirty_log, have_ro > 0 ? readonly : -1, &out, e);
        if (r < 0)
                return e->code[0] ? 0 : r;
        return result_info(&out, e, ret);
}

static int dirty_log_json(const MemslotDirtyLog *d, bool with_bitmap, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *ranges = json_object_new_array();
        size_t n_ranges = 0;
        bool truncated = false;
        int r = 0;

        if (!o || !ranges || json_add(o, "ranges", ranges) < 0) {
                json_object_put(ranges);
                return -ENOMEM;
        }
        r |= json_add_uint(o, "slot", d->slot.slot);
        r |= json_add_uint(o, "as_id", d->slot.as_id);
        r |= json_add_uint(o, "gpa", d->slot.gpa);
        r |= json_add_uint(o, "size", d->slot.size);
        r |= json_add_uint(o, "page_size", MEMSLOT_PAGE_SIZE);
        r |= json_add_uint(o, "pages", d->pages);
        r |= json_add_uint(o, "dirty_pages", d->dirty_pages);
        r |= json_add_bool(o, "cleared", d->cleared);
        for (uint64_t p = 0; p < d->pages && r >= 0;) {
                /* Skip clean words quickly: a 1 GiB slot has 4096 of them. */
                if ((p & 63) == 0 && d->bitmap[p / 64] == 0) {
                        p += 64;
                        continue;
                }
                if (!(d->bitmap[p / 64] & (1ULL << (p & 63)))) {
                        p++;
                        continue;
                }
                uint64_t start = p;
                while (p < d->pages && (d->bitmap[p / 64] & (1ULL << (p & 63))))
                        p++;
                if (n_ranges == MEMSLOT_DIRTY_RANGES_MAX) {
                        truncated = true;
                        break;
                }
                json_object *range = json_object_new_object();
                if (!range || json_object_array_add(ranges, range) < 0) {
                        json_object_put(range);
                        return -ENOMEM;
                }
                r |= json_add_uint(range, "gpa", d->slot.gpa + start * MEMSLOT_PAGE_SIZE);
                r |= json_add_uint(range, "size", (p - start) * MEMSLOT_PAGE_SIZE);
                n_ranges++;
        }
        r |= json_add_bool(o, "ranges_truncated", truncated);
        if (with_bitmap) {
                _cleanup_free_ char *b64 = base64_encode(d->bitmap, d->bitmap_bytes);
                if (!b64)
                        return -ENOMEM;
                r |= json_add_string(o, "bitmap", b64);
        }
        if (r < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

static int method_dirty_log(Vm *vm, json_object *params, json_object **ret, MemslotError *e) {
        static const char *const keys[] = { "slot", "as_id", "clear", "bitmap", NULL };
        uint32_t slot = 0;
        uint16_t as_id = 0;
        bool clear = false, bitmap = false;
        MemslotDirtyLog d = {};
        JsonError je = {};
        int r;

        if (params_keys(params, keys, e) < 0 || params_slot(params, true, &slot, &as_id, e) < 0)
                return 0;
        if (json_get_bool(params, "$.params", "clear", false, &clear, &je) < 0 ||
            json_get_bool(params, "$.params", "bitmap", false, &bitmap, &je) < 0)
                return bad_params(e, &je);
        r = vm_memslot_dirty_log(vm, slot, as_id, clear, &d, e);
        if (r < 0)
                return e->code[0] ? 0 : r;
        r = dirty_log_json(&d, bitmap, ret);
        memslot_dirty_log_done(&d);
        return r < 0 ? r : 1;
}

static int method_memory_read(Vm *vm, json_object *params, json_object **ret, MemslotError *e) {
        static const char *const keys[] = { "gpa", "size", NULL };
        uint64_t gpa = 0, size = 0;
        JsonError je = {};

        if (params_keys(params, keys, e) < 0)
                return 0;
        if (!params || json_get_size(params, "$.params", "gpa", true, 0, UINT64_MAX, &gpa, &je) < 0 ||
            json_get_size(params, "$.params", "size", true, 1, MEMORY_ACCESS_MAX, &size, &je) < 0)
                return params ? bad_params(e, &je)
                              : memslot_error_set(e, -EINVAL, "invalid_argument", 400, NULL, "$.params: gpa and size are required");
        const void *p = guest_memory_gpa_to_hva(vm->mem, gpa, size);
        if (!p)
                return memslot_error_set(e, -EFAULT, "not_found", 404, "gpa",
                                         "[0x%" PRIx64 ", 0x%" PRIx64 ") is not inside one memslot of address space 0", gpa,
                                         gpa + size);
        _cleanup_free_ char *b64 = base64_encode(p, size);
        json_object *o = json_object_new_object();
        if (!b64 || !o || json_add_uint(o, "gpa", gpa) < 0 || json_add_uint(o, "size", size) < 0 ||
            json_add_string(o, "data", b64) < 0) {
                json_object_put(o);
                return -ENOMEM;
        }
        *ret = o;
        return 1;
}

static int method_memory_write(Vm *vm, json_object *params, json_object **ret, MemslotError *e) {
        static const char *const keys[] = { "gpa", "data", NULL };
        _cleanup_free_ void *data = NULL;
        const char *text = NULL;
        uint64_t gpa = 0;
        size_t len = 0;
        JsonError je = {};

        if (params_keys(params, keys, e) < 0)
                return 0;
        if (!params || json_get_size(params, "$.params", "gpa", true, 0, UINT64_MAX, &gpa, &je) < 0 ||
            json_get_string(params, "$.params", "data", true, &text, &je) < 0)
                return params ? bad_params(e, &je)
                              : memslot_error_set(e, -EINVAL, "invalid_argument", 400, NULL, "$.params: gpa and data are required");
        if (base64_decode(text, &data, &len) < 0 || len == 0 || len > MEMORY_ACCESS_MAX)
                return memslot_error_set(e, -EINVAL, "invalid_argument", 400, "data",
                                         "$.params.data: must be base64 of 1 to %d bytes", MEMORY_ACCESS_MAX);
        void *p = guest_memory_gpa_to_hva(vm->mem, gpa, len);
        if (!p)
                return memslot_error_set(e, -EFAULT, "not_found", 404, "gpa",
                                         "[0x%" PRIx64 ", 0x%" PRIx64 ") is not inside one memslot of address space 0", gpa,
                                         gpa + len);
        memcpy(p, data, len);
        json_object *o = json_object_new_object();
        if (!o || json_add_uint(o, "gpa", gpa) < 0 || json_add_uint(o, "size", len) < 0) {
                json_object_put(o);
                return -ENOMEM;
        }
        *ret = o;
        return 1;
}

static int method_set_attributes(Vm *vm, json_object *params, json_object **ret, MemslotError *e) {
        static const char *const keys[] = { "gpa", "size", "private", NULL };
        uint64_t gpa = 0, size = 0;
        bool private = false;
        JsonError je = {};
        int r;

        if (params_keys(params, keys, e) < 0)
                return 0;
        if (!params || json_get_size(params, "$.params", "gpa", true, 0, UINT64_MAX, &gpa, &je) < 0 ||
            json_get_size(params, "$.params", "size", true, 0, UINT64_MAX, &size, &je) < 0 ||
            json_get_bool(params, "$.params", "private", true, &private, &je) < 0)
                return params ? bad_params(e, &je)
                              : memslot_error_set(e, -EINVAL, "invalid_argument", 400, NULL,
                                                  "$.params: gpa, size and private are required");
        r = vm_memory_set_private(vm, gpa, size, private, e);
        if (r < 0)
                return e->code[0] ? 0 : r;
        json_object *o = json_object_new_object();
        if (!o || json_add_uint(o, "gpa", gpa) < 0 || json_add_uint(o, "size", size) < 0 ||
            json_add_bool(o, "private", private) < 0) {
                json_object_put(o);
                return -ENOMEM;
        }
        *ret = o;
        return 1;
}

int memslot_control_call(Vm *vm, const char *method, json_object *params, json_object **ret_result, MemslotError *e) {
        static const struct {
                const char *name;
                int (*fn)(Vm *vm, json_object *params, json_object **ret, MemslotError *e);
        } methods[] = {
                { "memslot.list", method_list },
                { "memslot.create", method_create },
                { "memslot.delete", method_delete },
                { "memslot.move", method_move },
                { "memslot.set_flags", method_set_flags },
                { "memslot.dirty_log", method_dirty_log },
                { "memory.read", method_memory_read },
                { "memory.write", method_memory_write },
                { "memory.set_attributes", method_set_attributes },
        };
        memslot_error_init(e);
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                if (streq(method, methods[i].name)) {
                        json_object *res = NULL;
                        int r = methods[i].fn(vm, params, &res, e);
                        if (r < 0 && e->code[0])
                                r = 0; /* a refusal, not an internal failure */
                        if (r > 0)
                                *ret_result = res;
                        return r;
                }
        return memslot_error_set(e, -ENOENT, "not_found", 404, NULL, "unknown method \"%.64s\"", method), 0;
}
