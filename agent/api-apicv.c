/* SPDX-License-Identifier: MIT */
/* /v1/vms/{id}/apicv and /v1/vms/{id}/vcpus/{n}/lapic: a VM's APIC virtualization, the inhibits
 * inferred from its configuration and the host, the live inhibit bitmap (apicv-trace.c), the one
 * runtime control (PIT reinjection) and a vCPU's decoded local APIC. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "apicv-trace.h"
#include "host-kvm.h"
#include "json-util.h"
#include "str-util.h"
#include "vmm/control-client.h"
#include "vmm/spec.h"

#define APICV_CONTROL_TIMEOUT_MS 5000

typedef struct ApicvConfig {
        VmIrqchip irqchip;
        bool pit_reinject;
        bool x2apic_use_32bit_ids;
        bool x2apic_disable_broadcast_quirk;
        bool nested;
        const char *source; /* "vmm" (the running VM) or "spec" */
} ApicvConfig;

static int reply_vm_error(HttpResponse *resp, VmError *e) {
        json_object *d = e->details;
        e->details = NULL;
        return http_reply_error(resp, e->status, e->code, d, "%s", e->message);
}

static void add_inferred(json_object *arr, const ApicvReasonTable *t, const char *name, const char *scope, const char *why) {
        json_object *o = json_object_new_object();
        int bit = -1;
        for (unsigned b = 0; b < t->n; b++)
                if (streq(t->names[b], name))
                        bit = (int) b;
        json_add_string(o, "reason", name);
        if (bit >= 0)
                json_add_int(o, "bit", bit);
        else
                json_add(o, "bit", NULL);
        json_add_string(o, "scope", scope);
        json_add_string(o, "why", why);
        json_object_array_add(arr, o);
}

/* The inhibits KVM sets for this configuration on this host, each with why it applies. */
static json_object *apicv_inhibits_infer(const HostApicv *h, const ApicvConfig *c, const ApicvReasonTable *t) {
        json_object *arr = json_object_new_array();
        char why[256];
        bool amd = h->vendor_module ? streq(h->vendor_module, "kvm_amd") : (h->cpu_vendor && streq(h->cpu_vendor, "amd"));

        if (!h->effective) {
                if (!h->vendor_module)
                        snprintf(why, sizeof why, "neither kvm_intel nor kvm_amd drives KVM on this host: no APIC virtualization");
                else if (h->parameter_on == 0)
                        snprintf(why, sizeof why, "%s is off", h->parameter);
                else if (h->cpu_supported == 0)
                        snprintf(why, sizeof why, "the CPU lacks %s", amd ? "AVIC" : "APICv");
                else
                        snprintf(why, sizeof why, "%s is absent", h->parameter);
                add_inferred(arr, t, "DISABLED", "vm", why);
        }
        if (c->irqchip == VM_IRQCHIP_NONE)
                add_inferred(arr, t, "ABSENT", "vm",
                             "irqchip \"none\": no in-kernel LAPIC (KVM clears ABSENT only on KVM_CREATE_IRQCHIP or KVM_CAP_SPLIT_IRQCHIP)");
        /* kvm_pit_set_reinject() sets PIT_REINJ whenever reinjection is on, but only AVIC lists it among
         * the inhibits it honours: AVIC does not trap EOIs, which reinjection's ack notifier needs. */
        if (c->irqchip == VM_IRQCHIP_KERNEL && c->pit_reinject && amd)
                add_inferred(arr, t, "PIT_REINJ", "vm",
                             "pit.reinject is on with the in-kernel PIT, and AVIC can't deliver the EOIs reinjection waits for");
        if (c->nested && amd)
                add_inferred(arr, t, "NESTED", "vcpu",
                             "cpu.nested exposes SVM: AVIC is off on a vCPU while it runs a nested guest (per vCPU, not in the VM-wide bitmap)");
        return arr;
}

static int config_from_spec(const VmRecord *r, ApicvConfig *ret) {
        _cleanup_vm_spec_ VmSpec *spec = NULL;
        JsonError e;
        int k = vm_spec_from_string(r->spec, strlen(r->spec), &spec, &e);
        if (k < 0)
                return k;
        *ret = (ApicvConfig){ .irqchip = spec->irqchip,
                              .pit_reinject = spec->pit_reinject,
                              .x2apic_use_32bit_ids = spec->x2apic_use_32bit_ids,
                              .x2apic_disable_broadcast_quirk = spec->x2apic_disable_broadcast_quirk,
                              .nested = spec->nested,
                              .source = "spec" };
        return 0;
}

/* The running VMM's own view replaces the spec's where it answers (pit_reinject can change). */
static void config_from_vmm(const char *ctl, ApicvConfig *c) {
        _cleanup_json_ json_object *res = NULL;
        json_object *pit, *v;
        if (!ctl || vmm_control_call(ctl, "apicv_config", NULL, APICV_CONTROL_TIMEOUT_MS, &res, NULL, NULL) != 0)
                return;
        if (json_object_object_get_ex(res, "pit", &pit) && json_object_object_get_ex(pit, "reinject", &v)) {
                c->pit_reinject = json_object_get_boolean(v);
                c->source = "vmm";
        }
}

static int apicv_view(Manager *m, const VmRecord *r, const char *ctl, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object(), *policy = json_object_new_object();
        json_object *sub, *x, *apicv = NULL;
        ApicvConfig c;
        HostApicv h;
        int k;

        if (!o || !policy)
                return -ENOMEM;
        k = config_from_spec(r, &c);
        if (k < 0)
                return k;
        config_from_vmm(ctl, &c);
        host_kvm_apicv_state(&h);

        sub = json_object_new_object();
        json_add(o, "vm", sub);
        json_add_string(sub, "uuid", r->uuid);
        json_add_string(sub, "name", r->name);
        json_add_string(sub, "state", r->state);

        sub = json_object_new_object();
        json_add(o, "host", sub);
        json_add_string(sub, "vendor_module", h.vendor_module);
        json_add_string(sub, "parameter", h.parameter);
        if (h.parameter_on >= 0)
                json_add_bool(sub, "enabled", h.parameter_on);
        else
                json_add(sub, "enabled", NULL);
        if (h.cpu_supported >= 0)
                json_add_bool(sub, "cpu_supported", h.cpu_supported);
        else
                json_add(sub, "cpu_supported", NULL);
        json_add_bool(sub, "forced", h.forced);
        json_add_bool(sub, "effective", h.effective);
        if (host_kvm_policy(m, policy) >= 0 && json_object_object_get_ex(policy, "apicv", &apicv))
                json_add(sub, "policy", json_object_get(apicv));

        sub = json_object_new_object();
        json_add(o, "configuration", sub);
        json_add_string(sub, "irqchip", vm_irqchip_to_string(c.irqchip));
        x = json_object_new_object();
        json_add(sub, "x2apic_api", x);
        json_add_bool(x, "use_32bit_ids", c.x2apic_use_32bit_ids);
        json_add_bool(x, "disable_broadcast_quirk", c.x2apic_disable_broadcast_quirk);
        x = json_object_new_object();
        json_add(sub, "pit", x);
        json_add_bool(x, "in_kernel", c.irqchip == VM_IRQCHIP_KERNEL);
        json_add_bool(x, "reinject", c.pit_reinject);
        json_add_bool(sub, "nested", c.nested);
        json_add_string(sub, "source", c.source);

        ApicvTrace *t = m->apicv_trace;
        ApicvReasonTable fallback;
        const ApicvReasonTable *table = t ? apicv_trace_reasons(t) : NULL;
        if (!table) {
                apicv_reason_table_for("", NULL, &fallback);
                table = &fallback;
        }
        json_add(o, "inferred", apicv_inhibits_infer(&h, &c, table));

        json_object *live = NULL;
        bool has_vmm = ctl && r->vmm_pid > 0;
        k = apicv_trace_live_json(t, has_vmm ? (pid_t) r->vmm_pid : 0, r->vmm_start_time, &live);
        if (k < 0)
                return k;
        json_add(o, "live", live);
        *ret = TAKE_PTR(o);
        return 0;
}

static int do_get(Manager *m, const VmRecord *r, const char *ctl, void *userdata, VmError *e) {
        (void) e;
        return apicv_view(m, r, ctl, userdata);
}

int api_vm_apicv_get(Manager *m, HttpRequest *req, HttpResponse *resp) {
        json_object *o = NULL;
        VmError e = { 0 };
        int k = vms_locked(m, req->params[0], do_get, &o, &e);
        if (k < 0 && e.status)
                return reply_vm_error(resp, &e);
        if (k < 0)
                return k;
        return http_reply_json(resp, 200, o);
}

typedef struct Patch {
        bool pit_reinject;
        const char *actor;
        json_object *result;
} Patch;

static int patch_error(VmError *e, unsigned status, const char *code, const char *field, const char *fmt, ...)
        _printf_(5, 6);
static int patch_error(VmError *e, unsigned status, const char *code, const char *field, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof e->message, fmt, ap);
        va_end(ap);
        e->status = status;
        e->code = code;
        e->details = json_object_new_object();
        if (field)
                json_add_string(e->details, "path", field);
        return -EINVAL;
}

/* Writes the VM's stored spec with pit.reinject changed. */
static int spec_set_pit_reinject(Manager *m, const VmRecord *r, bool reinject) {
        _cleanup_vm_spec_ VmSpec *spec = NULL;
        _cleanup_json_ json_object *j = NULL;
        JsonError je;
        int k = vm_spec_from_string(r->spec, strlen(r->spec), &spec, &je);
        if (k < 0)
                return k;
        spec->pit_reinject = reinject;
        k = vm_spec_to_json(spec, &j);
        if (k < 0)
                return k;
        return store_vm_set_spec(m->store, r->uuid, json_to_string(j));
}

static int call_pit_reinject(const char *ctl, bool reinject, char **ret_code, char **ret_message) {
        _cleanup_json_ json_object *params = json_object_new_object(), *res = NULL;
        if (!params || json_add_bool(params, "reinject", reinject) < 0)
                return -ENOMEM;
        return vmm_control_call(ctl, "pit_reinject", params, APICV_CONTROL_TIMEOUT_MS, &res, ret_code, ret_message);
}

static int do_patch(Manager *m, const VmRecord *r, const char *ctl, void *userdata, VmError *e) {
        Patch *p = userdata;
        _cleanup_free_ char *code = NULL, *msg = NULL;
        ApicvConfig c;
        int k;

        if (!ctl) {
                e->details = json_object_new_object();
                json_add_string(e->details, "state", r->state);
                json_add_string(e->details, "uuid", r->uuid);
                e->status = 409;
                e->code = "invalid_state";
                snprintf(e->message, sizeof e->message,
                         "VM \"%s\" is %s: pit_reinject changes at run time only (running or paused); change the spec's pit.reinject otherwise",
                         r->name, r->state);
                return -EBUSY;
        }
        k = config_from_spec(r, &c);
        if (k < 0)
                return k;
        config_from_vmm(ctl, &c);
        bool previous = c.pit_reinject;

        k = call_pit_reinject(ctl, p->pit_reinject, &code, &msg);
        if (k == 1) {
                bool unsupported = streq(code, "unsupported");
                return patch_error(e, unsupported ? 422 : 500, unsupported ? "unsupported" : "vmm_failed", "$.pit_reinject",
                                   "%s", msg);
        }
        if (k < 0)
                return patch_error(e, 500, "vmm_failed", NULL, "the VMM of \"%s\" did not answer pit_reinject: %s", r->name,
                                   strerror(-k));
        k = spec_set_pit_reinject(m, r, p->pit_reinject);
        if (k < 0) {
                /* The inventory must not disagree with the VM: undo. */
                (void) call_pit_reinject(ctl, previous, NULL, NULL);
                return patch_error(e, 500, "internal", NULL, "recording pit_reinject in the inventory failed: %s", strerror(-k));
        }

        char object[48];
        json_object *d = json_object_new_object();
        snprintf(object, sizeof object, "vm/%s", r->uuid);
        json_add_string(d, "name", r->name);
        json_add_bool(d, "pit_reinject", p->pit_reinject);
        json_add_bool(d, "previous", previous);
        manager_event(m, p->actor, object, "apicv.pit_reinject", "ok", d);
        json_object_put(d);

        _cleanup_(vm_record_freep) VmRecord *fresh = NULL;
        k = store_vm_get(m->store, r->uuid, &fresh);
        if (k < 0)
                return k;
        return apicv_view(m, fresh, ctl, &p->result);
}

int api_vm_apicv_patch(Manager *m, HttpRequest *req, HttpResponse *resp) {
        static const char *const restart_fields[] = { "irqchip", "x2apic_api", "pit", "nested", NULL };
        _cleanup_json_ json_object *body = NULL;
        VmError e = { 0 };
        Patch p = { .actor = req->actor };
        bool have = false;
        int k;

        if (http_body_json(req, resp, &body) < 0)
                return 0;
        if (!json_object_is_type(body, json_type_object))
                return http_reply_error(resp, 400, "invalid_argument", NULL, "the body must be a JSON object");
        json_object_object_foreach(body, key, value) {
                if (streq(key, "pit_reinject")) {
                        if (!json_object_is_type(value, json_type_boolean)) {
                                json_object *d = json_object_new_object();
                                json_add_string(d, "path", "$.pit_reinject");
                                return http_reply_error(resp, 422, "invalid_argument", d, "$.pit_reinject: must be a boolean");
                        }
                        p.pit_reinject = json_object_get_boolean(value);
                        have = true;
                        continue;
                }
                bool restart = false;
                for (size_t i = 0; restart_fields[i]; i++)
                        restart |= streq(key, restart_fields[i]);
                json_object *d = json_object_new_object();
                char path[80];
                snprintf(path, sizeof path, "$.%.64s", key);
                json_add_string(d, "path", path);
                if (restart)
                        return http_reply_error(resp, 409, "restart_required", d,
                                                "%s can't change while the VM exists in KVM: change the VM's spec and restart it; only pit_reinject changes at run time",
                                                path);
                return http_reply_error(resp, 422, "invalid_argument", d, "%s: unknown field (only pit_reinject changes at run time)",
                                        path);
        }
        if (!have)
                return http_reply_error(resp, 422, "invalid_argument", NULL, "nothing to change: the body needs \"pit_reinject\"");
        k = vms_locked(m, req->params[0], do_patch, &p, &e);
        if (k < 0 && e.status)
                return reply_vm_error(resp, &e);
        if (k < 0)
                return k;
        return http_reply_json(resp, 200, p.result);
}

typedef struct LapicQuery {
        unsigned vcpu;
        json_object *result;
} LapicQuery;

static int do_lapic(Manager *m, const VmRecord *r, const char *ctl, void *userdata, VmError *e) {
        LapicQuery *q = userdata;
        _cleanup_json_ json_object *params = json_object_new_object(), *err = NULL;
        (void) m;
        if (!ctl) {
                e->details = json_object_new_object();
                json_add_string(e->details, "state", r->state);
                json_add_string(e->details, "uuid", r->uuid);
                e->status = 409;
                e->code = "invalid_state";
                snprintf(e->message, sizeof e->message, "VM \"%s\" is %s: a LAPIC exists only while the VM runs or is paused",
                         r->name, r->state);
                return -EBUSY;
        }
        if (!params || json_add_uint(params, "vcpu", q->vcpu) < 0)
                return -ENOMEM;
        int k = vmm_control_call_full(ctl, "lapic", params, APICV_CONTROL_TIMEOUT_MS, &q->result, &err);
        if (k == 1) {
                json_object *v;
                const char *code = json_object_object_get_ex(err, "code", &v) ? json_object_get_string(v) : "";
                const char *message = json_object_object_get_ex(err, "message", &v) ? json_object_get_string(v) : "";
                e->details = json_object_new_object();
                json_add_uint(e->details, "vcpu", q->vcpu);
                snprintf(e->message, sizeof e->message, "%s", message);
                if (streq(code, "not_found")) {
                        e->status = 404;
                        e->code = "not_found";
                } else if (streq(code, "unsupported")) {
                        e->status = 422;
                        e->code = "unsupported";
                } else {
                        e->status = 500;
                        e->code = "vmm_failed";
                }
                return -EIO;
        }
        if (k < 0) {
                e->status = 500;
                e->code = "vmm_failed";
                snprintf(e->message, sizeof e->message, "the VMM of \"%s\" did not answer lapic: %s", r->name, strerror(-k));
                return k;
        }
        json_add_string(q->result, "vm", r->uuid);
        return 0;
}

int api_vm_lapic_get(Manager *m, HttpRequest *req, HttpResponse *resp) {
        LapicQuery q = {};
        VmError e = { 0 };
        if (safe_atou(req->params[1], &q.vcpu) < 0) {
                json_object *d = json_object_new_object();
                json_add_string(d, "parameter", "n");
                return http_reply_error(resp, 400, "invalid_argument", d, "the vCPU number must be a non-negative integer, not \"%s\"",
                                        req->params[1]);
        }
        int k = vms_locked(m, req->params[0], do_lapic, &q, &e);
        if (k < 0 && e.status)
                return reply_vm_error(resp, &e);
        if (k < 0)
                return k;
        return http_reply_json(resp, 200, q.result);
}
