#!/bin/bash
# Seeds a libFuzzer corpus folder with the golden domain XML inputs, each once lenient and once strict
# (the target reads the first byte as the strict flag).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$1
mkdir -p "$out"
for f in "$top"/tests/golden/xml/*.xml; do
        name=$(basename "$f")
        { printf '\0'; cat "$f"; } >"$out/seed-lenient-$name"
        { printf '\1'; cat "$f"; } >"$out/seed-strict-$name"
done
