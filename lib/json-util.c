/* SPDX-License-Identifier: MIT */
#include "json-util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "str-util.h"

int json_error_set(JsonError *e, const char *path, const char *fmt, ...) {
        if (e) {
                va_list ap;
                snprintf(e->path, sizeof e->path, "%s", path ? path : "$");
                va_start(ap, fmt);
                vsnprintf(e->message, sizeof e->message, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

static bool key_is_identifier(const char *key) {
        if (!*key || (*key >= '0' && *key <= '9'))
                return false;
        for (const char *p = key; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
                        return false;
        return true;
}

void json_path_key(char *buf, size_t n, const char *parent, const char *key) {
        if (key_is_identifier(key))
                snprintf(buf, n, "%s.%s", parent ? parent : "$", key);
        else
                snprintf(buf, n, "%s[\"%s\"]", parent ? parent : "$", key);
}

void json_path_index(char *buf, size_t n, const char *parent, size_t index) {
        snprintf(buf, n, "%s[%zu]", parent ? parent : "$", index);
}

int json_parse(const char *text, size_t len, int max_depth, json_object **ret, JsonError *e) {
        struct json_tokener *tok = json_tokener_new_ex(max_depth);
        json_object *obj;
        enum json_tokener_error jerr;

        if (!tok)
                return -ENOMEM;
        if (len > INT32_MAX) {
                json_tokener_free(tok);
                return json_error_set(e, "$", "document too large");
        }
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        obj = json_tokener_parse_ex(tok, text, (int) len);
        jerr = json_tokener_get_error(tok);
        if (jerr == json_tokener_continue) {
                json_tokener_free(tok);
                json_object_put(obj);
                return json_error_set(e, "$", "malformed JSON: unexpected end of document");
        }
        if (jerr != json_tokener_success) {
                size_t off = json_tokener_get_parse_end(tok);
                json_tokener_free(tok);
                return json_error_set(e, "$", "malformed JSON at byte %zu: %s", off, json_tokener_error_desc(jerr));
        }
        size_t end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        for (; end < len; end++)
                if (!strchr(" \t\r\n", text[end])) {
                        json_object_put(obj);
                        return json_error_set(e, "$", "malformed JSON: trailing data at byte %zu", end);
                }
        *ret = obj;
        return 0;
}

int json_expect_object(json_object *obj, const char *path, JsonError *e) {
        if (!json_object_is_type(obj, json_type_object))
                return json_error_set(e, path, "must be an object");
        return 0;
}

static const char *type_name(json_object *v) {
        switch (json_object_get_type(v)) {
        case json_type_null: return "null";
        case json_type_boolean: return "a boolean";
        case json_type_double: return "a number";
        case json_type_int: return "an integer";
        case json_type_object: return "an object";
        case json_type_array: return "an array";
        case json_type_string: return "a string";
        }
        return "unknown";
}

/* Looks key up: 1 and *ret when present and not null, 0 when absent/null (error if required). */
static int lookup(json_object *obj, const char *path, const char *key, bool required, json_object **ret, char *fpath,
                  size_t fpath_len, JsonError *e) {
        json_object *v = NULL;
        json_path_key(fpath, fpath_len, path, key);
        if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null)) {
                if (required)
                        return json_error_set(e, fpath, "is required");
                return 0;
        }
        *ret = v;
        return 1;
}

int json_get_string(json_object *obj, const char *path, const char *key, bool required, const char **ret, JsonError *e) {
        char fp[256];
        json_object *v;
        int r = lookup(obj, path, key, required, &v, fp, sizeof fp, e);
        if (r <= 0)
                return r;
        if (!json_object_is_type(v, json_type_string))
                return json_error_set(e, fp, "must be a string, not %s", type_name(v));
        if (strlen(json_object_get_string(v)) != (size_t) json_object_get_string_len(v))
                return json_error_set(e, fp, "must not contain NUL characters");
        *ret = json_object_get_string(v);
        return 1;
}

int json_get_bool(json_object *obj, const char *path, const char *key, bool required, bool *ret, JsonError *e) {
        char fp[256];
        json_object *v;
        int r = lookup(obj, path, key, required, &v, fp, sizeof fp, e);
        if (r <= 0)
                return r;
        if (!json_object_is_type(v, json_type_boolean))
                return json_error_set(e, fp, "must be a boolean, not %s", type_name(v));
        *ret = json_object_get_boolean(v);
        return 1;
}

int json_get_int64(json_object *obj, const char *path, const char *key, bool required, int64_t min, int64_t max,
                   int64_t *ret, JsonError *e) {
        char fp[256];
        json_object *v;
        int r = lookup(obj, path, key, required, &v, fp, sizeof fp, e);
        if (r <= 0)
                return r;
        if (!json_object_is_type(v, json_type_int))
                return json_error_set(e, fp, "must be an integer, not %s", type_name(v));
        errno = 0;
        int64_t x = json_object_get_int64(v);
        if (errno == ERANGE || x < min || x > max)
                return json_error_set(e, fp, "must be between %" PRId64 " and %" PRId64, min, max);
        *ret = x;
        return 1;
}

int json_get_uint64(json_object *obj, const char *path, const char *key, bool required, uint64_t min, uint64_t max,
                    uint64_t *ret, JsonError *e) {
        char fp[256];
        json_object *v;
        int r = lookup(obj, path, key, required, &v, fp, sizeof fp, e);
        if (r <= 0)
                return r;
        if (!json_object_is_type(v, json_type_int))
                return json_error_set(e, fp, "must be an integer, not %s", type_name(v));
        errno = 0;
        int64_t s = json_object_get_int64(v);
        if (s < 0 && errno != ERANGE)
                return json_error_set(e, fp, "must not be negative");
        errno = 0;
        uint64_t x = json_object_get_uint64(v);
        if (errno == ERANGE || x < min || x > max)
                return json_error_set(e, fp, "must be between %" PRIu64 " and %" PRIu64, min, max);
        *ret = x;
        return 1;
}

int json_get_size(json_object *obj, const char *path, const char *key, bool required, uint64_t min, uint64_t max,
                  uint64_t *ret, JsonError *e) {
        char fp[256];
        json_object *v;
        uint64_t x;
        int r = lookup(obj, path, key, required, &v, fp, sizeof fp, e);
        if (r <= 0)
                return r;
        if (json_object_is_type(v, json_type_string)) {
                r = parse_size(json_object_get_string(v), &x);
                if (r == -ERANGE)
                        return json_error_set(e, fp, "size \"%s\" is too large", json_object_get_string(v));
                if (r < 0)
                        return json_error_set(e, fp,
                                              "invalid size \"%.64s\": expected bytes or a number with a unit "
                                              "(KiB, MiB, GiB, TiB, K, M, G, KB, MB, GB) or 0x hex",
                                              json_object_get_string(v));
        } else if (json_object_is_type(v, json_type_int)) {
                errno = 0;
                if (json_object_get_int64(v) < 0 && errno != ERANGE)
                        return json_error_set(e, fp, "must not be negative");
                errno = 0;
                x = json_object_get_uint64(v);
                if (errno == ERANGE)
                        return json_error_set(e, fp, "size is too large");
        } else
                return json_error_set(e, fp, "must be a size (integer bytes or a string such as \"64MiB\"), not %s",
                                      type_name(v));
        if (x < min || x > max) {
                char a[32], b[32];
                return json_error_set(e, fp, "must be between %s and %s", format_size(a, sizeof a, min),
                                      format_size(b, sizeof b, max));
        }
        *ret = x;
        return 1;
}

int json_get_object(json_object *obj, const char *path, const char *key, bool required, json_object **ret, JsonError *e) {
        char fp[256];
        json_object *v;
        int r = lookup(obj, path, key, required, &v, fp, sizeof fp, e);
        if (r <= 0)
                return r;
        if (!json_object_is_type(v, json_type_object))
                return json_error_set(e, fp, "must be an object, not %s", type_name(v));
        *ret = v;
        return 1;
}

int json_get_array(json_object *obj, const char *path, const char *key, bool required, json_object **ret, JsonError *e) {
        char fp[256];
        json_object *v;
        int r = lookup(obj, path, key, required, &v, fp, sizeof fp, e);
        if (r <= 0)
                return r;
        if (!json_object_is_type(v, json_type_array))
                return json_error_set(e, fp, "must be an array, not %s", type_name(v));
        *ret = v;
        return 1;
}

int json_get_enum(json_object *obj, const char *path, const char *key, bool required, const char *const *choices,
                  int *ret, JsonError *e) {
        const char *s;
        char fp[256];
        int r = json_get_string(obj, path, key, required, &s, e);
        if (r <= 0)
                return r;
        for (int i = 0; choices[i]; i++)
                if (streq(s, choices[i])) {
                        *ret = i;
                        return 1;
                }
        char list[160] = "";
        size_t l = 0;
        for (int i = 0; choices[i] && l < sizeof list; i++)
                l += (size_t) snprintf(list + l, sizeof list - l, "%s\"%s\"", i ? ", " : "", choices[i]);
        json_path_key(fp, sizeof fp, path, key);
        return json_error_set(e, fp, "must be one of %s, not \"%.32s\"", list, s);
}

int json_check_keys(json_object *obj, const char *path, const char *const *allowed, JsonError *e) {
        json_object_object_foreach(obj, key, val) {
                bool ok = false;
                (void) val;
                for (const char *const *a = allowed; *a; a++)
                        if (streq(*a, key)) {
                                ok = true;
                                break;
                        }
                if (!ok) {
                        char fp[256];
                        json_path_key(fp, sizeof fp, path, key);
                        return json_error_set(e, fp, "unknown field");
                }
        }
        return 0;
}

int json_add(json_object *obj, const char *key, json_object *value) {
        if (json_object_object_add(obj, key, value) < 0) {
                json_object_put(value);
                return -ENOMEM;
        }
        return 0;
}

int json_add_string(json_object *obj, const char *key, const char *value) {
        json_object *v = NULL;
        if (value && !(v = json_object_new_string(value)))
                return -ENOMEM;
        return json_add(obj, key, v);
}

int json_add_int(json_object *obj, const char *key, int64_t value) {
        json_object *v = json_object_new_int64(value);
        return v ? json_add(obj, key, v) : -ENOMEM;
}

int json_add_uint(json_object *obj, const char *key, uint64_t value) {
        json_object *v = json_object_new_uint64(value);
        return v ? json_add(obj, key, v) : -ENOMEM;
}

int json_add_bool(json_object *obj, const char *key, bool value) {
        json_object *v = json_object_new_boolean(value);
        return v ? json_add(obj, key, v) : -ENOMEM;
}

const char *json_to_string(json_object *obj) {
        return json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}
