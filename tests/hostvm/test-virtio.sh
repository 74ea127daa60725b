#!/bin/bash
# virtio-blk and virtio-net with Debian's kernel, in the test host: a 2-vCPU inner guest switches its
# root to an ext4 image (built here with mke2fs -d) on virtio-blk, checks its marker, writes a file and
# remounts the root read-only; a read-only second disk refuses writes; a NIC on a tap pings the test
# host's side. Run under kvmfleet-vmm; VIRTIO_VMMS="qemu vmm" adds QEMU -accel kvm as a reference
# for the guest and the images. The written file is read back out of the image with debugfs. See tests/hostvm/README.md.
set -u
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) build=$BUILD ;; *) build=$here/../../$BUILD ;; esac
if [ ! -x "$build/kvmfleet-vmm" ]; then
        echo "not ok - virtio: $BUILD/kvmfleet-vmm is not built"
        exit 1
fi
for tool in mke2fs debugfs qemu-system-x86_64 gcc; do
        command -v $tool >/dev/null || { echo "not ok - virtio: $tool is not installed (tools/deps.sh)"; exit 1; }
done
# shellcheck source=hostvm.sh
source "$here/hostvm.sh"
# shellcheck source=virtio-lib.sh
source "$here/virtio-lib.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

deb=$(hostvm_fetch_kernel) || { echo "not ok - virtio: no kernel package"; exit 1; }
root=$(hostvm_unpack_kernel "$deb") || { echo "not ok - virtio: cannot unpack $deb"; exit 1; }
rel=$(ls "$root/lib/modules" | head -n 1)

virtio_guest_initrd "$root" "$rel" "$work/initrd.gz" || { echo "not ok - virtio: cannot build the inner initramfs"; exit 1; }
mkdir -p "$work/img" "$work/libs"
virtio_images "$work/img" || { echo "not ok - virtio: cannot build the disk images"; exit 1; }
rm -f "$work/img/bench.img"
mapfile -t extra < <(virtio_host_files "$work/libs") || { echo "not ok - virtio: cannot gather QEMU and debugfs"; exit 1; }
files=()
for f in "${extra[@]}"; do files+=(--file "$f"); done
echo "MODE=test VMMS=\"${VIRTIO_VMMS:-vmm}\" ${VIRTIO_ENV:-}" >"$work/virtio.env"

HOSTVM_MODULES="kvm kvm-amd tun" hostvm_run --timeout 900 --mem 1536 \
        --file "$root/boot/vmlinuz-$rel:/linux/vmlinuz" --file "$work/initrd.gz:/linux/initrd.gz" \
        --file "$work/img:/img" --file "$work/virtio.env:/virtio.env" "${files[@]}" "$here/guest/virtio.sh"
