/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define USEC_PER_SEC 1000000ULL
#define USEC_PER_MSEC 1000ULL
#define NSEC_PER_USEC 1000ULL

uint64_t now_realtime_usec(void);
uint64_t now_monotonic_usec(void);
/* RFC 3339 UTC with milliseconds, "2026-11-21T06:07:00.123Z"; buf needs 32 bytes. */
const char *format_rfc3339(char *buf, size_t n, uint64_t realtime_usec);
