"""kvmfleet-vmm's virtio-net functions on this machine's /dev/kvm and a real tap: the NIC sits on PCI bus
0 after the disks and before virtio-rng, status names its tap and MAC (the spec's, or one derived from
the uuid), and a tap that another process holds is refused naming $.nics[N].tap."""
import fcntl
import os
import re
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from kvmtest import BUILD, check, check_eq, run, skip, test  # noqa: E402
from vmmproc import Vmm as VmmProcess  # noqa: E402

GUESTS = os.path.join(BUILD, "guests")
TMP = tempfile.mkdtemp(prefix="kvmfleet-nic-test.")


def Vmm(spec_obj, extra=()):
    return VmmProcess(TMP, spec_obj, extra)
TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
IFF_TAP, IFF_NO_PI, IFF_VNET_HDR = 0x0002, 0x1000, 0x4000
TAP = "kvmflt%d" % (os.getpid() % 100000)


def tap_attach(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
    return fd


def need_kvm_and_tap():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        skip("/dev/kvm is not accessible")
    if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        skip("/dev/net/tun is not accessible")
    try:
        fd = tap_attach(TAP)
        fcntl.ioctl(fd, TUNSETPERSIST, 1)
        os.close(fd)
    except PermissionError:
        skip("creating the test tap needs CAP_NET_ADMIN")


def remove_tap():
    try:
        fd = tap_attach(TAP)
        fcntl.ioctl(fd, TUNSETPERSIST, 0)
        os.close(fd)
    except OSError:
        pass


def spec(kernel, **kw):
    s = {"name": "nic", "uuid": "6c1a7a3e-9d6b-4d36-8a53-3f2b5a0e9c11", "vcpus": 1, "memory": "16MiB",
         "boot": {"kernel": os.path.join(GUESTS, kernel)}}
    s.update(kw)
    return s


def devices_of(spec_obj):
    v = Vmm(spec_obj, extra=["--paused"])
    v.wait_socket()
    devices = v.result("status")["devices"]
    v.result("stop")
    v.finish()
    return devices


@test
def nic_on_bus_after_disks_before_rng():
    need_kvm_and_tap()
    disk = os.path.join(TMP, "disk.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    v = Vmm(spec("pcienum.elf", disks=[{"path": disk}], nics=[{"tap": TAP}]))
    rc = v.finish()
    check_eq(rc, 64, "pcienum exit status (stderr %r)" % v.err)
    funcs = {m[0]: m[1] + " " + m[2] for m in re.findall(r"^pci (00:..\.0) (\w{4}:\w{4}) class (\w{6})", v.out, re.M)}
    check_eq(funcs.get("00:01.0"), "1af4:1042 018000", "disk first")
    check_eq(funcs.get("00:02.0"), "1af4:1041 020000", "then the NIC (network controller)")
    check_eq(funcs.get("00:03.0"), "1af4:1044 ff0000", "then virtio-rng")


@test
def status_names_tap_and_mac():
    need_kvm_and_tap()
    devices = devices_of(spec("hello.elf", nics=[{"tap": TAP, "mac": "52:54:00:AA:bb:01"}]))
    check_eq([(d["bdf"], d["type"]) for d in devices], [("00:01.0", "virtio-net"), ("00:02.0", "virtio-rng")])
    check_eq(devices[0]["tap"], TAP)
    check_eq(devices[0]["mac"], "52:54:00:aa:bb:01")
    check_eq(devices[0]["tx_frames"], 0)
    check_eq(devices[0]["status"], 0)
    # without a MAC in the spec: a locally administered unicast one, the same for the same uuid
    derived = [devices_of(spec("hello.elf", nics=[{"tap": TAP}]))[0]["mac"] for _ in range(2)]
    check(re.match(r"^52(:[0-9a-f]{2}){5}$", derived[0]), derived[0])
    check_eq(derived[0], derived[1])


@test
def tap_held_elsewhere_is_refused():
    need_kvm_and_tap()
    holder = tap_attach(TAP)
    try:
        v = Vmm(spec("hello.elf", nics=[{"tap": TAP}]))
        rc = v.finish()
    finally:
        os.close(holder)
    check(rc != 0, "the VMM started on a tap another process holds")
    check("$.nics[0].tap" in v.err and "in use" in v.err, v.err)


@test
def bad_tap_name_is_refused():
    need_kvm_and_tap()
    v = Vmm(spec("hello.elf", nics=[{"tap": "a-name-longer-than-15"}]))
    rc = v.finish()
    check(rc != 0, "the VMM started with an invalid tap name")
    check("$.nics[0].tap" in v.err and "interface name" in v.err, v.err)


try:
    run()
finally:
    remove_tap()
