# Runs inside the test host (busybox sh): per-vCPU nested state of a VM whose L1 runs an L2.
. /lib.sh

nested_setup

LOOPS=${NESTED_LOOPS:-600000000}
EVERY=${NESTED_EVERY:-6000000}
ctl vm create --name l1 --vcpus 1 --memory 4MiB --kernel /svm-l2.elf --cmdline "loops=$LOOPS every=$EVERY" \
        --nested --start >/tmp/create.out 2>&1
result vm_with_nested_starts $? "$(cat /tmp/create.out)" "$(tail -5 /tmp/agent.log)"

t0=$(now)
wait_console l1 '^l2 tick 1$' 60
result l2_runs $? "$(ctl vm console l1 2>&1 | tail -5)"
t1=$(now)
vmcb=$(ctl vm console l1 | sed -n 's/^svm-l2: vmcb=\(0x[0-9a-f]*\) .*/\1/p')
ctl vm pause l1 >/tmp/pause.out 2>&1
result pause_while_l2_runs $? "$(cat /tmp/pause.out)"
before=$(ticks l1)
echo "# l2: first tick after ${t0}..${t1} s uptime, $before ticks of $EVERY iterations at pause (of $((LOOPS / EVERY)))"

ctl vm nested-state get l1 0 --raw /tmp/state.bin >/tmp/get.out 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q '^Format: *svm$' /tmp/get.out && grep -q 'guest_mode=yes' /tmp/get.out &&
        grep -q 'gif_set=yes' /tmp/get.out && grep -q '^Size: *4224 bytes' /tmp/get.out &&
        [ -n "$vmcb" ] && grep -q "^VMCB: *$vmcb\$" /tmp/get.out
result nested_state_shows_l2_in_guest_mode $? "rc=$rc vmcb printed by the guest: $vmcb" "$(cat /tmp/get.out)"
size=$(wc -c </tmp/state.bin)
result raw_blob_saved $(( size != 4224 )) "size=$size"
ctl --json vm nested-state get l1 0 >/tmp/get.json 2>&1
tr -d ' \n' </tmp/get.json | grep -q "\"vmcb_pa\":$((vmcb))"
result nested_state_json_vmcb_pa $? "$(head -c 600 /tmp/get.json)"

ctl vm nested-state set l1 0 /tmp/state.bin >/tmp/set.out 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q 'guest_mode=yes' /tmp/set.out && grep -q "^VMCB: *$vmcb\$" /tmp/set.out
result round_trip_put_of_unchanged_state $? "rc=$rc" "$(cat /tmp/set.out)"
ctl vm nested-state get l1 0 --raw /tmp/state2.bin >/dev/null 2>&1
cmp -s /tmp/state.bin /tmp/state2.bin
result state_after_put_is_identical $? "$(cmp /tmp/state.bin /tmp/state2.bin 2>&1)"

# a blob in the other vendor's format is refused before KVM sees it
printf '\000\000\000\000' | dd of=/tmp/state.bin bs=1 seek=0 conv=notrunc 2>/dev/null
ctl vm nested-state set l1 0 /tmp/state.bin >/tmp/bad.out 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q 'format' /tmp/bad.out
result foreign_format_refused $? "rc=$rc" "$(cat /tmp/bad.out)"

after_put=$(ticks l1)
ctl vm resume l1 >/tmp/resume.out 2>&1
result resume $? "$(cat /tmp/resume.out)"
wait_console l1 '^svm-l2: done$' 120
rc=$?
ctl vm console l1 | grep -q "^svm-l2: vmexit code=0x81 counter=$LOOPS\$"
result l1_sees_vmmcall_exit_after_resume $((rc + $?)) "ticks at pause $before, after put $after_put" "$(ctl vm console l1 2>&1 | tail -4)"
ctl vm console l1 | grep -q "^l2 tick $((LOOPS / EVERY))\$" && [ "$before" -lt $((LOOPS / EVERY)) ]
result l2_continued_from_where_it_was $? "ticks at pause $before of $((LOOPS / EVERY))"

ctl events --limit 1000 >/tmp/events.out 2>&1
grep -q "nested_state_set" /tmp/events.out
result put_recorded_as_event $? "$(tail -5 /tmp/events.out)"

# the host changes: kvm_amd.nested=0 after a reload makes the VM unstartable, naming the parameter
ctl vm stop l1 >/dev/null 2>&1
ctl host kvm set kvm_amd.nested=0 >/dev/null 2>&1 && ctl host kvm reload >/tmp/reload.out 2>&1
result reload_with_nested_off $? "$(cat /tmp/reload.out)"
ctl vm start l1 >/tmp/start.out 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "kvm_amd.nested parameter is off" /tmp/start.out && ctl vm show l1 | grep -q stopped
result start_refused_with_nested_off $? "rc=$rc" "$(cat /tmp/start.out)"
kill %1 2>/dev/null
exit $failed
