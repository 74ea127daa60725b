"""kvmfleet-vmm save/restore on this machine's /dev/kvm: the snapshot control method, --restore, and
the refusals of a snapshot that must not be restored (docs/snapshot.md)."""
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from kvmtest import BUILD, check, check_eq, run, skip, test  # noqa: E402

VMM = os.path.join(BUILD, "kvmfleet-vmm")
GUESTS = os.path.join(BUILD, "guests")
TMP = tempfile.mkdtemp(prefix="kvmfleet-snapshot-test.")
EXIT_REFUSED = 3


def guest(name):
    return os.path.join(GUESTS, name)


def counter_spec(**kw):
    s = {"name": "snap", "vcpus": 2, "memory": "16MiB",
         "boot": {"kernel": guest("counter.elf"), "cmdline": "every=512"}}
    s.update(kw)
    return s


def ticks(text):
    return [int(x) for x in re.findall(r"tick (\d+)\n", text)]


class Vmm:
    seq = 0

    def __init__(self, spec=None, restore=None, extra=()):
        Vmm.seq += 1
        self.dir = os.path.join(TMP, "vm%d" % Vmm.seq)
        os.makedirs(self.dir)
        self.control = os.path.join(self.dir, "control.sock")
        args = [VMM, "--control", self.control, "--status-file", os.path.join(self.dir, "status.json")]
        if spec is not None:
            path = os.path.join(self.dir, "spec.json")
            with open(path, "w") as f:
                json.dump(spec, f)
            args += ["--spec", path]
        if restore:
            args += ["--restore", restore]
        self.proc = subprocess.Popen(args + list(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def wait_socket(self, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            if os.path.exists(self.control):
                return
            if self.proc.poll() is not None:
                raise AssertionError("VMM exited early with %d: %s" % (self.proc.returncode, self.proc.stderr.read()))
            time.sleep(0.01)
        raise AssertionError("control socket did not appear")

    def call(self, method, params=None, timeout=60):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(timeout)
        s.connect(self.control)
        req = {"id": 1, "method": method}
        if params is not None:
            req["params"] = params
        s.send(json.dumps(req).encode())
        reply = s.recv(1 << 20)
        s.close()
        return json.loads(reply)

    def result(self, method, params=None):
        r = self.call(method, params)
        check("result" in r, "%s failed: %r" % (method, r))
        return r["result"]

    def console(self, offset=0):
        return self.result("console", {"offset": offset})

    def wait_ticks(self, n, offset=0, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            t = ticks(self.console(offset)["data"])
            if len(t) >= n:
                return t
            time.sleep(0.05)
        raise AssertionError("fewer than %d ticks: %r" % (n, self.console(offset)))

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.call("stop")
            except OSError:
                pass
        try:
            out, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return self.proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def check_kvm():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        skip("/dev/kvm is not accessible")


def continues(saved, restored):
    """The restored console goes on exactly where the saved one stopped, even mid-line: the ticks of
    both together are 1, 2, 3, ... with none lost or repeated. Returns the first tick printed after."""
    before = ticks(saved)
    both = ticks(saved + restored)
    check_eq(both, list(range(1, len(both) + 1)), "ticks across the restore")
    check(len(both) >= len(before) + 2, "the restored VM did not count on: %r" % restored[:200])
    return both[len(before)]


def snapshot_counter(irqchip="kernel"):
    """Runs the counter, pauses it, snapshots it; returns (snapshot dir, console text at the pause)."""
    v = Vmm(counter_spec(irqchip=irqchip))
    try:
        v.wait_socket()
        v.wait_ticks(3)
        check_eq(v.result("pause")["state"], "paused")
        last = v.console()["data"]
        target = os.path.join(v.dir, "snap")
        check_eq(v.result("snapshot", {"dir": target})["dir"], target)
        check_eq(v.result("status")["state"], "paused", "a snapshot leaves the VM paused")
        return target, last
    finally:
        v.stop()


def restore_resumes_counting(irqchip):
    check_kvm()
    snap, last = snapshot_counter(irqchip)
    check(os.path.isfile(os.path.join(snap, "manifest.json")), "no manifest")
    check_eq(os.stat(snap).st_mode & 0o777, 0o700, "snapshot directory mode")
    check(not [n for n in os.listdir(os.path.dirname(snap)) if ".tmp-" in n], "temporary directory left behind")
    r = Vmm(restore=snap)
    try:
        r.wait_socket()
        r.wait_ticks(3)
        first = continues(last, r.console()["data"])
        check(first > 3, "the restored counter started over (irqchip %s)" % irqchip)
        st = r.result("status")
        check_eq(st["state"], "running")
        check_eq(st["irqchip"], irqchip)
        check_eq(len(st["vcpus"]), 2)
    finally:
        rc, out, err = r.stop()
    check_eq(rc, 0, "stop of the restored VM: " + err)


@test
def restore_resumes_counting_irqchip_kernel():
    restore_resumes_counting("kernel")


@test
def restore_resumes_counting_irqchip_split():
    restore_resumes_counting("split")


@test
def restore_resumes_counting_irqchip_none():
    restore_resumes_counting("none")


@test
def restore_paused_then_resume():
    check_kvm()
    snap, last = snapshot_counter()
    r = Vmm(restore=snap, extra=["--paused"])
    try:
        r.wait_socket()
        check_eq(r.result("status")["state"], "paused")
        time.sleep(0.3)
        check_eq(r.console()["next_offset"], 0, "a VM restored paused runs no guest code")
        check_eq(r.result("resume")["state"], "running")
        r.wait_ticks(3)
        continues(last, r.console()["data"])
    finally:
        r.stop()


@test
def snapshot_refusals():
    check_kvm()
    v = Vmm(counter_spec())
    try:
        v.wait_socket()
        target = os.path.join(v.dir, "snap")
        r = v.call("snapshot", {"dir": target})
        check_eq(r.get("error", {}).get("code"), "invalid_state", "snapshot of a running VM: %r" % r)
        check(not os.path.exists(target), "a refused snapshot wrote something")
        v.result("pause")
        r = v.call("snapshot", {"dir": "relative/snap"})
        check_eq(r["error"]["code"], "invalid_argument")
        check("$.dir" in r["error"]["message"], r)
        os.makedirs(target)
        with open(os.path.join(target, "x"), "w") as f:
            f.write("x")
        r = v.call("snapshot", {"dir": target})
        check_eq(r["error"]["code"], "invalid_argument")
        check("not empty" in r["error"]["message"], r)
        r = v.call("snapshot", {"dir": "/proc/kvmfleet-no-such/snap"})
        check_eq(r["error"]["code"], "snapshot_failed", "unwritable target: %r" % r)
        empty = os.path.join(v.dir, "empty")
        os.makedirs(empty)
        v.result("snapshot", {"dir": empty})  # an empty directory is a valid target
        check(os.path.isfile(os.path.join(empty, "manifest.json")), "no manifest in the empty target")
    finally:
        v.stop()


def manifest_edit(snap, fn):
    path = os.path.join(snap, "manifest.json")
    with open(path) as f:
        m = json.load(f)
    fn(m)
    with open(path, "w") as f:
        json.dump(m, f)


def expect_refused(snap, *words):
    r = Vmm(restore=snap)
    rc, out, err = r.stop()
    check_eq(rc, EXIT_REFUSED, "restore of a bad snapshot: " + err)
    check(not os.path.exists(r.control), "a refused restore listened on its control socket")
    for w in words:
        check(w in err, "the refusal does not name %r: %s" % (w, err))


@test
def restore_refuses_bad_snapshots():
    check_kvm()
    good, _ = snapshot_counter()

    def copy(name):
        d = os.path.join(TMP, name)
        shutil.copytree(good, d)
        return d

    with open(os.path.join(good, "manifest.json")) as f:
        manifest = json.load(f)
    mem = [s["file"] for s in manifest["memslots"]][0]

    d = copy("bad-checksum")
    with open(os.path.join(d, mem), "r+b") as f:
        f.seek(0x2000)
        b = f.read(1)
        f.seek(0x2000)
        f.write(bytes([b[0] ^ 0xff]))
    expect_refused(d, mem, "SHA-256")

    d = copy("truncated")
    os.truncate(os.path.join(d, mem), 4096)
    expect_refused(d, mem, "4096 bytes")

    d = copy("vendor")
    manifest_edit(d, lambda m: m["host"].update(
        cpu_vendor="AuthenticAMD" if m["host"]["cpu_vendor"] != "AuthenticAMD" else "GenuineIntel"))
    expect_refused(d, "cpu_vendor")

    d = copy("nested")
    manifest_edit(d, lambda m: m["host"].update(nested_state_size=1 << 20))
    expect_refused(d, "nested_state_size")

    d = copy("version")
    manifest_edit(d, lambda m: m.update(version=99))
    expect_refused(d, "version")

    d = copy("no-manifest")
    os.unlink(os.path.join(d, "manifest.json"))
    expect_refused(d, "manifest.json")

    d = copy("spec-vcpus")
    with open(os.path.join(d, "spec.json")) as f:
        spec = json.load(f)
    spec["vcpus"] = 1
    data = json.dumps(spec).encode()
    with open(os.path.join(d, "spec.json"), "wb") as f:
        f.write(data)
    manifest_edit(d, lambda m: [x.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
                                for x in m["files"] if x["name"] == "spec.json"])
    expect_refused(d, "vcpus")

    # a spec given with --restore must describe the same machine
    r = Vmm(spec=counter_spec(vcpus=1), restore=good)
    rc, out, err = r.stop()
    check_eq(rc, EXIT_REFUSED, err)
    check("$.vcpus" in err, err)


@test
def memtouch_checksum_survives_restore():
    check_kvm()
    spec = {"name": "mt", "vcpus": 1, "memory": "256MiB", "boot": {"kernel": guest("memtouch.elf")}}
    ref = Vmm(spec)
    out, err = ref.proc.communicate(timeout=120)
    expected = re.search(r"memtouch: pages=\d+ mismatches=0 sum=0x[0-9a-f]+", out.decode())
    check(expected, "reference run: %r" % out[-400:])

    v = Vmm(spec)
    v.wait_socket()
    end = time.time() + 10
    while "region" not in v.console()["data"] and time.time() < end:
        time.sleep(0.001)
    v.result("pause")
    snap = os.path.join(v.dir, "snap")
    v.result("snapshot", {"dir": snap})
    before = v.console()["data"]
    v.stop()
    r = Vmm(restore=snap)
    out, err = r.proc.communicate(timeout=120)
    text = before + out.decode()
    got = re.search(r"memtouch: pages=\d+ mismatches=\d+ sum=0x[0-9a-f]+", text)
    check(got, "restored run: %r %r" % (text[-400:], err[-400:]))
    check_eq(got.group(0), expected.group(0), "memtouch's checksum after restore")
    check_eq(r.proc.returncode, 64, "memtouch exits through debug-exit 0")


@test
def user_memslot_survives_restore():
    check_kvm()
    v = Vmm(counter_spec())
    try:
        v.wait_socket()
        s = v.result("memslot.create", {"gpa": "1GiB", "size": "2MiB", "flags": {"dirty_log": True}})
        v.result("pause")
        snap = os.path.join(v.dir, "snap")
        v.result("snapshot", {"dir": snap})
    finally:
        v.stop()
    with open(os.path.join(snap, "manifest.json")) as f:
        m = json.load(f)
    user = [x for x in m["memslots"] if x["role"] == "user"]
    check_eq(len(user), 1, m["memslots"])
    check_eq(os.path.getsize(os.path.join(snap, user[0]["file"])), 2 << 20)
    r = Vmm(restore=snap)
    try:
        r.wait_socket()
        slots = r.result("memslot.list")["memslots"]
        got = [x for x in slots if x["slot"] == s["slot"]]
        check_eq(len(got), 1, slots)
        check_eq(got[0]["gpa"], 1 << 30)
        check_eq(got[0]["size"], 2 << 20)
        check_eq(got[0]["role"], "user")
        check_eq(got[0]["flags"]["dirty_log"], True)
    finally:
        r.stop()


run()
