#!/bin/bash
# Memslot create + delete of a 2 MiB user slot through the agent's REST API (POST
# /v1/vms/{id}/memslots, DELETE …/{slot}: validation, inventory rows, events, the VMM's control
# socket, its memfd backing) against the raw ioctls (KVM_SET_USER_MEMORY_REGION with size 2 MiB,
# then 0, on a VM of our own with an in-kernel irqchip, as the VMM's VM has), same run, ITERATIONS
# (default 200) interleaved pairs; medians, p99 and the agent's overhead. The client of that part is
# C (build/bench/memslot-rest, one kept connection over the unix socket, and a new connection per
# pair). One agent at a time answers: first, where there are two CPUs or more, one with
# housekeeping_cpus set to one CPU (guests on the others) and one with none (no placement), then the
# default (auto: the agent and its VMM's control thread share one CPU); against the last, the same
# exchange with build/bench/bare-http (libmicrohttpd as kvmfleetd configures it) gives the HTTP floor.
# First, the floor under every exchange between processes: a unix-socket round trip with both ends
# on one CPU and on two (build/bench/ipc-roundtrip), which a REST change pays four times and the
# raw ioctls never. Then the dirty log of a 1 GiB slot through REST (GET …/dirty-log) against KVM_GET_DIRTY_LOG on the
# same VM (the VMM's VM fd, taken with pidfd_getfd): clean, and with every page dirtied by the guest
# (mailbox.elf) and read-and-cleared (clear=true vs KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG); last,
# the DELETE of that slot with every page populated, against the raw ioctl with and without munmap.
# Usage: bench/bench-memslot-rest.sh [ITERATIONS]   (BUILD=build by default; MEMSLOT_DIRTY_LOG=0
# skips the dirty-log part)
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ITERATIONS=${1:-200}
[ -x "$BUILD/kvmfleetd" ] && [ -x "$BUILD/bench/memslot-rest" ] && [ -x "$BUILD/bench/ipc-roundtrip" ] && [ -x "$BUILD/bench/bare-http" ] && [ -f "$BUILD/guests/hello.elf" ] && [ -f "$BUILD/guests/mailbox.elf" ] || { echo "build first: make" >&2; exit 1; }
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
addr = lambda m: ctypes.addressof(ctypes.c_char.from_buffer(m))  # noqa: E731




def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def dirty_log_bench(agent, rounds):
    import base64, json as _json, socket as _socket
    GiB, PAGES = 1 << 30, (1 << 30) // 4096
    MAILBOX = 0x80000
    KVM_GET_DIRTY_LOG = 0x4010AE42
    KVM_CLEAR_DIRTY_LOG = 0xC018AEC0
    r = agent.request("POST", "/v1/vms", {"name": "dirty", "vcpus": 1, "memory": "16MiB",
                                          "boot": {"kernel": os.path.abspath(os.path.join(build, "guests", "mailbox.elf"))}},
                      record=False)
    assert r.status == 201, r
    uuid = r.json["uuid"]
    assert agent.request("POST", "/v1/vms/dirty/start", record=False).status == 200
    r = agent.request("POST", "/v1/vms/dirty/memslots", {"gpa": GiB, "size": GiB, "flags": {"dirty_log": True}},
                      record=False)
    assert r.status == 201, r
    slot = r.json["slot"]
    ctl = os.path.join(agent.run_dir, "vms", uuid + ".sock")

    def vmm(method, params):
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        s.settimeout(60)
        s.connect(ctl)
        s.send(_json.dumps({"id": 1, "method": method, "params": params}).encode())
        reply = _json.loads(s.recv(1 << 20))
        s.close()
        return reply["result"]

    seq = [0]

    def dirty_every_page():
        vmm("memory.write", {"gpa": MAILBOX + 16, "data": base64.b64encode(struct.pack("<4Q", 1, GiB, PAGES, seq[0])).decode()})
        seq[0] += 1
        vmm("memory.write", {"gpa": MAILBOX, "data": base64.b64encode(struct.pack("<Q", seq[0])).decode()})
        end = time.time() + 120
        while True:
            done = struct.unpack("<Q", base64.b64decode(vmm("memory.read", {"gpa": MAILBOX + 8, "size": 8})["data"]))[0]
            if done == seq[0]:
                return
            assert time.time() < end, "the guest did not finish writing"
            time.sleep(0.01)

    # KVM refuses VM ioctls from a process other than the VM's creator, so the raw side is a VM of the
    # bench's own with the same slot (1 GiB at 1 GiB, dirty logging, manual protection as in the VMM)
    # and a 32-bit guest loop that writes one word per page of it, then halts.
    raw_vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
    KVM_ENABLE_CAP, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 = 0x4068AEA3, 168
    fcntl.ioctl(raw_vm, KVM_ENABLE_CAP, struct.pack("II4Q64x", KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 0, 1, 0, 0, 0))
    low = mmap.mmap(-1, 1 << 20)
    code = bytes.fromhex("b800000040" "8900" "0500100000" "3d00000080" "72f2" "f4")
    low[0x1000:0x1000 + len(code)] = code
    big = mmap.mmap(-1, GiB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0x4000))

    def raw_region(slot_, flags, gpa, size, host):
        fcntl.ioctl(raw_vm, KVM_SET_USER_MEMORY_REGION, struct.pack("IIQQQ", slot_, flags, gpa, size, host))

    raw_region(0, 0, 0, 1 << 20, addr(low))
    raw_region(1, 1, GiB, GiB, addr(big))  # KVM_MEM_LOG_DIRTY_PAGES
    vcpu = fcntl.ioctl(raw_vm, 0xAE41, 0)  # KVM_CREATE_VCPU
    run = mmap.mmap(vcpu, fcntl.ioctl(kvm, 0xAE04, 0))  # KVM_GET_VCPU_MMAP_SIZE
    sregs = bytearray(312)
    fcntl.ioctl(vcpu, 0x8138AE83, sregs)  # KVM_GET_SREGS
    def seg(i, sel, typ):
        struct.pack_into("QIHBBBBBBBBBx", sregs, i * 24, 0, 0xFFFFFFFF, sel, typ, 1, 0, 1, 1, 0, 1, 0, 0)
    seg(0, 8, 11)  # cs: 32-bit code, flat
    for i in (1, 2, 3, 4, 5):
        seg(i, 16, 3)  # ds es fs gs ss: flat data
    cr0 = struct.unpack_from("Q", sregs, 224)[0]
    struct.pack_into("Q", sregs, 224, cr0 | 1)  # protected mode, no paging
    fcntl.ioctl(vcpu, 0x4138AE84, bytes(sregs))  # KVM_SET_SREGS

    def raw_dirty_every_page():
        regs = [0] * 18
        regs[16], regs[17] = 0x1000, 2  # rip, rflags
        fcntl.ioctl(vcpu, 0x4090AE82, struct.pack("18Q", *regs))  # KVM_SET_REGS
        fcntl.ioctl(vcpu, 0xAE80, 0)  # KVM_RUN
        reason = struct.unpack_from("I", run, 8)[0]
        assert reason == 5, "raw guest exit reason %d, expected HLT" % reason

    slot_raw = 1
    bitmap = ctypes.create_string_buffer(PAGES // 8)

    def raw_get():
        fcntl.ioctl(raw_vm, KVM_GET_DIRTY_LOG, struct.pack("IIQ", slot_raw, 0, ctypes.addressof(bitmap)))

    def raw_count():  # outside the timed part: the raw side is the ioctls alone
        return int.from_bytes(bitmap.raw, "little").bit_count()

    def raw_clear():
        fcntl.ioctl(raw_vm, KVM_CLEAR_DIRTY_LOG, struct.pack("IIQQ", slot_raw, PAGES, 0, ctypes.addressof(bitmap)))

    def rest(clear):
        r = agent.request("GET", "/v1/vms/dirty/memslots/%d/dirty-log%s" % (slot, "?clear=true" if clear else ""),
                          record=False)
        assert r.status == 200, r
        return r.json["dirty_pages"]

    clean_raw, clean_rest, full_raw, full_rest = [], [], [], []
    for i in range(rounds * 10):
        t0 = time.perf_counter()
        raw_get()
        clean_raw.append((time.perf_counter() - t0) * 1e6)
        t0 = time.perf_counter()
        rest(False)
        clean_rest.append((time.perf_counter() - t0) * 1e6)
    for i in range(rounds):
        raw_dirty_every_page()
        t0 = time.perf_counter()
        raw_get()
        raw_clear()
        full_raw.append((time.perf_counter() - t0) * 1e6)
        got = raw_count()
        assert got == PAGES, "raw: %d dirty pages" % got
        dirty_every_page()
        t0 = time.perf_counter()
        got = rest(True)
        full_rest.append((time.perf_counter() - t0) * 1e6)
        assert got == PAGES, "REST: %d dirty pages" % got
    # Deleting the populated slot: both slots have every page written by their guest. The raw side is
    # the ioctl, and the ioctl plus releasing the memory (munmap), which is what the VMM did before
    # its answer until the release moved to its memslot-pool thread.
    raw_dirty_every_page()
    t0 = time.perf_counter()
    raw_region(slot_raw, 1, GiB, 0, addr(big))
    del_raw = (time.perf_counter() - t0) * 1e6
    big.close()
    del_raw_release = (time.perf_counter() - t0) * 1e6
    dirty_every_page()
    t0 = time.perf_counter()
    r = agent.request("DELETE", "/v1/vms/dirty/memslots/%d" % slot, record=False)
    del_rest = (time.perf_counter() - t0) * 1e6
    assert r.status == 200, r
    run.close()
    os.close(vcpu)
    os.close(raw_vm)
    print("delete of that 1 GiB slot with every page written (one run each), us: raw ioctl %.1f, raw ioctl + munmap %.1f, "
          "REST DELETE %.1f" % (del_raw, del_raw_release, del_rest))
    print("dirty log of a 1 GiB slot (262144 pages) through REST vs the raw ioctls on a VM of the bench's own with the same slot, median / p99 us")
    for label, r_, x in (("clean, get (%d runs)" % len(clean_raw), clean_raw, clean_rest),
                         ("every page dirty, get + clear (%d runs)" % len(full_raw), full_raw, full_rest)):
        mr, mx = statistics.median(r_), statistics.median(x)
        print("  %-40s raw %9.1f / %9.1f   REST %9.1f / %9.1f   %.2fx raw" % (label, mr, pct(r_, 0.99), mx, pct(x, 0.99), mx / mr))


def bench_vm(a):
    r = a.request("POST", "/v1/vms", {"name": "bench", "vcpus": 1, "memory": "16MiB",
                                      "boot": {"kernel": os.path.abspath(os.path.join(build, "guests", "hello.elf")),
                                               "cmdline": "halt=1"}}, record=False)
    assert r.status == 201, r
    assert a.request("POST", "/v1/vms/bench/start", record=False).status == 200


cpus = sorted(os.sched_getaffinity(0))
# The floor of every exchange between processes (four per REST change, none in the raw ioctls):
# one byte there and back over a unix socket, both ends on one CPU, and on two.
import subprocess  # noqa: E402
def ipc(a, b):
    out = subprocess.run([os.path.join(build, "bench", "ipc-roundtrip"), str(a), str(b)], check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1])
same = ipc(cpus[0], cpus[0])
line = "process to process round trip (unix socket), median / p99 us: same CPU %.1f / %.1f" % same
if len(cpus) > 1:
    across = ipc(cpus[0], cpus[1])
    line += ", across CPUs %.1f / %.1f (%.1fx)" % (across[0], across[1], across[0] / same[0])
print(line)


def agent_time(a):
    """The agent's own time in the two handlers (sum, count) from its request histogram."""
    text = a.request("GET", "/metrics", record=False).raw
    tot, cnt = 0.0, 0
    for line in text.splitlines():
        if 'route="/v1/vms/{id}/memslots"' in line or 'route="/v1/vms/{id}/memslots/{slot}"' in line:
            if line.startswith("kvmfleet_http_request_duration_seconds_sum{") and ('"POST"' in line or '"DELETE"' in line):
                tot += float(line.rsplit(" ", 1)[1])
            if line.startswith("kvmfleet_http_request_duration_seconds_count{") and ('"POST"' in line or '"DELETE"' in line):
                cnt += int(float(line.rsplit(" ", 1)[1]))
    return tot, cnt


def placement_of(a):
    p = a.request("GET", "/v1/host", record=False).json["cpu_placement"]
    return "no placement" if p is None else "agent and VMM control threads on CPU %s, guests on %s" % (
        p["housekeeping_cpus"], p["guest_cpus"])


def measure(a, label, bare_sock=None):
    """The create+delete pairs against agent a, which alone answers them, interleaved with the raw
    pairs. The client is C (bench/memslot-rest.c): Python's http.client and ioctl wrappers cost tens
    of microseconds per call on their own."""
    print("agent with %s (%s):" % (label, placement_of(a)), flush=True)
    t_before = agent_time(a)
    subprocess.run([os.path.join(build, "bench", "memslot-rest"), a.socket, "bench", str(n)] +
                   ([bare_sock] if bare_sock else []), check=True)
    t_after = agent_time(a)
    pairs = (t_after[1] - t_before[1]) / 2
    print("  agent handlers (POST + DELETE), mean from its own histogram over %d pairs  %9.1f us" %
          (pairs, (t_after[0] - t_before[0]) / max(1, pairs) * 1e6), flush=True)


# One agent at a time, each with a running VM whose vCPU is halted: the default configuration
# (housekeeping_cpus = auto: the agent and its VMM's control thread share one CPU, guests keep them
# all), then, where there are two CPUs or more, housekeeping_cpus set to one CPU (guests on the
# others) and none (every thread floats). Agents answering interleaved pairs side by side would
# each leave their after-reply work on the other's measurement.
for label, config in ([("housekeeping_cpus = %d" % cpus[0], "housekeeping_cpus = %d\n" % cpus[0]),
                       ("housekeeping_cpus = none", "housekeeping_cpus = none\n")] if len(cpus) > 1 else []):
    other = Agent(log_level="info", extra_config=config).start()
    try:
        bench_vm(other)
        measure(other, label)
    finally:
        other.cleanup()
if len(cpus) == 1:
    print("one CPU only (%d): the placement variants are skipped" % cpus[0])
agent = Agent(log_level="info").start()
try:
    bench_vm(agent)
    # The HTTP floor: libmicrohttpd configured like kvmfleetd on a unix socket, answering with a
    # body the size of a memslot object.
    bare_sock = os.path.join(agent.dir, "bare.sock")
    body_file = os.path.join(agent.dir, "bare-body.json")
    with open(body_file, "w") as f:
        f.write('{"slot":1,"as_id":0,"gpa":1073741824,"size":2097152,"flags":{"dirty_log":false,"readonly":false},'
                '"backing":"memfd","guest_memfd_offset":0,"role":"user","state":"active"}\n')
    bare = subprocess.Popen([os.path.join(build, "bench", "bare-http"), bare_sock, body_file])
    try:
        for _ in range(200):
            if os.path.exists(bare_sock):
                break
            time.sleep(0.01)
        measure(agent, "the default configuration (housekeeping_cpus = auto)", bare_sock)
    finally:
        bare.terminate()
        bare.wait()
    if os.environ.get("MEMSLOT_DIRTY_LOG", "1") == "0":
        sys.exit(0)
    dirty_log_bench(agent, max(3, n // 40))
finally:
    agent.cleanup()
PY
