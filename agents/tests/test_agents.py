#!/usr/bin/env python3
"""Tests for the agent side: agents/patchbay-report, agents/lib/*.sh and the SSM document
agents/ssm/patchbay-patch-baseline.yaml.

    python3 agents/tests/test_agents.py [--binary .build/debug/patchbay] [--require-binary] [-k NAME]

Without the patchbay binary the tests that need the real server are skipped (with the reason);
--require-binary makes that a failure. Everything listens on 127.0.0.1 only; every subprocess has a
timeout; servers are stopped at the end, also on failure. Standard library only (plus PyYAML when
installed, for the document tests). The last line is "N passed, M failed"; exit status 1 on failure.
"""
import argparse
import base64
import http.server
import json
import os
import pathlib
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
AGENTS = ROOT / "agents"
REPORT = AGENTS / "patchbay-report"
IMDS_LIB = AGENTS / "lib" / "imds.sh"
PATCHRUN_LIB = AGENTS / "lib" / "patchrun.sh"
DOCUMENT = AGENTS / "ssm" / "patchbay-patch-baseline.yaml"
EMBED = AGENTS / "ssm" / "embed.py"
TOKEN = "agent-test-token-0123456789abcdef"
REAL_CURL = shutil.which("curl")
NASTY = 'web "1" \\ <!channel> & <@U123>\nsecond line\ttab\rcr \x01\x1f\x7f é ✓'
# What the real server takes in a name: quotes, a backslash, a tab, <!channel>, non-ASCII. Other
# control characters (a newline) are refused by the server with a 400 naming the field.
NASTY_SERVER = 'web "1" \\ <!channel> & <@U123>\ttab é ✓'

try:
    import yaml  # PyYAML
except ImportError:  # pragma: no cover
    yaml = None


class Skip(Exception):
    pass


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def run(args, timeout=60, **kwargs):
    """subprocess.run with a timeout, text output, and the child's output captured."""
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kwargs)


def sh(script, env=None, timeout=60, cwd=None):
    return run(["sh", "-c", script], env=env, timeout=timeout, cwd=cwd)


def wait_until(predicate, timeout=15.0, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


# ---------------------------------------------------------------------------------------------
# Loopback servers
# ---------------------------------------------------------------------------------------------

class Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def answer(self, status, body=b"", headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)


class LoopbackServer:
    """A ThreadingHTTPServer on 127.0.0.1:0 with a state object shared with its handler."""

    def __init__(self, handler):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class MockIMDS(LoopbackServer):
    """IMDSv2: PUT /latest/api/token needs the TTL header (1-21600) and no X-Forwarded-For; every GET
    needs a token it issued (else 401). Tags answer 404 when disabled or absent."""

    def __init__(self, tags, instance_id="i-0mock0000000000001"):
        self.tags, self.instance_id, self.tags_enabled = dict(tags), instance_id, True
        self.tokens, self.requests = set(), []
        super().__init__(self.Handler)

    class Handler(Quiet):
        def do_PUT(self):
            imds = self.server.owner
            with imds.lock:
                imds.requests.append(("PUT", self.path, dict(self.headers)))
            if self.path != "/latest/api/token":
                return self.answer(404)
            if "X-Forwarded-For" in self.headers:
                return self.answer(403)
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.answer(400, "missing or invalid X-aws-ec2-metadata-token-ttl-seconds")
            token = secrets.token_urlsafe(24)
            with imds.lock:
                imds.tokens.add(token)
            self.answer(200, token, {"X-aws-ec2-metadata-token-ttl-seconds": ttl})

        def do_GET(self):
            imds = self.server.owner
            with imds.lock:
                imds.requests.append(("GET", self.path, dict(self.headers)))
            if self.headers.get("X-aws-ec2-metadata-token") not in imds.tokens:
                return self.answer(401)
            if self.path == "/latest/meta-data/instance-id":
                return self.answer(200, imds.instance_id)
            prefix = "/latest/meta-data/tags/instance"
            if self.path.startswith(prefix):
                if not imds.tags_enabled:
                    return self.answer(404)
                key = self.path[len(prefix):].lstrip("/")
                if not key:
                    return self.answer(200, "\n".join(imds.tags))
                if key in imds.tags:
                    return self.answer(200, imds.tags[key])
            self.answer(404)


class Recorder(LoopbackServer):
    """The webhook target's receiver: records each POST (headers and JSON body), answers 200."""

    def __init__(self):
        self.received = []
        super().__init__(self.Handler)

    class Handler(Quiet):
        def do_POST(self):
            recorder = self.server.owner
            raw = self.body()
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            with recorder.lock:
                recorder.received.append({"path": self.path, "headers": dict(self.headers), "json": parsed, "raw": raw})
            self.answer(200, b"{}", {"Content-Type": "application/json"})

    def events(self, predicate=lambda event: True):
        with self.lock:
            return [r["json"] for r in self.received if isinstance(r["json"], dict) and predicate(r["json"])]

    def wait_for(self, predicate, count=1, timeout=20):
        return wait_until(lambda: (lambda found: found if len(found) >= count else None)(self.events(predicate)), timeout) \
            or self.events(predicate)


class FaultProxy(LoopbackServer):
    """Stands in front of Patchbay: answers from a script of canned responses while it has any, then
    forwards to the upstream (or, without one, answers 202). Records every request."""

    def __init__(self, upstream=None):
        self.upstream, self.script, self.requests = upstream, [], []
        super().__init__(self.Handler)

    def reset(self, script=()):
        with self.lock:
            self.script, self.requests = list(script), []

    class Handler(Quiet):
        def do_POST(self):
            proxy = self.server.owner
            body = self.body()
            with proxy.lock:
                proxy.requests.append({"path": self.path, "headers": dict(self.headers), "body": body, "at": time.time()})
                canned = proxy.script.pop(0) if proxy.script else None
            if canned is not None:
                return self.answer(canned["status"], json.dumps(canned.get("body", {})),
                                   dict({"Content-Type": "application/json"}, **canned.get("headers", {})))
            if proxy.upstream is None:
                return self.answer(202, '{"id":"evt_mock","deliveries":0}', {"Content-Type": "application/json"})
            forward = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
            request = urllib.request.Request(proxy.upstream + self.path, data=body, method="POST", headers=forward)
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status, headers, payload = response.status, response.headers, response.read()
            except urllib.error.HTTPError as error:
                status, headers, payload = error.code, error.headers, error.read()
            keep = {k: v for k, v in headers.items() if k.lower() in ("content-type", "idempotent-replayed", "retry-after")}
            with proxy.lock:
                proxy.requests[-1]["status"] = status
            self.answer(status, payload, keep)


class Patchbay:
    """The real `patchbay serve` with a webhook target pointing at the recorder."""

    def __init__(self, binary, workdir, recorder_url):
        self.binary, self.workdir = binary, pathlib.Path(workdir)
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self.config = self.workdir / "patchbay.yaml"
        self.config.write_text(f"""server:
  listen: 127.0.0.1:0
  tokens: ["{TOKEN}"]
  drainDelay: 0s
store:
  sqlite: ./queue.db
delivery:
  retry: {{base: 100ms, cap: 1s, jitter: 0}}
  pollInterval: 100ms
targets:
  hook: {{kind: webhook, url: "{recorder_url}/hook", secret: "{secret}", allowPrivateNetworks: true, rate: {{perSecond: 100, burst: 100}}}}
routes:
  - targets: [hook]
""")
        self.log = self.workdir / "serve.log"
        self.process = None

    def start(self):
        with open(self.log, "w") as out:
            self.process = subprocess.Popen([str(self.binary), "serve", "--config", str(self.config), "--log-level", "info"],
                                            cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT)
        match = wait_until(lambda: re.search(r"patchbay listening on http://127\.0\.0\.1:(\d+)", self.log.read_text(errors="replace"))
                           or (self.process.poll() is not None and "exited"), timeout=60)
        if not match or match == "exited":
            raise RuntimeError(f"patchbay serve did not start:\n{self.log.read_text(errors='replace')[-3000:]}")
        self.url = f"http://127.0.0.1:{match.group(1)}"

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# Fixtures shared by the tests
# ---------------------------------------------------------------------------------------------

class Context:
    def __init__(self, binary, require_binary):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="patchbay-agents-test-"))
        self.binary, self.require_binary = binary, require_binary
        self.fakebin = self.tmp / "bin"
        self.fakebin.mkdir()
        self.curl_log = self.tmp / "curl-argv.log"
        self.aws_log = self.tmp / "aws-argv.log"
        self._write_fakes()
        self.imds = MockIMDS({"App": "App1", "Environment": "Production", "Name": "web-1"})
        self.recorder = None
        self.patchbay = None
        self.proxy = None
        self.server_error = None

    def _write_fakes(self):
        (self.fakebin / "curl").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{self.curl_log}"\nexec "{REAL_CURL}" "$@"\n')
        (self.fakebin / "rpm").write_text("""#!/bin/sh
# Fake rpm: one package installed long ago, two installed "now" (after any recorded start).
now=$(date +%s)
printf '1000000000\\told-package-1.0-1.amzn2023.noarch\\n'
printf '%s\\topenssl-3.0.8-1.amzn2023.0.14.x86_64\\n' "$now"
printf '%s\\tkernel-6.1.115-126.197.amzn2023.x86_64\\n' "$now"
""")
        (self.fakebin / "aws").write_text(f"""#!/bin/sh
# Fake AWS CLI: ssm get-parameter for the two Patchbay parameters.
printf '%s\\n' "$*" >> "{self.aws_log}"
name=""; decrypt=0
while [ $# -gt 0 ]; do
  case $1 in --name) name=$2; shift ;; --with-decryption) decrypt=1 ;; esac
  shift
done
if [ "$name" = "$FAKE_URL_NAME" ]; then printf '%s\\n' "$FAKE_URL_VALUE"; exit 0; fi
if [ "$name" = "$FAKE_TOKEN_NAME" ]; then
  if [ "$decrypt" -ne 1 ]; then echo "AQICAHencryptedblob"; exit 0; fi
  printf '%s\\n' "$FAKE_TOKEN_VALUE"; exit 0
fi
echo "An error occurred (ParameterNotFound) when calling the GetParameter operation" >&2
exit 254
""")
        for name in ("curl", "rpm", "aws"):
            (self.fakebin / name).chmod(0o755)

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PATCHBAY_", "SSM_", "AWS_"))}
        env.update({"PATH": f"{self.fakebin}:{env.get('PATH', '/usr/bin:/bin')}", "PATCHBAY_IMDS_URL": self.imds.url,
                    "LC_ALL": "C.UTF-8", "TMPDIR": str(self.tmp)})
        for proxy_var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
            env.pop(proxy_var, None)
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def server(self):
        """The real server behind a fault proxy; raises Skip when the binary is absent."""
        if self.server_error:
            raise RuntimeError(self.server_error)
        if self.patchbay is None:
            if not pathlib.Path(self.binary).is_file():
                message = f"no patchbay binary at {self.binary} (build it, or pass --binary)"
                if self.require_binary:
                    raise RuntimeError(message)
                raise Skip(message)
            try:
                self.recorder = Recorder()
                workdir = self.tmp / "server"
                workdir.mkdir()
                self.patchbay = Patchbay(self.binary, workdir, self.recorder.url)
                self.patchbay.start()
                self.proxy = FaultProxy(self.patchbay.url)
            except Exception as error:
                self.server_error = f"could not start the server: {error}"
                raise
        self.proxy.reset()
        return self.patchbay, self.proxy, self.recorder

    def close(self):
        for stop in (lambda: self.patchbay and self.patchbay.stop(), lambda: self.proxy and self.proxy.stop(),
                     lambda: self.recorder and self.recorder.stop(), self.imds.stop):
            try:
                stop()
            except Exception as error:  # keep stopping the rest
                print(f"cleanup: {error}", file=sys.stderr)
        shutil.rmtree(self.tmp, ignore_errors=True)


def report(ctx, *args, env=None, timeout=60, token=TOKEN, url=None):
    environment = ctx.env() if env is None else env
    if token is not None:
        environment["PATCHBAY_TOKEN"] = token
    if url is not None:
        environment["PATCHBAY_URL"] = url
    return run([REPORT, *args], env=environment, timeout=timeout)


def event_args(kind="started", instance="i-0test", name="web-1", window="mw-test", start=None, app="App1"):
    start = time.time() + 600 if start is None else start
    return ["--type", kind, "--app", app, "--environment", "Production", "--instance-id", instance,
            "--instance-name", name, "--window-id", window, "--window-start", iso(start), "--window-end", iso(start + 3600)]


def dry_run_json(ctx, *args):
    result = report(ctx, *args, "--dry-run", token=None)
    expect(result.returncode == 0, f"--dry-run exited {result.returncode}: {result.stderr}")
    return json.loads(result.stdout), result


TESTS = []


def test(needs=None):
    def register(fn):
        TESTS.append(fn)
        return fn
    return register


# ---------------------------------------------------------------------------------------------
# Static checks
# ---------------------------------------------------------------------------------------------

@test()
def shellcheck_clean(ctx):
    checker = shutil.which("shellcheck")
    if not checker:
        raise Skip("shellcheck is not installed (apt-get install -y shellcheck)")
    result = run([checker, "-s", "sh", REPORT, IMDS_LIB, PATCHRUN_LIB], timeout=120)
    expect(result.returncode == 0, f"shellcheck:\n{result.stdout}{result.stderr}")
    if yaml is None:
        return
    for step in shell_steps():
        path = ctx.tmp / f"step-{step['name']}.sh"
        path.write_text(render_step(step, document_defaults()))
        result = run([checker, "-s", "sh", path], timeout=120)
        expect(result.returncode == 0, f"shellcheck of step {step['name']}:\n{result.stdout}{result.stderr}")


@test()
def scripts_are_posix_sh(ctx):
    first = REPORT.read_text().split("\n", 1)[0]
    expect(first == "#!/bin/sh", f"patchbay-report starts with {first!r}")
    expect(os.access(REPORT, os.X_OK), "patchbay-report is not executable")
    for path in (REPORT, IMDS_LIB, PATCHRUN_LIB):
        result = run(["sh", "-n", path])
        expect(result.returncode == 0, f"sh -n {path}: {result.stderr}")
        text = path.read_text()
        for word in (r"\bjq\b", r"\bpython", r"(^|\s)\[\[\s", r"#!/bin/bash", r"(?m)^\s*(local|source)\s"):
            code = "\n".join(line for line in text.split("\n") if not line.lstrip().startswith("#"))
            expect(not re.search(word, code), f"{path.name} uses {word}")


@test()
def help_explains_everything(ctx):
    result = report(ctx, "--help", token=None)
    expect(result.returncode == 0, f"--help exited {result.returncode}")
    for option in ("--type", "--app", "--environment", "--instance-id", "--instance-name", "--window-id", "--window-start",
                   "--window-end", "--timezone", "--package", "--packages-file", "--reason", "--idempotency-key", "--url",
                   "--token-file", "--deadline", "--dry-run", "PATCHBAY_URL", "PATCHBAY_TOKEN", "Retry-After", "Exit status"):
        expect(option in result.stdout, f"--help does not mention {option}")


@test()
def usage_errors_exit_2(ctx):
    cases = [
        ([], "--type is required"),
        (event_args()[:2] + ["--environment", "P", "--window-start", "a", "--window-end", "b"], "--app is required"),
        (event_args(kind="exploded"), "--type must be one of"),
        (event_args() + ["--deadline", "soon"], "--deadline"),
        (event_args() + ["--token", TOKEN], "--token is not accepted"),
        (event_args() + ["--bogus"], "unknown argument"),
        (event_args() + ["--idempotency-key", "two\nlines"], "--idempotency-key"),
    ]
    for args, message in cases:
        result = report(ctx, *args, token=TOKEN, url="http://127.0.0.1:9")
        expect(result.returncode == 2, f"{args}: exit {result.returncode}, want 2 ({result.stderr})")
        expect(message in result.stderr, f"{args}: stderr lacks {message!r}: {result.stderr}")
    result = report(ctx, *event_args(), token=None, url="http://127.0.0.1:9")
    expect(result.returncode == 2 and "no token" in result.stderr, f"missing token: {result.returncode} {result.stderr}")


@test()
def json_escaping(ctx):
    every_control = "".join(chr(c) for c in range(1, 32)) + "\x7f"
    name = NASTY + every_control
    body, _ = dry_run_json(ctx, *event_args(name=name, app='App "1" \\'), "--timezone", "America/Los_Angeles",
                           "--package", 'pkg-"quoted"-1.0', "--package", "pkg\\back", "--reason", "line 1\nline 2\t<!here>",
                           "--detail", 'k"ey=va\nlue', "--type", "failed")
    expect(body["instance"]["name"] == name, f"name came back as {body['instance']['name']!r}")
    expect(body["app"] == 'App "1" \\', f"app {body['app']!r}")
    expect(body["type"] == "patch.failed", body["type"])
    expect(body["packages"] == ['pkg-"quoted"-1.0', "pkg\\back"], body["packages"])
    expect(body["details"] == {"reason": "line 1\nline 2\t<!here>", 'k"ey': "va\nlue"}, body["details"])
    expect(body["window"]["timezone"] == "America/Los_Angeles", body["window"])
    expect(set(body) <= {"type", "app", "environment", "instance", "window", "packages", "details"}, sorted(body))
    raw = report(ctx, *event_args(name=name), "--dry-run", token=None).stdout
    expect("\n" not in raw.rstrip("\n") and "\t" not in raw and "\r" not in raw, "raw control characters in the JSON")


@test()
def packages_file_and_limits(ctx):
    packages = ctx.tmp / "packages.txt"
    packages.write_bytes(b"openssl-3.0.8\r\n\n  curl-8.5.0  \nopenssl-3.0.8\nkernel-6.1")  # CRLF, blank, spaces, dup, no final newline
    body, _ = dry_run_json(ctx, *event_args(kind="completed"), "--packages-file", str(packages), "--package", "zlib-1.3")
    expect(body["packages"] == ["openssl-3.0.8", "curl-8.5.0", "kernel-6.1", "zlib-1.3"], body["packages"])
    body, result = dry_run_json(ctx, *event_args(kind="completed"), "--packages-file", str(packages), "--max-packages", "2")
    expect(body["packages"] == ["openssl-3.0.8", "curl-8.5.0"] and body["details"] == {"packagesOmitted": 1}, body)
    expect("left out" in result.stderr, result.stderr)
    empty = ctx.tmp / "empty.txt"
    empty.write_text("")
    body, _ = dry_run_json(ctx, *event_args(kind="completed"), "--packages-file", str(empty))
    expect(body["packages"] == [], body)
    environment = ctx.env()
    result = run([REPORT, *event_args(kind="completed"), "--packages-file", "-", "--dry-run"], env=environment,
                 input="a-1\nb-2\n", timeout=30)
    expect(json.loads(result.stdout)["packages"] == ["a-1", "b-2"], result.stdout)


@test()
def derived_idempotency_key(ctx):
    _, first = dry_run_json(ctx, *event_args())
    _, second = dry_run_json(ctx, *event_args())
    _, other = dry_run_json(ctx, *event_args(kind="completed"))
    key = re.search(r"Idempotency-Key: (\S+)", first.stderr).group(1)
    expect(key == re.search(r"Idempotency-Key: (\S+)", second.stderr).group(1), "same report, different keys")
    expect(key != re.search(r"Idempotency-Key: (\S+)", other.stderr).group(1), "started and completed share a key")
    expect("mw-test" in key and "i-0test" in key and len(key) <= 200, key)
    _, long_one = dry_run_json(ctx, *event_args(instance="i-" + "x" * 300, name=NASTY))
    long_key = re.search(r"Idempotency-Key: (\S+)", long_one.stderr).group(1)
    expect(len(long_key) <= 200 and re.fullmatch(r"[A-Za-z0-9._:@/+=,_-]+", long_key), long_key)


def cut(value, limit):
    """What Patchbay takes for a value over its limit: the first limit-1 characters and an ellipsis."""
    return value if len(value) <= limit else value[:limit - 1] + "\u2026"


# EC2 tag values hold 256 characters; Patchbay takes 200 (EventValidator.maxNameLength) and 500 in a
# package. Multi-byte characters show that the cut counts characters, not bytes.
LONG_APP = "App-\u00c4" + "\u00e4" * 251                  # 256 characters, 2-byte
LONG_ENV = "\u74b0\u5883" * 128                             # 256 characters, 3-byte
LONG_NAME = "\U0001f642" * 10 + "web-" + "n" * 242          # 256 characters, 4-byte emoji first


@test()
def long_values_are_cut_by_character(ctx):
    window = "mw-" + "w" * 297
    instance = "i-" + "x" * 298
    exactly = "\u00e9" * 200  # 200 characters, 400 bytes: taken as it is
    packages = ["p" * 600, "\u00e9" * 501, "\u00e9" * 500, "p" * 599 + "q"]
    start = time.time() + 600
    args = ["--type", "completed", "--app", LONG_APP, "--environment", LONG_ENV, "--instance-id", instance,
            "--instance-name", LONG_NAME, "--window-id", window, "--window-start", iso(start), "--window-end", iso(start + 60)]
    for package in packages:
        args += ["--package", package]
    body, result = dry_run_json(ctx, *args)
    for got, value, what in ((body["app"], LONG_APP, "app"), (body["environment"], LONG_ENV, "environment"),
                             (body["instance"]["id"], instance, "instance.id"), (body["instance"]["name"], LONG_NAME, "instance.name"),
                             (body["window"]["id"], window, "window.id")):
        expect(got == cut(value, 200) and len(got) == 200, f"{what}: {len(got)} characters, {got[-5:]!r} (want the first 199 and \u2026)")
    # "p"*600 and "p"*599+"q" cut to the same name, which is sent once.
    expect(body["packages"] == [cut(packages[0], 500), cut(packages[1], 500), packages[2]],
           f"packages: {[len(p) for p in body['packages']]}")
    for option in ("--app", "--environment", "--instance-id", "--instance-name", "--window-id"):
        expect(f"warning: {option} is longer than Patchbay's 200 characters" in result.stderr, f"no warning for {option}: {result.stderr}")
    expect("2 package names longer than Patchbay's 500 characters" in result.stderr, result.stderr)
    body, result = dry_run_json(ctx, *event_args(name=exactly, app=exactly))
    expect(body["app"] == exactly and body["instance"]["name"] == exactly and "warning" not in result.stderr,
           f"a 200-character (400-byte) value was changed: {len(body['app'])} {result.stderr}")
    result = report(ctx, *event_args(), "--timezone", "A" * 65, "--dry-run", token=None)
    expect(result.returncode == 2 and "--timezone" in result.stderr, f"65-character zone: {result.returncode} {result.stderr}")


# ---------------------------------------------------------------------------------------------
# HTTP behaviour against a scripted mock (no binary needed)
# ---------------------------------------------------------------------------------------------

@test()
def retries_then_succeeds_mock(ctx):
    proxy = FaultProxy()
    try:
        proxy.reset([{"status": 503, "body": {"error": "draining"}, "headers": {"Retry-After": "1"}},
                     {"status": 429, "body": {"error": "rate_limited"}},
                     {"status": 502}])
        started = time.time()
        result = report(ctx, *event_args(), "--deadline", "60", url=proxy.url)
        elapsed = time.time() - started
        expect(result.returncode == 0, f"exit {result.returncode}: {result.stderr}")
        expect(len(proxy.requests) == 4, f"{len(proxy.requests)} attempts, want 4")
        expect(len({r["headers"].get("Idempotency-Key") for r in proxy.requests}) == 1, "the key changed between attempts")
        expect(len({r["body"] for r in proxy.requests}) == 1, "the body changed between attempts")
        expect(proxy.requests[1]["at"] - proxy.requests[0]["at"] >= 0.9, "Retry-After: 1 was not honoured")
        expect(elapsed < 30, f"took {elapsed:.1f}s")
        expect("retrying" in result.stderr and "accepted" in result.stdout, result.stderr + result.stdout)
        expect(all(r["path"] == "/v1/events" for r in proxy.requests), [r["path"] for r in proxy.requests])
    finally:
        proxy.stop()


@test()
def client_error_not_retried_mock(ctx):
    proxy = FaultProxy()
    try:
        proxy.reset([{"status": 400, "body": {"error": "invalid_event", "message": "window.end: must be after \"start\"",
                                              "problems": [{"field": "window.end", "message": "must be after start"}]}}])
        result = report(ctx, *event_args(), url=proxy.url)
        expect(result.returncode == 3, f"exit {result.returncode}, want 3")
        expect(len(proxy.requests) == 1, f"{len(proxy.requests)} attempts, want 1")
        expect("HTTP 400 invalid_event: window.end: must be after \"start\"" in result.stderr, result.stderr)
    finally:
        proxy.stop()


@test()
def deadline_on_connection_errors(ctx):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the with block ends: connections are refused
    started = time.time()
    result = report(ctx, *event_args(), "--deadline", "3", url=f"http://127.0.0.1:{port}", timeout=60)
    expect(result.returncode == 1, f"exit {result.returncode}, want 1: {result.stderr}")
    expect("gave up after" in result.stderr, result.stderr)
    expect(time.time() - started < 20, "the deadline was not kept")


@test()
def token_never_on_a_command_line(ctx):
    proxy = FaultProxy()
    try:
        token_file = ctx.tmp / "token"
        token_file.write_text(TOKEN + "\r\n")
        token_file.chmod(0o600)
        ctx.curl_log.write_text("")
        environment = ctx.env(PATCHBAY_URL=proxy.url)
        result = run([REPORT, *event_args(), "--token-file", token_file], env=environment, timeout=60)
        expect(result.returncode == 0, f"exit {result.returncode}: {result.stderr}")
        expect(proxy.requests[0]["headers"].get("Authorization") == f"Bearer {TOKEN}", proxy.requests[0]["headers"])
        argv = ctx.curl_log.read_text()
        expect(argv.strip(), "the curl wrapper was not used")
        expect(TOKEN not in argv and "Authorization" not in argv, f"token on curl's command line: {argv}")
        expect(TOKEN not in result.stdout + result.stderr, "the token was printed")
    finally:
        proxy.stop()


# ---------------------------------------------------------------------------------------------
# IMDSv2 and the helper library
# ---------------------------------------------------------------------------------------------

def lib_sh(ctx, body, **extra):
    script = f'. "{IMDS_LIB}"\n. "{PATCHRUN_LIB}"\n{body}'
    return sh(script, env=ctx.env(**extra), timeout=60)


@test()
def imds_token_and_tags(ctx):
    ctx.imds.requests.clear()
    result = lib_sh(ctx, 't=$(pb_imds_token) || exit 9\nprintf "%s|" "$(pb_imds_tag App "$t")" "$(pb_imds_tag Environment "$t")" '
                         '"$(pb_imds_get meta-data/instance-id "$t")"')
    expect(result.returncode == 0, f"exit {result.returncode}: {result.stderr}")
    expect(result.stdout == "App1|Production|i-0mock0000000000001|", result.stdout)
    puts = [r for r in ctx.imds.requests if r[0] == "PUT"]
    expect(puts and "X-aws-ec2-metadata-token-ttl-seconds" in puts[0][2], "no TTL header on the token PUT")
    gets = [r for r in ctx.imds.requests if r[0] == "GET"]
    expect(gets and all("X-aws-ec2-metadata-token" in r[2] for r in gets), "a GET without the token header")


@test()
def imds_requires_the_token(ctx):
    result = lib_sh(ctx, 'pb_imds_tag App "not-a-token"; echo "rc=$?"')
    expect(result.stdout.strip().endswith("rc=1"), f"a wrong token read a tag: {result.stdout}")
    code = run([REAL_CURL, "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{ctx.imds.url}/latest/meta-data/tags/instance/App"])
    expect(code.stdout == "401", f"mock answered {code.stdout} without a token")
    code = run([REAL_CURL, "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", f"{ctx.imds.url}/latest/api/token"])
    expect(code.stdout == "400", f"mock issued a token without a TTL header: {code.stdout}")


@test()
def tag_fallbacks(ctx):
    result = lib_sh(ctx, 't=$(pb_imds_token)\nprintf "%s|" "$(pb_tag_or_default Missing Fallback "$t")" '
                         '"$(pb_tag_or_default "" OnlyDefault "$t")" "$(pb_tag_or_default "bad key" Safe "$t")"')
    expect(result.stdout == "Fallback|OnlyDefault|Safe|", result.stdout)
    expect("instance tag Missing unreadable" in result.stderr, result.stderr)
    ctx.imds.tags_enabled = False
    try:
        result = lib_sh(ctx, 't=$(pb_imds_token)\npb_tag_or_default App FromParameter "$t"')
        expect(result.stdout == "FromParameter", f"tags disabled: {result.stdout}")
    finally:
        ctx.imds.tags_enabled = True
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    started = time.time()
    result = lib_sh(ctx, 't=$(pb_imds_token) || t=""\npb_tag_or_default App NoImds "$t"', PATCHBAY_IMDS_URL=dead)
    expect(result.stdout == "NoImds" and time.time() - started < 30, f"no IMDS: {result.stdout!r}")


@test()
def package_collection(ctx):
    start = int(time.time()) - 5
    result = lib_sh(ctx, f"pb_packages_since {start}", PATCHBAY_PACKAGE_SOURCE="rpm")
    expect(result.returncode == 0, result.stderr)
    expect(result.stdout.split("\n")[:-1] == ["kernel-6.1.115-126.197.amzn2023.x86_64", "openssl-3.0.8-1.amzn2023.0.14.x86_64"],
           result.stdout)
    log = ctx.tmp / "dpkg.log"
    log.write_text("2026-12-04 08:00:00 status installed old:amd64 1.0\n"
                   "2026-12-04 08:30:05 startup packages configure\n"
                   "2026-12-04 08:30:10 status half-configured libssl3:amd64 3.0.2-0ubuntu1.15\n"
                   "2026-12-04 08:30:11 status installed libssl3:amd64 3.0.2-0ubuntu1.15\n"
                   "2026-12-04 08:30:12 status installed libssl3:amd64 3.0.2-0ubuntu1.15\n"
                   "2026-12-04 08:31:00 status installed curl:amd64 7.81.0-1ubuntu1.16\n")
    result = lib_sh(ctx, 'pb_packages_since 0 "2026-12-04 08:30:00"', PATCHBAY_PACKAGE_SOURCE="dpkg", PATCHBAY_DPKG_LOG=log)
    expect(result.stdout.split("\n")[:-1] == ["curl:amd64 7.81.0-1ubuntu1.16", "libssl3:amd64 3.0.2-0ubuntu1.15"], result.stdout)


@test()
def utc_time_and_reboot_rule(ctx):
    for epoch in (0, 951782400, 1796373000, 1709164799, 4102444799):
        result = lib_sh(ctx, f"pb_utc_time {epoch}")
        expect(result.stdout == iso(epoch), f"{epoch}: {result.stdout} != {iso(epoch)}")
    empty, listed, states = ctx.tmp / "none.txt", ctx.tmp / "some.txt", ctx.tmp / "states.json"
    empty.write_text("")
    listed.write_text("openssl-3.0.8\n")
    states.write_text('{"openssl.x86_64:3.0.8-1": {"id": "openssl", "installedTime": 1.0, "state": "InstalledPendingReboot"}}')
    nowhere = ctx.tmp / "absent.json"
    check = 'if pb_reboot_pending "$1"; then echo yes; else echo no; fi'
    for packages, state_file, want in ((empty, nowhere, "no"), (listed, nowhere, "yes"), (empty, states, "yes")):
        result = sh(f'. "{PATCHRUN_LIB}"\nset -- "{packages}"\n{check}', env=ctx.env(PATCHBAY_PATCH_STATES_FILE=state_file))
        expect(result.stdout.strip() == want, f"{packages.name}/{state_file.name}: {result.stdout} (want {want})")


# ---------------------------------------------------------------------------------------------
# The SSM document
# ---------------------------------------------------------------------------------------------

def document():
    if yaml is None:
        raise Skip("PyYAML is not installed (pip install pyyaml)")
    return yaml.safe_load(DOCUMENT.read_text())


def shell_steps():
    return [s for s in document()["mainSteps"] if s["action"] == "aws:runShellScript"]


def document_defaults():
    return {name: str(spec.get("default", "")) for name, spec in document()["parameters"].items()}


def render_step(step, params):
    """What the SSM agent does: joins runCommand with newlines and replaces {{ Name }}."""
    script = "\n".join(step["inputs"]["runCommand"])
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: params[m.group(1)], script)


@test()
def document_parses_and_follows_schema_2_2(ctx):
    doc = document()
    expect(doc["schemaVersion"] == "2.2", f"schemaVersion {doc['schemaVersion']!r}")
    expect(len(DOCUMENT.read_bytes()) < 65536, "over the 64 KB document quota")
    for name, spec in doc["parameters"].items():
        expect(spec["type"] in ("String", "StringList"), f"{name}: type {spec['type']} (Command documents: String, StringList)")
        expect(spec.get("interpolationType", "ENV_VAR") == "ENV_VAR", f"{name}: interpolationType")
        if "allowedPattern" in spec:
            pattern = re.compile(spec["allowedPattern"])
            expect(pattern.search(str(spec.get("default", ""))), f"{name}: default does not match its allowedPattern")
        if "allowedValues" in spec:
            expect(spec["default"] in spec["allowedValues"], f"{name}: default not allowed")
    names = [s["name"] for s in doc["mainSteps"]]
    expect(names == ["reportStarted", "patch", "rebootIfNeeded", "rescan", "reportResult"], names)
    automation_only = {"isEnd", "maxAttempts", "nextStep", "onCancel", "isCritical", "timeoutSeconds", "onFailure", "finallyStep"}
    for step in doc["mainSteps"]:
        expect(set(step) <= {"action", "name", "inputs", "precondition"}, f"{step['name']}: step keys {sorted(step)}")
        expect(not (set(step) & automation_only), f"{step['name']}: flow control outside inputs")
        inputs = step["inputs"]
        expect(inputs.get("onFailure", "exit") in ("exit", "successAndExit"), f"{step['name']}: onFailure {inputs.get('onFailure')}")
        if "precondition" in step:
            expect(list(step["precondition"]) == ["StringEquals"], f"{step['name']}: precondition")
    finally_steps = [s["name"] for s in doc["mainSteps"] if s["inputs"].get("finallyStep")]
    expect(finally_steps == ["reportResult"], f"finallyStep on {finally_steps} (must be the last step only)")
    referenced = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", json.dumps(doc["mainSteps"])))
    expect(referenced <= set(doc["parameters"]), f"undeclared parameters: {referenced - set(doc['parameters'])}")
    expect("{{" not in json.dumps({k: v for k, v in doc.items() if k != "mainSteps"}), "{{ outside mainSteps")


@test()
def document_nests_run_patch_baseline_without_reboot(ctx):
    doc = document()
    steps = {s["name"]: s for s in doc["mainSteps"]}
    patch = steps["patch"]
    expect(patch["action"] == "aws:runDocument", patch["action"])
    inputs = patch["inputs"]
    expect(inputs["documentType"] == "SSMDocument" and inputs["documentPath"] == "AWS-RunPatchBaseline", inputs)
    expect(inputs["documentParameters"]["RebootOption"] == "NoReboot", "nested AWS-RunPatchBaseline must not reboot")
    expect(inputs["documentParameters"]["Operation"] == "{{Operation}}", inputs["documentParameters"])
    expect(inputs["onFailure"] == "exit", "a failed patch must skip to the finally step")
    expect(steps["rescan"]["inputs"]["documentParameters"] == {"Operation": "Scan", "RebootOption": "NoReboot",
                                                              "SnapshotId": "{{SnapshotId}}"}, steps["rescan"]["inputs"])
    expect(set(doc["parameters"]["Operation"]["allowedValues"]) == {"Install", "Scan"}, "Operation values")
    expect(set(doc["parameters"]["RebootOption"]["allowedValues"]) == {"RebootIfNeeded", "NoReboot"}, "RebootOption values")
    expect("exit 194" in render_step(steps["rebootIfNeeded"], document_defaults()), "the reboot step does not exit 194")
    for name in ("UrlParameterName", "TokenParameterName", "WindowId", "WindowMinutes", "AppTagKey", "EnvironmentTagKey",
                 "App", "Environment"):
        expect(name in doc["parameters"], f"parameter {name} missing")
    expect("--with-decryption" in PATCHRUN_LIB.read_text(), "Parameter Store values are not decrypted")


@test()
def document_never_sleeps_and_embeds_current_copies(ctx):
    check = run([sys.executable, EMBED, "--check"])
    expect(check.returncode == 0, f"embedded copies are stale: {check.stderr}")
    for step in shell_steps():
        script = render_step(step, document_defaults())
        outside = re.sub(r"<<'(\w+)'\n.*?\n\1\n", "", script, flags=re.S)
        expect(not re.search(r"\bsleep\b", outside), f"step {step['name']} sleeps")
        expect("Bearer" not in outside and TOKEN not in script, f"step {step['name']} carries a secret")
    first = render_step(shell_steps()[0], document_defaults())
    for marker, path in (("PATCHBAY_REPORT_EOF", REPORT), ("PATCHBAY_IMDS_EOF", IMDS_LIB), ("PATCHBAY_PATCHRUN_EOF", PATCHRUN_LIB)):
        match = re.search(rf"<<'{marker}'\n(.*?\n){marker}\n", first, flags=re.S)
        expect(match and match.group(1) == path.read_text(), f"embedded {path.name} differs from the file")


@test()
def document_parameters_are_shell_safe(ctx):
    doc = document()
    hostile = ['a"b', "a$b", "a`b`", "a\\b", "$(reboot)"]
    steps = "\n".join("\n".join(s["inputs"]["runCommand"]) for s in shell_steps())
    for name, spec in doc["parameters"].items():
        if f"{{{{{name}}}}}" not in steps:
            continue  # only used by runDocument inputs or preconditions
        if "allowedValues" in spec:
            continue
        pattern = re.compile(spec["allowedPattern"])
        for value in hostile:
            expect(not pattern.search(value), f"{name}: allowedPattern admits {value!r}, which would break the text fallback")


# --- the document's shell steps, run as the agent would, against the real server -------------

class Agent:
    """Runs the document's shell steps like the SSM agent: {{ }} interpolation, SSM_<name> for
    ENV_VAR parameters (new agents), SSM_COMMAND_ID, AWS_SSM_INSTANCE_ID, the orchestration dir."""

    def __init__(self, ctx, command_id, params, env_vars=True, command_id_env=True, url=None, env=None):
        self.ctx, self.command_id = ctx, command_id
        self.params = dict(document_defaults(), **params)
        self.env_vars, self.command_id_env, self.url = env_vars, command_id_env, url
        self.env = dict(env or {})  # overrides, e.g. FAKE_TOKEN_VALUE for a wrong token
        self.state_root = ctx.tmp / "state"

    def run(self, name):
        step = next(s for s in shell_steps() if s["name"] == name)
        workdir = self.ctx.tmp / "orchestration" / "i-0sim" / "document" / "orchestration" / self.command_id / name
        workdir.mkdir(parents=True, exist_ok=True)
        script = workdir / "_script.sh"
        script.write_text(render_step(step, self.params))
        script.chmod(0o700)
        extra = {"AWS_SSM_INSTANCE_ID": "i-0sim0000000000001", "AWS_SSM_REGION_NAME": "us-east-1",
                 "PATCHBAY_STATE_DIR": self.state_root, "PATCHBAY_PACKAGE_SOURCE": "rpm",
                 "PATCHBAY_PATCH_STATES_FILE": self.ctx.tmp / "no-states.json",
                 "FAKE_URL_NAME": self.params["UrlParameterName"], "FAKE_URL_VALUE": self.url,
                 "FAKE_TOKEN_NAME": self.params["TokenParameterName"], "FAKE_TOKEN_VALUE": TOKEN}
        if self.command_id_env:
            extra["SSM_COMMAND_ID"] = self.command_id
        if self.env_vars:
            for key, spec in document()["parameters"].items():
                if spec.get("interpolationType") == "ENV_VAR":
                    extra[f"SSM_{key}"] = self.params[key]
        extra.update(self.env)
        return run(["sh", "-c", script], env=self.ctx.env(**extra), cwd=workdir, timeout=120)


@test()
def document_steps_report_started_and_completed(ctx):
    patchbay, proxy, recorder = ctx.server()
    ctx.aws_log.write_text("")
    agent = Agent(ctx, "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
                  {"WindowId": "mw-0123456789abcdef0", "WindowMinutes": "90", "ReportDeadlineSeconds": "60"}, url=proxy.url)
    result = agent.run("reportStarted")
    expect(result.returncode == 0, f"reportStarted exit {result.returncode}:\n{result.stdout}{result.stderr}")
    expect("accepted" in result.stdout, f"started not accepted:\n{result.stdout}{result.stderr}")
    result = agent.run("rebootIfNeeded")
    expect(result.returncode == 194, f"rebootIfNeeded exit {result.returncode} (want 194: packages were installed)\n{result.stderr}")
    result = agent.run("rebootIfNeeded")  # the agent re-runs the step after the reboot
    expect(result.returncode == 0 and "rebooted" in result.stdout, f"re-run after the reboot: {result.returncode} {result.stdout}")
    result = agent.run("reportResult")
    expect(result.returncode == 0, f"reportResult exit {result.returncode}:\n{result.stdout}{result.stderr}")

    started = recorder.wait_for(lambda e: e.get("type") == "patch.started" and e.get("instance", {}).get("id") == "i-0sim0000000000001")
    completed = recorder.wait_for(lambda e: e.get("type") == "patch.completed" and e.get("instance", {}).get("id") == "i-0sim0000000000001")
    expect(len(started) == 1 and len(completed) == 1, f"received {len(started)} started, {len(completed)} completed")
    event = completed[0]
    expect((event["app"], event["environment"], event["instance"].get("name")) == ("App1", "Production", "web-1"),
           f"tags not used: {event['app']}, {event['environment']}, {event['instance']}")
    expect(event["window"].get("id") == "mw-0123456789abcdef0", event["window"])
    expect(sorted(event.get("packages", [])) == ["kernel-6.1.115-126.197.amzn2023.x86_64", "openssl-3.0.8-1.amzn2023.0.14.x86_64"],
           f"packages {event.get('packages')}")
    expect(event.get("details", {}).get("operation") == "Install", event.get("details"))
    keys = [r["headers"].get("Idempotency-Key") for r in proxy.requests]
    expect(keys == [f"{agent.command_id}/i-0sim0000000000001/reportStarted", f"{agent.command_id}/i-0sim0000000000001/reportResult"],
           f"idempotency keys {keys}")
    calls = ctx.aws_log.read_text()
    expect("get-parameter" in calls and "--with-decryption" in calls and "/patchbay/token" in calls, calls)
    expect(TOKEN not in calls, "the token appeared on the aws command line")

    # The agent runs the finally step again (e.g. after an agent restart): replayed, not queued twice.
    result = agent.run("reportResult")
    expect(result.returncode == 0 and "Idempotent-Replayed: true" in result.stdout, f"re-run: {result.stdout}{result.stderr}")
    time.sleep(1.5)
    expect(len(recorder.events(lambda e: e.get("type") == "patch.completed" and e.get("instance", {}).get("id") == "i-0sim0000000000001")) == 1,
           "the re-run queued a second completed event")


@test()
def document_failure_reports_failed_with_fallbacks(ctx):
    patchbay, proxy, recorder = ctx.server()
    ctx.imds.tags_enabled = False
    try:
        # An older agent: no SSM_<name> variables, no SSM_COMMAND_ID (the orchestration path gives it).
        agent = Agent(ctx, "9f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0",
                      {"App": "Fallback App", "Environment": "Staging", "ReportDeadlineSeconds": "60"},
                      env_vars=False, command_id_env=False, url=proxy.url)
        result = agent.run("reportStarted")
        expect(result.returncode == 0 and "accepted" in result.stdout, f"reportStarted: {result.stdout}{result.stderr}")
        expect("unreadable" in result.stderr, "no note about the tag fallback")
        # The patch step failed: onFailure exit skips rebootIfNeeded and rescan; the finally step runs.
        result = agent.run("reportResult")
        expect(result.returncode == 0, f"reportResult exit {result.returncode}: {result.stderr}")
    finally:
        ctx.imds.tags_enabled = True
    failed = recorder.wait_for(lambda e: e.get("type") == "patch.failed" and e.get("app") == "Fallback App")
    expect(len(failed) == 1, f"received {len(failed)} failed events")
    event = failed[0]
    expect(event["environment"] == "Staging", event["environment"])
    expect(event["window"].get("id") == f"ssm-{agent.command_id}", f"default window id: {event['window']}")
    expect("AWS-RunPatchBaseline (Operation=Install) failed" in event.get("details", {}).get("reason", ""), event.get("details"))


DEAD_URL = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused


@test()
def document_agent_outage_never_fails_the_command(ctx):
    """The fault suite's "agent outage": the steps run against a dead URL exit 0 and name the failure."""
    ctx.aws_log.write_text("")
    agent = Agent(ctx, "0a0a0a0a-dead-4000-8000-000000000001", {"ReportDeadlineSeconds": "2"}, url=DEAD_URL)
    result = agent.run("reportStarted")
    expect(result.returncode == 0, f"reportStarted exit {result.returncode}:\n{result.stderr}")
    for text in ("gave up after", "127.0.0.1:9", "patch.started was not reported"):
        expect(text in result.stderr, f"reportStarted log lacks {text!r}:\n{result.stderr}")
    result = agent.run("rebootIfNeeded")  # patching goes on: the packages are listed, the reboot is asked for
    expect(result.returncode == 194, f"rebootIfNeeded exit {result.returncode}: {result.stdout}{result.stderr}")
    expect(agent.run("rebootIfNeeded").returncode == 0, "the re-run after the reboot failed")
    result = agent.run("reportResult")
    expect(result.returncode == 0, f"reportResult exit {result.returncode} (an outage failed the command):\n{result.stderr}")
    for text in ("gave up after", "127.0.0.1:9", "patch.completed was not reported (Patchbay unreachable", "ReportStrict=false"):
        expect(text in result.stderr, f"reportResult log lacks {text!r}:\n{result.stderr}")

    # The patch step failed (rebootIfNeeded skipped): patch.failed cannot be sent either; the step
    # still exits 0, because the failed patch step fails the command on its own.
    failed = Agent(ctx, "0a0a0a0a-dead-4000-8000-000000000002", {"ReportDeadlineSeconds": "1"}, url=DEAD_URL)
    expect(failed.run("reportStarted").returncode == 0, "reportStarted failed")
    result = failed.run("reportResult")
    expect(result.returncode == 0 and "patch.failed was not reported" in result.stderr and "patch step did not succeed" in result.stderr,
           f"reportResult after a failed patch: exit {result.returncode}:\n{result.stderr}")

    # ReportStrict=true brings the failing steps back (here through {{ }}, as on an older agent).
    strict = Agent(ctx, "0a0a0a0a-dead-4000-8000-000000000003", {"ReportDeadlineSeconds": "1", "ReportStrict": "true"},
                   env_vars=False, url=DEAD_URL)
    result = strict.run("reportStarted")
    expect(result.returncode == 1 and "ReportStrict=true" in result.stderr, f"strict reportStarted: exit {result.returncode}\n{result.stderr}")
    expect(strict.run("rebootIfNeeded").returncode == 194, "strict: rebootIfNeeded did not run the patch follow-up")
    expect(strict.run("rebootIfNeeded").returncode == 0, "strict: the re-run after the reboot failed")
    result = strict.run("reportResult")
    expect(result.returncode == 1 and "patch.completed was not reported" in result.stderr, f"strict reportResult: exit {result.returncode}")


@test()
def document_refusals_and_unreadable_parameters_never_fail_the_command(ctx):
    patchbay, proxy, recorder = ctx.server()
    fast = {"ReportDeadlineSeconds": "2"}
    # A wrong token: the real server answers 401.
    agent = Agent(ctx, "0b0b0b0b-0401-4000-8000-000000000001", fast, url=proxy.url,
                  env={"FAKE_TOKEN_VALUE": "wrong-token-0123456789abcdef"})
    for step, event in (("reportStarted", "patch.started"), ("reportResult", "patch.failed")):
        result = agent.run(step)
        expect(result.returncode == 0, f"wrong token: {step} exit {result.returncode}:\n{result.stderr}")
        expect("HTTP 401 unauthorized" in result.stderr and f"{event} was not reported" in result.stderr,
               f"wrong token: {step} log:\n{result.stderr}")
        expect("wrong-token" not in result.stdout + result.stderr, "the token was printed")
    # Patchbay answers 500 until the deadline, then 400 invalid_event.
    agent = Agent(ctx, "0b0b0b0b-0500-4000-8000-000000000002", fast, url=proxy.url)
    proxy.reset([{"status": 500, "body": {"error": "internal"}}] * 50)
    result = agent.run("reportStarted")
    expect(result.returncode == 0 and "HTTP 500" in result.stderr and "gave up after" in result.stderr,
           f"500s: exit {result.returncode}:\n{result.stderr}")
    expect(agent.run("rebootIfNeeded").returncode == 194, "500s: patching did not go on")
    proxy.reset([{"status": 400, "body": {"error": "invalid_event", "message": "app: is longer than 200 characters"}}])
    result = agent.run("reportResult")
    expect(result.returncode == 0 and "HTTP 400 invalid_event: app: is longer" in result.stderr,
           f"400: exit {result.returncode}:\n{result.stderr}")
    # Parameter Store unreadable (no such parameter, or no ssm:GetParameter / kms:Decrypt).
    agent = Agent(ctx, "0b0b0b0b-0254-4000-8000-000000000003", fast, url=proxy.url, env={"FAKE_TOKEN_NAME": "/not/this/one"})
    for step in ("reportStarted", "reportResult"):
        result = agent.run(step)
        expect(result.returncode == 0 and "cannot read Parameter Store parameter /patchbay/token" in result.stderr,
               f"unreadable token parameter: {step} exit {result.returncode}:\n{result.stderr}")
    # ReportStrict=true: the refusal fails the step again (exit 3, as patchbay-report's).
    agent = Agent(ctx, "0b0b0b0b-0401-4000-8000-000000000004", dict(fast, ReportStrict="true"), url=proxy.url,
                  env={"FAKE_TOKEN_VALUE": "wrong-token-0123456789abcdef"})
    expect(agent.run("reportStarted").returncode == 3, "strict: a 401 did not fail reportStarted")
    result = agent.run("reportResult")
    expect(result.returncode == 3 and "ReportStrict=true" in result.stderr, f"strict reportResult: exit {result.returncode}")


@test()
def document_without_app_or_environment_still_patches(ctx):
    saved = dict(ctx.imds.tags)
    ctx.imds.tags = {"Name": "web-untagged"}  # tags readable, but no App or Environment; parameters empty
    ctx.aws_log.write_text("")
    try:
        agent = Agent(ctx, "0c0c0c0c-0000-4000-8000-000000000001", {"ReportDeadlineSeconds": "2"}, url=DEAD_URL)
        result = agent.run("reportStarted")
        expect(result.returncode == 0 and "no app or environment" in result.stderr, f"reportStarted: {result.returncode}\n{result.stderr}")
        result = agent.run("rebootIfNeeded")
        expect(result.returncode == 194 and "2 packages installed" in result.stdout, f"rebootIfNeeded: {result.returncode} {result.stdout}")
        expect(agent.run("rebootIfNeeded").returncode == 0, "the re-run after the reboot failed")
        result = agent.run("reportResult")
        expect(result.returncode == 0, f"reportResult exit {result.returncode} (an untagged instance failed the command):\n{result.stderr}")
        expect("no app or environment; not reporting" in result.stderr, result.stderr)
        expect("get-parameter" not in ctx.aws_log.read_text(), "Parameter Store was read with nothing to report")
        # The patch step failed on an untagged instance: still nothing to report, still exit 0.
        agent = Agent(ctx, "0c0c0c0c-0000-4000-8000-000000000002", {"RebootOption": "NoReboot"}, url=DEAD_URL)
        expect(agent.run("reportStarted").returncode == 0, "reportStarted failed")
        result = agent.run("reportResult")
        expect(result.returncode == 0 and "not reporting" in result.stderr, f"after a failed patch: {result.returncode}\n{result.stderr}")
    finally:
        ctx.imds.tags = saved


@test()
def document_long_tags_are_cut_and_accepted(ctx):
    patchbay, proxy, recorder = ctx.server()
    saved = dict(ctx.imds.tags)
    ctx.imds.tags = {"App": LONG_APP, "Environment": LONG_ENV, "Name": LONG_NAME}
    try:
        agent = Agent(ctx, "0d0d0d0d-0256-4000-8000-000000000001", {"ReportDeadlineSeconds": "30"}, url=proxy.url)
        for step in ("reportStarted", "reportResult"):
            result = agent.run(step)
            expect(result.returncode == 0 and "accepted" in result.stdout, f"{step}: exit {result.returncode}\n{result.stdout}{result.stderr}")
            expect("warning: --app is longer than Patchbay's 200 characters" in result.stderr, f"{step}: no warning:\n{result.stderr}")
    finally:
        ctx.imds.tags = saved
    events = recorder.wait_for(lambda e: e.get("app") == cut(LONG_APP, 200), count=2)
    expect([e["type"] for e in events] == ["patch.started", "patch.failed"], [e["type"] for e in events])
    for event in events:
        expect(event["environment"] == cut(LONG_ENV, 200) and event["instance"]["name"] == cut(LONG_NAME, 200),
               f"{event['type']}: {event['environment'][-3:]!r} {event['instance']}")
    # patchbay-report on its own, straight to the server.
    result = report(ctx, *event_args(instance="i-0long", name=LONG_NAME, app=LONG_APP), url=patchbay.url)
    expect(result.returncode == 0, f"exit {result.returncode}: {result.stderr}")
    events = recorder.wait_for(lambda e: e.get("instance", {}).get("id") == "i-0long")
    expect(events and events[0]["instance"]["name"] == cut(LONG_NAME, 200) and events[0]["app"] == cut(LONG_APP, 200),
           f"arrived as {events and events[0]['instance']}")


# --- patchbay-report against the real server --------------------------------------------------

@test()
def started_then_completed_with_packages(ctx):
    patchbay, proxy, recorder = ctx.server()
    start = int(time.time())
    packages = ctx.tmp / "installed.txt"
    result = lib_sh(ctx, f'pb_packages_since {start - 1} > "{packages}"', PATCHBAY_PACKAGE_SOURCE="rpm")
    expect(result.returncode == 0, result.stderr)
    for kind, extra in (("started", []), ("completed", ["--packages-file", str(packages)])):
        result = report(ctx, *event_args(kind=kind, instance="i-0lifecycle", window="mw-lifecycle", start=start), *extra,
                        url=patchbay.url)
        expect(result.returncode == 0, f"{kind}: exit {result.returncode}: {result.stderr}")
    events = recorder.wait_for(lambda e: e.get("instance", {}).get("id") == "i-0lifecycle", count=2)
    expect([e["type"] for e in events] == ["patch.started", "patch.completed"], [e["type"] for e in events])
    expect(events[1]["packages"] == ["kernel-6.1.115-126.197.amzn2023.x86_64", "openssl-3.0.8-1.amzn2023.0.14.x86_64"],
           events[1]["packages"])


@test()
def hostile_name_arrives_intact(ctx):
    patchbay, proxy, recorder = ctx.server()
    app = 'App "quoted" <!channel>'
    result = report(ctx, *event_args(instance="i-0nasty", name=NASTY_SERVER, app=app), "--reason", "x", url=patchbay.url)
    expect(result.returncode == 0, f"exit {result.returncode}: {result.stderr}")
    events = recorder.wait_for(lambda e: e.get("instance", {}).get("id") == "i-0nasty")
    expect(events and events[0]["instance"]["name"] == NASTY_SERVER, f"name arrived as {events and events[0]['instance'].get('name')!r}")
    expect(events[0]["app"] == app, events[0]["app"])
    # A newline is escaped into the JSON, so the server parses the body and names the field
    # (a raw newline would have broken the JSON: "body: is not valid JSON").
    result = report(ctx, *event_args(instance="i-0newline", name="web-1\nFAKE", app=app), url=patchbay.url)
    expect(result.returncode == 3, f"exit {result.returncode}, want 3: {result.stderr}")
    expect("instance.name: must not contain control characters" in result.stderr, result.stderr)


@test()
def retried_503_then_202_real(ctx):
    patchbay, proxy, recorder = ctx.server()
    proxy.reset([{"status": 503, "body": {"error": "draining", "message": "shutting down"}, "headers": {"Retry-After": "1"}}])
    result = report(ctx, *event_args(instance="i-0retry"), url=proxy.url)
    expect(result.returncode == 0, f"exit {result.returncode}: {result.stderr}")
    expect(len(proxy.requests) == 2 and proxy.requests[1].get("status") == 202,
           f"attempts: {[(r.get('status')) for r in proxy.requests]}")
    expect("HTTP 503" in result.stderr and "(draining)" in result.stderr, result.stderr)
    events = recorder.wait_for(lambda e: e.get("instance", {}).get("id") == "i-0retry")
    expect(len(events) == 1, f"{len(events)} deliveries")


@test()
def invalid_event_400_not_retried_real(ctx):
    patchbay, proxy, recorder = ctx.server()
    start = time.time() + 600
    args = ["--type", "started", "--app", "App1", "--environment", "Production", "--instance-id", "i-0bad",
            "--window-start", iso(start), "--window-end", iso(start - 60)]
    result = report(ctx, *args, url=proxy.url)
    expect(result.returncode == 3, f"exit {result.returncode}, want 3: {result.stderr}")
    expect(len(proxy.requests) == 1 and proxy.requests[0].get("status") == 400, f"{len(proxy.requests)} attempts")
    expect("HTTP 400 invalid_event" in result.stderr and "window" in result.stderr, result.stderr)
    result = report(ctx, *args[:-2], "--window-end", iso(start + 60), "--timezone", "PST", url=proxy.url)
    expect(result.returncode == 3 and "invalid_event" in result.stderr, f"PST: {result.returncode} {result.stderr}")


@test()
def wrong_token_401(ctx):
    patchbay, proxy, recorder = ctx.server()
    result = report(ctx, *event_args(instance="i-0unauth"), url=proxy.url, token="wrong-token-0123456789abcdef")
    expect(result.returncode == 3 and "HTTP 401 unauthorized" in result.stderr, f"{result.returncode}: {result.stderr}")
    expect(len(proxy.requests) == 1, "a 401 was retried")
    expect("wrong-token" not in result.stderr + result.stdout, "the token was printed")


@test()
def same_key_twice_queues_once(ctx):
    patchbay, proxy, recorder = ctx.server()
    args = [*event_args(kind="completed", instance="i-0twice", window="mw-twice"), "--package", "openssl-3.0.8",
            "--idempotency-key", "test-same-key-twice"]
    first = report(ctx, *args, url=proxy.url)
    second = report(ctx, *args, url=proxy.url)
    expect(first.returncode == 0 and second.returncode == 0, f"exits {first.returncode}, {second.returncode}: {second.stderr}")
    expect("Idempotent-Replayed" not in first.stdout, first.stdout)
    expect("Idempotent-Replayed: true" in second.stdout, f"second answer: {second.stdout}")
    expect(proxy.requests[1]["status"] == 202, proxy.requests[1].get("status"))
    ids = [re.search(r'"id"\s*:\s*"([^"]+)"', r.stdout) for r in (first, second)]
    expect(ids[0] and ids[1] and ids[0].group(1) == ids[1].group(1), f"different event ids: {first.stdout} / {second.stdout}")
    recorder.wait_for(lambda e: e.get("instance", {}).get("id") == "i-0twice")
    time.sleep(1.5)
    expect(len(recorder.events(lambda e: e.get("instance", {}).get("id") == "i-0twice")) == 1, "queued twice")
    conflict = report(ctx, *args, "--package", "another-1.0", url=proxy.url)
    expect(conflict.returncode == 3 and "idempotency_conflict" in conflict.stderr, f"{conflict.returncode}: {conflict.stderr}")


# ---------------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(ROOT / ".build" / "debug" / "patchbay"))
    parser.add_argument("--require-binary", action="store_true", help="fail (not skip) the server tests without the binary")
    parser.add_argument("-k", dest="only", help="run only tests whose name contains this")
    args = parser.parse_args()
    if not REAL_CURL:
        print("curl is required", file=sys.stderr)
        return 2
    os.chdir(ROOT)
    passed = failed = skipped = 0
    ctx = Context(pathlib.Path(args.binary).resolve(), args.require_binary)
    try:
        for fn in TESTS:
            if args.only and args.only not in fn.__name__:
                continue
            started = time.time()
            try:
                fn(ctx)
            except Skip as reason:
                skipped += 1
                print(f"SKIP {fn.__name__}: {reason}")
            except Exception as error:  # AssertionError and anything unexpected
                failed += 1
                detail = str(error) if isinstance(error, AssertionError) else traceback.format_exc()
                print(f"FAIL {fn.__name__}: {detail}")
            else:
                passed += 1
                print(f"ok   {fn.__name__} ({time.time() - started:.1f}s)")
    finally:
        if ctx.patchbay and failed:
            print(f"--- serve.log (tail) ---\n{ctx.patchbay.log.read_text(errors='replace')[-2000:]}")
        ctx.close()
    if skipped:
        print(f"{skipped} skipped")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
