"""kvmfleetd end to end: the real agent on a temp dir, real HTTP over its unix socket and TCP,
the real SQLite inventory, kvmfleetctl's output and exit codes, and every JSON response checked
against api/openapi.yaml."""
import json
import os
import signal
import sqlite3
import subprocess

from agentlib import Agent, check_openapi_records
from kvmtest import BUILD, ROOT, check, check_eq, run, test

agent = Agent(tcp=True, extra_config="max_body = 4KiB\n").start()


@test
def host_reports_kvm_and_capabilities():
    r = agent.request("GET", "/v1/host", template="/v1/host")
    check_eq(r.status, 200)
    kvm = r.json["kvm"]
    check(kvm["available"], "kvm not available: %r" % kvm)
    check_eq(kvm["api_version"], 12)
    caps = kvm["capabilities"]
    check(len(caps) >= 40, "only %d capabilities" % len(caps))
    for name in ("NR_MEMSLOTS", "NESTED_STATE", "SPLIT_IRQCHIP", "X2APIC_API", "GUEST_MEMFD", "VM_TYPES",
                 "MEMORY_ATTRIBUTES", "BINARY_STATS_FD", "MAX_VCPUS", "DIRTY_LOG_RING", "MANUAL_DIRTY_LOG_PROTECT2"):
        check(name in caps, "capability %s missing" % name)
    # the values are KVM's own: compare a few with what this machine is known to have
    check(caps["NR_MEMSLOTS"] > 0)
    check(kvm["type"] in ("builtin", "module"))
    check("parameters" in kvm["modules"]["kvm"])
    check_eq(r.json["kernel_release"], os.uname().release)
    check(r.headers.get("X-Request-Id"), "no X-Request-Id header")


@test
def health_reports_dev_kvm_usable():
    r = agent.request("GET", "/v1/health", template="/v1/health")
    check(r.status in (200, 503))
    checks = {c["name"]: c for c in r.json["checks"]}
    check_eq(checks["kvm_device"]["status"], "ok")
    check("VM created" in checks["kvm_device"]["detail"])
    check_eq(checks["inventory"]["status"], "ok")
    check_eq(checks["state_dir_space"]["status"], "ok")
    # no kvmfleet-load report in this temp dir: degraded, and it says why
    check_eq(checks["kvm_setup"]["status"], "degraded")
    check_eq(r.json["status"], "degraded")
    check_eq(r.status, 200)


@test
def setup_report_is_ingested_on_sighup():
    report = {"version": "test", "ok": False, "params_in_effect": True, "generated_at": "2026-11-21T00:00:00Z",
              "consistency": {"consistent": False, "checked_cpus": [0, 1],
                              "differences": [{"cpu": 1, "leaf": "0x80000001", "register": "ecx", "bit": 2,
                                               "feature": "svm", "target_value": 1, "value": 0}]}}
    path = os.path.join(agent.run_dir, "kvm-setup.json")
    with open(path, "w") as f:
        json.dump(report, f)
    try:
        agent.proc.send_signal(signal.SIGHUP)
        for _ in range(100):
            r = agent.request("GET", "/v1/host/kvm", template="/v1/host/kvm")
            if r.json["setup"]:
                break
            __import__("time").sleep(0.05)
        check(r.json["setup"], "report not ingested after SIGHUP")
        check_eq(r.json["setup"]["report"]["consistency"]["differences"][0]["feature"], "svm")
        h = agent.request("GET", "/v1/health", template="/v1/health")
        check_eq(h.status, 503)
        check_eq(h.json["status"], "failing")
        p = agent.ctl("health")
        check_eq(p.returncode, 1, "health exit code when failing")
        check("failing" in p.stdout)
        p = agent.ctl("host", "kvm", check=0)
        check("svm" in p.stdout, p.stdout)
    finally:
        # a consistent report brings health back
        report.update(ok=True, consistency={"consistent": True, "checked_cpus": [0, 1], "differences": []})
        with open(path, "w") as f:
            json.dump(report, f)
        agent.proc.send_signal(signal.SIGHUP)
    for _ in range(100):
        h = agent.request("GET", "/v1/health")
        if h.status == 200:
            break
        __import__("time").sleep(0.05)
    check_eq(h.json["status"], "ok")
    check_eq(agent.ctl("health").returncode, 0)


@test
def real_kvmfleet_load_report_reaches_the_api():
    """kvmfleet-load on this machine writes the report; the agent ingests it at start."""
    a = Agent()
    try:
        os.makedirs(a.run_dir)
        p = subprocess.run([os.path.join(BUILD, "kvmfleet-load"), "-c", a.config, "--report",
                            os.path.join(a.run_dir, "kvm-setup.json")], capture_output=True, text=True, timeout=60)
        check_eq(p.returncode, 0, "kvmfleet-load: " + p.stdout + p.stderr)
        a.start()
        r = a.request("GET", "/v1/host/kvm", template="/v1/host/kvm")
        rep = r.json["setup"]["report"]
        check_eq(rep["consistency"]["consistent"], True)
        check_eq(len(rep["consistency"]["checked_cpus"]), os.cpu_count())
        check_eq(rep["target_cpu"], 0)
        h = a.request("GET", "/v1/health", template="/v1/health")
        check_eq({c["name"]: c["status"] for c in h.json["checks"]}["kvm_setup"], "ok")
        check_eq(h.json["status"], "ok")
        out = a.ctl("host", "kvm", check=0).stdout
        check("CPUs consistent: true" in out, out)
    finally:
        a.cleanup()


@test
def unknown_path_is_404():
    r = agent.request("GET", "/v1/nope", template=("/v1/host", "404"))
    check_eq(r.status, 404)
    check_eq(r.error_code(), "not_found")
    check("/v1/nope" in r.json["error"]["message"])


@test
def wrong_method_is_405_with_allow():
    r = agent.request("DELETE", "/v1/health", template=("/v1/health", "405"))
    check_eq(r.status, 405)
    check_eq(r.error_code(), "method_not_allowed")
    check_eq(r.headers.get("Allow"), "GET")
    check_eq(r.json["error"]["details"]["allow"], "GET")


@test
def oversized_body_is_413():
    # Refused from the headers alone, before the body is read: send only the headers.
    import socket as so
    s = so.socket(so.AF_UNIX, so.SOCK_STREAM)
    s.settimeout(10)
    s.connect(agent.socket)
    s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 8192\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.1 413"), head[:100])
    r = json.loads(body)
    check_eq(r["error"]["code"], "payload_too_large")
    check_eq(r["error"]["details"]["limit"], 4096)
    from agentlib import RECORDS
    RECORDS.append({"name": "413", "method": "POST", "path": "/v1/events", "status": 413, "body": r})
    # chunked, without a length: counted while reading
    p = subprocess.run(["curl", "-s", "--unix-socket", agent.socket, "-X", "GET", "-H", "Transfer-Encoding: chunked",
                        "-H", "Content-Type: application/json", "--data-binary", "@-", "http://x/v1/host"],
                       input=b"y" * 10000, capture_output=True, timeout=30)
    body = json.loads(p.stdout)
    check_eq(body["error"]["code"], "payload_too_large")


@test
def wrong_content_type_is_415():
    r = agent.request("GET", "/v1/events", body="hello", headers={"Content-Type": "text/plain"},
                      template=("/v1/events", "415"))
    check_eq(r.status, 415)
    check_eq(r.error_code(), "unsupported_media_type")
    check_eq(r.json["error"]["details"]["content_type"], "text/plain")


@test
def bad_query_is_400():
    for q in ("limit=0", "limit=5000", "after=-1", "after=abc"):
        r = agent.request("GET", "/v1/events?" + q, template=("/v1/events", "400 " + q))
        check_eq(r.status, 400, q)
        check_eq(r.error_code(), "invalid_argument")


@test
def tcp_requires_token():
    r = agent.request("GET", "/v1/health", tcp=True, template=("/v1/health", "401 none"))
    check_eq(r.status, 401)
    check_eq(r.error_code(), "unauthorized")
    check(r.headers.get("WWW-Authenticate", "").startswith("Bearer"))
    r = agent.request("GET", "/v1/health", tcp=True, headers={"Authorization": "Bearer wrong"},
                      template=("/v1/health", "401 wrong"))
    check_eq(r.status, 401)
    r = agent.request("GET", "/v1/events", tcp=True, headers={"Authorization": "Bearer " + agent.token()},
                      template=("/v1/events", "tcp"))
    check_eq(r.status, 200)
    mode = os.stat(agent.token_file).st_mode & 0o777
    check_eq(oct(mode), oct(0o600), "token file mode")
    check(len(agent.token()) >= 32)


@test
def unix_socket_mode_is_0660():
    check_eq(oct(os.stat(agent.socket).st_mode & 0o777), oct(0o660))


@test
def cli_over_tcp_with_and_without_token():
    p = agent.ctl("events", tcp=True)
    check_eq(p.returncode, 1)
    check("unauthorized" in p.stderr and "401" in p.stderr, p.stderr)
    p = agent.ctl("--json", "events", tcp=True, token_file=agent.token_file, check=0)
    check(json.loads(p.stdout)["events"][0]["action"] == "start")


@test
def cli_tables_and_json():
    p = agent.ctl("host", "info", check=0)
    check("Hostname:" in p.stdout and "NR_MEMSLOTS" in p.stdout, p.stdout)
    p = agent.ctl("--json", "host", "info", check=0)
    check_eq(json.loads(p.stdout)["kvm"]["api_version"], 12)
    p = agent.ctl("health")
    check(p.returncode in (0, 1))
    check("kvm_device" in p.stdout and "CHECK" in p.stdout, p.stdout)
    p = agent.ctl("events", "--limit", "1", check=0)
    lines = p.stdout.strip().splitlines()
    check_eq(len(lines), 2, "header + one event: %r" % lines)
    check(lines[0].split()[:3] == ["ID", "TIME", "ACTOR"], lines[0])


@test
def cli_usage_and_connection_errors():
    p = agent.ctl("frobnicate")
    check_eq(p.returncode, 2)
    check("unknown command" in p.stderr)
    p = agent.ctl("host", "bogus")
    check_eq(p.returncode, 2)
    p = agent.ctl("events", "--limit", "0")
    check_eq(p.returncode, 2)
    p = subprocess.run([os.path.join(BUILD, "kvmfleetctl"), "--socket", "/nonexistent/api.sock", "health"],
                       capture_output=True, text=True)
    check_eq(p.returncode, 3)
    check("/nonexistent/api.sock" in p.stderr and "cannot reach kvmfleetd" in p.stderr, p.stderr)


@test
def events_record_agent_start_stop_with_actor():
    a = Agent().start()
    try:
        a.stop()
        check_eq(a.proc.returncode, 0, "clean exit on SIGTERM")
        check(not os.path.exists(a.socket), "socket left behind after stop")
        a.start()
        r = a.request("GET", "/v1/events?limit=10", template="/v1/events")
        acts = [(e["actor"], e["object"], e["action"]) for e in r.json["events"]]
        check_eq(acts[:3], [("kvmfleetd", "agent", "start"), ("kvmfleetd", "agent", "stop"),
                            ("kvmfleetd", "agent", "start")])
        r2 = a.request("GET", "/v1/events?after=%d&limit=1" % r.json["events"][0]["id"], template="/v1/events")
        check_eq(r2.json["events"][0]["id"], r.json["events"][1]["id"])
        # the inventory is a real SQLite file with the rows
        db = sqlite3.connect(os.path.join(a.state, "inventory.db"))
        n = db.execute("SELECT count(*) FROM events WHERE object='agent'").fetchone()[0]
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        db.close()
        check_eq(n, 3)
        check_eq(mode, "wal")
    finally:
        a.cleanup()


@test
def bad_config_fails_naming_the_line():
    a = Agent(extra_config="frobs = 3\n")
    try:
        a.start(wait=False)
        rc = a.proc.wait(10)
        check_eq(rc, 1)
        check("kvmfleetd.conf:8: unknown key \"frobs\"" in a.log(), a.log())
    finally:
        a.cleanup()


@test
def newer_inventory_is_refused():
    a = Agent()
    try:
        os.makedirs(a.state)
        db = sqlite3.connect(os.path.join(a.state, "inventory.db"))
        db.execute("PRAGMA user_version = 999")
        db.close()
        a.start(wait=False)
        check_eq(a.proc.wait(10), 1)
        check("schema version 999, newer than this kvmfleetd" in a.log(), a.log())
    finally:
        a.cleanup()


@test
def openapi_spec_lints():
    p = subprocess.run(["node", "openapi-check.mjs", "lint", os.path.join(ROOT, "api", "openapi.yaml")],
                       capture_output=True, text=True, cwd=os.path.join(ROOT, "tests", "node"), timeout=120)
    check(p.returncode == 0, p.stdout + p.stderr)


@test
def responses_match_openapi():
    p = check_openapi_records()
    failures = [l for l in p.stdout.splitlines() if l.startswith("not ok") or l.startswith("#")]
    check(p.returncode == 0 and not failures, "\n".join(failures) + p.stderr)
    check(p.stdout.count("ok - ") >= 15, "too few responses checked:\n" + p.stdout)


try:
    run()
finally:
    agent.cleanup()
