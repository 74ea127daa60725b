#!/bin/bash
# The Ansible role and rollout playbook for real: ansible-lint clean; rollout.yml applied with the
# chroot connection to a fresh Debian 12 root (debootstrap, cached) installs the package, writes
# the config and KVM parameters, runs kvmfleet-load, starts the agent and waits for /v1/health;
# a second run changes nothing; the fingerprint module groups the host; a host whose agent is
# down stops the rollout.
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
                [ $# -gt 0 ] && printf '%s\n' "$@" | tail -n 60 | sed 's/^/#   /'
                echo "not ok - $name"
                failed=1
        fi
}
for tool in ansible-playbook ansible-lint dpkg-buildpackage; do
        command -v $tool >/dev/null || { echo "skip - ansible_role: $tool is not installed (make deps)"; exit 0; }
done
if [ ! -s "$DEBROOT_TARBALL" ] && ! command -v debootstrap >/dev/null; then
        echo "skip - ansible_role: no cached Debian root in $DEBROOT_CACHE and debootstrap is not installed"
        exit 0
fi
cd "$top/ansible"
ANSIBLE_LOCAL_TEMP=$(mktemp -d)
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_LOCAL_TEMP ANSIBLE_HOME=$ANSIBLE_LOCAL_TEMP

out=$(ansible-lint --nocolor 2>&1)
result $? ansible_lint_clean "$out"

version=$(cat "$top/VERSION")+ansible
out=$(cd "$top" && make --no-print-directory deb BUILD="$build" DEB_VERSION="$version" 2>&1)
deb=$(echo "$out" | tail -n 1)
[ -f "$deb" ] || { result 1 deb_for_ansible "$out"; exit 1; }

root=$(mktemp -d /var/tmp/kvmfleet-ansible.XXXXXX)
cleanup() {
        local pid
        pid=$(cat "$root/run/kvmfleet/kvmfleetd.pid" 2>/dev/null) && kill "$pid" 2>/dev/null
        sleep 0.2
        debroot_umount "$root"
        rm -rf "$root" "$ANSIBLE_LOCAL_TEMP"
}
trap cleanup EXIT
debroot_unpack "$root" && debroot_mount "$root"
result $? debian12_root_ready
inv=$ANSIBLE_LOCAL_TEMP/inventory
printf '[kvmfleet]\ntarget ansible_connection=community.general.chroot ansible_host=%s\n' "$root" >"$inv"
play() {
        ansible-playbook -i "$inv" rollout.yml -e kvmfleet_package_path="$deb" -e kvmfleet_systemd=false \
                -e '{"kvmfleet_agent_config": {"socket_group": "kvmfleet", "log_level": "info", "threads": 2}}' "$@" 2>&1
}
recap() { echo "$1" | sed -n 's/^target *: *//p'; }

start=$SECONDS
out1=$(play)
rc=$?
r=$(recap "$out1")
[ $rc -eq 0 ] && echo "$r" | grep -q 'failed=0' && echo "$r" | grep -q 'unreachable=0'
result $? "first_run_succeeds ($((SECONDS - start)) s)" "$out1"
grep -q '^threads = 2$' "$root/etc/kvmfleet/kvmfleetd.conf" && [ -S "$root/run/kvmfleet/api.sock" ] &&
        [ -s "$root/run/kvmfleet/kvm-setup.json" ] && chroot "$root" dpkg-query -W -f='${Version}' kvmfleet | grep -qx "$version"
result $? first_run_installed_configured_loaded_started "$(cat "$root/etc/kvmfleet/kvmfleetd.conf" 2>&1)"
echo "$out1" | grep -q 'kvmfleet_kvm_[0-9a-f]\{12\}: target'
result $? hosts_grouped_by_kvm_fingerprint "$(echo "$out1" | grep -A3 'Show which hosts')"

start=$SECONDS
out2=$(play)
r=$(recap "$out2")
echo "$r" | grep -q 'changed=0' && echo "$r" | grep -q 'failed=0'
result $? "second_run_changes_nothing ($((SECONDS - start)) s)" "$r" "$(echo "$out2" | grep -B2 -A6 '^changed:')"

# The fingerprint follows the KVM parameters: the same module call, the same answer twice.
fp() {
        ansible -i "$inv" target -M roles/kvmfleet/library -m kvmfleet_kvm_fingerprint 2>&1 | sed -n 's/.*"fingerprint": "\([0-9a-f]*\)".*/\1/p'
}
a=$(fp) b=$(fp)
[ ${#a} -eq 64 ] && [ "$a" = "$b" ]
result $? fingerprint_module_is_stable "'$a' '$b'"

# A host whose agent does not come up stops the rollout (no retries beyond the timeout).
[ -f "$root/run/kvmfleet/kvmfleetd.pid" ] || { result 1 broken_host_fails_the_rollout "the first run left no agent"; exit 1; }
pid=$(cat "$root/run/kvmfleet/kvmfleetd.pid")
kill "$pid"
sleep 0.3
chmod 000 "$root/usr/sbin/kvmfleetd"
chroot "$root" sh -c 'rm -f /run/kvmfleet/kvmfleetd.pid'
out3=$(play -e kvmfleet_health_timeout=2)
rc=$?
chmod 755 "$root/usr/sbin/kvmfleetd"
[ $rc -ne 0 ] && recap "$out3" | grep -q 'failed=1'
result $? broken_host_fails_the_rollout "$out3"
exit $failed
