"""A kvmfleet-vmm process of a test's own: spec file, control socket, status file, exit."""
import json
import os
import socket
import subprocess
import time

from kvmtest import BUILD, check

VMM = os.path.join(BUILD, "kvmfleet-vmm")


class Vmm:
    """Started at construction in a fresh directory under tmp; extra: more kvmfleet-vmm arguments."""
    seq = 0

    def __init__(self, tmp, spec_obj, extra=()):
        Vmm.seq += 1
        self.dir = os.path.join(tmp, "vm%d" % Vmm.seq)
        os.makedirs(self.dir)
        self.control = os.path.join(self.dir, "control.sock")
        self.status_file = os.path.join(self.dir, "status.json")
        spec_file = os.path.join(self.dir, "spec.json")
        with open(spec_file, "w") as f:
            json.dump(spec_obj, f)
        self.proc = subprocess.Popen([VMM, "--spec", spec_file, "--control", self.control, "--status-file",
                                      self.status_file] + list(extra),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = self.err = ""

    def wait_socket(self, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            if os.path.exists(self.control):
                return
            if self.proc.poll() is not None:
                raise AssertionError("VMM exited early with %d: %s" % (self.proc.returncode, self.proc.stderr.read()))
            time.sleep(0.01)
        raise AssertionError("control socket did not appear")

    def result(self, method, params=None):
        reply = self.call(method, params)
        check("result" in reply, "%s failed: %r" % (method, reply))
        return reply["result"]

    def call(self, method, params=None):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(10)
        s.connect(self.control)
        req = {"id": 1, "method": method}
        if params is not None:
            req["params"] = params
        s.send(json.dumps(req).encode())
        reply = json.loads(s.recv(1 << 20))
        s.close()
        return reply

    def finish(self, timeout=60):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise AssertionError("VMM did not exit within %ss" % timeout)
        self.out, self.err = out.decode(errors="replace"), err.decode(errors="replace")
        return self.proc.returncode

    def final_status(self):
        with open(self.status_file) as f:
            return json.load(f)
