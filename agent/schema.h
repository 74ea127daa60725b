/* SPDX-License-Identifier: MIT */
#pragma once

typedef struct SchemaMigration {
        unsigned version;
        const char *name;
        const char *sql;
} SchemaMigration;

extern const SchemaMigration schema_migrations[];
extern const unsigned schema_migrations_count;
