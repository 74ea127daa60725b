"""Host KVM policy on this machine's KVM: the nested/unsafe-mappings/APICv view of GET /v1/host/kvm,
desired parameters (PUT /v1/host/kvm/params) and POST /v1/host/kvm/reload through the real
kvmfleet-load; module reloading itself runs in the test host (tests/hostvm/test-host-kvm.sh)."""
import os

from agentlib import Agent, check_openapi_records
from kvmtest import BUILD, check, check_eq, run, skip, test

agent = Agent().start()
UNSAFE = "/sys/module/kvm/parameters/allow_unsafe_mappings"


def host_kvm():
    r = agent.request("GET", "/v1/host/kvm", template="/v1/host/kvm")
    check_eq(r.status, 200)
    return r.json


def put(body):
    return agent.request("PUT", "/v1/host/kvm/params", body, template="/v1/host/kvm/params")


@test
def policy_view_matches_sysfs():
    j = host_kvm()
    unsafe = j["allow_unsafe_mappings"]
    check_eq(unsafe["present"], os.path.exists(UNSAFE))
    if os.path.exists(UNSAFE):
        with open(UNSAFE) as f:
            check_eq(unsafe["effective"], f.read().strip())
    vendor = j["nested"]["vendor_module"]
    check(vendor in (None, "kvm_intel", "kvm_amd"), vendor)
    if vendor:
        with open("/sys/module/%s/parameters/nested" % vendor) as f:
            check_eq(j["nested"]["parameter"]["effective"], f.read().strip())
    else:
        check("neither kvm_intel nor kvm_amd" in j["nested"]["detail"])
    check(j["apicv"]["cpu"]["feature"] in ("avic", "apicv", None), j["apicv"])
    check(j["apicv"]["cpu"]["source"])
    check_eq(j["desired_params"], [])
    check(isinstance(j["nested_state_max_size"], int))


@test
def unsafe_mappings_need_acknowledgement():
    if not os.path.exists(UNSAFE):
        skip("this kernel's kvm has no allow_unsafe_mappings parameter")
    put({"params": {"kvm.halt_poll_ns": 0}})
    r = put({"params": {"kvm.allow_unsafe_mappings": True}})
    check_eq(r.status, 422, repr(r))
    check_eq(r.error_code(), "unsafe_not_acknowledged")
    check_eq(r.json["error"]["details"]["path"], "$.acknowledge_unsafe")
    check_eq([(d["name"], d["value"]) for d in host_kvm()["desired_params"]], [("halt_poll_ns", "0")],
             "a refused PUT changed the desired set")
    r = put({"params": {"kvm.allow_unsafe_mappings": True}, "acknowledge_unsafe": True})
    check_eq(r.status, 200, repr(r))
    check_eq(r.json["allow_unsafe_mappings"]["desired"], "1")
    ev = agent.request("GET", "/v1/events?object=host&limit=1000").json["events"]
    sets = [e for e in ev if e["action"] == "kvm_params_set"]
    check(sets and sets[-1]["detail"]["acknowledge_unsafe"] is True, sets)
    check_eq(put({"params": {}}).status, 200)


@test
def bad_params_are_refused_with_their_path():
    cases = [
        ({"params": {"nested": 1}}, "$.params.nested"),
        ({"params": {"kvm_foo.nested": 1}}, '$.params["kvm_foo.nested"]'),
        ({"params": {"kvm.Bad-Name": 1}}, '$.params["kvm.Bad-Name"]'),
        ({"params": {"kvm.halt_poll_ns": [1]}}, '$.params["kvm.halt_poll_ns"]'),
        ({"params": {"kvm.halt_poll_ns": "1; reboot"}}, '$.params["kvm.halt_poll_ns"]'),
        ({"params": {"kvm.halt_poll_ns": 1}, "extra": 1}, "$.extra"),
        ({"params": dict(("kvm.p%d" % i, 1) for i in range(65))}, "$.params"),
        ({}, "$.params"),
    ]
    if os.path.exists("/sys/module/kvm/parameters"):
        cases.append(({"params": {"kvm.no_such_param": 1}}, '$.params["kvm.no_such_param"]'))
    for body, path in cases:
        r = put(body)
        check_eq(r.status, 422, "%r: %r" % (body, r))
        check_eq(r.json["error"]["details"]["path"], path, repr(body))
    check_eq(host_kvm()["desired_params"], [])


@test
def reload_is_refused_while_a_vm_runs_and_runs_kvmfleet_load_otherwise():
    r = agent.request("POST", "/v1/vms", {"name": "busy", "vcpus": 1, "memory": "2MiB",
                                          "boot": {"kernel": os.path.join(BUILD, "guests", "hello.elf"),
                                                   "cmdline": "halt=1"}})
    check_eq(r.status, 201)
    check_eq(agent.request("POST", "/v1/vms/busy/start").status, 200)
    r = agent.request("POST", "/v1/host/kvm/reload", template="/v1/host/kvm/reload")
    check_eq(r.status, 409, repr(r))
    check_eq(r.json["error"]["details"]["active_vms"], 1)
    check_eq(agent.request("POST", "/v1/vms/busy/stop").status, 200)

    check_eq(put({"params": {"kvm.halt_poll_ns": 0}}).status, 200)
    r = agent.request("POST", "/v1/host/kvm/reload", template="/v1/host/kvm/reload")
    check_eq(r.status, 200, repr(r))
    check_eq(r.json["exit_status"], 0, r.json["output"])
    check("param kvm.halt_poll_ns: requested 0" in r.json["output"], r.json["output"])
    report = r.json["setup"]["report"]
    check([p for p in report["params"] if p["module"] == "kvm" and p["name"] == "halt_poll_ns"], report["params"])
    check(os.path.exists(os.path.join(agent.run_dir, "kvm-setup.json")))
    ev = [e["action"] for e in agent.request("GET", "/v1/events?object=host&limit=1000").json["events"]]
    check("kvm_reload" in ev, ev)
    check_eq(agent.request("POST", "/v1/vms/busy/start").status, 200, "the VM does not start after the reload")
    agent.request("POST", "/v1/vms/busy/stop")


@test
def cli_set_and_reload():
    p = agent.ctl("host", "kvm", "set", "kvm.halt_poll_ns=0", check=0)
    check("kvm.halt_poll_ns=0" in p.stdout, p.stdout)
    check_eq(agent.ctl("host", "kvm", "set", "nonsense").returncode, 2)
    check_eq(agent.ctl("host", "kvm", "set", "kvm.x=1;y").returncode, 1)
    p = agent.ctl("host", "kvm", "reload", check=0)
    check("result: ok" in p.stdout, p.stdout)
    p = agent.ctl("host", "kvm", check=0)
    check("Unsafe mappings:" in p.stdout and "APIC virt:" in p.stdout, p.stdout)


@test
def health_reports_unsafe_mappings():
    r = agent.request("GET", "/v1/health", template="/v1/health")
    checks = {c["name"]: c for c in r.json["checks"]}
    want = "degraded" if os.path.exists(UNSAFE) and open(UNSAFE).read().strip() in ("Y", "1") else "ok"
    check_eq(checks["kvm_unsafe_mappings"]["status"], want, checks["kvm_unsafe_mappings"])


@test
def responses_match_openapi():
    p = check_openapi_records()
    failures = [l for l in p.stdout.splitlines() if l.startswith("not ok") or l.startswith("#")]
    check(p.returncode == 0 and not failures, "\n".join(failures) + p.stderr)


try:
    run()
finally:
    agent.cleanup()
