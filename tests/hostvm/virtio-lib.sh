# Host-side helpers for the virtio test and benchmark in the test host (sourced after hostvm.sh):
# the inner guest's initramfs (busybox, Debian's virtio modules, an /init that does what kvft=MODE on
# its command line asks), the disk images, and the extra files the test host needs to run QEMU as the
# reference VMM and debugfs. Used by tests/hostvm/test-virtio.sh and bench/bench-virtio-blk.sh.

# The modules, in load order (each after what it needs, per modules.dep of 6.1): virtio-pci with its
# transport libraries, virtio-blk, virtio-net with the failover pair, virtio-rng. ext4, jbd2, crc16
# and crc32c are built into Debian's cloud kernel (CONFIG_EXT4_FS=y).
VIRTIO_GUEST_MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk failover net_failover virtio_net virtio-rng"

# virtio_guest_initrd ROOT REL OUT: writes the inner guest's initramfs to OUT.
virtio_guest_initrd() {
        local root=$1 rel=$2 out=$3 tree m line path moddir
        moddir=$root/lib/modules/$rel
        tree=$(mktemp -d)
        mkdir -p "$tree"/{bin,dev,proc,sys,mnt,tmp,lib/modules}
        cp /bin/busybox "$tree/bin/busybox" || { rm -rf "$tree"; return 1; }
        for m in $VIRTIO_GUEST_MODULES; do
                line=$(grep -E "/${m//[-_]/[-_]}\.ko(\.xz)?:" "$moddir/modules.dep" | head -n 1)
                path=${line%%:*}
                [ -n "$path" ] || { hostvm_die "module $m not in modules.dep"; rm -rf "$tree"; return 1; }
                case "$path" in
                *.xz) xz -dc "$moddir/$path" >"$tree/lib/modules/$m.ko" ;;
                *) cp "$moddir/$path" "$tree/lib/modules/$m.ko" ;;
                esac
        done
        echo "$VIRTIO_GUEST_MODULES" >"$tree/lib/modules/load-order"
        mknod -m 600 "$tree/dev/console" c 5 1
        cat >"$tree/init" <<'INIT'
#!/bin/busybox sh
# The inner guest: prints "VT-..." lines on the serial console for the test host to check.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "VT-UPTIME-INIT $(cut -d' ' -f1 /proc/uptime)"
for m in $(cat /lib/modules/load-order); do
        insmod /lib/modules/$m.ko || echo "VT-INSMOD-FAILED $m"
done
mode=$(sed -n 's/.*kvft=\([a-z]*\).*/\1/p' /proc/cmdline)
# Devices appear once their driver has probed; wait up to 10 s.
wait_for() {
        i=0
        while [ ! -e "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        [ -e "$1" ]
}
echo "VT-MODE $mode"
echo "VT-CPUS $(cat /sys/devices/system/cpu/online)"
case "$mode" in
blk)
        # The ext4 image on vda becomes the root file system: its /init-root (virtio_images) goes on.
        wait_for /dev/vda || echo "VT-NO-VDA"
        echo "VT-SERIAL $(cat /sys/block/vda/serial 2>/dev/null)"
        if mount -t ext4 /dev/vda /mnt; then
                echo "VT-MOUNT ok"
                umount /proc /sys /dev
                exec switch_root /mnt /init-root
        fi
        ;;
net)
        wait_for /sys/class/net/eth0 || echo "VT-NO-ETH0"
        echo "VT-MAC $(cat /sys/class/net/eth0/address)"
        ip link set eth0 up
        ip addr add 10.0.2.15/24 dev eth0
        if ping -c 3 -W 3 10.0.2.1 >/tmp/ping.log 2>&1; then
                echo "VT-PING ok"
        else
                echo "VT-PING failed"
                sed 's/^/VT-PING-LOG /' /tmp/ping.log
        fi
        ;;
bench)
        wait_for /dev/vda || echo "VT-NO-VDA"
        mount -t ext4 -o ro /dev/vda /mnt || echo "VT-MOUNT failed"
        for i in 1 2 3 4 5; do
                sync
                echo 3 >/proc/sys/vm/drop_caches
                t0=$(cut -d' ' -f1 /proc/uptime)
                dd if=/mnt/big of=/dev/null bs=1M 2>/dev/null
                t1=$(cut -d' ' -f1 /proc/uptime)
                echo "VT-BENCH $i $t0 $t1"
        done
        umount /mnt
        ;;
esac
echo "VT-END $(cut -d' ' -f1 /proc/uptime)"
sync
reboot -f
INIT
        chmod +x "$tree/init"
        (cd "$tree" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
        local rc=$?
        rm -rf "$tree"
        return $rc
}

# virtio_images DIR: DIR/root.img (64 MiB ext4: the inner guest's root file system, holding /marker,
# busybox and /init-root), DIR/ro.img (1 MiB raw, a known first sector, attached read-only),
# DIR/bench.img (ext4 holding /big, 64 MiB of non-zero data so that every block is really read).
virtio_images() {
        local dir=$1
        mkdir -p "$dir/root.d"/{bin,dev,proc,sys,tmp} "$dir/bench.d"
        echo "kvmfleet-virtio-marker" >"$dir/root.d/marker"
        cp /bin/busybox "$dir/root.d/bin/busybox" || return 1
        cat >"$dir/root.d/init-root" <<'ROOT'
#!/bin/busybox sh
# Runs from the ext4 root on vda after switch_root: writes a file there, makes the root read-only
# (which writes everything back), checks the read-only vdb, reboots.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "VT-ROOT $(awk '$2 == "/" { print $1, $3 }' /proc/mounts | tail -n 1)"
echo "VT-MARKER $(cat /marker)"
echo "written by the inner guest through virtio-blk" >/written
sync
mount -o remount,ro / && echo "VT-REMOUNT-RO ok"
i=0
while [ ! -e /dev/vdb ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
echo "VT-VDB-RO $(cat /sys/block/vdb/ro)"
if dd if=/dev/zero of=/dev/vdb bs=4096 count=1 conv=fsync 2>/dev/null; then
        echo "VT-VDB-WRITE succeeded"
else
        echo "VT-VDB-WRITE refused"
fi
echo "VT-VDB-HEAD $(head -c 16 /dev/vdb)"
echo "VT-END $(cut -d' ' -f1 /proc/uptime)"
reboot -f
ROOT
        chmod +x "$dir/root.d/init-root"
        mke2fs -q -F -t ext4 -d "$dir/root.d" "$dir/root.img" 64M >/dev/null || return 1
        { printf 'KVFT-RO-SECTOR-0'; head -c $((1024 * 1024 - 16)) /dev/zero; } >"$dir/ro.img"
        yes 'kvmfleet virtio-blk sequential read benchmark data' | head -c $((64 * 1024 * 1024)) >"$dir/bench.d/big"
        mke2fs -q -F -t ext4 -d "$dir/bench.d" "$dir/bench.img" 96M >/dev/null || return 1
        rm -rf "$dir/root.d" "$dir/bench.d"
}

# virtio_host_files: prints --file arguments (one per line) that put QEMU with its shared libraries
# and firmware (SeaBIOS, the linuxboot option ROM), debugfs with its libraries, and a tap helper into
# the test host.
virtio_host_files() {
        local work=$1 bin lib f
        for bin in "$(command -v qemu-system-x86_64)" "$(command -v debugfs)"; do
                [ -n "$bin" ] || { hostvm_die "qemu-system-x86_64 or debugfs is not installed"; return 1; }
                echo "$bin:/usr/bin/$(basename "$bin")"
                for lib in $(ldd "$bin" 2>/dev/null | grep -oE '/[^ ]+' | sort -u); do
                        cp -L "$lib" "$work/$(basename "$lib")" && echo "$work/$(basename "$lib"):$lib"
                done
        done
        for f in /usr/share/seabios/bios-256k.bin /usr/share/qemu/linuxboot_dma.bin /usr/share/qemu/kvmvapic.bin; do
                [ -f "$f" ] || { hostvm_die "$f is missing (qemu-system-x86, seabios)"; return 1; }
                echo "$f:/usr/share/qemu/$(basename "$f")"
        done
        # A persistent tap owned by nobody, for the NIC test: busybox's ip has no tuntap.
        cat >"$work/mktap.c" <<'MKTAP'
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
int main(int argc, char **argv) {
        struct ifreq ifr;
        int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (argc != 2 || fd < 0) {
                perror("mktap: /dev/net/tun");
                return 1;
        }
        memset(&ifr, 0, sizeof ifr);
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
        strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
        if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, 1) < 0) {
                perror("mktap: TUNSETIFF/TUNSETPERSIST");
                return 1;
        }
        return 0;
}
MKTAP
        gcc -static -O2 -o "$work/mktap" "$work/mktap.c" || { hostvm_die "cannot build mktap"; return 1; }
        echo "$work/mktap:/usr/bin/mktap"
}
