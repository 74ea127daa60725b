/* SPDX-License-Identifier: MIT */
#include "table.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct Table {
        size_t n_columns, n_rows;
        char **cells; /* (n_rows + 1) * n_columns, row 0 is the header */
};

Table *table_new(size_t n_columns, const char *const *headers) {
        Table *t = calloc(1, sizeof *t);
        if (!t)
                return NULL;
        t->n_columns = n_columns;
        if (table_add_row(t, headers) < 0)
                return table_free(t);
        return t;
}

int table_add_row(Table *t, const char *const *cells) {
        char **n = realloc(t->cells, (t->n_rows + 1) * t->n_columns * sizeof(char *));
        if (!n)
                return -ENOMEM;
        t->cells = n;
        for (size_t c = 0; c < t->n_columns; c++) {
                char *s = strdup(cells[c] ? cells[c] : "-");
                if (!s)
                        return -ENOMEM;
                /* one line per cell */
                for (char *p = s; *p; p++)
                        if (*p == '\n' || *p == '\t')
                                *p = ' ';
                t->cells[t->n_rows * t->n_columns + c] = s;
        }
        t->n_rows++;
        return 0;
}

void table_print(Table *t) {
        size_t width[32] = { 0 };
        for (size_t r = 0; r < t->n_rows; r++)
                for (size_t c = 0; c < t->n_columns && c < 32; c++) {
                        size_t l = strlen(t->cells[r * t->n_columns + c]);
                        if (l > width[c])
                                width[c] = l;
                }
        for (size_t r = 0; r < t->n_rows; r++) {
                for (size_t c = 0; c < t->n_columns; c++) {
                        const char *s = t->cells[r * t->n_columns + c];
                        if (c + 1 == t->n_columns)
                                printf("%s", s);
                        else
                                printf("%-*s  ", (int) width[c < 32 ? c : 31], s);
                }
                putchar('\n');
        }
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_rows * t->n_columns; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t);
        return NULL;
}
