# Runs inside the test host (busybox sh): live APICv/AVIC inhibits of concurrent VMs on kvm-amd, 6.1.
# Phase "off": kvm_amd.avic=1 as asked (TCG's CPU has no AVIC, so KVM keeps it off). Phase "forced":
# kvm_amd.force_avic=1, which makes KVM drive AVIC and honour every inhibit (not real AVIC: QEMU
# ignores the AVIC controls, so only the inhibit bookkeeping is real).
. /lib.sh
TRACEFS=/sys/kernel/tracing

write_conf() { # extra [kvm] lines
        mkdir -p /etc/kvmfleet /var/lib/kvmfleet
        printf '[agent]\nvmm_binary = /usr/sbin/kvmfleet-vmm\nkvm_load_binary = /usr/sbin/kvmfleet-load\nvm_max_vcpus = 2\n\n[kvm]\n%s\n' "$1" >/etc/kvmfleet/kvmfleetd.conf
}

# Creates and starts VMs concurrently; each argument is NAME:IRQCHIP:REINJECT.
vms_start() {
        for v in "$@"; do
                n=${v%%:*} rest=${v#*:}
                printf '{"name":"%s","vcpus":1,"memory":"2MiB","boot":{"kernel":"/hello.elf","cmdline":"halt=1"},"irqchip":"%s","pit":{"reinject":%s}}' \
                        "$n" "${rest%%:*}" "${rest#*:}" >"/tmp/$n.spec"
                ctl vm create --file "/tmp/$n.spec" --start >"/tmp/$n.create" 2>&1 &
        done
        wait_rc=0
        for j in $(jobs -p); do [ "$j" = "$agent_pid" ] || wait "$j" || wait_rc=1; done
        return $wait_rc
}

# GET /v1/vms/NAME/apicv, flattened to one line in /tmp/NAME.json; sets live_inhibits, live_names,
# live_events, live_history ("set:2:ABSENT:4 cleared:2:ABSENT:0 ...").
apicv_get() {
        ctl --json vm apicv show "$1" 2>&1 | tr -d ' \n' >"/tmp/$1.json"
        local live
        live=$(sed 's/.*"live"://' "/tmp/$1.json")
        live_inhibits=$(echo "$live" | grep -o '"inhibits":[0-9a-z]*' | head -n 1 | cut -d: -f2)
        live_names=$(echo "$live" | grep -o '"names":\[[^]]*\]' | head -n 1 | sed 's/"names":\[//; s/\]//; s/"//g')
        live_events=$(echo "$live" | grep -o '"events":[0-9]*' | head -n 1 | cut -d: -f2)
        live_history=$(echo "$live" | grep -o '"change":"[a-z]*","reason":[0-9]*,"reason_name":"[A-Z_0-9]*","inhibits":[0-9]*' |
                sed 's/"change":"\([a-z]*\)","reason":\([0-9]*\),"reason_name":"\([^"]*\)","inhibits":\([0-9]*\)/\1:\2:\3:\4/' | tr '\n' ' ' | sed 's/ $//')
        inferred=$(grep -o '"inferred":\[[^]]*\]' "/tmp/$1.json" | grep -o '"reason":"[A-Z_]*"' | cut -d'"' -f4 | tr '\n' ',' | sed 's/,$//')
}
# Waits (up to 3 s: the agent's reader polls trace_pipe every 250 ms) until VM's live history is WANT.
apicv_wait_history() {
        local k=0
        while :; do
                apicv_get "$1"
                [ "$live_history" = "$2" ] && return 0
                [ $k -ge 30 ] && return 1
                sleep 0.1
                k=$((k + 1))
        done
}
observed() { echo "inhibits=$live_inhibits names=[$live_names] events=$live_events inferred=[$inferred]" "history: $live_history"; }
# VM, expected history, expected bitmap, expected names, test name suffix
expect_live() {
        apicv_wait_history "$1" "$2"
        [ "$live_history" = "$2" ] && [ "$live_inhibits" = "$3" ] && [ "$live_names" = "$4" ]
        local st=$?
        echo "# $1: $(observed)"
        result "$5" $st "want history: $2" "want inhibits=$3 names=[$4]" "$(tail -n 5 /tmp/agent.log)"
}
has() { case ",$1," in *",$2,"*) return 0 ;; esac; return 1; }

# ---- phase 1: avic=1 as asked ----
write_conf "kvm_amd.avic = 1"
kvmfleet-load -c /etc/kvmfleet/kvmfleetd.conf >/tmp/load.out 2>&1
result modules_loaded $? "$(cat /tmp/load.out)"
avic=$(param kvm_amd avic)
echo "# kvm_amd.avic=1 requested: effective avic=$avic force_avic=$(param kvm_amd force_avic)"
agent_start
ctl health >/dev/null 2>&1
result agent_answers $? "$(cat /tmp/agent.log)"

fmt=$(grep 'print fmt' $TRACEFS/events/kvm/kvm_apicv_inhibit_changed/format 2>&1)
echo "# tracepoint $fmt"
case "$fmt" in
*__print_flags*) table_want="tracepointformat" ;;
*) table_want="built-intableforlinux6.1(" ;; # the JSON was flattened without spaces
esac

if [ "$avic" = N ]; then
        vms_start off-kernel:kernel:true off-none:none:true
        result two_vms_start_at_once_avic_off $? "$(cat /tmp/off-kernel.create /tmp/off-none.create)"
        # APICv off: creation sets ABSENT then DISABLED; KVM ignores every later change (KVM_CREATE_IRQCHIP,
        # the PIT's reinjection) while enable_apicv is false, so nothing else is traced.
        expect_live off-kernel "set:2:ABSENT:4 set:0:DISABLED:5" 5 "DISABLED,ABSENT" live_creation_inhibits_avic_off_irqchip_kernel
        has "$inferred" DISABLED && has "$inferred" PIT_REINJ && ! has "$inferred" ABSENT
        result inferred_disabled_and_pit_reinj_avic_off $? "inferred=[$inferred]"
        grep -qF "\"reason_table\":\"$table_want" /tmp/off-kernel.json
        result reason_table_for_6_1 $? "want $table_want" "$(grep -o '"reason_table":"[^"]*"' /tmp/off-kernel.json)"
        expect_live off-none "set:2:ABSENT:4 set:0:DISABLED:5" 5 "DISABLED,ABSENT" live_creation_inhibits_avic_off_irqchip_none
        has "$inferred" ABSENT && has "$inferred" DISABLED
        result irqchip_none_infers_absent_avic_off $? "inferred=[$inferred]"
        # pit_reinject changes the configuration but, with APICv off, not KVM's bitmap
        ctl vm apicv set off-kernel --pit-reinject off >/tmp/patch.out 2>&1
        rc=$?
        sleep 0.6
        apicv_get off-kernel
        echo "# off-kernel after pit_reinject off: $(observed)"
        [ $rc -eq 0 ] && [ "$live_history" = "set:2:ABSENT:4 set:0:DISABLED:5" ] && ! has "$inferred" PIT_REINJ &&
                grep -q '"reinject":false' /tmp/off-kernel.json
        result pit_reinject_patch_avic_off_leaves_bitmap $? "rc=$rc $(cat /tmp/patch.out)"
        ctl vm stop off-kernel >/dev/null 2>&1
        ctl vm stop off-none >/dev/null 2>&1
        agent_stop

        # ---- phase 2: force_avic ----
        write_conf "kvm_amd.avic = 1
kvm_amd.force_avic = 1"
        kvmfleet-load --reload -c /etc/kvmfleet/kvmfleetd.conf >/tmp/load.out 2>&1
        rc=$?
        echo "# kvm_amd.force_avic=1: effective avic=$(param kvm_amd avic) force_avic=$(param kvm_amd force_avic); $(dmesg | grep -i 'avic' | tail -n 1)"
        [ $rc -eq 0 ] && [ "$(param kvm_amd avic)" = Y ]
        result force_avic_reload $? "rc=$rc" "$(cat /tmp/load.out)"
        agent_start
        mode=forced
else
        echo "# the CPU has AVIC: kvm_amd.avic=1 took effect, no force_avic needed"
        echo "skip - live_creation_inhibits_avic_off_irqchip_kernel: kvm_amd.avic=1 is in effect (the CPU has AVIC)"
        mode=real
fi

# ---- AVIC on: every inhibit is honoured ----
vms_start "$mode-reinj:kernel:true" "$mode-noreinj:kernel:false" "$mode-none:none:true"
result three_vms_start_at_once_avic_on $? "$(cat /tmp/$mode-*.create)"
apicv_get "$mode-reinj"
grep -q '"effective":true' "/tmp/$mode-reinj.json" && ! has "$inferred" DISABLED && has "$inferred" PIT_REINJ
result host_effective_without_disabled_inferred $? "$(grep -o '"host":{[^}]*' /tmp/$mode-reinj.json)" "inferred=[$inferred]"
# KVM_CREATE_VM sets ABSENT, KVM_CREATE_IRQCHIP clears it, KVM_CREATE_PIT2 starts with reinjection on
# (PIT_REINJ), and the VMM's KVM_REINJECT_CONTROL keeps or clears it; irqchip none keeps ABSENT.
expect_live "$mode-reinj" "set:2:ABSENT:4 cleared:2:ABSENT:0 set:8:PIT_REINJ:256" 256 PIT_REINJ live_irqchip_and_pit_reinj_per_vm
expect_live "$mode-noreinj" "set:2:ABSENT:4 cleared:2:ABSENT:0 set:8:PIT_REINJ:256 cleared:8:PIT_REINJ:0" 0 "" live_pit_reinject_off_per_vm
expect_live "$mode-none" "set:2:ABSENT:4" 4 ABSENT live_irqchip_none_absent_per_vm
has "$inferred" ABSENT && ! has "$inferred" PIT_REINJ
result irqchip_none_infers_absent $? "inferred=[$inferred]"

ctl vm apicv set "$mode-reinj" --pit-reinject off >/tmp/patch.out 2>&1
rc=$?
expect_live "$mode-reinj" "set:2:ABSENT:4 cleared:2:ABSENT:0 set:8:PIT_REINJ:256 cleared:8:PIT_REINJ:0" 0 "" pit_reinject_off_clears_pit_reinj
[ $rc -eq 0 ] && ! has "$inferred" PIT_REINJ
result pit_reinject_off_inference $? "rc=$rc $(cat /tmp/patch.out)" "inferred=[$inferred]"
ctl vm apicv set "$mode-reinj" --pit-reinject on >/tmp/patch.out 2>&1
rc=$?
expect_live "$mode-reinj" "set:2:ABSENT:4 cleared:2:ABSENT:0 set:8:PIT_REINJ:256 cleared:8:PIT_REINJ:0 set:8:PIT_REINJ:256" 256 PIT_REINJ pit_reinject_on_sets_pit_reinj
# the other VMs saw none of it
apicv_get "$mode-noreinj"
[ $rc -eq 0 ] && [ "$live_events" = 4 ] && [ "$live_inhibits" = 0 ]
result other_vm_unaffected_by_patch $? "rc=$rc $(cat /tmp/patch.out)" "$(observed)"

# the global buffer stays untouched: only the kvmfleet instance has the event on
glob=$(cat $TRACEFS/events/kvm/kvm_apicv_inhibit_changed/enable 2>&1)
inst=$(cat $TRACEFS/instances/kvmfleet/events/kvm/kvm_apicv_inhibit_changed/enable 2>&1)
! grep -q kvm_apicv_inhibit_changed $TRACEFS/trace && [ "$glob" = 0 ] && [ "$inst" = 1 ]
result dedicated_tracefs_instance $? "global enable=$glob instance enable=$inst" "$(grep -c kvm_apicv $TRACEFS/trace) events in the global buffer"

for n in "$mode-reinj" "$mode-noreinj" "$mode-none"; do ctl vm stop "$n" >/dev/null 2>&1; done
agent_stop
exit $failed
