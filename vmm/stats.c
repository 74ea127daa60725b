/* SPDX-License-Identifier: MIT */
#include "stats.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json-util.h"
#include "macro.h"

#define STATS_MAX_DESCRIPTORS 4096
#define STATS_MAX_NAME 256
#define STATS_MAX_VALUES 1024

static int pread_exact(int fd, void *buf, size_t n, off_t off) {
        ssize_t k = pread(fd, buf, n, off);
        if (k < 0)
                return -errno;
        return (size_t) k == n ? 0 : -EIO;
}

const char *kvm_stats_type_to_string(unsigned flags) {
        switch (flags & KVM_STATS_TYPE_MASK) {
        case KVM_STATS_TYPE_CUMULATIVE: return "cumulative";
        case KVM_STATS_TYPE_INSTANT: return "instant";
        case KVM_STATS_TYPE_PEAK: return "peak";
        case KVM_STATS_TYPE_LINEAR_HIST: return "linear_hist";
        case KVM_STATS_TYPE_LOG_HIST: return "log_hist";
        default: return NULL;
        }
}

const char *kvm_stats_unit_to_string(unsigned flags) {
        switch (flags & KVM_STATS_UNIT_MASK) {
        case KVM_STATS_UNIT_NONE: return "none";
        case KVM_STATS_UNIT_BYTES: return "bytes";
        case KVM_STATS_UNIT_SECONDS: return "seconds";
        case KVM_STATS_UNIT_CYCLES: return "cycles";
#ifdef KVM_STATS_UNIT_BOOLEAN
        case KVM_STATS_UNIT_BOOLEAN: return "boolean";
#endif
        default: return NULL;
        }
}

static json_object *stat_with_schema(const struct kvm_stats_desc *d, json_object *value) {
        _cleanup_json_ json_object *o = json_object_new_object();
        const char *type = kvm_stats_type_to_string(d->flags), *unit = kvm_stats_unit_to_string(d->flags);
        int r = 0;

        if (!o || !type || !unit) {
                json_object_put(value);
                return NULL; /* a kind this agent can't interpret: left out rather than misread */
        }
        r |= json_add_string(o, "type", type);
        r |= json_add_string(o, "unit", unit);
        r |= json_add_int(o, "base", (d->flags & KVM_STATS_BASE_MASK) == KVM_STATS_BASE_POW2 ? 2 : 10);
        r |= json_add_int(o, "exponent", d->exponent);
        if ((d->flags & KVM_STATS_TYPE_MASK) == KVM_STATS_TYPE_LINEAR_HIST)
                r |= json_add_uint(o, "bucket_size", d->bucket_size);
        r |= json_add(o, d->size == 1 ? "value" : "values", value);
        return r < 0 ? NULL : TAKE_PTR(o);
}

int kvm_stats_read_json(int stats_fd, bool schema, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        _cleanup_free_ uint8_t *descs = NULL;
        _cleanup_free_ uint64_t *values = NULL;
        struct kvm_stats_header h;
        int r;

        if (!o)
                return -ENOMEM;
        r = pread_exact(stats_fd, &h, sizeof h, 0);
        if (r < 0)
                return r;
        if (h.num_desc > STATS_MAX_DESCRIPTORS || h.name_size == 0 || h.name_size > STATS_MAX_NAME)
                return -EBADMSG;
        size_t desc_size = sizeof(struct kvm_stats_desc) + h.name_size;
        descs = malloc(desc_size * h.num_desc + 1);
        if (!descs)
                return -ENOMEM;
        r = pread_exact(stats_fd, descs, desc_size * h.num_desc, h.desc_offset);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < h.num_desc; i++) {
                struct kvm_stats_desc *d = (struct kvm_stats_desc *) (descs + i * desc_size);
                char name[STATS_MAX_NAME + 1];
                json_object *v;

                if (d->size == 0 || d->size > STATS_MAX_VALUES)
                        continue;
                memcpy(name, d->name, h.name_size);
                name[h.name_size] = 0;
                uint64_t *vals = realloc(values, d->size * sizeof *values);
                if (!vals)
                        return -ENOMEM;
                values = vals;
                r = pread_exact(stats_fd, values, d->size * sizeof *values, (off_t) (h.data_offset + d->offset));
                if (r < 0)
                        return r;
                if (d->size == 1)
                        v = json_object_new_uint64(values[0]);
                else {
                        v = json_object_new_array();
                        for (uint16_t k = 0; v && k < d->size; k++)
                                json_object_array_add(v, json_object_new_uint64(values[k]));
                }
                if (!v)
                        return -ENOMEM;
                if (schema) {
                        v = stat_with_schema(d, v);
                        if (!v) {
                                if (kvm_stats_type_to_string(d->flags) && kvm_stats_unit_to_string(d->flags))
                                        return -ENOMEM;
                                continue;
                        }
                }
                if (json_add(o, name, v) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(o);
        return 0;
}
