/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "cpuset.h"
#include "test.h"

static void canon(const char *in, const char *want) {
        cpu_set_t set;
        char *out = NULL;
        CHECK_EQ_INT(cpuset_parse(in, &set), 0);
        CHECK_EQ_INT(cpuset_format(&set, &out), 0);
        if (out)
                CHECK_STREQ(out, want);
        free(out);
}

TEST(lists_take_their_canonical_form) {
        canon("0", "0");
        canon("3,1,2", "1-3");
        canon("0-3,^2,6", "0-1,3,6");
        canon(" 4 , 0-2 ", "0-2,4");
        canon("0-1023", "0-1023");
        canon("1023", "1023");
        canon("5,^5,7", "7");
}

TEST(bad_lists_are_refused) {
        static const char *const bad[] = { "", " ", "x", "1-", "-1", "3-1", "1024", "0-1024", "1,,2", "1,", "^1",
                                           "0-3,^0-3", "1 2", "0x1", "99999999999" };
        cpu_set_t set;
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                CHECK_EQ_INT(cpuset_parse(bad[i], &set), -EINVAL);
}

TEST(an_empty_set_has_no_list) {
        cpu_set_t set;
        char *out = NULL;
        CPU_ZERO(&set);
        CHECK_EQ_INT(cpuset_format(&set, &out), -EINVAL);
        CHECK(!out);
}
