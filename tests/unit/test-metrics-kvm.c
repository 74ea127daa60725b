/* SPDX-License-Identifier: MIT */
/* agent/metrics-kvm.c: KVM binary stats (as the VMM reports them with schema) to Prometheus names,
 * units, counters, gauges and histograms with exact integer bucket bounds. */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "agent/metrics-kvm.h"
#include "json-util.h"
#include "macro.h"
#include "test.h"

static json_object *parse(const char *text) {
        return json_tokener_parse(text);
}

static char *render(json_object *vms, int *ret) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        if (!f)
                return NULL;
        *ret = metrics_write_kvm_stats(f, vms);
        fclose(f);
        return text;
}

static const char *two_vms =
        "[{\"uuid\": \"u1\", \"name\": \"a\", \"stats\": {"
        "  \"vm\": {\"pages_4k\": {\"type\": \"instant\", \"unit\": \"none\", \"base\": 10, \"exponent\": 0, \"value\": 7},"
        "           \"remote_tlb_flush\": {\"type\": \"cumulative\", \"unit\": \"none\", \"base\": 10, \"exponent\": 0, \"value\": 3}},"
        "  \"vcpus\": [{\"index\": 0, \"stats\": {"
        "     \"halt_wait_ns\": {\"type\": \"cumulative\", \"unit\": \"seconds\", \"base\": 10, \"exponent\": -9, \"value\": 1500000000},"
        "     \"halt_wait_hist\": {\"type\": \"log_hist\", \"unit\": \"seconds\", \"base\": 10, \"exponent\": -9, \"values\": [1, 2, 0, 4]},"
        "     \"lin\": {\"type\": \"linear_hist\", \"unit\": \"none\", \"base\": 10, \"exponent\": 0, \"bucket_size\": 10, \"values\": [5, 1, 1]},"
        "     \"guest_mode\": {\"type\": \"instant\", \"unit\": \"boolean\", \"base\": 10, \"exponent\": 0, \"value\": 1}}},"
        "   {\"index\": 1, \"stats\": {"
        "     \"halt_wait_ns\": {\"type\": \"cumulative\", \"unit\": \"seconds\", \"base\": 10, \"exponent\": -9, \"value\": 2}}}]}},"
        " {\"uuid\": \"u2\", \"name\": \"b\\\"q\", \"stats\": {"
        "  \"vm\": {\"pages_4k\": {\"type\": \"instant\", \"unit\": \"none\", \"base\": 10, \"exponent\": 0, \"value\": 9}},"
        "  \"vcpus\": []}}]";

TEST(names_follow_prometheus_conventions) {
        char buf[128];
        double scale = 0;
        _cleanup_json_ json_object *ns = parse("{\"type\": \"cumulative\", \"unit\": \"seconds\", \"base\": 10, \"exponent\": -9}");
        _cleanup_json_ json_object *bytes = parse("{\"type\": \"instant\", \"unit\": \"bytes\", \"base\": 2, \"exponent\": 10}");
        _cleanup_json_ json_object *hist = parse("{\"type\": \"log_hist\", \"unit\": \"seconds\", \"base\": 10, \"exponent\": -9}");
        _cleanup_json_ json_object *peak = parse("{\"type\": \"peak\", \"unit\": \"none\", \"base\": 10, \"exponent\": 0}");

        ASSERT(metrics_kvm_stat_name("halt_wait_ns", ns, buf, sizeof buf, &scale) == 0);
        CHECK_STREQ(buf, "halt_wait_seconds_total");
        CHECK(scale > 0.99e-9 && scale < 1.01e-9);
        ASSERT(metrics_kvm_stat_name("guest.mem", bytes, buf, sizeof buf, &scale) == 0);
        CHECK_STREQ(buf, "guest_mem_bytes");
        CHECK(scale == 1024.0);
        ASSERT(metrics_kvm_stat_name("halt_poll_success_hist", hist, buf, sizeof buf, &scale) == 0);
        CHECK_STREQ(buf, "halt_poll_success_seconds");
        ASSERT(metrics_kvm_stat_name("max_mmu_page_hash_collisions", peak, buf, sizeof buf, &scale) == 0);
        CHECK_STREQ(buf, "max_mmu_page_hash_collisions");
        CHECK(metrics_kvm_stat_name("", peak, buf, sizeof buf, &scale) < 0);
        CHECK(metrics_kvm_stat_name("halt_wait_ns", ns, buf, 8, &scale) < 0);
}

TEST(families_are_written_once_with_every_vm) {
        _cleanup_json_ json_object *vms = parse(two_vms);
        int r = -1;
        ASSERT(vms);
        _cleanup_free_ char *text = render(vms, &r);
        ASSERT(text);
        CHECK_EQ_INT(r, 0);
        /* one TYPE line per family, both VMs' samples under it */
        const char *t = strstr(text, "# TYPE kvmfleet_kvm_vm_pages_4k gauge\n");
        ASSERT(t);
        CHECK(strstr(t + 1, "# TYPE kvmfleet_kvm_vm_pages_4k") == NULL);
        CHECK_CONTAINS(text, "kvmfleet_kvm_vm_pages_4k{vm_uuid=\"u1\",vm_name=\"a\"} 7\n"
                             "kvmfleet_kvm_vm_pages_4k{vm_uuid=\"u2\",vm_name=\"b\\\"q\"} 9\n");
        CHECK_CONTAINS(text, "# TYPE kvmfleet_kvm_vm_remote_tlb_flush_total counter\n");
        CHECK_CONTAINS(text, "kvmfleet_kvm_vcpu_halt_wait_seconds_total{vm_uuid=\"u1\",vm_name=\"a\",vcpu=\"0\"} 1.5\n");
        CHECK_CONTAINS(text, "kvmfleet_kvm_vcpu_halt_wait_seconds_total{vm_uuid=\"u1\",vm_name=\"a\",vcpu=\"1\"} 2e-09\n");
        CHECK_CONTAINS(text, "kvmfleet_kvm_vcpu_guest_mode{vm_uuid=\"u1\",vm_name=\"a\",vcpu=\"0\"} 1\n");
}

TEST(histograms_have_exact_integer_bounds) {
        _cleanup_json_ json_object *vms = parse(two_vms);
        int r = -1;
        ASSERT(vms);
        _cleanup_free_ char *text = render(vms, &r);
        ASSERT(text);
        CHECK_CONTAINS(text, "# TYPE kvmfleet_kvm_vcpu_halt_wait_seconds histogram\n");
        /* log buckets: 0 | 1 | 2..3 | rest; cumulative counts; bounds scaled from ns */
        CHECK_CONTAINS(text, "kvmfleet_kvm_vcpu_halt_wait_seconds_bucket{vm_uuid=\"u1\",vm_name=\"a\",vcpu=\"0\",le=\"0\"} 1\n");
        CHECK_CONTAINS(text, "le=\"1e-09\"} 3\n");
        CHECK_CONTAINS(text, "le=\"3e-09\"} 3\n");
        CHECK_CONTAINS(text, "le=\"+Inf\"} 7\n");
        /* _sum comes from the companion cumulative stat halt_wait_ns */
        CHECK_CONTAINS(text, "kvmfleet_kvm_vcpu_halt_wait_seconds_sum{vm_uuid=\"u1\",vm_name=\"a\",vcpu=\"0\"} 1.5\n");
        CHECK_CONTAINS(text, "kvmfleet_kvm_vcpu_halt_wait_seconds_count{vm_uuid=\"u1\",vm_name=\"a\",vcpu=\"0\"} 7\n");
        /* linear buckets of 10: [0,10) → le 9, [10,20) → le 19, last unbounded; no companion: no _sum */
        CHECK_CONTAINS(text, "kvmfleet_kvm_vcpu_lin_bucket{vm_uuid=\"u1\",vm_name=\"a\",vcpu=\"0\",le=\"9\"} 5\n");
        CHECK_CONTAINS(text, "le=\"19\"} 6\n");
        CHECK(strstr(text, "kvmfleet_kvm_vcpu_lin_sum") == NULL);
        CHECK_CONTAINS(text, "kvmfleet_kvm_vcpu_lin_count{vm_uuid=\"u1\",vm_name=\"a\",vcpu=\"0\"} 7\n");
}

TEST(bad_input_is_refused) {
        _cleanup_json_ json_object *o = json_object_new_object();
        int r = 0;
        _cleanup_free_ char *text = render(o, &r);
        CHECK(r < 0);
}
