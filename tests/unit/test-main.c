/* SPDX-License-Identifier: MIT */
#include <fnmatch.h>
#include <stdarg.h>
#include <unistd.h>

#include "test.h"

static TestCase tests[512];
static size_t n_tests;
static int current_failed;
static const char *current_skip;
static char tmpdir[256];

void test_register(const char *name, void (*fn)(void)) {
        if (n_tests >= sizeof tests / sizeof tests[0]) {
                fprintf(stderr, "too many tests\n");
                abort();
        }
        tests[n_tests++] = (TestCase){ name, fn };
}

void test_fail(const char *file, int line, const char *fmt, ...) {
        va_list ap;
        fprintf(stdout, "#   %s:%d: ", file, line);
        va_start(ap, fmt);
        vfprintf(stdout, fmt, ap);
        va_end(ap);
        fputc('\n', stdout);
        current_failed = 1;
}

void test_skip(const char *reason) {
        current_skip = reason;
}

int test_failed_now(void) {
        return current_failed;
}

static void cleanup_tmpdir(void) {
        if (tmpdir[0]) {
                char cmd[300];
                snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
                if (system(cmd) != 0)
                        fprintf(stderr, "failed to remove %s\n", tmpdir);
        }
}

const char *test_tmpdir(void) {
        if (!tmpdir[0]) {
                const char *base = getenv("TMPDIR");
                snprintf(tmpdir, sizeof tmpdir, "%s/kvmfleet-test.XXXXXX", base ? base : "/tmp");
                if (!mkdtemp(tmpdir)) {
                        perror("mkdtemp");
                        abort();
                }
                atexit(cleanup_tmpdir);
        }
        return tmpdir;
}

/* Tests run in registration (source) order; argv[1] may be a glob to run a subset. */
int main(int argc, char **argv) {
        int failed = 0;
        setvbuf(stdout, NULL, _IOLBF, 0);
        for (size_t i = 0; i < n_tests; i++) {
                if (argc > 1 && fnmatch(argv[1], tests[i].name, 0) != 0)
                        continue;
                current_failed = 0;
                current_skip = NULL;
                tests[i].fn();
                if (current_failed) {
                        printf("not ok - %s\n", tests[i].name);
                        failed++;
                } else if (current_skip)
                        printf("skip - %s: %s\n", tests[i].name, current_skip);
                else
                        printf("ok - %s\n", tests[i].name);
        }
        return failed ? 1 : 0;
}
