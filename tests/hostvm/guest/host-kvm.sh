# Runs inside the test host (busybox sh): kvmfleetd's /v1/host/kvm policy on modular kvm-amd.
. /lib.sh

nested_setup
ctl health >/dev/null 2>&1
result agent_answers $? "$(cat /tmp/agent.log)"

ctl host kvm >/tmp/kvm.out 2>&1
grep -q "kvm_amd.nested effective 1" /tmp/kvm.out
result nested_parameter_shown $? "$(cat /tmp/kvm.out)"
ctl --json host kvm 2>&1 | tr -d ' \n' >/tmp/kvm.json
grep -q '"name":"allow_unsafe_mappings"' /tmp/kvm.json && grep -q '"present":false' /tmp/kvm.json &&
        grep -q "noallow_unsafe_mappingsparameter" /tmp/kvm.json
result unsafe_mappings_absent_on_this_kernel $? "$(grep -o '"allow_unsafe_mappings":{[^}]*}' /tmp/kvm.json)"
grep -q '"feature":"avic"' /tmp/kvm.json
result avic_cpu_feature_reported $? "$(grep -o '"cpu":{[^}]*}' /tmp/kvm.json)"

# this kernel has no kvm.allow_unsafe_mappings: asking for it is refused as unknown, with or without
# the acknowledgement (the acknowledgement itself is tested where the parameter exists)
ctl host kvm set kvm.allow_unsafe_mappings=1 --acknowledge-unsafe >/tmp/unsafe.out 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q 'no parameter "allow_unsafe_mappings" on this kernel' /tmp/unsafe.out
result unknown_parameter_refused $? "rc=$rc" "$(cat /tmp/unsafe.out)"

ctl host kvm set kvm_amd.nested=0 kvm_amd.avic=1 >/tmp/set.out 2>&1
result desired_params_recorded $? "$(cat /tmp/set.out)"

# a running VM blocks the reload
ctl vm create --name idle --memory 2MiB --kernel /hello.elf --cmdline halt=1 --start >/tmp/vm.out 2>&1
created=$?
ctl host kvm reload >/tmp/busy.out 2>&1
rc=$?
[ $created -eq 0 ] && [ $rc -eq 1 ] && grep -q "stop them before reloading" /tmp/busy.out && [ "$(param kvm_amd nested)" = 1 ]
result reload_refused_while_a_vm_runs $? "create rc=$created: $(cat /tmp/vm.out)" "reload rc=$rc: $(cat /tmp/busy.out)"
ctl vm stop idle >/dev/null 2>&1

ctl host kvm reload >/tmp/reload.out 2>&1
rc=$?
[ $rc -eq 0 ] && [ "$(param kvm_amd nested)" = 0 ]
result reload_applies_desired_params $? "rc=$rc nested=$(param kvm_amd nested)" "$(cat /tmp/reload.out)"

ctl --json host kvm 2>&1 | tr -d ' \n' >/tmp/after.json
grep -q '"name":"nested","present":true,"effective":"0","desired":"0","in_effect":true' /tmp/after.json
result nested_desired_in_effect_after_reload $? "$(grep -o '"nested":{[^]]*' /tmp/after.json | head -c 600)"
# the emulated CPU has no AVIC: kvm_amd keeps avic off, and the API says the wish is not in effect
grep -q '"name":"avic","present":true,"effective":"N","desired":"1","in_effect":false' /tmp/after.json
result avic_wish_shown_not_in_effect $? "$(grep -o '"apicv":{.*' /tmp/after.json | head -c 800)"

# the VM starts again on the reloaded modules
ctl vm start idle >/tmp/start.out 2>&1
result vm_starts_after_reload $? "$(cat /tmp/start.out)" "$(tail -5 /tmp/agent.log)"
ctl vm stop idle >/dev/null 2>&1

ctl events --limit 1000 >/tmp/events.out 2>&1
grep -q "kvm_params_set" /tmp/events.out && grep -q "kvm_reload" /tmp/events.out
result events_recorded $? "$(cat /tmp/events.out)"
kill %1 2>/dev/null
exit $failed
