#!/usr/bin/env python3
"""Hostile clients against a live `patchbay serve`, all at once, for --duration seconds:

  - 500 slowloris connections (a request line, headers or a body trickled a byte every few seconds),
  - POST /v1/events (and a signed /v1/relay/ci) with 10,000-deep nested JSON (and 100,000-deep),
  - invalid UTF-8 in bodies, header values and the path,
  - a 100 MB chunked body to /v1/events and to /v1/relay/ci, streamed, stopped as soon as the server
    answers or closes,
  - header floods (5,000 and 20,000 headers, a 1 MB header),

while GET /healthz is timed every 100 ms and the server's RSS (VmRSS) and open fds are read from
/proc each second. Prints a table and a verdict:

  PASS when /healthz p99 < 100 ms, no /healthz failure, RSS < 200 MB throughout, and the server is
  alive at the end and answers a valid event with 202. Otherwise FAIL with the reasons. Exit 0/1.

    Benchmarks/hostile-clients.py [--binary .build/debug/patchbay] [--duration 30]

Python 3 standard library only. Everything talks to 127.0.0.1; the server runs in a temporary
directory from a copy of the binary (so a rebuild does not disturb it) and is stopped at the end.
Not part of CI.
"""
import argparse
import base64
import collections
import hashlib
import hmac
import http.client
import json
import math
import multiprocessing
import os
import pathlib
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOKEN = "hostile-token-7c1e0a9b4d2f6e38"
HEALTHZ_P99_LIMIT_MS = 100.0
RSS_LIMIT_MB = 200.0
MB = 1024 * 1024


# --------------------------------------------------------------------------------------------
# Server process


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def whsec():
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def write_config(binary, workdir, text_for):
    """Writes the config, with `allowPrivateNetworks: true` on loopback targets if this build knows the key."""
    path = os.path.join(workdir, "patchbay.yaml")
    for private in (True, False):
        pathlib.Path(path).write_text(text_for(private))
        check = subprocess.run([binary, "config", "check", "--config", path], capture_output=True, text=True,
                               cwd=workdir, timeout=30)
        if check.returncode == 0:
            return path
        if not private or "allowPrivateNetworks" not in check.stdout + check.stderr:
            raise SystemExit(f"config check failed:\n{check.stdout}{check.stderr}")
    return path


class Server:
    def __init__(self, binary, workdir, config):
        self.binary, self.workdir, self.config = binary, workdir, config
        self.log = os.path.join(workdir, "serve.log")
        self.process = None
        self.port = None

    def start(self, timeout=60):
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [self.binary, "serve", "--config", self.config, "--listen", "127.0.0.1:0", "--log-level", "notice"],
                cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.log_text()
            match = re.search(r"patchbay listening on http://127\.0\.0\.1:(\d+)", text)
            if match:
                self.port = int(match.group(1))
                return
            if self.process.poll() is not None:
                raise SystemExit(f"patchbay exited {self.process.returncode} at start:\n{text[-3000:]}")
            time.sleep(0.05)
        raise SystemExit("patchbay did not log its port in time")

    def log_text(self):
        try:
            return pathlib.Path(self.log).read_text(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def exit_description(self):
        code = self.process.returncode
        if code is None:
            return "running"
        if code < 0:
            return f"killed by signal {signal.Signals(-code).name}"
        return f"exited {code}"

    def stop(self):
        if not self.alive():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def proc_sample(pid):
    """(rss_kb, hwm_kb, threads, fds) from /proc, or None when the process is gone."""
    try:
        fields = {}
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        kb = lambda name: int(fields.get(name, "0 kB").split()[0])
        return kb("VmRSS"), kb("VmHWM"), int(fields.get("Threads", "0")), fds
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------------------------
# Raw HTTP helpers (sockets, so malformed requests can be sent)


def request_bytes(method, path, body=b"", headers=(), content_length=True):
    if isinstance(path, str):
        path = path.encode()
    lines = [method.encode() + b" " + path + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    for name, value in headers:
        lines.append((name.encode() if isinstance(name, str) else name) + b": " +
                     (value.encode() if isinstance(value, str) else value))
    if content_length and body is not None:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


def read_status(sock, timeout):
    """Reads an answer's status line and headers: status int, or None if closed with no answer."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > 1 << 20:
            break
    match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return int(match.group(1)) if match else -1


def raw_exchange(port, data, timeout=15):
    """Sends data in slices, stopping early if the server answers or closes; returns (status or None,
    error or None, seconds until the answer)."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.setblocking(False)
            offset, stalled = 0, False
            while offset < len(data):
                readable, writable, _ = select.select([sock], [sock], [], timeout)
                if readable:
                    break  # an early answer (or a close): read it
                if not writable:
                    stalled = True  # the server stopped reading without closing or answering
                    break
                try:
                    offset += sock.send(data[offset:offset + 65536])
                except BlockingIOError:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    break  # the server may have answered before closing; read what it said
            try:
                status = read_status(sock, 2 if stalled else timeout)
            except ConnectionResetError:
                return None, "reset", time.monotonic() - started
            except socket.timeout:
                return None, ("server stopped reading, no answer" if stalled else "timeout"), time.monotonic() - started
            if status is None:
                return None, "closed without answer", time.monotonic() - started
            return status, None, time.monotonic() - started
    except OSError as error:
        return None, type(error).__name__, time.monotonic() - started


TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
              "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}


def socket_states(pid):
    """TCP states of the sockets the process holds open, counted (from /proc/net/tcp*)."""
    inodes = {}
    for name in ("tcp", "tcp6"):
        try:
            with open(f"/proc/net/{name}") as table:
                next(table)
                for line in table:
                    fields = line.split()
                    inodes[fields[9]] = TCP_STATES.get(fields[3], fields[3])
        except OSError:
            pass
    counts = collections.Counter()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                counts[inodes.get(link[8:-1], "other socket")] += 1
    except OSError:
        pass
    return dict(counts)


def sign(secret, message_id, timestamp, body_parts):
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode(), hashlib.sha256)
    for part in body_parts:
        mac.update(part)
    return "v1," + base64.b64encode(mac.digest()).decode()


def relay_headers(secret, body_parts, valid=True):
    message_id = "msg_" + uuid.uuid4().hex
    timestamp = str(int(time.time()))
    signature = sign(secret, message_id, timestamp, body_parts) if valid else "v1," + base64.b64encode(os.urandom(32)).decode()
    return [("Content-Type", "application/json"), ("webhook-id", message_id), ("webhook-timestamp", timestamp),
            ("webhook-signature", signature)]


def valid_event(window_id="mw-hostile"):
    return {"type": "patch.completed", "app": "Hostile", "environment": "Production",
            "instance": {"id": "i-0hostile", "name": "web-1"},
            "window": {"id": window_id, "start": "2030-01-01T00:30:00Z", "end": "2030-01-01T00:45:00Z"}}


AUTH = [("Authorization", f"Bearer {TOKEN}"), ("Content-Type", "application/json")]


# --------------------------------------------------------------------------------------------
# Attacks (run in a child process, one thread each)


class Stats:
    def __init__(self, name):
        self.name = name
        self.outcomes = collections.Counter()   # "case -> answer" counts
        self.slowest = {}                       # case -> slowest seconds
        self.notes = []
        self.extra = {}

    def record(self, case, status, error, seconds):
        answer = str(status) if status is not None else (error or "no answer")
        self.outcomes[f"{case} -> {answer}"] += 1
        self.slowest[case] = max(self.slowest.get(case, 0.0), seconds)

    def as_dict(self):
        return {"name": self.name, "outcomes": dict(self.outcomes), "slowest": self.slowest, "notes": self.notes,
                "extra": self.extra}


def slowloris(port, deadline, count, interval, secret, stats):
    """Keeps `count` connections open, each sending one more byte every `interval` seconds, never finishing."""
    def relay_head():
        # Signed for a 100,000-byte body that never arrives: the server must read the body to check it.
        headers = relay_headers(secret, [b"[" * 100_000])
        return request_bytes("POST", "/v1/relay/ci", None, headers + [("Content-Length", "100000")],
                             content_length=False)
    variants = [
        # (name, sent at once, trickled byte by byte, then endless filler)
        ("request-line", lambda: b"", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", b"a"),
        ("headers", lambda: b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X-Slow: ", b"a"),
        # With a valid token: a slow authenticated agent (without one the server answers 401 at once).
        ("events-body", lambda: b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: 100000\r\n\r\n",
         b"[", b"["),
        ("relay-body", relay_head, b"[", b"["),
    ]
    conns = {}  # socket -> [variant, position, opened_at]
    lifetimes = []
    answered = collections.Counter()
    opened = connect_failures = send_errors = 0
    max_open = 0
    max_opens = count * 40

    def open_one(index):
        nonlocal opened, connect_failures
        variant = variants[index % len(variants)]
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=3)
            sock.setblocking(False)
            head = variant[1]()
            if head:
                sock.send(head)
            conns[sock] = [variant, 0, time.monotonic()]
            opened += 1
        except OSError:
            connect_failures += 1

    def closed(sock, why):
        variant, _, opened_at = conns.pop(sock)
        lifetimes.append(time.monotonic() - opened_at)
        answered[f"{variant[0]} -> {why}"] += 1
        try:
            sock.close()
        except OSError:
            pass

    for index in range(count):
        if time.monotonic() >= deadline:
            break
        open_one(index)
    stats.extra["opened at start"] = len(conns)
    next_index = count
    next_tick = time.monotonic()
    while time.monotonic() < deadline:
        max_open = max(max_open, len(conns))
        # Watch for answers and closes until the next tick.
        wait = max(0.0, min(next_tick, deadline) - time.monotonic())
        socks = list(conns)
        if socks:
            readable, _, _ = select.select(socks, [], [], wait)
            for sock in readable:
                try:
                    data = sock.recv(4096)
                except (ConnectionResetError, BlockingIOError, OSError):
                    data = b""
                if not data:
                    closed(sock, "closed")
                else:
                    match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
                    closed(sock, f"answered {match.group(1).decode() if match else '?'}")
        else:
            time.sleep(wait)
        if time.monotonic() < next_tick:
            continue
        next_tick += interval
        for sock, state in list(conns.items()):
            variant, position, _ = state
            trickle = variant[2]
            byte = trickle[position:position + 1] if position < len(trickle) else variant[3]
            try:
                if sock.send(byte) == 1:
                    state[1] += 1
            except BlockingIOError:
                pass
            except OSError:
                send_errors += 1
                closed(sock, "send failed")
        # Replace connections the server closed, so `count` stay open.
        while len(conns) < count and opened < max_opens and time.monotonic() < deadline:
            open_one(next_index)
            next_index += 1
    stats.extra.update({
        "connections opened": opened, "connect failures": connect_failures, "max open at once": max_open,
        "still open at end (never closed by server)": len(conns), "send errors": send_errors,
        "closed by server": len(lifetimes),
        "lifetime of closed ones (s, min/median/max)": (
            "-" if not lifetimes else
            f"{min(lifetimes):.1f}/{sorted(lifetimes)[len(lifetimes) // 2]:.1f}/{max(lifetimes):.1f}"),
    })
    for key, value in answered.items():
        stats.outcomes[key] = value
    if conns and len(lifetimes) == 0:
        stats.notes.append(f"slowloris: the server closed none of the {len(conns)} trickling connections during "
                           f"the run (no idle/read timeout, no connection cap)")
    for sock in list(conns):
        try:
            sock.close()
        except OSError:
            pass


def nested(depth, kind="array"):
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def bad_bodies(port, deadline, pause, secret, stats):
    """Deep JSON and invalid UTF-8, one request at a time, cycling until the deadline."""
    event = json.dumps(valid_event()).encode()

    def event_with_details(raw):
        return event[:-1] + b', "details": {"x": ' + raw + b"}}"

    def event_with_app(raw):
        return event.replace(b'"Hostile"', b'"' + raw + b'"', 1)

    cases = [
        ("deep array 10k", "/v1/events", nested(10_000), AUTH),
        ("deep object 10k", "/v1/events", nested(10_000, "object"), AUTH),
        ("deep details 10k", "/v1/events", event_with_details(nested(10_000, "object")), AUTH),
        ("deep unclosed 10k", "/v1/events", b"[" * 10_000, AUTH),
        ("deep array 100k", "/v1/events", nested(100_000), AUTH),
        ("deep details 10k, relay signed", "/v1/relay/ci", event_with_details(nested(10_000)), None),
        ("utf8 0xff in app", "/v1/events", event_with_app(b"\xff\xfe"), AUTH),
        ("utf8 overlong", "/v1/events", event_with_app(b"\xc0\xaf"), AUTH),
        ("utf8 surrogate", "/v1/events", event_with_app(b"\xed\xa0\x80"), AUTH),
        ("utf8 truncated", "/v1/events", event_with_app(b"web\xe2\x82"), AUTH),
        ("utf8 in key", "/v1/events", event.replace(b'"app"', b'"a\xffp"', 1), AUTH),
        ("random bytes", "/v1/events", bytes(range(256)) * 16, AUTH),
        ("utf8 0xff, relay signed", "/v1/relay/ci", event_with_app(b"\xff\xfe"), None),
        ("utf8 in bearer", "/v1/events", event, [("Authorization", b"Bearer \xff\xfe" + TOKEN.encode()),
                                                 ("Content-Type", "application/json")]),
        ("utf8 in idempotency key", "/v1/events", event, AUTH + [("Idempotency-Key", b"\xff\xfe\xc0\xaf")]),
        ("utf8 in path", b"/v1/relay/\xff\xfe", event, [("Content-Type", "application/json")]),
        ("utf8 in webhook-id", "/v1/relay/ci", event, [("Content-Type", "application/json"), ("webhook-id", b"\xff"),
                                                        ("webhook-timestamp", str(int(time.time()))),
                                                        ("webhook-signature", "v1,AAAA")]),
    ]
    rounds = 0
    while time.monotonic() < deadline and rounds < 100_000:
        rounds += 1
        for case, path, body, headers in cases:
            if time.monotonic() >= deadline:
                break
            if headers is None:
                headers = relay_headers(secret, [body])
            status, error, seconds = raw_exchange(port, request_bytes("POST", path, body, headers))
            stats.record(case, status, error, seconds)
            time.sleep(pause)
    stats.extra["rounds"] = rounds


def header_floods(port, deadline, pause, stats):
    many = lambda n: [(f"X-Flood-{i}", f"value-{i}") for i in range(n)]
    cases = [
        ("5,000 headers GET /healthz", "GET", "/healthz", b"", many(5_000)),
        ("20,000 headers GET /healthz", "GET", "/healthz", b"", many(20_000)),
        ("5,000 headers POST /v1/events", "POST", "/v1/events", json.dumps(valid_event()).encode(), AUTH + many(5_000)),
        ("1 MB header GET /healthz", "GET", "/healthz", b"", [("X-Big", "a" * MB)]),
        ("1 MB Authorization POST /v1/events", "POST", "/v1/events", b"{}",
         [("Authorization", "Bearer " + "a" * MB)]),
        ("1 MB header POST /v1/relay/ci", "POST", "/v1/relay/ci", b"{}", [("webhook-signature", "v1," + "A" * MB)]),
        ("10 MB of headers GET /healthz", "GET", "/healthz", b"", [(f"X-Big-{i}", "b" * 65536) for i in range(160)]),
    ]
    rounds = 0
    while time.monotonic() < deadline and rounds < 100_000:
        rounds += 1
        for case, method, path, body, headers in cases:
            if time.monotonic() >= deadline:
                break
            status, error, seconds = raw_exchange(port, request_bytes(method, path, body, headers))
            stats.record(case, status, error, seconds)
            time.sleep(pause)
    stats.extra["rounds"] = rounds


def chunked_stream(port, path, deadline, total, secret, pause, stats):
    """Streams a `total`-byte chunked body, again and again; stops each one when the server answers or closes."""
    chunk = 64 * 1024
    prefix = b'{"type":"patch.completed","app":"Hostile","details":{"x":"'
    filler = b"a" * chunk
    first = prefix + filler[len(prefix):]
    frame_first = b"%x\r\n" % len(first) + first + b"\r\n"
    frame = b"%x\r\n" % chunk + filler + b"\r\n"
    rounds = 0
    while time.monotonic() < deadline and rounds < 1000:
        rounds += 1
        if path == "/v1/events":
            case, headers = f"{total // MB} MB chunked", AUTH
        else:
            valid = rounds % 2 == 1
            case = f"{total // MB} MB chunked, " + ("valid signature" if valid else "bad signature")
            parts = [first] + [filler] * (total // chunk - 1) if valid else []
            headers = relay_headers(secret, parts, valid=valid)
        head = request_bytes("POST", path, None, headers + [("Transfer-Encoding", "chunked")], content_length=False)
        started = time.monotonic()
        sent, status, ending = 0, None, None
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(head)
                sock.setblocking(False)
                pending, terminated = b"", False
                while ending is None:
                    if not pending:
                        if terminated:
                            ending = "whole body sent"
                            break
                        if sent >= total:
                            pending, terminated = b"0\r\n\r\n", True
                        else:
                            pending = frame_first if sent == 0 else frame
                            sent += chunk
                    if time.monotonic() >= deadline:
                        ending = "run ended mid-stream"
                        break
                    readable, writable, _ = select.select([sock], [sock], [], 10)
                    if readable:
                        ending = "server answered/closed mid-stream"
                    elif not writable:
                        ending = "server stopped reading (send stalled 10 s)"
                    else:
                        try:
                            pending = pending[sock.send(pending):]
                        except BlockingIOError:
                            pass
                        except (BrokenPipeError, ConnectionResetError):
                            ending = "server closed mid-stream"
                if ending != "run ended mid-stream":
                    try:
                        status = read_status(sock, 10)
                    except (socket.timeout, OSError) as error:
                        ending += f", then {type(error).__name__}"
        except OSError as error:
            ending = f"connect error {type(error).__name__}"
        seconds = time.monotonic() - started
        answer = str(status) if status is not None else "no answer"
        stats.outcomes[f"{case}: {ending} -> {answer}"] += 1
        stats.slowest[case] = max(stats.slowest.get(case, 0.0), seconds)
        key = f"{case}: MB sent before stop (max)"
        stats.extra[key] = max(stats.extra.get(key, 0.0), round(sent / MB, 1))
        if ending.startswith("whole body sent") and total > 16 * MB:
            stats.notes.append(f"{path}: all {total // MB} MB of a chunked body went in before the server answered "
                               f"({case}) -> {answer}")
        time.sleep(pause)
    stats.extra["streams"] = rounds


def attacker_main(port, duration, secret, options, results):
    deadline = time.monotonic() + duration
    jobs = []

    def run(name, function, *arguments):
        stats = Stats(name)

        def body():
            try:
                function(*arguments, stats)
            except Exception as error:  # report, never hang the run
                stats.notes.append(f"{name}: attacker error {type(error).__name__}: {error}")
        thread = threading.Thread(target=body, name=name, daemon=True)
        jobs.append((thread, stats))
        thread.start()

    run("slowloris", slowloris, port, deadline, options["slowloris"], options["trickle_interval"], secret)
    run("deep JSON + invalid UTF-8", bad_bodies, port, deadline, options["pause"], secret)
    run("header floods", header_floods, port, deadline, options["pause"])
    run("chunked /v1/events", chunked_stream, port, "/v1/events", deadline, options["chunked_bytes"], secret, 0.2)
    run("chunked /v1/relay/ci", chunked_stream, port, "/v1/relay/ci", deadline, options["chunked_bytes"], secret, 0.2)
    for thread, _ in jobs:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + 30)
    results.put([stats.as_dict() for _, stats in jobs])


# --------------------------------------------------------------------------------------------
# Measurement (main process)


def percentile(values, fraction):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


class HealthProbe(threading.Thread):
    def __init__(self, port, stop, period=0.1, timeout=2.0):
        super().__init__(name="healthz", daemon=True)
        self.port, self.stop_event, self.period, self.timeout = port, stop, period, timeout
        self.samples = []  # (t, ms or None, error)

    def run(self):
        start = time.monotonic()
        tick = 0
        while not self.stop_event.is_set() and tick < 10_000_000:
            began = time.monotonic()
            error = None
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                response.read()
                connection.close()
                if response.status != 200:
                    error = f"status {response.status}"
            except (OSError, http.client.HTTPException) as exc:
                error = type(exc).__name__
            elapsed = (time.monotonic() - began) * 1000
            self.samples.append((began - start, None if error else elapsed, error))
            tick += 1
            # Next slot on the 100 ms grid; slots missed while a probe was slow are skipped.
            next_at = start + math.ceil((time.monotonic() - start) / self.period + 1e-9) * self.period
            self.stop_event.wait(max(0.0, next_at - time.monotonic()))


class Sampler(threading.Thread):
    def __init__(self, server, stop, period=1.0):
        super().__init__(name="sampler", daemon=True)
        self.server, self.stop_event, self.period = server, stop, period
        self.samples = []  # (t, rss_kb, hwm_kb, threads, fds)
        self.died_at = None

    def run(self):
        start = time.monotonic()
        while not self.stop_event.is_set():
            sample = proc_sample(self.server.process.pid)
            t = time.monotonic() - start
            if sample is None or not self.server.alive():
                if self.died_at is None:
                    self.died_at = t
            else:
                self.samples.append((t,) + sample)
            self.stop_event.wait(self.period)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=str(ROOT / ".build/debug/patchbay"))
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of attack (default 30)")
    parser.add_argument("--slowloris", type=int, default=500, help="slowloris connections (default 500)")
    parser.add_argument("--trickle-interval", type=float, default=3.0, help="seconds between trickled bytes (default 3)")
    parser.add_argument("--chunked-mb", type=int, default=100, help="size of each chunked body (default 100)")
    parser.add_argument("--pause", type=float, default=0.05, help="pause between hostile requests per attacker (s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, database)")
    args = parser.parse_args()
    if not 1 <= args.duration <= 3600:
        parser.error("--duration must be 1..3600 seconds")

    workdir = tempfile.mkdtemp(prefix="patchbay-hostile-")
    server = None
    attacker = None
    stop = threading.Event()
    interrupted = []

    def on_signal(number, _frame):
        interrupted.append(number)
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)

    try:
        binary = copy_binary(args.binary, workdir)
        secret, target_secret = whsec(), whsec()
        unused_port = free_port()  # nothing listens there: deliveries fail and are retried

        def config(private):
            extra = ", allowPrivateNetworks: true" if private else ""
            return (f"server:\n"
                    f"  listen: 127.0.0.1:0\n"
                    f"  tokens: [\"{TOKEN}\"]\n"
                    f"  drainDelay: 0s\n"
                    f"store:\n  sqlite: ./queue.db\n"
                    f"delivery:\n  timeout: 2s\n  connectTimeout: 1s\n"
                    f"sources:\n  ci: {{kind: standard-webhooks, secret: \"{secret}\"}}\n"
                    f"targets:\n  hook: {{kind: webhook, url: \"http://127.0.0.1:{unused_port}/webhook/hostile\", "
                    f"secret: \"{target_secret}\"{extra}}}\n"
                    f"routes:\n  - match: {{app: Hostile}}\n    targets: [hook]\n    reminders: []\n"
                    f"    announceStart: false\n")

        config_path = write_config(binary, workdir, config)
        server = Server(binary, workdir, config_path)
        server.start()
        port = server.port
        print(f"patchbay pid {server.process.pid} on 127.0.0.1:{port}; attack {args.duration:.0f} s "
              f"(workdir {workdir})", flush=True)

        # Start the attacker before this process starts threads (fork).
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        options = {"slowloris": args.slowloris, "trickle_interval": args.trickle_interval,
                   "chunked_bytes": args.chunked_mb * MB, "pause": args.pause}
        probe = HealthProbe(port, stop)
        sampler = Sampler(server, stop)
        probe.start()
        sampler.start()
        time.sleep(2.0)  # baseline
        baseline = sampler.samples[-1] if sampler.samples else None
        attack_started = time.monotonic()
        attacker = context.Process(target=attacker_main, args=(port, args.duration, secret, options, results),
                                   name="attacker", daemon=True)
        attacker.start()
        attack_stats = None
        try:
            attack_stats = results.get(timeout=args.duration + 90)
        except Exception:
            attack_stats = [{"name": "attacker", "outcomes": {}, "slowest": {}, "extra": {},
                             "notes": ["attacker process did not report (timed out)"]}]
        attacker.join(timeout=10)
        if attacker.is_alive():
            attacker.kill()
            attacker.join(timeout=10)
        attack_ended = time.monotonic()
        # Give the server up to 10 s to release what the attack held (every client socket is closed now).
        settle_deadline = time.monotonic() + 10
        while time.monotonic() < settle_deadline and server.alive():
            sample = proc_sample(server.process.pid)
            if sample is None or baseline is None or sample[3] <= baseline[4] + 2:
                break
            time.sleep(0.5)
        stop.set()
        probe.join(timeout=5)
        sampler.join(timeout=5)
        after = proc_sample(server.process.pid) if server.alive() else None
        after_sockets = socket_states(server.process.pid) if server.alive() else {}

        # Final checks.
        final_status, final_error = None, None
        if server.alive():
            body = json.dumps(valid_event("mw-hostile-final")).encode()
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request("POST", "/v1/events", body, dict(AUTH))
                response = connection.getresponse()
                response.read()
                final_status = response.status
                connection.close()
            except (OSError, http.client.HTTPException) as exc:
                final_error = type(exc).__name__
            relay_status, _, _ = raw_exchange(port, request_bytes(
                "POST", "/v1/relay/ci", json.dumps(valid_event("mw-hostile-relay")).encode(),
                relay_headers(secret, [json.dumps(valid_event("mw-hostile-relay")).encode()])))
        else:
            relay_status = None

        report(probe, sampler, baseline, after, after_sockets, attack_stats, server, final_status, final_error, relay_status,
               attack_started, attack_ended)
        return exit_code_holder[0]
    except KeyboardInterrupt:
        print("interrupted; stopping", file=sys.stderr)
        return 1
    finally:
        stop.set()
        if attacker is not None and attacker.is_alive():
            attacker.kill()
            attacker.join(timeout=10)
        if server is not None:
            server.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


exit_code_holder = [1]


def report(probe, sampler, baseline, after, after_sockets, attack_stats, server, final_status, final_error, relay_status,
               attack_started, attack_ended):
    # Probe and sampler clocks start within a few ms of each other; the attack starts 2 s in.
    attack_from, attack_to = 2.0, 2.0 + (attack_ended - attack_started)
    during = [s for s in probe.samples if attack_from <= s[0] <= attack_to]
    latencies = [s[1] for s in during if s[1] is not None]
    failures = [s for s in probe.samples if s[1] is None]

    print()
    print("Per 5 s (t from probe start; attack from 2 s):")
    print(f"{'t (s)':>11} {'healthz n':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'fail':>5} "
          f"{'RSS MB':>8} {'fds':>6} {'threads':>7}")
    end = max([s[0] for s in probe.samples] + [s[0] for s in sampler.samples] + [0])
    bucket = 0.0
    while bucket <= end:
        probes = [s for s in probe.samples if bucket <= s[0] < bucket + 5]
        lat = [s[1] for s in probes if s[1] is not None]
        procs = [s for s in sampler.samples if bucket <= s[0] < bucket + 5]
        rss = max((s[1] for s in procs), default=0) / 1024
        fds = max((s[4] for s in procs), default=0)
        threads = max((s[3] for s in procs), default=0)
        print(f"{bucket:5.0f}-{bucket + 5:<5.0f} {len(probes):>9} {percentile(lat, .5):>8.1f} "
              f"{percentile(lat, .99):>8.1f} {max(lat, default=float('nan')):>8.1f} "
              f"{sum(1 for s in probes if s[1] is None):>5} {rss:>8.1f} {fds:>6} {threads:>7}")
        bucket += 5

    print()
    print("Attacks (answers seen, counts):")
    notes = []
    for entry in attack_stats or []:
        print(f"  [{entry['name']}]")
        for key, value in sorted(entry["outcomes"].items()):
            print(f"    {value:>6}  {key}")
        for key, value in entry["extra"].items():
            print(f"    {key}: {value}")
        slow = {k: v for k, v in entry["slowest"].items() if v > 1.0}
        for key, value in sorted(slow.items(), key=lambda item: -item[1]):
            print(f"    slowest answer, {key}: {value:.1f} s")
        notes.extend(entry["notes"])
        for key, value in entry["outcomes"].items():
            if entry["name"] == "slowloris":
                continue  # closing a trickling connection, with or without an answer, is what it should do
            answer = key.rsplit("-> ", 1)[-1]
            if answer.startswith("5"):
                notes.append(f"{entry['name']}: {value} x {key} (a 5xx to hostile input)")
            elif answer.startswith("2") and entry["name"] != "slowloris":
                notes.append(f"{entry['name']}: {value} x {key} (hostile input accepted)")
            elif not answer[:1].isdigit() and "run ended" not in key:
                notes.append(f"{entry['name']}: {value} x {key} (no HTTP answer)")

    rss_max = max((s[1] for s in sampler.samples), default=0) / 1024
    hwm = max((s[2] for s in sampler.samples), default=0) / 1024
    fds_max = max((s[4] for s in sampler.samples), default=0)
    p50, p99, worst = percentile(latencies, .5), percentile(latencies, .99), max(latencies, default=float("nan"))
    print()
    print("Summary:")
    print(f"  /healthz during attack: {len(during)} probes, p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms; "
          f"failures (whole run) {len(failures)}")
    if failures:
        first = failures[:5]
        print("  /healthz failures (first): " + ", ".join(f"t={s[0]:.1f}s {s[2]}" for s in first))
    stalls = [s for s in during if s[1] is not None and s[1] >= HEALTHZ_P99_LIMIT_MS]
    if stalls:
        print(f"  /healthz answers >= {HEALTHZ_P99_LIMIT_MS:.0f} ms: {len(stalls)} "
              f"(worst at t={max(stalls, key=lambda s: s[1])[0]:.1f}s)")
    if baseline:
        print(f"  baseline: RSS {baseline[1] / 1024:.1f} MB, fds {baseline[4]}, threads {baseline[3]}")
    print(f"  RSS max {rss_max:.1f} MB (VmHWM {hwm:.1f} MB), fds max {fds_max}")
    if after:
        print(f"  after the attack (clients all closed, up to 10 s later): RSS {after[0] / 1024:.1f} MB, "
              f"fds {after[3]}, threads {after[2]}, sockets {after_sockets}")
        if baseline and after[3] > baseline[4] + 2:
            notes.append(f"fds did not return to baseline after every client closed: {baseline[4]} -> {after[3]} "
                         f"(server sockets by TCP state: {after_sockets})")
    try:
        print(f"  machine load average (1/5/15 min) at the end: {' '.join(open('/proc/loadavg').read().split()[:3])} "
              f"on {os.cpu_count()} CPUs (other work inflates latency)")
    except OSError:
        pass
    print(f"  server: {server.exit_description()}; valid event -> "
          f"{final_status if final_status is not None else final_error}; signed relay event -> {relay_status}")
    if relay_status is not None and relay_status != 202:
        notes.append(f"a valid signed relay event after the attack answered {relay_status}, not 202")

    reasons = []
    if not latencies:
        reasons.append("no successful /healthz during the attack")
    elif p99 >= HEALTHZ_P99_LIMIT_MS:
        reasons.append(f"/healthz p99 {p99:.1f} ms >= {HEALTHZ_P99_LIMIT_MS:.0f} ms")
    if failures:
        reasons.append(f"{len(failures)} /healthz failures")
    if max(rss_max, hwm) >= RSS_LIMIT_MB:
        reasons.append(f"RSS reached {max(rss_max, hwm):.1f} MB >= {RSS_LIMIT_MB:.0f} MB")
    if not server.alive():
        died = f" at t={sampler.died_at:.1f}s" if sampler.died_at is not None else ""
        reasons.append(f"server {server.exit_description()}{died}")
        tail = server.log_text()[-2500:]
        print("  server log tail:\n    " + "\n    ".join(tail.splitlines()[-25:]))
    elif final_status != 202:
        reasons.append(f"valid event answered {final_status if final_status is not None else final_error}, not 202")

    if notes:
        print()
        print("Notes (problems that do not decide the verdict):")
        for note in dict.fromkeys(notes):
            print(f"  - {note}")
    print()
    if reasons:
        print("VERDICT: FAIL - " + "; ".join(reasons))
        exit_code_holder[0] = 1
    else:
        print(f"VERDICT: PASS - /healthz p99 {p99:.1f} ms, no failures, RSS max {max(rss_max, hwm):.1f} MB, "
              f"valid event 202")
        exit_code_holder[0] = 0


if __name__ == "__main__":
    sys.exit(main())
