"""GET /metrics and the health checks that operations rely on, on a real kvmfleetd: the
Prometheus text passes `promtool check metrics`, counters follow the requests made, the host's
KVM setup and module parameters show up, the watchdog pings systemd's notify socket, request log
lines carry REQUEST_ID."""
import json
import os
import re
import shutil
import socket
import subprocess
import time

from agentlib import Agent
from kvmtest import BUILD, check, check_eq, run, skip, test

agent = Agent(log_level="debug")
os.makedirs(agent.run_dir)
load = subprocess.run([os.path.join(BUILD, "kvmfleet-load"), "-c", agent.config, "--report",
                       os.path.join(agent.run_dir, "kvm-setup.json")], capture_output=True, text=True, timeout=60)
agent.start()


def metrics():
    r = agent.request("GET", "/metrics")
    check_eq(r.status, 200)
    return r


def samples(text):
    """{(name, frozenset(labels)): value} for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        check(m, "malformed sample line %r" % line)
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


@test
def metrics_pass_promtool():
    if not shutil.which("promtool"):
        skip("promtool (Debian package prometheus) is not installed")
    agent.request("GET", "/v1/health")
    agent.request("GET", "/no/such/thing")
    r = metrics()
    check(r.headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"), r.headers)
    p = subprocess.run(["promtool", "check", "metrics"], input=r.raw, capture_output=True, text=True, timeout=60)
    check(p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(),
          "promtool: rc %d\n%s%s" % (p.returncode, p.stdout, p.stderr))


@test
def request_counters_follow_requests():
    key = ("kvmfleet_http_requests_total", frozenset({("method", "GET"), ("route", "/v1/host"), ("status", "200")}))
    before = samples(metrics().raw).get(key, 0)
    for _ in range(3):
        check_eq(agent.request("GET", "/v1/host").status, 200)
    agent.request("DELETE", "/v1/host")
    after = samples(metrics().raw)
    check_eq(after.get(key, 0) - before, 3)
    check_eq(after.get(("kvmfleet_http_requests_total",
                        frozenset({("method", "DELETE"), ("route", "unmatched"), ("status", "405")}))), None,
             "a 405 on a known path should carry its route")
    count = after[("kvmfleet_http_request_duration_seconds_count", frozenset({("method", "GET"), ("route", "/v1/host")}))]
    inf = after[("kvmfleet_http_request_duration_seconds_bucket",
                 frozenset({("method", "GET"), ("route", "/v1/host"), ("le", "+Inf")}))]
    check(count >= 3 and inf == count, "histogram count %r, +Inf bucket %r" % (count, inf))
    # unknown paths are folded into one series, whatever the path
    agent.request("GET", "/x/%d" % time.time_ns())
    s = samples(metrics().raw)
    check(not [k for k in s if ("route", "/x") in k[1]], "arbitrary paths became series")


@test
def inventory_writes_are_measured():
    def writes():
        return samples(metrics().raw)[("kvmfleet_inventory_write_duration_seconds_count", frozenset())]
    before = writes()
    os.kill(agent.proc.pid, 1)  # SIGHUP: re-ingests the setup report and appends a "reload" event
    deadline = time.time() + 5
    while time.time() < deadline and writes() == before:
        time.sleep(0.05)
    check(writes() > before, "no inventory write observed after SIGHUP")


@test
def host_kvm_setup_and_parameters():
    check_eq(load.returncode, 0, load.stdout + load.stderr)
    s = samples(metrics().raw)
    check_eq(s[("kvmfleet_kvm_setup_report_present", frozenset())], 1)
    check_eq(s[("kvmfleet_kvm_setup_ok", frozenset())], 1)
    check_eq(s[("kvmfleet_kvm_cpus_consistent", frozenset())], 1)
    params = {dict(k[1])["parameter"]: dict(k[1])["value"] for k in s
              if k[0] == "kvmfleet_kvm_module_parameter_info" and dict(k[1])["module"] == "kvm"}
    with open("/sys/module/kvm/parameters/halt_poll_ns") as f:
        check_eq(params.get("halt_poll_ns"), f.read().strip())
    check(len(params) >= 5, params)


def vm_gauge(state):
    return samples(metrics().raw).get(("kvmfleet_vms", frozenset({("state", state)})))


def vmm_check():
    h = agent.request("GET", "/v1/health")
    return {c["name"]: c for c in h.json["checks"]}["vmm_liveness"]


@test
def vms_by_state_and_vmm_liveness():
    check_eq(vm_gauge("running"), 0)
    check_eq(vm_gauge("crashed"), 0)
    spec = {"name": "metrics-counter", "vcpus": 1, "memory": "2MiB",
            "boot": {"kernel": os.path.join(BUILD, "guests", "counter.elf")}}
    r = agent.request("POST", "/v1/vms", spec)
    check_eq(r.status, 201, r)
    r = agent.request("POST", "/v1/vms/metrics-counter/start")
    check_eq(r.status, 200, r)
    check_eq(vm_gauge("running"), 1)
    c = vmm_check()
    check_eq(c["status"], "ok")
    check("1 VMM(s) running" in c["detail"], c)
    # the VMM dies behind the agent's back: the VM ends up crashed, and health says no VMM is missing
    os.kill(r.json["vmm"]["pid"], 9)
    deadline = time.time() + 10
    while time.time() < deadline and vm_gauge("crashed") != 1:
        time.sleep(0.05)
    check_eq(vm_gauge("crashed"), 1)
    check_eq(vm_gauge("running"), 0)
    check_eq(vmm_check()["status"], "ok")
    agent.request("DELETE", "/v1/vms/metrics-counter")


def promtool_check(text):
    if not shutil.which("promtool"):
        skip("promtool (Debian package prometheus) is not installed")
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    check(p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(),
          "promtool: rc %d\n%s%s" % (p.returncode, p.stdout, p.stderr))


@test
def kvm_binary_stats_per_vm_and_vcpu():
    """Two running VMs: every KVM stat is one family with both VMs' samples; vCPU exits grow while
    the guest runs; time stats are in seconds; histograms are histograms; promtool accepts it."""
    names = ["metrics-stats-a", "metrics-stats-b"]
    uuids = {}
    for name, vcpus in zip(names, (1, 2)):
        spec = {"name": name, "vcpus": vcpus, "memory": "2MiB",
                "boot": {"kernel": os.path.join(BUILD, "guests", "counter.elf")}}
        r = agent.request("POST", "/v1/vms", spec)
        check_eq(r.status, 201, r)
        uuids[name] = r.json["uuid"]
        check_eq(agent.request("POST", "/v1/vms/%s/start" % name).status, 200)
    try:
        stats = agent.request("GET", "/v1/vms/%s/stats" % names[0]).json
        text = metrics().raw
        s = samples(text)

        def labels(name, vcpu=None):
            l = {("vm_uuid", uuids[name]), ("vm_name", name)}
            if vcpu is not None:
                l.add(("vcpu", str(vcpu)))
            return frozenset(l)

        exits = "kvmfleet_kvm_vcpu_exits_total"
        check(exits in text and "# TYPE %s counter" % exits in text, "no vCPU exits counter")
        check_eq(text.count("# TYPE %s " % exits), 1)
        for name, vcpus in zip(names, (1, 2)):
            for v in range(vcpus):
                check((exits, labels(name, v)) in s, "no exits sample for %s vcpu %d" % (name, v))
        check(("kvmfleet_kvm_vm_remote_tlb_flush_total", labels(names[0])) in s or
              any(k[0].startswith("kvmfleet_kvm_vm_") and k[1] == labels(names[0]) for k in s),
              "no VM-level stat for %s" % names[0])
        # the same value the VMM reports through /stats (a counter only grows between the two reads)
        raw_exits = stats["vcpus"][0]["stats"]["exits"]
        check(s[(exits, labels(names[0], 0))] >= raw_exits, (s[(exits, labels(names[0], 0))], raw_exits))
        # KVM's ns stats in seconds; the halt histograms as histograms with +Inf and _count
        for k in s:
            check(not k[0].endswith("_ns") and not k[0].endswith("_ns_total"), "unconverted unit in %s" % k[0])
        if "halt_wait_hist" in stats["vcpus"][0]["stats"]:
            check("# TYPE kvmfleet_kvm_vcpu_halt_wait_seconds histogram" in text, "halt_wait_hist not a histogram")
            check(("kvmfleet_kvm_vcpu_halt_wait_seconds_bucket", labels(names[0], 0) | {("le", "+Inf")}) in s)
            check(("kvmfleet_kvm_vcpu_halt_wait_seconds_sum", labels(names[0], 0)) in s, "no _sum from halt_wait_ns")
        check_eq(s[("kvmfleet_kvm_stats_scrape_failures", frozenset())], 0)
        promtool_check(text)
        # the guest keeps running: its exits counter moves
        deadline = time.time() + 10
        while time.time() < deadline:
            later = samples(metrics().raw).get((exits, labels(names[0], 0)), 0)
            if later > s[(exits, labels(names[0], 0))]:
                break
            time.sleep(0.1)
        check(later > s[(exits, labels(names[0], 0))], "exits did not grow")
        # a stopped VM leaves the stats
        check_eq(agent.request("POST", "/v1/vms/%s/stop" % names[1]).status, 200)
        s = samples(metrics().raw)
        check(not [k for k in s if ("vm_name", names[1]) in k[1]], "stopped VM still has KVM stats")
    finally:
        for name in names:
            agent.request("DELETE", "/v1/vms/%s?force=true" % name)


@test
def request_log_lines_carry_request_id():
    r = agent.request("GET", "/v1/host")
    rid = r.headers.get("X-Request-Id")
    check(rid, "no X-Request-Id")
    deadline = time.time() + 5
    while time.time() < deadline and rid not in agent.log():
        time.sleep(0.05)
    lines = [l for l in agent.log().splitlines() if rid in l]
    check(lines and "REQUEST_ID=" + rid in lines[0] and "/v1/host" in lines[0], "log lines: %r" % lines)


@test
def vm_and_memslot_log_lines_carry_journal_fields():
    """Every action on a VM is logged with VM_UUID and VM_NAME (and MEMSLOT for memslot changes),
    plus the REQUEST_ID of the request that caused it, so journalctl can select on any of them."""
    spec = {"name": "metrics-fields", "vcpus": 1, "memory": "2MiB",
            "boot": {"kernel": os.path.join(BUILD, "guests", "hello.elf"), "cmdline": "halt=1"}}
    r = agent.request("POST", "/v1/vms", spec)
    check_eq(r.status, 201, r)
    uuid = r.json["uuid"]
    try:
        r = agent.request("POST", "/v1/vms/metrics-fields/start")
        check_eq(r.status, 200, r)
        start_rid = r.headers.get("X-Request-Id")
        r = agent.request("POST", "/v1/vms/metrics-fields/memslots", {"gpa": "1GiB", "size": "2MiB"})
        check_eq(r.status, 201, r)
        slot = r.json["slot"]
        slot_rid = r.headers.get("X-Request-Id")

        def lines_with(*needles):
            return [l for l in agent.log().splitlines() if all(n in l for n in needles)]

        deadline = time.time() + 5
        while time.time() < deadline and not lines_with("MEMSLOT=%d" % slot):
            time.sleep(0.05)
        started = lines_with("VM_UUID=" + uuid, "VM_NAME=metrics-fields", "REQUEST_ID=" + start_rid)
        check(started, "no start line with VM_UUID, VM_NAME and REQUEST_ID:\n%s" % agent.log()[-3000:])
        created = lines_with("VM_UUID=" + uuid, "MEMSLOT=%d" % slot, "REQUEST_ID=" + slot_rid, "memslot_create")
        check(created, "no memslot line with VM_UUID, MEMSLOT and REQUEST_ID:\n%s" % agent.log()[-3000:])
        check(not lines_with("REQUEST_ID=" + start_rid, "MEMSLOT="), "context leaked into another request")
    finally:
        agent.request("DELETE", "/v1/vms/metrics-fields?force=true")


def with_report(report, fn):
    a = Agent()
    try:
        os.makedirs(a.run_dir)
        with open(os.path.join(a.run_dir, "kvm-setup.json"), "w") as f:
            json.dump(report, f)
        a.start()
        return fn(a)
    finally:
        a.cleanup()


def kvm_setup_check(a):
    h = a.request("GET", "/v1/health")
    return {c["name"]: c for c in h.json["checks"]}["kvm_setup"]


@test
def health_degraded_when_report_is_from_another_kernel():
    report = {"ok": True, "params_in_effect": True, "kernel_release": "5.10.0-old",
              "consistency": {"consistent": True, "differences": []}, "params": []}
    c = with_report(report, kvm_setup_check)
    check_eq(c["status"], "degraded")
    check("5.10.0-old" in c["detail"] and os.uname().release in c["detail"], c)


@test
def health_degraded_when_parameters_changed_since_the_report():
    with open("/sys/module/kvm/parameters/halt_poll_ns") as f:
        now = f.read().strip()
    other = str(int(now) + 1)
    report = {"ok": True, "params_in_effect": True, "kernel_release": os.uname().release,
              "consistency": {"consistent": True, "differences": []},
              "params": [{"module": "kvm", "name": "halt_poll_ns", "requested": other, "effective": other,
                          "in_effect": True, "applicable": True}]}
    c = with_report(report, kvm_setup_check)
    check_eq(c["status"], "degraded")
    check("kvm.halt_poll_ns is %s now, %s" % (now, other) in c["detail"], c)
    # and the same report with the real value is ok
    report["params"][0]["effective"] = report["params"][0]["requested"] = now
    check_eq(with_report(report, kvm_setup_check)["status"], "ok")


@test
def watchdog_pings_and_health_reports_it():
    d = agent.dir
    path = os.path.join(d, "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(5)
    a = Agent()
    env = dict(os.environ)
    os.environ.update({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    try:
        a.start()
        os.environ.clear()
        os.environ.update(env)
        got = []
        deadline = time.time() + 3
        while time.time() < deadline and sum("WATCHDOG=1" in m for m in got) < 3:
            got.append(s.recv(4096).decode())
        check(any("READY=1" in m for m in got), got)
        check(sum("WATCHDOG=1" in m for m in got) >= 3, "watchdog pings: %r" % got)
        h = a.request("GET", "/v1/health")
        w = {c["name"]: c for c in h.json["checks"]}["watchdog"]
        check_eq(w["status"], "ok")
        check("interval 0.4 s" in w["detail"], w)
        s2 = samples(a.request("GET", "/metrics").raw)
        check_eq(s2[("kvmfleet_agent_watchdog_enabled", frozenset())], 1)
    finally:
        os.environ.clear()
        os.environ.update(env)
        a.cleanup()
        s.close()
    h = agent.request("GET", "/v1/health")
    w = {c["name"]: c for c in h.json["checks"]}["watchdog"]
    check_eq(w["status"], "ok")
    check("not requested" in w["detail"], w)


try:
    run()
finally:
    agent.cleanup()
