/* SPDX-License-Identifier: MIT */
#include "str-util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

#include "macro.h"

bool endswith(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

char *strstrip(char *s) {
        while (isspace((unsigned char) *s))
                s++;
        size_t l = strlen(s);
        while (l > 0 && isspace((unsigned char) s[l - 1]))
                s[--l] = 0;
        return s;
}

int strscpy(char *dst, size_t n, const char *src) {
        size_t l = strlen(src);
        if (n == 0)
                return -ENAMETOOLONG;
        if (l >= n) {
                memcpy(dst, src, n - 1);
                dst[n - 1] = 0;
                return -ENAMETOOLONG;
        }
        memcpy(dst, src, l + 1);
        return 0;
}

int safe_atou64(const char *s, uint64_t *ret) {
        char *end;
        int base = 10;
        if (!s || !*s || !(isdigit((unsigned char) s[0])))
                return -EINVAL;
        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
                base = 16;
                if (!isxdigit((unsigned char) s[2]))
                        return -EINVAL;
        }
        errno = 0;
        unsigned long long v = strtoull(s, &end, base);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end)
                return -EINVAL;
        *ret = v;
        return 0;
}

int safe_atoi64(const char *s, int64_t *ret) {
        char *end;
        if (!s || !*s || isspace((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end || end == s)
                return -EINVAL;
        *ret = v;
        return 0;
}

int safe_atou(const char *s, unsigned *ret) {
        uint64_t v;
        int r = safe_atou64(s, &v);
        if (r < 0)
                return r;
        if (v > UINT32_MAX)
                return -ERANGE;
        *ret = (unsigned) v;
        return 0;
}

int parse_boolean(const char *s) {
        static const char *const yes[] = { "1", "yes", "true", "on" }, *const no[] = { "0", "no", "false", "off" };
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0)
                        return 1;
                if (strcasecmp(s, no[i]) == 0)
                        return 0;
        }
        return -EINVAL;
}

static const struct {
        const char *suffix;
        uint64_t factor;
} size_units[] = {
        { "B", 1ULL },
        { "K", 1ULL << 10 }, { "KiB", 1ULL << 10 }, { "k", 1ULL << 10 }, { "KB", 1000ULL },
        { "M", 1ULL << 20 }, { "MiB", 1ULL << 20 }, { "MB", 1000000ULL },
        { "G", 1ULL << 30 }, { "GiB", 1ULL << 30 }, { "GB", 1000000000ULL },
        { "T", 1ULL << 40 }, { "TiB", 1ULL << 40 }, { "TB", 1000000000000ULL },
        { "P", 1ULL << 50 }, { "PiB", 1ULL << 50 }, { "PB", 1000000000000000ULL },
};

int parse_size(const char *s, uint64_t *ret) {
        char num[32];
        size_t i = 0;
        uint64_t v, factor = 1;
        int r;

        if (!s || !*s)
                return -EINVAL;
        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) /* hex: no unit */
                return safe_atou64(s, ret);
        while (isdigit((unsigned char) s[i])) {
                if (i >= sizeof num - 1)
                        return -ERANGE;
                num[i] = s[i];
                i++;
        }
        if (i == 0)
                return -EINVAL;
        num[i] = 0;
        if (s[i]) {
                bool found = false;
                for (size_t u = 0; u < ELEMENTSOF(size_units); u++)
                        if (streq(s + i, size_units[u].suffix)) {
                                factor = size_units[u].factor;
                                found = true;
                                break;
                        }
                if (!found)
                        return -EINVAL;
        }
        r = safe_atou64(num, &v);
        if (r < 0)
                return r;
        if (v > UINT64_MAX / factor)
                return -ERANGE;
        *ret = v * factor;
        return 0;
}

const char *format_size(char *buf, size_t n, uint64_t bytes) {
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
        size_t u = 0;
        while (u + 1 < ELEMENTSOF(units) && bytes >= 1024 && bytes % 1024 == 0) {
                bytes /= 1024;
                u++;
        }
        snprintf(buf, n, "%" PRIu64 "%s", bytes, units[u]);
        return buf;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. Rejects overlongs and surrogates. */
static size_t utf8_seq_len(const unsigned char *s, size_t left) {
        unsigned char c = s[0];
        size_t n;
        uint32_t cp;

        if (c < 0x80)
                return 1;
        if (c >= 0xC2 && c <= 0xDF)
                n = 2, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
                n = 3, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
                n = 4, cp = c & 0x07;
        else
                return 0;
        if (left < n)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xC0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3F);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
                return 0;
        return n;
}

bool utf8_is_valid(const char *s, size_t len) {
        for (size_t i = 0; i < len;) {
                size_t n = utf8_seq_len((const unsigned char *) s + i, len - i);
                if (n == 0)
                        return false;
                i += n;
        }
        return true;
}

char *utf8_escape_invalid(const char *data, size_t len) {
        char *out = malloc(len * 4 + 1), *p = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < len;) {
                const unsigned char *s = (const unsigned char *) data + i;
                size_t n = utf8_seq_len(s, len - i);
                if (n == 0 || (n == 1 && s[0] < 0x20 && s[0] != '\n' && s[0] != '\r' && s[0] != '\t') || s[0] == 0x7F) {
                        p += sprintf(p, "\\x%02x", s[0]);
                        i++;
                } else {
                        memcpy(p, s, n);
                        p += n;
                        i += n;
                }
        }
        *p = 0;
        return out;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64_encode(const void *data, size_t len) {
        const unsigned char *d = data;
        char *out = malloc((len + 2) / 3 * 4 + 1), *p = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) d[i] << 16;
                if (i + 1 < len)
                        v |= (uint32_t) d[i + 1] << 8;
                if (i + 2 < len)
                        v |= d[i + 2];
                *p++ = b64[(v >> 18) & 63];
                *p++ = b64[(v >> 12) & 63];
                *p++ = i + 1 < len ? b64[(v >> 6) & 63] : '=';
                *p++ = i + 2 < len ? b64[v & 63] : '=';
        }
        *p = 0;
        return out;
}

static int b64_value(char c) {
        const char *p = c ? strchr(b64, c) : NULL;
        return p ? (int) (p - b64) : -1;
}

int base64_decode(const char *s, void **ret, size_t *ret_len) {
        size_t len = strlen(s);
        if (len % 4 != 0)
                return -EINVAL;
        unsigned char *out = malloc(len / 4 * 3 + 1);
        size_t o = 0;
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i += 4) {
                int v[4];
                for (int k = 0; k < 4; k++) {
                        if (s[i + k] == '=' && i + 4 == len && k >= 2 && (k == 3 || s[i + 3] == '='))
                                v[k] = -2;
                        else if ((v[k] = b64_value(s[i + k])) < 0) {
                                free(out);
                                return -EINVAL;
                        }
                }
                uint32_t x = ((uint32_t) v[0] << 18) | ((uint32_t) v[1] << 12) | ((uint32_t) (v[2] < 0 ? 0 : v[2]) << 6) |
                             (uint32_t) (v[3] < 0 ? 0 : v[3]);
                out[o++] = (unsigned char) (x >> 16);
                if (v[2] >= 0)
                        out[o++] = (unsigned char) (x >> 8);
                if (v[3] >= 0)
                        out[o++] = (unsigned char) x;
        }
        *ret = out;
        *ret_len = o;
        return 0;
}

static void uuid_format(const unsigned char b[16], char out[37]) {
        static const char hex[] = "0123456789abcdef";
        size_t o = 0;
        for (size_t i = 0; i < 16; i++) {
                if (i == 4 || i == 6 || i == 8 || i == 10)
                        out[o++] = '-';
                out[o++] = hex[b[i] >> 4];
                out[o++] = hex[b[i] & 15];
        }
        out[o] = 0;
}

static uint64_t rotl64(uint64_t x, int k) {
        return (x << k) | (x >> (64 - k));
}

int uuid_generate_str(char out[37]) {
        unsigned char b[16];
        if (getrandom(b, sizeof b, 0) != sizeof b)
                return -errno;
        b[6] = (b[6] & 0x0F) | 0x40;
        b[8] = (b[8] & 0x3F) | 0x80;
        uuid_format(b, out);
        return 0;
}

int uuid_generate_fast_str(char out[37]) {
        static __thread uint64_t st[4];
        static __thread bool seeded;
        if (!seeded) {
                if (getrandom(st, sizeof st, 0) != sizeof st)
                        return -errno;
                if (!(st[0] | st[1] | st[2] | st[3]))
                        st[0] = 1; /* the one state xoshiro cannot leave */
                seeded = true;
        }
        unsigned char b[16];
        for (size_t half = 0; half < 2; half++) {
                /* xoshiro256** */
                uint64_t r = rotl64(st[1] * 5, 7) * 9, t = st[1] << 17;
                st[2] ^= st[0];
                st[3] ^= st[1];
                st[1] ^= st[2];
                st[0] ^= st[3];
                st[2] ^= t;
                st[3] = rotl64(st[3], 45);
                memcpy(b + half * 8, &r, 8);
        }
        b[6] = (b[6] & 0x0F) | 0x40;
        b[8] = (b[8] & 0x3F) | 0x80;
        uuid_format(b, out);
        return 0;
}

bool uuid_is_valid(const char *s) {
        if (strlen(s) != 36)
                return false;
        for (int i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return false;
                } else if (!isxdigit((unsigned char) s[i]))
                        return false;
        }
        return true;
}
