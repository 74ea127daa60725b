#!/bin/bash
# virtio-blk sequential read in the test host: the same inner guest (Debian's kernel, 2 vCPUs, 256 MiB)
# and the same ext4 image under kvmfleet-vmm and under qemu-system-x86_64 -accel kvm with a
# virtio-blk-pci disk. The guest drops its caches and times `dd if=/mnt/big of=/dev/null bs=1M` (a
# 64 MiB file) with /proc/uptime, RUNS times per boot (5), over BOOTS boots per VMM; prints each
# VMM's median MiB/s and the ratio kvmfleet-vmm / QEMU (goal >= 1).
# Usage: bench/bench-virtio-blk.sh [BOOTS]   (BUILD=build by default; VIRTIO_VMMS="vmm qemu")
set -u
cd "$(dirname "$0")/.."
here=$PWD/tests/hostvm
BUILD=${BUILD:-build}
BOOTS=${1:-1}
[ -x "$BUILD/kvmfleet-vmm" ] || { echo "build first: make" >&2; exit 1; }
for tool in mke2fs qemu-system-x86_64 gcc; do
        command -v $tool >/dev/null || { echo "$tool is not installed (tools/deps.sh)" >&2; exit 1; }
done
source "$here/hostvm.sh"
source "$here/virtio-lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

deb=$(hostvm_fetch_kernel) && root=$(hostvm_unpack_kernel "$deb") || exit 1
rel=$(ls "$root/lib/modules" | head -n 1)
virtio_guest_initrd "$root" "$rel" "$work/initrd.gz" || exit 1
mkdir -p "$work/img" "$work/libs"
virtio_images "$work/img" || exit 1
rm -f "$work/img/root.img" "$work/img/ro.img"
mapfile -t extra < <(virtio_host_files "$work/libs") || exit 1
files=()
for f in "${extra[@]}"; do files+=(--file "$f"); done
vmms=${VIRTIO_VMMS:-vmm qemu}
list=""
for _ in $(seq "$BOOTS"); do list="$list $vmms"; done
echo "MODE=bench VMMS=\"$list\"" >"$work/virtio.env"

HOSTVM_MODULES="kvm kvm-amd" hostvm_run --timeout 900 --mem 1536 \
        --file "$root/boot/vmlinuz-$rel:/linux/vmlinuz" --file "$work/initrd.gz:/linux/initrd.gz" \
        --file "$work/img:/img" --file "$work/virtio.env:/virtio.env" "${files[@]}" "$here/guest/virtio.sh" \
        >"$work/out.log" 2>&1
rc=$?
grep -E '^(#   guest: )?(BENCH|# (qemu|vmm)( kvft|:))' "$work/out.log" | sed 's/^#   guest: //' >"$work/bench.txt"
[ $rc -eq 0 ] || { tail -n 40 "$work/out.log"; echo "the test host run failed" >&2; }
python3 - "$work/bench.txt" "$vmms" <<'PY'
import statistics, sys

runs = {}
for line in open(sys.argv[1]):
    f = line.split()
    if f and f[0] == "BENCH":
        vmm, t0, t1 = f[1], float(f[3]), float(f[4])
        runs.setdefault(vmm, []).append(64 / max(t1 - t0, 0.01))  # MiB/s, /proc/uptime has 10 ms steps
    elif line.startswith("#"):
        print("  " + line.strip())
names = {"vmm": "kvmfleet-vmm", "qemu": "qemu -accel kvm"}
for vmm in sys.argv[2].split():
    r = runs.get(vmm, [])
    if r:
        print("  %-16s median %.1f MiB/s over %d reads (min %.1f, max %.1f)" %
              (names.get(vmm, vmm), statistics.median(r), len(r), min(r), max(r)))
        print("  %-16s each read, MiB/s: %s" % ("", " ".join("%.0f" % x for x in r)))
    else:
        print("  %-16s no result (the guest did not finish a read)" % names.get(vmm, vmm))
if runs.get("vmm") and runs.get("qemu"):
    print("  kvmfleet-vmm / qemu median throughput ratio %.2f (goal >= 1)" %
          (statistics.median(runs["vmm"]) / statistics.median(runs["qemu"])))
sys.exit(0 if runs else 1)
PY
