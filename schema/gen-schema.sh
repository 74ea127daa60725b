#!/bin/sh
# Turns schema/NNNN-*.sql into a C table of migrations, in file-name order.
set -eu
out=$1; shift
{
        echo "/* Generated from the schema SQL files by schema/gen-schema.sh. */"
        echo "#include \"schema.h\""
        echo "const SchemaMigration schema_migrations[] = {"
        for f in "$@"; do
                base=$(basename "$f" .sql)
                version=$(echo "$base" | sed -E 's/^0*([0-9]+)-.*/\1/')
                printf '        { %s, "%s",\n' "$version" "$base"
                sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/          "/' -e 's/$/\\n"/' "$f"
                echo "        },"
        done
        echo "};"
        echo "const unsigned schema_migrations_count = sizeof schema_migrations / sizeof schema_migrations[0];"
} >"$out.tmp"
mv "$out.tmp" "$out"
