/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "json-util.h"
#include "test.h"

static json_object *parse(const char *s) {
        json_object *o = NULL;
        JsonError e;
        if (json_parse(s, strlen(s), 32, &o, &e) < 0)
                test_fail(__FILE__, __LINE__, "parse failed: %s: %s", e.path, e.message);
        return o;
}

TEST(parse_errors) {
        JsonError e;
        json_object *o = NULL;
        CHECK_EQ_INT(json_parse("{\"a\":", 5, 32, &o, &e), -EINVAL);
        CHECK_CONTAINS(e.message, "unexpected end");
        CHECK_EQ_INT(json_parse("{} x", 4, 32, &o, &e), -EINVAL);
        CHECK_CONTAINS(e.message, "malformed JSON");
        CHECK_EQ_INT(json_parse("{\"a\":1,}", 8, 32, &o, &e), -EINVAL);
        CHECK_CONTAINS(e.message, "malformed JSON");
        CHECK_EQ_INT(json_parse("[[[[[[1]]]]]]", 13, 4, &o, &e), -EINVAL);
        CHECK(o == NULL);
}

TEST(typed_getters_report_paths) {
        _cleanup_json_ json_object *o = parse("{\"name\":\"vm1\",\"vcpus\":\"2\",\"boot\":{\"kernel\":5},"
                                              "\"memory\":\"64MiB\",\"big\":\"12XB\",\"flag\":true,\"neg\":-3,"
                                              "\"weird key\":1}");
        JsonError e;
        const char *s = NULL;
        int64_t i;
        uint64_t u;
        bool b = false;
        json_object *boot;

        CHECK_EQ_INT(json_get_string(o, "$", "name", true, &s, &e), 1);
        CHECK_STREQ(s, "vm1");
        CHECK_EQ_INT(json_get_int64(o, "$", "vcpus", true, 1, 255, &i, &e), -EINVAL);
        CHECK_STREQ(e.path, "$.vcpus");
        CHECK_CONTAINS(e.message, "must be an integer, not a string");
        CHECK_EQ_INT(json_get_object(o, "$", "boot", true, &boot, &e), 1);
        CHECK_EQ_INT(json_get_string(boot, "$.boot", "kernel", true, &s, &e), -EINVAL);
        CHECK_STREQ(e.path, "$.boot.kernel");
        CHECK_EQ_INT(json_get_string(boot, "$.boot", "initrd", false, &s, &e), 0);
        CHECK_EQ_INT(json_get_string(boot, "$.boot", "cmdline", true, &s, &e), -EINVAL);
        CHECK_STREQ(e.message, "is required");
        CHECK_EQ_INT(json_get_size(o, "$", "memory", true, 1, UINT64_MAX, &u, &e), 1);
        CHECK_EQ_U64(u, 64ULL << 20);
        CHECK_EQ_INT(json_get_size(o, "$", "big", true, 1, UINT64_MAX, &u, &e), -EINVAL);
        CHECK_STREQ(e.path, "$.big");
        CHECK_EQ_INT(json_get_size(o, "$", "memory", true, 1, 1 << 20, &u, &e), -EINVAL);
        CHECK_CONTAINS(e.message, "between 1B and 1MiB");
        CHECK_EQ_INT(json_get_bool(o, "$", "flag", true, &b, &e), 1);
        CHECK(b);
        CHECK_EQ_INT(json_get_uint64(o, "$", "neg", true, 0, 10, &u, &e), -EINVAL);
        CHECK_CONTAINS(e.message, "negative");
        CHECK_EQ_INT(json_get_int64(o, "$", "weird key", true, 0, 0, &i, &e), -EINVAL);
        CHECK_STREQ(e.path, "$[\"weird key\"]");
}

TEST(enum_and_unknown_keys) {
        _cleanup_json_ json_object *o = parse("{\"irqchip\":\"spilt\",\"extra\":1}");
        JsonError e;
        int idx = -1;
        static const char *const modes[] = { "kernel", "split", "none", NULL };
        CHECK_EQ_INT(json_get_enum(o, "$", "irqchip", true, modes, &idx, &e), -EINVAL);
        CHECK_CONTAINS(e.message, "must be one of \"kernel\", \"split\", \"none\"");
        CHECK_EQ_INT(idx, -1);
        static const char *const allowed[] = { "irqchip", NULL };
        CHECK_EQ_INT(json_check_keys(o, "$", allowed, &e), -EINVAL);
        CHECK_STREQ(e.path, "$.extra");
        CHECK_STREQ(e.message, "unknown field");
}

TEST(builders) {
        _cleanup_json_ json_object *o = json_object_new_object();
        CHECK_EQ_INT(json_add_string(o, "a", "x"), 0);
        CHECK_EQ_INT(json_add_string(o, "n", NULL), 0);
        CHECK_EQ_INT(json_add_uint(o, "u", UINT64_MAX), 0);
        CHECK_EQ_INT(json_add_int(o, "i", -1), 0);
        CHECK_EQ_INT(json_add_bool(o, "b", false), 0);
        CHECK_STREQ(json_to_string(o), "{\"a\":\"x\",\"n\":null,\"u\":18446744073709551615,\"i\":-1,\"b\":false}");
}
