"""Memslot control methods of kvmfleet-vmm on this machine's /dev/kvm, checked from inside the guest.

The guest is build/guests/mailbox.elf: it polls a mailbox at guest physical 0x80000 that the test
fills through the VMM's memory.write method, writes or reads one 64-bit word per page at a GPA, and
reports back (tests/guests/mailbox.c). Refusals check the error code and that the VMM's memslot
table is unchanged; failures after validation use tests/shim/memslot-fail.c (LD_PRELOAD) to make one
KVM_SET_USER_MEMORY_REGION(2) fail with ENOMEM.
"""
import base64
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from kvmtest import BUILD, check, check_eq, run, skip, test  # noqa: E402

VMM = os.path.join(BUILD, "kvmfleet-vmm")
GUEST = os.path.join(BUILD, "guests", "mailbox.elf")
SHIM = os.path.join(BUILD, "tests", "shim", "libmemslot-fail.so")
TMP = tempfile.mkdtemp(prefix="kvmfleet-memslot-test.")
MAILBOX = 0x80000
OP_WRITE, OP_READ, OP_EXIT = 1, 2, 3
GiB, MiB = 1 << 30, 1 << 20
ALL_ONES = 2**64 - 1


class Vmm:
    seq = 0

    def __init__(self, memory="16MiB", env=None):
        Vmm.seq += 1
        self.dir = os.path.join(TMP, "vm%d" % Vmm.seq)
        os.makedirs(self.dir)
        self.control = os.path.join(self.dir, "control.sock")
        spec_file = os.path.join(self.dir, "spec.json")
        self.status_file = os.path.join(self.dir, "status.json")
        with open(spec_file, "w") as f:
            json.dump({"name": "memslots", "vcpus": 1, "memory": memory, "boot": {"kernel": GUEST}}, f)
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen([VMM, "--spec", spec_file, "--control", self.control,
                                      "--status-file", self.status_file], env=full_env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        end = time.time() + 10
        while not os.path.exists(self.control):
            if self.proc.poll() is not None:
                raise AssertionError("VMM exited with %d: %s" % (self.proc.returncode, self.proc.stderr.read()))
            check(time.time() < end, "control socket did not appear")
            time.sleep(0.01)
        while True:  # the socket file appears at bind(), connections are taken from listen() on
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            self.sock.settimeout(10)
            try:
                self.sock.connect(self.control)
                break
            except ConnectionRefusedError:
                self.sock.close()
                check(time.time() < end, "control socket refused connections")
                time.sleep(0.01)
        self.cmd_seq = 0

    def call(self, method, params=None):
        req = {"id": 1, "method": method}
        if params is not None:
            req["params"] = params
        self.sock.send(json.dumps(req).encode())
        return json.loads(self.sock.recv(1 << 20))

    def result(self, method, params=None):
        r = self.call(method, params)
        check("result" in r, "%s %r failed: %r" % (method, params, r))
        return r["result"]

    def error(self, method, params, code):
        r = self.call(method, params)
        check("error" in r, "%s %r succeeded, expected %s: %r" % (method, params, code, r))
        check_eq(r["error"]["code"], code, "%s %r: %s" % (method, params, r["error"]["message"]))
        return r["error"]

    def slots(self):
        return self.result("memslot.list")["memslots"]

    def limits(self):
        return self.result("memslot.list")["limits"]

    def read_u64(self, gpa):
        data = base64.b64decode(self.result("memory.read", {"gpa": gpa, "size": 8})["data"])
        return struct.unpack("<Q", data)[0]

    def write_u64s(self, gpa, values):
        self.result("memory.write", {"gpa": gpa, "data": base64.b64encode(struct.pack("<%dQ" % len(values), *values)).decode()})

    def guest(self, op, gpa, count=1, pattern=0, timeout=20):
        """Runs one mailbox op in the guest; returns (result, value)."""
        self.write_u64s(MAILBOX + 16, [op, gpa, count, pattern])
        self.cmd_seq += 1
        self.write_u64s(MAILBOX, [self.cmd_seq])
        end = time.time() + timeout
        while self.read_u64(MAILBOX + 8) != self.cmd_seq:
            if self.proc.poll() is not None:
                raise AssertionError("VMM exited with %d: %r" % (self.proc.returncode, self.proc.stderr.read()))
            check(time.time() < end, "guest op %d at 0x%x did not complete" % (op, gpa))
            time.sleep(0.002)
        return self.read_u64(MAILBOX + 48), self.read_u64(MAILBOX + 56)

    def status(self):
        return self.result("status")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.call("stop")
            except OSError:
                pass
        self.sock.close()
        try:
            self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()


def with_vmm(fn=None, **kw):
    v = Vmm(**kw)
    try:
        fn(v)
    finally:
        v.close()


def check_kvm():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        skip("/dev/kvm is not accessible")


def pattern_words(v, gpa, pages):
    return [v.read_u64(gpa + i * 4096) for i in range(pages)]


# ---- replies larger than a socket's default send buffer ----

def big_dirty_bitmap(v):
    s = v.result("memslot.create", {"gpa": "1GiB", "size": "8GiB", "flags": {"dirty_log": True}})
    return v.call("memslot.dirty_log", {"slot": s["slot"], "bitmap": True})


@test
def an_8_gib_dirty_bitmap_fits_the_control_connection():
    check_kvm()

    def body(v):
        r = big_dirty_bitmap(v)
        check("result" in r, repr(r)[:300])
        check_eq(len(base64.b64decode(r["result"]["bitmap"])), 8 * GiB // 4096 // 8)
    with_vmm(body)


@test
def a_reply_the_socket_cannot_take_is_answered_with_an_error():
    """With the send buffer left at the system default (tests/shim/sndbuf-default.c: SO_SNDBUFFORCE
    refused, SO_SNDBUF without effect, as for a VMM without CAP_NET_ADMIN on a host with the default
    net.core.wmem_max), the 341 KiB reply cannot be sent: the VMM says so in a short error reply with
    the request's id rather than leaving the client to wait out its timeout."""
    check_kvm()
    shim = os.path.join(BUILD, "tests", "shim", "libsndbuf-default.so")
    with open("/proc/sys/net/core/wmem_default") as f:
        if int(f.read()) >= 2 * 400 * 1024:
            skip("net.core.wmem_default is large enough for the reply: nothing to refuse")

    def body(v):
        r = big_dirty_bitmap(v)
        check_eq((r.get("id"), r.get("error", {}).get("code")), (1, "payload_too_large"), repr(r)[:300])
        check_eq(v.result("status")["state"], "running", "the connection still serves requests")
    with_vmm(body, env={"LD_PRELOAD": shim,
                        "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"})


# ---- guest-visible behaviour ----

@test
def guest_writes_into_added_slot_and_vmm_backing_shows_it():
    check_kvm()

    def body(v):
        s = v.result("memslot.create", {"gpa": "1GiB", "size": "2MiB"})
        check_eq((s["gpa"], s["size"], s["role"], s["backing"], s["state"]), (GiB, 2 * MiB, "user", "memfd", "active"))
        check(any(x["slot"] == s["slot"] for x in v.slots()), "new slot listed")
        check_eq(pattern_words(v, GiB, 4), [0] * 4, "fresh backing is zero")
        check_eq(v.guest(OP_WRITE, GiB, 4, 0x1234000), (0, 0))
        check_eq(pattern_words(v, GiB, 4), [0x1234000 + i for i in range(4)], "the VMM-side backing")
        check_eq(v.guest(OP_READ, GiB, 4, 0x1234000), (0, 0x1234000))
    with_vmm(body)


def memslot_memfds(v):
    """The VMM's open memfds of user slots (its own, spares and backings not yet released)."""
    fd_dir = "/proc/%d/fd" % v.proc.pid
    n = 0
    for fd in os.listdir(fd_dir):
        try:
            n += os.readlink(os.path.join(fd_dir, fd)).startswith("/memfd:kvmfleet-memslot")
        except OSError:
            pass
    return n


@test
def recreated_slot_is_zero_and_deleted_backings_are_released():
    """The VMM prepares a spare backing after each create and releases deleted ones on its pool
    thread (vmm/memslot-pool.h): a slot created after a delete of the same size must still start
    zero (a spare is a fresh memfd, never a deleted slot's), and backings must not pile up."""
    check_kvm()

    def body(v):
        for round_ in range(4):
            for size in (2 * MiB, 4 * MiB, 6 * MiB):
                s = v.result("memslot.create", {"gpa": "1GiB", "size": size})
                check_eq(pattern_words(v, GiB, 2), [0, 0], "round %d, %d MiB: fresh backing is zero" % (round_, size // MiB))
                check_eq(v.guest(OP_WRITE, GiB, 2, 0x7700 + round_), (0, 0))
                v.result("memslot.delete", {"slot": s["slot"]})
        # Three sizes in turn: at most two spares (MEMSLOT_POOL_SPARES) once the thread is done.
        end = time.time() + 10
        while memslot_memfds(v) > 2 and time.time() < end:
            time.sleep(0.01)
        check(memslot_memfds(v) <= 2, "memslot memfds left open: %d" % memslot_memfds(v))
        check_eq(v.status()["state"], "running")
    with_vmm(body)


@test
def guest_finds_same_data_after_move_and_old_base_is_mmio():
    check_kvm()

    def body(v):
        s = v.result("memslot.create", {"gpa": "1GiB", "size": "2MiB"})
        v.guest(OP_WRITE, GiB, 3, 0xabc00)
        moved = v.result("memslot.move", {"slot": s["slot"], "gpa": "0x60000000"})
        check_eq(moved["gpa"], 0x60000000)
        check("guest_impact" not in moved, "a user slot moves without force")
        check_eq(pattern_words(v, 0x60000000, 3), [0xabc00 + i for i in range(3)], "backing at the new base")
        check_eq(v.guest(OP_READ, 0x60000000, 3, 0xabc00), (0, 0xabc00), "data at the new base")
        before = v.status()["unhandled_mmio"]
        check_eq(v.guest(OP_READ, GiB, 1, 0xabc00), (1, ALL_ONES), "the old base reads as unbacked MMIO")
        st = v.status()
        check(st["unhandled_mmio"] > before, "MMIO exit counted")
        check_eq(st["last_unhandled_mmio"]["gpa"], GiB)
        check_eq(st["state"], "running")
    with_vmm(body)


@test
def guest_access_after_delete_exits_as_mmio():
    check_kvm()

    def body(v):
        s = v.result("memslot.create", {"gpa": "1GiB", "size": "2MiB"})
        v.guest(OP_WRITE, GiB + 8 * 4096, 1, 77)
        d = v.result("memslot.delete", {"slot": s["slot"]})
        check_eq(d["deleted"]["slot"], s["slot"])
        check(all(x["slot"] != s["slot"] for x in v.slots()), "deleted slot still listed")
        check_eq(v.call("memory.read", {"gpa": GiB, "size": 8})["error"]["code"], "not_found")
        check_eq(v.guest(OP_READ, GiB + 8 * 4096, 1, 77), (1, ALL_ONES))
        check_eq(v.guest(OP_WRITE, GiB + 8 * 4096, 1, 5), (0, 0), "a write to the hole is dropped")
        st = v.status()
        check_eq(st["last_unhandled_mmio"], {"gpa": GiB + 8 * 4096, "len": 8, "write": True, "vcpu": 0})
        check_eq(st["state"], "running")
    with_vmm(body)


@test
def dirty_log_counts_exactly_the_pages_written_then_zero_after_clear():
    check_kvm()

    def body(v):
        if not v.limits()["manual_dirty_log_protect"]:
            skip("KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 is absent")
        s = v.result("memslot.create", {"gpa": "1GiB", "size": "4MiB", "flags": {"dirty_log": True}})
        slot = s["slot"]
        check_eq(v.result("memslot.dirty_log", {"slot": slot})["dirty_pages"], 0, "nothing written yet")
        v.guest(OP_WRITE, GiB + 4096, 5, 1)        # pages 1-5
        v.guest(OP_WRITE, GiB + 700 * 4096, 2, 9)  # pages 700-701
        log = v.result("memslot.dirty_log", {"slot": slot, "bitmap": True})
        check_eq(log["dirty_pages"], 7)
        check_eq(log["ranges"], [{"gpa": GiB + 4096, "size": 5 * 4096}, {"gpa": GiB + 700 * 4096, "size": 2 * 4096}])
        check_eq(log["pages"], 1024)
        bitmap = base64.b64decode(log["bitmap"])
        check_eq(len(bitmap), 128)
        bits = [i for i in range(1024) if bitmap[i // 8] >> (i % 8) & 1]
        check_eq(bits, [1, 2, 3, 4, 5, 700, 701])
        check_eq(log["cleared"], False)
        again = v.result("memslot.dirty_log", {"slot": slot, "clear": True})
        check_eq(again["dirty_pages"], 7, "reading without clear kept the bits")
        check_eq(again["cleared"], True)
        check_eq(v.result("memslot.dirty_log", {"slot": slot})["dirty_pages"], 0, "after the clear")
        v.guest(OP_WRITE, GiB + 3 * 4096, 1, 3)
        check_eq(v.result("memslot.dirty_log", {"slot": slot})["dirty_pages"], 1, "logging goes on after a clear")
        off = v.result("memslot.set_flags", {"slot": slot, "flags": {"dirty_log": False}})
        check_eq(off["flags"]["dirty_log"], False)
        v.error("memslot.dirty_log", {"slot": slot}, "memslot_dirty_log_disabled")
    with_vmm(body)


@test
def guest_memfd_slot_is_created_and_listed():
    check_kvm()

    def body(v):
        lim = v.limits()
        params = {"gpa": "2GiB", "size": "2MiB", "backing": "guest_memfd", "guest_memfd_offset": 0}
        if not (lim["guest_memfd"] and lim["user_memory2"]):
            e = v.error("memslot.create", params, "unsupported")
            check(e["details"]["capability"] in ("KVM_CAP_GUEST_MEMFD", "KVM_CAP_USER_MEMORY2"))
            return
        s = v.result("memslot.create", params)
        check_eq((s["backing"], s["guest_memfd_offset"]), ("guest_memfd", 0))
        listed = [x for x in v.slots() if x["slot"] == s["slot"]]
        check_eq(len(listed), 1)
        check_eq(listed[0]["backing"], "guest_memfd")
        check_eq(v.guest(OP_WRITE, 2 * GiB, 2, 42), (0, 0))
        check_eq(pattern_words(v, 2 * GiB, 2), [42, 43], "shared view of the guest_memfd slot")
        v.error("memslot.move", {"slot": s["slot"], "gpa": "3GiB"}, "memslot_immutable")
        v.error("memslot.set_flags", {"slot": s["slot"], "flags": {"dirty_log": True}}, "memslot_immutable")
        v.result("memslot.delete", {"slot": s["slot"]})
    with_vmm(body)


@test
def private_attributes_need_memory_attributes_capability():
    check_kvm()

    def body(v):
        lim = v.limits()
        params = {"gpa": "2GiB", "size": 4096, "private": True}
        if lim["memory_attributes"] & 8:
            v.result("memslot.create", {"gpa": "2GiB", "size": "2MiB", "backing": "guest_memfd"})
            check_eq(v.result("memory.set_attributes", params)["private"], True)
            return
        before = v.slots()
        e = v.error("memory.set_attributes", params, "unsupported")
        check_eq(e["details"]["capability"], "KVM_CAP_MEMORY_ATTRIBUTES")
        check("KVM_CAP_MEMORY_ATTRIBUTES" in e["message"], e["message"])
        check_eq(v.slots(), before)
    with_vmm(body)


@test
def readonly_slot_reads_and_guest_writes_exit():
    check_kvm()

    def body(v):
        params = {"gpa": "1GiB", "size": "2MiB", "flags": {"readonly": True}}
        if not v.limits()["readonly_mem"]:
            e = v.error("memslot.create", params, "unsupported")
            check_eq(e["details"]["capability"], "KVM_CAP_READONLY_MEM")
            return
        s = v.result("memslot.create", params)
        check_eq(s["flags"]["readonly"], True)
        v.write_u64s(GiB, [5])
        check_eq(v.guest(OP_READ, GiB, 1, 5), (0, 5), "the guest reads what the VMM put there")
        before = v.status()["unhandled_mmio"]
        v.guest(OP_WRITE, GiB, 1, 99)
        check(v.status()["unhandled_mmio"] > before, "a guest write to a readonly slot exits as MMIO")
        check_eq(v.read_u64(GiB), 5, "the backing is unchanged")
        v.error("memslot.set_flags", {"slot": s["slot"], "flags": {"dirty_log": False, "readonly": False}},
                "memslot_immutable")
    with_vmm(body)


# ---- refusals: one per rule; each leaves the VMM's table as it was ----

def refusal(v, method, params, code, field=None):
    before = v.slots()
    e = v.error(method, params, code)
    check_eq(v.slots(), before, "table changed by a refused %s" % method)
    if field:
        check_eq(e["details"].get("field"), field)
    check(400 <= e["details"]["http_status"] < 500, "4xx status: %r" % e)
    return e


@test
def refusals_of_create():
    check_kvm()

    def body(v):
        lim = v.limits()
        base = v.result("memslot.create", {"slot": 7, "gpa": "1GiB", "size": "2MiB"})
        check_eq(base["slot"], 7)
        refusal(v, "memslot.create", {"gpa": "2GiB", "size": 0}, "memslot_size_invalid", "size")
        refusal(v, "memslot.create", {"gpa": "2GiB", "size": 6000}, "memslot_size_invalid", "size")
        refusal(v, "memslot.create", {"gpa": 0x80000800, "size": 4096}, "memslot_unaligned", "gpa")
        refusal(v, "memslot.create", {"gpa": "2GiB", "size": 4096, "backing": "hugetlb"}, "memslot_size_invalid", "size")
        refusal(v, "memslot.create", {"gpa": 0x80001000, "size": "2MiB", "backing": "hugetlb"}, "memslot_unaligned", "gpa")
        refusal(v, "memslot.create", {"gpa": 2**64 - 4096, "size": 8192}, "memslot_out_of_range", "gpa")
        top = 1 << lim["phys_bits"]
        refusal(v, "memslot.create", {"gpa": top - 4096, "size": 8192}, "memslot_out_of_range", "gpa")
        refusal(v, "memslot.create", {"gpa": 0, "size": 8 << 40}, "memslot_too_many_pages", "size")
        e = refusal(v, "memslot.create", {"gpa": GiB + MiB, "size": "2MiB"}, "memslot_overlap", "gpa")
        check_eq(e["details"]["other_slot"], 7)
        check("slot 7" in e["message"], e["message"])
        e = refusal(v, "memslot.create", {"gpa": 8 * MiB, "size": "16MiB"}, "memslot_overlap", "gpa")
        check_eq(e["details"]["other_slot"], 0)
        refusal(v, "memslot.create", {"slot": lim["nr_memslots"], "gpa": "2GiB", "size": 4096},
                "memslot_id_out_of_range", "slot")
        if lim["address_spaces"] == 1:
            refusal(v, "memslot.create", {"as_id": 1, "gpa": "2GiB", "size": 4096}, "memslot_id_out_of_range", "as_id")
        refusal(v, "memslot.create", {"slot": 7, "gpa": "2GiB", "size": 4096}, "memslot_exists", "slot")
        free = lim["hugetlb_free_pages"]
        refusal(v, "memslot.create", {"gpa": "2GiB", "size": (free + 1) * 2 * MiB, "backing": "hugetlb"},
                "memslot_backing_unavailable", "backing")
        refusal(v, "memslot.create", {"gpa": 1 << 40, "size": 4 << 40}, "memslot_backing_unavailable", "size")
        refusal(v, "memslot.create", {"gpa": "2GiB", "size": "2MiB", "backing": "guest_memfd",
                                      "flags": {"dirty_log": True}}, "memslot_flags_invalid", "flags")
        refusal(v, "memslot.create", {"gpa": "2GiB", "size": 4096, "backing": "tmpfs"}, "invalid_argument")
        refusal(v, "memslot.create", {"gpa": "2GiB", "size": 4096, "colour": "red"}, "invalid_argument")
        check_eq(v.guest(OP_WRITE, GiB, 1, 11), (0, 0), "the guest still runs")
    with_vmm(body)


@test
def refusals_of_move_delete_flags():
    check_kvm()

    def body(v):
        s = v.result("memslot.create", {"gpa": "1GiB", "size": "2MiB", "flags": {"dirty_log": True}})
        u = v.result("memslot.create", {"gpa": "2GiB", "size": "2MiB"})
        v.guest(OP_WRITE, GiB, 2, 500)
        e = refusal(v, "memslot.move", {"slot": s["slot"], "gpa": "3GiB"}, "memslot_move_dirty_log")
        check_eq(e["details"]["http_status"], 409)
        refusal(v, "memslot.move", {"slot": u["slot"], "gpa": GiB + 4096}, "memslot_overlap", "gpa")
        refusal(v, "memslot.move", {"slot": u["slot"], "gpa": 0x80000800}, "memslot_unaligned", "gpa")
        refusal(v, "memslot.move", {"slot": u["slot"], "gpa": (1 << v.limits()["phys_bits"]) - 4096},
                "memslot_out_of_range", "gpa")
        refusal(v, "memslot.move", {"slot": 99, "gpa": "3GiB"}, "not_found", "slot")
        refusal(v, "memslot.delete", {"slot": 99}, "not_found", "slot")
        refusal(v, "memslot.delete", {"slot": 40000}, "memslot_id_out_of_range", "slot")
        e = refusal(v, "memslot.delete", {"slot": 0}, "memslot_force_required", "force")
        check("MMIO" in e["details"]["guest_impact"], e)
        e = refusal(v, "memslot.move", {"slot": 0, "gpa": "3GiB"}, "memslot_force_required", "force")
        check("same contents" in e["details"]["guest_impact"], e)
        refusal(v, "memslot.set_flags", {"slot": u["slot"], "flags": {"dirty_log": True, "readonly": True}},
                "memslot_immutable", "flags.readonly")
        refusal(v, "memslot.dirty_log", {"slot": u["slot"]}, "memslot_dirty_log_disabled")
        refusal(v, "memslot.set_flags", {"slot": u["slot"]}, "invalid_argument")
        check_eq(v.guest(OP_READ, GiB, 2, 500), (0, 500), "the guest still reads its data")
    with_vmm(body)


@test
def forced_delete_of_ram_reports_guest_impact_and_vmm_survives():
    check_kvm()

    def body(v):
        r = v.result("memslot.delete", {"slot": 0, "force": True})
        check_eq(r["deleted"]["role"], "ram")
        check("MMIO" in r["guest_impact"], r)
        # The guest lost the memory it runs from: KVM cannot fetch its next instruction. The VMM must
        # end the VM in order and say why, not crash.
        try:
            rc = v.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            raise AssertionError("the VM kept running without its RAM")
        check(rc > 0, "VMM exit status %d" % rc)
        with open(v.status_file) as f:
            st = json.load(f)
        check_eq(st["state"], "stopped")
        check(st["exit"]["reason"] in ("internal-error", "shutdown", "unhandled-exit"), st["exit"])
        check_eq([x for x in st["memslots"] if x["slot"] == 0], [], "slot 0 still in the final table")
    with_vmm(body)


# ---- failures after validation (LD_PRELOAD shim): nothing changes ----

def shim_env(nth):
    if not os.path.exists(SHIM):
        raise AssertionError("%s is not built" % SHIM)
    # The boot RAM (one slot for a 16 MiB guest) is call 1.
    return {"LD_PRELOAD": SHIM, "KVMFLEET_SHIM_FAIL_REGION": str(nth),
            "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}


def check_apply_failed(e, step="KVM_SET_USER_MEMORY_REGION"):
    check_eq(e["details"]["step"], step)
    check_eq(e["details"]["errno"], 12)
    check_eq(e["details"]["errno_name"], "ENOMEM")
    check_eq(e["details"]["http_status"], 503)
    check("unchanged" in e["message"], e["message"])


@test
def failed_create_leaves_table_and_memory_unchanged():
    check_kvm()

    def body(v):
        v.guest(OP_WRITE, 0x200000, 2, 0x77)  # boot RAM the guest owns
        before = v.slots()
        e = v.error("memslot.create", {"gpa": "1GiB", "size": "2MiB"}, "memslot_apply_failed")
        check_apply_failed(e)
        check_eq(v.slots(), before)
        check_eq(v.guest(OP_READ, GiB, 1, 0), (1, ALL_ONES), "no slot appeared for the guest")
        check_eq(v.guest(OP_READ, 0x200000, 2, 0x77), (0, 0x77))
        s = v.result("memslot.create", {"gpa": "1GiB", "size": "2MiB"})  # call 3 goes through
        check_eq(v.guest(OP_WRITE, GiB, 1, 3), (0, 0))
        check_eq(s["gpa"], GiB)
    with_vmm(body, env=shim_env(2))


@test
def failed_move_leaves_slot_and_guest_data_in_place():
    check_kvm()

    def body(v):
        s = v.result("memslot.create", {"gpa": "1GiB", "size": "2MiB"})
        v.guest(OP_WRITE, GiB, 4, 0x5150)
        before = v.slots()
        e = v.error("memslot.move", {"slot": s["slot"], "gpa": "3GiB"}, "memslot_apply_failed")
        check_apply_failed(e)
        check_eq(v.slots(), before)
        check_eq(v.guest(OP_READ, GiB, 4, 0x5150), (0, 0x5150), "the guest reads its data at the old base")
        check_eq(v.guest(OP_READ, 3 * GiB, 1, 0x5150), (1, ALL_ONES), "nothing at the new base")
        check_eq(pattern_words(v, GiB, 4), [0x5150 + i for i in range(4)])
    with_vmm(body, env=shim_env(3))


@test
def failed_delete_leaves_slot_and_guest_data_in_place():
    check_kvm()

    def body(v):
        s = v.result("memslot.create", {"gpa": "1GiB", "size": "2MiB"})
        v.guest(OP_WRITE, GiB, 4, 0xdead00)
        before = v.slots()
        e = v.error("memslot.delete", {"slot": s["slot"]}, "memslot_apply_failed")
        check_apply_failed(e)
        check_eq(v.slots(), before)
        check_eq(v.guest(OP_READ, GiB, 4, 0xdead00), (0, 0xdead00))
        check_eq(pattern_words(v, GiB, 4), [0xdead00 + i for i in range(4)], "backing still mapped")
    with_vmm(body, env=shim_env(3))


@test
def failed_dirty_log_enable_leaves_flags_unchanged():
    check_kvm()

    def body(v):
        s = v.result("memslot.create", {"gpa": "1GiB", "size": "2MiB"})
        before = v.slots()
        e = v.error("memslot.set_flags", {"slot": s["slot"], "flags": {"dirty_log": True}}, "memslot_apply_failed")
        check_apply_failed(e)
        check_eq(v.slots(), before)
        check_eq(v.result("memslot.set_flags", {"slot": s["slot"], "flags": {"dirty_log": True}})["flags"]["dirty_log"],
                 True)
    with_vmm(body, env=shim_env(3))


@test
def failed_guest_memfd_create_names_region2():
    check_kvm()

    def body(v):
        lim = v.limits()
        if not (lim["guest_memfd"] and lim["user_memory2"]):
            skip("KVM_CAP_GUEST_MEMFD or KVM_CAP_USER_MEMORY2 is absent")
        before = v.slots()
        e = v.error("memslot.create", {"gpa": "2GiB", "size": "2MiB", "backing": "guest_memfd"}, "memslot_apply_failed")
        check_apply_failed(e, "KVM_SET_USER_MEMORY_REGION2")
        check_eq(v.slots(), before)
    with_vmm(body, env=shim_env(2))


run()
