#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Reads a host's KVM setup from kvmfleetd (GET /v1/host/kvm) and condenses it to a fingerprint."""

import hashlib
import http.client
import json
import socket

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: kvmfleet_kvm_fingerprint
short_description: Fingerprint of a host's KVM setup, read from kvmfleetd
description:
  - Reads C(GET /v1/host/kvm) over kvmfleetd's unix socket and returns a SHA-256 fingerprint of
    what makes KVM behave differently from host to host: CPU vendor and vendor module, whether the
    CPUs agree and which features differ, the requested KVM parameters and their effective values,
    and every KVM module parameter as the kernel has it now.
  - Hosts with equal fingerprints offer guests the same KVM; use C(group_by) on C(short) to find
    the divergent ones. Never changes anything.
options:
  socket:
    description: kvmfleetd's API socket.
    type: path
    default: /run/kvmfleet/api.sock
  timeout:
    description: Seconds to wait for the agent.
    type: int
    default: 30
"""

RETURN = r"""
fingerprint: {description: SHA-256 of the canonical JSON of C(fingerprint_input), type: str, returned: always}
short: {description: first 12 hex digits of the fingerprint, type: str, returned: always}
fingerprint_input: {description: what was hashed, type: dict, returned: always}
report_present: {description: kvmfleet-load's report is in the inventory, type: bool, returned: always}
setup_ok: {description: kvmfleet-load's last run succeeded, type: bool, returned: always}
consistent: {description: all CPUs agree with the target CPU, type: bool, returned: always}
params_in_effect: {description: every requested parameter is in effect, type: bool, returned: always}
differences: {description: names of the CPU features that differ, type: list, returned: always}
"""


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def fingerprint_input(kvm):
    report = ((kvm.get("setup") or {}).get("report")) or {}
    cons = report.get("consistency") or {}
    return {
        "vendor": report.get("vendor"),
        "vendor_module": report.get("vendor_module"),
        "consistent": cons.get("consistent"),
        "differences": sorted({d.get("feature") or "%s.%s[%s]" % (d.get("leaf"), d.get("register"), d.get("bit"))
                               for d in cons.get("differences") or []}),
        "params": {"%s.%s" % (p.get("module"), p.get("name")): p.get("effective") for p in report.get("params") or []},
        "modules": {name: {"type": m.get("type"), "parameters": m.get("parameters") or {}}
                    for name, m in (kvm.get("modules") or {}).items()},
    }


def main():
    module = AnsibleModule(argument_spec={"socket": {"type": "path", "default": "/run/kvmfleet/api.sock"},
                                          "timeout": {"type": "int", "default": 30}},
                           supports_check_mode=True)
    conn = UnixHTTPConnection(module.params["socket"], module.params["timeout"])
    try:
        conn.request("GET", "/v1/host/kvm")
        resp = conn.getresponse()
        body = resp.read()
    except OSError as e:
        module.fail_json(msg="kvmfleetd is not reachable on %s: %s" % (module.params["socket"], e))
    finally:
        conn.close()
    if resp.status != 200:
        module.fail_json(msg="GET /v1/host/kvm answered %d: %s" % (resp.status, body[:500]))
    try:
        kvm = json.loads(body)
    except ValueError as e:
        module.fail_json(msg="GET /v1/host/kvm returned invalid JSON: %s" % e)
    data = fingerprint_input(kvm)
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    report = ((kvm.get("setup") or {}).get("report")) or {}
    module.exit_json(changed=False, fingerprint=digest, short=digest[:12], fingerprint_input=data,
                     report_present=bool(report), setup_ok=bool(report.get("ok")),
                     consistent=bool((report.get("consistency") or {}).get("consistent")),
                     params_in_effect=bool(report.get("params_in_effect")), differences=data["differences"])


if __name__ == "__main__":
    main()
