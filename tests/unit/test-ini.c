/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>

#include "ini.h"
#include "test.h"

static int collect(const char *section, const char *key, const char *value, unsigned line, void *userdata) {
        char *buf = userdata;
        if (strcmp(key, "fail") == 0)
                return -ENOKEY;
        snprintf(buf + strlen(buf), 512 - strlen(buf), "%u:[%s]%s=%s;", line, section, key, value);
        return 0;
}

TEST(sections_comments_lines) {
        char buf[512] = "";
        unsigned line = 0;
        CHECK_EQ_INT(ini_parse_string("a=1\n\n# c\n[agent]\n  state_dir = /x y \n; z\n[kvm]\nnested=1", collect, buf, &line), 0);
        CHECK_STREQ(buf, "1:[]a=1;5:[agent]state_dir=/x y;8:[kvm]nested=1;");
}

TEST(syntax_errors_name_the_line) {
        char buf[512] = "";
        unsigned line = 0;
        CHECK_EQ_INT(ini_parse_string("[a]\nx=1\njunk\n", collect, buf, &line), -EBADMSG);
        CHECK_EQ_INT(line, 3);
        CHECK_EQ_INT(ini_parse_string("[a\n", collect, buf, &line), -EBADMSG);
        CHECK_EQ_INT(line, 1);
        CHECK_EQ_INT(ini_parse_string("x=1\n =2\n", collect, buf, &line), -EBADMSG);
        CHECK_EQ_INT(line, 2);
        CHECK_EQ_INT(ini_parse_string("x=1\ny=2\nfail=3\n", collect, buf, &line), -ENOKEY);
        CHECK_EQ_INT(line, 3);
}
