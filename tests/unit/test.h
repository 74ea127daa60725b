/* SPDX-License-Identifier: MIT */
/* A tiny test harness: TEST(name) { ... } registers a test; CHECK*() record failures and go on;
 * ASSERT*() fail and return from the test. Prints "ok - NAME", "not ok - NAME" or
 * "skip - NAME: reason" per test, which tests/run-tests.sh counts. */
#pragma once

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct TestCase {
        const char *name;
        void (*fn)(void);
} TestCase;

void test_register(const char *name, void (*fn)(void));
void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void test_skip(const char *reason);
int test_failed_now(void);

#define TEST(name)                                                                     \
        static void test_##name(void);                                                 \
        __attribute__((constructor)) static void test_register_##name(void) {          \
                test_register(#name, test_##name);                                     \
        }                                                                              \
        static void test_##name(void)

#define CHECK(expr)                                                                    \
        do {                                                                           \
                if (!(expr))                                                           \
                        test_fail(__FILE__, __LINE__, "CHECK(%s)", #expr);             \
        } while (0)
#define ASSERT(expr)                                                                   \
        do {                                                                           \
                if (!(expr)) {                                                         \
                        test_fail(__FILE__, __LINE__, "ASSERT(%s)", #expr);            \
                        return;                                                        \
                }                                                                      \
        } while (0)
#define CHECK_EQ_INT(a, b)                                                             \
        do {                                                                           \
                long long _a = (long long) (a), _b = (long long) (b);                  \
                if (_a != _b)                                                          \
                        test_fail(__FILE__, __LINE__, "%s == %lld, expected %s == %lld", #a, _a, #b, _b); \
        } while (0)
#define ASSERT_EQ_INT(a, b)                                                            \
        do {                                                                           \
                long long _a = (long long) (a), _b = (long long) (b);                  \
                if (_a != _b) {                                                        \
                        test_fail(__FILE__, __LINE__, "%s == %lld, expected %s == %lld", #a, _a, #b, _b); \
                        return;                                                        \
                }                                                                      \
        } while (0)
#define CHECK_EQ_U64(a, b)                                                             \
        do {                                                                           \
                unsigned long long _a = (unsigned long long) (a), _b = (unsigned long long) (b); \
                if (_a != _b)                                                          \
                        test_fail(__FILE__, __LINE__, "%s == %llu (0x%llx), expected %llu (0x%llx)", #a, _a, _a, _b, _b); \
        } while (0)
#define CHECK_STREQ(a, b)                                                              \
        do {                                                                           \
                const char *_a = (a), *_b = (b);                                       \
                if (!_a || !_b || strcmp(_a, _b) != 0)                                 \
                        test_fail(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", #a, _a ? _a : "(null)", _b ? _b : "(null)"); \
        } while (0)
#define ASSERT_STREQ(a, b)                                                             \
        do {                                                                           \
                const char *_a = (a), *_b = (b);                                       \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                               \
                        test_fail(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", #a, _a ? _a : "(null)", _b ? _b : "(null)"); \
                        return;                                                        \
                }                                                                      \
        } while (0)
#define CHECK_CONTAINS(hay, needle)                                                    \
        do {                                                                           \
                const char *_h = (hay), *_n = (needle);                                \
                if (!_h || !strstr(_h, _n))                                            \
                        test_fail(__FILE__, __LINE__, "%s == \"%s\" does not contain \"%s\"", #hay, _h ? _h : "(null)", _n); \
        } while (0)

/* A scratch directory, removed at exit; valid for the whole test binary. */
const char *test_tmpdir(void);
