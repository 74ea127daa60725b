#!/bin/bash
# Runs every bench/bench-*.sh; each prints its figures and the command behind them.
set -eu
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-build}
rc=0
for b in bench/bench-*.sh; do
        [ -f "$b" ] || continue
        echo "== $b"
        bash "$b" || rc=1
done
exit $rc
