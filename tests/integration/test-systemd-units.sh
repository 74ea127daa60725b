#!/bin/bash
# The systemd units pass systemd-analyze verify (with ExecStart pointed at the built binaries),
# kvmfleetd.service keeps VMMs alive across agent restarts, its hardening stays at the exposure
# level docs/hardening.md documents, and the sysusers/tmpfiles snippets create what they promise
# in a scratch root.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$top/${BUILD:-build}
failed=0
if ! command -v systemd-analyze >/dev/null; then
        echo "skip - systemd_units_verify: systemd-analyze is not installed"
        exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
result() { # status name [details...]
        local st=$1 name=$2
        shift 2
        if [ "$st" -eq 0 ]; then
                echo "ok - $name"
        else
                [ $# -gt 0 ] && printf '%s\n' "$@" | sed 's/^/#   /'
                echo "not ok - $name"
                failed=1
        fi
}
for unit in "$top"/systemd/*.service; do
        name=$(basename "$unit")
        sed -e "s|/usr/sbin/|$build/|g" -e "s|/usr/bin/kvmfleetctl|$build/kvmfleetctl|g" "$unit" >"$tmp/$name"
        # man: pages are checked once installed (tests/integration/test-deb-package.sh)
        out=$(systemd-analyze verify --man=no "$tmp/$name" 2>&1) && [ -z "$out" ]
        result $? "verify_$name" "$out"
done
u=$top/systemd/kvmfleetd.service
grep -qx 'KillMode=process' "$u" && grep -qx 'Type=notify' "$u" && grep -q '^WatchdogSec=' "$u" &&
        grep -qx 'RuntimeDirectoryPreserve=yes' "$u" && grep -qx 'StateDirectory=kvmfleet' "$u"
result $? kvmfleetd_unit_lets_vmms_outlive_the_agent

# What the agent and its VMMs need must stay allowed by the sandbox.
needs=(
        'DeviceAllow=/dev/kvm rw'
        'ReadWritePaths=-/sys/kernel/tracing'
        'CapabilityBoundingSet=CAP_SYS_MODULE CAP_SYS_RAWIO'
        'SupplementaryGroups=kvmfleet'
)
missing=()
for n in "${needs[@]}"; do grep -qxF "$n" "$u" || missing+=("$n"); done
grep -q '^SystemCallFilter=.*@module' "$u" || missing+=("SystemCallFilter with @module (kvmfleet-load --reload)")
[ ${#missing[@]} -eq 0 ]
result $? kvmfleetd_sandbox_allows_kvm_tracefs_and_reload "missing: ${missing[*]:-}"

# The documented exposure levels (docs/hardening.md); a weaker unit fails here.
for pair in kvmfleetd.service:2.6 kvmfleet-load.service:2.7; do
        name=${pair%%:*} max=${pair#*:}
        out=$(systemd-analyze security --offline=true "$tmp/$name" 2>&1)
        level=$(echo "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
        [ -n "$level" ] && awk -v l="$level" -v m="$max" 'BEGIN { exit !(l <= m) }'
        result $? "exposure_${name}_at_most_$max" "level ${level:-unknown}" "$(echo "$out" | grep '✗')"
done
grep -q "kvmfleetd.service: exposure level 2.6" "$top/docs/hardening.md"
result $? hardening_doc_states_the_current_level

root=$tmp/root
mkdir -p "$root/etc"
out=$(systemd-sysusers --root="$root" "$top/systemd/kvmfleet.sysusers" 2>&1) && grep -q '^kvmfleet:x:[0-9]*:$' "$root/etc/group"
result $? sysusers_creates_kvmfleet_group "$out"
out=$(systemd-tmpfiles --root="$root" --create "$top/systemd/kvmfleet.tmpfiles" 2>&1) &&
        [ "$(stat -c %a:%U "$root/var/lib/kvmfleet")" = 750:root ] && [ "$(stat -c %a:%U "$root/run/kvmfleet")" = 755:root ]
result $? tmpfiles_create_state_and_runtime_dirs "$out"
exit $failed
