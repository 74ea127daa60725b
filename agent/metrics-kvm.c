/* SPDX-License-Identifier: MIT */
#include "metrics-kvm.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "json-util.h"
#include "macro.h"
#include "metrics.h"
#include "str-util.h"

#define NAME_MAX_LEN 200

static const char *schema_string(json_object *schema, const char *key) {
        json_object *v;
        return json_object_object_get_ex(schema, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : "";
}

static int64_t schema_int(json_object *schema, const char *key, int64_t def) {
        json_object *v;
        return json_object_object_get_ex(schema, key, &v) && json_object_is_type(v, json_type_int)
                       ? json_object_get_int64(v)
                       : def;
}

static bool is_histogram(json_object *schema) {
        const char *t = schema_string(schema, "type");
        return streq(t, "linear_hist") || streq(t, "log_hist");
}

/* KVM names time stats by their unit ("halt_wait_ns"); in base units that suffix would lie. */
static void strip_suffix(char *name, const char *const *suffixes) {
        size_t n = strlen(name);
        for (size_t i = 0; suffixes[i]; i++) {
                size_t k = strlen(suffixes[i]);
                if (n > k && streq(name + n - k, suffixes[i])) {
                        name[n - k] = 0;
                        return;
                }
        }
}

int metrics_kvm_stat_name(const char *kvm_name, json_object *schema, char *buf, size_t size, double *ret_scale) {
        static const char *const time_suffixes[] = { "_ns", "_us", "_ms", "_s", NULL };
        static const char *const hist_suffixes[] = { "_hist", NULL };
        char name[NAME_MAX_LEN];
        const char *unit = schema_string(schema, "unit"), *type = schema_string(schema, "type");
        const char *suffix = "";
        size_t n = 0;

        for (const char *p = kvm_name; *p && n + 1 < sizeof name; p++)
                name[n++] = (char) ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ? *p : '_');
        name[n] = 0;
        if (n == 0)
                return -EINVAL;
        if (is_histogram(schema))
                strip_suffix(name, hist_suffixes);
        if (streq(unit, "seconds")) {
                strip_suffix(name, time_suffixes);
                suffix = "_seconds";
        } else if (streq(unit, "bytes")) {
                if (!endswith(name, "_bytes"))
                        suffix = "_bytes";
        } else if (streq(unit, "cycles")) {
                if (!endswith(name, "_cycles"))
                        suffix = "_cycles";
        }
        int k = snprintf(buf, size, "%s%s%s", name, suffix, streq(type, "cumulative") ? "_total" : "");
        if (k < 0 || (size_t) k >= size)
                return -ENAMETOOLONG;
        *ret_scale = pow((double) schema_int(schema, "base", 10), (double) schema_int(schema, "exponent", 0));
        return 0;
}

/* raw * scale, computed as a division for negative exponents: 1500000000 ns is then exactly 1.5 s,
 * where multiplying by 1e-9 (not representable) is not. */
static double scaled(double raw, double scale) {
        if (scale > 0 && scale < 1)
                return raw / (1.0 / scale);
        return raw * scale;
}

/* The cumulative stat KVM keeps beside a histogram for the total of what it counted. */
static json_object *histogram_sum_stat(json_object *stats, const char *hist_name) {
        char sum_name[NAME_MAX_LEN];
        size_t n = strlen(hist_name);
        json_object *s;

        if (n < 5 || !streq(hist_name + n - 5, "_hist") || n - 5 + 3 >= sizeof sum_name)
                return NULL;
        memcpy(sum_name, hist_name, n - 5);
        strcpy(sum_name + n - 5, "_ns");
        if (!json_object_object_get_ex(stats, sum_name, &s) || !streq(schema_string(s, "type"), "cumulative"))
                return NULL;
        return s;
}

static uint64_t value_u64(json_object *v) {
        return json_object_is_type(v, json_type_int) ? (uint64_t) json_object_get_uint64(v) : 0;
}

static void write_labels(FILE *f, const char *uuid, const char *vm_name, int vcpu) {
        fputs("vm_uuid=", f);
        metrics_write_label_value(f, uuid);
        fputs(",vm_name=", f);
        metrics_write_label_value(f, vm_name);
        if (vcpu >= 0)
                fprintf(f, ",vcpu=\"%d\"", vcpu);
}

static void write_number(FILE *f, double v) {
        if (isinf(v))
                fputs("+Inf", f);
        else
                fprintf(f, "%.15g", v);
}

static void write_one(FILE *f, const char *family, json_object *stats, const char *kvm_name, json_object *schema,
                      double scale, const char *uuid, const char *vm_name, int vcpu) {
        json_object *v;

        if (!is_histogram(schema)) {
                if (!json_object_object_get_ex(schema, "value", &v))
                        return;
                fprintf(f, "%s{", family);
                write_labels(f, uuid, vm_name, vcpu);
                fputs("} ", f);
                write_number(f, scaled((double) value_u64(v), scale));
                fputc('\n', f);
                return;
        }
        if (!json_object_object_get_ex(schema, "values", &v) || !json_object_is_type(v, json_type_array))
                return;
        bool linear = streq(schema_string(schema, "type"), "linear_hist");
        uint64_t bucket_size = (uint64_t) schema_int(schema, "bucket_size", 1);
        size_t n = json_object_array_length(v);
        uint64_t cumulative = 0;
        for (size_t i = 0; i < n; i++) {
                cumulative += value_u64(json_object_array_get_idx(v, i));
                /* Integer values: a linear bucket i holds [i*size, (i+1)*size), a log bucket i
                 * holds [2^(i-1), 2^i) (bucket 0 holds 0); KVM clamps larger values into the last
                 * bucket, which therefore has no upper bound. */
                double le;
                if (i + 1 == n)
                        le = INFINITY;
                else if (linear)
                        le = scaled((double) (i + 1) * (double) bucket_size - 1, scale);
                else
                        le = scaled(ldexp(1.0, (int) i) - 1, scale);
                fprintf(f, "%s_bucket{", family);
                write_labels(f, uuid, vm_name, vcpu);
                fputs(",le=\"", f);
                write_number(f, le);
                fprintf(f, "\"} %llu\n", (unsigned long long) cumulative);
        }
        if (n == 0)
                return;
        json_object *sum = histogram_sum_stat(stats, kvm_name), *sv;
        if (sum && json_object_object_get_ex(sum, "value", &sv)) {
                double sum_scale = pow((double) schema_int(sum, "base", 10), (double) schema_int(sum, "exponent", 0));
                fprintf(f, "%s_sum{", family);
                write_labels(f, uuid, vm_name, vcpu);
                fputs("} ", f);
                write_number(f, scaled((double) value_u64(sv), sum_scale));
                fputc('\n', f);
        }
        fprintf(f, "%s_count{", family);
        write_labels(f, uuid, vm_name, vcpu);
        fprintf(f, "} %llu\n", (unsigned long long) cumulative);
}

static json_object *vm_stats(json_object *vm, int vcpu_index) {
        json_object *stats, *o;
        if (!json_object_object_get_ex(vm, "stats", &stats))
                return NULL;
        if (vcpu_index < 0)
                return json_object_object_get_ex(stats, "vm", &o) ? o : NULL;
        if (!json_object_object_get_ex(stats, "vcpus", &o) || !json_object_is_type(o, json_type_array))
                return NULL;
        json_object *c = json_object_array_get_idx(o, (size_t) vcpu_index);
        return c && json_object_object_get_ex(c, "stats", &o) ? o : NULL;
}

static size_t vcpu_count(json_object *vm) {
        json_object *stats, *o;
        if (!json_object_object_get_ex(vm, "stats", &stats) || !json_object_object_get_ex(stats, "vcpus", &o) ||
            !json_object_is_type(o, json_type_array))
                return 0;
        return json_object_array_length(o);
}

/* One level (VM or vCPU): every stat name seen on any VM becomes one family. */
static int write_level(FILE *f, json_object *vms, bool per_vcpu) {
        _cleanup_json_ json_object *done = json_object_new_object();
        size_t n_vms = json_object_array_length(vms);

        if (!done)
                return -ENOMEM;
        for (size_t a = 0; a < n_vms; a++) {
                json_object *vm_a = json_object_array_get_idx(vms, a);
                json_object *stats_a = vm_stats(vm_a, per_vcpu ? 0 : -1);
                if (!stats_a)
                        continue;
                json_object_object_foreach(stats_a, kvm_name, schema) {
                        char name[NAME_MAX_LEN], family[NAME_MAX_LEN + 32];
                        double scale;
                        if (json_object_object_get_ex(done, kvm_name, NULL))
                                continue;
                        if (json_object_object_add(done, kvm_name, NULL) < 0)
                                return -ENOMEM;
                        if (metrics_kvm_stat_name(kvm_name, schema, name, sizeof name, &scale) < 0)
                                continue;
                        snprintf(family, sizeof family, "kvmfleet_kvm_%s_%s", per_vcpu ? "vcpu" : "vm", name);
                        const char *type = schema_string(schema, "type");
                        char help[NAME_MAX_LEN + 96];
                        snprintf(help, sizeof help, "KVM %s statistic %s (%s, unit %s).", per_vcpu ? "vCPU" : "VM",
                                 kvm_name, type, schema_string(schema, "unit"));
                        metrics_write_family(f, family,
                                             is_histogram(schema) ? "histogram"
                                             : streq(type, "cumulative") ? "counter" : "gauge",
                                             help);
                        for (size_t b = 0; b < n_vms; b++) {
                                json_object *vm_b = json_object_array_get_idx(vms, b);
                                const char *uuid = schema_string(vm_b, "uuid"), *vm_name = schema_string(vm_b, "name");
                                size_t n_vcpus = per_vcpu ? vcpu_count(vm_b) : 1;
                                for (size_t c = 0; c < n_vcpus; c++) {
                                        json_object *stats_b = vm_stats(vm_b, per_vcpu ? (int) c : -1), *schema_b;
                                        if (!stats_b || !json_object_object_get_ex(stats_b, kvm_name, &schema_b))
                                                continue;
                                        /* Same name, other kind (another kernel version): not this family. */
                                        if (!streq(schema_string(schema_b, "type"), type) ||
                                            !streq(schema_string(schema_b, "unit"), schema_string(schema, "unit")))
                                                continue;
                                        double scale_b;
                                        char name_b[NAME_MAX_LEN];
                                        if (metrics_kvm_stat_name(kvm_name, schema_b, name_b, sizeof name_b, &scale_b) < 0)
                                                continue;
                                        write_one(f, family, stats_b, kvm_name, schema_b, scale_b, uuid, vm_name,
                                                  per_vcpu ? (int) c : -1);
                                }
                        }
                }
        }
        return 0;
}

int metrics_write_kvm_stats(FILE *f, json_object *vms) {
        if (!json_object_is_type(vms, json_type_array))
                return -EINVAL;
        int r = write_level(f, vms, false);
        if (r < 0)
                return r;
        return write_level(f, vms, true);
}
