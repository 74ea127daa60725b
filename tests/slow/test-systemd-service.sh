#!/bin/bash
# The packaged units under a real systemd: the .deb installed in a fresh Debian 12 root that boots
# systemd as PID 1 in a container (systemd-nspawn --boot, /dev/kvm bound in). kvmfleetd.service
# comes up as Type=notify with its hardening in force, answers on its socket, starts a VM whose
# journal lines carry VM_UUID; the VM survives `systemctl restart kvmfleetd` (KillMode=process) and
# the new agent re-attaches; a hung agent (SIGSTOP) is killed by the watchdog and restarted, and
# the VM runs on.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(realpath -m "$top/${BUILD:-build}")
# shellcheck source=tests/slow/debian-root.sh
. "$top/tests/slow/debian-root.sh"
failed=0
result() { # status name [details...]
        local st=$1 name=$2
        shift 2
        if [ "$st" -eq 0 ]; then
                echo "ok - $name"
        else
                [ $# -gt 0 ] && printf '%s\n' "$@" | tail -n 40 | sed 's/^/#   /'
                echo "not ok - $name"
                failed=1
        fi
}
for tool in systemd-nspawn nsenter dpkg-buildpackage; do
        command -v $tool >/dev/null || { echo "skip - systemd_service: $tool is not installed (make deps)"; exit 0; }
done
[ -c /dev/kvm ] || { echo "skip - systemd_service: no /dev/kvm on this machine"; exit 0; }
if [ ! -s "$DEBROOT_TARBALL" ] && ! command -v debootstrap >/dev/null; then
        echo "skip - systemd_service: no cached Debian root in $DEBROOT_CACHE and debootstrap is not installed"
        exit 0
fi
[ -f "$build/guests/hello.elf" ] || { echo "not ok - systemd_service: $build/guests/hello.elf is not built"; exit 1; }

version=$(cat "$top/VERSION")+svc
deb=$build/deb/kvmfleet_${version}_amd64.deb
if [ ! -f "$deb" ]; then
        out=$(cd "$top" && make --no-print-directory deb BUILD="$build" DEB_VERSION="$version" 2>&1)
        [ -f "$deb" ] || { result 1 systemd_service_deb_builds "$out"; exit 1; }
fi

root=$(mktemp -d --tmpdir=/var/tmp)
nspawn_pid=
cleanup() {
        if [ -n "$nspawn_pid" ]; then
                kill -TERM "$nspawn_pid" 2>/dev/null
                for _ in $(seq 50); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
                kill -KILL "$nspawn_pid" 2>/dev/null
                wait "$nspawn_pid" 2>/dev/null
        fi
        debroot_umount "$root"
        rm -rf "$root"
}
trap cleanup EXIT

debroot_unpack "$root" && debroot_mount "$root" || { result 1 systemd_service_root "cannot unpack $DEBROOT_TARBALL"; exit 1; }
cp "$deb" "$root/tmp/" && cp "$build/guests/hello.elf" "$root/var/lib/hello.elf"
out=$(chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg -i "/tmp/$(basename "$deb")" 2>&1)
result $? systemd_service_package_installs "$out"
debroot_umount "$root"
rm -f "$root/usr/sbin/policy-rc.d"
# The test's own settings: a short watchdog so that a hang is noticed within the test's time.
mkdir -p "$root/etc/systemd/system/kvmfleetd.service.d"
printf '[Service]\nWatchdogSec=4s\nRestartSec=1s\n' >"$root/etc/systemd/system/kvmfleetd.service.d/test.conf"
# The container has no getty to wait for, and nothing else to start.
ln -sf /dev/null "$root/etc/systemd/system/console-getty.service"

systemd-nspawn -q -D "$root" --register=no --keep-unit --boot --bind=/dev/kvm \
        >"$root.console" 2>&1 </dev/null &
nspawn_pid=$!
leader=
for _ in $(seq 150); do
        leader=$(pgrep -P "$nspawn_pid" -x systemd | head -n 1)
        [ -n "$leader" ] && break
        sleep 0.1
done
in_ct() { nsenter --target "$leader" --mount --uts --ipc --net --pid --root --wd=/ \
        /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SYSTEMD_PAGER= "$@"; }
state=
for _ in $(seq 100); do
        [ -n "$leader" ] && state=$(in_ct systemctl is-system-running 2>/dev/null)
        case "$state" in running | degraded) break ;; esac
        sleep 0.2
done
case "$state" in
running | degraded) result 0 systemd_boots_in_container ;;
*)
        result 1 systemd_boots_in_container "state: ${state:-none}" "$(tail -n 30 "$root.console")"
        exit 1
        ;;
esac

show() { in_ct systemctl show -p "$2" --value "$1"; }
out=$(in_ct systemctl start kvmfleetd.service 2>&1)
st=$?
active=$(show kvmfleetd ActiveState)
[ $st -eq 0 ] && [ "$active" = active ] && [ "$(show kvmfleetd Type)" = notify ]
result $? kvmfleetd_starts_as_notify_service "$out" "ActiveState=$active" "$(in_ct journalctl -b -u kvmfleetd --no-pager 2>&1)" \
        "$(in_ct systemctl status kvmfleet-load kvmfleetd --no-pager 2>&1)"
[ "$active" = active ] || exit 1
agent1=$(show kvmfleetd MainPID)
# hardening in force: the agent's seccomp filter and no new privileges
status=$(in_ct cat "/proc/$agent1/status")
echo "$status" | grep -q '^Seccomp:[[:space:]]*2' && echo "$status" | grep -q '^NoNewPrivs:[[:space:]]*1'
result $? kvmfleetd_runs_sandboxed "$(echo "$status" | grep -E 'Seccomp|NoNewPrivs|Cap')"

ctl() { in_ct kvmfleetctl "$@"; }
out=$(ctl vm create --name svc --memory 2MiB --kernel /var/lib/hello.elf --cmdline halt=1 --start 2>&1)
result $? vm_starts_under_the_service "$out" "$(in_ct journalctl -b -u kvmfleetd --no-pager 2>&1 | tail -n 20)"
uuid=$(ctl --json vm show svc 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])' 2>/dev/null)
vmm1=$(ctl --json vm show svc 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["vmm"]["pid"])' 2>/dev/null)
# the VMM the agent spawned stays inside the service's sandbox (seccomp filter, no new privileges)
status=$(in_ct cat "/proc/$vmm1/status" 2>&1)
echo "$status" | grep -q '^Seccomp:[[:space:]]*2' && echo "$status" | grep -q '^NoNewPrivs:[[:space:]]*1'
result $? vmm_runs_sandboxed "vmm pid $vmm1" "$(echo "$status" | grep -E 'Seccomp|NoNewPrivs|Cap')"
lines=$(in_ct journalctl -b --no-pager -o cat "VM_UUID=$uuid" 2>&1)
[ -n "$uuid" ] && echo "$lines" | grep -q "started"
result $? journal_selects_by_vm_uuid "uuid=$uuid" "$lines"

# restart: the VMM is not in the agent's kill set (KillMode=process) and is adopted again
out=$(in_ct systemctl restart kvmfleetd.service 2>&1)
agent2=$(show kvmfleetd MainPID)
state=$(ctl --json vm show svc 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["state"], d["vmm"]["pid"])' 2>/dev/null)
[ -n "$vmm1" ] && [ "$agent2" != "$agent1" ] && [ "$state" = "running $vmm1" ] && in_ct /bin/sh -c "kill -0 $vmm1" 2>/dev/null
result $? vm_survives_agent_restart "$out" "agent $agent1 -> $agent2, vm: $state (vmm was $vmm1)" \
        "$(in_ct journalctl -b --no-pager -o cat "VM_UUID=$uuid" 2>&1 | tail -n 10)"

# a hung agent: the watchdog (4 s in this test) kills it, Restart=on-failure starts a new one
restarts=$(show kvmfleetd NRestarts)
in_ct /bin/sh -c "kill -STOP $agent2" 2>/dev/null
agent3=
for _ in $(seq 100); do
        sleep 0.2
        [ "$(show kvmfleetd NRestarts)" != "$restarts" ] && [ "$(show kvmfleetd ActiveState)" = active ] &&
                agent3=$(show kvmfleetd MainPID) && break
done
wd=$(in_ct journalctl -b -u kvmfleetd --no-pager -o cat 2>&1 | grep -i watchdog)
state=$(ctl --json vm show svc 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["state"], d["vmm"]["pid"])' 2>/dev/null)
[ -n "$agent3" ] && [ -n "$wd" ] && [ "$state" = "running $vmm1" ]
result $? watchdog_restarts_a_hung_agent_and_the_vm_runs_on "NRestarts $restarts -> $(show kvmfleetd NRestarts)" \
        "watchdog lines: $wd" "vm: $state"

out=$(ctl vm delete svc --force 2>&1)
result $? vm_deleted "$out"
exit $failed
