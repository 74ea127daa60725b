"""Starts a real kvmfleetd on a temporary directory and talks HTTP to it over its unix socket
or TCP, recording every JSON response so the suite can check them against api/openapi.yaml."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from kvmtest import BUILD, ROOT

RECORDS = []  # responses seen, for the OpenAPI schema check


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Response:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    def error_code(self):
        return (self.json or {}).get("error", {}).get("code")

    def __repr__(self):
        return "<%d %s>" % (self.status, self.raw[:300])


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Agent:
    def __init__(self, tcp=False, extra_config="", log_level="debug"):
        self.dir = tempfile.mkdtemp(prefix="kvmfleet-agent.")
        self.state = os.path.join(self.dir, "state")
        self.run_dir = os.path.join(self.dir, "run")
        self.socket = os.path.join(self.run_dir, "api.sock")
        self.port = free_port() if tcp else None
        self.config = os.path.join(self.dir, "kvmfleetd.conf")
        self.log_path = os.path.join(self.dir, "agent.log")
        self.proc = None
        with open(self.config, "w") as f:
            f.write("[agent]\nstate_dir = %s\nrun_dir = %s\nlog_level = %s\nkvm_setup_report = %s\n"
                    "vmm_binary = %s\nkvm_load_binary = %s\n" % (self.state, self.run_dir, log_level,
                                                                 os.path.join(self.run_dir, "kvm-setup.json"),
                                                                 os.path.join(BUILD, "kvmfleet-vmm"),
                                                                 os.path.join(BUILD, "kvmfleet-load")))
            if tcp:
                f.write("listen_tcp = 127.0.0.1:%d\n" % self.port)
            f.write(extra_config)

    @property
    def token_file(self):
        return os.path.join(self.state, "api.token")

    def token(self):
        with open(self.token_file) as f:
            return f.read().strip()

    def start(self, wait=True):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([os.path.join(BUILD, "kvmfleetd"), "-c", self.config],
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if wait:
            deadline = time.time() + 10
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError("kvmfleetd exited with %d:\n%s" % (self.proc.returncode, self.log()))
                try:
                    if self.request("GET", "/v1/health", record=False).status in (200, 503):
                        return self
                except OSError:
                    pass
                time.sleep(0.02)
            raise RuntimeError("kvmfleetd did not answer within 10 s:\n" + self.log())
        return self

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout)
        return self.proc.returncode if self.proc else None

    def vmm_pids(self):
        """VMM processes started for this agent (their control socket is under its run dir)."""
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"kvmfleet-vmm") and any(a.startswith(self.run_dir.encode()) for a in argv):
                pids.append(int(d))
        return pids

    def cleanup(self):
        try:
            self.stop()
        except Exception:  # noqa: BLE001 - best effort: kill what is left
            self.proc.kill()
        for pid in self.vmm_pids():  # VMMs outlive the agent by design
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def request(self, method, path, body=None, headers=None, tcp=False, template=None, record=True,
                timeout=30):
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        if tcp:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        else:
            conn = UnixHTTPConnection(self.socket, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            resp = Response(r.status, dict(r.getheaders()), r.read().decode("utf-8", "replace"))
        finally:
            conn.close()
        if record and template and resp.json is not None:
            RECORDS.append({"name": template[1] if isinstance(template, tuple) else path,
                            "method": method, "path": template[0] if isinstance(template, tuple) else template,
                            "status": resp.status, "body": resp.json})
        return resp

    def ctl(self, *args, tcp=False, token_file=None, check=None):
        cmd = [os.path.join(BUILD, "kvmfleetctl")]
        if tcp:
            cmd += ["--url", "http://127.0.0.1:%d" % self.port]
            if token_file:
                cmd += ["--token-file", token_file]
        else:
            cmd += ["--socket", self.socket]
        p = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60)
        if check is not None and p.returncode != check:
            raise AssertionError("kvmfleetctl %s exited %d, expected %d\nstdout: %s\nstderr: %s"
                                 % (" ".join(args), p.returncode, check, p.stdout, p.stderr))
        return p


def check_openapi_records(records_path=None):
    """Validates every recorded response against api/openapi.yaml with the npm validator."""
    path = records_path or os.path.join(tempfile.mkdtemp(prefix="kvmfleet-records."), "records.jsonl")
    with open(path, "w") as f:
        for r in RECORDS:
            f.write(json.dumps(r) + "\n")
    node_dir = os.path.join(ROOT, "tests", "node")
    p = subprocess.run(["node", os.path.join(node_dir, "openapi-check.mjs"), "responses",
                        os.path.join(ROOT, "api", "openapi.yaml"), path],
                       capture_output=True, text=True, cwd=node_dir, timeout=120)
    return p
