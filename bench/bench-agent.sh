#!/bin/bash
# kvmfleetd: REST throughput, REST start latency and VM density, each next to its baseline in the
# same run.
#  1. GET /v1/vms with 100 VMs defined, wrk -c64 over TCP (token), against build/bench/bare-http
#     answering the same body with libmicrohttpd configured as the agent configures it.
#  2. REST create + start -> first serial byte of the hello guest, medians of RUNS, against
#     exec of kvmfleet-vmm -> first serial byte of the same guest.
#  3. Density: DENSITY (default 1000) idle hello guests (2 MiB, halted) created and started through
#     REST one after another: creates+starts per second, and memory per VM.
# Usage: bench/bench-agent.sh [RUNS] [DENSITY]
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RUNS=${1:-15}
DENSITY=${2:-1000}
for f in kvmfleetd kvmfleet-vmm bench/bare-http guests/hello.elf; do
        [ -e "$BUILD/$f" ] || { echo "build first: make ($BUILD/$f is missing)" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "wrk is not installed (make deps)" >&2; exit 1; }
exec python3 - "$BUILD" "$RUNS" "$DENSITY" <<'PY'
import json, os, re, signal, statistics, subprocess, sys, time

build, runs, density = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sys.path.insert(0, "tests/integration")
os.environ["BUILD"] = build
from agentlib import Agent, free_port  # noqa: E402

hello = os.path.abspath(os.path.join(build, "guests", "hello.elf"))


def wrk(url, token=None):
    cmd = ["wrk", "-t2", "-c64", "-d5s", "--latency", url]
    if token:
        cmd[1:1] = ["-H", "Authorization: Bearer " + token]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        sys.exit("wrk saw %s error responses:\n%s" % (errors.group(1), out))
    return rps, p99


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


# 1. throughput
agent = Agent(tcp=True, log_level="info", extra_config="vm_max_vcpus = 1\n").start()
try:
    for i in range(100):
        r = agent.request("POST", "/v1/vms", {"name": "vm%03d" % i, "vcpus": 1, "memory": "2MiB",
                                               "boot": {"kernel": hello}}, record=False)
        assert r.status == 201, r
    token = agent.token()
    body = agent.request("GET", "/v1/vms", record=False).raw
    body_file = os.path.join(agent.dir, "body.json")
    with open(body_file, "w") as f:
        f.write(body)
    port = free_port()
    bare = subprocess.Popen([os.path.join(build, "bench", "bare-http"), str(port), body_file])
    time.sleep(0.3)
    try:
        bare_rps, bare_p99 = wrk("http://127.0.0.1:%d/v1/vms" % port)
        agent_rps, agent_p99 = wrk("http://127.0.0.1:%d/v1/vms" % agent.port, token)
        bare_rps2, bare_p992 = wrk("http://127.0.0.1:%d/v1/vms" % port)
        agent_rps2, agent_p992 = wrk("http://127.0.0.1:%d/v1/vms" % agent.port, token)
    finally:
        bare.send_signal(signal.SIGTERM)
        bare.wait()
    bare_rps, agent_rps = (bare_rps + bare_rps2) / 2, (agent_rps + agent_rps2) / 2
    bare_p99, agent_p99 = max(bare_p99, bare_p992), max(agent_p99, agent_p992)
    print("GET /v1/vms (100 VMs, %d-byte body), wrk -t2 -c64 -d5s, two rounds each, alternating:" % len(body))
    print("  kvmfleetd:  %8.0f req/s  p99 %6.2f ms" % (agent_rps, agent_p99))
    print("  bare MHD:   %8.0f req/s  p99 %6.2f ms" % (bare_rps, bare_p99))
    print("  ratio:      %.2f of the bare server" % (agent_rps / bare_rps))
finally:
    agent.cleanup()

# 2. REST create + start -> first serial byte, against exec -> first byte
agent = Agent(log_level="info").start()
try:
    rest, direct = [], []
    for i in range(runs):
        name = "fb%d" % i
        t0 = time.monotonic()
        r = agent.request("POST", "/v1/vms", {"name": name, "vcpus": 1, "memory": "2MiB", "boot": {"kernel": hello}},
                          record=False)
        uuid = r.json["uuid"]
        agent.request("POST", "/v1/vms/%s/start" % uuid, record=False)
        log = os.path.join(agent.state, "vms", uuid, "console.log")
        while os.path.getsize(log) == 0:
            pass
        rest.append((time.monotonic() - t0) * 1000)
        agent.request("DELETE", "/v1/vms/%s?force=true" % uuid, record=False)

        spec = os.path.join(agent.dir, "direct.json")
        with open(spec, "w") as f:
            json.dump({"name": "direct", "vcpus": 1, "memory": "2MiB", "boot": {"kernel": hello}}, f)
        t0 = time.monotonic()
        p = subprocess.Popen([os.path.join(build, "kvmfleet-vmm"), "--spec", spec, "--control",
                              os.path.join(agent.dir, "direct.sock")], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        p.stdout.read(1)
        direct.append((time.monotonic() - t0) * 1000)
        p.wait()
    print("create + start -> first serial byte of hello (2 MiB), medians of %d:" % runs)
    print("  REST (POST /v1/vms, POST start):  %6.2f ms" % statistics.median(rest))
    print("  exec kvmfleet-vmm directly:       %6.2f ms" % statistics.median(direct))
    print("  agent overhead ratio:             %.2fx" % (statistics.median(rest) / statistics.median(direct)))
finally:
    agent.cleanup()

# 3. density
agent = Agent(log_level="info", extra_config="vm_max_vcpus = 1\n").start()
try:
    t0 = time.monotonic()
    for i in range(density):
        name = "idle%04d" % i
        r = agent.request("POST", "/v1/vms", {"name": name, "vcpus": 1, "memory": "2MiB",
                                               "boot": {"kernel": hello, "cmdline": "halt=1"}}, record=False)
        assert r.status == 201, r
        r = agent.request("POST", "/v1/vms/%s/start" % name, record=False)
        if r.status != 200:
            print("  start %d failed: %r" % (i, r))
            break
    elapsed = time.monotonic() - t0
    listing = agent.request("GET", "/v1/vms?state=running&limit=1", record=False).json
    running = listing["total"]
    pids = agent.vmm_pids()
    total_rss = sum(rss_kib(p) for p in pids)
    print("density: %d idle hello guests (2 MiB, halted), created and started one after another through REST:" % density)
    print("  running:          %d VMs (%d VMM processes)" % (running, len(pids)))
    print("  create+start:     %.1f VMs/s (%.1f s in all)" % (running / elapsed, elapsed))
    print("  VMM RSS:          %.2f MiB per VM (guest pages included), agent RSS %.1f MiB"
          % (total_rss / 1024 / max(len(pids), 1), rss_kib(agent.proc.pid) / 1024))
finally:
    agent.cleanup()
PY
