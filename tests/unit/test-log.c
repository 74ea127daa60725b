/* SPDX-License-Identifier: MIT */
/* lib/log.c: structured fields on stderr and the per-thread context fields. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "test.h"

/* Logs one message with stderr redirected into a temp file and returns what was written. */
static char *capture(const char *const *fields, const char *msg) {
        static unsigned serial;
        char path[4096];
        snprintf(path, sizeof path, "%s/log-%u-%lu", test_tmpdir(), __atomic_fetch_add(&serial, 1, __ATOMIC_SEQ_CST),
                 (unsigned long) pthread_self());
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600), saved = dup(STDERR_FILENO);
        char *text = NULL;
        if (fd < 0 || saved < 0)
                return NULL;
        unlink(path);
        fflush(stderr);
        dup2(fd, STDERR_FILENO);
        log_struct(LOG_INFO, 0, fields, "%s", msg);
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        off_t n = lseek(fd, 0, SEEK_END);
        text = calloc(1, (size_t) n + 1);
        if (text && pread(fd, text, (size_t) n, 0) != n) {
                free(text);
                text = NULL;
        }
        close(fd);
        return text;
}

TEST(context_fields_follow_the_message_until_popped) {
        log_set_target(LOG_TARGET_STDERR);
        ASSERT(log_context_push("REQUEST_ID=r1") == 0);
        _cleanup_free_ char *a = capture(LOG_FIELDS("VM_UUID=u1"), "one");
        ASSERT(a);
        CHECK_CONTAINS(a, "one VM_UUID=u1 REQUEST_ID=r1");
        /* a key the message sets itself wins, and is not repeated */
        _cleanup_free_ char *b = capture(LOG_FIELDS("REQUEST_ID=own"), "two");
        ASSERT(b);
        CHECK_CONTAINS(b, "two REQUEST_ID=own\n");
        log_context_pop();
        _cleanup_free_ char *c = capture(NULL, "three");
        ASSERT(c);
        CHECK(strstr(c, "REQUEST_ID") == NULL);
}

TEST(context_saved_is_put_in_place_of_another_and_back) {
        log_set_target(LOG_TARGET_STDERR);
        LogContext req, mine;
        ASSERT(log_context_push("REQUEST_ID=r1") == 0);
        ASSERT(log_context_push("VM_NAME=a") == 0);
        log_context_save(&req);
        log_context_pop();
        log_context_pop();
        /* another request's context on this thread: the saved one replaces it, not adds to it */
        ASSERT(log_context_push("REQUEST_ID=r2") == 0);
        log_context_swap(&req, &mine);
        _cleanup_free_ char *a = capture(NULL, "deferred");
        ASSERT(a);
        CHECK_CONTAINS(a, "deferred REQUEST_ID=r1 VM_NAME=a\n");
        log_context_swap(&mine, NULL);
        _cleanup_free_ char *b = capture(NULL, "own");
        ASSERT(b);
        CHECK_CONTAINS(b, "own REQUEST_ID=r2\n");
        log_context_pop();
}

TEST(context_is_bounded) {
        char long_field[200];
        memset(long_field, 'a', sizeof long_field - 1);
        long_field[sizeof long_field - 1] = 0;
        long_field[3] = '=';
        CHECK(log_context_push(long_field) < 0);
        CHECK(log_context_push("NO_EQUALS_SIGN") < 0);
        for (int i = 0; i < LOG_CONTEXT_MAX; i++)
                CHECK(log_context_push("K=v") == 0);
        CHECK(log_context_push("K=v") < 0);
        for (int i = 0; i < LOG_CONTEXT_MAX; i++)
                log_context_pop();
        log_context_pop(); /* popping an empty context is harmless */
}

static void *other_thread(void *userdata) {
        char **ret = userdata;
        *ret = capture(NULL, "elsewhere");
        return NULL;
}

TEST(context_is_per_thread) {
        pthread_t t;
        char *text = NULL;
        log_set_target(LOG_TARGET_STDERR);
        ASSERT(log_context_push("REQUEST_ID=mine") == 0);
        ASSERT(pthread_create(&t, NULL, other_thread, &text) == 0);
        pthread_join(t, NULL);
        log_context_pop();
        ASSERT(text);
        CHECK(strstr(text, "REQUEST_ID") == NULL);
        free(text);
}
