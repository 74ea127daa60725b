"""VM lifecycle end to end: the real agent supervising real kvmfleet-vmm processes on this machine's
/dev/kvm, driven over HTTP and through kvmfleetctl; every JSON response is checked against
api/openapi.yaml at the end."""
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time

from agentlib import Agent, check_openapi_records
from kvmtest import BUILD, check, check_eq, run, skip, test

GUESTS = os.path.join(BUILD, "guests")
agent = Agent(extra_config="stop_timeout = 5\n").start()
_seq = [0]


def name(prefix):
    _seq[0] += 1
    return "%s-%d" % (prefix, _seq[0])


def spec(vm_name, guest="counter.elf", **kw):
    s = {"name": vm_name, "vcpus": 1, "memory": "2MiB", "boot": {"kernel": os.path.join(GUESTS, guest)}}
    s.update(kw)
    return s


def create(a, vm_name, guest="counter.elf", start=False, **kw):
    r = a.request("POST", "/v1/vms", spec(vm_name, guest, **kw), template="/v1/vms")
    check_eq(r.status, 201, "create %s: %r" % (vm_name, r))
    if start:
        r = a.request("POST", "/v1/vms/%s/start" % vm_name, template=("/v1/vms/{id}/start", "start"))
        check_eq(r.status, 200, "start %s: %r" % (vm_name, r))
    return r.json


def get(a, vm_id):
    return a.request("GET", "/v1/vms/" + vm_id, template="/v1/vms/{id}")


def wait_state(a, vm_id, states, timeout=10):
    if isinstance(states, str):
        states = (states,)
    end = time.time() + timeout
    vm = None
    while time.time() < end:
        vm = get(a, vm_id).json
        if vm and vm.get("state") in states:
            return vm
        time.sleep(0.05)
    raise AssertionError("VM %s did not reach %s within %ss: %r" % (vm_id, states, timeout, vm))


def console(a, vm_id, offset=0):
    r = a.request("GET", "/v1/vms/%s/console?offset=%d" % (vm_id, offset), template="/v1/vms/{id}/console")
    check_eq(r.status, 200, repr(r))
    return r.json


def events_for(a, uuid):
    r = a.request("GET", "/v1/events?limit=1000&object=vm/" + uuid, template="/v1/events")
    check_eq(r.status, 200)
    return r.json["events"]


def alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    with open("/proc/%d/stat" % pid) as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def inventory_rows(a):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(a.state, "inventory.db"), uri=True)
    try:
        return db.execute("SELECT uuid, name, state, spec, vmm_pid FROM vms ORDER BY uuid").fetchall()
    finally:
        db.close()


@test
def cli_end_to_end_with_events():
    hello = name("hello")
    p = agent.ctl("vm", "create", "--name", hello, "--memory", "2MiB", "--kernel", os.path.join(GUESTS, "hello.elf"),
                  "--start", check=0)
    uuid = p.stdout.strip()
    check(len(uuid) == 36, p.stdout)
    wait_state(agent, hello, "stopped")  # hello leaves through debug-exit
    out = agent.ctl("vm", "console", hello, check=0).stdout
    check("hello from vcpu 0" in out, "console: %r" % out)
    show = json.loads(agent.ctl("--json", "vm", "show", hello, check=0).stdout)
    check("debug-exit" in show["exit_reason"], show["exit_reason"])

    counter = name("counter")
    agent.ctl("vm", "create", "--name", counter, "--memory", "2MiB", "--kernel", os.path.join(GUESTS, "counter.elf"),
              check=0)
    agent.ctl("vm", "start", counter, check=0)
    check_eq(get(agent, counter).json["state"], "running")
    time.sleep(0.3)
    agent.ctl("vm", "pause", counter, check=0)
    check_eq(get(agent, counter).json["state"], "paused")
    n1 = console(agent, counter)["next_offset"]
    time.sleep(0.5)
    n2 = console(agent, counter)["next_offset"]
    check_eq(n1, n2, "the counter printed while paused")
    agent.ctl("vm", "resume", counter, check=0)
    end = time.time() + 5
    while console(agent, counter)["next_offset"] == n2 and time.time() < end:
        time.sleep(0.05)
    check(console(agent, counter)["next_offset"] > n2, "the counter did not resume")
    listing = agent.ctl("vm", "list", check=0).stdout
    check(counter in listing and "running" in listing, listing)
    stats = agent.ctl("vm", "stats", counter, check=0).stdout
    check("vcpu0" in stats, stats)
    # options after the VM, as the usage line writes them
    agent.ctl("vm", "stop", counter, "--timeout", "5", check=0)
    check_eq(get(agent, counter).json["state"], "stopped")
    agent.ctl("vm", "delete", counter, check=0)
    check_eq(get(agent, counter).status, 404)
    # exit codes: a refused action is 1, a usage error 2
    check_eq(agent.ctl("vm", "start", counter).returncode, 1)
    check_eq(agent.ctl("vm", "stop").returncode, 2)

    cuuid = [e for e in agent.request("GET", "/v1/events?limit=1000").json["events"]
             if e["detail"] and e["detail"].get("name") == counter][0]["object"][3:]
    actions = [(e["action"], e["result"]) for e in events_for(agent, cuuid)]
    for step in ("create", "start", "pause", "resume", "stop", "delete"):
        check((step, "ok") in actions, "event %s missing: %r" % (step, actions))
    for e in events_for(agent, cuuid):
        check(e["actor"].startswith("uid=0(root)"), "actor %r" % e["actor"])
    hello_events = [e["action"] for e in events_for(agent, uuid)]
    check("exit" in hello_events, hello_events)


@test
def console_follow_streams_output():
    vm = name("follow")
    create(agent, vm, start=True)
    cmd = [os.path.join(BUILD, "kvmfleetctl"), "--socket", agent.socket, "vm", "console", "--follow", vm]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    got = b""
    end = time.time() + 10
    os.set_blocking(p.stdout.fileno(), False)
    while b"tick 3\n" not in got and time.time() < end:
        chunk = p.stdout.read()
        if chunk:
            got += chunk
        time.sleep(0.05)
    check(b"tick 3\n" in got, "streamed: %r" % got[:200])
    # the stream ends when the VM stops
    agent.request("POST", "/v1/vms/%s/stop" % vm, template=("/v1/vms/{id}/stop", "stop"))
    check_eq(p.wait(10), 0)


@test
def vmms_survive_agent_kill_and_are_adopted():
    names = [name("survivor") for _ in range(5)]
    for n in names:
        create(agent, n, start=True)
    before = {n: get(agent, n).json for n in names}
    rows_before = inventory_rows(agent)
    agent.stop(signal.SIGKILL)
    for n in names:
        check(alive(before[n]["vmm"]["pid"]), "VMM of %s died with the agent" % n)
    agent.start()
    for n in names:
        vm = get(agent, n).json
        check_eq(vm["state"], "running", n)
        check_eq(vm["vmm"]["pid"], before[n]["vmm"]["pid"], n)
    check_eq(inventory_rows(agent), rows_before, "the inventory changed across the restart")
    adopts = [e for e in agent.request("GET", "/v1/events?limit=1000").json["events"] if e["action"] == "adopt"]
    check(len(adopts) >= 5, adopts)
    # the adopted VMs are fully controllable: pause, and stop (the exit is seen through the new pidfd)
    r = agent.request("POST", "/v1/vms/%s/pause" % names[0], template=("/v1/vms/{id}/pause", "pause"))
    check_eq(r.status, 200, repr(r))
    for n in names:
        r = agent.request("POST", "/v1/vms/%s/stop" % n, template=("/v1/vms/{id}/stop", "stop"))
        check_eq(r.status, 200, repr(r))
        check_eq(r.json["state"], "stopped")
        check(not alive(before[n]["vmm"]["pid"]), "VMM of %s still runs after stop" % n)


@test
def killed_vmm_is_crashed_within_a_second_and_restarted_by_policy():
    plain, restart = name("crash"), name("phoenix")
    create(agent, plain, start=True)
    create(agent, restart, start=True, on_crash="restart")
    pid = get(agent, plain).json["vmm"]["pid"]
    t0 = time.time()
    os.kill(pid, signal.SIGKILL)
    vm = wait_state(agent, plain, "crashed", timeout=1.0)
    check(time.time() - t0 < 1.0)
    check("SIGKILL" in vm["exit_reason"], vm["exit_reason"])
    crash = [e for e in events_for(agent, vm["uuid"]) if e["action"] == "crash"]
    check(crash and crash[-1]["result"] == "failed", crash)

    old = get(agent, restart).json["vmm"]["pid"]
    os.kill(old, signal.SIGKILL)
    end = time.time() + 5
    vm = get(agent, restart).json
    while time.time() < end and not (vm["state"] == "running" and vm["vmm"]["pid"] not in (None, old)):
        time.sleep(0.05)
        vm = get(agent, restart).json
    check_eq(vm["state"], "running")
    check(vm["vmm"]["pid"] != old and alive(vm["vmm"]["pid"]), vm)
    actions = [e["action"] for e in events_for(agent, vm["uuid"])]
    check("crash" in actions and "crash_restart" in actions, actions)


@test
def guest_reboot_loop_hits_the_restart_limit():
    vm = name("reboot")
    create(agent, vm, guest="reset.elf", start=False)
    agent.request("POST", "/v1/vms/%s/start" % vm)
    got = wait_state(agent, vm, "crashed", timeout=20)
    check("restart limit" in got["exit_reason"], got["exit_reason"])
    actions = [e["action"] for e in events_for(agent, got["uuid"])]
    check_eq(actions.count("reboot"), 6, actions)  # the first run plus five restarts
    check("restart_limit" in actions, actions)


@test
def on_poweroff_restart_brings_the_guest_back_within_the_limit():
    vm = name("poweroff")
    create(agent, vm, guest="hello.elf", on_poweroff="restart")
    agent.request("POST", "/v1/vms/%s/start" % vm)
    got = wait_state(agent, vm, "crashed", timeout=20)
    check("power-off loop" in got["exit_reason"], got["exit_reason"])
    actions = [e["action"] for e in events_for(agent, got["uuid"])]
    check_eq(actions.count("poweroff"), 6, actions)
    # the default (destroy) just stops
    plain = name("poweroff")
    create(agent, plain, guest="hello.elf", start=True)
    check_eq(wait_state(agent, plain, "stopped")["state"], "stopped")


@test
def vcpu_threads_run_on_the_cpuset():
    if os.cpu_count() < 2:
        skip("needs 2 host CPUs to tell a cpuset from no cpuset")
    vm = name("pinned")
    create(agent, vm, start=True, cpuset="1")
    pid = get(agent, vm).json["vmm"]["pid"]
    found = {}
    end = time.time() + 5
    while "vcpu0" not in found and time.time() < end:  # the thread names itself once it runs
        found = {}
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                comm = f.read().strip()
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                allowed = [l.split()[1] for l in f if l.startswith("Cpus_allowed_list")][0]
            found[comm] = allowed
        time.sleep(0.02)
    check_eq(found.get("vcpu0"), "1", repr(found))
    check(found.get("kvmfleet-vmm") != "1" or os.cpu_count() == 1, "the main thread was pinned too: %r" % found)
    agent.request("POST", "/v1/vms/%s/stop" % vm)


@test
def concurrent_creates_keep_names_unique():
    names = [name("conc") for _ in range(10)]
    results = []
    lock = threading.Lock()

    def worker(n):
        r = agent.request("POST", "/v1/vms", spec(n))
        with lock:
            results.append((n, r.status, r.error_code()))

    threads = [threading.Thread(target=worker, args=(n,)) for n in names + names]  # every name twice
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check_eq(len(results), 20)
    for n in names:
        statuses = sorted(s for m, s, _ in results if m == n)
        check_eq(statuses, [201, 409], n)
    codes = {c for _, s, c in results if s != 201}
    check_eq(codes, {"conflict"})
    listed = agent.request("GET", "/v1/vms?limit=1000").json["vms"]
    check_eq(sorted(v["name"] for v in listed if v["name"] in names), sorted(names))


@test
def bad_requests_change_nothing():
    running = name("steady")
    create(agent, running, start=True)
    rows = inventory_rows(agent)
    pid = get(agent, running).json["vmm"]["pid"]
    kernel = os.path.join(GUESTS, "hello.elf")
    cases = [
        ("malformed JSON", "POST", "/v1/vms", '{"name": "x",', 400, "invalid_argument", None),
        ("wrong type", "POST", "/v1/vms", {"name": "x", "vcpus": "two", "memory": "2MiB", "boot": {"kernel": kernel}},
         422, "invalid_argument", "$.vcpus"),
        ("unknown field", "POST", "/v1/vms", {"name": "x", "vcpus": 1, "memory": "2MiB", "boot": {"kernel": kernel},
                                              "colour": "red"}, 422, "invalid_argument", "$.colour"),
        ("missing field", "POST", "/v1/vms", {"name": "x", "vcpus": 1, "boot": {"kernel": kernel}},
         422, "invalid_argument", "$.memory"),
        ("huge memory", "POST", "/v1/vms", {"name": "x", "vcpus": 1, "memory": "900GiB", "boot": {"kernel": kernel}},
         422, "invalid_argument", "$.memory"),
        ("too many vcpus", "POST", "/v1/vms", {"name": "x", "vcpus": 200, "memory": "2MiB", "boot": {"kernel": kernel}},
         422, "invalid_argument", "$.vcpus"),
        ("missing kernel", "POST", "/v1/vms", {"name": "x", "vcpus": 1, "memory": "2MiB", "boot": {"kernel": "/nonexistent"}},
         422, "invalid_argument", "$.boot.kernel"),
        ("uuid-like name", "POST", "/v1/vms", {"name": "0b6e4a8e-8c1f-4a55-9d3a-1d2e3f4a5b6c", "vcpus": 1, "memory": "2MiB",
                                               "boot": {"kernel": kernel}}, 422, "invalid_argument", "$.name"),
        ("duplicate name", "POST", "/v1/vms", spec(running), 409, "conflict", "$.name"),
        ("start a running VM", "POST", "/v1/vms/%s/start" % running, None, 409, "invalid_state", None),
        ("resume a running VM", "POST", "/v1/vms/%s/resume" % running, None, 409, "invalid_state", None),
        ("delete a running VM", "DELETE", "/v1/vms/%s" % running, None, 409, "invalid_state", None),
        ("stop with a bad timeout", "POST", "/v1/vms/%s/stop" % running, {"timeout_s": -1}, 422, "invalid_argument",
         "$.timeout_s"),
        ("stop with an unknown field", "POST", "/v1/vms/%s/stop" % running, {"grace": 1}, 422, "invalid_argument", "$.grace"),
        ("unknown VM", "POST", "/v1/vms/nosuchvm/start", None, 404, "not_found", None),
        ("bad state filter", "GET", "/v1/vms?state=sleeping", None, 400, "invalid_argument", None),
        ("bad force flag", "DELETE", "/v1/vms/%s?force=maybe" % running, None, 400, "invalid_argument", None),
    ]
    for what, method, path, body, status, code, field in cases:
        headers = {"Content-Type": "application/json"} if isinstance(body, str) else None
        r = agent.request(method, path, body, headers=headers, template=None)
        check_eq(r.status, status, "%s: %r" % (what, r))
        check_eq(r.error_code(), code, what)
        if field:
            details = r.json["error"].get("details") or {}
            check(details.get("path") == field or field in r.json["error"]["message"], "%s: %r" % (what, r.json))
        if code == "invalid_state":
            check_eq(r.json["error"]["details"]["state"], "running", what)
    check_eq(inventory_rows(agent), rows, "the inventory changed")
    check(alive(pid), "the running VM's VMM died")
    check_eq(get(agent, running).json["state"], "running")


@test
def stop_escalates_to_sigkill_when_the_vmm_does_not_answer():
    vm = name("stuck")
    create(agent, vm, start=True)
    pid = get(agent, vm).json["vmm"]["pid"]
    os.kill(pid, signal.SIGSTOP)  # answers nothing, and SIGTERM waits for SIGCONT
    t0 = time.time()
    r = agent.request("POST", "/v1/vms/%s/stop" % vm, {"timeout_s": 1}, template=("/v1/vms/{id}/stop", "stop"))
    check_eq(r.status, 200, repr(r))
    check(time.time() - t0 < 8, "stop took %.1f s" % (time.time() - t0))
    check("SIGKILL" in r.json["exit_reason"], r.json["exit_reason"])
    check(not alive(pid))


@test
def delete_force_stops_first_and_cleans_up():
    vm = name("doomed")
    uuid = create(agent, vm, start=True)["uuid"]
    pid = get(agent, vm).json["vmm"]["pid"]
    r = agent.request("DELETE", "/v1/vms/%s?force=true" % vm)
    check_eq(r.status, 204, repr(r))
    check(not alive(pid))
    check(not os.path.exists(os.path.join(agent.state, "vms", uuid)), "VM directory left behind")
    check(not os.path.exists(os.path.join(agent.run_dir, "vms", uuid + ".sock")), "control socket left behind")
    check_eq(get(agent, uuid).status, 404)


@test
def list_filters_and_paginates():
    r = agent.request("GET", "/v1/vms?limit=2", template="/v1/vms")
    check_eq(r.status, 200)
    total = r.json["total"]
    check(total >= 3, r.json)
    seen, offset = [], 0
    while offset is not None:
        page = agent.request("GET", "/v1/vms?limit=2&offset=%d" % offset).json
        check(len(page["vms"]) <= 2)
        seen += [v["uuid"] for v in page["vms"]]
        offset = page["next_offset"]
    check_eq(len(seen), total)
    check_eq(len(set(seen)), total)
    stopped = agent.request("GET", "/v1/vms?state=stopped&limit=1000").json
    check(all(v["state"] == "stopped" for v in stopped["vms"]))
    check_eq(stopped["total"], len(stopped["vms"]))


@test
def dead_vmms_found_at_start_are_crashed_and_orphans_reported():
    gone, kept = name("gone"), name("kept")
    create(agent, gone, start=True)
    create(agent, kept, start=True)
    gone_pid = get(agent, gone).json["vmm"]["pid"]
    agent.stop(signal.SIGKILL)
    os.kill(gone_pid, signal.SIGKILL)
    # a VMM nobody told the inventory about, answering under the agent's run directory
    orphan_uuid = "6d1c8a52-0e1b-4c1e-9a59-3c2b1a0f9e8d"
    spec_path = os.path.join(agent.dir, "orphan.json")
    with open(spec_path, "w") as f:
        json.dump(spec("orphan", uuid=orphan_uuid), f)
    sock = os.path.join(agent.run_dir, "vms", orphan_uuid + ".sock")
    orphan = subprocess.Popen([os.path.join(BUILD, "kvmfleet-vmm"), "--spec", spec_path, "--control", sock],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.time() + 5
        while not os.path.exists(sock) and time.time() < end:
            time.sleep(0.02)
        time.sleep(0.1)
        agent.start()
        vm = get(agent, gone).json
        check_eq(vm["state"], "crashed")
        check("gone" in vm["exit_reason"], vm["exit_reason"])
        check_eq(get(agent, kept).json["state"], "running")
        ev = agent.request("GET", "/v1/events?limit=1000&object=vm/" + orphan_uuid).json["events"]
        check(ev and ev[-1]["action"] == "orphan_vmm" and ev[-1]["result"] == "reported", ev)
        check(orphan.poll() is None, "the orphan VMM was killed")
    finally:
        orphan.kill()
        orphan.wait()


@test
def agent_exits_cleanly_leaving_vms_running():
    vm = name("last")
    create(agent, vm, start=True)
    pid = get(agent, vm).json["vmm"]["pid"]
    rc = agent.stop()
    check_eq(rc, 0, "kvmfleetd exit status (sanitizer reports end up here):\n" + agent.log()[-4000:])
    check(alive(pid), "SIGTERM to the agent stopped a VM")
    check("ERROR: AddressSanitizer" not in agent.log() and "runtime error:" not in agent.log(), agent.log()[-4000:])


@test
def responses_match_openapi():
    p = check_openapi_records()
    failures = [l for l in p.stdout.splitlines() if l.startswith("not ok") or l.startswith("#")]
    check(p.returncode == 0 and not failures, "\n".join(failures) + p.stderr)
    check(p.stdout.count("ok - ") >= 20, "too few responses checked:\n" + p.stdout)


try:
    run()
finally:
    agent.cleanup()
