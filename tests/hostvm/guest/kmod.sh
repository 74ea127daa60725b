# Runs inside the test host (busybox sh): kvmfleet-load against a real modular KVM on AMD svm.
load=/usr/sbin/kvmfleet-load
. /lib.sh

# run NAME ARGS...: runs kvmfleet-load from CPU 1, keeps its summary in /tmp/NAME.out and status in rc.
run() {
        local name=$1
        shift
        taskset -c 1 "$load" --report "/run/kvmfleet/$name.json" "$@" >"/tmp/$name.out" 2>&1
        rc=$?
        sed "s/^/# $name: /" "/tmp/$name.out"
}
has() { grep -qF -- "$2" "/tmp/$1.out"; }
has_re() { grep -qE -- "$2" "/tmp/$1.out"; }
# Every step after "start" ran on CPU 0, and the start was on CPU 1.
pinned_trace() {
        local line
        line=$(grep '^target CPU 0; observed:' "/tmp/$1.out") || return 1
        echo "$line" | grep -q ' start=1 ' || return 1
        ! echo "$line" | sed 's/ start=1 / /' | grep -qE '=[1-9]'
}

[ -e /dev/kvm ]
result no_kvm_before_load $((! $?)) "/dev/kvm exists before kvmfleet-load ran"

t0=$(cut -d' ' -f1 /proc/uptime)
run first --param kvm_amd.nested=1
t1=$(cut -d' ' -f1 /proc/uptime)
echo "# first load took $t0 -> $t1 s of guest uptime"
st=0
[ "$rc" -eq 0 ] || st=1
has_re first "^module irqbypass: loaded \(refcount [0-9]+\), inserted" || st=1
has_re first "^module kvm: loaded \(refcount [0-9]+\), inserted" || st=1
has first "module kvm_amd: loaded (refcount 0), inserted" || st=1
result inserts_irqbypass_kvm_kvm_amd $st "exit $rc"

pinned_trace first
result inserted_on_cpu0_from_cpu1 $? "$(grep observed /tmp/first.out)"

[ -c /dev/kvm ]
result dev_kvm_appears $? "no /dev/kvm after loading"

st=0
[ "$(param kvm_amd nested)" = 1 ] || st=1
has first "param kvm_amd.nested: requested 1, effective 1, in effect" || st=1
has first "parameters in effect" || st=1
result nested_1_in_effect $st "sysfs nested=$(param kvm_amd nested)"

st=0
has first "CPU consistency over 2 CPUs (0,1): consistent" || st=1
grep -q '"source":"dev"' /run/kvmfleet/first.json || st=1
result both_cpus_read_and_equal $st "$(grep -A3 consistency /run/kvmfleet/first.json)"

run second --param kvm_amd.nested=1
st=0
[ "$rc" -eq 0 ] || st=1
has second "module kvm_amd: loaded (refcount 0), no drift" || st=1
has_re second "^module kvm: loaded \(refcount [0-9]+\), no drift" || st=1
result second_run_loaded_no_drift $st "exit $rc"

run drift --param kvm_amd.nested=0
st=0
[ "$rc" -eq 0 ] || st=1
has drift "module kvm_amd: loaded (refcount 0), drift" || st=1
has drift "parameters NOT in effect" || st=1
grep -q '"drift":true' /run/kvmfleet/drift.json || st=1
[ "$(param kvm_amd nested)" = 1 ] || st=1
result different_param_reports_drift $st "exit $rc, sysfs nested=$(param kvm_amd nested)"

run reload --param kvm_amd.nested=0 --reload
st=0
[ "$rc" -eq 0 ] || st=1
has reload "module kvm_amd: loaded (refcount 0), reloaded" || st=1
has reload "param kvm_amd.nested: requested 0, effective 0, in effect" || st=1
[ "$(param kvm_amd nested)" = 0 ] || st=1
[ -c /dev/kvm ] || st=1
pinned_trace reload || st=1
result reload_applies_param_on_cpu0 $st "exit $rc, sysfs nested=$(param kvm_amd nested)"

run unknown --param kvm_amd.nestd=1
st=0
[ "$rc" -eq 3 ] || st=1
has unknown "unknown parameter 'nestd' of module kvm_amd (not in its modinfo parameter list)" || st=1
result unknown_param_refused_from_modinfo $st "exit $rc"

# A VM holding /dev/kvm keeps the vendor module busy: reload must refuse, not rip KVM away.
exec 9</dev/kvm
run busy --param kvm_amd.nested=1 --reload
exec 9<&-
st=0
[ "$rc" -eq 2 ] || st=1
has busy "kvm_amd is in use (refcount 1)" || st=1
[ "$(param kvm_amd nested)" = 0 ] || st=1
result reload_refused_while_dev_kvm_open $st "exit $rc"

exit $failed
