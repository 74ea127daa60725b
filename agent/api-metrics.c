/* SPDX-License-Identifier: MIT */
/* GET /metrics: the agent (requests, latency, inventory writes, VMs by state), the host (KVM setup
 * report, CPU divergence, module parameters) and every running VM's KVM binary statistics
 * (metrics-kvm.h) in Prometheus text format 0.0.4. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "api.h"
#include "host-info.h"
#include "json-util.h"
#include "metrics.h"
#include "metrics-kvm.h"
#include "str-util.h"
#include "time-util.h"
#include "vms.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static void write_agent_info(Manager *m, FILE *f) {
        metrics_write_family(f, "kvmfleet_agent_info", "gauge", "Always 1; the agent's version as a label.");
        fputs("kvmfleet_agent_info{version=", f);
        metrics_write_label_value(f, KVMFLEET_VERSION);
        fputs("} 1\n", f);
        metrics_write_family(f, "kvmfleet_agent_start_time_seconds", "gauge", "When the agent started, in seconds since the epoch.");
        metrics_write_sample(f, "kvmfleet_agent_start_time_seconds", NULL, (double) m->start_realtime_usec / 1e6);
        metrics_write_family(f, "kvmfleet_agent_watchdog_enabled", "gauge",
                             "1 when systemd supervises the agent's event loop with a watchdog.");
        metrics_write_sample(f, "kvmfleet_agent_watchdog_enabled", NULL, m->watchdog ? 1 : 0);
}

/* Every state of the lifecycle, zeros included, so a rate or an alert has a series to watch. */
static int write_vms(Manager *m, FILE *f) {
        _cleanup_json_ json_object *counts = NULL;
        int r = vms_count_by_state(m, &counts);
        if (r < 0)
                return r;
        metrics_write_family(f, "kvmfleet_vms", "gauge", "VMs in the inventory, by state.");
        json_object_object_foreach(counts, state, count) {
                fputs("kvmfleet_vms{state=", f);
                metrics_write_label_value(f, state);
                fprintf(f, "} %lld\n", (long long) json_object_get_int64(count));
        }
        return 0;
}

static double report_flag(json_object *o, const char *key) {
        json_object *v;
        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
                return 0;
        return json_object_get_boolean(v) ? 1 : 0;
}

static int write_kvm_setup(Manager *m, FILE *f) {
        _cleanup_json_ json_object *latest = NULL;
        json_object *report = NULL, *cons = NULL, *diffs = NULL, *at = NULL;
        int r = store_kvm_setup_latest(m->store, &latest);
        if (r < 0 && r != -ENOENT)
                return r;
        if (latest && json_object_object_get_ex(latest, "report", &report) && report) {
                json_object_object_get_ex(report, "consistency", &cons);
                if (cons)
                        json_object_object_get_ex(cons, "differences", &diffs);
        }
        metrics_write_family(f, "kvmfleet_kvm_setup_report_present", "gauge",
                             "1 when the inventory holds a kvmfleet-load setup report.");
        metrics_write_sample(f, "kvmfleet_kvm_setup_report_present", NULL, report ? 1 : 0);
        if (!report)
                return 0;
        metrics_write_family(f, "kvmfleet_kvm_setup_ok", "gauge", "1 when kvmfleet-load's last run succeeded.");
        metrics_write_sample(f, "kvmfleet_kvm_setup_ok", NULL, report_flag(report, "ok"));
        metrics_write_family(f, "kvmfleet_kvm_params_in_effect", "gauge",
                             "1 when every requested KVM module parameter is in effect.");
        metrics_write_sample(f, "kvmfleet_kvm_params_in_effect", NULL, report_flag(report, "params_in_effect"));
        metrics_write_family(f, "kvmfleet_kvm_cpus_consistent", "gauge",
                             "1 when every online CPU agrees with the target CPU on virtualization features.");
        metrics_write_sample(f, "kvmfleet_kvm_cpus_consistent", NULL, report_flag(cons, "consistent"));
        metrics_write_family(f, "kvmfleet_kvm_cpu_differences", "gauge",
                             "CPU feature fields that differ from the target CPU, by feature name.");
        json_object *counts = json_object_new_object();
        if (!counts)
                return -ENOMEM;
        for (size_t i = 0; diffs && i < json_object_array_length(diffs); i++) {
                json_object *d = json_object_array_get_idx(diffs, i), *feature, *n;
                const char *name = json_object_object_get_ex(d, "feature", &feature) && json_object_is_type(feature, json_type_string)
                                           ? json_object_get_string(feature)
                                           : "unnamed";
                int64_t c = json_object_object_get_ex(counts, name, &n) ? json_object_get_int64(n) : 0;
                json_add_int(counts, name, c + 1);
        }
        json_object_object_foreach(counts, feature, count) {
                fputs("kvmfleet_kvm_cpu_differences{feature=", f);
                metrics_write_label_value(f, feature);
                fprintf(f, "} %lld\n", (long long) json_object_get_int64(count));
        }
        json_object_put(counts);
        if (json_object_object_get_ex(latest, "id", &at)) {
                metrics_write_family(f, "kvmfleet_kvm_setup_report_id", "gauge", "Inventory id of the newest setup report.");
                metrics_write_sample(f, "kvmfleet_kvm_setup_report_id", NULL, (double) json_object_get_int64(at));
        }
        return 0;
}

/* Each running or paused VM's KVM statistics, asked of its VMM now. A VMM that does not answer
 * (stopping at this moment, or hung) is left out of this scrape and counted, rather than failing
 * the whole scrape. */
static int write_vm_kvm_stats(Manager *m, FILE *f) {
        _cleanup_json_ json_object *vms = json_object_new_array(), *params = json_object_new_object();
        VmRecord **records = NULL;
        size_t n = 0;
        unsigned failed = 0;
        int r;

        if (!vms || !params || json_add_bool(params, "schema", true) < 0)
                return -ENOMEM;
        r = store_vm_records(m->store, &records, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                VmRecord *rec = records[i];
                json_object *stats = NULL;
                VmError e = {};

                if (!streq(rec->state, "running") && !streq(rec->state, "paused"))
                        continue;
                if (vms_control(m, rec->uuid, "stats", params, &stats, &e) < 0) {
                        vm_error_done(&e);
                        failed++;
                        continue;
                }
                /* stats first: json_add() takes it whatever happens, so nothing leaks on failure */
                json_object *o = json_object_new_object();
                if (!o || json_add(o, "stats", stats) < 0 || json_add_string(o, "uuid", rec->uuid) < 0 ||
                    json_add_string(o, "name", rec->name) < 0 || json_object_array_add(vms, o) < 0) {
                        json_object_put(o);
                        if (!o)
                                json_object_put(stats);
                        r = -ENOMEM;
                        break;
                }
        }
        vm_record_array_free(records, n);
        if (r < 0)
                return r;
        metrics_write_family(f, "kvmfleet_kvm_stats_scrape_failures", "gauge",
                             "Running or paused VMs whose VMM did not return its KVM statistics in this scrape.");
        metrics_write_sample(f, "kvmfleet_kvm_stats_scrape_failures", NULL, failed);
        return metrics_write_kvm_stats(f, vms);
}

/* The parameters as the kernel has them now (sysfs), so a manual reload shows up at once. */
static int write_kvm_modules(FILE *f) {
        _cleanup_json_ json_object *mods = NULL;
        int r = host_kvm_modules("", &mods);
        if (r < 0)
                return r;
        metrics_write_family(f, "kvmfleet_kvm_module_info", "gauge", "Always 1 per KVM module present; type is module or builtin.");
        json_object_object_foreach(mods, name, mod) {
                json_object *type;
                fputs("kvmfleet_kvm_module_info{module=", f);
                metrics_write_label_value(f, name);
                fputs(",type=", f);
                metrics_write_label_value(f, json_object_object_get_ex(mod, "type", &type) ? json_object_get_string(type) : "");
                fputs("} 1\n", f);
        }
        metrics_write_family(f, "kvmfleet_kvm_module_parameter_info", "gauge",
                             "Always 1 per readable KVM module parameter; its current value is a label.");
        json_object_object_foreach(mods, module, m) {
                json_object *params;
                if (!json_object_object_get_ex(m, "parameters", &params) || !json_object_is_type(params, json_type_object))
                        continue;
                json_object_object_foreach(params, param, value) {
                        fputs("kvmfleet_kvm_module_parameter_info{module=", f);
                        metrics_write_label_value(f, module);
                        fputs(",parameter=", f);
                        metrics_write_label_value(f, param);
                        fputs(",value=", f);
                        metrics_write_label_value(f, json_object_get_string(value));
                        fputs("} 1\n", f);
                }
        }
        return 0;
}

int api_metrics_get(Manager *m, HttpRequest *req, HttpResponse *resp) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        int r;

        if (!f)
                return -ENOMEM;
        write_agent_info(m, f);
        r = metrics_write_agent(f);
        if (r >= 0)
                r = write_vms(m, f);
        if (r >= 0)
                r = write_kvm_setup(m, f);
        if (r >= 0)
                r = write_kvm_modules(f);
        if (r >= 0)
                r = write_vm_kvm_stats(m, f);
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                free(text);
                return r;
        }
        http_response_done(resp);
        resp->status = 200;
        resp->raw = text;
        resp->raw_size = size;
        resp->content_type = METRICS_CONTENT_TYPE;
        return 0;
}
