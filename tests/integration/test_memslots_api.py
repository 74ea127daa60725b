"""Memslots over REST: the real agent, real kvmfleet-vmm processes on /dev/kvm, the inventory read
back from SQLite. The guest is mailbox.elf; the test drives it through the VMM's own control socket
(under the agent's run dir) to check from inside the guest what REST changed."""
import base64
import json
import os
import socket
import sqlite3
import struct
import time

from agentlib import Agent, check_openapi_records
from kvmtest import BUILD, check, check_eq, run, skip, test

GUEST = os.path.join(BUILD, "guests", "mailbox.elf")
SHIM = os.path.join(BUILD, "tests", "shim", "libmemslot-fail.so")
GiB, MiB = 1 << 30, 1 << 20
MAILBOX, OP_WRITE, OP_READ = 0x80000, 1, 2
agent = Agent(extra_config="stop_timeout = 5\n").start()
_seq = [0]


def start_vm(a=agent):
    _seq[0] += 1
    vm = "ms-%d" % _seq[0]
    r = a.request("POST", "/v1/vms", {"name": vm, "vcpus": 1, "memory": "16MiB", "boot": {"kernel": GUEST}},
                  template="/v1/vms")
    check_eq(r.status, 201, repr(r))
    r = a.request("POST", "/v1/vms/%s/start" % vm, template=("/v1/vms/{id}/start", "start"))
    check_eq(r.status, 200, repr(r))
    return vm, r.json["uuid"]


class Guest:
    """The VMM's control socket, for the mailbox guest and the VMM's own view of its table."""

    def __init__(self, a, uuid):
        self.path = os.path.join(a.run_dir, "vms", uuid + ".sock")
        self.seq = 0

    def call(self, method, params=None):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(10)
        s.connect(self.path)
        s.send(json.dumps({"id": 1, "method": method, "params": params or {}}).encode())
        r = json.loads(s.recv(1 << 20))
        s.close()
        check("result" in r, "%s: %r" % (method, r))
        return r["result"]

    def u64(self, gpa):
        return struct.unpack("<Q", base64.b64decode(self.call("memory.read", {"gpa": gpa, "size": 8})["data"]))[0]

    def op(self, op, gpa, count, pattern):
        data = struct.pack("<4Q", op, gpa, count, pattern)
        self.call("memory.write", {"gpa": MAILBOX + 16, "data": base64.b64encode(data).decode()})
        self.seq += 1
        self.call("memory.write", {"gpa": MAILBOX, "data": base64.b64encode(struct.pack("<Q", self.seq)).decode()})
        end = time.time() + 20
        while self.u64(MAILBOX + 8) != self.seq:
            check(time.time() < end, "guest did not answer")
            time.sleep(0.002)
        return self.u64(MAILBOX + 48), self.u64(MAILBOX + 56)

    def slots(self):
        return self.call("memslot.list")["memslots"]


def rows(a, uuid):
    # A change's result row is written right after its reply, before the agent uses the inventory
    # for anything else: one request through the agent first makes the file read below exact.
    if a.proc and a.proc.poll() is None:
        check_eq(a.request("GET", "/v1/events?limit=1", record=False).status, 200)
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(a.state, "inventory.db"), uri=True)
    try:
        return db.execute("SELECT as_id, slot, gpa, size, flags_dirty_log, flags_readonly, backing, role, state "
                          "FROM memslots WHERE vm_uuid = ? ORDER BY as_id, slot", (uuid,)).fetchall()
    finally:
        db.close()


def rows_of(slots):
    return sorted((s["as_id"], s["slot"], s["gpa"], s["size"], int(s["flags"]["dirty_log"]),
                   int(s["flags"]["readonly"]), s["backing"], s["role"], "active") for s in slots)


def listing(vm, a=agent):
    r = a.request("GET", "/v1/vms/%s/memslots" % vm, template="/v1/vms/{id}/memslots")
    check_eq(r.status, 200, repr(r))
    return r.json


def check_kvm():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        skip("/dev/kvm is not accessible")


@test
def boot_ram_recorded_with_role_ram_at_start():
    check_kvm()
    vm, uuid = start_vm()
    got = listing(vm)
    check_eq([(s["slot"], s["gpa"], s["size"], s["role"]) for s in got["memslots"]], [(0, 0, 16 * MiB, "ram")])
    check(got["limits"]["nr_memslots"] > 0, got)
    check_eq(rows(agent, uuid), [(0, 0, 0, 16 * MiB, 0, 0, "memfd", "ram", "active")])


@test
def stopped_vm_keeps_its_last_layout_as_inactive():
    """When the VMM ends, KVM has no slots left: the rows stay as the last layout, state inactive;
    the next start replaces them with the new VMM's table (the user slot is gone, RAM is back)."""
    check_kvm()
    vm, uuid = start_vm()
    r = agent.request("POST", "/v1/vms/%s/memslots" % vm, {"gpa": "1GiB", "size": "2MiB"})
    check_eq(r.status, 201, repr(r))
    slot = r.json["slot"]
    check_eq(agent.request("POST", "/v1/vms/%s/stop" % vm).status, 200)
    got = listing(vm)
    check_eq(sorted((s["slot"], s["role"], s["state"]) for s in got["memslots"]),
             sorted([(0, "ram", "inactive"), (slot, "user", "inactive")]))
    check_eq(sorted(x[-1] for x in rows(agent, uuid)), ["inactive", "inactive"])
    # nothing can change a stopped VM's slots
    r = agent.request("DELETE", "/v1/vms/%s/memslots/%d" % (vm, slot))
    check_eq(r.status, 409, repr(r))
    check_eq(agent.request("POST", "/v1/vms/%s/start" % vm).status, 200)
    check_eq(rows(agent, uuid), [(0, 0, 0, 16 * MiB, 0, 0, "memfd", "ram", "active")])
    agent.request("DELETE", "/v1/vms/%s?force=true" % vm)


@test
def create_move_flags_delete_keep_inventory_and_guest_in_step():
    check_kvm()
    vm, uuid = start_vm()
    g = Guest(agent, uuid)
    r = agent.request("POST", "/v1/vms/%s/memslots" % vm, {"gpa": "1GiB", "size": "2MiB"},
                      template="/v1/vms/{id}/memslots")
    check_eq(r.status, 201, repr(r))
    slot = r.json["slot"]
    check_eq((r.json["role"], r.json["state"]), ("user", "active"))
    check_eq(rows(agent, uuid), rows_of(g.slots()))
    check_eq(g.op(OP_WRITE, GiB, 3, 0x700), (0, 0))

    r = agent.request("PATCH", "/v1/vms/%s/memslots/%d" % (vm, slot), {"gpa": "0x60000000"},
                      template="/v1/vms/{id}/memslots/{slot}")
    check_eq(r.status, 200, repr(r))
    check_eq(r.json["gpa"], 0x60000000)
    check_eq(g.op(OP_READ, 0x60000000, 3, 0x700), (0, 0x700), "guest finds its data at the new base")
    check_eq(rows(agent, uuid), rows_of(g.slots()))

    r = agent.request("PATCH", "/v1/vms/%s/memslots/%d" % (vm, slot), {"flags": {"dirty_log": True}},
                      template="/v1/vms/{id}/memslots/{slot}")
    check_eq(r.status, 200, repr(r))
    check_eq(rows(agent, uuid), rows_of(g.slots()))
    g.op(OP_WRITE, 0x60000000 + 4096, 4, 1)
    r = agent.request("GET", "/v1/vms/%s/memslots/%d/dirty-log?bitmap=true" % (vm, slot),
                      template="/v1/vms/{id}/memslots/{slot}/dirty-log")
    check_eq(r.status, 200, repr(r))
    check_eq(r.json["dirty_pages"], 4)
    check_eq(r.json["ranges"], [{"gpa": 0x60000000 + 4096, "size": 4 * 4096}])
    r = agent.request("GET", "/v1/vms/%s/memslots/%d/dirty-log?clear=true" % (vm, slot))
    check_eq((r.status, r.json["dirty_pages"], r.json["cleared"]), (200, 4, True))
    r = agent.request("GET", "/v1/vms/%s/memslots/%d/dirty-log" % (vm, slot))
    check_eq(r.json["dirty_pages"], 0, "after the clear")

    r = agent.request("GET", "/v1/vms/%s/memslots/%d" % (vm, slot), template="/v1/vms/{id}/memslots/{slot}")
    check_eq((r.status, r.json["flags"]["dirty_log"]), (200, True))
    r = agent.request("DELETE", "/v1/vms/%s/memslots/%d" % (vm, slot), template="/v1/vms/{id}/memslots/{slot}")
    check_eq(r.status, 200, repr(r))
    check_eq(g.op(OP_READ, 0x60000000, 1, 0x700)[1], 2**64 - 1, "deleted: guest access is MMIO")
    check_eq(rows(agent, uuid), rows_of(g.slots()))
    ev = agent.request("GET", "/v1/events?limit=1000&object=vm/" + uuid).json["events"]
    actions = [(e["action"], e["result"]) for e in ev]
    for a in ("memslot_create", "memslot_move", "memslot_flags", "memslot_delete"):
        check((a, "ok") in actions, "event %s: %r" % (a, actions))


def refused(vm, uuid, g, method, path, body, status, code, field=None):
    before_rows, before_vmm = rows(agent, uuid), g.slots()
    parts = path.split("/")
    tmpl = "/v1/vms/{id}/memslots" + ("/{slot}" if len(parts) > 5 else "") + ("/dirty-log" if len(parts) > 6 else "")
    r = agent.request(method, path, body, template=(tmpl, code))
    check_eq((r.status, r.error_code()), (status, code), "%s %s %r: %r" % (method, path, body, r))
    check_eq(rows(agent, uuid), before_rows, "inventory changed by a refusal")
    check_eq(g.slots(), before_vmm, "VMM table changed by a refusal")
    check_eq(listing(vm)["memslots"], before_vmm, "a fresh GET differs")
    if field:
        check_eq(r.json["error"]["details"].get("field"), field)
    return r.json["error"]


@test
def the_dirty_bitmap_of_an_8_gib_slot_arrives_whole():
    """Its base64 bitmap (341 KiB) is larger than a unix socket's default send buffer: the VMM's
    reply must still fit its control connection."""
    vm, uuid = start_vm()
    g = Guest(agent, uuid)
    r = agent.request("POST", "/v1/vms/%s/memslots" % vm, {"gpa": GiB, "size": 8 * GiB, "flags": {"dirty_log": True}})
    check_eq(r.status, 201, repr(r))
    slot = r.json["slot"]
    check_eq(g.op(OP_WRITE, GiB + 2 * 4096, 3, 0x900), (0, 0))
    r = agent.request("GET", "/v1/vms/%s/memslots/%d/dirty-log?bitmap=true" % (vm, slot),
                      template="/v1/vms/{id}/memslots/{slot}/dirty-log")
    check_eq(r.status, 200, repr(r)[:300])
    check_eq(r.json["dirty_pages"], 3)
    bitmap = base64.b64decode(r.json["bitmap"])
    check_eq(len(bitmap), 8 * GiB // 4096 // 8)
    check_eq(int.from_bytes(bitmap, "little"), 0b11100, "pages 2, 3 and 4 dirty")
    r = agent.request("DELETE", "/v1/vms/%s/memslots/%d" % (vm, slot))
    check_eq(r.status, 200, repr(r))
    agent.request("POST", "/v1/vms/%s/stop" % vm)


@test
def refusals_one_per_rule():
    check_kvm()
    vm, uuid = start_vm()
    g = Guest(agent, uuid)
    base = "/v1/vms/%s/memslots" % vm
    r = agent.request("POST", base, {"slot": 7, "gpa": "1GiB", "size": "2MiB", "flags": {"dirty_log": True}})
    check_eq(r.status, 201, repr(r))
    lim = listing(vm)["limits"]
    refused(vm, uuid, g, "POST", base, {"gpa": "2GiB", "size": 0}, 422, "memslot_size_invalid", "size")
    refused(vm, uuid, g, "POST", base, {"gpa": "2GiB", "size": 5000}, 422, "memslot_size_invalid", "size")
    refused(vm, uuid, g, "POST", base, {"gpa": 0x80000800, "size": 4096}, 422, "memslot_unaligned", "gpa")
    refused(vm, uuid, g, "POST", base, {"gpa": "2GiB", "size": 4096, "backing": "hugetlb"}, 422, "memslot_size_invalid")
    refused(vm, uuid, g, "POST", base, {"gpa": 2**64 - 4096, "size": 8192}, 422, "memslot_out_of_range")
    refused(vm, uuid, g, "POST", base, {"gpa": (1 << lim["phys_bits"]) - 4096, "size": 8192}, 422, "memslot_out_of_range")
    refused(vm, uuid, g, "POST", base, {"gpa": 0, "size": 8 << 40}, 422, "memslot_too_many_pages")
    e = refused(vm, uuid, g, "POST", base, {"gpa": GiB + MiB, "size": "2MiB"}, 409, "memslot_overlap")
    check_eq(e["details"]["other_slot"], 7)
    refused(vm, uuid, g, "POST", base, {"slot": lim["nr_memslots"], "gpa": "2GiB", "size": 4096}, 422,
            "memslot_id_out_of_range", "slot")
    refused(vm, uuid, g, "POST", base, {"slot": 7, "gpa": "2GiB", "size": 4096}, 409, "memslot_exists")
    refused(vm, uuid, g, "POST", base, {"gpa": "2GiB", "size": (lim["hugetlb_free_pages"] + 1) * 2 * MiB,
                                        "backing": "hugetlb"}, 422, "memslot_backing_unavailable")
    if not lim["readonly_mem"]:
        e = refused(vm, uuid, g, "POST", base, {"gpa": "2GiB", "size": 4096, "flags": {"readonly": True}}, 422, "unsupported")
        check_eq(e["details"]["capability"], "KVM_CAP_READONLY_MEM")
    if not lim["guest_memfd"]:
        e = refused(vm, uuid, g, "POST", base, {"gpa": "2GiB", "size": 4096, "backing": "guest_memfd"}, 422, "unsupported")
        check_eq(e["details"]["capability"], "KVM_CAP_GUEST_MEMFD")
    refused(vm, uuid, g, "POST", base, {"gpa": "2GiB"}, 400, "invalid_argument")
    refused(vm, uuid, g, "PATCH", base + "/7", {"gpa": "3GiB"}, 409, "memslot_move_dirty_log")
    e = refused(vm, uuid, g, "PATCH", base + "/0", {"gpa": "3GiB"}, 409, "memslot_force_required")
    check("same contents" in e["details"]["guest_impact"], e)
    e = refused(vm, uuid, g, "DELETE", base + "/0", None, 409, "memslot_force_required")
    check("MMIO" in e["details"]["guest_impact"], e)
    refused(vm, uuid, g, "DELETE", base + "/99", None, 404, "not_found")
    refused(vm, uuid, g, "PATCH", base + "/7", {"flags": {"dirty_log": True, "readonly": True}}, 409, "memslot_immutable")
    refused(vm, uuid, g, "GET", base + "/0/dirty-log", None, 409, "memslot_dirty_log_disabled")
    refused(vm, uuid, g, "PATCH", base + "/7", {"gpa": "3GiB", "flags": {"dirty_log": False}}, 400, "invalid_argument")
    r = agent.request("POST", "/v1/vms/%s/stop" % vm)
    check_eq(r.status, 200)
    r = agent.request("POST", base, {"gpa": "2GiB", "size": 4096})
    check_eq((r.status, r.error_code()), (409, "invalid_state"))


@test
def guest_memfd_slot_over_rest():
    check_kvm()
    vm, uuid = start_vm()
    g = Guest(agent, uuid)
    if not listing(vm)["limits"]["guest_memfd"]:
        skip("KVM_CAP_GUEST_MEMFD is absent")
    r = agent.request("POST", "/v1/vms/%s/memslots" % vm, {"gpa": "2GiB", "size": "2MiB", "backing": "guest_memfd"},
                      template="/v1/vms/{id}/memslots")
    check_eq(r.status, 201, repr(r))
    check_eq(r.json["backing"], "guest_memfd")
    check(any(s["backing"] == "guest_memfd" for s in listing(vm)["memslots"]))
    check_eq(rows(agent, uuid), rows_of(g.slots()))


@test
def failed_ioctl_leaves_inventory_and_guest_unchanged():
    check_kvm()
    old = dict(os.environ)
    # Inherited by the VMM the agent spawns: its 2nd and 3rd KVM_SET_USER_MEMORY_REGION fail (boot RAM is the 1st).
    os.environ.update({"LD_PRELOAD": SHIM, "KVMFLEET_SHIM_FAIL_REGION": "3",
                       "ASAN_OPTIONS": old.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"})
    try:
        a = Agent(extra_config="stop_timeout = 5\n").start()
    finally:
        os.environ.clear()
        os.environ.update(old)
    try:
        vm, uuid = start_vm(a)
        g = Guest(a, uuid)
        r = a.request("POST", "/v1/vms/%s/memslots" % vm, {"gpa": "1GiB", "size": "2MiB"})
        check_eq(r.status, 201, repr(r))
        slot = r.json["slot"]
        g.op(OP_WRITE, GiB, 2, 0x900)
        before_rows, before_vmm = rows(a, uuid), g.slots()
        r = a.request("PATCH", "/v1/vms/%s/memslots/%d" % (vm, slot), {"gpa": "3GiB"},
                      template=("/v1/vms/{id}/memslots/{slot}", "apply_failed"))
        check_eq((r.status, r.error_code()), (503, "memslot_apply_failed"), repr(r))
        check_eq(r.json["error"]["details"]["step"], "KVM_SET_USER_MEMORY_REGION")
        check_eq(r.json["error"]["details"]["errno_name"], "ENOMEM")
        check_eq(rows(a, uuid), before_rows, "inventory row changed")
        check_eq(g.slots(), before_vmm)
        check_eq(g.op(OP_READ, GiB, 2, 0x900), (0, 0x900), "guest still reads its data")
        ev = a.request("GET", "/v1/events?limit=100&object=vm/" + uuid).json["events"]
        check(("memslot_move", "failed") in [(e["action"], e["result"]) for e in ev], ev)
    finally:
        a.cleanup()


def own_agent_with_user_slot():
    """An agent of the test's own that can be stopped and started, with a running VM that has one
    2 MiB user slot at 1 GiB: (agent, vm, uuid, guest, slot)."""
    a = Agent(extra_config="stop_timeout = 5\n").start()
    try:
        vm, uuid = start_vm(a)
        r = a.request("POST", "/v1/vms/%s/memslots" % vm, {"gpa": "1GiB", "size": "2MiB"})
        check_eq(r.status, 201, repr(r))
    except BaseException:
        a.cleanup()
        raise
    return a, vm, uuid, Guest(a, uuid), r.json["slot"]


@test
def memslots_reconciled_after_agent_restart():
    check_kvm()
    a, vm, uuid, g, slot = own_agent_with_user_slot()
    try:
        check_eq(a.stop(), 0)
        # Behind the stopped agent's back: the VMM gains a slot and loses one.
        g.call("memslot.delete", {"slot": slot})
        g.call("memslot.create", {"slot": 9, "gpa": "2GiB", "size": "4MiB"})
        check(rows(a, uuid) != rows_of(g.slots()))
        a.start()
        check_eq(rows(a, uuid), rows_of(g.slots()), "inventory re-read from the VMM")
        check_eq(sorted(s["slot"] for s in listing(vm, a)["memslots"]), [0, 9])
    finally:
        a.cleanup()


@test
def change_cut_short_by_agent_stop_is_reconciled_with_an_event():
    """The agent stopped between KVM's change and its result row (rows left pending or deleting):
    at the next start the rows follow KVM's table and an event says what became of each."""
    check_kvm()
    a, vm, uuid, g, made = own_agent_with_user_slot()
    try:
        check_eq(a.stop(), 0)
        db = sqlite3.connect(os.path.join(a.state, "inventory.db"))
        with db:
            # a create KVM made whose result row was never written; a delete KVM made, likewise
            db.execute("UPDATE memslots SET state = 'pending' WHERE vm_uuid = ? AND slot = ?", (uuid, made))
            db.execute("INSERT INTO memslots (vm_uuid, as_id, slot, gpa, size, backing, role, state) "
                       "VALUES (?, 0, 7, ?, ?, 'memfd', 'user', 'deleting')", (uuid, 3 * GiB, 2 * MiB))
        db.close()
        a.start()
        check_eq(rows(a, uuid), rows_of(g.slots()), "rows follow KVM's table")
        ev = [e for e in a.request("GET", "/v1/events?limit=100&object=vm/" + uuid).json["events"]
              if e["action"] == "memslot_reconcile"]
        check_eq(len(ev), 1, repr(ev))
        got = sorted((u["slot"], u["recorded_state"], (u["kvm"] or {}).get("gpa")) for u in ev[0]["detail"]["unfinished"])
        check_eq(got, [(made, "pending", GiB), (7, "deleting", None)])
    finally:
        a.cleanup()


@test
def cli_memslot_commands_end_to_end():
    check_kvm()
    vm, uuid = start_vm()
    g = Guest(agent, uuid)
    out = agent.ctl("memslot", "add", vm, "--gpa", "1GiB", "--size", "2MiB", "--slot", "4", "--dirty-log", check=0).stdout
    check("slot 4" in out and "dirty_log" in out, out)
    out = agent.ctl("memslot", "list", vm, check=0).stdout
    check("0x40000000" in out and "ram" in out and "user" in out, out)
    g.op(OP_WRITE, GiB, 2, 5)
    out = agent.ctl("memslot", "dirty-log", vm, "4", "--clear", check=0).stdout
    check("dirty pages: 2 of 512" in out, out)
    p = agent.ctl("memslot", "move", vm, "4", "--gpa", "3GiB", check=1)
    check("memslot_move_dirty_log" in p.stderr, p.stderr)
    agent.ctl("memslot", "set", vm, "4", "--dirty-log", "off", check=0)
    moved = json.loads(agent.ctl("--json", "memslot", "move", vm, "4", "--gpa", "3GiB", check=0).stdout)
    check_eq(moved["gpa"], 3 * GiB)
    p = agent.ctl("memslot", "delete", vm, "0", check=1)
    check("memslot_force_required" in p.stderr, p.stderr)
    agent.ctl("memslot", "delete", vm, "4", check=0)
    check_eq(rows(agent, uuid), rows_of(g.slots()))
    agent.ctl("memslot", "move", vm, "x", "--gpa", "1", check=2)


@test
def responses_match_openapi():
    p = check_openapi_records()
    failures = [l for l in p.stdout.splitlines() if l.startswith("not ok") or l.startswith("#")]
    check(p.returncode == 0 and not failures, "\n".join(failures) + p.stderr)


try:
    run()
finally:
    agent.cleanup()
