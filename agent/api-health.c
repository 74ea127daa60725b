/* SPDX-License-Identifier: MIT */
/* GET /v1/health: each check is ok, degraded or failing; the worst one decides the status.
 * 200 when ok or degraded (the agent can serve), 503 when failing. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "api.h"
#include "fd-util.h"
#include "host-info.h"
#include "host-kvm.h"
#include "json-util.h"
#include "str-util.h"
#include "time-util.h"
#include "vms.h"

typedef enum { CHECK_OK, CHECK_DEGRADED, CHECK_FAILING } CheckStatus;
static const char *const check_status_names[] = { "ok", "degraded", "failing" };

static CheckStatus add_check(json_object *checks, const char *name, CheckStatus st, const char *detail) {
        json_object *c = json_object_new_object();
        if (c && json_object_array_add(checks, c) == 0) {
                json_add_string(c, "name", name);
                json_add_string(c, "status", check_status_names[st]);
                json_add_string(c, "detail", detail);
        } else
                json_object_put(c);
        return st;
}

static CheckStatus check_inventory(Manager *m, json_object *checks) {
        char detail[512];
        int r = store_check_writable(m->store);
        if (r < 0) {
                snprintf(detail, sizeof detail, "%s is not writable: %s", store_path(m->store), strerror(-r));
                return add_check(checks, "inventory", CHECK_FAILING, detail);
        }
        snprintf(detail, sizeof detail, "%s writable", store_path(m->store));
        return add_check(checks, "inventory", CHECK_OK, detail);
}

static CheckStatus check_kvm(json_object *checks) {
        char detail[256];
        int r = host_kvm_probe(detail, sizeof detail);
        return add_check(checks, "kvm_device", r < 0 ? CHECK_FAILING : CHECK_OK, detail);
}

static CheckStatus check_space(Manager *m, json_object *checks) {
        struct statvfs sv;
        char detail[512], a[32], b[32];
        if (statvfs(m->config->state_dir, &sv) < 0) {
                snprintf(detail, sizeof detail, "statvfs %s: %s", m->config->state_dir, strerror(errno));
                return add_check(checks, "state_dir_space", CHECK_FAILING, detail);
        }
        uint64_t avail = (uint64_t) sv.f_bavail * sv.f_frsize;
        format_size(a, sizeof a, avail);
        format_size(b, sizeof b, m->config->min_free_space);
        snprintf(detail, sizeof detail, "%s free in %s (threshold %s)", a, m->config->state_dir, b);
        if (avail < (16ULL << 20))
                return add_check(checks, "state_dir_space", CHECK_FAILING, detail);
        return add_check(checks, "state_dir_space", avail < m->config->min_free_space ? CHECK_DEGRADED : CHECK_OK, detail);
}

static bool report_bool(json_object *o, const char *key, bool *ret) {
        json_object *v;
        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
                return false;
        *ret = json_object_get_boolean(v);
        return true;
}

/* Diverging CPUs make the host unschedulable (failing); parameters not in effect or no report
 * at all leave it usable but not as the operator asked (degraded). */
static CheckStatus check_kvm_setup(Manager *m, json_object *checks) {
        _cleanup_json_ json_object *latest = NULL;
        json_object *report = NULL, *cons = NULL;
        char detail[512];
        bool consistent, in_effect;
        int r = store_kvm_setup_latest(m->store, &latest);

        if (r == -ENOENT) {
                snprintf(detail, sizeof detail, "no kvm setup report ingested (expected at %s; run kvmfleet-load)",
                         m->config->kvm_setup_report);
                return add_check(checks, "kvm_setup", CHECK_DEGRADED, detail);
        }
        if (r < 0) {
                snprintf(detail, sizeof detail, "reading the setup report from the inventory: %s", strerror(-r));
                return add_check(checks, "kvm_setup", CHECK_FAILING, detail);
        }
        json_object_object_get_ex(latest, "report", &report);
        if (report)
                json_object_object_get_ex(report, "consistency", &cons);
        if (report_bool(cons, "consistent", &consistent) && !consistent)
                return add_check(checks, "kvm_setup", CHECK_FAILING,
                                 "CPUs disagree on virtualization features: host is unschedulable (see GET /v1/host/kvm)");
        if (report_bool(report, "params_in_effect", &in_effect) && !in_effect)
                return add_check(checks, "kvm_setup", CHECK_DEGRADED,
                                 "desired KVM module parameters are not in effect (see GET /v1/host/kvm)");
        /* A report from another kernel (the host rebooted into a new one since kvmfleet-load ran)
         * or parameters changed by hand since describe a setup that is no longer the running one. */
        json_object *release = NULL, *params = NULL;
        struct utsname u;
        if (report && json_object_object_get_ex(report, "kernel_release", &release) && uname(&u) == 0 &&
            !streq(json_object_get_string(release), u.release)) {
                snprintf(detail, sizeof detail, "setup report is from kernel %s, running %s: run kvmfleet-load",
                         json_object_get_string(release), u.release);
                return add_check(checks, "kvm_setup", CHECK_DEGRADED, detail);
        }
        if (report && json_object_object_get_ex(report, "params", &params) && json_object_is_type(params, json_type_array))
                for (size_t i = 0; i < json_object_array_length(params); i++) {
                        json_object *p = json_object_array_get_idx(params, i), *mod, *name, *eff;
                        _cleanup_free_ char *now = NULL;
                        char path[512];
                        if (!json_object_object_get_ex(p, "module", &mod) || !json_object_object_get_ex(p, "name", &name) ||
                            !json_object_object_get_ex(p, "effective", &eff) || !json_object_is_type(eff, json_type_string))
                                continue;
                        snprintf(path, sizeof path, "/sys/module/%s/parameters/%s", json_object_get_string(mod),
                                 json_object_get_string(name));
                        if (read_one_line_file(path, &now) < 0 || streq(now, json_object_get_string(eff)))
                                continue;
                        snprintf(detail, sizeof detail, "%s.%s is %s now, %s when kvmfleet-load ran: run kvmfleet-load",
                                 json_object_get_string(mod), json_object_get_string(name), now, json_object_get_string(eff));
                        return add_check(checks, "kvm_setup", CHECK_DEGRADED, detail);
                }
        bool ok;
        if (report_bool(report, "ok", &ok) && !ok)
                return add_check(checks, "kvm_setup", CHECK_DEGRADED, "kvmfleet-load reported a problem (see GET /v1/host/kvm)");
        return add_check(checks, "kvm_setup", CHECK_OK, "CPUs consistent, desired parameters in effect");
}

/* Under a systemd watchdog the event loop wakes at least every half interval to ping, so a loop
 * whose last wake-up is older than the whole interval is stuck, and systemd will restart the agent. */
static CheckStatus check_watchdog(Manager *m, json_object *checks) {
        char detail[256];
        uint64_t interval = 0, last = 0, now = now_monotonic_usec();

        if (!m->watchdog || sd_watchdog_enabled(false, &interval) <= 0 || interval == 0)
                return add_check(checks, "watchdog", CHECK_OK, "not requested (no WatchdogSec= in the unit)");
        /* Read from an HTTP thread: sd_event_now() only reads the loop's last wake-up timestamp. */
        if (!m->event || sd_event_now(m->event, CLOCK_MONOTONIC, &last) < 0)
                return add_check(checks, "watchdog", CHECK_OK, "event loop not started yet");
        if (now > last && now - last > interval) {
                snprintf(detail, sizeof detail, "event loop has not run for %.1f s (watchdog interval %.1f s)",
                         (double) (now - last) / 1e6, (double) interval / 1e6);
                return add_check(checks, "watchdog", CHECK_FAILING, detail);
        }
        snprintf(detail, sizeof detail, "event loop pinging systemd (interval %.1f s)", (double) interval / 1e6);
        return add_check(checks, "watchdog", CHECK_OK, detail);
}

/* kvm.allow_unsafe_mappings lets nested page mappings reach unpinned memory: never quietly on. */
static CheckStatus check_unsafe_mappings(json_object *checks) {
        if (host_kvm_unsafe_mappings_on())
                return add_check(checks, "kvm_unsafe_mappings", CHECK_DEGRADED,
                                 "kvm.allow_unsafe_mappings is on: nested guests' page mappings may reach unpinned, "
                                 "non-refcounted host memory");
        return add_check(checks, "kvm_unsafe_mappings", CHECK_OK, "kvm.allow_unsafe_mappings is off or absent");
}

/* A running or paused VM whose VMM is gone: the supervisor marks it crashed as soon as it sees
 * the exit, so this only lasts while that happens or when the VMM could not be re-adopted. */
static CheckStatus check_vmms(Manager *m, json_object *checks) {
        static const char *const live_states[] = { "running", "paused" };
        char detail[512];
        unsigned live = 0, dead = 0;
        const char *dead_name = NULL;
        _cleanup_json_ json_object *lists = json_object_new_array();

        if (!lists)
                return add_check(checks, "vmm_liveness", CHECK_FAILING, "out of memory");
        for (size_t i = 0; i < ELEMENTSOF(live_states); i++) {
                json_object *vms = NULL;
                int r = store_vm_list(m->store, live_states[i], NULL, 0, UINT32_MAX, &vms);
                if (r < 0) {
                        snprintf(detail, sizeof detail, "listing %s VMs: %s", live_states[i], strerror(-r));
                        return add_check(checks, "vmm_liveness", CHECK_FAILING, detail);
                }
                json_object_array_add(lists, vms);
                for (size_t j = 0; j < json_object_array_length(vms); j++) {
                        json_object *vm = json_object_array_get_idx(vms, j), *uuid, *name;
                        if (!json_object_object_get_ex(vm, "uuid", &uuid))
                                continue;
                        if (vms_vmm_alive(m, json_object_get_string(uuid)))
                                live++;
                        else {
                                dead++;
                                if (!dead_name && json_object_object_get_ex(vm, "name", &name))
                                        dead_name = json_object_get_string(name);
                        }
                }
        }
        if (dead > 0) {
                snprintf(detail, sizeof detail, "%u running or paused VM(s) without a live VMM (first: %s); %u live",
                         dead, dead_name ? dead_name : "?", live);
                return add_check(checks, "vmm_liveness", CHECK_DEGRADED, detail);
        }
        snprintf(detail, sizeof detail, "%u VMM(s) running, all watched", live);
        return add_check(checks, "vmm_liveness", CHECK_OK, detail);
}

int api_health_get(Manager *m, HttpRequest *req, HttpResponse *resp) {
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *checks = json_object_new_array();
        CheckStatus worst = CHECK_OK, st;

        if (!o || !checks || json_add(o, "checks", checks) < 0)
                return -ENOMEM;
        st = check_inventory(m, checks);
        worst = MAX(worst, st);
        st = check_kvm(checks);
        worst = MAX(worst, st);
        st = check_space(m, checks);
        worst = MAX(worst, st);
        st = check_kvm_setup(m, checks);
        worst = MAX(worst, st);
        st = check_watchdog(m, checks);
        worst = MAX(worst, st);
        st = check_unsafe_mappings(checks);
        worst = MAX(worst, st);
        st = check_vmms(m, checks);
        worst = MAX(worst, st);
        json_add_string(o, "status", check_status_names[worst]);
        return http_reply_json(resp, worst == CHECK_FAILING ? 503 : 200, TAKE_PTR(o));
}
