/* SPDX-License-Identifier: MIT */
#include "cpuset.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "macro.h"

static int parse_number(const char **p, unsigned *ret) {
        unsigned v = 0;
        const char *q = *p;
        if (*q < '0' || *q > '9')
                return -EINVAL;
        for (; *q >= '0' && *q <= '9'; q++) {
                v = v * 10 + (unsigned) (*q - '0');
                if (v > CPUSET_MAX)
                        return -EINVAL;
        }
        *p = q;
        *ret = v;
        return 0;
}

int cpuset_parse(const char *s, cpu_set_t *ret) {
        cpu_set_t set;
        const char *p = s;
        int r;

        CPU_ZERO(&set);
        for (;;) {
                bool exclude = false;
                unsigned lo, hi;
                while (*p == ' ')
                        p++;
                if (*p == '^') {
                        exclude = true;
                        p++;
                }
                r = parse_number(&p, &lo);
                if (r < 0)
                        return r;
                hi = lo;
                if (*p == '-' && !exclude) {
                        p++;
                        r = parse_number(&p, &hi);
                        if (r < 0)
                                return r;
                        if (hi < lo)
                                return -EINVAL;
                }
                for (unsigned c = lo; c <= hi; c++)
                        if (exclude)
                                CPU_CLR(c, &set);
                        else
                                CPU_SET(c, &set);
                while (*p == ' ')
                        p++;
                if (*p == '\0')
                        break;
                if (*p != ',')
                        return -EINVAL;
                p++;
        }
        if (CPU_COUNT(&set) == 0)
                return -EINVAL;
        *ret = set;
        return 0;
}

int cpuset_format(const cpu_set_t *set, char **ret) {
        /* At most "1023," per CPU: 5 bytes each. */
        _cleanup_free_ char *out = malloc(5 * (CPUSET_MAX + 1) + 1);
        bool any = false;
        size_t n = 0;

        if (!out)
                return -ENOMEM;
        for (unsigned c = 0; c <= CPUSET_MAX; c++) {
                unsigned end = c;
                if (!CPU_ISSET(c, set))
                        continue;
                while (end < CPUSET_MAX && CPU_ISSET(end + 1, set))
                        end++;
                if (end == c)
                        n += (size_t) sprintf(out + n, "%s%u", any ? "," : "", c);
                else
                        n += (size_t) sprintf(out + n, "%s%u-%u", any ? "," : "", c, end);
                any = true;
                c = end;
        }
        if (!any)
                return -EINVAL;
        *ret = TAKE_PTR(out);
        return 0;
}
