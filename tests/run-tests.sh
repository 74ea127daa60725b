#!/bin/bash
# Runs the test suites and prints one line per test ("ok -", "not ok -", "skip -") and a closing
# "N passed, N failed, N skipped". Exit status 0 only when nothing failed.
#   tests/run-tests.sh [unit|integration|hostvm|all|slow] [FILTER]
# "slow" (package build and install, Ansible apply: tests/slow) is not part of "all"; make check-slow.
# Every test program prints the same per-test lines; a program that exits non-zero without
# reporting a failure counts as one failure. VALGRIND=1 runs the unit tests under valgrind.
set -u
BUILD=${BUILD:-build}
export BUILD
suite=${1:-all}
filter=${2:-}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
logdir=$BUILD/test-logs
mkdir -p "$logdir"
passed=0 failed=0 skipped=0

run_program() { # name, command...
        local name=$1; shift
        local log=$logdir/${name//\//_}.log
        local start=$SECONDS
        "$@" >"$log" 2>&1 </dev/null
        local rc=$?
        local p f s
        p=$(grep -c '^ok - ' "$log"); f=$(grep -c '^not ok - ' "$log"); s=$(grep -c '^skip - ' "$log")
        grep -E '^(ok|not ok|skip) - ' "$log" | sed -E "s@^(ok|not ok|skip) - @\1 - $name/@"
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
                echo "not ok - $name: exited with status $rc without reporting a failing test"
                f=1
        fi
        if [ "$f" -gt 0 ]; then
                echo "# --- $name log (last 40 lines; full log: $log) ---"
                tail -n 40 "$log" | sed 's/^/#   /'
        fi
        if [ $((p + f + s)) -eq 0 ]; then
                echo "not ok - $name: ran no test"
                f=1
        fi
        echo "# $name: $p passed, $f failed, $s skipped ($((SECONDS - start)) s)"
        passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}

run_unit() {
        local t
        for t in "$BUILD"/tests/test-*; do
                [ -x "$t" ] || continue
                case "$(basename "$t")" in *$filter*) ;; *) continue ;; esac
                if [ "${VALGRIND:-0}" = 1 ]; then
                        run_program "unit/$(basename "$t")" valgrind -q --error-exitcode=99 --leak-check=full \
                                --errors-for-leak-kinds=definite "$t"
                else
                        run_program "unit/$(basename "$t")" "$t"
                fi
        done
}

run_integration() {
        local t
        for t in tests/integration/test_*.py tests/integration/test-*.sh; do
                [ -f "$t" ] || continue
                case "$(basename "$t")" in *$filter*) ;; *) continue ;; esac
                case "$t" in
                *.py) run_program "integration/$(basename "$t" .py)" python3 "$t" ;;
                *.sh) run_program "integration/$(basename "$t" .sh)" bash "$t" ;;
                esac
        done
}

run_hostvm() {
        local t
        for t in tests/hostvm/test-*.sh; do
                [ -f "$t" ] || continue
                case "$(basename "$t")" in *$filter*) ;; *) continue ;; esac
                run_program "hostvm/$(basename "$t" .sh)" bash "$t"
        done
}

run_slow() {
        local t
        for t in tests/slow/test-*.sh; do
                [ -f "$t" ] || continue
                case "$(basename "$t")" in *$filter*) ;; *) continue ;; esac
                run_program "slow/$(basename "$t" .sh)" bash "$t"
        done
}

case "$suite" in
unit) run_unit ;;
slow) run_slow ;;
integration) run_integration ;;
hostvm) run_hostvm ;;
all) run_unit; run_integration; run_hostvm ;;
*) echo "unknown suite $suite" >&2; exit 2 ;;
esac

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
