/* SPDX-License-Identifier: MIT */
/* agent/metrics.c: histogram buckets, the Prometheus text format, request series and the
 * inventory write timing through SQLite's trace hooks (a real SQLite database in a temp dir). */
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "macro.h"
#include "agent/metrics.h"
#include "test.h"

static char *render(void (*fn)(FILE *f)) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        if (!f)
                return NULL;
        fn(f);
        fclose(f);
        return text;
}

static void write_agent(FILE *f) {
        metrics_write_agent(f);
}

TEST(histogram_buckets_are_upper_bounds_inclusive) {
        static const double bounds[] = { 1, 2, 5 };
        uint64_t buckets[4] = { 0 };
        MetricsHistogram h = { bounds, 3, buckets, 0, 0 };
        metrics_histogram_observe(&h, 0.5);
        metrics_histogram_observe(&h, 1);   /* le="1" includes 1 */
        metrics_histogram_observe(&h, 1.01);
        metrics_histogram_observe(&h, 5);
        metrics_histogram_observe(&h, 7);   /* above every bound: only +Inf */
        CHECK_EQ_U64(buckets[0], 2);
        CHECK_EQ_U64(buckets[1], 1);
        CHECK_EQ_U64(buckets[2], 1);
        CHECK_EQ_U64(buckets[3], 1);
        CHECK_EQ_U64(h.count, 5);
        CHECK(h.sum > 14.5 && h.sum < 14.52);
}

static void write_small_histogram(FILE *f) {
        static const double bounds[] = { 0.5, 1 };
        uint64_t buckets[3] = { 1, 0, 2 };
        MetricsHistogram h = { bounds, 2, buckets, 9.25, 3 };
        metrics_write_histogram(f, "x_seconds", "a=\"b\"", &h);
        metrics_write_histogram(f, "y_seconds", NULL, &h);
}

TEST(histogram_text_is_cumulative_with_inf_sum_count) {
        _cleanup_free_ char *t = render(write_small_histogram);
        ASSERT(t);
        CHECK_STREQ(t, "x_seconds_bucket{a=\"b\",le=\"0.5\"} 1\n"
                       "x_seconds_bucket{a=\"b\",le=\"1\"} 1\n"
                       "x_seconds_bucket{a=\"b\",le=\"+Inf\"} 3\n"
                       "x_seconds_sum{a=\"b\"} 9.25\n"
                       "x_seconds_count{a=\"b\"} 3\n"
                       "y_seconds_bucket{le=\"0.5\"} 1\n"
                       "y_seconds_bucket{le=\"1\"} 1\n"
                       "y_seconds_bucket{le=\"+Inf\"} 3\n"
                       "y_seconds_sum 9.25\n"
                       "y_seconds_count 3\n");
}

static void write_escapes(FILE *f) {
        metrics_write_family(f, "z", "gauge", "back\\slash\nnewline \"quotes\" stay");
        fputs("z{v=", f);
        metrics_write_label_value(f, "a\"b\\c\nd");
        fputs("} 1\n", f);
        metrics_write_sample(f, "w", NULL, 0.1);
        metrics_write_sample(f, "w", "k=\"v\"", 1e300 * 1e300);
}

TEST(escaping_follows_the_text_format) {
        _cleanup_free_ char *t = render(write_escapes);
        ASSERT(t);
        CHECK_STREQ(t, "# HELP z back\\\\slash\\nnewline \"quotes\" stay\n"
                       "# TYPE z gauge\n"
                       "z{v=\"a\\\"b\\\\c\\nd\"} 1\n"
                       "w 0.1\n"
                       "w{k=\"v\"} +Inf\n");
}

TEST(requests_are_counted_by_method_route_status) {
        metrics_reset();
        metrics_request_observe("GET", "/v1/vms/{id}", 200, 300);
        metrics_request_observe("GET", "/v1/vms/{id}", 200, 2000);
        metrics_request_observe("GET", "/v1/vms/{id}", 404, 100);
        metrics_request_observe("BREW", NULL, 404, 5);
        _cleanup_free_ char *t = render(write_agent);
        ASSERT(t);
        CHECK_CONTAINS(t, "kvmfleet_http_requests_total{method=\"GET\",route=\"/v1/vms/{id}\",status=\"200\"} 2\n");
        CHECK_CONTAINS(t, "kvmfleet_http_requests_total{method=\"GET\",route=\"/v1/vms/{id}\",status=\"404\"} 1\n");
        CHECK_CONTAINS(t, "kvmfleet_http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"} 1\n");
        CHECK_CONTAINS(t, "kvmfleet_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/vms/{id}\",le=\"0.0005\"} 2\n");
        CHECK_CONTAINS(t, "kvmfleet_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/vms/{id}\",le=\"0.001\"} 2\n");
        CHECK_CONTAINS(t, "kvmfleet_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/vms/{id}\",le=\"0.0025\"} 3\n");
        CHECK_CONTAINS(t, "kvmfleet_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/vms/{id}\"} 3\n");
        CHECK_CONTAINS(t, "kvmfleet_http_request_duration_seconds_sum{method=\"GET\",route=\"/v1/vms/{id}\"} 0.0024\n");
        metrics_reset();
}

TEST(series_are_bounded) {
        static char routes[400][16];
        metrics_reset();
        for (unsigned i = 0; i < 400; i++) {
                snprintf(routes[i], sizeof routes[i], "/r%u", i);
                metrics_request_observe("GET", routes[i], 200, 1);
        }
        _cleanup_free_ char *t = render(write_agent);
        ASSERT(t);
        CHECK_CONTAINS(t, "kvmfleet_http_requests_total{method=\"other\",route=\"overflow\",status=\"0\"} 145\n");
        CHECK_CONTAINS(t, "kvmfleet_http_request_duration_seconds_count{method=\"other\",route=\"overflow\"} 305\n");
        CHECK(!strstr(t, "route=\"/r300\""));
        metrics_reset();
}

TEST(inventory_writes_are_timed_through_sqlite) {
        char dir[] = "/tmp/test-metrics.XXXXXX", path[64];
        sqlite3 *db = NULL;
        ASSERT(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/db", dir);
        metrics_reset();
        ASSERT_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
        CHECK_EQ_INT(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
        CHECK_EQ_INT(sqlite3_exec(db, "SELECT * FROM t", NULL, NULL, NULL), SQLITE_OK);
        CHECK_EQ_INT(sqlite3_exec(db, "BEGIN IMMEDIATE; INSERT INTO t VALUES (1); INSERT INTO t VALUES (2); COMMIT", NULL, NULL, NULL),
                     SQLITE_OK);
        sqlite3_close(db);
        _cleanup_free_ char *t = render(write_agent);
        ASSERT(t);
        /* CREATE, two INSERTs and the COMMIT; not the SELECT, not BEGIN */
        CHECK_CONTAINS(t, "kvmfleet_inventory_write_duration_seconds_count 4\n");
        unlink(path);
        rmdir(dir);
        metrics_reset();
}
