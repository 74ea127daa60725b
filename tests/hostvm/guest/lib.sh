# Sourced by the test-host scripts (busybox sh; hostvm.sh puts it at /lib.sh): result lines, the CLI,
# module parameters, waits on a VM's console, the agent, and the svm-l2 guest's helpers.
failed=0

# result NAME STATUS DETAILS...: "ok - NAME", or the details on "#" lines and "not ok - NAME".
result() {
        local name=$1 st=$2
        shift 2
        if [ "$st" -eq 0 ]; then
                echo "ok - $name"
        else
                for l in "$@"; do echo "# $l"; done
                echo "not ok - $name"
                failed=1
        fi
}
ctl() { kvmfleetctl --socket /run/kvmfleet/api.sock "$@"; }
param() { cat "/sys/module/$1/parameters/$2" 2>/dev/null; }
now() { cut -d' ' -f1 /proc/uptime; }

# wait_console VM PATTERN SECONDS: until the VM's console has a line matching PATTERN. The deadline
# is in uptime seconds, not a count of steps: under TCG each kvmfleetctl call takes a noticeable part
# of a second, so counting steps would stretch the wait far beyond SECONDS.
wait_console() {
        local deadline=$(($(cut -d. -f1 /proc/uptime) + $3))
        while [ "$(cut -d. -f1 /proc/uptime)" -lt $deadline ]; do
                ctl vm console "$1" 2>/dev/null | grep -q "$2" && return 0
                sleep 0.1
        done
        return 1
}

# agent_start: kvmfleetd with /etc/kvmfleet/kvmfleetd.conf, logging to /tmp/agent.log; waits up to
# 10 s for its socket. agent_stop ends it.
agent_start() {
        rm -f /run/kvmfleet/api.sock
        kvmfleetd -c /etc/kvmfleet/kvmfleetd.conf >>/tmp/agent.log 2>&1 &
        agent_pid=$!
        local i=0
        while [ ! -S /run/kvmfleet/api.sock ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
}
agent_stop() {
        kill "$agent_pid" 2>/dev/null
        wait "$agent_pid" 2>/dev/null
}

# nested_setup: kvm-amd with nested=1 through kvmfleet-load, then the agent (result line
# modules_loaded_with_nested).
nested_setup() {
        mkdir -p /etc/kvmfleet /var/lib/kvmfleet
        printf '[agent]\nlog_level = debug\nvmm_binary = /usr/sbin/kvmfleet-vmm\nkvm_load_binary = /usr/sbin/kvmfleet-load\nvm_max_vcpus = 2\n\n[kvm]\nkvm_amd.nested = 1\n' \
                >/etc/kvmfleet/kvmfleetd.conf
        kvmfleet-load -c /etc/kvmfleet/kvmfleetd.conf >/tmp/load.out 2>&1
        result modules_loaded_with_nested $(($(param kvm_amd nested) != 1)) "$(cat /tmp/load.out)"
        agent_start
}

# The svm-l2 guest: how many "l2 tick" lines VM has printed; and vCPU 0's nested state of VM into
# file OUT, with its VMCB address on stdout.
ticks() { ctl vm console "$1" 2>/dev/null | grep -c '^l2 tick'; }
nested_get() {
        ctl vm nested-state get "$1" 0 >"$2" 2>&1
        sed -n 's/^VMCB: *\(0x[0-9a-f]*\)$/\1/p' "$2"
}
