"""Process helpers shared by the crash test, the cluster test and the benchmarks: free loopback
ports, waiting for a log line, a `patchbay serve` child that can be SIGKILLed and restarted, the
sink, and a store section for SQLite or a fresh PostgreSQL schema."""
import os
import pathlib
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(path, pattern, timeout=30):
    deadline = time.time() + timeout
    text = ""
    while time.time() < deadline:
        text = pathlib.Path(path).read_text(errors="replace") if os.path.exists(path) else ""
        match = re.search(pattern, text)
        if match:
            return match
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for /{pattern}/ in {path}:\n{text[-2000:]}")


def store_section(kind, postgres_url=None):
    """The YAML `store:` line: a SQLite file in the working directory, or a new schema (so runs
    never see each other's rows) in the PostgreSQL server at postgres_url."""
    if kind == "sqlite":
        return "store: {sqlite: ./queue.db}"
    url = postgres_url or os.environ.get("PATCHBAY_TEST_POSTGRES_URL")
    if not url:
        raise SystemExit("PostgreSQL: set PATCHBAY_TEST_POSTGRES_URL or pass --postgres-url (scripts/with-postgres starts a server)")
    schema = "run_" + uuid.uuid4().hex[:12]
    return f'store: {{postgres: {{url: "{url}", schema: {schema}}}}}'


class Sink:
    def __init__(self, binary, workdir, delay_ms=0, port=0):
        self.record = os.path.join(workdir, "sink.jsonl")
        log = os.path.join(workdir, f"sink-{time.time_ns()}.log")
        with open(log, "w") as out:
            self.process = subprocess.Popen([binary, "sink", "--listen", f"127.0.0.1:{port}", "--record", self.record, "--delay-ms", str(delay_ms)],
                                            cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
        self.port = int(wait_for(log, r"sink listening on http://127\.0\.0\.1:(\d+)").group(1))

    def requests(self):
        import json
        if not os.path.exists(self.record):
            return []
        return [json.loads(line) for line in pathlib.Path(self.record).read_text().splitlines() if line.strip()]

    def stop(self):
        self.process.terminate()
        self.process.wait()


class Server:
    def __init__(self, binary, workdir, config, port, name="serve"):
        self.binary, self.workdir, self.config, self.port, self.name = binary, workdir, config, port, name
        self.process, self.starts = None, 0

    def start(self):
        self.starts += 1
        self.log = os.path.join(self.workdir, f"{self.name}-{self.starts}.log")
        with open(self.log, "w") as out:
            self.process = subprocess.Popen([self.binary, "serve", "--config", self.config, "--listen", f"127.0.0.1:{self.port}",
                                             "--log-level", "notice"],
                                            cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                if self.process.poll() is not None:
                    raise SystemExit(f"patchbay exited: {pathlib.Path(self.log).read_text()[-2000:]}")
                time.sleep(0.05)
        raise SystemExit("patchbay did not come up")

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def post_event(port, token, body, key, timeout=5):
    """POSTs one event; returns the HTTP status, or None when the server did not answer."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/events", data=body, method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, ConnectionError, OSError, TimeoutError):
        return None


class Checks:
    """Prints each check as it is made and remembers the failures; `finish` exits 1 if any failed."""

    def __init__(self):
        self.failures = []

    def __call__(self, condition, message):
        print(("ok   " if condition else "FAIL ") + message)
        if not condition:
            self.failures.append(message)

    def finish(self, name, workdir):
        if self.failures:
            print(f"{name}: {len(self.failures)} check(s) failed; logs in {workdir}")
            raise SystemExit(1)
        print(f"{name}: all checks passed")
