"""kvmfleet-vmm on this machine's /dev/kvm: every test runs a real VM with a test guest."""
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from kvmtest import BUILD, check, check_eq, run, skip, test  # noqa: E402

VMM = os.path.join(BUILD, "kvmfleet-vmm")
GUESTS = os.path.join(BUILD, "guests")
TMP = tempfile.mkdtemp(prefix="kvmfleet-vmm-test.")


def guest(name):
    return os.path.join(GUESTS, name)


def spec(kernel="hello.elf", **kw):
    s = {"name": "t", "vcpus": 1, "memory": "16MiB", "boot": {"kernel": guest(kernel)}}
    s.update(kw)
    return s


class Vmm:
    """A kvmfleet-vmm process with its control socket in a fresh directory."""

    seq = 0

    def __init__(self, spec_obj, console_socket=False, extra=()):
        Vmm.seq += 1
        self.dir = os.path.join(TMP, "vm%d" % Vmm.seq)
        os.makedirs(self.dir)
        self.control = os.path.join(self.dir, "control.sock")
        self.console = os.path.join(self.dir, "console.sock") if console_socket else None
        self.status_file = os.path.join(self.dir, "status.json")
        self.spec_file = os.path.join(self.dir, "spec.json")
        with open(self.spec_file, "w") as f:
            f.write(spec_obj if isinstance(spec_obj, str) else json.dumps(spec_obj))
        args = [VMM, "--spec", self.spec_file, "--control", self.control, "--status-file", self.status_file]
        if self.console:
            args += ["--console-socket", self.console]
        self.proc = subprocess.Popen(args + list(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = self.err = None

    def wait_socket(self, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            if os.path.exists(self.control) and (not self.console or os.path.exists(self.console)):
                return
            if self.proc.poll() is not None:
                raise AssertionError("VMM exited early with %d: %s" % (self.proc.returncode, self.proc.stderr.read()))
            time.sleep(0.01)
        raise AssertionError("control socket did not appear")

    def call(self, method, params=None, raw=None, timeout=10):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(timeout)
        end = time.time() + timeout
        while True:
            try:
                s.connect(self.control)
                break
            except BlockingIOError:  # listen backlog full for a moment: the VMM is still accepting
                if time.time() > end:
                    raise
                time.sleep(0.01)
        if raw is None:
            req = {"id": 1, "method": method}
            if params is not None:
                req["params"] = params
            raw = json.dumps(req).encode()
        s.send(raw)
        reply = s.recv(1 << 20)
        s.close()
        return json.loads(reply)

    def result(self, method, params=None):
        r = self.call(method, params)
        check("result" in r, "%s failed: %r" % (method, r))
        return r["result"]

    def finish(self, timeout=30):
        try:
            self.out, self.err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.out, self.err = self.proc.communicate()
            raise AssertionError("VMM did not exit within %ss" % timeout)
        self.out = self.out.decode(errors="replace")
        self.err = self.err.decode(errors="replace")
        return self.proc.returncode

    def final_status(self):
        with open(self.status_file) as f:
            return json.load(f)

    def console_text(self):
        r = self.result("console", {"offset": 0})
        return r["data"]


def run_to_end(spec_obj, timeout=30, **kw):
    v = Vmm(spec_obj, **kw)
    rc = v.finish(timeout)
    return v, rc


def check_no_kvm():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        skip("/dev/kvm is not accessible")


@test
def hello_output_reaches_stdout_when_standalone():
    check_no_kvm()
    v, rc = run_to_end(spec())
    check("hello from vcpu 0 of 1\n" in v.out, "stdout: %r" % v.out)
    check("hello: all 1 vcpus ran" in v.out)
    check_eq(rc, 64, "exit status for debug-exit code 0")


@test
def hello_output_reaches_console_log_and_socket():
    check_no_kvm()
    log = os.path.join(TMP, "hello-console.log")
    v = Vmm(spec(console={"log": log}, boot={"kernel": guest("hello.elf"), "cmdline": "wait=1"}), console_socket=True)
    v.wait_socket()
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(10)
    c.connect(v.console)
    time.sleep(0.05)
    c.send(b"Z")  # the guest waits for one byte of input before it says hello
    got = b""
    end = time.time() + 10
    while b"vcpus ran" not in got and time.time() < end:
        chunk = c.recv(4096)
        if not chunk:
            break
        got += chunk
    c.close()
    rc = v.finish()
    check_eq(rc, 64)
    text = got.decode()
    check("got Z\n" in text, "console socket: %r" % text)
    check("hello from vcpu 0 of 1" in text, "console socket: %r" % text)
    with open(log) as f:
        logged = f.read()
    check("got Z\nhello from vcpu 0 of 1\nhello: all 1 vcpus ran\n" == logged, "console log: %r" % logged)
    check("hello" not in v.out, "with a console log, stdout stays quiet: %r" % v.out)
    check(not os.path.exists(v.control), "control socket left behind")
    check(not os.path.exists(v.console), "console socket left behind")


@test
def debug_exit_ends_vm_with_code():
    check_no_kvm()
    v, rc = run_to_end(spec(boot={"kernel": guest("hello.elf"), "cmdline": "exit=7"}))
    check_eq(rc, 64 + 7)
    st = v.final_status()
    check_eq(st["exit"]["reason"], "debug-exit")
    check_eq(st["exit"]["code"], 7)
    check_eq(st["state"], "stopped")


@test
def reset_ends_vm_with_reason_reset():
    check_no_kvm()
    v, rc = run_to_end(spec("reset.elf"))
    check_eq(rc, 11)
    check_eq(v.final_status()["exit"]["reason"], "reset")
    check("reset: pulsing" in v.out)
    check("still running" not in v.out)


def memtouch_expected(start, end):
    total = 0
    for gpa in range(start, end, 4096):
        total = (total + ((((gpa >> 12) * 0x9E3779B97F4A7C15) & (2**64 - 1)) ^ 0xA5A5A5A5A5A5A5A5)) & (2**64 - 1)
    return total


def memtouch(size, backing=None):
    check_no_kvm()
    s = spec("memtouch.elf", memory=size)
    if backing:
        s["memory_backing"] = backing
    v, rc = run_to_end(s, timeout=60)
    m = re.search(r"memtouch: region (0x[0-9a-f]+)-(0x[0-9a-f]+) pages=(\d+)", v.out)
    check(m, "no region line: %r %r" % (v.out, v.err))
    start, end, pages = int(m.group(1), 16), int(m.group(2), 16), int(m.group(3))
    mem = int(size.replace("MiB", "")) << 20
    check_eq(end, mem, "RAM ends at the guest memory size")
    check(0x100000 < start < 0x200000, "start %x" % start)
    check_eq(pages, (end - start) // 4096)
    m = re.search(r"memtouch: pages=(\d+) mismatches=(\d+) sum=(0x[0-9a-f]+)", v.out)
    check(m, "no sum line: %r" % v.out)
    check_eq(int(m.group(1)), pages)
    check_eq(int(m.group(2)), 0, "mismatches")
    check_eq(int(m.group(3), 16), memtouch_expected(start, end), "checksum")
    check_eq(rc, 64, "debug-exit 0")


@test
def memtouch_checksum_2mib():
    memtouch("2MiB")


@test
def memtouch_checksum_64mib():
    memtouch("64MiB")


@test
def memtouch_anonymous_backing():
    memtouch("8MiB", "anonymous")


@test
def hugetlb_refused_without_reserved_pages_or_works_with_them():
    check_no_kvm()
    try:
        with open("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages") as f:
            free = int(f.read())
    except OSError:
        free = 0
    if free >= 4:
        memtouch("8MiB", "hugetlb")
        return
    v, rc = run_to_end(spec(memory="8MiB", memory_backing="hugetlb"))
    check_eq(rc, 1)
    check("$.memory_backing: hugetlb needs 4 free 2MiB huge pages" in v.err, v.err)


def ticks(text):
    return [int(x) for x in re.findall(r"tick (\d+)\n", text)]


@test
def pause_stops_counter_and_resume_restarts_it():
    check_no_kvm()
    v = Vmm(spec("counter.elf", boot={"kernel": guest("counter.elf"), "cmdline": "every=512"}))
    try:
        v.wait_socket()
        end = time.time() + 10
        while len(ticks(v.console_text())) < 3 and time.time() < end:
            time.sleep(0.05)
        check(len(ticks(v.console_text())) >= 3, "counter does not print")
        st = v.result("pause")
        check_eq(st["state"], "paused")
        check(all(c["state"] == "parked" for c in st["vcpus"]), st["vcpus"])
        before = v.result("console", {"offset": 0})
        time.sleep(0.5)
        after = v.result("console", {"offset": 0})
        check_eq(after["next_offset"], before["next_offset"], "console grew while paused")
        check_eq(v.result("status")["state"], "paused")
        last = ticks(after["data"])[-1]
        st = v.result("resume")
        check_eq(st["state"], "running")
        end = time.time() + 10
        while time.time() < end:
            now = v.result("console", {"offset": before["next_offset"]})
            if len(ticks(now["data"])) >= 2:
                break
            time.sleep(0.05)
        resumed = ticks(now["data"])
        check(len(resumed) >= 2, "counter did not restart: %r" % now)
        # The pause may catch a tick line half-printed ("tick 1" + "4\n" after resume): judge the
        # whole console, where every tick must follow the one before, none lost or repeated.
        whole = ticks(after["data"] + now["data"])
        check(whole[-len(resumed):] == resumed and last in whole, (last, whole[-5:]))
        check_eq(whole, list(range(whole[0], whole[0] + len(whole))), "counting goes on where it stopped")
        r = v.call("resume")
        check("result" in r, "resume of a running VM is a no-op: %r" % r)
        check_eq(v.result("stop")["state"], "stopping")
        check_eq(v.finish(), 0)
        check_eq(v.final_status()["exit"]["reason"], "stopped")
    finally:
        if v.proc.poll() is None:
            v.proc.kill()


@test
def two_vcpus_both_run():
    check_no_kvm()
    v, rc = run_to_end(spec(vcpus=2))
    check("hello from vcpu 0 of 2" in v.out, v.out)
    check("hello from vcpu 1 of 2" in v.out, v.out)
    check("hello: all 2 vcpus ran" in v.out, v.out)
    check_eq(rc, 64)
    check_eq(len(v.final_status()["vcpus"]), 2)


@test
def every_irqchip_mode_starts():
    check_no_kvm()
    for mode in ("kernel", "split", "none"):
        v, rc = run_to_end(spec(vcpus=2, irqchip=mode, pit={"reinject": mode != "kernel"}))
        check_eq(rc, 64, "irqchip %s: %s" % (mode, v.err))
        check("hello: all 2 vcpus ran" in v.out, "irqchip %s: %r" % (mode, v.out))
        check_eq(v.final_status()["irqchip"], mode)


@test
def real_mode_raw_guest():
    check_no_kvm()
    s = {"name": "r", "vcpus": 1, "memory": "2MiB",
         "boot": {"raw": guest("hello16.bin"), "load_addr": "0x8000", "entry": "0x8000", "mode": "real"}}
    v, rc = run_to_end(s)
    check_eq(v.out, "hello from real mode\n")
    check_eq(rc, 64 + 0x11)


def bad_spec(spec_obj, expected):
    v, rc = run_to_end(spec_obj)
    check_eq(rc, 1, "exit status for %r" % expected)
    check(expected in v.err, "expected %r in %r" % (expected, v.err))
    check(not os.path.exists(v.control), "control socket created for a bad spec")


@test
def bad_specs_fail_with_path_and_message():
    corrupt = os.path.join(TMP, "corrupt.elf")
    with open(guest("hello.elf"), "rb") as f:
        data = bytearray(f.read())
    data[4] = 1  # ELFCLASS32
    with open(corrupt, "wb") as f:
        f.write(data)
    truncated = os.path.join(TMP, "truncated.elf")
    with open(truncated, "wb") as f:
        f.write(data[:40])
    bad_spec(spec(memory="2TiB"), "Invalid spec: $.memory: must be between 2MiB and 1TiB")
    bad_spec(spec(memory="1TiB"), "Invalid spec: $.memory: 1TiB is more than the host's memory")
    bad_spec(spec(boot={"kernel": os.path.join(TMP, "missing.elf")}),
             "Invalid spec: $.boot.kernel: cannot access \"%s\": No such file or directory" % os.path.join(TMP, "missing.elf"))
    bad_spec(spec(boot={"kernel": corrupt}), "Invalid spec: $.boot.kernel: \"%s\": ELF file is not 64-bit" % corrupt)
    bad_spec(spec(boot={"kernel": truncated}), "Invalid spec: $.boot.kernel: \"%s\": ELF file is truncated" % truncated)
    bad_spec(spec(vcpus=0), "Invalid spec: $.vcpus: must be between 1 and 255")
    bad_spec(spec(bogus=1), "Invalid spec: $.bogus: unknown field")
    bad_spec(spec(boot={"kernel": guest("hello.elf"), "initrd": 5}), "Invalid spec: $.boot.initrd: must be a string")
    bad_spec("{\"name\": ", "Invalid spec: $: malformed JSON")


@test
def check_spec_prints_canonical_form():
    out = subprocess.run([VMM, "--check-spec", "--spec", "/dev/stdin"], input=json.dumps(spec(memory="2MiB")).encode(),
                         capture_output=True)
    check_eq(out.returncode, 0, out.stderr)
    canon = json.loads(out.stdout)
    check_eq(canon["memory"], 2 << 20)
    check_eq(canon["irqchip"], "kernel")
    check_eq(canon["memory_backing"], "memfd")


def fuzz_messages(rng):
    yield b"not json"
    yield b""
    yield b"{"
    yield b"[]"
    yield b"null"
    yield b"{}"
    yield b'{"id":1}'
    yield b'{"id":{"x":1},"method":"status"}'
    yield b'{"id":1,"method":5}'
    yield b'{"id":1,"method":"status","params":[]}'
    yield b'{"id":1,"method":"status","extra":true}'
    yield b'{"id":1,"method":"nope"}'
    yield b'{"id":1,"method":"console","params":{"offset":-1}}'
    yield b'{"id":1,"method":"console","params":{"offset":18446744073709551615}}'
    yield b'{"id":1,"method":"console","params":{"max":0}}'
    yield b'{"id":1,"method":"console","params":{"what":0}}'
    yield b"[" * 5000 + b"]" * 5000
    yield b'{"id":1,"method":"' + b"A" * 70000 + b'"}'
    yield b'{"id":"\xff\xfe","method":"status"}'
    yield b'{"id":1,"method":"status\\u0000x"}'
    for _ in range(300):
        kind = rng.randrange(3)
        if kind == 0:
            yield bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        elif kind == 1:
            base = json.dumps({"id": rng.randrange(-5, 5), "method": rng.choice(["status", "console", "stats", "x"]),
                               "params": {"offset": rng.randrange(-2, 100)}}).encode()
            cut = rng.randrange(len(base) + 1)
            yield base[:cut]
        else:
            base = bytearray(json.dumps({"id": 3, "method": "console", "params": {"offset": 0}}).encode())
            for _ in range(rng.randrange(1, 4)):
                base[rng.randrange(len(base))] = rng.randrange(256)
            yield bytes(base)


@test
def fuzzed_control_messages_do_not_crash_the_vmm():
    check_no_kvm()
    rng = random.Random(1234)
    v = Vmm(spec("counter.elf"))
    try:
        v.wait_socket()
        n = 0
        for msg in fuzz_messages(rng):
            if not msg:
                continue  # an empty seqpacket is indistinguishable from a close; covered below
            r = v.call(None, raw=msg)
            check("result" in r or "error" in r, "reply to %r: %r" % (msg[:80], r))
            if "error" in r and len(msg) > 65536:
                check_eq(r["error"]["code"], "payload_too_large")
            n += 1
        # connections that close without a request, or send and vanish
        for _ in range(20):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.settimeout(10)
            s.connect(v.control)
            if rng.random() < 0.5:
                s.send(b'{"id":1,"method":"status"}')
            s.close()
        check(v.proc.poll() is None, "VMM died during the fuzzing")
        st = v.result("status")
        check_eq(st["state"], "running")
        check(n > 300)
        r = v.call("nope")
        check_eq(r["error"]["code"], "not_found")
        r = v.call(None, raw=b"x" * 70000)
        check_eq(r["error"]["code"], "payload_too_large")
    finally:
        v.proc.send_signal(signal.SIGTERM)
        rc = v.finish()
    check_eq(rc, 0)


@test
def sigterm_stops_cleanly_and_removes_socket():
    check_no_kvm()
    v = Vmm(spec("counter.elf"))
    v.wait_socket()
    v.proc.send_signal(signal.SIGTERM)
    rc = v.finish()
    check_eq(rc, 0)
    check(not os.path.exists(v.control), "control socket left behind")
    check_eq(v.final_status()["exit"]["reason"], "stopped")


@test
def stale_control_socket_is_replaced_and_live_one_refused():
    check_no_kvm()
    v = Vmm(spec("counter.elf"))
    try:
        v.wait_socket()
        # a second VMM on the same (live) socket is refused
        other = os.path.join(v.dir, "other.json")
        with open(other, "w") as f:
            json.dump(spec("counter.elf"), f)
        p = subprocess.run([VMM, "--spec", other, "--control", v.control], capture_output=True, timeout=30)
        check_eq(p.returncode, 1)
        check(b"Address already in use" in p.stderr, p.stderr)
        check(os.path.exists(v.control))
    finally:
        v.proc.kill()
        v.finish()
    check(os.path.exists(v.control), "a killed VMM leaves its socket (the next one must cope)")
    v2 = Vmm(spec("counter.elf"), extra=())
    v2.proc.kill()
    v2.finish()
    stale = os.path.join(TMP, "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.bind(stale)
    s.close()
    with open(os.path.join(TMP, "stale.json"), "w") as f:
        json.dump(spec(), f)
    p = subprocess.run([VMM, "--spec", os.path.join(TMP, "stale.json"), "--control", stale], capture_output=True,
                       timeout=30)
    check_eq(p.returncode, 64, p.stderr)
    check(not os.path.exists(stale))


@test
def stats_and_status_report_kvm_state():
    check_no_kvm()
    v = Vmm(spec("counter.elf", vcpus=2))
    try:
        v.wait_socket()
        st = v.result("status")
        check_eq(st["pid"], v.proc.pid)
        check_eq(len(st["vcpus"]), 2)
        check_eq(st["memslots"][0]["size"], 16 << 20)
        check_eq(st["memslots"][0]["role"], "ram")
        check(st["exit"] is None)
        r = v.call("stats")
        if "error" in r:
            check_eq(r["error"]["code"], "unsupported")
            skip("KVM_CAP_BINARY_STATS_FD is absent")
        stats = r["result"]
        check("vm" in stats and len(stats["vm"]) > 0, stats)
        check_eq(len(stats["vcpus"]), 2)
        vc = stats["vcpus"][0]["stats"]
        check("exits" in vc, sorted(vc))
        check(vc["exits"] > 0, vc["exits"])
    finally:
        v.proc.send_signal(signal.SIGTERM)
        v.finish()


run()
