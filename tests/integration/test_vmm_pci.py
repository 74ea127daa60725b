"""kvmfleet-vmm's PCI bus and virtio devices on this machine's /dev/kvm: test guests enumerate bus 0
(pcienum) and drive a virtio-blk function by polling (vblk)."""
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from kvmtest import BUILD, check, check_eq, run, skip, test  # noqa: E402
from vmmproc import Vmm as VmmProcess  # noqa: E402

GUESTS = os.path.join(BUILD, "guests")
TMP = tempfile.mkdtemp(prefix="kvmfleet-pci-test.")
SECTOR0 = b"hello sector zero from the test"


def Vmm(spec_obj, extra=()):
    return VmmProcess(TMP, spec_obj, extra)


def spec(kernel, **kw):
    s = {"name": "pci", "vcpus": 1, "memory": "16MiB", "boot": {"kernel": os.path.join(GUESTS, kernel)}}
    s.update(kw)
    return s


def need_kvm():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        skip("/dev/kvm is not accessible")


def image(name, size=1 << 20, sector0=SECTOR0):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(sector0)
        f.truncate(size)
    return path


def enumerate_bus(spec_obj):
    v = Vmm(spec_obj)
    rc = v.finish()
    check_eq(rc, 64, "pcienum exit status (stderr %r)" % v.err)
    check("did not read all ones" not in v.out, v.out)
    funcs = {}
    for m in re.finditer(r"^pci (00:..\.0) (\w{4}):(\w{4}) class (\w{6}) bar0 (\w{8}) size (\w{8}) caps (\S+)$",
                         v.out, re.M):
        funcs[m.group(1)] = {"id": m.group(2) + ":" + m.group(3), "class": m.group(4), "bar0": int(m.group(5), 16),
                             "size": int(m.group(6), 16), "caps": m.group(7).split(",")}
    check("pcienum: %d functions" % len(funcs) in v.out, v.out)
    return funcs, v


def check_virtio(f, ident, klass):
    check_eq(f["id"], ident)
    check_eq(f["class"], klass)
    check_eq(f["size"], 0x4000, "BAR 0 size")
    check(0xC0000000 <= f["bar0"] < 0xFEC00000 and f["bar0"] % f["size"] == 0, "BAR 0 at %#x" % f["bar0"])
    check_eq(f["caps"][0], "11", "MSI-X capability first")
    check(f["caps"].count("09") >= 3, "virtio vendor capabilities: %r" % f["caps"])


def check_bus(irqchip):
    need_kvm()
    d1, d2 = image("enum-a-%s.img" % irqchip), image("enum-b-%s.img" % irqchip)
    funcs, _ = enumerate_bus(spec("pcienum.elf", irqchip=irqchip, disks=[{"path": d1}, {"path": d2, "readonly": True}]))
    check_eq(sorted(funcs), ["00:00.0", "00:01.0", "00:02.0", "00:03.0"])
    check_eq(funcs["00:00.0"]["id"], "8086:0d57")
    check_eq(funcs["00:00.0"]["class"], "060000")
    check_virtio(funcs["00:01.0"], "1af4:1042", "018000")
    check_virtio(funcs["00:02.0"], "1af4:1042", "018000")
    check_virtio(funcs["00:03.0"], "1af4:1044", "ff0000")
    check_eq(len(funcs["00:01.0"]["caps"]), 5, "MSI-X + common, notify, ISR, device config")
    check_eq(len(funcs["00:03.0"]["caps"]), 4, "virtio-rng has no device configuration")
    bars = [funcs[b]["bar0"] for b in ("00:01.0", "00:02.0", "00:03.0")]
    check_eq(len(set(bars)), 3, "distinct BARs")


@test
def bus_has_host_bridge_disks_in_order_and_rng_irqchip_kernel():
    check_bus("kernel")


@test
def bus_has_host_bridge_disks_in_order_and_rng_irqchip_split():
    check_bus("split")


@test
def no_virtio_devices_with_irqchip_none():
    need_kvm()
    funcs, v = enumerate_bus(spec("pcienum.elf", irqchip="none"))
    check_eq(sorted(funcs), ["00:00.0"])
    check_eq(v.final_status()["devices"], [])


@test
def status_lists_devices():
    need_kvm()
    d1 = image("status-a.img", size=2 << 20)
    d2 = image("status-b.img")
    v = Vmm(spec("hello.elf", disks=[{"path": d1, "serial": "S1"}, {"path": d2, "readonly": True}]), extra=["--paused"])
    v.wait_socket()
    devices = v.result("status")["devices"]
    v.result("stop")
    v.finish()
    check_eq([(d["bdf"], d["type"]) for d in devices],
             [("00:01.0", "virtio-blk"), ("00:02.0", "virtio-blk"), ("00:03.0", "virtio-rng")])
    check_eq(devices[0]["path"], d1)
    check_eq(devices[0]["capacity"], 2 << 20)
    check_eq(devices[0]["readonly"], False)
    check_eq(devices[1]["readonly"], True)
    for d in devices:
        check_eq(d["status"], 0)
        check_eq(d["requests"], 0)
        check_eq(d["errors"], 0)


def vblk_run(irqchip, cmdline="", readonly=False, name="vblk"):
    need_kvm()
    path = image("%s-%s.img" % (name, irqchip))
    v = Vmm(spec("vblk.elf", irqchip=irqchip, boot={"kernel": os.path.join(GUESTS, "vblk.elf"), "cmdline": cmdline},
                 disks=[{"path": path, "serial": "KVMFLEET-SERIAL-0001", "readonly": readonly}]))
    rc = v.finish()
    check("vblk: FAIL" not in v.out, v.out)
    check_eq(rc, 64, "vblk exit status (stdout %r, stderr %r)" % (v.out, v.err))
    with open(path, "rb") as f:
        content = f.read()
    return v, content


def check_vblk(irqchip):
    v, content = vblk_run(irqchip, "msix=1")
    out = v.out
    check("vblk: slot 1 capacity 2048\n" in out, out)
    check("vblk: read status 0 data %s\n" % SECTOR0.decode() in out, out)
    check("vblk: write status 0\n" in out, out)
    check("vblk: flush status 0\n" in out, out)
    check("vblk: id status 0 serial KVMFLEET-SERIAL-0001\n" in out, out)
    check("vblk: beyond-end read status 1\n" in out, out)
    check("vblk: unknown type status 2\n" in out, out)
    check("vblk: pba 00000002\n" in out, "queue vector 1 pending while MSI-X is disabled: " + out)
    check("vblk: msix masked pba 00000002 irr 0\n" in out, out)
    check("vblk: msix unmasked pba 00000000 irr 1\n" in out, out)
    check_eq(content[512:512 + 15], b"written by vblk")
    check_eq(content[:len(SECTOR0)], SECTOR0)
    dev = v.final_status()["devices"][0]
    check_eq(dev["requests"], 6)
    check_eq(dev["errors"], 2)
    check_eq(dev["status"], 15, "ACKNOWLEDGE|DRIVER|FEATURES_OK|DRIVER_OK")
    check_eq(dev["features"], 1 << 32, "VERSION_1 only")
    check(dev["interrupts"] >= 1, "MSI-X deliveries: %r" % dev)
    check_eq(dev["notify_exits"], 0, "every kick went through the ioeventfd, none through the vCPU loop")


@test
def guest_drives_virtio_blk_irqchip_kernel():
    check_vblk("kernel")


@test
def guest_drives_virtio_blk_irqchip_split():
    check_vblk("split")


@test
def guest_drives_virtio_blk_with_indirect_and_event_idx():
    v, content = vblk_run("kernel", "ring=1", name="ring")
    out = v.out
    check("vblk: read status 0 data %s\n" % SECTOR0.decode() in out, out)
    check("vblk: write status 0\n" in out, out)
    check("vblk: id status 0 serial KVMFLEET-SERIAL-0001\n" in out, out)
    check("vblk: unknown type status 2\n" in out, out)
    check("vblk: avail_event 6\n" in out, "the device asks for a kick at the next request: " + out)
    check_eq(content[512:512 + 15], b"written by vblk")
    dev = v.final_status()["devices"][0]
    check_eq(dev["features"], (1 << 32) | (1 << 28) | (1 << 29))
    check_eq(dev["requests"], 6)


@test
def moved_bar_keeps_kicks_off_the_vcpu_loop():
    v, content = vblk_run("kernel", "move=1", name="move")
    check("vblk: bar0 moved to e0000000\n" in v.out, v.out)
    check("vblk: read status 0 data %s\n" % SECTOR0.decode() in v.out, v.out)
    check_eq(content[512:512 + 15], b"written by vblk")
    dev = v.final_status()["devices"][0]
    check_eq(dev["notify_exits"], 0, "the ioeventfds followed BAR 0 to its new address")


@test
def request_kicked_before_driver_ok_is_served():
    v, _ = vblk_run("split", "early=1", name="early")
    check("vblk: read status 0 data %s\n" % SECTOR0.decode() in v.out, v.out)
    check("vblk: write status 0\n" in v.out, v.out)


@test
def readonly_disk_refuses_guest_writes():
    v, content = vblk_run("kernel", readonly=True, name="ro")
    check("vblk: read status 0 data %s\n" % SECTOR0.decode() in v.out, v.out)
    check("vblk: write status 1\n" in v.out, v.out)
    check_eq(content[512:1024], bytes(512), "sector 1 unchanged")


@test
def malicious_descriptor_sets_needs_reset_and_vmm_lives():
    v, _ = vblk_run("kernel", "evil=1", name="evil")
    m = re.search(r"^vblk: evil status (\d+)$", v.out, re.M)
    check(m, v.out)
    check(int(m.group(1)) & 64, "DEVICE_NEEDS_RESET: %s" % m.group(0))
    dev = v.final_status()["devices"][0]
    check(dev["status"] & 64, "status %r" % dev)
    check("malformed" in dev.get("last_error", ""), "last_error %r" % dev)
    check("device needs reset" in v.err, v.err)


@test
def unopenable_disk_is_refused_naming_the_field():
    need_kvm()
    v = Vmm(spec("hello.elf", disks=[{"path": image("ok.img")}, {"path": os.path.join(TMP, "absent.img")}]))
    rc = v.finish()
    check_eq(rc, 1)
    check("$.disks[1].path" in v.err, v.err)


@test
def snapshot_refused_while_a_driver_bound_a_device():
    need_kvm()
    path = image("snap.img")
    kernel = {"kernel": os.path.join(GUESTS, "vblk.elf"), "cmdline": "halt=1"}
    # devices no driver touched: the snapshot is taken as before
    v = Vmm(spec("vblk.elf", boot=kernel, disks=[{"path": path}]), extra=["--paused"])
    v.wait_socket()
    snap = os.path.join(TMP, "snap-untouched")
    check_eq(v.result("snapshot", {"dir": snap}), {"dir": snap})
    check(os.path.exists(os.path.join(snap, "manifest.json")))
    # the guest binds the device and halts: refused, nothing written
    v.result("resume")
    end = time.time() + 30
    while "vblk: halting" not in v.result("console")["data"] and time.time() < end:
        time.sleep(0.05)
    check("vblk: halting" in v.result("console")["data"], "guest did not get to its halt")
    v.result("pause")
    snap = os.path.join(TMP, "snap-bound")
    reply = v.call("snapshot", {"dir": snap})
    v.result("stop")
    v.finish()
    check("error" in reply, "snapshot of a VM with a bound virtio device: %r" % reply)
    check_eq(reply["error"]["code"], "unsupported")
    check("virtio" in reply["error"]["message"], reply["error"]["message"])
    check(not os.path.exists(snap), "nothing written")
    check(not [n for n in os.listdir(TMP) if n.startswith("snap-bound")], "no temporary directory left")


run()
