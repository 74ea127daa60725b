"""Nested virtualization on this machine's KVM, through the real agent and kvmfleetctl: here there is
no vendor module with a nested parameter and KVM_CAP_NESTED_STATE is 0, so cpu.nested: true is refused
(JSON and domain XML, at define and at start) naming why, and the nested-state endpoints answer 409 on
a running VM, 404 for an unknown vCPU and 422 unsupported naming the capability on a paused one. The
working paths (SVM with an L2 running) are tested in the test host: tests/hostvm/test-nested.sh."""
import base64
import fcntl
import os
import sqlite3
import struct
import tempfile

from agentlib import Agent, check_openapi_records
from kvmtest import BUILD, check, check_eq, run, skip, test

GUESTS = os.path.join(BUILD, "guests")
KVM_CHECK_EXTENSION = 0xAE03
KVM_CAP_NESTED_STATE = 157
agent = Agent(extra_config="stop_timeout = 5\n").start()
STATE = "/v1/vms/{id}/vcpus/{n}/nested-state"


def cap_nested_state():
    fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    try:
        return fcntl.ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE)
    finally:
        os.close(fd)


def host_nested_usable():
    for vendor in ("kvm_intel", "kvm_amd"):
        p = "/sys/module/%s/parameters/nested" % vendor
        if os.path.exists(p):
            return open(p).read().strip() in ("1", "Y", "y") and cap_nested_state() > 0
    return False


def require_no_nested():
    if host_nested_usable():
        skip("this host has nested virtualization (vendor nested=1 and KVM_CAP_NESTED_STATE > 0); "
             "the refusals are tested where it is absent")


def spec(name, **kw):
    s = {"name": name, "vcpus": 2, "memory": "2MiB", "boot": {"kernel": os.path.join(GUESTS, "counter.elf")}}
    s.update(kw)
    return s


def vm_count(name):
    db = sqlite3.connect(os.path.join(agent.state, "inventory.db"))
    try:
        return db.execute("SELECT COUNT(*) FROM vms WHERE name = ?", (name,)).fetchone()[0]
    finally:
        db.close()


def events_for(name):
    ev = agent.request("GET", "/v1/events?limit=1000").json["events"]
    return [e for e in ev if (e.get("detail") or {}).get("name") == name or name in str(e.get("object"))]


def check_refusal(r, when):
    check_eq(r.status, 422, "%s: %r" % (when, r))
    check_eq(r.error_code(), "unsupported", when)
    err = r.json["error"]
    d = err["details"]
    check_eq(d["path"], "$.cpu.nested")
    checks = [x["check"] for x in d["reasons"]]
    # name which: no vendor module here, or its parameter is off; and the capability
    if cap_nested_state() == 0:
        check("KVM_CAP_NESTED_STATE" in checks, d)
        check("KVM_CAP_NESTED_STATE" in err["message"], err["message"])
        check_eq(d["capability"], "KVM_CAP_NESTED_STATE")
    if not any(os.path.exists("/sys/module/%s" % v) for v in ("kvm_intel", "kvm_amd")):
        check("vendor_module" in checks, d)
        check("neither kvm_intel nor kvm_amd" in err["message"], err["message"])
    return d


@test
def nested_spec_refused_at_define():
    require_no_nested()
    r = agent.request("POST", "/v1/vms", spec("nested-json", cpu={"nested": True}), template="/v1/vms")
    check_refusal(r, "define")
    check_eq(vm_count("nested-json"), 0, "a refused VM was recorded")
    check_eq(events_for("nested-json"), [], "a refused VM left events")
    r = agent.request("POST", "/v1/vms", spec("nested-off", cpu={"nested": False}), template="/v1/vms")
    check_eq(r.status, 201, repr(r))


@test
def nested_domain_xml_refused_at_define():
    require_no_nested()
    xml = ("<domain type='kvm'><name>nested-xml</name><memory unit='MiB'>2</memory><vcpu>1</vcpu>"
           "<os><type arch='x86_64'>hvm</type><kernel>%s</kernel></os>"
           "<cpu mode='host-passthrough'><feature policy='require' name='svm'/></cpu></domain>"
           % os.path.join(GUESTS, "counter.elf"))
    r = agent.request("POST", "/v1/vms", body=xml, headers={"Content-Type": "application/xml"}, template="/v1/vms")
    check_refusal(r, "define from XML")
    check_eq(vm_count("nested-xml"), 0, "a refused VM was recorded")


@test
def nested_spec_refused_at_start():
    """A VM defined while the host had nested support (here: written into the inventory as that
    host would have) is refused at start, with nothing changed."""
    require_no_nested()
    r = agent.request("POST", "/v1/vms", spec("nested-later"), template="/v1/vms")
    check_eq(r.status, 201, repr(r))
    agent.stop()
    db = sqlite3.connect(os.path.join(agent.state, "inventory.db"))
    try:
        (text,) = db.execute("SELECT spec FROM vms WHERE name = 'nested-later'").fetchone()
        import json
        s = json.loads(text)
        s["cpu"] = {"nested": True}
        db.execute("UPDATE vms SET spec = ? WHERE name = 'nested-later'", (json.dumps(s),))
        db.commit()
    finally:
        db.close()
    agent.start()
    before = len(events_for("nested-later"))
    r = agent.request("POST", "/v1/vms/nested-later/start", template=("/v1/vms/{id}/start", "start"))
    check_refusal(r, "start")
    check_eq(agent.request("GET", "/v1/vms/nested-later").json["state"], "defined")
    check_eq(len(events_for("nested-later")), before, "a refused start left events")
    p = agent.ctl("vm", "start", "nested-later")
    check_eq(p.returncode, 1, p.stderr)
    check("cpu.nested" in p.stderr and "unsupported" in p.stderr, p.stderr)


@test
def nested_state_needs_a_paused_vm():
    r = agent.request("POST", "/v1/vms", spec("nstate"), template="/v1/vms")
    check_eq(r.status, 201, repr(r))
    # not running at all
    r = agent.request("GET", "/v1/vms/nstate/vcpus/0/nested-state", template=STATE)
    check_eq(r.status, 409, repr(r))
    check_eq(r.error_code(), "invalid_state")
    check_eq(r.json["error"]["details"]["state"], "defined")
    r = agent.request("POST", "/v1/vms/nstate/start", template=("/v1/vms/{id}/start", "start"))
    check_eq(r.status, 200, repr(r))
    # running
    r = agent.request("GET", "/v1/vms/nstate/vcpus/0/nested-state", template=STATE)
    check_eq(r.status, 409, repr(r))
    check_eq(r.error_code(), "invalid_state")
    check_eq(r.json["error"]["details"]["state"], "running")
    r = agent.request("PUT", "/v1/vms/nstate/vcpus/0/nested-state", {"data": "AAAA"}, template=STATE)
    check_eq(r.status, 409, repr(r))
    p = agent.ctl("vm", "nested-state", "get", "nstate", "0")
    check_eq(p.returncode, 1, p.stderr)
    check("paused" in p.stderr and "invalid_state" in p.stderr, p.stderr)


@test
def nested_state_unknown_vcpu():
    r = agent.request("POST", "/v1/vms/nstate/pause", template=("/v1/vms/{id}/pause", "pause"))
    check_eq(r.status, 200, repr(r))
    r = agent.request("GET", "/v1/vms/nstate/vcpus/2/nested-state", template=STATE)
    check_eq(r.status, 404, repr(r))
    check_eq(r.error_code(), "not_found")
    check_eq(r.json["error"]["details"]["vcpus"], 2)
    r = agent.request("GET", "/v1/vms/nstate/vcpus/x/nested-state", template=STATE)
    check_eq(r.status, 400, repr(r))
    r = agent.request("GET", "/v1/vms/nosuchvm/vcpus/0/nested-state", template=STATE)
    check_eq(r.status, 404, repr(r))
    p = agent.ctl("vm", "nested-state", "get", "nstate", "7")
    check_eq(p.returncode, 1, p.stderr)
    check("no vCPU 7" in p.stderr, p.stderr)
    check_eq(agent.ctl("vm", "nested-state", "get", "nstate").returncode, 2)
    check_eq(agent.ctl("vm", "nested-state", "get", "nstate", "zero").returncode, 2)


@test
def nested_state_unsupported_names_capability():
    if cap_nested_state() != 0:
        skip("KVM_CAP_NESTED_STATE is %d here; the unsupported path needs a KVM without nested state"
             % cap_nested_state())
    for vcpu in (0, 1):
        r = agent.request("GET", "/v1/vms/nstate/vcpus/%d/nested-state" % vcpu, template=STATE)
        check_eq(r.status, 422, repr(r))
        check_eq(r.error_code(), "unsupported")
        check("KVM_CAP_NESTED_STATE" in r.json["error"]["message"], r.json)
        check_eq(r.json["error"]["details"]["capability"], "KVM_CAP_NESTED_STATE")
    r = agent.request("GET", "/v1/vms/nstate/vcpus/0/nested-state", headers={"Accept": "application/octet-stream"},
                      template=STATE)
    check_eq(r.status, 422, repr(r))
    blob = struct.pack("<HHI", 0x101, 1, 4224) + struct.pack("<Q", 0x7000) + bytes(4224 - 16)
    r = agent.request("PUT", "/v1/vms/nstate/vcpus/0/nested-state", {"data": base64.b64encode(blob).decode()},
                      template=STATE)
    check_eq(r.status, 422, repr(r))
    check_eq(r.error_code(), "unsupported")
    r = agent.request("PUT", "/v1/vms/nstate/vcpus/0/nested-state", body=blob,
                      headers={"Content-Type": "application/octet-stream"}, template=STATE)
    check_eq(r.status, 422, repr(r))
    check("KVM_CAP_NESTED_STATE" in r.json["error"]["message"], r.json)
    p = agent.ctl("vm", "nested-state", "get", "nstate", "0")
    check_eq(p.returncode, 1, p.stderr)
    check("KVM_CAP_NESTED_STATE" in p.stderr, p.stderr)
    with tempfile.NamedTemporaryFile() as f:
        f.write(blob)
        f.flush()
        p = agent.ctl("vm", "nested-state", "set", "nstate", "0", f.name)
        check_eq(p.returncode, 1, p.stderr)
        check("KVM_CAP_NESTED_STATE" in p.stderr, p.stderr)
    # the VM is unharmed and resumes
    r = agent.request("POST", "/v1/vms/nstate/resume", template=("/v1/vms/{id}/resume", "resume"))
    check_eq(r.status, 200, repr(r))
    check_eq(r.json["state"], "running")
    r = agent.request("POST", "/v1/vms/nstate/pause", template=("/v1/vms/{id}/pause", "pause"))
    check_eq(r.status, 200, repr(r))


@test
def nested_state_put_bodies_checked():
    r = agent.request("PUT", "/v1/vms/nstate/vcpus/0/nested-state", body=bytes(64 * 1024),
                      headers={"Content-Type": "application/octet-stream"}, template=STATE)
    check_eq(r.status, 413, repr(r))
    check_eq(r.error_code(), "payload_too_large")
    r = agent.request("PUT", "/v1/vms/nstate/vcpus/0/nested-state",
                      {"data": base64.b64encode(bytes(40 * 1024)).decode()}, template=STATE)
    check_eq(r.status, 413, repr(r))
    r = agent.request("PUT", "/v1/vms/nstate/vcpus/0/nested-state", body="x",
                      headers={"Content-Type": "text/plain"}, template=STATE)
    check_eq(r.status, 415, repr(r))
    r = agent.request("PUT", "/v1/vms/nstate/vcpus/0/nested-state", {"blob": "AAAA"}, template=STATE)
    check_eq(r.status, 422, repr(r))
    check_eq(r.error_code(), "invalid_argument")
    r = agent.request("PUT", "/v1/vms/nstate/vcpus/0/nested-state", {"data": "@@not base64@@"}, template=STATE)
    check(r.status == 422 and r.error_code() in ("invalid_argument", "unsupported"), repr(r))
    r = agent.request("DELETE", "/v1/vms/nstate/vcpus/0/nested-state", template=STATE)
    check_eq(r.status, 405, repr(r))


@test
def responses_match_openapi():
    agent.request("POST", "/v1/vms/nstate/stop", template=("/v1/vms/{id}/stop", "stop"))
    p = check_openapi_records()
    failures = [l for l in p.stdout.splitlines() if l.startswith("not ok") or l.startswith("#")]
    check(p.returncode == 0 and not failures, "\n".join(failures) + p.stderr)


try:
    run()
finally:
    agent.cleanup()
