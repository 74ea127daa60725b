#!/bin/bash
# The test host: boots Debian's 6.1 cloud kernel under QEMU TCG (AuthenticAMD with svm, 2 CPUs) with an
# initramfs holding busybox, the KVM modules, the project's binaries and a test script, and relays the
# script's "ok - / not ok - / skip -" lines from the serial console. See tests/hostvm/README.md.
#
#   tests/hostvm/hostvm.sh [--timeout SEC] [--file SRC[:DEST]]... [--append ARGS] [--smp N] [--mem MB] SCRIPT
#
# Or source it and call hostvm_run with the same arguments. Exit status: the script's own status, or 1
# when the VM timed out, printed no result line, or could not be prepared.
set -u

HOSTVM_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HOSTVM_CACHE=${KVMFLEET_CACHE:-/var/cache/kvmfleet-test}
HOSTVM_BUILD=${BUILD:-build}
case "$HOSTVM_BUILD" in /*) ;; *) HOSTVM_BUILD=$HOSTVM_TOP/$HOSTVM_BUILD ;; esac
# Modules put into the initramfs with their dependencies (irqbypass comes with kvm).
HOSTVM_MODULES=${HOSTVM_MODULES:-kvm kvm-amd cpuid msr}

hostvm_log() { echo "# hostvm: $*" >&2; }
hostvm_die() { echo "# hostvm: error: $*" >&2; return 1; }

# Prints the path of the cached kernel package, downloading it when the cache has none.
hostvm_fetch_kernel() {
        local deb pkg
        mkdir -p "$HOSTVM_CACHE" || { hostvm_die "cannot create $HOSTVM_CACHE"; return 1; }
        deb=$(ls "$HOSTVM_CACHE"/linux-image-6.1.0-*-cloud-amd64_*_amd64.deb 2>/dev/null | sort -V | tail -n 1)
        if [ -n "$deb" ]; then
                echo "$deb"
                return 0
        fi
        pkg=$(apt-cache pkgnames linux-image-6.1.0- 2>/dev/null | grep -E '^linux-image-6\.1\.0-[0-9]+-cloud-amd64$' | sort -V | tail -n 1)
        if [ -z "$pkg" ]; then
                hostvm_die "no linux-image-6.1.0-*-cloud-amd64 package known to apt (run apt-get update) and none cached in $HOSTVM_CACHE"
                return 1
        fi
        hostvm_log "downloading $pkg into $HOSTVM_CACHE"
        if ! (cd "$HOSTVM_CACHE" && apt-get download -q "$pkg" >&2); then
                hostvm_die "apt-get download $pkg failed and $HOSTVM_CACHE has no cached kernel package"
                return 1
        fi
        deb=$(ls "$HOSTVM_CACHE"/"$pkg"_*_amd64.deb 2>/dev/null | sort -V | tail -n 1)
        [ -n "$deb" ] || { hostvm_die "apt-get download left no $pkg package in $HOSTVM_CACHE"; return 1; }
        echo "$deb"
}

# Unpacks the package once (with modules.dep built by depmod) and prints the unpacked root.
hostvm_unpack_kernel() {
        local deb=$1 root rel
        root=$HOSTVM_CACHE/$(basename "$deb" .deb)
        if [ ! -f "$root/.unpacked" ]; then
                rm -rf "$root"
                mkdir -p "$root" && dpkg-deb -x "$deb" "$root" || { hostvm_die "dpkg-deb -x $deb failed"; return 1; }
                rel=$(ls "$root/lib/modules" | head -n 1)
                depmod -b "$root" "$rel" || { hostvm_die "depmod for $rel failed"; return 1; }
                touch "$root/.unpacked"
        fi
        echo "$root"
}

# Copies a module and everything it depends on (per modules.dep) into the initramfs tree.
hostvm_copy_module() {
        local root=$1 rel=$2 dest=$3 name=$4 line path dep
        local moddir=$root/lib/modules/$rel
        line=$(grep -E "/${name//[-_]/[-_]}\.ko(\.xz|\.zst|\.gz)?:" "$moddir/modules.dep" | head -n 1)
        [ -n "$line" ] || { hostvm_die "module $name not found in $moddir/modules.dep"; return 1; }
        for path in ${line%%:*} ${line#*:}; do
                [ -f "$dest/lib/modules/$rel/${path%.xz}" ] && continue
                mkdir -p "$dest/lib/modules/$rel/$(dirname "$path")"
                case "$path" in
                *.xz) xz -dc "$moddir/$path" >"$dest/lib/modules/$rel/${path%.xz}" ;;
                *) cp "$moddir/$path" "$dest/lib/modules/$rel/$path" ;;
                esac
        done
}

# Copies an executable and the shared libraries ldd names for it.
hostvm_copy_binary() {
        local src=$1 dest=$2 target=$3 lib
        mkdir -p "$dest$(dirname "$target")"
        cp "$src" "$dest$target" || return 1
        for lib in $(ldd "$src" 2>/dev/null | grep -oE '/[^ ]+'); do
                [ -f "$dest$lib" ] && continue
                mkdir -p "$dest$(dirname "$lib")"
                cp -L "$lib" "$dest$lib" || return 1
        done
}

hostvm_run() {
        local timeout=120 smp=2 mem=1024 append="" script="" files=()
        while [ $# -gt 0 ]; do
                case "$1" in
                --timeout) timeout=$2; shift 2 ;;
                --file) files+=("$2"); shift 2 ;;
                --append) append=$2; shift 2 ;;
                --smp) smp=$2; shift 2 ;;
                --mem) mem=$2; shift 2 ;;
                -*) hostvm_die "unknown option $1"; return 1 ;;
                *) script=$1; shift ;;
                esac
        done
        [ -f "$script" ] || { hostvm_die "no test script given (or $script missing)"; return 1; }

        local deb root rel work initrd log f b
        deb=$(hostvm_fetch_kernel) || return 1
        root=$(hostvm_unpack_kernel "$deb") || return 1
        rel=$(ls "$root/lib/modules" | head -n 1)
        work=$(mktemp -d)
        # shellcheck disable=SC2064
        trap "rm -rf '$work'" RETURN
        local tree=$work/root
        mkdir -p "$tree"/{bin,sbin,dev,proc,sys,run,tmp,etc,usr/sbin,usr/bin,lib/modules/"$rel"}
        cp /bin/busybox "$tree/bin/busybox" || { hostvm_die "busybox-static is not installed"; return 1; }
        for m in $HOSTVM_MODULES; do
                hostvm_copy_module "$root" "$rel" "$tree" "$m" || return 1
        done
        cp "$root/lib/modules/$rel"/modules.{order,builtin,builtin.modinfo} "$tree/lib/modules/$rel/" 2>/dev/null
        depmod -b "$tree" "$rel" || { hostvm_die "depmod for the initramfs failed"; return 1; }
        for b in "$HOSTVM_BUILD"/kvmfleet-* "$HOSTVM_BUILD"/kvmfleetd "$HOSTVM_BUILD"/kvmfleetctl; do
                [ -x "$b" ] && [ -f "$b" ] || continue
                hostvm_copy_binary "$b" "$tree" "/usr/sbin/$(basename "$b")" || { hostvm_die "cannot copy $b"; return 1; }
        done
        for f in "${files[@]}"; do
                local src=${f%%:*} dst=${f#*:}
                [ "$dst" = "$f" ] && dst=/$(basename "$src")
                mkdir -p "$tree$(dirname "$dst")"
                cp -r "$src" "$tree$dst" || { hostvm_die "cannot copy $src"; return 1; }
        done
        cp "$script" "$tree/test.sh"
        cp "$HOSTVM_TOP/tests/hostvm/guest/lib.sh" "$tree/lib.sh"
        mknod -m 600 "$tree/dev/console" c 5 1 2>/dev/null
        cat >"$tree/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
exec </dev/console >/dev/console 2>&1
echo "HOSTVM-START"
start=$(cut -d' ' -f1 /proc/uptime)
sh /test.sh
rc=$?
echo "HOSTVM-DONE rc=$rc uptime_start=$start uptime_end=$(cut -d' ' -f1 /proc/uptime)"
sync
poweroff -f
INIT
        chmod +x "$tree/init"
        initrd=$work/initrd.gz
        (cd "$tree" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd" || { hostvm_die "cpio failed"; return 1; }

        log=$work/console.log
        local t0=$SECONDS
        timeout "$timeout" qemu-system-x86_64 -accel tcg,thread=single -cpu max -smp "$smp" -m "$mem" \
                -nographic -no-reboot -kernel "$root/boot/vmlinuz-$rel" -initrd "$initrd" \
                -append "console=ttyS0 panic=-1 quiet $append" </dev/null >"$log" 2>&1
        local qrc=$? elapsed=$((SECONDS - t0))
        tr -d '\r' <"$log" >"$log.txt"
        # The guest's own output, for the test log; result lines are relayed as they are.
        grep -vE '^(ok|not ok|skip) - ' "$log.txt" | sed 's/^/#   guest: /'
        grep -E '^(ok|not ok|skip) - ' "$log.txt"
        local done_line
        done_line=$(grep -E '^HOSTVM-DONE rc=' "$log.txt" | tail -n 1)
        echo "# hostvm: kernel $rel, initramfs $(du -k "$initrd" | cut -f1) KiB, qemu ran ${elapsed}s (exit $qrc); $done_line"
        if [ $qrc -eq 124 ]; then
                echo "not ok - hostvm: the VM timed out after ${timeout}s"
                return 1
        fi
        if ! grep -qE '^(ok|not ok|skip) - ' "$log.txt"; then
                echo "not ok - hostvm: the VM printed no result line"
                return 1
        fi
        [ -n "$done_line" ] || { echo "not ok - hostvm: the test script did not finish"; return 1; }
        local rc=${done_line#HOSTVM-DONE rc=}
        rc=${rc%% *}
        [ "$rc" = 0 ] && ! grep -qE '^not ok - ' "$log.txt"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
        hostvm_run "$@"
        exit $?
fi
