/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdarg.h>
#include <syslog.h>

#include "macro.h"

/* Where log lines go. STDERR writes "<N>message" lines, which journald and systemd parse as the
 * priority; JOURNAL sends structured entries to the journal's native socket. */
typedef enum LogTarget {
        LOG_TARGET_STDERR,
        LOG_TARGET_JOURNAL,
        LOG_TARGET_AUTO, /* journal when stderr is connected to it (JOURNAL_STREAM), else stderr */
} LogTarget;

void log_set_max_level(int level);
int log_get_max_level(void);
int log_level_from_string(const char *s); /* -EINVAL if unknown */
const char *log_level_to_string(int level);
void log_set_target(LogTarget target);
void log_set_ident(const char *ident);
void log_set_prefix_priority(int on); /* "<N>" prefixes on stderr; on by default */

/* fields: NULL-terminated "KEY=value" strings added to the journal entry (and shown after the message
 * on stderr). Returns -abs(error) when error != 0, else 0, so callers can "return log_...". */
int log_internalv(int level, int error, const char *const *fields, const char *fmt, va_list ap)
        _printf_(4, 0);
int log_internal(int level, int error, const char *const *fields, const char *fmt, ...)
        _printf_(4, 5);

#define log_full_errno(level, error, ...) log_internal((level), (error), NULL, __VA_ARGS__)
#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, (e), __VA_ARGS__)
/* Fields added to every message this thread logs until popped (e.g. REQUEST_ID=... while a request
 * is handled), after the message's own fields; a key the message sets itself is not repeated. At
 * most LOG_CONTEXT_MAX, each up to 127 bytes; push returns -E2BIG/-ENAMETOOLONG beyond. */
#define LOG_CONTEXT_MAX 4
int log_context_push(const char *field);
void log_context_pop(void);
/* This thread's context fields, copied, for work finished later on the same behalf (a result
 * recorded after the reply, maybe by another thread): log_context_swap() puts c in place of this
 * thread's context and saves that one in ret_old, to be put back the same way. */
typedef struct LogContext {
        char fields[LOG_CONTEXT_MAX][128];
        unsigned n;
} LogContext;
void log_context_save(LogContext *ret);
void log_context_swap(const LogContext *c, LogContext *ret_old);

/* Structured: log_struct(LOG_INFO, 0, LOG_FIELDS("VM_UUID=...", "VM_NAME=..."), "fmt", ...) */
#define LOG_FIELDS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define log_struct(level, error, fields, ...) log_internal((level), (error), (fields), __VA_ARGS__)
