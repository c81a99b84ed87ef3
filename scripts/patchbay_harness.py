"""Process helpers shared by the crash test, the cluster test and the benchmarks: free loopback
ports, waiting for a log line, a `patchbay serve` child that can be SIGKILLed and restarted, the
sink, and a store section for SQLite or a fresh PostgreSQL schema. For the hostile-client test and
benchmark also: a config check, one HTTP request from a chosen loopback source address
(`http_request`), and a console client that keeps its cookies and signs in (`ConsoleClient`)."""
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
        """Starts `patchbay serve` and waits until /healthz answers. Port 0 lets the server pick
        one; `port` is then read from its log line."""
        self.starts += 1
        self.log = os.path.join(self.workdir, f"{self.name}-{self.starts}.log")
        with open(self.log, "w") as out:
            self.process = subprocess.Popen([self.binary, "serve", "--config", self.config, "--listen", f"127.0.0.1:{self.port}",
                                             "--log-level", "notice"],
                                            cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + 60
        if self.port == 0:
            while time.time() < deadline:
                match = re.search(r"patchbay listening on http://127\.0\.0\.1:(\d+)", self.log_text())
                if match:
                    self.port = int(match.group(1))
                    break
                if self.process.poll() is not None:
                    raise SystemExit(f"patchbay exited: {self.log_text()[-2000:]}")
                time.sleep(0.05)
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

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def log_text(self):
        try:
            return pathlib.Path(self.log).read_text(errors="replace")
        except (OSError, AttributeError):
            return ""

    def exit_description(self):
        code = None if self.process is None else self.process.returncode
        if code is None:
            return "running"
        if code < 0:
            return f"killed by signal {signal.Signals(-code).name}"
        return f"exited {code}"

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def config_problem(binary, config, workdir):
    """None when `patchbay config check` accepts the file, else what it printed."""
    check = subprocess.run([binary, "config", "check", "--config", config], cwd=workdir, capture_output=True, text=True,
                           timeout=60)
    return None if check.returncode == 0 else (check.stdout + check.stderr).strip()


class Answer:
    """One HTTP exchange: `status` (None when nothing came back), `headers` (lower-case name ->
    list of values), `body`, `seconds`, and `error` (why there was no answer)."""

    def __init__(self, status=None, headers=None, body=b"", seconds=0.0, error=None):
        self.status, self.headers, self.body, self.seconds, self.error = status, headers or {}, body, seconds, error

    def header(self, name):
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"{self.status if self.status is not None else self.error} in {self.seconds * 1000:.0f} ms"


def http_request(port, method, path, body=None, headers=None, source=None, timeout=5):
    """One request on a new connection to 127.0.0.1:port, from the loopback address `source`
    (e.g. "127.0.0.2"; default 127.0.0.1). A dict body is sent as a form. Never raises for HTTP or
    network errors: the Answer says what happened."""
    import http.client
    import urllib.parse
    headers = dict(headers or {})
    if isinstance(body, dict):
        body = urllib.parse.urlencode(body).encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    began = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                            source_address=(source, 0) if source else None)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        found = {}
        for name, value in response.getheaders():
            found.setdefault(name.lower(), []).append(value)
        return Answer(response.status, found, data, time.monotonic() - began)
    except (OSError, http.client.HTTPException) as error:
        return Answer(None, seconds=time.monotonic() - began, error=type(error).__name__)
    finally:
        connection.close()


class ConsoleClient:
    """A browser stand-in for the console: keeps the cookies the server sets (by name, ignoring
    their paths), from one loopback source address, with extra headers on every request (for
    example X-Forwarded-For)."""

    def __init__(self, port, source=None, headers=None, timeout=5):
        self.port, self.source, self.extra, self.timeout = port, source, dict(headers or {}), timeout
        self.cookies = {}

    def cookie_header(self, cookies=None):
        cookies = self.cookies if cookies is None else cookies
        return "; ".join(f"{name}={value}" for name, value in cookies.items())

    def request(self, method, path, form=None, headers=None, cookies=None, keep=True):
        """`cookies` replaces the jar for this one request; `keep=False` ignores what it sets."""
        sent = dict(self.extra)
        sent.update(headers or {})
        cookie = self.cookie_header(cookies)
        if cookie:
            sent["Cookie"] = cookie
        answer = http_request(self.port, method, path, form, sent, self.source, self.timeout)
        if keep and cookies is None:
            for line in answer.headers.get("set-cookie", []):
                name, _, rest = line.partition("=")
                value = rest.split(";", 1)[0]
                if re.search(r";\s*max-age=0\b", line, re.I) or value == "":
                    self.cookies.pop(name.strip(), None)
                else:
                    self.cookies[name.strip()] = value
        return answer

    def get(self, path, **options):
        return self.request("GET", path, **options)

    def post(self, path, form, **options):
        return self.request("POST", path, form, **options)

    @staticmethod
    def csrf(answer):
        """The first form's CSRF token (`<input name="csrf" value="...">`) on a page, or None."""
        match = re.search(r'name="csrf" value="([^"]*)"', answer.text())
        return match.group(1) if match else None

    def sign_in_form(self):
        """GETs the sign-in form (which sets the pb_signin nonce cookie); returns its CSRF token."""
        return self.csrf(self.get("/console/sign-in"))

    def sign_in(self, token, csrf=None):
        """Posts the sign-in form (getting a fresh one unless `csrf` is given); returns the Answer.
        Success is a 302/303 to /console that sets pb_session."""
        if csrf is None:
            csrf = self.sign_in_form()
        return self.post("/console/sign-in", {"csrf": csrf or "", "token": token})


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
