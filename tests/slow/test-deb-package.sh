#!/bin/bash
# The Debian package for real: `make deb` twice with two versions, then in a fresh Debian 12 root
# (debootstrap from Debian's mirror, cached): install, check files, modes, conffile, group, units,
# run the installed agent; upgrade over it keeping the local config and the inventory; purge and
# check that nothing is left.
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
                [ $# -gt 0 ] && printf '%s\n' "$@" | sed 's/^/#   /'
                echo "not ok - $name"
                failed=1
        fi
}
for tool in dpkg-buildpackage dh lintian scdoc; do
        command -v $tool >/dev/null || { echo "skip - deb_package: $tool is not installed (make deps)"; exit 0; }
done
if [ ! -s "$DEBROOT_TARBALL" ] && ! command -v debootstrap >/dev/null; then
        echo "skip - deb_package: no cached Debian root in $DEBROOT_CACHE and debootstrap is not installed"
        exit 0
fi

base=$(cat "$top/VERSION")
v1=$base+test1 v2=$base+test2
out1=$(cd "$top" && make --no-print-directory deb BUILD="$build" DEB_VERSION="$v1" 2>&1)
deb1=$(echo "$out1" | tail -n 1)
[ -f "$deb1" ]
result $? "deb_builds_$v1" "$out1"
out2=$(cd "$top" && make --no-print-directory deb BUILD="$build" DEB_VERSION="$v2" 2>&1)
deb2=$(echo "$out2" | tail -n 1)
[ -f "$deb2" ]
result $? "deb_builds_$v2" "$out2"
[ -f "$deb1" ] && [ -f "$deb2" ] || exit 1

out=$(lintian --fail-on error "$deb2" 2>&1 | grep -E '^E: ')
[ -z "$out" ]
result $? lintian_reports_no_errors "$out"
deps=$(dpkg-deb -f "$deb2" Depends)
for lib in libmicrohttpd12 libjson-c5 libsqlite3-0 libkmod2 libsystemd0 libc6 systemd; do
        echo "$deps" | grep -q "$lib" || { result 1 depends_from_shlibs "Depends: $deps (no $lib)"; deps=; break; }
done
[ -n "$deps" ] && result 0 depends_from_shlibs

root=$(mktemp -d /var/tmp/kvmfleet-debroot.XXXXXX)
agent_pid=
cleanup() {
        [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
        debroot_umount "$root"
        rm -rf "$root"
}
trap cleanup EXIT
start=$SECONDS
debroot_unpack "$root" && debroot_mount "$root"
result $? debian12_root_ready "root in $((SECONDS - start)) s from $DEBROOT_TARBALL"
cp "$deb1" "$deb2" "$root/tmp/"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

# --- install
out=$(in_root dpkg -i "/tmp/$(basename "$deb1")" 2>&1)
result $? "install_$v1" "$out"
bad=()
expect_mode() { # path mode owner:group
        local got
        got=$(stat -c '%a %U:%G' "$root$1" 2>/dev/null)
        [ "$got" = "$2 $3" ] || bad+=("$1: ${got:-missing}, expected $2 $3")
}
expect_mode /usr/sbin/kvmfleetd 755 root:root
expect_mode /usr/sbin/kvmfleet-load 755 root:root
expect_mode /usr/bin/kvmfleetctl 755 root:root
expect_mode /usr/libexec/kvmfleet/kvmfleet-vmm 755 root:root
expect_mode /etc/kvmfleet/kvmfleetd.conf 644 root:root
expect_mode /lib/systemd/system/kvmfleetd.service 644 root:root
expect_mode /lib/systemd/system/kvmfleet-load.service 644 root:root
expect_mode /usr/lib/sysusers.d/kvmfleet.conf 644 root:root
expect_mode /usr/lib/tmpfiles.d/kvmfleet.conf 644 root:root
expect_mode /usr/share/bash-completion/completions/kvmfleetctl 644 root:root
expect_mode /var/lib/kvmfleet 750 root:root
for m in man1/kvmfleetctl.1 man8/kvmfleetd.8 man8/kvmfleet-load.8 man5/kvmfleetd.conf.5; do
        expect_mode "/usr/share/man/$m.gz" 644 root:root
done
[ ${#bad[@]} -eq 0 ]
result $? installed_files_and_modes "${bad[@]}"
grep -q '^kvmfleet:x:[0-9]*:' "$root/etc/group"
result $? group_kvmfleet_created
out=$(in_root dpkg-query -W -f='${Conffiles}' kvmfleet)
echo "$out" | grep -q '/etc/kvmfleet/kvmfleetd.conf'
result $? config_is_a_conffile "$out"
out=$(in_root systemctl is-enabled kvmfleetd.service kvmfleet-load.service 2>&1)
[ "$(echo "$out" | grep -c '^enabled$')" -eq 2 ]
result $? units_enabled "$out"
out=$(in_root kvmfleetd --version 2>&1)
[ "$out" = "kvmfleetd $v1" ]
result $? "installed_agent_runs_$v1" "$out"
out=$(zcat "$root/usr/share/man/man1/kvmfleetctl.1.gz" | grep -c 'memslot dirty-log\|vm dumpxml')
[ "$out" -ge 2 ]
result $? manpage_kvmfleetctl_installed

# The installed agent with the packaged config: API socket owned by group kvmfleet, health answers.
in_root /usr/sbin/kvmfleetd -c /etc/kvmfleet/kvmfleetd.conf >"$root/tmp/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 100); do [ -S "$root/run/kvmfleet/api.sock" ] && break; sleep 0.05; done
health=$(in_root kvmfleetctl --json health 2>&1)
# (numeric: the host's /etc/group may name the gid differently)
gid=$(sed -n 's/^kvmfleet:x:\([0-9]*\):.*/\1/p' "$root/etc/group")
sock=$(stat -c '%a %g' "$root/run/kvmfleet/api.sock" 2>/dev/null)
echo "$health" | grep -q '"checks"' && [ "$sock" = "660 $gid" ]
result $? installed_agent_serves_with_packaged_config "socket: ${sock:-missing}, kvmfleet gid ${gid:-none}" "$health" "$(cat "$root/tmp/agent.log")"
kill "$agent_pid"; wait "$agent_pid" 2>/dev/null; agent_pid=
[ -s "$root/var/lib/kvmfleet/inventory.db" ]
result $? inventory_created_in_state_dir

# --- upgrade: the local change to the conffile and the inventory stay
echo "# local change" >>"$root/etc/kvmfleet/kvmfleetd.conf"
out=$(in_root dpkg -i "/tmp/$(basename "$deb2")" 2>&1)
result $? "upgrade_${v1}_to_$v2" "$out"
out=$(in_root kvmfleetd --version 2>&1)
[ "$out" = "kvmfleetd $v2" ] && [ "$(in_root dpkg-query -W -f='${Version}' kvmfleet)" = "$v2" ]
result $? upgraded_binaries_in_place "$out"
grep -q '^# local change$' "$root/etc/kvmfleet/kvmfleetd.conf" && [ -s "$root/var/lib/kvmfleet/inventory.db" ]
result $? upgrade_keeps_local_config_and_inventory

# --- purge
out=$(in_root dpkg --purge kvmfleet 2>&1)
result $? purge "$out"
left=()
for p in /usr/sbin/kvmfleetd /usr/sbin/kvmfleet-load /usr/bin/kvmfleetctl /usr/libexec/kvmfleet /etc/kvmfleet \
        /var/lib/kvmfleet /lib/systemd/system/kvmfleetd.service /lib/systemd/system/kvmfleet-load.service \
        /etc/systemd/system/multi-user.target.wants/kvmfleetd.service \
        /etc/systemd/system/multi-user.target.wants/kvmfleet-load.service /usr/share/doc/kvmfleet \
        /usr/lib/sysusers.d/kvmfleet.conf /usr/lib/tmpfiles.d/kvmfleet.conf; do
        [ -e "$root$p" ] || [ -L "$root$p" ] && left+=("$p")
done
in_root dpkg-query -W -f='${db:Status-Status}\n' kvmfleet 2>/dev/null | grep -q '^installed' && left+=("dpkg status")
[ ${#left[@]} -eq 0 ]
result $? purge_leaves_nothing "left: ${left[*]:-}"
exit $failed
