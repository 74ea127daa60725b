#!/bin/bash
# kvmfleet-vmm boots Debian's own cloud kernel (the test host's kernel package) inside the test host,
# on the modular kvm-amd, with a tiny initramfs whose /init prints a marker and reboots through the
# keyboard controller. Checks the kernel banner and the marker on the console, the VM's end reason
# (reset), and records how long the boot took.
# VMM_LINUX_SOAK="vmm vmm-no-pv-eoi qemu qemu-no-pv-eoi" boots the same guest VMM_LINUX_BOOTS times
# (default 30) under each of those instead and counts the boots that reach /init: kvmfleet-vmm with
# KVM's paravirtual features as they are or with paravirtual EOI hidden, and QEMU -accel kvm -cpu host
# (with kvm-pv-eoi=off) as the reference (README.md has the counts).
set -u
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) build=$BUILD ;; *) build=$here/../../$BUILD ;; esac
if [ ! -x "$build/kvmfleet-vmm" ]; then
        echo "not ok - vmm_linux_boot: $BUILD/kvmfleet-vmm is not built"
        exit 1
fi
# shellcheck source=hostvm.sh
source "$here/hostvm.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

deb=$(hostvm_fetch_kernel) || { echo "not ok - vmm_linux_boot: no kernel package"; exit 1; }
root=$(hostvm_unpack_kernel "$deb") || { echo "not ok - vmm_linux_boot: cannot unpack $deb"; exit 1; }
rel=$(ls "$root/lib/modules" | head -n 1)
kernel=$root/boot/vmlinuz-$rel

# The inner guest's /init: a static program that writes the marker and asks the kernel to reboot.
cat >"$work/init.c" <<'INIT'
#include <linux/reboot.h>
#include <sys/syscall.h>
static long sys3(long n, long a, long b, long c) {
        long r;
        __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
        return r;
}
static long sys4(long n, long a, long b, long c, long d) {
        long r;
        register long r10 __asm__("r10") = d;
        __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
        return r;
}
void _start(void) {
        static const char msg[] = "KVMFLEET-INIT-REACHED\n";
        sys3(SYS_write, 1, (long) msg, sizeof msg - 1);
        sys4(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_RESTART, 0);
        for (;;)
                ;
}
INIT
mkdir -p "$work/initrd/dev"
gcc -static -nostdlib -O2 -fno-stack-protector -o "$work/initrd/init" "$work/init.c" ||
        { echo "not ok - vmm_linux_boot: cannot build the inner /init"; exit 1; }
mknod -m 600 "$work/initrd/dev/console" c 5 1 || { echo "not ok - vmm_linux_boot: mknod failed"; exit 1; }
(cd "$work/initrd" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/inner-initrd.gz"

cat >"$work/vmm-linux.sh" <<'GUEST'
# Runs inside the test host (busybox sh).
failed=0
taskset -c 0 modprobe kvm-amd || { echo "not ok - vmm_linux_boot: modprobe kvm-amd failed"; exit 1; }
[ -c /dev/kvm ] || { echo "not ok - vmm_linux_boot: no /dev/kvm"; exit 1; }
# Paravirtual EOI hidden, as for every test-host guest: under nested TCG it loses interrupts
# (README.md).
cat >/tmp/linux.json <<SPEC
{"name": "linux", "vcpus": 1, "memory": "256MiB", "cpu": {"kvm_pv": {"pv_eoi": false}},
 "boot": {"kernel": "/linux/vmlinuz", "initrd": "/linux/initrd.gz",
          "cmdline": "console=ttyS0 reboot=k panic=-1 i8042.noaux i8042.nokbd"},
 "console": {"log": "/tmp/linux-console.log"}}
SPEC
# A guest kernel that stalls under nested TCG (1 of 15 boots of this guest in the soak of
# tests/hostvm/README.md; QEMU -accel kvm 7 of 15 in the same test host) is booted again, at most
# three times; each stalled attempt is reported.
attempt=1
while :; do
        rm -f /tmp/linux-console.log /tmp/linux-status.json
        t0=$(cut -d' ' -f1 /proc/uptime)
        timeout 60 kvmfleet-vmm --spec /tmp/linux.json --control /run/linux.sock --status-file /tmp/linux-status.json
        rc=$?
        t1=$(cut -d' ' -f1 /proc/uptime)
        grep -q 'KVMFLEET-INIT-REACHED' /tmp/linux-console.log 2>/dev/null && break
        [ "$attempt" -ge 3 ] && break
        echo "# attempt $attempt: exit status $rc, /init not reached; last console lines:"
        tail -n 5 /tmp/linux-console.log 2>/dev/null | sed 's/^/#   /'
        attempt=$((attempt + 1))
done
echo "# boot attempts: $attempt"
echo "# kvmfleet-vmm exit status $rc, boot to reset took $(awk "BEGIN{print $t1 - $t0}") s (test host uptime $t0 -> $t1)"
banner=$(grep -m1 'Linux version' /tmp/linux-console.log)
marker_line=$(grep -n 'KVMFLEET-INIT-REACHED' /tmp/linux-console.log | head -n 1)
if [ -n "$banner" ]; then
        echo "# banner: $banner"
        echo "ok - vmm_linux_banner_on_console"
else
        sed 's/^/# console: /' /tmp/linux-console.log | tail -n 40
        echo "not ok - vmm_linux_banner_on_console"
        failed=1
fi
if [ -n "$marker_line" ]; then
        echo "ok - vmm_linux_reaches_init"
else
        grep -iE 'clocksource|tsc|apic|timer|pit|calibrat|smp|cpu0|rcu' /tmp/linux-console.log | head -n 60 |
                sed 's/^/# console: /'
        tail -n 40 /tmp/linux-console.log | sed 's/^/# console: /'
        echo "not ok - vmm_linux_reaches_init"
        failed=1
fi
if [ "$rc" = 11 ] && grep -q '"reason":"reset"' /tmp/linux-status.json; then
        echo "ok - vmm_linux_reboot_ends_vm_with_reset"
else
        echo "# status: $(cat /tmp/linux-status.json 2>/dev/null)"
        echo "not ok - vmm_linux_reboot_ends_vm_with_reset"
        failed=1
fi
[ -e /run/linux.sock ] && { echo "not ok - vmm_linux_control_socket_removed"; failed=1; }
exit $failed
GUEST

if [ -n "${VMM_LINUX_SOAK:-}" ]; then
        # shellcheck source=virtio-lib.sh
        source "$here/virtio-lib.sh"
        mkdir -p "$work/libs"
        mapfile -t extra < <(virtio_host_files "$work/libs") || { echo "not ok - vmm_linux_soak: cannot gather QEMU"; exit 1; }
        files=()
        for f in "${extra[@]}"; do files+=(--file "$f"); done
        echo "SOAK=\"$VMM_LINUX_SOAK\" BOOTS=${VMM_LINUX_BOOTS:-30}" >"$work/soak.env"
        cat >"$work/soak.sh" <<'GUEST'
# Runs inside the test host: BOOTS boots of the inner guest under each setting of SOAK.
. /soak.env
taskset -c 0 modprobe kvm-amd || { echo "not ok - vmm_linux_soak: modprobe kvm-amd failed"; exit 1; }
cmdline="console=ttyS0 reboot=k panic=-1 i8042.noaux i8042.nokbd"
for s in $SOAK; do
        pv="" qcpu=host
        case $s in
        vmm) ;;
        vmm-no-pv-eoi) pv='"cpu": {"kvm_pv": {"pv_eoi": false}},' ;;
        qemu) ;;
        qemu-no-pv-eoi) qcpu=host,kvm-pv-eoi=off ;;
        *) echo "not ok - vmm_linux_soak: unknown setting $s"; exit 1 ;;
        esac
        cat >/tmp/soak.json <<SPEC
{"name": "linux", "vcpus": 1, "memory": "256MiB", $pv
 "boot": {"kernel": "/linux/vmlinuz", "initrd": "/linux/initrd.gz", "cmdline": "$cmdline"},
 "console": {"log": "/tmp/soak.log"}}
SPEC
        ok=0 times=""
        for a in $(seq 1 "$BOOTS"); do
                rm -f /tmp/soak.log
                t0=$(cut -d' ' -f1 /proc/uptime)
                case $s in
                qemu*) timeout 60 qemu-system-x86_64 -accel kvm -cpu $qcpu -smp 1 -m 256 -nodefaults -no-user-config \
                        -display none -no-reboot -L /usr/share/qemu -serial file:/tmp/soak.log \
                        -kernel /linux/vmlinuz -initrd /linux/initrd.gz -append "$cmdline" >/dev/null 2>&1 ;;
                *) timeout 60 kvmfleet-vmm --spec /tmp/soak.json --control /run/soak.sock >/dev/null 2>&1 ;;
                esac
                t1=$(cut -d' ' -f1 /proc/uptime)
                if grep -q KVMFLEET-INIT-REACHED /tmp/soak.log 2>/dev/null; then
                        ok=$((ok + 1))
                        times="$times $(awk "BEGIN{print $t1 - $t0}")"
                else
                        echo "# $s boot $a: /init not reached; last line: $(tail -n 1 /tmp/soak.log 2>/dev/null | cut -c1-100)"
                fi
        done
        echo "# SOAK $s: $ok of $BOOTS boots reached /init; seconds to reset of those:$times"
done
echo "ok - vmm_linux_soak_ran"
GUEST
        hostvm_run --timeout 3600 --file "$kernel:/linux/vmlinuz" --file "$work/inner-initrd.gz:/linux/initrd.gz" \
                --file "$work/soak.env:/soak.env" "${files[@]}" "$work/soak.sh"
        exit
fi
hostvm_run --timeout 300 --file "$kernel:/linux/vmlinuz" --file "$work/inner-initrd.gz:/linux/initrd.gz" \
        "$work/vmm-linux.sh"
