"""VM save/restore through the real agent and real kvmfleet-vmm processes on this machine's /dev/kvm:
POST /v1/vms/{id}/snapshot, POST /v1/vms {"restore_from"}, kvmfleetctl vm snapshot|restore, and the
refusal of corrupted or foreign snapshots before any VM exists. Responses are checked against
api/openapi.yaml at the end."""
import json
import os
import re
import shutil
import tempfile
import time

from agentlib import Agent, check_openapi_records
from kvmtest import BUILD, check, check_eq, run, skip, test

GUESTS = os.path.join(BUILD, "guests")
TMP = tempfile.mkdtemp(prefix="kvmfleet-snapshot-api.")
agent = Agent(extra_config="stop_timeout = 5\n").start()
_seq = [0]


def name(prefix):
    _seq[0] += 1
    return "%s-%d" % (prefix, _seq[0])


def check_kvm():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        skip("/dev/kvm is not accessible")


def req(method, path, body=None, template=None, status=None):
    r = agent.request(method, path, body, template=template)
    if status is not None:
        check_eq(r.status, status, "%s %s: %r" % (method, path, r))
    return r


def create_counter(vm, start=True, **kw):
    s = {"name": vm, "vcpus": 2, "memory": "16MiB",
         "boot": {"kernel": os.path.join(GUESTS, "counter.elf"), "cmdline": "every=512"}}
    s.update(kw)
    req("POST", "/v1/vms", s, template="/v1/vms", status=201)
    if start:
        req("POST", "/v1/vms/%s/start" % vm, template=("/v1/vms/{id}/start", "start"), status=200)


def console(vm, offset=0):
    return req("GET", "/v1/vms/%s/console?offset=%d" % (vm, offset), template="/v1/vms/{id}/console", status=200).json


def ticks(text):
    return [int(x) for x in re.findall(r"tick (\d+)\n", text)]


def wait_ticks(vm, n, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        t = ticks(console(vm)["data"])
        if len(t) >= n:
            return t
        time.sleep(0.05)
    raise AssertionError("%s printed fewer than %d ticks: %r" % (vm, n, console(vm)))


def pause(vm):
    return req("POST", "/v1/vms/%s/pause" % vm, template=("/v1/vms/{id}/pause", "pause"), status=200).json


def snapshot(vm, d, status=200):
    return req("POST", "/v1/vms/%s/snapshot" % vm, {"dir": d}, template=("/v1/vms/{id}/snapshot", "snapshot"),
               status=status)


def restore(body, status=201):
    return req("POST", "/v1/vms", body, template=("/v1/vms", "restore"), status=status)


def vm_count():
    return len(req("GET", "/v1/vms?limit=1000", template="/v1/vms", status=200).json["vms"])


def continues(saved, restored):
    """The restored console goes on exactly where the saved one stopped, even mid-line: the ticks of
    both together are 1, 2, 3, ... with none lost or repeated."""
    before = ticks(saved)
    both = ticks(saved + restored)
    check_eq(both, list(range(1, len(both) + 1)), "ticks across the restore")
    check(len(both) >= len(before) + 2, "the restored VM did not count on: %r" % restored[:200])
    check(both[len(before)] > 3, "the restored VM started over")


def saved_counter():
    """A paused counter VM and its snapshot: (vm name, snapshot dir, console text at the pause)."""
    vm = name("snap")
    create_counter(vm)
    wait_ticks(vm, 3)
    pause(vm)
    last = console(vm)["data"]
    d = os.path.join(TMP, vm)
    r = snapshot(vm, d)
    check_eq(r.json["state"], "paused", "snapshot leaves the VM paused")
    return vm, d, last


@test
def snapshot_restore_resumes_counting():
    check_kvm()
    vm, d, last = saved_counter()
    uuid = req("GET", "/v1/vms/" + vm, template="/v1/vms/{id}").json["uuid"]
    ev = req("GET", "/v1/events?limit=1000&object=vm/" + uuid, template="/v1/events").json["events"]
    check(any(e["action"] == "snapshot" and e["result"] == "ok" for e in ev), ev)
    copy = name("copy")
    r = restore({"restore_from": d, "name": copy})
    check_eq(r.json["name"], copy)
    check(r.json["uuid"] != uuid, "a restore gets a new uuid")
    check_eq(r.json["state"], "running")
    wait_ticks(copy, 3)
    continues(last, console(copy)["data"])
    ev = req("GET", "/v1/events?limit=1000&object=vm/" + r.json["uuid"], template="/v1/events").json["events"]
    check(any(e["action"] == "restore" and e["result"] == "ok" for e in ev), ev)
    # the original is untouched and still resumes
    req("POST", "/v1/vms/%s/resume" % vm, template=("/v1/vms/{id}/resume", "resume"), status=200)
    for v in (vm, copy):
        req("POST", "/v1/vms/%s/stop" % v, template=("/v1/vms/{id}/stop", "stop"), status=200)


@test
def restore_paused_then_resume():
    check_kvm()
    vm, d, last = saved_counter()
    req("POST", "/v1/vms/%s/stop" % vm, template=("/v1/vms/{id}/stop", "stop"), status=200)
    copy = name("paused")
    r = restore({"restore_from": d, "name": copy, "paused": True})
    check_eq(r.json["state"], "paused")
    time.sleep(0.3)
    check_eq(console(copy)["next_offset"], 0, "a VM restored paused runs no guest code")
    req("POST", "/v1/vms/%s/resume" % copy, template=("/v1/vms/{id}/resume", "resume"), status=200)
    wait_ticks(copy, 3)
    continues(last, console(copy)["data"])
    req("POST", "/v1/vms/%s/stop" % copy, template=("/v1/vms/{id}/stop", "stop"), status=200)


@test
def snapshot_refusals():
    check_kvm()
    vm = name("refuse")
    create_counter(vm)
    d = os.path.join(TMP, vm)
    r = snapshot(vm, d, status=409)
    check_eq(r.error_code(), "invalid_state")
    check_eq(r.json["error"]["details"]["state"], "running")
    check(not os.path.exists(d), "a refused snapshot wrote something")
    pause(vm)
    r = snapshot(vm, "relative/dir", status=422)
    check_eq(r.error_code(), "invalid_argument")
    check_eq(r.json["error"]["details"]["path"], "$.dir")
    os.makedirs(d)
    open(os.path.join(d, "keep"), "w").close()
    r = snapshot(vm, d, status=422)
    check_eq(r.json["error"]["details"]["path"], "$.dir")
    r = snapshot(vm, "/" + "a" * 2000, status=422)
    check_eq(r.json["error"]["details"]["path"], "$.dir")
    r = req("POST", "/v1/vms/%s/snapshot" % vm, {"dir": d, "extra": 1}, template=("/v1/vms/{id}/snapshot", "snapshot"),
            status=422)
    req("POST", "/v1/vms/no-such-vm/snapshot", {"dir": d + "x"}, template=("/v1/vms/{id}/snapshot", "snapshot"),
        status=404)
    req("POST", "/v1/vms/%s/stop" % vm, template=("/v1/vms/{id}/stop", "stop"), status=200)
    r = snapshot(vm, d + "-stopped", status=409)
    check_eq(r.json["error"]["details"]["state"], "stopped")


def corrupt_copy(good, label, fn):
    d = os.path.join(TMP, label)
    shutil.copytree(good, d)
    fn(d)
    return d


def edit_manifest(d, fn):
    p = os.path.join(d, "manifest.json")
    with open(p) as f:
        m = json.load(f)
    fn(m)
    with open(p, "w") as f:
        json.dump(m, f)


@test
def corrupted_snapshots_are_refused_before_anything_exists():
    check_kvm()
    vm, good, _ = saved_counter()
    req("POST", "/v1/vms/%s/stop" % vm, template=("/v1/vms/{id}/stop", "stop"), status=200)
    with open(os.path.join(good, "manifest.json")) as f:
        mem = json.load(f)["memslots"][0]["file"]

    def flip(d):
        with open(os.path.join(d, mem), "r+b") as f:
            f.seek(4096)
            b = f.read(1)
            f.seek(4096)
            f.write(bytes([b[0] ^ 1]))

    cases = [
        ("checksum", lambda d: flip(d), "snapshot_invalid", mem),
        ("truncated", lambda d: os.truncate(os.path.join(d, mem), 8192), "snapshot_invalid", mem),
        ("vendor", lambda d: edit_manifest(d, lambda m: m["host"].update(
            cpu_vendor="AuthenticAMD" if m["host"]["cpu_vendor"] == "GenuineIntel" else "GenuineIntel")),
         "snapshot_incompatible", "cpu_vendor"),
        ("nested", lambda d: edit_manifest(d, lambda m: m["host"].update(nested_state_size=65536)),
         "snapshot_incompatible", "nested_state_size"),
        ("missing", lambda d: os.unlink(os.path.join(d, mem)), "snapshot_invalid", mem),
    ]
    for label, fn, code, field in cases:
        d = corrupt_copy(good, name(label), fn)
        before = vm_count()
        pids = set(agent.vmm_pids())
        r = restore({"restore_from": d, "name": name("bad")}, status=422)
        check_eq(r.error_code(), code, label)
        check(field in r.json["error"]["details"]["path"], "%s: %r" % (label, r.json))
        check_eq(vm_count(), before, "%s: a refused restore left an inventory row" % label)
        check(set(agent.vmm_pids()) <= pids, "%s: a refused restore started a VMM" % label)
    r = restore({"restore_from": "relative"}, status=422)
    check_eq(r.json["error"]["details"]["path"], "$.restore_from")
    r = restore({"restore_from": good, "bogus": 1}, status=422)
    r = restore({"restore_from": os.path.join(TMP, "nowhere")}, status=422)
    check_eq(r.error_code(), "snapshot_invalid")


@test
def memtouch_checksum_identical_after_restore():
    check_kvm()
    vm = name("mt")
    s = {"name": vm, "vcpus": 1, "memory": "256MiB", "boot": {"kernel": os.path.join(GUESTS, "memtouch.elf")}}
    req("POST", "/v1/vms", s, template="/v1/vms", status=201)
    req("POST", "/v1/vms/%s/start" % vm, template=("/v1/vms/{id}/start", "start"), status=200)
    end = time.time() + 10
    while "region" not in console(vm)["data"] and time.time() < end:
        time.sleep(0.001)
    pause(vm)
    before = console(vm)["data"]
    d = os.path.join(TMP, vm)
    snapshot(vm, d)
    # the original finishes on its own: its result is the reference
    req("POST", "/v1/vms/%s/resume" % vm, template=("/v1/vms/{id}/resume", "resume"), status=200)
    copy = name("mtcopy")
    restore({"restore_from": d, "name": copy})

    def result(v):
        end = time.time() + 120
        while time.time() < end:
            m = re.search(r"memtouch: pages=\d+ mismatches=\d+ sum=0x[0-9a-f]+", console(v)["data"])
            if m:
                return m.group(0)
            time.sleep(0.1)
        raise AssertionError("%s did not finish: %r" % (v, console(v)["data"][-300:]))

    ref = result(vm)
    got = result(copy)
    check("mismatches=0" in ref, ref)
    check_eq(got, ref, "memtouch's checksum after restore")
    check("region" not in console(copy)["data"] or "region" not in before,
          "the restored VM started over instead of resuming")


@test
def user_memslot_survives_restore():
    check_kvm()
    vm = name("slot")
    create_counter(vm)
    r = req("POST", "/v1/vms/%s/memslots" % vm, {"gpa": "1GiB", "size": "2MiB"},
            template="/v1/vms/{id}/memslots", status=201)
    slot = r.json["slot"]
    pause(vm)
    d = os.path.join(TMP, vm)
    snapshot(vm, d)
    req("POST", "/v1/vms/%s/stop" % vm, template=("/v1/vms/{id}/stop", "stop"), status=200)
    copy = name("slotcopy")
    restore({"restore_from": d, "name": copy})
    slots = req("GET", "/v1/vms/%s/memslots" % copy, template="/v1/vms/{id}/memslots", status=200).json
    slots = slots.get("memslots", slots) if isinstance(slots, dict) else slots
    got = [s for s in slots if s["slot"] == slot]
    check_eq(len(got), 1, slots)
    check_eq(got[0]["gpa"], 1 << 30)
    check_eq(got[0]["role"], "user")
    req("POST", "/v1/vms/%s/stop" % copy, template=("/v1/vms/{id}/stop", "stop"), status=200)


@test
def cli_snapshot_and_restore():
    check_kvm()
    vm = name("cli")
    create_counter(vm)
    wait_ticks(vm, 2)
    agent.ctl("vm", "pause", vm, check=0)
    d = os.path.join(TMP, vm)
    agent.ctl("vm", "snapshot", vm, d, check=0)
    check(os.path.isfile(os.path.join(d, "manifest.json")), "no snapshot written")
    p = agent.ctl("vm", "snapshot", vm, d)
    check(p.returncode != 0 and "not empty" in p.stderr, p.stderr)
    copy = name("clicopy")
    p = agent.ctl("vm", "restore", d, "--name", copy, "--paused", check=0)
    check(copy in p.stdout, p.stdout)
    check_eq(req("GET", "/v1/vms/" + copy, template="/v1/vms/{id}").json["state"], "paused")
    bad = corrupt_copy(d, name("clibad"), lambda x: os.truncate(os.path.join(x, "spec.json"), 3))
    p = agent.ctl("vm", "restore", bad)
    check(p.returncode != 0 and "spec.json" in p.stderr, p.stderr)
    for v in (vm, copy):
        agent.ctl("vm", "stop", v, check=0)


@test
def responses_match_openapi():
    p = check_openapi_records()
    failures = [line for line in p.stdout.splitlines() if line.startswith("not ok") or line.startswith("#")]
    check(p.returncode == 0 and not failures, "\n".join(failures) + p.stderr)


try:
    run()
finally:
    agent.cleanup()
