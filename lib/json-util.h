/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);
#define _cleanup_json_ _cleanup_(json_object_putp)

/* Where and why a JSON document was refused: path is a JSONPath such as "$.boot.kernel" or
 * "$.disks[1].path"; message says what was wrong with the value there. */
typedef struct JsonError {
        char path[256];
        char message[256];
} JsonError;

int json_error_set(JsonError *e, const char *path, const char *fmt, ...) _printf_(3, 4); /* returns -EINVAL */

void json_path_key(char *buf, size_t n, const char *parent, const char *key);
void json_path_index(char *buf, size_t n, const char *parent, size_t index);

/* Parses text (exactly len bytes, no trailing garbage) with a nesting limit. */
int json_parse(const char *text, size_t len, int max_depth, json_object **ret, JsonError *e);

/* Typed field getters on an object at path. They return 1 when the field is present and valid
 * (writing *ret), 0 when it is absent and not required (leaving *ret alone), -EINVAL with *e set
 * otherwise. JSON null counts as absent. */
int json_get_string(json_object *obj, const char *path, const char *key, bool required, const char **ret, JsonError *e);
int json_get_bool(json_object *obj, const char *path, const char *key, bool required, bool *ret, JsonError *e);
int json_get_int64(json_object *obj, const char *path, const char *key, bool required, int64_t min, int64_t max,
                   int64_t *ret, JsonError *e);
int json_get_uint64(json_object *obj, const char *path, const char *key, bool required, uint64_t min, uint64_t max,
                    uint64_t *ret, JsonError *e);
/* An integer number of bytes, or a string with a unit ("64MiB", "0x1000"); see parse_size(). */
int json_get_size(json_object *obj, const char *path, const char *key, bool required, uint64_t min, uint64_t max,
                  uint64_t *ret, JsonError *e);
int json_get_object(json_object *obj, const char *path, const char *key, bool required, json_object **ret, JsonError *e);
int json_get_array(json_object *obj, const char *path, const char *key, bool required, json_object **ret, JsonError *e);
/* One of a fixed set of strings: *ret gets the index into choices (NULL-terminated). */
int json_get_enum(json_object *obj, const char *path, const char *key, bool required, const char *const *choices,
                  int *ret, JsonError *e);

int json_expect_object(json_object *obj, const char *path, JsonError *e);
/* Refuses the first key of obj that is not in allowed (NULL-terminated), naming it. */
int json_check_keys(json_object *obj, const char *path, const char *const *allowed, JsonError *e);

/* Builders: each returns 0 or -ENOMEM; obj takes the reference of the value created. */
int json_add_string(json_object *obj, const char *key, const char *value); /* NULL → null */
int json_add_int(json_object *obj, const char *key, int64_t value);
int json_add_uint(json_object *obj, const char *key, uint64_t value);
int json_add_bool(json_object *obj, const char *key, bool value);
int json_add(json_object *obj, const char *key, json_object *value); /* takes value's reference */

/* Serializes compactly; the string belongs to obj. */
const char *json_to_string(json_object *obj);
