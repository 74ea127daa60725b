/* SPDX-License-Identifier: MIT */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json-util.h"
#include "str-util.h"

const char *module_action_to_string(ModuleAction a) {
        switch (a) {
        case MODULE_ACTION_INSERTED: return "inserted";
        case MODULE_ACTION_RELOADED: return "reloaded";
        case MODULE_ACTION_FAILED: return "failed";
        case MODULE_ACTION_NONE: break;
        }
        return "none";
}

int load_report_new(LoadReport **ret) {
        LoadReport *r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->params_in_effect = true;
        r->consistent = true;
        *ret = r;
        return 0;
}

void load_report_free(LoadReport *r) {
        if (!r)
                return;
        free(r->params);
        free(r->checked_cpus);
        free(r->differences);
        free(r);
}

int load_report_add_trace(LoadReport *r, const char *step, int cpu) {
        if (r->n_trace >= LOAD_REPORT_MAX_TRACE)
                return -E2BIG;
        CpuTraceEntry *e = &r->trace[r->n_trace++];
        strscpy(e->step, sizeof e->step, step);
        e->cpu = cpu;
        return 0;
}

const ModuleReport *load_report_find_module(const LoadReport *r, const char *name) {
        for (size_t i = 0; i < r->n_modules; i++)
                if (streq(r->modules[i].name, name))
                        return &r->modules[i];
        return NULL;
}

ModuleReport *load_report_module(LoadReport *r, const char *name) {
        ModuleReport *m = (ModuleReport *) load_report_find_module(r, name);
        if (m)
                return m;
        if (r->n_modules >= LOAD_REPORT_MAX_MODULES)
                return NULL;
        m = &r->modules[r->n_modules++];
        memset(m, 0, sizeof *m);
        strscpy(m->name, sizeof m->name, name);
        m->refcount = -1;
        return m;
}

int load_report_add_param(LoadReport *r, const ParamReport *p) {
        ParamReport *a = realloc(r->params, (r->n_params + 1) * sizeof *a);
        if (!a)
                return -ENOMEM;
        a[r->n_params++] = *p;
        r->params = a;
        return 0;
}

int load_report_add_duration(LoadReport *r, const char *name, double ms) {
        if (r->n_durations >= LOAD_REPORT_MAX_DURATIONS)
                return -E2BIG;
        DurationEntry *d = &r->durations[r->n_durations++];
        strscpy(d->name, sizeof d->name, name);
        d->ms = ms;
        return 0;
}

void load_report_add_note(LoadReport *r, const char *fmt, ...) {
        va_list ap;
        if (r->n_notes >= LOAD_REPORT_MAX_NOTES)
                return;
        va_start(ap, fmt);
        vsnprintf(r->notes[r->n_notes++], sizeof r->notes[0], fmt, ap);
        va_end(ap);
}

int load_report_stamp(LoadReport *r) {
        struct timespec ts;
        struct tm tm;
        if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
                return negative_errno();
        if (!gmtime_r(&ts.tv_sec, &tm))
                return -EINVAL;
        if (strftime(r->generated_at, sizeof r->generated_at, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return -EINVAL;
        return 0;
}

#define TRY(expr)                     \
        do {                          \
                int _r = (expr);      \
                if (_r < 0)           \
                        return _r;    \
        } while (0)

static int array_new(json_object **ret) {
        *ret = json_object_new_array();
        return *ret ? 0 : -ENOMEM;
}

static int object_new(json_object **ret) {
        *ret = json_object_new_object();
        return *ret ? 0 : -ENOMEM;
}

static int array_append(json_object *a, json_object **item) {
        if (json_object_array_add(a, *item) < 0)
                return -ENOMEM;
        *item = NULL;
        return 0;
}

static int trace_to_json(const LoadReport *r, json_object **ret) {
        _cleanup_json_ json_object *a = NULL;
        TRY(array_new(&a));
        for (size_t i = 0; i < r->n_trace; i++) {
                _cleanup_json_ json_object *o = NULL;
                TRY(object_new(&o));
                TRY(json_add_string(o, "step", r->trace[i].step));
                TRY(json_add_int(o, "cpu", r->trace[i].cpu));
                TRY(array_append(a, &o));
        }
        *ret = TAKE_PTR(a);
        return 0;
}

static int modules_to_json(const LoadReport *r, json_object **ret) {
        _cleanup_json_ json_object *a = NULL;
        TRY(array_new(&a));
        for (size_t i = 0; i < r->n_modules; i++) {
                const ModuleReport *m = &r->modules[i];
                _cleanup_json_ json_object *o = NULL;
                TRY(object_new(&o));
                TRY(json_add_string(o, "name", m->name));
                TRY(json_add_string(o, "state", m->state == MODULE_STATE_COMING ? "loaded" : module_state_to_string(m->state)));
                if (m->refcount >= 0)
                        TRY(json_add_int(o, "refcount", m->refcount));
                TRY(json_add_string(o, "action", module_action_to_string(m->action)));
                if (m->error[0])
                        TRY(json_add_string(o, "error", m->error));
                TRY(array_append(a, &o));
        }
        *ret = TAKE_PTR(a);
        return 0;
}

static int params_to_json(const LoadReport *r, json_object **ret) {
        _cleanup_json_ json_object *a = NULL;
        TRY(array_new(&a));
        for (size_t i = 0; i < r->n_params; i++) {
                const ParamReport *p = &r->params[i];
                _cleanup_json_ json_object *o = NULL;
                TRY(object_new(&o));
                TRY(json_add_string(o, "module", p->module));
                TRY(json_add_string(o, "name", p->name));
                TRY(json_add_string(o, "requested", p->requested));
                TRY(json_add_string(o, "effective", p->has_effective ? p->effective : NULL));
                TRY(json_add_bool(o, "in_effect", p->in_effect));
                TRY(json_add_bool(o, "applicable", p->applicable));
                if (p->reason[0])
                        TRY(json_add_string(o, "reason", p->reason));
                TRY(array_append(a, &o));
        }
        *ret = TAKE_PTR(a);
        return 0;
}

static int consistency_to_json(const LoadReport *r, json_object **ret) {
        _cleanup_json_ json_object *o = NULL, *cpus = NULL, *diffs = NULL;
        TRY(object_new(&o));
        TRY(array_new(&cpus));
        for (size_t i = 0; i < r->n_checked_cpus; i++) {
                _cleanup_json_ json_object *c = json_object_new_int64(r->checked_cpus[i]);
                if (!c)
                        return -ENOMEM;
                TRY(array_append(cpus, &c));
        }
        TRY(json_add(o, "checked_cpus", TAKE_PTR(cpus)));
        TRY(json_add_bool(o, "checked", r->consistency_checked));
        TRY(json_add_bool(o, "consistent", r->consistent));
        if (r->cpuid_source[0])
                TRY(json_add_string(o, "source", r->cpuid_source));
        TRY(array_new(&diffs));
        for (size_t i = 0; i < r->n_differences; i++) {
                const CpuDifference *d = &r->differences[i];
                _cleanup_json_ json_object *e = NULL;
                TRY(object_new(&e));
                TRY(json_add_int(e, "cpu", d->cpu));
                TRY(json_add_int(e, "target_cpu", r->target_cpu));
                TRY(json_add_string(e, "leaf", d->leaf));
                TRY(json_add_string(e, "register", d->reg));
                TRY(json_add_int(e, "bit", d->bit));
                TRY(json_add_int(e, "width", d->width));
                TRY(json_add_string(e, "feature", d->feature));
                TRY(json_add_uint(e, "target_value", d->target_value));
                TRY(json_add_uint(e, "value", d->value));
                TRY(array_append(diffs, &e));
        }
        TRY(json_add(o, "differences", TAKE_PTR(diffs)));
        *ret = TAKE_PTR(o);
        return 0;
}

int load_report_to_json(const LoadReport *r, json_object **ret) {
        _cleanup_json_ json_object *o = NULL, *a = NULL, *d = NULL, *notes = NULL;

        TRY(object_new(&o));
        TRY(json_add_string(o, "version", KVMFLEET_VERSION));
        TRY(json_add_string(o, "kernel_release", r->kernel_release));
        TRY(json_add_string(o, "generated_at", r->generated_at));
        TRY(json_add_int(o, "target_cpu", r->target_cpu));
        TRY(trace_to_json(r, &a));
        TRY(json_add(o, "cpu_trace", TAKE_PTR(a)));
        TRY(json_add_string(o, "vendor", cpu_vendor_to_string(r->vendor)));
        TRY(json_add_string(o, "vendor_module", r->vendor_module[0] ? r->vendor_module : NULL));
        TRY(modules_to_json(r, &a));
        TRY(json_add(o, "modules", TAKE_PTR(a)));
        TRY(params_to_json(r, &a));
        TRY(json_add(o, "params", TAKE_PTR(a)));
        TRY(json_add_bool(o, "params_in_effect", r->params_in_effect));
        TRY(json_add_bool(o, "drift", r->drift));
        TRY(consistency_to_json(r, &a));
        TRY(json_add(o, "consistency", TAKE_PTR(a)));
        TRY(object_new(&d));
        for (size_t i = 0; i < r->n_durations; i++) {
                char text[32];
                snprintf(text, sizeof text, "%.3f", r->durations[i].ms);
                json_object *v = json_object_new_double_s(r->durations[i].ms, text);
                if (!v)
                        return -ENOMEM;
                TRY(json_add(d, r->durations[i].name, v));
        }
        TRY(json_add(o, "durations_ms", TAKE_PTR(d)));
        TRY(array_new(&notes));
        for (size_t i = 0; i < r->n_notes; i++) {
                _cleanup_json_ json_object *s = json_object_new_string(r->notes[i]);
                if (!s)
                        return -ENOMEM;
                TRY(array_append(notes, &s));
        }
        TRY(json_add(o, "notes", TAKE_PTR(notes)));
        if (r->error[0])
                TRY(json_add_string(o, "error", r->error));
        TRY(json_add_bool(o, "ok", r->ok));
        TRY(json_add_int(o, "exit_code", r->exit_code));
        *ret = TAKE_PTR(o);
        return 0;
}

/* "kvm_amd nested=1 (requested 1)" style fragments for one module's parameters. */
static bool module_has_drift(const LoadReport *r, const char *module) {
        for (size_t i = 0; i < r->n_params; i++)
                if (streq(r->params[i].module, module) && r->params[i].applicable && !r->params[i].in_effect)
                        return true;
        return false;
}

int load_report_print(const LoadReport *r, FILE *f) {
        fprintf(f, "kvmfleet-load %s on %s, kernel %s\n", KVMFLEET_VERSION, r->generated_at, r->kernel_release);
        fprintf(f, "target CPU %u; observed:", r->target_cpu);
        for (size_t i = 0; i < r->n_trace; i++)
                fprintf(f, " %s=%d", r->trace[i].step, r->trace[i].cpu);
        fprintf(f, "\nvendor %s, vendor module %s\n", cpu_vendor_to_string(r->vendor),
                r->vendor_module[0] ? r->vendor_module : "(none)");
        for (size_t i = 0; i < r->n_modules; i++) {
                const ModuleReport *m = &r->modules[i];
                fprintf(f, "module %s: %s", m->name, module_state_to_string(m->state));
                if (m->refcount >= 0)
                        fprintf(f, " (refcount %d)", m->refcount);
                if (m->action != MODULE_ACTION_NONE)
                        fprintf(f, ", %s", module_action_to_string(m->action));
                if (m->state == MODULE_STATE_LOADED && m->action == MODULE_ACTION_NONE)
                        fprintf(f, ", %s", module_has_drift(r, m->name) ? "drift" : "no drift");
                if (m->error[0])
                        fprintf(f, ": %s", m->error);
                fputc('\n', f);
        }
        for (size_t i = 0; i < r->n_params; i++) {
                const ParamReport *p = &r->params[i];
                fprintf(f, "param %s.%s: requested %s, effective %s, %s", p->module, p->name, p->requested,
                        p->has_effective ? p->effective : "(unknown)",
                        p->in_effect ? "in effect" : !p->applicable ? "not applicable" : "drift");
                if (p->reason[0])
                        fprintf(f, " (%s)", p->reason);
                fputc('\n', f);
        }
        fprintf(f, "parameters %s\n", r->params_in_effect ? "in effect" : "NOT in effect");
        if (!r->consistency_checked)
                fprintf(f, "CPU consistency not checked\n");
        else {
                fprintf(f, "CPU consistency over %zu CPUs (", r->n_checked_cpus);
                for (size_t i = 0; i < r->n_checked_cpus; i++)
                        fprintf(f, "%s%u", i ? "," : "", r->checked_cpus[i]);
                fprintf(f, "): %s\n", r->consistent ? "consistent" : "DIVERGENT");
                for (size_t i = 0; i < r->n_differences; i++) {
                        const CpuDifference *d = &r->differences[i];
                        fprintf(f, "  %s: CPU %u has %" PRIu64 ", CPU %u has %" PRIu64 " (leaf %s %s bit %u)\n", d->feature,
                                r->target_cpu, d->target_value, d->cpu, d->value, d->leaf, d->reg, d->bit);
                }
        }
        for (size_t i = 0; i < r->n_notes; i++)
                fprintf(f, "note: %s\n", r->notes[i]);
        for (size_t i = 0; i < r->n_durations; i++)
                fprintf(f, "%s%s %.1f ms", i ? ", " : "durations: ", r->durations[i].name, r->durations[i].ms);
        if (r->n_durations)
                fputc('\n', f);
        if (r->error[0])
                fprintf(f, "error: %s\n", r->error);
        fprintf(f, "result: %s (exit %d)\n", r->ok ? "ok" : "FAILED", r->exit_code);
        return ferror(f) ? -EIO : 0;
}
