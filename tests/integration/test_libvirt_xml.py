"""libvirt domain XML against real libvirt on both sides: a private libvirtd (Debian's
libvirt-daemon-system, started as `libvirtd -d` on its own socket) makes domains with
`virt-install --print-xml` and `virsh define` + `virsh dumpxml`; each is POSTed to the real agent as
application/xml (201 with the expected warnings), read back with Accept: application/xml, checked with
virt-xml-validate, defined again in libvirtd, dumped, and imported again to the identical spec. Also the
refusals, strict mode and hostile documents through HTTP."""
import grp
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from agentlib import Agent, UnixHTTPConnection, check_openapi_records
from kvmtest import BUILD, check, check_eq, run, skip, test

TOOLS = ("libvirtd", "virsh", "virt-install", "virt-xml-validate")
KERNEL = os.path.join(BUILD, "guests", "counter.elf")
PREFIX = "kvmfleet-xmltest-%d" % os.getpid()
EXPECTED_WARNINGS = {"/domain/devices/emulator", "/domain/clock", "/domain/features/acpi"}

agent = Agent().start()
libvirt = {"uri": None, "dir": None, "pid": None, "why": None, "defined": set()}


def missing_tools():
    return [t for t in TOOLS if not shutil.which(t)]


def virsh(*args, check_rc=True, stdin=None):
    p = subprocess.run(["virsh", "-c", libvirt["uri"]] + list(args), capture_output=True, text=True, timeout=180,
                       input=stdin)
    if check_rc and p.returncode != 0:
        raise AssertionError("virsh %s: exit %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def kvm_usable_by_libvirt_qemu():
    """libvirtd probes QEMU as libvirt-qemu (group kvm); without access to /dev/kvm it re-probes QEMU on
    every define (tens of seconds each). Debian's udev rule gives /dev/kvm root:kvm 0660; restore that."""
    try:
        kvm_gid = grp.getgrnam("kvm").gr_gid
    except KeyError:
        return
    st = os.stat("/dev/kvm")
    if st.st_gid != kvm_gid or (st.st_mode & 0o060) != 0o060:
        print("# /dev/kvm: setting group kvm, mode g+rw (Debian's udev default) for libvirt-qemu")
        os.chown("/dev/kvm", -1, kvm_gid)
        os.chmod("/dev/kvm", st.st_mode | 0o060)


def start_libvirtd():
    if libvirt["uri"] or libvirt["why"]:
        return
    missing = missing_tools()
    if missing:
        libvirt["why"] = "not installed: %s (libvirt-daemon-system, libvirt-clients, virtinst)" % ", ".join(missing)
        return
    if not os.path.exists("/dev/kvm"):
        libvirt["why"] = "no /dev/kvm"
        return
    kvm_usable_by_libvirt_qemu()
    d = tempfile.mkdtemp(prefix="kvmfleet-libvirt.")
    with open(os.path.join(d, "libvirtd.conf"), "w") as f:
        f.write('unix_sock_dir = "%s"\nlisten_tls = 0\nlisten_tcp = 0\nauth_unix_rw = "none"\n'
                'auth_unix_ro = "none"\nlog_outputs = "3:file:%s/libvirtd.log"\n' % (d, d))
    pidfile = os.path.join(d, "libvirtd.pid")
    subprocess.run(["libvirtd", "-d", "--config", os.path.join(d, "libvirtd.conf"), "--pid-file", pidfile],
                   check=True, timeout=30)
    libvirt["dir"] = d
    libvirt["uri"] = "qemu:///system?socket=%s/libvirt-sock" % d
    deadline = time.time() + 60
    while time.time() < deadline:
        if os.path.exists(pidfile):
            with open(pidfile) as f:
                text = f.read().strip()
            if text:
                libvirt["pid"] = int(text)
        if libvirt["pid"] and virsh("version", check_rc=False).returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError("libvirtd did not answer on %s" % libvirt["uri"])


def need_libvirt():
    start_libvirtd()
    if libvirt["why"]:
        skip(libvirt["why"])


def stop_libvirtd():
    for name in sorted(libvirt["defined"]):
        virsh("undefine", name, check_rc=False)
    if libvirt["pid"]:
        try:
            os.kill(libvirt["pid"], signal.SIGTERM)
            for _ in range(100):
                os.kill(libvirt["pid"], 0)
                time.sleep(0.1)
        except ProcessLookupError:
            pass
    if libvirt["dir"]:
        shutil.rmtree(libvirt["dir"], ignore_errors=True)


def virt_install(name, memory_mib, vcpus=1):
    p = subprocess.run(["virt-install", "--connect", libvirt["uri"], "--print-xml", "--name", name,
                        "--memory", str(memory_mib), "--vcpus", str(vcpus), "--cpu", "host-passthrough",
                        "--boot", "kernel=%s,kernel_args=console=ttyS0 quiet" % KERNEL, "--osinfo", "generic",
                        "--disk", "none", "--network", "none", "--graphics", "none", "--noautoconsole"],
                       capture_output=True, text=True, timeout=180)
    check_eq(p.returncode, 0, "virt-install: " + p.stderr)
    return p.stdout


def define_and_dump(xml):
    with tempfile.NamedTemporaryFile("w", suffix=".xml") as f:
        f.write(xml)
        f.flush()
        out = virsh("define", f.name).stdout
    name = re.search(r"Domain '([^']+)' defined", out).group(1)
    libvirt["defined"].add(name)
    return virsh("dumpxml", "--inactive", name).stdout


def post_xml(xml, strict=False):
    return agent.request("POST", "/v1/vms" + ("?strict=true" if strict else ""), body=xml,
                         headers={"Content-Type": "application/xml"}, template="/v1/vms")


def get_xml(vm_id):
    r = agent.request("GET", "/v1/vms/" + vm_id, headers={"Accept": "application/xml"}, record=False)
    check_eq(r.status, 200, repr(r))
    check(r.headers.get("Content-Type", "").startswith("application/xml"), repr(r.headers))
    return r.raw


def delete(vm_id):
    r = agent.request("DELETE", "/v1/vms/" + vm_id, record=False)
    check(r.status in (200, 204), repr(r))


def validate(xml):
    with tempfile.NamedTemporaryFile("w", suffix=".xml") as f:
        f.write(xml)
        f.flush()
        p = subprocess.run(["virt-xml-validate", f.name, "domain"], capture_output=True, text=True, timeout=60)
    check_eq(p.returncode, 0, "virt-xml-validate: %s%s\n%s" % (p.stdout, p.stderr, xml))


def import_round_trip(name, xml, expect_memory):
    """POST → 201 with the expected warnings → dumpxml → validate → virsh define → dumpxml → same spec."""
    r = post_xml(xml)
    check_eq(r.status, 201, "%s: %r" % (name, r))
    vm = r.json
    check_eq(vm["spec"]["memory"], expect_memory, name)
    check_eq(vm["spec"]["boot"]["kernel"], KERNEL)
    check_eq(vm["spec"]["boot"].get("cmdline"), "console=ttyS0 quiet")
    xpaths = {w["xpath"] for w in vm["warnings"]}
    check(EXPECTED_WARNINGS <= xpaths, "%s: warnings %s lack %s" % (name, sorted(xpaths), EXPECTED_WARNINGS - xpaths))
    check(any(x.startswith("/domain/devices/controller") for x in xpaths), "no controller warning: %s" % sorted(xpaths))
    for w in vm["warnings"]:
        check(w["reason"].startswith("ignored: "), repr(w))

    ours = get_xml(vm["uuid"])
    validate(ours)
    check("<uuid>%s</uuid>" % vm["uuid"] in ours, ours)
    virsh("undefine", name, check_rc=False)
    again_xml = define_and_dump(ours)
    delete(vm["uuid"])
    r = post_xml(again_xml)
    check_eq(r.status, 201, "re-import of libvirt's dump of kvmfleet's XML: %r\n%s" % (r, again_xml))
    check_eq(r.json["spec"], vm["spec"], "spec after kvmfleet → libvirt → kvmfleet")
    delete(r.json["uuid"])


@test
def virt_install_print_xml_imports():
    need_libvirt()
    for i, mib in enumerate((16, 48, 1024)):
        name = "%s-vi%d" % (PREFIX, i)
        import_round_trip(name, virt_install(name, mib, vcpus=min(1 + i, os.cpu_count() or 1)), mib << 20)


@test
def virsh_dumpxml_imports_in_every_unit():
    need_libvirt()
    base_name = "%s-units" % PREFIX
    base = virt_install(base_name, 64)
    # The same domain with its memory written in other units libvirt accepts; libvirt rounds to KiB.
    variants = [("bytes", "67108864", 64 << 20), ("KiB", "65536", 64 << 20), ("M", "64", 64 << 20),
                ("GiB", "1", 1 << 30), ("MB", "64", 64000000), ("KB", "128000", 128000000)]
    for unit, value, expect in variants:
        xml = re.sub(r"<memory>\d+</memory>", "<memory unit='%s'>%s</memory>" % (unit, value), base)
        xml = re.sub(r"<currentMemory>\d+</currentMemory>", "", xml)
        dumped = define_and_dump(xml)
        import_round_trip(base_name, dumped, expect)
        virsh("undefine", base_name, check_rc=False)


@test
def refusals_list_every_xpath():
    xml = ("<domain type='kvm'><name>%s-refused</name><memory unit='MiB'>16</memory><vcpu>1</vcpu>"
           "<os><type>hvm</type><kernel>%s</kernel></os><devices>"
           "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/a.qcow2'/>"
           "<target dev='vda'/></disk>"
           "<interface type='network'><source network='default'/></interface>"
           "<hostdev mode='subsystem' type='pci'/><disk type='file' device='cdrom'><target dev='sda'/></disk>"
           "</devices></domain>" % (PREFIX, KERNEL))
    r = post_xml(xml)
    check_eq(r.status, 422, repr(r))
    check_eq(r.error_code(), "unsupported")
    check_eq([x["xpath"] for x in r.json["error"]["details"]["refused"]],
             ["/domain/devices/disk[1]/driver/@type", "/domain/devices/interface/@type", "/domain/devices/hostdev",
              "/domain/devices/disk[2]/@device"])
    check_eq(agent.request("GET", "/v1/vms/%s-refused" % PREFIX, record=False).status, 404)


@test
def strict_refuses_what_is_not_mapped():
    xml = ("<domain type='kvm'><name>%s-strict</name><memory unit='MiB'>16</memory><vcpu>1</vcpu>"
           "<os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s</kernel></os><clock offset='utc'/>"
           "<features><acpi/><apic/></features></domain>" % (PREFIX, KERNEL))
    r = post_xml(xml, strict=True)
    check_eq(r.status, 422, repr(r))
    check_eq(sorted(x["xpath"] for x in r.json["error"]["details"]["refused"]),
             ["/domain/clock", "/domain/features/acpi", "/domain/os/type/@machine"])
    r = post_xml(xml)
    check_eq(r.status, 201, repr(r))
    check_eq(len(r.json["warnings"]), 3)
    delete(r.json["uuid"])
    r = agent.request("POST", "/v1/vms?strict=maybe", body=xml, headers={"Content-Type": "application/xml"},
                      record=False)
    check_eq(r.status, 400, repr(r))


@test
def hostile_documents_refused_quickly():
    with tempfile.NamedTemporaryFile("w", delete=False) as f:
        f.write("MARKER-c0ffee")
        secret = f.name
    laughs = "".join("<!ENTITY l%d '%s'>" % (i, ("&l%d;" % (i - 1)) * 10) for i in range(1, 10))
    cases = {
        "xxe-file": "<!DOCTYPE domain [<!ENTITY x SYSTEM 'file://%s'>]><domain type='kvm'><name>&x;</name></domain>"
                    % secret,
        "xxe-http": "<!DOCTYPE domain [<!ENTITY x SYSTEM 'http://127.0.0.1:9/x'>]><domain type='kvm'><name>&x;</name>"
                    "</domain>",
        "xxe-dtd": "<!DOCTYPE domain SYSTEM 'http://127.0.0.1:9/domain.dtd'><domain type='kvm'/>",
        "billion-laughs": "<!DOCTYPE domain [<!ENTITY l0 'lol'>%s]><domain type='kvm'><name>&l9;</name></domain>" % laughs,
        "deep": "<domain type='kvm'><metadata>" + "<a:a xmlns:a='u'>" * 5000 + "</domain>",
        "invalid-utf8": b"<domain type='kvm'><name>\xff\xfe</name></domain>",
    }
    try:
        for what, body in cases.items():
            start = time.time()
            r = agent.request("POST", "/v1/vms", body=body, headers={"Content-Type": "application/xml"}, record=False,
                              timeout=60)
            took = time.time() - start
            check(400 <= r.status < 500, "%s: %r" % (what, r))
            check("MARKER" not in r.raw, what)
            check(took < (10 if what == "huge" else 2), "%s took %.2f s" % (what, took))
            print("# %s: %d %s in %.3f s" % (what, r.status, r.error_code(), took))
        # 100 MB: refused from its Content-Length before the body is read.
        start = time.time()
        conn = UnixHTTPConnection(agent.socket, timeout=30)
        conn.putrequest("POST", "/v1/vms")
        conn.putheader("Content-Type", "application/xml")
        conn.putheader("Content-Length", str(100 << 20))
        conn.endheaders()
        try:
            conn.send(b"<domain type='kvm'><description>" + b"x" * (1 << 20))
        except OSError:
            pass
        resp = conn.getresponse()
        body = resp.read().decode()
        conn.close()
        check_eq(resp.status, 413, body)
        check(time.time() - start < 5, "100 MB body took %.2f s" % (time.time() - start))
        print("# 100MB: %d in %.3f s" % (resp.status, time.time() - start))
    finally:
        os.unlink(secret)
    check_eq(agent.request("GET", "/v1/health", record=False).status in (200, 503), True)
    check(agent.proc.poll() is None, "agent died")


@test
def dumpxml_of_a_json_defined_vm_validates():
    # cpu.nested: true is refused where the host can't nest (tests/integration/test_nested.py)
    kvm = agent.request("GET", "/v1/host/kvm", record=False).json
    param = (kvm["nested"].get("parameter") or {}).get("effective") or ""
    nested = param in ("1", "Y", "y") and kvm["nested_state_max_size"] > 0
    spec = {"name": PREFIX + "-json", "vcpus": 2, "memory": "32MiB", "boot": {"kernel": KERNEL, "cmdline": "a=b <c>"},
            "cpu": {"nested": nested}, "irqchip": "split", "memory_backing": "anonymous", "on_crash": "restart",
            "libvirt": {"title": "from JSON", "metadata": ["<app:x xmlns:app=\"urn:app\">1</app:x>"]}}
    r = agent.request("POST", "/v1/vms", spec, record=False)
    check_eq(r.status, 201, repr(r))
    xml = get_xml(spec["name"])
    if shutil.which("virt-xml-validate"):
        validate(xml)
    r2 = agent.request("DELETE", "/v1/vms/" + spec["name"], record=False)
    check(r2.status in (200, 204), repr(r2))
    r3 = post_xml(xml)
    check_eq(r3.status, 201, repr(r3))
    check_eq(r3.json["spec"], r.json["spec"])
    check_eq(r3.json["warnings"], [])
    delete(r3.json["uuid"])


@test
def kvmfleetctl_define_and_dumpxml():
    name = PREFIX + "-ctl"
    xml = ("<domain type='kvm'><name>%s</name><memory unit='MiB'>8</memory><vcpu>1</vcpu>"
           "<os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s</kernel></os></domain>" % (name, KERNEL))
    with tempfile.NamedTemporaryFile("w", suffix=".xml") as f:
        f.write(xml)
        f.flush()
        p = agent.ctl("vm", "define", "--strict", f.name, check=1)
        check("/domain/os/type/@machine" in p.stderr, p.stderr)
        p = agent.ctl("vm", "define", f.name, check=0)
        check("defined" in p.stdout and "warning: /domain/os/type/@machine" in p.stdout, p.stdout)
    p = agent.ctl("vm", "dumpxml", name, check=0)
    check(p.stdout.startswith("<domain type=\"kvm\">") and "<name>%s</name>" % name in p.stdout, p.stdout)
    check("<memory unit=\"KiB\">8192</memory>" in p.stdout, p.stdout)
    if shutil.which("virt-xml-validate"):
        validate(p.stdout)
    agent.ctl("vm", "dumpxml", PREFIX + "-nonexistent", check=1)
    delete(name)


@test
def responses_match_openapi():
    p = check_openapi_records()
    check_eq(p.returncode, 0, p.stdout + p.stderr)


try:
    run()
finally:
    stop_libvirtd()
    agent.cleanup()
