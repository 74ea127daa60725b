/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}
static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}
/* Returns the rest of s after prefix, or NULL when s does not start with it. */
static inline const char *startswith(const char *s, const char *prefix) {
        size_t l = strlen(prefix);
        return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}
bool endswith(const char *s, const char *suffix);

/* Strips leading and trailing ASCII whitespace in place; returns s moved past leading space. */
char *strstrip(char *s);

/* Copies at most n-1 bytes and always terminates; returns -ENAMETOOLONG when truncated. */
int strscpy(char *dst, size_t n, const char *src);

/* Strict integer parsers: whole string, no sign for unsigned, base 10 or 0x hex. -EINVAL/-ERANGE. */
int safe_atou64(const char *s, uint64_t *ret);
int safe_atoi64(const char *s, int64_t *ret);
int safe_atou(const char *s, unsigned *ret);
int parse_boolean(const char *s); /* 1, 0 or -EINVAL: yes/no true/false on/off 1/0 */

/* Sizes: "4096", "0x1000", "64MiB", "2M", "1GiB", "16k", "10MB" (MB/GB... are powers of 1000,
 * M/MiB/K/KiB... powers of 1024, "B" bytes). No sign, no fraction, no spaces; overflow is -ERANGE. */
int parse_size(const char *s, uint64_t *ret);
/* Formats a byte count with the largest exact binary unit ("64MiB", "4097B"). */
const char *format_size(char *buf, size_t n, uint64_t bytes);

/* Text safe for JSON/UTF-8 consumers: valid UTF-8 is copied, every other byte becomes "\xNN".
 * Control characters other than \n \r \t are escaped too. Caller frees. NULL on OOM. */
char *utf8_escape_invalid(const char *data, size_t len);
bool utf8_is_valid(const char *s, size_t len);

/* Base64 (RFC 4648, with padding). Caller frees. */
char *base64_encode(const void *data, size_t len);
int base64_decode(const char *s, void **ret, size_t *ret_len);

/* Random 128-bit UUID v4 as 36 chars + NUL; uuid_is_valid checks the textual form. */
int uuid_generate_str(char out[37]);
/* The same form from a generator of the calling thread's own (xoshiro256**, seeded with getrandom()
 * on the thread's first call): for identifiers that need to be unique, not unguessable (request
 * ids), at no system call each. */
int uuid_generate_fast_str(char out[37]);
bool uuid_is_valid(const char *s);
