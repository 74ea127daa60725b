#!/bin/bash
# kvmfleet-vmm start-up and footprint, against QEMU microvm on the same guest in the same run.
#  1. exec -> first guest serial byte of build/guests/hello.elf (the guest prints at once), medians of
#     RUNS (default 15) alternating runs of each, and their ratio.
#  2. RSS of an idle VMM with a 16 MiB guest, minus the guest RAM pages it touched (the Rss of the
#     guest RAM mapping in /proc/PID/smaps), same for QEMU.
# Usage: bench/bench-vmm.sh [RUNS]   (BUILD=build by default)
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RUNS=${1:-15}
[ -x "$BUILD/kvmfleet-vmm" ] && [ -f "$BUILD/guests/hello.elf" ] || { echo "build first: make" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 is not installed" >&2; exit 1; }
exec python3 - "$BUILD" "$RUNS" <<'PY'
import json, os, signal, statistics, subprocess, sys, tempfile, time

build, runs = sys.argv[1], int(sys.argv[2])
vmm = os.path.join(build, "kvmfleet-vmm")
tmp = tempfile.mkdtemp(prefix="bench-vmm.")


def spec_file(kernel, cmdline=""):
    path = os.path.join(tmp, os.path.basename(kernel) + ".json")
    with open(path, "w") as f:
        json.dump({"name": "bench", "vcpus": 1, "memory": "16MiB",
                   "boot": {"kernel": os.path.abspath(kernel), "cmdline": cmdline}}, f)
    return path


hello = os.path.join(build, "guests", "hello.elf")
counter = os.path.join(build, "guests", "counter.elf")
vmm_cmd = [vmm, "--spec", spec_file(hello), "--control", os.path.join(tmp, "c.sock")]
qemu_base = ["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm", "-m", "16M", "-nodefaults", "-no-user-config",
             "-nographic", "-serial", "stdio", "-device", "isa-debug-exit,iobase=0x501,iosize=1"]
qemu_cmd = qemu_base + ["-kernel", hello]


def first_byte(cmd):
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    b = p.stdout.read(1)
    t1 = time.monotonic()
    p.stdout.read()
    p.wait()
    if b != b"h":
        raise SystemExit("%s printed %r first" % (cmd[0], b))
    return (t1 - t0) * 1000


first_byte(vmm_cmd), first_byte(qemu_cmd)  # warm the page cache
a, b, ratios = [], [], []
for _ in range(runs):
    x, y = first_byte(vmm_cmd), first_byte(qemu_cmd)
    a.append(x); b.append(y); ratios.append(y / x)
print("exec -> first serial byte of hello.elf, 16 MiB guest, %d alternating runs each" % runs)
print("  kvmfleet-vmm        median %.2f ms (min %.2f, max %.2f)" % (statistics.median(a), min(a), max(a)))
print("  qemu -M microvm     median %.2f ms (min %.2f, max %.2f)" % (statistics.median(b), min(b), max(b)))
print("  qemu / kvmfleet-vmm median of pairwise ratios %.1fx" % statistics.median(ratios))


def rss_excluding_guest(pid, guest_size):
    """(total Rss KiB, Rss KiB of the mapping that holds guest RAM)."""
    total, guest, cur_size, cur_name = 0, 0, 0, ""
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and ":" not in parts[0]:
                lo, hi = (int(v, 16) for v in parts[0].split("-"))
                cur_size, cur_name = hi - lo, " ".join(parts[5:])
            elif parts[0] == "Rss:":
                kib = int(parts[1])
                total += kib
                if "kvmfleet-guest-ram" in cur_name or (cur_name == "" and guest_size <= cur_size <= guest_size + (4 << 20)):
                    guest = max(guest, kib)
    return total, guest


def idle_rss(cmd):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    time.sleep(1.0)  # the guest is up and counting; the VMM has nothing to do
    total, guest = rss_excluding_guest(p.pid, 16 << 20)
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    return total, guest


counter_spec = spec_file(counter, "every=1000000000")
t, g = idle_rss([vmm, "--spec", counter_spec, "--control", os.path.join(tmp, "r.sock")])
print("idle RSS after 1 s, 16 MiB guest running counter.elf (counts without exits):")
print("  kvmfleet-vmm        RSS %d KiB, guest RAM touched %d KiB, VMM alone %d KiB" % (t, g, t - g))
t2, g2 = idle_rss(qemu_base + ["-kernel", counter, "-append", "every=1000000000"])
print("  qemu -M microvm     RSS %d KiB, guest RAM touched %d KiB, QEMU alone %d KiB" % (t2, g2, t2 - g2))
PY
