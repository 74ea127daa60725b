/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "str-util.h"

static int max_level = LOG_INFO;
static LogTarget target = LOG_TARGET_AUTO;
static const char *ident = NULL;
static int prefix_priority = 1;
static int journal_fd = -1;
static pthread_mutex_t journal_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit",  [LOG_ERR] = "err",
        [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_set_max_level(int level) {
        max_level = level;
}
int log_get_max_level(void) {
        return max_level;
}
void log_set_target(LogTarget t) {
        target = t;
}
void log_set_ident(const char *i) {
        ident = i;
}
void log_set_prefix_priority(int on) {
        prefix_priority = on;
}

int log_level_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (streq(s, level_names[i]))
                        return (int) i;
        if (streq(s, "error"))
                return LOG_ERR;
        if (streq(s, "warn"))
                return LOG_WARNING;
        return -EINVAL;
}

const char *log_level_to_string(int level) {
        if (level < 0 || level >= (int) ELEMENTSOF(level_names))
                return NULL;
        return level_names[level];
}

static __thread char context_fields[LOG_CONTEXT_MAX][128];
static __thread unsigned n_context_fields;

int log_context_push(const char *field) {
        if (n_context_fields >= LOG_CONTEXT_MAX)
                return -E2BIG;
        if (strlen(field) >= sizeof context_fields[0] || !strchr(field, '='))
                return -ENAMETOOLONG;
        strcpy(context_fields[n_context_fields++], field);
        return 0;
}

void log_context_pop(void) {
        if (n_context_fields > 0)
                n_context_fields--;
}

void log_context_save(LogContext *ret) {
        ret->n = n_context_fields;
        memcpy(ret->fields, context_fields, sizeof ret->fields);
}

void log_context_swap(const LogContext *c, LogContext *ret_old) {
        if (ret_old)
                log_context_save(ret_old);
        n_context_fields = MIN(c->n, (unsigned) LOG_CONTEXT_MAX);
        memcpy(context_fields, c->fields, sizeof context_fields);
}

static bool field_key_in(const char *field, const char *const *fields) {
        size_t k = strcspn(field, "=");
        for (const char *const *f = fields; f && *f; f++)
                if (strncmp(*f, field, k) == 0 && (*f)[k] == '=')
                        return true;
        return false;
}

/* The message's fields followed by this thread's context fields. */
static const char *const *merge_fields(const char *const *fields, const char **buf, size_t size) {
        size_t n = 0;
        if (n_context_fields == 0)
                return fields;
        for (const char *const *f = fields; f && *f && n + 1 < size; f++)
                buf[n++] = *f;
        for (unsigned i = 0; i < n_context_fields && n + 1 < size; i++)
                if (!field_key_in(context_fields[i], fields))
                        buf[n++] = context_fields[i];
        buf[n] = NULL;
        return buf;
}

/* stderr is connected to the journal when JOURNAL_STREAM names its device:inode. */
static int stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        struct stat st;
        unsigned long long dev, ino;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return 0;
        if (fstat(STDERR_FILENO, &st) < 0)
                return 0;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

/* Native journal protocol: one datagram, KEY=value lines; values without newlines only. */
static int journal_send(int level, int error, const char *const *fields, const char *msg) {
        char prio[32], errbuf[32], identbuf[128];
        struct iovec iov[64];
        size_t n = 0;
        static const char nl = '\n';
        int r = 0;

#define ADD(s)                                                                          \
        do {                                                                            \
                if (n + 2 > ELEMENTSOF(iov))                                            \
                        break;                                                          \
                iov[n++] = (struct iovec){ (void *) (s), strlen(s) };                   \
                iov[n++] = (struct iovec){ (void *) &nl, 1 };                           \
        } while (0)

        snprintf(prio, sizeof prio, "PRIORITY=%d", level);
        ADD(prio);
        if (ident) {
                snprintf(identbuf, sizeof identbuf, "SYSLOG_IDENTIFIER=%s", ident);
                ADD(identbuf);
        }
        if (error) {
                snprintf(errbuf, sizeof errbuf, "ERRNO=%d", error);
                ADD(errbuf);
        }
        for (const char *const *f = fields; f && *f; f++)
                if (!strchr(*f, '\n') && strchr(*f, '='))
                        ADD(*f);
        _cleanup_free_ char *m = NULL;
        if (asprintf(&m, "MESSAGE=%s", msg) < 0)
                return -ENOMEM;
        for (char *p = m; *p; p++)
                if (*p == '\n')
                        *p = ' ';
        ADD(m);
#undef ADD

        pthread_mutex_lock(&journal_lock);
        if (journal_fd < 0)
                journal_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (journal_fd < 0)
                r = -errno;
        else {
                struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = "/run/systemd/journal/socket" };
                struct msghdr mh = { .msg_name = &sa, .msg_namelen = sizeof sa, .msg_iov = iov, .msg_iovlen = n };
                if (sendmsg(journal_fd, &mh, MSG_NOSIGNAL) < 0)
                        r = -errno;
        }
        pthread_mutex_unlock(&journal_lock);
        return r;
}

int log_internalv(int level, int error, const char *const *fields, const char *fmt, va_list ap) {
        int saved_errno = errno;
        char msg[2048];

        if (error < 0)
                error = -error;
        if (level > max_level)
                goto out;

        const char *merged[24 + LOG_CONTEXT_MAX + 1];
        fields = merge_fields(fields, merged, ELEMENTSOF(merged));
        errno = error; /* so %m in fmt names the error being logged */
        vsnprintf(msg, sizeof msg, fmt, ap);

        if (target == LOG_TARGET_JOURNAL || (target == LOG_TARGET_AUTO && stderr_is_journal()))
                if (journal_send(level, error, fields, msg) >= 0)
                        goto out;

        {
                char extra[1024] = "";
                size_t len = 0;
                for (const char *const *f = fields; f && *f && len < sizeof extra - 1; f++)
                        len += (size_t) snprintf(extra + len, sizeof extra - len, " %s", *f);
                if (len >= sizeof extra)
                        len = sizeof extra - 1;
                if (prefix_priority)
                        fprintf(stderr, "<%d>%s%s%s%s\n", level, ident ? ident : "", ident ? ": " : "", msg, extra);
                else
                        fprintf(stderr, "%s%s%s%s\n", ident ? ident : "", ident ? ": " : "", msg, extra);
        }
out:
        errno = saved_errno;
        return error ? -error : 0;
}

int log_internal(int level, int error, const char *const *fields, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = log_internalv(level, error, fields, fmt, ap);
        va_end(ap);
        return r;
}
