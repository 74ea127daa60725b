"""housekeeping_cpus (docs/configuration.md, "CPU placement") on real processes: the agent's
threads and a running VMM's main thread on the housekeeping CPUs, its vCPU, virtio I/O and
memslot-pool threads on the rest (the vCPUs on the spec's cpuset where it has one); both lists in
GET /v1/host, `kvmfleetctl host info` and the VMM's status. Without the key (auto) the agent and
each VMM's main thread share the first of the agent's CPUs and the guests' threads keep all of
them; with `none` every thread keeps the affinity it was started with; a bad or unusable list
stops the agent with a message naming it. Thread placement is read from
/proc/PID/task/TID/status (Cpus_allowed_list), as the kernel applies it."""
import json
import os
import socket
import subprocess
import tempfile

from agentlib import Agent, check_openapi_records
from kvmtest import BUILD, check, check_eq, run, skip, test

HELLO = os.path.join(BUILD, "guests", "hello.elf")
MINE = sorted(os.sched_getaffinity(0))


def cpu_list(cpus):
    """Canonical list, as the agent writes it: ranges of consecutive CPUs."""
    out, cpus = [], sorted(cpus)
    i = 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        out.append(str(cpus[i]) if i == j else "%d-%d" % (cpus[i], cpus[j]))
        i = j + 1
    return ",".join(out)


def threads(pid):
    """{tid: (comm, Cpus_allowed_list)} of every thread of pid."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        base = "/proc/%d/task/%s/" % (pid, tid)
        with open(base + "comm") as f:
            comm = f.read().strip()
        with open(base + "status") as f:
            allowed = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("Cpus_allowed_list:")][0]
        out[int(tid)] = (comm, allowed)
    return out


def need_two_cpus():
    if len(MINE) < 2:
        skip("this process may run on one CPU only (%s): no CPU is left to separate guests from housekeeping"
             % cpu_list(MINE))


def vmm_status(agent, uuid):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(10)
    s.connect(os.path.join(agent.run_dir, "vms", uuid + ".sock"))
    s.send(json.dumps({"id": 1, "method": "status"}).encode())
    reply = json.loads(s.recv(1 << 20))
    s.close()
    return reply["result"]


def start_vm(agent, name, **extra):
    disk = os.path.join(agent.dir, name + ".img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    body = {"name": name, "vcpus": 1, "memory": "16MiB", "boot": {"kernel": HELLO, "cmdline": "halt=1"},
            "disks": [{"path": disk}]}
    body.update(extra)
    r = agent.request("POST", "/v1/vms", body)
    check_eq(r.status, 201, repr(r))
    uuid = r.json["uuid"]
    r = agent.request("POST", "/v1/vms/%s/start" % name)
    check_eq(r.status, 200, repr(r))
    # the memslot pool's thread starts with the first memfd-backed slot
    r = agent.request("POST", "/v1/vms/%s/memslots" % name, {"gpa": 1 << 30, "size": 2 << 20})
    check_eq(r.status, 201, repr(r))
    def cmdline(pid):
        with open("/proc/%d/cmdline" % pid) as f:
            return f.read().split("\0")
    pids = [p for p in agent.vmm_pids() if any(uuid in a for a in cmdline(p))]
    check_eq(len(pids), 1, "VMM processes for %s" % name)
    return uuid, pids[0]


def by_role(ts, main_pid):
    roles = {"main": [], "vcpu": [], "io": [], "pool": [], "other": []}
    for tid, (comm, allowed) in ts.items():
        role = ("main" if tid == main_pid else "vcpu" if comm.startswith("vcpu") else
                "io" if comm.startswith("virtio-") else "pool" if comm == "memslot-pool" else "other")
        roles[role].append((comm, allowed))
    return roles


@test
def housekeeping_cpus_place_the_agent_and_each_vmms_threads():
    need_two_cpus()
    hk, guest = str(MINE[0]), cpu_list(MINE[1:])
    agent = Agent(extra_config="housekeeping_cpus = %d\n" % MINE[0]).start()
    try:
        r = agent.request("GET", "/v1/host", template="/v1/host")
        check_eq(r.status, 200, repr(r))
        check_eq(r.json["cpu_placement"], {"housekeeping_cpus": hk, "guest_cpus": guest, "mode": "list"})
        for tid, (comm, allowed) in threads(agent.proc.pid).items():
            check_eq(allowed, hk, "agent thread %s (%d)" % (comm, tid))
        p = subprocess.run([os.path.join(BUILD, "kvmfleetctl"), "--socket", agent.socket, "host", "info"],
                           capture_output=True, text=True, timeout=30)
        check_eq(p.returncode, 0, p.stderr)
        check("CPU placement:   housekeeping on %s, guests on %s\n" % (hk, guest) in p.stdout, p.stdout)

        uuid, vmm = start_vm(agent, "placed")
        roles = by_role(threads(vmm), vmm)
        check(roles["vcpu"] and roles["io"] and roles["pool"], "VMM threads: %r" % roles)
        for comm, allowed in roles["main"]:
            check_eq(allowed, hk, "VMM thread %s" % comm)
        for comm, allowed in roles["vcpu"] + roles["io"] + roles["pool"]:
            check_eq(allowed, guest, "VMM thread %s" % comm)
        check_eq(vmm_status(agent, uuid)["cpu_placement"], {"housekeeping_cpus": hk, "guest_cpus": guest})

        # the spec's cpuset still decides where the vCPUs run; the device thread stays on the guest CPUs
        uuid, vmm = start_vm(agent, "pinned", cpuset=hk)
        roles = by_role(threads(vmm), vmm)
        check_eq([a for _, a in roles["vcpu"]], [hk], "vCPU of a VM with cpuset %s" % hk)
        check_eq({a for _, a in roles["io"]}, {guest}, "device I/O threads of that VM")
        check_eq([a for _, a in roles["main"]], [hk])
    finally:
        agent.cleanup()


@test
def by_default_the_agent_and_each_vmms_main_thread_share_one_cpu():
    need_two_cpus()
    hk, every = str(MINE[0]), cpu_list(MINE)
    agent = Agent().start()
    try:
        r = agent.request("GET", "/v1/host", template="/v1/host")
        check_eq(r.json["cpu_placement"], {"housekeeping_cpus": hk, "guest_cpus": every, "mode": "auto"})
        p = subprocess.run([os.path.join(BUILD, "kvmfleetctl"), "--socket", agent.socket, "host", "info"],
                           capture_output=True, text=True, timeout=30)
        check("CPU placement:   housekeeping on %s (auto), guests on %s\n" % (hk, every) in p.stdout, p.stdout)
        check("Control plane on CPU %s (housekeeping_cpus = auto)" % hk in agent.log(), agent.log()[-2000:])
        for tid, (comm, allowed) in threads(agent.proc.pid).items():
            check_eq(allowed, hk, "agent thread %s (%d)" % (comm, tid))
        uuid, vmm = start_vm(agent, "shared")
        roles = by_role(threads(vmm), vmm)
        check(roles["vcpu"] and roles["io"] and roles["pool"], "VMM threads: %r" % roles)
        check_eq([a for _, a in roles["main"]], [hk], "the VMM's main thread")
        for comm, allowed in roles["vcpu"] + roles["io"] + roles["pool"]:
            check_eq(allowed, every, "VMM thread %s" % comm)
        check_eq(vmm_status(agent, uuid)["cpu_placement"], {"housekeeping_cpus": hk, "guest_cpus": every})
    finally:
        agent.cleanup()


@test
def auto_on_an_agent_with_one_cpu_places_nothing():
    only = {MINE[-1]}
    os.sched_setaffinity(0, only)
    try:
        agent = Agent().start()
    finally:
        os.sched_setaffinity(0, set(MINE))
    try:
        check_eq(agent.request("GET", "/v1/host").json["cpu_placement"], None)
        uuid, vmm = start_vm(agent, "single")
        for tid, (comm, allowed) in threads(vmm).items():
            check_eq(allowed, str(MINE[-1]), "VMM thread %s (%d)" % (comm, tid))
        check_eq(vmm_status(agent, uuid)["cpu_placement"], None)
    finally:
        agent.cleanup()


@test
def with_none_every_thread_keeps_its_affinity():
    agent = Agent(extra_config="housekeeping_cpus = none\n").start()
    try:
        r = agent.request("GET", "/v1/host", template="/v1/host")
        check_eq(r.json["cpu_placement"], None)
        p = subprocess.run([os.path.join(BUILD, "kvmfleetctl"), "--socket", agent.socket, "host", "info"],
                           capture_output=True, text=True, timeout=30)
        check("CPU placement:   none\n" in p.stdout, p.stdout)
        mine = cpu_list(MINE)
        for tid, (comm, allowed) in threads(agent.proc.pid).items():
            check_eq(allowed, mine, "agent thread %s (%d)" % (comm, tid))
        uuid, vmm = start_vm(agent, "free")
        for tid, (comm, allowed) in threads(vmm).items():
            check_eq(allowed, mine, "VMM thread %s (%d)" % (comm, tid))
        check_eq(vmm_status(agent, uuid)["cpu_placement"], None)
    finally:
        agent.cleanup()


@test
def when_no_other_cpu_is_left_guests_share_the_housekeeping_cpus():
    need_two_cpus()
    every = cpu_list(MINE)
    agent = Agent(extra_config="housekeeping_cpus = %s\n" % every).start()
    try:
        r = agent.request("GET", "/v1/host")
        check_eq(r.json["cpu_placement"], {"housekeeping_cpus": every, "guest_cpus": every, "mode": "list"})
        check("no other CPU is left" in agent.log(), agent.log()[-2000:])
    finally:
        agent.cleanup()


@test
def cpus_the_agent_may_not_use_are_dropped_with_a_warning():
    need_two_cpus()
    absent = max(MINE) + 1
    agent = Agent(extra_config="housekeeping_cpus = %d,%d\n" % (MINE[0], absent)).start()
    try:
        r = agent.request("GET", "/v1/host")
        check_eq(r.json["cpu_placement"]["housekeeping_cpus"], str(MINE[0]))
        check("only CPUs %d of these are available to the agent" % MINE[0] in agent.log(), agent.log()[-2000:])
    finally:
        agent.cleanup()


def refused(value, want):
    agent = Agent(extra_config="housekeeping_cpus = %s\n" % value)
    try:
        agent.start(wait=False)
        rc = agent.proc.wait(10)
        check(rc != 0, "kvmfleetd with housekeeping_cpus = %s exited with %d" % (value, rc))
        check(want in agent.log(), "log does not say %r:\n%s" % (want, agent.log()))
        check(not os.path.exists(agent.socket), "the API socket exists")
    finally:
        agent.cleanup()


@test
def a_malformed_list_stops_the_agent_naming_the_line():
    for value in ("2-1", "zero", "0,,1", "1024", "0-3,^0-3"):
        refused(value, "kvmfleetd.conf:8: housekeeping_cpus must be auto, none or a list of CPUs 0-1023 such as 0-1,4, "
                       "not \"%s\"" % value)


@test
def a_list_of_cpus_the_agent_may_not_use_stops_it():
    absent = max(MINE) + 1
    refused(str(absent), "housekeeping_cpus \"%d\": none of these CPUs is available to the agent (its CPUs: %s)"
            % (absent, cpu_list(MINE)))


@test
def the_vmm_takes_both_lists_or_neither():
    with tempfile.TemporaryDirectory() as d:
        for args in (["--housekeeping-cpus", "0"], ["--guest-cpus", "0"]):
            p = subprocess.run([os.path.join(BUILD, "kvmfleet-vmm"), "--spec", "/nonexistent", "--control",
                                os.path.join(d, "c.sock")] + args, capture_output=True, text=True, timeout=10)
            check_eq(p.returncode, 2, p.stderr)
            check("--housekeeping-cpus and --guest-cpus go together" in p.stderr, p.stderr)
        p = subprocess.run([os.path.join(BUILD, "kvmfleet-vmm"), "--spec", "/nonexistent", "--control",
                            os.path.join(d, "c.sock"), "--housekeeping-cpus", "0", "--guest-cpus", "x"],
                           capture_output=True, text=True, timeout=10)
        check_eq(p.returncode, 2, p.stderr)
        check("Invalid --housekeeping-cpus \"0\" or --guest-cpus \"x\"" in p.stderr, p.stderr)


@test
def responses_match_the_openapi_document():
    check_openapi_records()


run()
