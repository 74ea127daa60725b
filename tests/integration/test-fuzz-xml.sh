#!/bin/bash
# A bounded libFuzzer run (FUZZ_SECONDS, default 20) of the domain XML mapping, seeded with the golden
# inputs; `make fuzz` runs the same target for longer. Skips only when clang cannot build a libFuzzer
# binary here.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
seconds=${FUZZ_SECONDS:-20}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' >"$tmp/probe.c"
if ! command -v "${FUZZ_CC:-clang}" >/dev/null || ! "${FUZZ_CC:-clang}" -fsanitize=fuzzer,address -o "$tmp/probe" "$tmp/probe.c" 2>/dev/null; then
        echo "skip - fuzz-domain-xml: clang with libFuzzer (-fsanitize=fuzzer) is not available"
        exit 0
fi

if ! make --no-print-directory BUILD="$BUILD" "$BUILD/fuzz/fuzz-domain-xml" >"$tmp/build.log" 2>&1; then
        echo "not ok - fuzz-domain-xml-build"
        sed 's/^/# /' "$tmp/build.log" | tail -n 30
        exit 1
fi
echo "ok - fuzz-domain-xml-build"

tests/fuzz/seed-corpus.sh "$tmp/corpus"
if "$BUILD/fuzz/fuzz-domain-xml" -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
        -dict=tests/fuzz/domain-xml.dict -artifact_prefix="$tmp/" "$tmp/corpus" >"$tmp/fuzz.log" 2>&1; then
        runs=$(grep -o 'Done [0-9]* runs' "$tmp/fuzz.log" | tail -n 1)
        echo "ok - fuzz-domain-xml ($runs in ${seconds}s)"
else
        echo "not ok - fuzz-domain-xml"
        grep -v '^#[0-9]' "$tmp/fuzz.log" | tail -n 40 | sed 's/^/# /'
        for a in "$tmp"/crash-* "$tmp"/leak-* "$tmp"/timeout-* "$tmp"/oom-*; do
                [ -f "$a" ] || continue
                mkdir -p "$BUILD/fuzz"
                cp "$a" "$BUILD/fuzz/"
                echo "# input kept as $BUILD/fuzz/$(basename "$a")"
        done
        exit 1
fi
