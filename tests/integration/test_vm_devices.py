"""Disks and NICs through the agent: the spec checks at define (raw images only, whole sectors, no
image or tap twice, an in-kernel LAPIC), the MAC the agent records for a NIC without one, taps and
written images that belong to one VM (409), kvmfleetctl vm create --disk/--nic and vm show, domain
XML both ways, and every response against api/openapi.yaml. Nothing is started: these are the
define-time contracts, the devices themselves run in tests/hostvm/test-virtio.sh."""
import hashlib
import os
import re
import tempfile

from agentlib import Agent, check_openapi_records
from kvmtest import BUILD, check, check_eq, run, test

KERNEL = os.path.join(BUILD, "guests", "counter.elf")
agent = Agent().start()
tmp = tempfile.mkdtemp(prefix="kvmfleet-devices.")


def image(name, size=1 << 20, head=b""):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return path


ROOT_IMG = image("root.img")
SEED_IMG = image("seed.img", 64 << 10)
QCOW_IMG = image("disk.qcow2", 1 << 20, b"QFI\xfb\x00\x00\x00\x03")
ODD_IMG = image("odd.img", 1000)


def spec(name, **kw):
    s = {"name": name, "vcpus": 1, "memory": "16MiB", "boot": {"kernel": KERNEL}}
    s.update(kw)
    return s


def create(s):
    return agent.request("POST", "/v1/vms", s, template="/v1/vms")


def get(vm_id):
    r = agent.request("GET", "/v1/vms/" + vm_id, template="/v1/vms/{id}")
    check_eq(r.status, 200, repr(r))
    return r.json


def delete(vm_id):
    r = agent.request("DELETE", "/v1/vms/" + vm_id, template="/v1/vms/{id}")
    check(r.status in (200, 204), repr(r))


def derived_mac(uuid, index):
    """The MAC vm_spec_nic_mac() derives: 0x52 and five octets of SHA-256(uuid + "/nic/N")."""
    d = hashlib.sha256(("%s/nic/%d" % (uuid, index)).encode()).digest()
    return "52:" + ":".join("%02x" % b for b in d[:5])


def check_refused(r, status, code, path, text):
    check_eq(r.status, status, repr(r))
    check_eq(r.error_code(), code, repr(r))
    check_eq(r.json["error"]["details"]["path"], path, repr(r))
    check(text in r.json["error"]["message"], "%r not in %r" % (text, r.json["error"]["message"]))


@test
def define_records_disks_and_the_derived_mac():
    r = create(spec("dev-a", disks=[{"path": ROOT_IMG, "serial": "ROOT-A"}, {"path": SEED_IMG, "readonly": True}],
                    nics=[{"tap": "kvft-a0"}, {"tap": "kvft-a1", "mac": "52:54:00:AB:CD:EF"}]))
    check_eq(r.status, 201, repr(r))
    uuid = r.json["uuid"]
    s = get("dev-a")["spec"]
    check_eq(s["disks"], [{"path": ROOT_IMG, "readonly": False, "serial": "ROOT-A"},
                          {"path": SEED_IMG, "readonly": True}])
    check_eq(s["nics"], [{"tap": "kvft-a0", "mac": derived_mac(uuid, 0)},
                         {"tap": "kvft-a1", "mac": "52:54:00:AB:CD:EF"}])
    # the recorded MAC survives an agent restart unchanged
    agent.stop()
    agent.start()
    check_eq(get(uuid)["spec"]["nics"][0]["mac"], derived_mac(uuid, 0))


@test
def dumpxml_writes_disks_and_interfaces():
    r = agent.request("GET", "/v1/vms/dev-a?format=xml", record=False)
    check_eq(r.status, 200, repr(r))
    xml = r.raw
    uuid = get("dev-a")["uuid"]
    for pattern in (r'<disk type="file" device="disk">\s*<driver name="qemu" type="raw"/>\s*<source file="%s"/>\s*'
                    r'<target dev="vda" bus="virtio"/>\s*<serial>ROOT-A</serial>' % re.escape(ROOT_IMG),
                    r'<source file="%s"/>\s*<target dev="vdb" bus="virtio"/>\s*<readonly/>' % re.escape(SEED_IMG),
                    r'<interface type="ethernet">\s*<mac address="%s"/>\s*<target dev="kvft-a0" managed="no"/>\s*'
                    r'<model type="virtio"/>' % derived_mac(uuid, 0)):
        check(re.search(pattern, xml), "no %s in\n%s" % (pattern, xml))


@test
def a_tap_belongs_to_one_vm():
    r = create(spec("dev-b", nics=[{"tap": "kvft-b0"}, {"tap": "kvft-a1"}]))
    check_refused(r, 409, "conflict", "$.nics[1].tap", '"dev-a"')
    check_eq(r.json["error"]["details"]["existing"], get("dev-a")["uuid"])
    check_eq(agent.request("GET", "/v1/vms/dev-b", record=False).status, 404)


@test
def a_written_image_belongs_to_one_vm():
    # dev-a writes root.img: neither a writer nor a reader may share it
    r = create(spec("dev-c", disks=[{"path": ROOT_IMG, "readonly": True}]))
    check_refused(r, 409, "conflict", "$.disks[0].path", "read-write")
    # another name for the same file is the same image
    link = os.path.join(tmp, "root-link.img")
    os.symlink(ROOT_IMG, link)
    r = create(spec("dev-c", disks=[{"path": link}]))
    check_refused(r, 409, "conflict", "$.disks[0].path", '"dev-a"')
    # seed.img is read-only in dev-a: other read-only attachments may share it, a writer may not
    r = create(spec("dev-c", disks=[{"path": SEED_IMG}]))
    check_refused(r, 409, "conflict", "$.disks[0].path", "read-only")
    r = create(spec("dev-c", disks=[{"path": SEED_IMG, "readonly": True}]))
    check_eq(r.status, 201, repr(r))
    delete("dev-c")


@test
def bad_disks_and_nics_are_422_with_their_path():
    cases = [
        (spec("bad", disks=[{"path": QCOW_IMG}]), "$.disks[0].path",
         "is a qcow2 image; kvmfleet attaches raw images only (convert with qemu-img convert -O raw)"),
        (spec("bad", disks=[{"path": SEED_IMG, "readonly": True}, {"path": ODD_IMG}]), "$.disks[1].path",
         "not a multiple of 512"),
        (spec("bad", disks=[{"path": os.path.join(tmp, "absent.img")}]), "$.disks[0].path", "No such file"),
        (spec("bad", disks=[{"path": "/dev/null"}]), "$.disks[0].path", "neither a regular file nor a block device"),
        (spec("bad", disks=[{"path": SEED_IMG, "readonly": True}, {"path": SEED_IMG, "readonly": True}]),
         "$.disks[1].path", "already $.disks[0]"),
        (spec("bad", nics=[{"tap": "kvft-x"}, {"tap": "kvft-x"}]), "$.nics[1].tap", "already $.nics[0]"),
        (spec("bad", irqchip="none", nics=[{"tap": "kvft-x"}]), "$.irqchip", "in-kernel LAPIC"),
        (spec("bad", nics=[{"tap": "kvft-x", "mac": "52:54:00:zz:00:00"}]), "$.nics[0].mac", "MAC address"),
        (spec("bad", disks=[{"path": SEED_IMG, "serial": "x" * 21}]), "$.disks[0].serial", "20 characters"),
    ]
    for s, path, text in cases:
        check_refused(create(s), 422, "invalid_argument", path, text)


@test
def cli_create_with_disks_and_nics_and_show():
    data = image("cli-data.img")
    p = agent.ctl("vm", "create", "--name", "dev-cli", "--kernel", KERNEL, "--memory", "16MiB",
                  "--disk", data + ",serial=CLI-1", "--disk", SEED_IMG + ",readonly",
                  "--nic", "tap=kvft-cli", "--nic", "tap=kvft-cli2,mac=52:54:00:00:00:42", check=0)
    uuid = p.stdout.strip()
    s = get(uuid)["spec"]
    check_eq(s["disks"], [{"path": data, "readonly": False, "serial": "CLI-1"}, {"path": SEED_IMG, "readonly": True}])
    check_eq([n["tap"] for n in s["nics"]], ["kvft-cli", "kvft-cli2"])
    p = agent.ctl("vm", "show", "dev-cli", check=0)
    check(re.search(r"Disk 0 +%s serial=CLI-1\n" % re.escape(data), p.stdout), p.stdout)
    check(re.search(r"Disk 1 +%s \(read-only\)\n" % re.escape(SEED_IMG), p.stdout), p.stdout)
    check(re.search(r"NIC 0 +tap kvft-cli, mac %s\n" % derived_mac(uuid, 0), p.stdout), p.stdout)
    check(re.search(r"NIC 1 +tap kvft-cli2, mac 52:54:00:00:00:42\n", p.stdout), p.stdout)
    p = agent.ctl("vm", "create", "--name", "dev-cli2", "--kernel", KERNEL, "--disk", data + ",bogus", check=2)
    check("unknown option" in p.stderr, p.stderr)
    p = agent.ctl("vm", "create", "--name", "dev-cli2", "--kernel", KERNEL, "--nic", "mac=52:54:00:00:00:01",
                  check=2)
    check("tap=NAME" in p.stderr, p.stderr)
    p = agent.ctl("vm", "create", "--name", "dev-cli2", "--kernel", KERNEL, "--memory", "16MiB",
                  "--nic", "tap=kvft-cli")
    check(p.returncode != 0 and "kvft-cli" in p.stderr and "dev-cli" in p.stderr, p.stderr)
    delete("dev-cli")


@test
def domain_xml_with_a_disk_and_an_interface_defines():
    img = image("xml.img")
    xml = ("<domain type='kvm'><name>dev-xml</name><memory unit='MiB'>16</memory><vcpu>1</vcpu>"
           "<os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type><kernel>%s</kernel></os><devices>"
           "<disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/><source file='%s'/>"
           "<target dev='vda' bus='virtio'/><address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>"
           "</disk><interface type='ethernet'><target dev='kvft-xml' managed='no'/><model type='virtio'/>"
           "</interface></devices></domain>" % (KERNEL, img))
    r = agent.request("POST", "/v1/vms", body=xml, headers={"Content-Type": "application/xml"}, template="/v1/vms")
    check_eq(r.status, 201, repr(r))
    check_eq(r.json["spec"]["disks"], [{"path": img, "readonly": False}])
    check_eq(r.json["spec"]["nics"], [{"tap": "kvft-xml", "mac": derived_mac(r.json["uuid"], 0)}])
    warned = {w["xpath"] for w in r.json["warnings"]}
    check("/domain/devices/disk/address" in warned and "/domain/devices/disk/driver/@cache" in warned, warned)
    # the same tap from XML is the same conflict
    r = agent.request("POST", "/v1/vms", body=xml.replace("dev-xml", "dev-xml2").replace(img, image("xml2.img")),
                      headers={"Content-Type": "application/xml"}, template="/v1/vms")
    check_refused(r, 409, "conflict", "$.nics[0].tap", '"dev-xml"')
    delete("dev-xml")


@test
def undefine_frees_the_tap_and_the_image():
    delete("dev-a")
    r = create(spec("dev-d", disks=[{"path": ROOT_IMG}], nics=[{"tap": "kvft-a0"}]))
    check_eq(r.status, 201, repr(r))
    delete("dev-d")


@test
def responses_match_openapi():
    p = check_openapi_records()
    check_eq(p.returncode, 0, p.stdout + p.stderr)


try:
    run()
finally:
    agent.cleanup()
