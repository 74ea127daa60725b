/* SPDX-License-Identifier: MIT */
#include "time-util.h"

#include <stdio.h>
#include <time.h>

static uint64_t now(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

uint64_t now_realtime_usec(void) {
        return now(CLOCK_REALTIME);
}

uint64_t now_monotonic_usec(void) {
        return now(CLOCK_MONOTONIC);
}

const char *format_rfc3339(char *buf, size_t n, uint64_t usec) {
        time_t sec = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;
        gmtime_r(&sec, &tm);
        snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned) (usec % USEC_PER_SEC / 1000));
        return buf;
}
