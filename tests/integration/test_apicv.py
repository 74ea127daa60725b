"""APIC virtualization end to end: the real agent and real VMMs on this machine's /dev/kvm.
Inferred inhibits follow the host (vendor module, parameter, CPU vendor); the live bitmap comes
from the tracepoint kvm:kvm_apicv_inhibit_changed through the agent's tracefs instance; the LAPIC
decode is compared with what tests/guests/lapic.c wrote. Every JSON response is checked against
api/openapi.yaml at the end."""
import json
import os
import time

from agentlib import Agent, check_openapi_records
from kvmtest import BUILD, check, check_eq, run, skip, test

GUESTS = os.path.join(BUILD, "guests")
agent = Agent(extra_config="stop_timeout = 5\n").start()
_seq = [0]


def name(prefix):
    _seq[0] += 1
    return "%s-%d" % (prefix, _seq[0])


def create(vm, guest="lapic.elf", start=True, **kw):
    s = {"name": vm, "vcpus": 1, "memory": "2MiB", "boot": {"kernel": os.path.join(GUESTS, guest)}}
    s.update(kw)
    r = agent.request("POST", "/v1/vms", s, template="/v1/vms")
    check_eq(r.status, 201, "create %s: %r" % (vm, r))
    if start:
        r = agent.request("POST", "/v1/vms/%s/start" % vm, template=("/v1/vms/{id}/start", "start"))
        check_eq(r.status, 200, "start %s: %r" % (vm, r))
    return r.json


def apicv(vm, a=None):
    r = (a or agent).request("GET", "/v1/vms/%s/apicv" % vm, template="/v1/vms/{id}/apicv")
    check_eq(r.status, 200, repr(r))
    return r.json


def inferred(view):
    return [i["reason"] for i in view["inferred"]]


def wait_live(vm, timeout=10, a=None):
    """The live view once the VMM's first inhibit event arrived."""
    end = time.time() + timeout
    while True:
        v = apicv(vm, a)
        live = v["live"]
        if not live["available"]:
            skip("live APICv tracking is unavailable here: %s" % live.get("reason"))
        if live.get("inhibits") is not None or time.time() > end:
            return v
        time.sleep(0.1)


def wait_console(vm, text, timeout=10):
    end = time.time() + timeout
    data = ""
    while time.time() < end:
        r = agent.request("GET", "/v1/vms/%s/console" % vm)
        data = r.json.get("data", "") if r.json else ""
        if text in data:
            return data
        time.sleep(0.05)
    raise AssertionError("%r did not appear on %s's console: %r" % (text, vm, data))


def host_is_amd():
    """AVIC is AMD's: kvm_amd drives KVM, or no vendor module does and the CPU is AMD."""
    if os.path.exists("/sys/module/kvm_amd"):
        return True
    if os.path.exists("/sys/module/kvm_intel"):
        return False
    with open("/proc/cpuinfo") as f:
        return "AuthenticAMD" in f.read() or False


def events_for(uuid):
    r = agent.request("GET", "/v1/events?limit=1000&object=vm/" + uuid, template="/v1/events")
    check_eq(r.status, 200, repr(r))
    return r.json["events"]


@test
def kernel_irqchip_reports_live_inhibit_bitmap():
    vm = name("live")
    uuid = create(vm)["uuid"]
    v = wait_live(vm)
    live = v["live"]
    check_eq(v["configuration"]["irqchip"], "kernel")
    check(live["inhibits"] is not None, "no live event for the VMM: %r" % live)
    check_eq(live["view"], "vm-wide")
    check(live["events"] >= 1, repr(live))
    check(live["last_change"], repr(live))
    # Every bit of the bitmap has a name, and the names are exactly the bits that are set.
    check_eq(len(live["names"]), bin(live["inhibits"]).count("1"), repr(live))
    first = live["history"][0]
    check_eq(first["change"], "set", repr(first))
    if not v["host"]["effective"]:
        # Without APIC virtualization KVM sets DISABLED (bit 0) when the VM is created.
        check("DISABLED" in live["names"], repr(live))
        check_eq(live["inhibits"] & 1, 1, repr(live))
        check_eq(first["reason"], 0, repr(first))
        check_eq(first["reason_name"], "DISABLED", repr(first))
        check("DISABLED" in inferred(v), repr(v["inferred"]))
    check("ABSENT" not in inferred(v), repr(v["inferred"]))
    # Only this VMM's events: a second VM has its own bitmap and history.
    vm2 = name("live")
    create(vm2)
    v2 = wait_live(vm2)
    check(v2["live"]["inhibits"] is not None, repr(v2["live"]))
    check_eq(apicv(vm)["live"]["events"], live["events"])
    agent.request("POST", "/v1/vms/%s/stop" % vm2)
    check(uuid)


@test
def irqchip_none_infers_absent():
    vm = name("none")
    create(vm, guest="counter.elf", irqchip="none")
    v = apicv(vm)
    check_eq(v["configuration"]["irqchip"], "none")
    absent = [i for i in v["inferred"] if i["reason"] == "ABSENT"]
    check_eq(len(absent), 1, repr(v["inferred"]))
    check("in-kernel LAPIC" in absent[0]["why"], repr(absent))
    check_eq(absent[0]["bit"], 2)
    check("PIT_REINJ" not in inferred(v), repr(v["inferred"]))  # no in-kernel PIT
    vs = name("split")
    create(vs, guest="counter.elf", irqchip="split")
    check("ABSENT" not in inferred(apicv(vs)), "split irqchip has an in-kernel LAPIC")
    for x in (vm, vs):
        agent.request("POST", "/v1/vms/%s/stop" % x)


@test
def pit_reinject_inference_follows_vendor_and_toggles_at_run_time():
    vm = name("pit")
    uuid = create(vm, pit={"reinject": True})["uuid"]
    amd = host_is_amd()
    v = apicv(vm)
    check_eq(v["configuration"]["pit"]["reinject"], True)
    check_eq("PIT_REINJ" in inferred(v), amd, "vendor amd=%s: %r" % (amd, v["inferred"]))

    r = agent.request("PATCH", "/v1/vms/%s/apicv" % vm, {"pit_reinject": False},
                      template=("/v1/vms/{id}/apicv", "patch"))
    check_eq(r.status, 200, repr(r))
    check_eq(r.json["configuration"]["pit"]["reinject"], False)
    check_eq(r.json["configuration"]["source"], "vmm")
    check("PIT_REINJ" not in inferred(r.json), repr(r.json["inferred"]))
    # Recorded in the inventory (the stored spec) and the event log, with the actor.
    spec = agent.request("GET", "/v1/vms/" + vm).json["spec"]
    check_eq(spec["pit"]["reinject"], False)
    evs = [e for e in events_for(uuid) if e["action"] == "apicv.pit_reinject"]
    check_eq(len(evs), 1, repr(evs))
    check_eq(evs[0]["detail"]["pit_reinject"], False, repr(evs))
    check_eq(evs[0]["detail"]["previous"], True, repr(evs))
    check(evs[0]["actor"], repr(evs))

    r = agent.request("PATCH", "/v1/vms/%s/apicv" % vm, {"pit_reinject": True})
    check_eq(r.status, 200, repr(r))
    check_eq("PIT_REINJ" in inferred(r.json), amd)
    check_eq(len([e for e in events_for(uuid) if e["action"] == "apicv.pit_reinject"]), 2)
    # A restart applies what the inventory holds.
    agent.request("PATCH", "/v1/vms/%s/apicv" % vm, {"pit_reinject": False})
    r = agent.request("POST", "/v1/vms/%s/restart" % vm)
    check_eq(r.status, 200, repr(r))
    check_eq(apicv(vm)["configuration"]["pit"]["reinject"], False)
    agent.request("POST", "/v1/vms/%s/stop" % vm)


@test
def lapic_decode_shows_what_the_guest_programmed():
    vm = name("lapic")
    create(vm, vcpus=2, boot={"kernel": os.path.join(GUESTS, "lapic.elf"),
                              "cmdline": "tpr=0x30 spurious=0xef timer=0x41 count=0x200000"})
    wait_console(vm, "lapic ready")
    r = agent.request("GET", "/v1/vms/%s/vcpus/0/lapic" % vm, template="/v1/vms/{id}/vcpus/{n}/lapic")
    check_eq(r.status, 200, repr(r))
    l = r.json
    check_eq(l["vcpu"], 0)
    check_eq(l["view"], "per-vcpu")
    check_eq(l["mode"], "xapic")
    check_eq(l["apic_base"]["address"], 0xfee00000)
    check_eq(l["apic_base"]["bsp"], True)
    check_eq(l["id"], 0)
    check_eq(l["tpr"], 0x30)
    check_eq(l["svr"]["software_enabled"], True)
    check_eq(l["svr"]["spurious_vector"], 0xef)
    check_eq(l["lvt"]["timer"]["vector"], 0x41)
    check_eq(l["lvt"]["timer"]["masked"], True)
    check_eq(l["lvt"]["timer"]["timer_mode"], "periodic")
    check_eq(l["timer"]["mode"], "periodic")
    check_eq(l["timer"]["initial_count"], 0x200000)
    check(0 <= l["timer"]["current_count"] <= 0x200000, repr(l["timer"]))
    check_eq(l["timer"]["divide"], 16)
    check_eq(l["isr"], [])
    check_eq(l["irr"], [])
    # The VMM's own LINT setup: LINT0 ExtINT, LINT1 NMI.
    check_eq(l["lvt"]["lint0"]["delivery_mode"], "extint")
    check_eq(l["lvt"]["lint1"]["delivery_mode"], "nmi")
    # vCPU 1 never touched its LAPIC: software-disabled, ID 1, not the BSP.
    l1 = agent.request("GET", "/v1/vms/%s/vcpus/1/lapic" % vm).json
    check_eq(l1["id"], 1)
    check_eq(l1["svr"]["software_enabled"], False)
    check_eq(l1["apic_base"]["bsp"], False)
    check_eq(l1["tpr"], 0)
    # The VM keeps running (the read happened between two KVM_RUNs of the vCPU, no pause).
    check_eq(agent.request("GET", "/v1/vms/" + vm).json["state"], "running")
    p = agent.ctl("vm", "lapic", vm, "0", check=0)
    check("tpr" in p.stdout and "0x30" in p.stdout, p.stdout)
    agent.request("POST", "/v1/vms/%s/stop" % vm)


@test
def bad_input_gets_documented_statuses_and_changes_nothing():
    vm = name("bad")
    uuid = create(vm)["uuid"]
    before_spec = agent.request("GET", "/v1/vms/" + vm).json["spec"]
    before_events = len(events_for(uuid))

    r = agent.request("GET", "/v1/vms/%s/vcpus/7/lapic" % vm, template=("/v1/vms/{id}/vcpus/{n}/lapic", "404"))
    check_eq(r.status, 404, repr(r))
    check_eq(r.error_code(), "not_found")
    check_eq(r.json["error"]["details"]["vcpu"], 7)
    check("vCPU 7" in r.json["error"]["message"], repr(r))
    r = agent.request("GET", "/v1/vms/%s/vcpus/x/lapic" % vm, template=("/v1/vms/{id}/vcpus/{n}/lapic", "400"))
    check_eq(r.status, 400, repr(r))
    r = agent.request("GET", "/v1/vms/nope/apicv", template=("/v1/vms/{id}/apicv", "404"))
    check_eq(r.status, 404, repr(r))

    cases = [
        ({"pit_reinject": "yes"}, 422, "invalid_argument", "$.pit_reinject"),
        ({"pit_reinject": None}, 422, "invalid_argument", "$.pit_reinject"),
        ({}, 422, "invalid_argument", None),
        ({"colour": 1}, 422, "invalid_argument", "$.colour"),
        ({"irqchip": "split"}, 409, "restart_required", "$.irqchip"),
        ({"x2apic_api": {"use_32bit_ids": True}}, 409, "restart_required", "$.x2apic_api"),
        ({"pit_reinject": False, "irqchip": "none"}, 409, "restart_required", "$.irqchip"),
        ([1], 422, "invalid_argument", None),
    ]
    for body, status, code, path in cases:
        r = agent.request("PATCH", "/v1/vms/%s/apicv" % vm, body,
                          template=("/v1/vms/{id}/apicv", "patch %d" % status))
        check_eq(r.status, status, "%r: %r" % (body, r))
        check_eq(r.error_code(), code, "%r: %r" % (body, r))
        if path:
            check_eq(r.json["error"]["details"].get("path"), path, "%r: %r" % (body, r))
    r = agent.request("PATCH", "/v1/vms/%s/apicv" % vm, "{not json", headers={"Content-Type": "application/json"})
    check_eq(r.status, 400, repr(r))
    # Nothing changed: the VM, the stored spec, the event log.
    check_eq(apicv(vm)["configuration"]["pit"]["reinject"], True)
    check_eq(agent.request("GET", "/v1/vms/" + vm).json["spec"], before_spec)
    check_eq(len(events_for(uuid)), before_events)

    # A VM that does not run has no LAPIC and no runtime control.
    agent.request("POST", "/v1/vms/%s/stop" % vm)
    r = agent.request("PATCH", "/v1/vms/%s/apicv" % vm, {"pit_reinject": False},
                      template=("/v1/vms/{id}/apicv", "patch 409 stopped"))
    check_eq(r.status, 409, repr(r))
    check_eq(r.error_code(), "invalid_state")
    r = agent.request("GET", "/v1/vms/%s/vcpus/0/lapic" % vm, template=("/v1/vms/{id}/vcpus/{n}/lapic", "409"))
    check_eq(r.status, 409, repr(r))
    check_eq(r.error_code(), "invalid_state")
    v = apicv(vm)
    check_eq(v["live"]["available"], False)
    check_eq(v["configuration"]["source"], "spec")

    # A VM without an in-kernel PIT can't switch reinjection: 422 unsupported, nothing recorded.
    vs = name("bad")
    suuid = create(vs, guest="counter.elf", irqchip="split")["uuid"]
    n = len(events_for(suuid))
    r = agent.request("PATCH", "/v1/vms/%s/apicv" % vs, {"pit_reinject": False},
                      template=("/v1/vms/{id}/apicv", "patch 422"))
    check_eq(r.status, 422, repr(r))
    check_eq(r.error_code(), "unsupported")
    check_eq(len(events_for(suuid)), n)
    check_eq(agent.request("GET", "/v1/vms/" + vs).json["spec"]["pit"]["reinject"], True)
    agent.request("POST", "/v1/vms/%s/stop" % vs)


@test
def agent_restart_keeps_live_data():
    global agent
    vm = name("restart")
    create(vm)
    before = wait_live(vm)["live"]
    check(before["inhibits"] is not None, repr(before))
    agent.stop()
    agent.start()
    after = apicv(vm)["live"]
    check_eq(after["available"], True, repr(after))
    check_eq(after["inhibits"], before["inhibits"])
    check_eq(after["last_change"], before["last_change"])
    check_eq(after["events"], before["events"])
    # And tracking goes on: a VM started by the new agent gets its own live data.
    vm2 = name("restart")
    create(vm2)
    check(wait_live(vm2)["live"]["inhibits"] is not None)
    for x in (vm, vm2):
        agent.request("POST", "/v1/vms/%s/stop" % x)


@test
def cli_apicv_show_and_set():
    vm = name("cli")
    create(vm)
    p = agent.ctl("vm", "apicv", "show", vm, check=0)
    check("irqchip" in p.stdout and "kernel" in p.stdout, p.stdout)
    v = json.loads(agent.ctl("--json", "vm", "apicv", "show", vm, check=0).stdout)
    check_eq(v["configuration"]["pit"]["reinject"], True)
    agent.ctl("vm", "apicv", "set", vm, "--pit-reinject", "off", check=0)
    check_eq(apicv(vm)["configuration"]["pit"]["reinject"], False)
    agent.ctl("vm", "apicv", "set", vm, "--pit-reinject", "maybe", check=2)
    agent.ctl("vm", "lapic", vm, "9", check=1)
    agent.request("POST", "/v1/vms/%s/stop" % vm)


@test
def responses_match_openapi():
    p = check_openapi_records()
    failures = [l for l in p.stdout.splitlines() if l.startswith("not ok") or l.startswith("#")]
    check(p.returncode == 0 and not failures, "\n".join(failures) + p.stderr)


try:
    run()
finally:
    agent.cleanup()
