#!/bin/bash
# The systemd units pass systemd-analyze verify (with ExecStart pointed at the built binaries),
# and kvmfleetd.service keeps VMMs alive across agent restarts.
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
for unit in "$top"/systemd/*.service; do
        name=$(basename "$unit")
        sed -e "s|/usr/sbin/|$build/|g" -e "s|/usr/bin/kvmfleetctl|$build/kvmfleetctl|g" "$unit" >"$tmp/$name"
        if out=$(systemd-analyze verify "$tmp/$name" 2>&1) && [ -z "$out" ]; then
                echo "ok - verify_$name"
        else
                echo "$out" | sed 's/^/#   /'
                echo "not ok - verify_$name"
                failed=1
        fi
done
u=$top/systemd/kvmfleetd.service
if grep -qx 'KillMode=process' "$u" && grep -qx 'Type=notify' "$u" && grep -q '^WatchdogSec=' "$u" &&
        grep -qx 'RuntimeDirectoryPreserve=yes' "$u"; then
        echo "ok - kvmfleetd_unit_lets_vmms_outlive_the_agent"
else
        echo "not ok - kvmfleetd_unit_lets_vmms_outlive_the_agent"
        failed=1
fi
exit $failed
