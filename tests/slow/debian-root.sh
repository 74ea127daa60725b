#!/bin/bash
# Sourced by the package and Ansible tests: a Debian 12 root made with debootstrap from Debian's
# mirror, cached as a tarball under $KVMFLEET_CACHE (like the test host's kernel) so reruns only
# unpack it. It holds the shared libraries kvmfleet links against, systemd's tools and python3,
# so a .deb installs with dpkg alone and Ansible can drive it through the chroot connection.
DEBROOT_CACHE=${KVMFLEET_CACHE:-/var/cache/kvmfleet-test}
DEBROOT_MIRROR=${KVMFLEET_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBROOT_INCLUDE=systemd,python3,python3-apt,libmicrohttpd12,libjson-c5,libsqlite3-0,libxml2,libkmod2,libcurl4,curl
DEBROOT_TARBALL=$DEBROOT_CACHE/debian12-root-v2.tar.gz

# Prints the cached tarball's path, building it when missing (a few minutes, once).
debroot_tarball() {
        if [ -s "$DEBROOT_TARBALL" ]; then
                echo "$DEBROOT_TARBALL"
                return 0
        fi
        command -v debootstrap >/dev/null || { echo "debootstrap is not installed" >&2; return 1; }
        mkdir -p "$DEBROOT_CACHE" || return 1
        local tmp
        tmp=$(mktemp -d --tmpdir="$DEBROOT_CACHE") || return 1
        if ! debootstrap --variant=minbase --include="$DEBROOT_INCLUDE" bookworm "$tmp/root" "$DEBROOT_MIRROR" \
                >"$tmp/debootstrap.log" 2>&1; then
                echo "debootstrap failed; last lines of its log:" >&2
                tail -n 20 "$tmp/debootstrap.log" >&2
                rm -rf "$tmp"
                return 1
        fi
        rm -rf "$tmp/root/var/cache/apt/archives/"*.deb "$tmp/root/var/lib/apt/lists/"*
        tar -C "$tmp/root" -czf "$tmp/root.tar.gz" . && mv "$tmp/root.tar.gz" "$DEBROOT_TARBALL"
        local rc=$?
        rm -rf "$tmp"
        [ $rc -eq 0 ] && echo "$DEBROOT_TARBALL"
}

# Unpacks a fresh root into $1 (an empty directory).
debroot_unpack() {
        local tarball
        tarball=$(debroot_tarball) || return 1
        tar -C "$1" -xzf "$tarball"
        # Keep maintainer scripts from starting services inside the chroot.
        printf '#!/bin/sh\nexit 101\n' >"$1/usr/sbin/policy-rc.d"
        chmod 755 "$1/usr/sbin/policy-rc.d"
}

# Mounts /proc, /sys and /dev for a root unpacked by debroot_unpack; debroot_umount undoes it.
debroot_mount() {
        mount -t proc proc "$1/proc" && mount --rbind /sys "$1/sys" && mount --make-rslave "$1/sys" &&
                mount --rbind /dev "$1/dev" && mount --make-rslave "$1/dev"
}

# Kills every process whose root directory is $1 (agents or VMMs a test started in the root and
# lost track of): such a process would hold host resources, e.g. the tracefs instance, for later tests.
debroot_kill_processes() {
        local p root
        root=$(realpath "$1") || return 0
        for p in /proc/[0-9]*; do
                [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -KILL "${p#/proc/}" 2>/dev/null
        done
        return 0
}

debroot_umount() {
        local d
        debroot_kill_processes "$1"
        for d in dev sys proc; do
                mountpoint -q "$1/$d" && umount -R "$1/$d"
        done
        return 0
}
