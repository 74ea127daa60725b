#!/bin/bash
# kvmfleet-load on this machine: built-in KVM is detected and reported, the process moves from CPU 1 to
# CPU 0, and the consistency check reads every online CPU through /dev/cpu and finds them equal.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
load=$top/$BUILD/kvmfleet-load
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
result() { # name, status, details
        if [ "$2" -eq 0 ]; then echo "ok - $1"; else echo "# $3"; echo "not ok - $1"; failed=1; fi
}
jq_ok() { jq -e "$1" "$tmp/report.json" >/dev/null; }

if [ ! -x "$load" ]; then
        echo "not ok - kvmfleet_load_built: $load missing"
        exit 1
fi
online=$(cat /sys/devices/system/cpu/online)
if [ "$(nproc --all)" -lt 2 ]; then
        echo "skip - runs_on_cpu0_from_cpu1: this machine has one CPU"
        cpu_opt=""
else
        cpu_opt="taskset -c 1"
fi

$cpu_opt "$load" --report "$tmp/report.json" --param kvm.allow_unsafe_mappings=0 >"$tmp/out" 2>&1
rc=$?
sed 's/^/# /' "$tmp/out"
result exits_0 "$rc" "exit $rc"
[ -f "$tmp/report.json" ]
result report_written $? "no report at $tmp/report.json"

if [ -d /sys/module/kvm ] && [ ! -e /sys/module/kvm/initstate ]; then
        jq_ok '.modules[] | select(.name == "kvm") | .state == "builtin" and .action == "none"'
        result builtin_kvm_reported $? "$(jq -c .modules "$tmp/report.json")"
        grep -q '^module kvm: builtin' "$tmp/out"
        result builtin_kvm_in_summary $? "summary lacks 'module kvm: builtin'"
else
        echo "skip - builtin_kvm_reported: KVM on this machine is not built in"
fi

if [ -n "$cpu_opt" ]; then
        jq_ok '.cpu_trace[0].step == "start" and .cpu_trace[0].cpu == 1 and ([.cpu_trace[1:][].cpu] | all(. == 0)) and (.cpu_trace | length) >= 3'
        result runs_on_cpu0_from_cpu1 $? "$(jq -c .cpu_trace "$tmp/report.json")"
fi

want=$(python3 -c "
s='$online'; out=[]
for part in s.split(','):
    a,_,b=part.partition('-'); out+=range(int(a),int(b or a)+1)
print(','.join(map(str,out)))")
got=$(jq -r '.consistency.checked_cpus | map(tostring) | join(",")' "$tmp/report.json")
[ "$got" = "$want" ] && jq_ok '.consistency.checked == true and .consistency.consistent == true and (.consistency.differences | length) == 0'
result all_cpus_read_and_equal $? "checked $got, online $want: $(jq -c .consistency "$tmp/report.json")"

jq_ok '.params[0].module == "kvm" and .params[0].name == "allow_unsafe_mappings" and .params[0].requested == "N"
        and .params[0].effective == "N" and .params[0].in_effect == true and .params_in_effect == true'
result effective_param_read_back $? "$(jq -c .params "$tmp/report.json")"

jq_ok '(.version | length) > 0 and .kernel_release == "'"$(uname -r)"'" and (.generated_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$"))
        and .target_cpu == 0 and .ok == true and .exit_code == 0 and (.durations_ms.total >= 0)
        and (.vendor | IN("intel", "amd", "unknown"))'
result report_fields $? "$(jq -c '{version,kernel_release,generated_at,target_cpu,ok,exit_code,vendor}' "$tmp/report.json")"

# Errors: usage errors leave no report and exit 3, naming the culprit.
printf '[agent]\nlisten = x\n[kvm]\ncpu = 0\nkvm.no_such_param = 1\n' >"$tmp/bad.conf"
"$load" -c "$tmp/bad.conf" --report "$tmp/bad.json" >"$tmp/bad.out" 2>&1
rc=$?
[ "$rc" -eq 3 ] && grep -q "bad.conf:5: unknown parameter 'no_such_param' of module kvm" "$tmp/bad.out" && [ ! -e "$tmp/bad.json" ]
result unknown_param_in_config_exit_3 $? "exit $rc: $(cat "$tmp/bad.out")"

"$load" --cpu 4096 --report "$tmp/cpu.json" >"$tmp/cpu.out" 2>&1
rc=$?
[ "$rc" -eq 2 ] && jq -e '.ok == false and .exit_code == 2 and (.error | test("CPU 4096"))' "$tmp/cpu.json" >/dev/null
result offline_target_cpu_fails_load $? "exit $rc: $(cat "$tmp/cpu.out")"

"$load" --json --report "$tmp/j.json" 2>/dev/null | jq -e '.exit_code == 0' >/dev/null
result json_on_stdout $? "--json did not print the report"
exit $failed
