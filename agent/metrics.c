/* SPDX-License-Identifier: MIT */
/* Request and inventory-write counters behind GET /metrics, and the Prometheus text format
 * (https://prometheus.io/docs/instrumenting/exposition_formats/) they are written in. */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "macro.h"
#include "str-util.h"

/* Seconds. Requests are mostly sub-millisecond (inventory reads) up to seconds (VM start). */
static const double request_bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };
/* Seconds. A write is a statement or a COMMIT; the COMMIT carries the fsync. */
static const double write_bounds[] = { 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1 };

#define REQUEST_BUCKETS (ELEMENTSOF(request_bounds) + 1)
#define WRITE_BUCKETS (ELEMENTSOF(write_bounds) + 1)
/* Routes x methods x statuses stay far below these; past them everything lands in the last slot,
 * labelled route="overflow", so a bug can't make the registry grow without bound. */
#define MAX_STATUS_SERIES 256
#define MAX_LATENCY_SERIES 96

typedef struct StatusSeries {
        const char *method;
        const char *route;
        unsigned status;
        uint64_t count;
} StatusSeries;

typedef struct LatencySeries {
        const char *method;
        const char *route;
        uint64_t buckets[REQUEST_BUCKETS];
        double sum;
        uint64_t count;
} LatencySeries;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static StatusSeries status_series[MAX_STATUS_SERIES];
static unsigned n_status_series;
static LatencySeries latency_series[MAX_LATENCY_SERIES];
static unsigned n_latency_series;
static uint64_t write_buckets[WRITE_BUCKETS];
static MetricsHistogram writes = { write_bounds, ELEMENTSOF(write_bounds), write_buckets, 0, 0 };

/* Only the methods HTTP defines get their own label value; anything else is "other". */
static const char *method_label(const char *method) {
        static const char *const known[] = { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS" };
        for (size_t i = 0; i < ELEMENTSOF(known); i++)
                if (method && streq(method, known[i]))
                        return known[i];
        return "other";
}

void metrics_histogram_observe(MetricsHistogram *h, double value) {
        unsigned i = 0;
        while (i < h->n_bounds && value > h->bounds[i])
                i++;
        h->buckets[i]++;
        h->sum += value;
        h->count++;
}

/* The series' slot, created when new; the last slot collects everything past the limit. */
static StatusSeries *status_slot(const char *method, const char *route, unsigned status) {
        for (unsigned i = 0; i < n_status_series; i++)
                if (status_series[i].status == status && streq(status_series[i].method, method) &&
                    streq(status_series[i].route, route))
                        return &status_series[i];
        if (n_status_series < MAX_STATUS_SERIES - 1) {
                status_series[n_status_series] = (StatusSeries){ .method = method, .route = route, .status = status };
                return &status_series[n_status_series++];
        }
        StatusSeries *s = &status_series[MAX_STATUS_SERIES - 1];
        if (!s->route)
                *s = (StatusSeries){ .method = "other", .route = "overflow", .status = 0 };
        return s;
}

static LatencySeries *latency_slot(const char *method, const char *route) {
        for (unsigned i = 0; i < n_latency_series; i++)
                if (streq(latency_series[i].method, method) && streq(latency_series[i].route, route))
                        return &latency_series[i];
        if (n_latency_series < MAX_LATENCY_SERIES - 1) {
                latency_series[n_latency_series] = (LatencySeries){ .method = method, .route = route };
                return &latency_series[n_latency_series++];
        }
        LatencySeries *s = &latency_series[MAX_LATENCY_SERIES - 1];
        if (!s->route)
                *s = (LatencySeries){ .method = "other", .route = "overflow" };
        return s;
}

void metrics_request_observe(const char *method, const char *route, unsigned status, uint64_t duration_usec) {
        const char *m = method_label(method), *rt = route ? route : "unmatched";

        pthread_mutex_lock(&lock);
        status_slot(m, rt, status)->count++;
        LatencySeries *l = latency_slot(m, rt);
        MetricsHistogram h = { request_bounds, ELEMENTSOF(request_bounds), l->buckets, l->sum, l->count };
        metrics_histogram_observe(&h, (double) duration_usec / 1e6);
        l->sum = h.sum;
        l->count = h.count;
        pthread_mutex_unlock(&lock);
}

void metrics_inventory_write_observe(uint64_t duration_nsec) {
        pthread_mutex_lock(&lock);
        metrics_histogram_observe(&writes, (double) duration_nsec / 1e9);
        pthread_mutex_unlock(&lock);
}

void metrics_reset(void) {
        pthread_mutex_lock(&lock);
        memset(status_series, 0, sizeof status_series);
        memset(latency_series, 0, sizeof latency_series);
        n_status_series = n_latency_series = 0;
        memset(write_buckets, 0, sizeof write_buckets);
        writes.sum = 0;
        writes.count = 0;
        pthread_mutex_unlock(&lock);
}

void metrics_write_family(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s ", name);
        for (const char *p = help; *p; p++) {
                if (*p == '\\')
                        fputs("\\\\", f);
                else if (*p == '\n')
                        fputs("\\n", f);
                else
                        fputc(*p, f);
        }
        fprintf(f, "\n# TYPE %s %s\n", name, type);
}

void metrics_write_label_value(FILE *f, const char *value) {
        fputc('"', f);
        for (const char *p = value ? value : ""; *p; p++) {
                if (*p == '\\' || *p == '"')
                        fputc('\\', f), fputc(*p, f);
                else if (*p == '\n')
                        fputs("\\n", f);
                else
                        fputc(*p, f);
        }
        fputc('"', f);
}

static void write_value(FILE *f, double value) {
        if (isnan(value))
                fputs("NaN", f);
        else if (isinf(value))
                fputs(value > 0 ? "+Inf" : "-Inf", f);
        else
                fprintf(f, "%.15g", value);
}

void metrics_write_sample(FILE *f, const char *name, const char *labels, double value) {
        fputs(name, f);
        if (labels && *labels)
                fprintf(f, "{%s}", labels);
        fputc(' ', f);
        write_value(f, value);
        fputc('\n', f);
}

void metrics_write_histogram(FILE *f, const char *name, const char *labels, const MetricsHistogram *h) {
        const char *sep = labels && *labels ? "," : "";
        uint64_t cumulative = 0;
        for (unsigned i = 0; i < h->n_bounds; i++) {
                cumulative += h->buckets[i];
                fprintf(f, "%s_bucket{%s%sle=\"%.15g\"} %llu\n", name, labels ? labels : "", sep, h->bounds[i],
                        (unsigned long long) cumulative);
        }
        fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels ? labels : "", sep, (unsigned long long) h->count);
        fprintf(f, "%s_sum%s%s%s ", name, labels && *labels ? "{" : "", labels ? labels : "", labels && *labels ? "}" : "");
        write_value(f, h->sum);
        fprintf(f, "\n%s_count%s%s%s %llu\n", name, labels && *labels ? "{" : "", labels ? labels : "",
                labels && *labels ? "}" : "", (unsigned long long) h->count);
}

static void write_route_labels(FILE *f, const char *method, const char *route) {
        fprintf(f, "method=\"%s\",route=", method);
        metrics_write_label_value(f, route);
}

int metrics_write_agent(FILE *f) {
        pthread_mutex_lock(&lock);
        metrics_write_family(f, "kvmfleet_http_requests_total", "counter",
                             "HTTP requests answered, by method, route pattern and status code.");
        for (unsigned i = 0; i < MAX_STATUS_SERIES; i++) {
                const StatusSeries *s = &status_series[i];
                if (!s->route)
                        continue;
                fputs("kvmfleet_http_requests_total{", f);
                write_route_labels(f, s->method, s->route);
                fprintf(f, ",status=\"%u\"} %llu\n", s->status, (unsigned long long) s->count);
        }
        metrics_write_family(f, "kvmfleet_http_request_duration_seconds", "histogram",
                             "Time from the complete request to the queued response, by method and route pattern.");
        for (unsigned i = 0; i < MAX_LATENCY_SERIES; i++) {
                const LatencySeries *s = &latency_series[i];
                char *labels = NULL;
                size_t size = 0;
                if (!s->route)
                        continue;
                FILE *lf = open_memstream(&labels, &size);
                if (!lf) {
                        pthread_mutex_unlock(&lock);
                        return -ENOMEM;
                }
                write_route_labels(lf, s->method, s->route);
                if (fclose(lf) != 0) {
                        free(labels);
                        pthread_mutex_unlock(&lock);
                        return -ENOMEM;
                }
                MetricsHistogram h = { request_bounds, ELEMENTSOF(request_bounds), (uint64_t *) s->buckets, s->sum, s->count };
                metrics_write_histogram(f, "kvmfleet_http_request_duration_seconds", labels, &h);
                free(labels);
        }
        metrics_write_family(f, "kvmfleet_inventory_write_duration_seconds", "histogram",
                             "Time of each SQLite statement that changed the inventory, and of each COMMIT.");
        metrics_write_histogram(f, "kvmfleet_inventory_write_duration_seconds", NULL, &writes);
        pthread_mutex_unlock(&lock);
        return 0;
}

/* The inventory's statements are timed through SQLite's trace hooks, on every connection the
 * process opens, so the store needs no timing code of its own. SQLite's own PROFILE duration has
 * millisecond resolution on Unix, too coarse for writes that take tens of microseconds, so the
 * start is taken here at TRACE_STMT (one statement at a time per thread: the store serializes). */
static __thread sqlite3_stmt *timed_stmt;
static __thread uint64_t timed_start_nsec;

static uint64_t now_nsec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static int on_sqlite_trace(unsigned type, void *userdata, void *p, void *x) {
        sqlite3_stmt *stmt = p;
        const char *sql;
        uint64_t duration;

        if (!stmt)
                return 0;
        if (type == SQLITE_TRACE_STMT) {
                /* Trigger bodies report the same statement again; keep the first start. */
                if (timed_stmt != stmt) {
                        timed_stmt = stmt;
                        timed_start_nsec = now_nsec();
                }
                return 0;
        }
        if (type != SQLITE_TRACE_PROFILE || !x)
                return 0;
        if (timed_stmt == stmt) {
                duration = now_nsec() - timed_start_nsec;
                timed_stmt = NULL;
        } else
                duration = (uint64_t) *(sqlite3_int64 *) x;
        /* COMMIT is where the write reaches the disk, whatever sqlite3_stmt_readonly() says of it;
         * BEGIN only takes the lock. */
        sql = sqlite3_sql(stmt);
        if (sql && (strncasecmp(sql, "COMMIT", 6) == 0 || strncasecmp(sql, "END", 3) == 0))
                metrics_inventory_write_observe(duration);
        else if (!sqlite3_stmt_readonly(stmt) && !(sql && strncasecmp(sql, "BEGIN", 5) == 0))
                metrics_inventory_write_observe(duration);
        return 0;
}

static int on_sqlite_open(sqlite3 *db, const char **error, const void *api) {
        sqlite3_trace_v2(db, SQLITE_TRACE_STMT | SQLITE_TRACE_PROFILE, on_sqlite_trace, NULL);
        return SQLITE_OK;
}

/* Before main(), so that the inventory, opened later by the manager, is already covered. */
static void __attribute__((constructor)) metrics_sqlite_register(void) {
        sqlite3_auto_extension((void (*)(void)) on_sqlite_open);
}
