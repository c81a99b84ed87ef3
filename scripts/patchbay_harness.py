"""Process helpers shared by the crash test, the cluster test and the benchmarks: free loopback
ports, waiting for a log line, a `patchbay serve` child that can be SIGKILLed and restarted, the
sink, and a store section for SQLite or a fresh PostgreSQL schema. For the hostile-client test and
benchmark also: a config check, one HTTP request from a chosen loopback source address
(`http_request`), and a console client that keeps its cookies and signs in (`ConsoleClient`). For the
fault test: a throwaway PostgreSQL server the test owns (`PostgresServer`: pause, resume, restart),
sink scripting (`Sink.script`), and a `serve` child under a wrapper command such as faketime. For
the benchmarks: a process's memory and CPU time from /proc (`rss_mb`, `cpu_seconds`, `proc_sample`), a
thread sampling any of them periodically (`Sampler`), a child process with its output in a log file
(`Child`, `wait_port`, `stop_process`), a copy of the binary under test (`copy_binary`), a config
checked with or without `allowPrivateNetworks` (`write_loopback_config`), GET /metrics parsed
(`metrics`, `parse_metrics`, `metric_sum`, `http_call`), and small figures (`percentile`,
`file_size`, `rfc3339`)."""
import collections
import http.client
import math
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent


TICK = os.sysconf("SC_CLK_TCK")


def rss_mb(pid, missing=None):
    """VmRSS in MiB from /proc, or `missing` (None; pass float("nan") to print it as a number) when
    the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return missing


def cpu_seconds(pid):
    """utime + stime of the process in seconds, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


ProcSample = collections.namedtuple("ProcSample", "rss_kb hwm_kb threads fds")


def proc_sample(pid):
    """ProcSample(rss_kb, hwm_kb, threads, fds) from /proc/<pid>/status (VmRSS, VmHWM, Threads; 0
    when a field is missing) and /proc/<pid>/fd, or None when the process is gone."""
    try:
        fields = {}
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        kb = lambda name: int(fields.get(name, "0 kB").split()[0])  # noqa: E731
        return ProcSample(kb("VmRSS"), kb("VmHWM"), int(fields.get("Threads", "0")), fds)
    except (OSError, ValueError):
        return None


class Sampler(threading.Thread):
    """Calls fn() every `interval` seconds in a daemon thread and keeps (t, value) in `samples`, t
    being time.monotonic() - origin taken just before the call. A None value (e.g. `rss_mb` or
    `proc_sample` of a process that is gone) is not kept; `missed_at` is the t of the first one.
    Runs until stop() (which also joins it) or until the `stop_event` given is set."""

    def __init__(self, fn, interval, origin=0.0, stop_event=None, name=None):
        super().__init__(name=name, daemon=True)
        self.fn, self.interval, self.origin = fn, interval, origin
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self.samples, self.missed_at = [], None

    def run(self):
        while not self.stop_event.is_set():
            t = time.monotonic() - self.origin
            value = self.fn()
            if value is None:
                if self.missed_at is None:
                    self.missed_at = t
            else:
                self.samples.append((t, value))
            self.stop_event.wait(self.interval)

    def stop(self):
        self.stop_event.set()
        self.join()

    def max(self, default=None):
        """The largest value sampled, `default` when there is none."""
        return max((value for _, value in self.samples), default=default)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def file_size(path):
    """The size of a file in bytes, 0 when it does not exist."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def rfc3339(instant):
    """A datetime (UTC) as 2030-01-01T00:30:00Z."""
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def percentile(values, fraction):
    """The nearest-rank percentile (fraction 0.99: p99) of the values, NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def copy_binary(path, workdir, wait=180):
    """Copies the binary into workdir (it may be rebuilt under us); waits while it is missing."""
    deadline = time.time() + wait
    last_error = "missing"
    while time.time() < deadline:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            try:
                target = os.path.join(workdir, "patchbay")
                shutil.copy2(path, target)
                check = subprocess.run([target, "serve", "--help"], capture_output=True, timeout=30)
                if check.returncode == 0:
                    return target
                last_error = f"'serve --help' exited {check.returncode}"
            except (OSError, subprocess.SubprocessError) as error:
                last_error = str(error)
        time.sleep(2)
    raise SystemExit(f"no usable binary at {path}: {last_error}")


def exit_text(code):
    """A Popen returncode in words: running, exited N, or killed by signal SIGNAME."""
    if code is None:
        return "running"
    if code < 0:
        return f"killed by signal {signal.Signals(-code).name}"
    return f"exited {code}"


def stop_process(process, timeout=10, kill_timeout=None):
    """SIGTERM; SIGKILL when the process has not exited after `timeout` seconds, then waits for it
    (at most `kill_timeout` seconds; None: as long as it takes). Nothing when it is None or gone."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=kill_timeout)


def wait_port(port, process, what, timeout=30, error=SystemExit):
    """Waits until something accepts connections on 127.0.0.1:port; raises `error` when `process`
    exits first or after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise error(f"{what} exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise error(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s")


class Child:
    """A process (`patchbay sink`, `patchbay serve`, ...) started in workdir with its output in
    workdir/<name>.log, or discarded with log=False; stop() sends SIGTERM, then SIGKILL."""

    def __init__(self, name, arguments, workdir, log=True):
        self.name = name
        self.log = os.path.join(workdir, f"{name}.log") if log else os.devnull
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(arguments, cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)

    def log_text(self):
        try:
            return pathlib.Path(self.log).read_text(errors="replace") if self.log != os.devnull else ""
        except OSError:
            return ""

    def wait_for(self, pattern, timeout=60):
        """The first match of `pattern` in the log; SystemExit when the process exits first or after
        `timeout` seconds."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            match = re.search(pattern, self.log_text())
            if match:
                return match
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited {self.process.returncode} at start:\n{self.log_text()[-3000:]}")
            time.sleep(0.05)
        raise SystemExit(f"{self.name}: timed out waiting for /{pattern}/:\n{self.log_text()[-3000:]}")

    def wait_port(self, port, timeout=60):
        wait_port(port, self.process, self.name, timeout)

    def alive(self):
        return self.process.poll() is None

    def exit_description(self):
        return exit_text(self.process.returncode)

    def stop(self, timeout=30):
        stop_process(self.process, timeout, kill_timeout=10)


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

    def script(self, path, responses):
        """The next requests to `path` get these answers in order (`POST /_sink/script`): each a
        dict with status, body, delayMs, hang, reset, retryAfter, headers."""
        import json
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/_sink/script", method="POST",
                                         data=json.dumps({"path": path, "responses": responses}).encode())
        with urllib.request.urlopen(request, timeout=5) as response:
            if response.status != 200:
                raise SystemExit(f"sink script for {path}: HTTP {response.status}")

    def stop(self):
        self.process.terminate()
        self.process.wait()


class Server:
    def __init__(self, binary, workdir, config, port, name="serve", wrapper=None, env=None):
        """`wrapper`: a command the server runs under (e.g. ["faketime", "-f", "+120s"]); the
        wrapper and the server then get a process group of their own, and signals go to the group
        (a wrapper that forks would not pass them on). `env`: variables added to the environment."""
        self.binary, self.workdir, self.config, self.port, self.name = binary, workdir, config, port, name
        self.wrapper, self.env = list(wrapper or []), dict(env or {})
        self.process, self.starts = None, 0

    def start(self):
        """Starts `patchbay serve` and waits until /healthz answers. Port 0 lets the server pick
        one; `port` is then read from its log line."""
        self.starts += 1
        self.log = os.path.join(self.workdir, f"{self.name}-{self.starts}.log")
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(self.wrapper + [self.binary, "serve", "--config", self.config, "--listen", f"127.0.0.1:{self.port}",
                                                            "--log-level", "notice"],
                                            cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env={**os.environ, **self.env} if self.env else None, start_new_session=bool(self.wrapper))
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

    def _signal(self, signum):
        if self.wrapper:
            try:
                os.killpg(self.process.pid, signum)  # the group this server's Popen created
            except ProcessLookupError:
                pass
        else:
            self.process.send_signal(signum)

    def _group_gone(self, timeout):
        """With a wrapper: waits until every process of the group has exited."""
        deadline = time.time() + timeout
        while self.wrapper and time.time() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.05)
        return not self.wrapper

    def kill(self):
        self._signal(signal.SIGKILL)
        self.process.wait()
        self._group_gone(10)

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def log_text(self):
        try:
            return pathlib.Path(self.log).read_text(errors="replace")
        except (OSError, AttributeError):
            return ""

    def exit_description(self):
        return exit_text(None if self.process is None else self.process.returncode)

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        began = time.time()
        try:
            self.process.wait(timeout=30)
            if self._group_gone(30 - (time.time() - began)):
                return
        except subprocess.TimeoutExpired:
            pass
        self._signal(signal.SIGKILL)
        self.process.wait()
        self._group_gone(10)


def config_problem(binary, config, workdir, timeout=60):
    """None when `patchbay config check` accepts the file, else what it printed."""
    check = subprocess.run([binary, "config", "check", "--config", config], cwd=workdir, capture_output=True, text=True,
                           timeout=timeout)
    return None if check.returncode == 0 else (check.stdout + check.stderr).strip()


def write_loopback_config(binary, workdir, text_for):
    """Writes workdir/patchbay.yaml from text_for(private): text_for(True) should put
    `allowPrivateNetworks: true` on its loopback targets; text_for(False) is written instead when
    this build does not know the key. SystemExit when `patchbay config check` refuses it."""
    path = os.path.join(workdir, "patchbay.yaml")
    for private in (True, False):
        pathlib.Path(path).write_text(text_for(private))
        problem = config_problem(binary, path, workdir, timeout=30)
        if problem is None:
            return path
        if not private or "allowPrivateNetworks" not in problem:
            raise SystemExit(f"config check failed:\n{problem}")
    return path


def http_call(port, method, path, body=None, headers=None, timeout=10):
    """One request to 127.0.0.1:port on a new connection: (status, body bytes). Raises OSError or
    http.client.HTTPException when there is no answer (`http_request` never raises)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body, headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def parse_metrics(text):
    """{(name, frozenset(labels)): value} from Prometheus text."""
    values = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.match(r"^([A-Za-z_:][\w:]*)(\{[^}]*\})?\s+(\S+)", line)
        if not match:
            continue
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        try:
            values[(match.group(1), labels)] = float(match.group(3))
        except ValueError:
            pass
    return values


def metrics(port, timeout=30):
    """GET /metrics parsed (`parse_metrics`), or {} when it fails."""
    try:
        status, body = http_call(port, "GET", "/metrics", timeout=timeout)
    except (OSError, http.client.HTTPException):
        return {}
    return parse_metrics(body.decode(errors="replace")) if status == 200 else {}


def metric_sum(values, name, **labels):
    """The sum of the `name` series whose labels include these."""
    wanted = set(labels.items())
    return sum(value for (metric, have), value in values.items() if metric == name and wanted <= set(have))


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


class PostgresServer:
    """A throwaway PostgreSQL server that the test owns, started as scripts/with-postgres starts one
    (Debian's binaries under /usr/lib/postgresql/<version>/bin, run as the postgres user when we are
    root, trust auth, fsync off, loopback only): the test knows its data directory and postmaster,
    so it can pause it (SIGSTOP of the postmaster and its children), resume, restart and stop it
    under a running Patchbay. `url(database)` is a URL for `store_section`."""

    def __init__(self, port=None):
        self.bin = self.binaries()
        if self.bin is None:
            raise SystemExit("PostgreSQL: no server binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
        import tempfile
        self.port = port or free_port()
        self.base = tempfile.mkdtemp(prefix="patchbay-pg-")
        self.data = os.path.join(self.base, "data")
        self.paused = []

    @staticmethod
    def binaries():
        """The newest /usr/lib/postgresql/<version>/bin holding initdb, or None."""
        found = [p for p in pathlib.Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()]
        found.sort(key=lambda p: [int(part) if part.isdigit() else 0 for part in p.parent.name.split(".")])
        return str(found[-1]) if found else None

    def _as_pg(self, args, **options):
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        options.setdefault("capture_output", True)
        options.setdefault("text", True)
        options.setdefault("timeout", 120)
        return subprocess.run(prefix + args, **options)

    def _check(self, result, what):
        if result.returncode != 0:
            raise SystemExit(f"PostgreSQL {what} failed: {result.stdout}{result.stderr}")

    def start(self):
        if os.geteuid() == 0:
            subprocess.run(["chown", "postgres:", self.base], check=True)
        os.chmod(self.base, 0o700)
        self._check(self._as_pg([f"{self.bin}/initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-N"]), "initdb")
        self.up()
        self.create_database("patchbay_test")
        return self

    def up(self):
        """Starts the server (again, after `down`) on the same port and data directory."""
        self.pg_ctl("-o", f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
                          "-c full_page_writes=off -c max_connections=300", "start")

    def down(self, mode="fast"):
        """`pg_ctl stop -m fast`: connections are closed, nothing is accepted until `up`."""
        self.pg_ctl("-m", mode, "stop")

    def url(self, database="patchbay_test"):
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}?sslmode=disable"

    def sql(self, statement, database="postgres", timeout=30):
        """Runs SQL with psql over the unix socket; returns its output (unaligned, tuples only)."""
        result = subprocess.run([f"{self.bin}/psql", "-h", self.base, "-p", str(self.port), "-U", "postgres", "-d", database,
                                 "-v", "ON_ERROR_STOP=1", "-Atc", statement], capture_output=True, text=True, timeout=timeout)
        self._check(result, f"SQL {statement[:60]!r}")
        return result.stdout.strip()

    def create_database(self, name):
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def postmaster_pid(self):
        return int(pathlib.Path(self.data, "postmaster.pid").read_text().split("\n", 1)[0])

    def pids(self):
        """The postmaster and its children (backends, checkpointer, walwriter, ...)."""
        postmaster = self.postmaster_pid()
        children = []
        for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[1] == str(postmaster):  # after the command: state, then the parent's pid
                children.append(int(stat.parent.name))
        return [postmaster] + sorted(children)

    def pause(self):
        """SIGSTOP of the postmaster and every child: connections stay open, nothing answers."""
        self.paused = self.pids()
        for pid in self.paused:
            os.kill(pid, signal.SIGSTOP)

    def resume(self):
        for pid in self.paused:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.paused = []

    def pg_ctl(self, *args):
        """pg_ctl on this server; the server's output goes to its log (a pipe would keep pg_ctl waiting)."""
        self._check(self._as_pg([f"{self.bin}/pg_ctl", "-D", self.data, "-l", os.path.join(self.base, "server.log"), "-w", "-t", "60",
                                 *args]), f"pg_ctl {' '.join(args)}")

    def restart(self, mode="fast"):
        """`pg_ctl restart -m fast`: the options of the first start are kept (postmaster.opts)."""
        self.pg_ctl("-m", mode, "restart")

    def log_text(self):
        try:
            return pathlib.Path(self.base, "server.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self):
        """Stops the server (immediately) and removes its files."""
        import shutil
        self.resume()
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._as_pg([f"{self.bin}/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.base, ignore_errors=True)
