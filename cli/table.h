/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/* A text table: columns sized to their widest cell, two spaces apart, header in capitals. */
typedef struct Table Table;

Table *table_new(size_t n_columns, const char *const *headers);
int table_add_row(Table *t, const char *const *cells); /* n_columns cells; NULL prints "-" */
void table_print(Table *t);
Table *table_free(Table *t);
