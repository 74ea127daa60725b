/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include <pthread.h>

#include "str-util.h"
#include "test.h"

TEST(parse_size_units) {
        static const struct {
                const char *s;
                uint64_t v;
        } ok[] = {
                { "0", 0 },           { "4096", 4096 },         { "0x1000", 4096 },      { "0X10", 16 },
                { "16k", 16384 },      { "1K", 1024 },           { "1KiB", 1024 },        { "1KB", 1000 },
                { "2M", 2 << 20 },     { "64MiB", 64ULL << 20 }, { "10MB", 10000000 },    { "1G", 1ULL << 30 },
                { "1GiB", 1ULL << 30 }, { "3GB", 3000000000ULL }, { "2TiB", 2ULL << 40 }, { "1T", 1ULL << 40 },
                { "7B", 7 },           { "0x100000000", 0x100000000ULL }, { "16383PiB", 16383ULL << 50 },
        };
        for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
                uint64_t v = 1234;
                CHECK_EQ_INT(parse_size(ok[i].s, &v), 0);
                CHECK_EQ_U64(v, ok[i].v);
        }
}

TEST(parse_size_rejects) {
        static const char *const bad[] = { "", "M", "-1", "+1", " 1", "1 ", "1.5G", "1m", "1mb", "1Gi", "1GiBs",
                                           "0x", "0xg", "1e3", "12Q", "abc", "1 MiB" };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                uint64_t v = 77;
                int r = parse_size(bad[i], &v);
                if (r != -EINVAL)
                        test_fail(__FILE__, __LINE__, "parse_size(\"%s\") = %d, expected -EINVAL", bad[i], r);
                CHECK_EQ_U64(v, 77);
        }
}

TEST(parse_size_overflow) {
        uint64_t v = 5;
        CHECK_EQ_INT(parse_size("16384PiB", &v), -ERANGE);
        CHECK_EQ_INT(parse_size("18446744073709551616", &v), -ERANGE);
        CHECK_EQ_INT(parse_size("99999999999999999999999999999999", &v), -ERANGE);
        CHECK_EQ_INT(parse_size("0x10000000000000000", &v), -ERANGE);
        CHECK_EQ_U64(v, 5);
        CHECK_EQ_INT(parse_size("18446744073709551615", &v), 0);
        CHECK_EQ_U64(v, UINT64_MAX);
}

TEST(format_size_exact_units) {
        char buf[32];
        CHECK_STREQ(format_size(buf, sizeof buf, 64ULL << 20), "64MiB");
        CHECK_STREQ(format_size(buf, sizeof buf, 4097), "4097B");
        CHECK_STREQ(format_size(buf, sizeof buf, 3ULL << 30), "3GiB");
        CHECK_STREQ(format_size(buf, sizeof buf, 0), "0B");
        CHECK_STREQ(format_size(buf, sizeof buf, 1536), "1536B");
}

TEST(integers_and_booleans) {
        uint64_t u;
        int64_t i;
        unsigned x;
        CHECK_EQ_INT(safe_atou64("18446744073709551615", &u), 0);
        CHECK_EQ_INT(safe_atou64("-1", &u), -EINVAL);
        CHECK_EQ_INT(safe_atou64("12a", &u), -EINVAL);
        CHECK_EQ_INT(safe_atoi64("-42", &i), 0);
        CHECK_EQ_INT(i, -42);
        CHECK_EQ_INT(safe_atou("4294967296", &x), -ERANGE);
        CHECK_EQ_INT(parse_boolean("yes"), 1);
        CHECK_EQ_INT(parse_boolean("Off"), 0);
        CHECK_EQ_INT(parse_boolean("maybe"), -EINVAL);
}

TEST(base64_round_trip) {
        const char *inputs[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
        const char *expect[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
        for (size_t k = 0; k < 7; k++) {
                char *e = base64_encode(inputs[k], strlen(inputs[k]));
                CHECK_STREQ(e, expect[k]);
                void *d = NULL;
                size_t n = 0;
                CHECK_EQ_INT(base64_decode(e, &d, &n), 0);
                CHECK_EQ_INT(n, strlen(inputs[k]));
                CHECK(memcmp(d, inputs[k], n) == 0);
                free(d);
                free(e);
        }
        void *d = NULL;
        size_t n;
        CHECK_EQ_INT(base64_decode("Zm9", &d, &n), -EINVAL);
        CHECK_EQ_INT(base64_decode("Zm=v", &d, &n), -EINVAL);
        CHECK_EQ_INT(base64_decode("Zm9v!A==", &d, &n), -EINVAL);
}

TEST(utf8_escape) {
        const char in[] = "ok \xc3\xa9 \xff\x01\n\xe2\x82";
        char *s = utf8_escape_invalid(in, sizeof in - 1);
        CHECK_STREQ(s, "ok \xc3\xa9 \\xff\\x01\n\\xe2\\x82");
        CHECK(utf8_is_valid("h\xc3\xa9", 3));
        CHECK(!utf8_is_valid("\xc0\x80", 2)); /* overlong */
        CHECK(!utf8_is_valid("\xed\xa0\x80", 3)); /* surrogate */
        free(s);
}

TEST(uuid) {
        char u[37], v[37];
        CHECK_EQ_INT(uuid_generate_str(u), 0);
        CHECK_EQ_INT(uuid_generate_str(v), 0);
        CHECK(uuid_is_valid(u));
        CHECK(strcmp(u, v) != 0);
        CHECK_EQ_INT(u[14], '4');
        CHECK(!uuid_is_valid("not-a-uuid"));
        CHECK(!uuid_is_valid("0123456789abcdef0123456789abcdef0123"));
}

#define FAST_IDS 20000

static int cmp_id(const void *a, const void *b) {
        return strcmp(a, b);
}

static void *fast_ids(void *userdata) {
        char (*ids)[37] = userdata;
        for (size_t i = 0; i < FAST_IDS; i++)
                if (uuid_generate_fast_str(ids[i]) < 0)
                        ids[i][0] = 0;
        return NULL;
}

TEST(fast_uuids_are_v4_and_distinct_across_threads) {
        char (*ids)[37] = calloc(2 * FAST_IDS, 37);
        pthread_t t;
        ASSERT(ids);
        fast_ids(ids);
        ASSERT(pthread_create(&t, NULL, fast_ids, ids + FAST_IDS) == 0);
        pthread_join(t, NULL);
        size_t bad = 0;
        for (size_t i = 0; i < 2 * FAST_IDS; i++)
                if (!uuid_is_valid(ids[i]) || ids[i][14] != '4' || !strchr("89ab", ids[i][19]))
                        bad++;
        CHECK_EQ_INT(bad, 0);
        qsort(ids, 2 * FAST_IDS, 37, cmp_id);
        size_t same = 0;
        for (size_t i = 1; i < 2 * FAST_IDS; i++)
                same += strcmp(ids[i - 1], ids[i]) == 0;
        CHECK_EQ_INT(same, 0);
        free(ids);
}
