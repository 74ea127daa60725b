#!/bin/bash
# Memslot create + delete of a 2 MiB user slot through the agent's REST API (POST
# /v1/vms/{id}/memslots, DELETE …/{slot}: validation, inventory rows, events, the VMM's control
# socket, its memfd backing) against the raw ioctls (KVM_SET_USER_MEMORY_REGION with size 2 MiB,
# then 0, on a VM of our own with an in-kernel irqchip, as the VMM's VM has), same run, ITERATIONS
# (default 200) alternating pairs; medians, p99 and the agent's overhead.
# Usage: bench/bench-memslot-rest.sh [ITERATIONS]   (BUILD=build by default)
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ITERATIONS=${1:-200}
[ -x "$BUILD/kvmfleetd" ] && [ -f "$BUILD/guests/hello.elf" ] || { echo "build first: make" >&2; exit 1; }
exec python3 - "$BUILD" "$ITERATIONS" <<'PY'
import ctypes, fcntl, mmap, os, statistics, struct, sys, time

build, n = sys.argv[1], int(sys.argv[2])
sys.path.insert(0, "tests/integration")
os.environ["BUILD"] = build
from agentlib import Agent  # noqa: E402

KVM_CREATE_VM = 0xAE01
KVM_CREATE_IRQCHIP = 0xAE60
KVM_SET_USER_MEMORY_REGION = 0x4020AE46
SIZE = 2 << 20

kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
boot = mmap.mmap(-1, 16 << 20)
slot_mem = mmap.mmap(-1, SIZE)
addr = lambda m: ctypes.addressof(ctypes.c_char.from_buffer(m))  # noqa: E731


def region(slot, gpa, size, host):
    fcntl.ioctl(vm, KVM_SET_USER_MEMORY_REGION, struct.pack("IIQQQ", slot, 0, gpa, size, host))


region(0, 0, 16 << 20, addr(boot))  # like the VMM: RAM first, then the irqchip
fcntl.ioctl(vm, KVM_CREATE_IRQCHIP, 0)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


agent = Agent(log_level="info").start()
try:
    r = agent.request("POST", "/v1/vms", {"name": "bench", "vcpus": 1, "memory": "16MiB",
                                          "boot": {"kernel": os.path.abspath(os.path.join(build, "guests", "hello.elf")),
                                                   "cmdline": "halt=1"}}, record=False)
    assert r.status == 201, r
    assert agent.request("POST", "/v1/vms/bench/start", record=False).status == 200
    from agentlib import UnixHTTPConnection  # noqa: E402
    import json as _json

    keep = UnixHTTPConnection(agent.socket, timeout=30)

    def kept(method, path, body=None):
        data = _json.dumps(body).encode() if body is not None else None
        keep.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        resp = keep.getresponse()
        text = resp.read()
        return resp.status, (_json.loads(text) if text else None)

    def agent_time():
        """The agent's own time in the two handlers (sum, count) from its request histogram."""
        text = agent.request("GET", "/metrics", record=False).raw
        tot, cnt = 0.0, 0
        for line in text.splitlines():
            if 'route="/v1/vms/{id}/memslots"' in line or 'route="/v1/vms/{id}/memslots/{slot}"' in line:
                if line.startswith("kvmfleet_http_request_duration_seconds_sum{") and ('"POST"' in line or '"DELETE"' in line):
                    tot += float(line.rsplit(" ", 1)[1])
                if line.startswith("kvmfleet_http_request_duration_seconds_count{") and ('"POST"' in line or '"DELETE"' in line):
                    cnt += int(float(line.rsplit(" ", 1)[1]))
        return tot, cnt

    raw, rest, rest_keep = [], [], []
    t_before = agent_time()
    for i in range(n):
        t0 = time.perf_counter()
        region(1, 1 << 30, SIZE, addr(slot_mem))
        region(1, 1 << 30, 0, addr(slot_mem))
        raw.append((time.perf_counter() - t0) * 1e6)
        t0 = time.perf_counter()
        r = agent.request("POST", "/v1/vms/bench/memslots", {"gpa": 1 << 30, "size": SIZE}, record=False)
        assert r.status == 201, r
        d = agent.request("DELETE", "/v1/vms/bench/memslots/%d" % r.json["slot"], record=False)
        assert d.status in (200, 204), d
        rest.append((time.perf_counter() - t0) * 1e6)
        t0 = time.perf_counter()
        st, body = kept("POST", "/v1/vms/bench/memslots", {"gpa": 1 << 30, "size": SIZE})
        assert st == 201, (st, body)
        st, _ = kept("DELETE", "/v1/vms/bench/memslots/%d" % body["slot"])
        assert st in (200, 204), st
        rest_keep.append((time.perf_counter() - t0) * 1e6)
    t_after = agent_time()
    # the raw KVM time of the VMM's two ioctls is inside the handlers' time: subtract the raw pair
    handler_pair = (t_after[0] - t_before[0]) / max(1, (t_after[1] - t_before[1]) / 2) * 1e6
    m_raw = statistics.median(raw)
    print("create+delete of a 2 MiB slot, %d alternating runs each, median / p99 us" % n)
    print("  raw KVM_SET_USER_MEMORY_REGION x2 (python ioctl)  %9.1f / %9.1f" % (m_raw, pct(raw, 0.99)))
    for label, xs in (("REST POST + DELETE, new connection each", rest),
                      ("REST POST + DELETE, one kept connection", rest_keep)):
        m = statistics.median(xs)
        print("  %-48s %9.1f / %9.1f   overhead %+8.1f us (%.1fx raw)" % (label, m, pct(xs, 0.99), m - m_raw, m / m_raw))
    print("  agent handlers (POST + DELETE), mean from its own histogram  %9.1f   overhead %+8.1f us" %
          (handler_pair, handler_pair - m_raw))
finally:
    agent.cleanup()
PY
