/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>
#include <stdio.h>

/* The agent's own counters for GET /metrics: HTTP requests and inventory writes. One registry per
 * process (there is one agent per process), safe to update from libmicrohttpd's threads. */

/* One answered request. route is the route table's pattern ("/v1/vms/{id}"), or NULL when no
 * route matched (404, or refused before routing): it is counted as "unmatched" so that arbitrary
 * paths can't grow the series. */
void metrics_request_observe(const char *method, const char *route, unsigned status, uint64_t duration_usec);
/* One statement that changed the inventory (or committed a transaction that did). */
void metrics_inventory_write_observe(uint64_t duration_nsec);
/* Forgets everything observed (tests). */
void metrics_reset(void);

/* Writes the request counters, the latency histograms and the inventory write histogram in
 * Prometheus text format 0.0.4. */
int metrics_write_agent(FILE *f);

/* Prometheus text format helpers, shared with the /metrics handler. */
void metrics_write_family(FILE *f, const char *name, const char *type, const char *help);
/* value of a label, escaped as the format wants (backslash, double quote, newline) */
void metrics_write_label_value(FILE *f, const char *value);
/* "name{labels} value\n"; labels is NULL or "k=\"v\",..." already escaped */
void metrics_write_sample(FILE *f, const char *name, const char *labels, double value);

typedef struct MetricsHistogram {
        const double *bounds; /* upper bounds in the metric's unit, increasing; +Inf is implicit */
        unsigned n_bounds;
        uint64_t *buckets;    /* n_bounds + 1 counts, not cumulative: the last one is above every bound */
        double sum;
        uint64_t count;
} MetricsHistogram;

void metrics_histogram_observe(MetricsHistogram *h, double value);
/* Writes name_bucket (cumulative, le=...), name_sum and name_count; labels as for metrics_write_sample. */
void metrics_write_histogram(FILE *f, const char *name, const char *labels, const MetricsHistogram *h);
