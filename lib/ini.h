/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/* "[section]" headers, "key = value" lines, '#' and ';' comments, blank lines. The callback gets each
 * assignment with its 1-based line number; a negative return stops parsing and is returned. Syntax
 * errors return -EBADMSG with the line in *ret_line. Section may be "" before the first header. */
typedef int (*ini_item_fn)(const char *section, const char *key, const char *value, unsigned line, void *userdata);

int ini_parse_string(const char *text, ini_item_fn fn, void *userdata, unsigned *ret_line);
int ini_parse_file(const char *path, ini_item_fn fn, void *userdata, unsigned *ret_line);
