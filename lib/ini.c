/* SPDX-License-Identifier: MIT */
#include "ini.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fd-util.h"
#include "macro.h"
#include "str-util.h"

int ini_parse_string(const char *text, ini_item_fn fn, void *userdata, unsigned *ret_line) {
        _cleanup_free_ char *copy = strdup(text);
        char section[128] = "";
        unsigned line = 0;
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        /* strtok_r would skip empty lines and lose the numbering, so split by hand. */
        for (char *p = copy; p; p = save) {
                char *nl = strchr(p, '\n');
                save = nl ? nl + 1 : NULL;
                if (nl)
                        *nl = 0;
                line++;
                char *s = strstrip(p);
                if (!*s || *s == '#' || *s == ';')
                        continue;
                if (*s == '[') {
                        size_t l = strlen(s);
                        if (s[l - 1] != ']' || l < 3 || l - 2 >= sizeof section) {
                                if (ret_line)
                                        *ret_line = line;
                                return -EBADMSG;
                        }
                        memcpy(section, s + 1, l - 2);
                        section[l - 2] = 0;
                        continue;
                }
                char *eq = strchr(s, '=');
                if (!eq) {
                        if (ret_line)
                                *ret_line = line;
                        return -EBADMSG;
                }
                *eq = 0;
                char *key = strstrip(s), *value = strstrip(eq + 1);
                if (!*key) {
                        if (ret_line)
                                *ret_line = line;
                        return -EBADMSG;
                }
                int r = fn(section, key, value, line, userdata);
                if (r < 0) {
                        if (ret_line)
                                *ret_line = line;
                        return r;
                }
        }
        return 0;
}

int ini_parse_file(const char *path, ini_item_fn fn, void *userdata, unsigned *ret_line) {
        _cleanup_free_ char *text = NULL;
        int r = read_full_file(path, 1 << 20, &text, NULL);
        if (r < 0) {
                if (ret_line)
                        *ret_line = 0;
                return r;
        }
        return ini_parse_string(text, fn, userdata, ret_line);
}
