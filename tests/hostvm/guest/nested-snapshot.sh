# Runs inside the test host (busybox sh): snapshot/restore of a VM whose L1 runs an L2.
. /lib.sh

nested_setup

LOOPS=${NESTED_LOOPS:-600000000}
EVERY=${NESTED_EVERY:-6000000}
TOTAL=$((LOOPS / EVERY))
ctl vm create --name l1 --vcpus 1 --memory 4MiB --kernel /svm-l2.elf --cmdline "loops=$LOOPS every=$EVERY" \
        --nested --start >/tmp/create.out 2>&1
result vm_with_nested_starts $? "$(cat /tmp/create.out)" "$(tail -5 /tmp/agent.log)"

wait_console l1 '^l2 tick 2$' 60
result l2_runs $? "$(ctl vm console l1 2>&1 | tail -5)"
vmcb=$(ctl vm console l1 | sed -n 's/^svm-l2: vmcb=\(0x[0-9a-f]*\) .*/\1/p')
ctl vm pause l1 >/tmp/pause.out 2>&1
result pause_while_l2_runs $? "$(cat /tmp/pause.out)"
sleep 0.5 # the console ring catches up with what the UART sent before the pause
before=$(ticks l1)
saved_vmcb=$(nested_get l1 /tmp/get.out)
grep -q 'guest_mode=yes' /tmp/get.out && [ -n "$vmcb" ] && [ "$saved_vmcb" = "$vmcb" ]
result paused_in_guest_mode $? "vmcb printed by the guest: $vmcb" "$(cat /tmp/get.out)"

t0=$(now)
ctl vm snapshot l1 /tmp/snap >/tmp/snap.out 2>&1
rc=$?
t1=$(now)
result snapshot_written $rc "$(cat /tmp/snap.out)" "$(tail -5 /tmp/agent.log)"
man=$(tr -d ' \n' </tmp/snap/manifest.json 2>/dev/null)
echo "$man" | grep -q '"name":"vcpu0-nested.bin","size":4224,' &&
        echo "$man" | grep -q '"nested_state_size":4224' && [ "$(wc -c </tmp/snap/vcpu0-nested.bin)" -eq 4224 ]
result manifest_lists_nested_state_4224 $? "$(ls -l /tmp/snap 2>&1)" "$(head -c 900 /tmp/snap/manifest.json 2>&1)"
echo "# snapshot: ${t0}..${t1} s uptime, $before ticks of $EVERY iterations at pause (of $TOTAL)"

ctl vm delete l1 --force >/tmp/delete.out 2>&1
rc=$?
! ctl vm show l1 >/dev/null 2>&1 && ! pidof kvmfleet-vmm >/dev/null
result original_vm_deleted $((rc + $?)) "rc=$rc" "$(cat /tmp/delete.out)" "vmm pids: $(pidof kvmfleet-vmm)"

# a manifest claiming nested state larger than KVM_CAP_NESTED_STATE is refused without a VM
cp -r /tmp/snap /tmp/snap-big
sed -i 's/"nested_state_size": *4224/"nested_state_size": 8192/' /tmp/snap-big/manifest.json
ctl vm restore /tmp/snap-big --name big --paused >/tmp/big.out 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q 'nested_state_size' /tmp/big.out && ! ctl vm show big >/dev/null 2>&1 &&
        ! pidof kvmfleet-vmm >/dev/null
result larger_nested_state_than_host_refused $? "rc=$rc" "$(cat /tmp/big.out)" "vmm pids: $(pidof kvmfleet-vmm)"

t0=$(now)
ctl vm restore /tmp/snap --name l1r --paused >/tmp/restore.out 2>&1
rc=$?
t1=$(now)
result restore_paused_in_new_vmm $rc "$(cat /tmp/restore.out)" "$(tail -8 /tmp/agent.log)"
echo "# restore: ${t0}..${t1} s uptime"
restored_vmcb=$(nested_get l1r /tmp/get-restored.out)
grep -q '^Format: *svm$' /tmp/get-restored.out && grep -q 'guest_mode=yes' /tmp/get-restored.out &&
        [ -n "$restored_vmcb" ] && [ "$restored_vmcb" = "$saved_vmcb" ]
result restored_vcpu_in_guest_mode_same_vmcb $? "vmcb saved: $saved_vmcb restored: $restored_vmcb" \
        "$(cat /tmp/get-restored.out)"
ctl --json vm nested-state get l1r 0 >/tmp/get-restored.json 2>&1
tr -d ' \n' </tmp/get-restored.json | grep -q "\"vmcb_pa\":$((saved_vmcb))"
result restored_nested_state_json_vmcb_pa $? "$(head -c 600 /tmp/get-restored.json)"

ctl vm resume l1r >/tmp/resume.out 2>&1
result resume_restored $? "$(cat /tmp/resume.out)"
wait_console l1r '^svm-l2: done$' 90
rc=$?
ctl vm console l1r | grep -q "^svm-l2: vmexit code=0x81 counter=$LOOPS\$"
result l1_sees_vmmcall_exit_after_restore $((rc + $?)) "ticks at pause $before" "$(ctl vm console l1r 2>&1 | tail -4)"
first=$(ctl vm console l1r | sed -n 's/^l2 tick \([0-9]*\)$/\1/p' | head -1)
# A pause can cut a line the guest was writing: the saved console ends with its start ("l2 t"),
# the restored one begins with the rest ("ick 15"). That rest is the tick after the saved ones.
head1=$(ctl vm console l1r | head -1)
if [ -n "$head1" ] && [ "${head1#l2 tick }" = "$head1" ]; then
        case "l2 tick $((before + 1))" in *"$head1") first=$((before + 1)) ;; esac
fi
last=$(ctl vm console l1r | sed -n 's/^l2 tick \([0-9]*\)$/\1/p' | tail -1)
# the restored console starts empty: its first tick is the one after the last before the pause
[ -n "$first" ] && [ "$first" -eq $((before + 1)) ] && [ "$last" = "$TOTAL" ] &&
        ! ctl vm console l1r | grep -q '^svm-l2: vmcb='
result l2_continued_from_saved_tick $? "ticks at pause $before, after restore first $first last $last" \
        "$(ctl vm console l1r 2>&1 | head -4)"

ctl events --limit 1000 >/tmp/events.out 2>&1
grep -q "restore" /tmp/events.out
result restore_recorded_as_event $? "$(tail -5 /tmp/events.out)"
kill %1 2>/dev/null
exit $failed
