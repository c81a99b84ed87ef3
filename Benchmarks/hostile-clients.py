#!/usr/bin/env python3
"""Hostile clients against a live `patchbay serve`, measured against the same server without them.
GET /healthz is timed every 100 ms, a valid event is POSTed to /v1/events every 100 ms (10/s, each
on a new connection, each probe in its own thread so a stall cannot hide), the admin signs in to the
console from 127.0.0.1 every 2 s, and the server's RSS and open fds are read from /proc each second,
through three phases:

  1. without attack (--baseline s, default 20), and
  2. an open-endpoint flood alone (--flood-phase s, default 20; 0 skips it): GET /metrics and
     GET /readyz at --flood-rate req/s in all (default 1,000) over 16 keep-alive connections;
     1 and 2 alternate in --slice s slices (default 5), so other work on the machine weighs on both
     alike (the first 0.5 s of each slice is left out of the figures); then
  3. the full attack (--duration s, default 30), all at once:
     - 500 slowloris connections (a request line, headers or a body trickled a byte every few seconds),
     - console slowloris: --console-rate (default 40) new connections a second, each POSTing
       /console/sign-in with Content-Length 200000 and trickling a byte every 3 s until the server
       closes it (they pile up if console bodies have no deadline),
     - a sign-in guessing flood: wrong-token sign-ins from 127.0.0.2 at 40/s,
     - the /metrics + /readyz flood of phase 2,
     - POST /v1/events (and a signed /v1/relay/ci) with 10,000-deep nested JSON (and 100,000-deep),
     - invalid UTF-8 in bodies, header values and the path,
     - a 100 MB chunked body to /v1/events and to /v1/relay/ci, streamed, stopped as soon as the
       server answers or closes,
     - header floods (5,000 and 20,000 headers, a 1 MB header).

The server runs with readTimeout 5s (--read-timeout) and maxConnections 1024 (--max-connections)
and an admin token, so the console is on. Prints a table per 5 s, the phases side by side
(/healthz and intake p50/p99/max and failures, admin sign-ins, flood rate), the attacks' answers,
and a verdict:

  PASS when, during the full attack, /healthz p99 < 100 ms and intake p99 < 1 s; no /healthz or
  intake failure and every admin sign-in succeeded in the flood and attack phases; intake p99 in
  the flood phase is within 2x of the phase without attack; RSS < 200 MB throughout; and the
  server is alive at the end and answers a valid event with 202. Otherwise FAIL with the reasons.
  Exit 0/1.

    Benchmarks/hostile-clients.py [--binary .build/debug/patchbay] [--duration 30]

Python 3 standard library only (and scripts/patchbay_harness.py). Everything talks to 127.0.0.1
(the guessing flood binds 127.0.0.2 as its source); the server runs in a temporary directory from
a copy of the binary (so a rebuild does not disturb it) and is stopped at the end. Not part of CI.
"""
import argparse
import base64
import collections
import hashlib
import hmac
import itertools
import json
import multiprocessing
import os
import pathlib
import re
import select
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "scripts"))
from patchbay_harness import (ROOT, ConsoleClient, Sampler, Server, copy_binary, free_port, http_request,  # noqa: E402
                              percentile, proc_sample, write_loopback_config)

TOKEN = "hostile-token-7c1e0a9b4d2f6e38"
ADMIN = "hostile-admin-token-5f0c2d8e7a913b46"
HEALTHZ_P99_LIMIT_MS = 100.0
INTAKE_P99_LIMIT_MS = 1000.0
FLOOD_INTAKE_FACTOR = 2.0
RSS_LIMIT_MB = 200.0
MB = 1024 * 1024


# --------------------------------------------------------------------------------------------
# Server process (the `patchbay serve` child is the harness's Server, on a port it picks; the binary's
# copy, the config check and the /proc sampling are the harness's too)


def whsec():
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


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


def ready(readers, writers, timeout):
    """select.select for any number of sockets: poll(2) has no FD_SETSIZE (1024) limit, which the
    attacker process passes with its slowloris connections. Returns (readable, writable)."""
    poller = select.poll()
    wanted = collections.defaultdict(int)  # fd -> events
    by_fd = {}
    for sock in readers:
        by_fd[sock.fileno()] = sock
        wanted[sock.fileno()] |= select.POLLIN
    for sock in writers:
        by_fd[sock.fileno()] = sock
        wanted[sock.fileno()] |= select.POLLOUT
    for fd, events in wanted.items():
        poller.register(fd, events)
    readable, writable = [], []
    for fd, events in poller.poll(None if timeout is None else max(0, int(timeout * 1000))):
        if wanted[fd] & select.POLLIN and events & (select.POLLIN | select.POLLERR | select.POLLHUP):
            readable.append(by_fd[fd])
        if wanted[fd] & select.POLLOUT and events & (select.POLLOUT | select.POLLERR | select.POLLHUP):
            writable.append(by_fd[fd])
    return readable, writable


def raw_exchange(port, data, timeout=15):
    """Sends data in slices, stopping early if the server answers or closes; returns (status or None,
    error or None, seconds until the answer)."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.setblocking(False)
            offset, stalled = 0, False
            while offset < len(data):
                readable, writable = ready([sock], [sock], timeout)
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
            readable, _ = ready(socks, [], wait)
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
                    readable, writable = ready([sock], [sock], 10)
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



def console_slowloris(port, deadline, rate, interval, stats):
    """Opens `rate` connections a second, each POSTing /console/sign-in with Content-Length 200000
    and then one byte every `interval` seconds, until the server closes it or the run ends."""
    head = (b"POST /console/sign-in HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 200000\r\n\r\n")
    conns = {}  # socket -> [opened_at, next byte at]
    answers = {}
    lifetimes = []
    ended = collections.Counter()
    opened = connect_failures = max_open = 0
    began = time.monotonic()

    def closed(sock, why):
        opened_at, _ = conns.pop(sock)
        lifetimes.append(time.monotonic() - opened_at)
        status = answers.pop(sock, None)
        ended[f"{why}" + (f" after answering {status}" if status else " with no answer")] += 1
        try:
            sock.close()
        except OSError:
            pass

    while time.monotonic() < deadline:
        now = time.monotonic()
        # Open the connections due by now (one every 1/rate s).
        while opened + connect_failures < (now - began) * rate and time.monotonic() < deadline:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=3)
                sock.sendall(head)
                sock.setblocking(False)
                conns[sock] = [time.monotonic(), time.monotonic() + interval]
                opened += 1
            except OSError:
                connect_failures += 1
        max_open = max(max_open, len(conns))
        socks = list(conns)
        if socks:
            readable, _ = ready(socks, [], 0.05)
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    closed(sock, "reset")
                    continue
                if not data:
                    closed(sock, "closed")
                elif sock not in answers:
                    match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
                    answers[sock] = match.group(1).decode() if match else "?"
        else:
            time.sleep(0.05)
        now = time.monotonic()
        for sock, state in list(conns.items()):
            if now >= state[1]:
                state[1] += interval
                try:
                    sock.send(b"a")
                except BlockingIOError:
                    pass
                except OSError:
                    closed(sock, "send failed")
    for key, value in ended.items():
        stats.outcomes[f"sign-in body trickle -> {key}"] = value
    stats.extra.update({
        "connections opened": opened, "connect failures": connect_failures, "max open at once": max_open,
        "still open at end (never closed by server)": len(conns), "closed by server": len(lifetimes),
        "lifetime of closed ones (s, min/median/max)": (
            "-" if not lifetimes else
            f"{min(lifetimes):.1f}/{sorted(lifetimes)[len(lifetimes) // 2]:.1f}/{max(lifetimes):.1f}"),
    })
    if conns and not lifetimes:
        stats.notes.append(f"console slowloris: the server closed none of the {len(conns)} trickled sign-in bodies "
                           f"(the oldest open {time.monotonic() - min(s[0] for s in conns.values()):.0f} s)")
    for sock in list(conns):
        try:
            sock.close()
        except OSError:
            pass


def signin_flood(port, deadline, rate, source, stats):
    """Wrong-token console sign-ins from `source` at `rate` a second, each with the form (nonce
    cookie and CSRF token) of the previous answer."""
    client = ConsoleClient(port, source=source, timeout=5)
    csrf = None
    sent = 0
    began = time.monotonic()
    while time.monotonic() < deadline:
        if csrf is None:
            csrf = client.sign_in_form()
            if csrf is None:
                stats.record("sign-in form", None, "no form", 0.0)
                time.sleep(0.5)
                continue
        answer = client.post("/console/sign-in", {"csrf": csrf, "token": f"guess-{sent:08d}-0123456789"})
        csrf = ConsoleClient.csrf(answer) or csrf  # the form on the answer, as a browser would
        stats.record(f"wrong-token sign-in from {source}", answer.status, answer.error, answer.seconds)
        sent += 1
        time.sleep(max(0.0, began + sent / rate - time.monotonic()))
    stats.extra["tries a second"] = round(sent / max(1e-6, time.monotonic() - began), 1)


def read_response(sock, buffer):
    """Reads one keep-alive response; returns (status, server closes after it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("closed")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    remaining = (int(length.group(1)) if length else 0) - len(rest)
    while remaining > 0:
        got = sock.recv_into(buffer, min(len(buffer), remaining))
        if not got:
            raise ConnectionResetError("closed mid-body")
        remaining -= got
    return (int(match.group(1)) if match else -1), bool(re.search(rb"(?im)^connection:\s*close", head))


def open_flood_main(port, windows, rate, connections, results):
    """GET /metrics and GET /readyz, alternately, at `rate` a second in all over `connections`
    keep-alive connections, during each (from, to) of `windows` (time.monotonic() values, which
    every process on the machine shares). Each connection is paced; one that falls behind skips
    the missed slots rather than catch up."""
    per_connection = rate / connections
    counts = collections.Counter()
    latencies = []
    lock = threading.Lock()

    def worker(index):
        local, local_latencies = collections.Counter(), []
        buffer = bytearray(256 * 1024)
        sock = None
        sent = index
        for window_from, window_to in windows:
            next_at = max(time.monotonic(), window_from + index / rate)
            time.sleep(max(0.0, next_at - time.monotonic()))
            while time.monotonic() < window_to:
                path = "/metrics" if sent % 2 == 0 else "/readyz"
                sent += 1
                began = time.monotonic()
                try:
                    if sock is None:
                        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                    status, close = read_response(sock, buffer)
                    answer = str(status)
                    if close:
                        sock.close()
                        sock = None
                except OSError as error:
                    answer = type(error).__name__
                    if sock is not None:
                        sock.close()
                    sock = None
                local[f"GET {path} -> {answer}"] += 1
                local_latencies.append(time.monotonic() - began)
                next_at += 1 / per_connection
                now = time.monotonic()
                if next_at < now - 0.5:
                    next_at = now  # behind: skip the missed slots rather than burst
                time.sleep(max(0.0, min(next_at, window_to) - now))
            if sock is not None:
                sock.close()  # idle until the next window: the server would close it (readTimeout)
                sock = None
        with lock:
            counts.update(local)
            latencies.extend(local_latencies)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, windows[-1][1] - time.monotonic()) + 30)
    flooding = max(1e-6, sum(to - max(start, 0) for start, to in windows))
    stats = Stats("/metrics + /readyz flood")
    stats.outcomes.update(counts)
    stats.extra["requests a second (achieved)"] = round(sum(counts.values()) / flooding, 1)
    if latencies:
        stats.extra["answer ms p50/p99/max"] = (f"{percentile(latencies, .5) * 1000:.1f}/{percentile(latencies, .99) * 1000:.1f}/"
                                                f"{max(latencies) * 1000:.1f}")
    stats.slowest["flood request"] = max(latencies, default=0.0)
    results.put([stats.as_dict()])


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
    run("console slowloris", console_slowloris, port, deadline, options["console_rate"], options["trickle_interval"])
    run("sign-in guessing", signin_flood, port, deadline, options["signin_rate"], "127.0.0.2")
    run("deep JSON + invalid UTF-8", bad_bodies, port, deadline, options["pause"], secret)
    run("header floods", header_floods, port, deadline, options["pause"])
    run("chunked /v1/events", chunked_stream, port, "/v1/events", deadline, options["chunked_bytes"], secret, 0.2)
    run("chunked /v1/relay/ci", chunked_stream, port, "/v1/relay/ci", deadline, options["chunked_bytes"], secret, 0.2)
    for thread, _ in jobs:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + 30)
    results.put([stats.as_dict() for _, stats in jobs])


# --------------------------------------------------------------------------------------------
# Measurement (main process)


class Probe(threading.Thread):
    """Calls `attempt()` every `period` seconds from `origin`, each in a thread of its own, so a
    stalled answer does not delay the next probe (no coordinated omission: a stall shows as every
    probe sent during it being slow or failed). samples: (t sent, ms or None, error)."""

    def __init__(self, name, attempt, stop, origin, period):
        super().__init__(name=name, daemon=True)
        self.attempt, self.stop_event, self.origin, self.period = attempt, stop, origin, period
        self.samples = []
        self.lock = threading.Lock()
        self.workers = []

    def one(self, sent):
        began = time.monotonic()
        error = self.attempt()
        elapsed = (time.monotonic() - began) * 1000
        with self.lock:
            self.samples.append((sent - self.origin, None if error else elapsed, error))

    def run(self):
        slot = 0
        while not self.stop_event.is_set():
            sent = self.origin + slot * self.period
            if self.stop_event.wait(max(0.0, sent - time.monotonic())):
                break
            worker = threading.Thread(target=self.one, args=(time.monotonic(),), daemon=True)
            worker.start()
            self.workers = [w for w in self.workers if w.is_alive()] + [worker]
            slot += 1
        for worker in self.workers:
            worker.join(timeout=10)
        with self.lock:
            self.samples.sort()


def healthz_attempt(port, timeout=2.0):
    def attempt():
        answer = http_request(port, "GET", "/healthz", timeout=timeout)
        return None if answer.status == 200 else (f"status {answer.status}" if answer.status else answer.error)
    return attempt


def intake_attempt(port, timeout=5.0):
    numbers = itertools.count(1)

    def attempt():
        number = next(numbers)
        event = valid_event(f"mw-probe-{number // 100}")
        event["app"] = "Probe"  # routed nowhere: intake alone is measured, not deliveries
        event["instance"]["id"] = f"i-probe-{number}"
        answer = http_request(port, "POST", "/v1/events", json.dumps(event).encode(), {
            "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
            "Idempotency-Key": f"probe-{number}-{uuid.uuid4().hex[:8]}"}, timeout=timeout)
        return None if answer.status == 202 else (f"status {answer.status}" if answer.status else answer.error)
    return attempt


def admin_attempt(port, timeout=5.0):
    def attempt():
        client = ConsoleClient(port, timeout=timeout)
        answer = client.sign_in(ADMIN)
        if answer.status in (302, 303) and "pb_session" in client.cookies:
            return None
        return f"status {answer.status}" if answer.status else (answer.error or "no answer")
    return attempt


def run_children(context, children, timeout):
    """Starts (name, target, args) children, each putting a list of Stats dicts on its queue; returns
    all their dicts once they finish (or a note for one that did not report)."""
    running = []
    for name, target, arguments in children:
        queue = context.Queue()
        process = context.Process(target=target, args=arguments + (queue,), name=name, daemon=True)
        process.start()
        running.append((name, process, queue))
    collected = []
    deadline = time.monotonic() + timeout
    for name, process, queue in running:
        try:
            collected.extend(queue.get(timeout=max(1.0, deadline - time.monotonic())))
        except Exception:
            collected.append({"name": name, "outcomes": {}, "slowest": {}, "extra": {},
                              "notes": [f"{name} process did not report (timed out)"]})
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join(timeout=10)
    return collected


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=str(ROOT / ".build/debug/patchbay"))
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of the full attack (default 30)")
    parser.add_argument("--baseline", type=float, default=20.0, help="seconds without attack (default 20)")
    parser.add_argument("--flood-phase", type=float, default=20.0,
                        help="seconds of the /metrics + /readyz flood alone, in slices alternating with those without "
                             "attack (default 20; 0 skips it)")
    parser.add_argument("--slice", type=float, default=5.0,
                        help="seconds of each slice while the first two phases alternate (default 5)")
    parser.add_argument("--flood-rate", type=float, default=1000.0, help="/metrics + /readyz requests a second (default 1000)")
    parser.add_argument("--slowloris", type=int, default=500, help="slowloris connections (default 500)")
    parser.add_argument("--trickle-interval", type=float, default=3.0, help="seconds between trickled bytes (default 3)")
    parser.add_argument("--console-rate", type=float, default=40.0,
                        help="new trickled console sign-in connections a second (default 40)")
    parser.add_argument("--signin-rate", type=float, default=40.0, help="wrong-token sign-ins a second from 127.0.0.2 (default 40)")
    parser.add_argument("--chunked-mb", type=int, default=100, help="size of each chunked body (default 100)")
    parser.add_argument("--pause", type=float, default=0.05, help="pause between hostile requests per attacker (s)")
    parser.add_argument("--read-timeout", type=int, default=5, help="server.readTimeout in seconds (default 5)")
    parser.add_argument("--max-connections", type=int, default=1024, help="server.maxConnections (default 1024)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, database)")
    args = parser.parse_args()
    if not 1 <= args.duration <= 3600:
        parser.error("--duration must be 1..3600 seconds")
    if not 1 <= args.baseline <= 3600 or not 0 <= args.flood_phase <= 3600 or not 1 <= args.slice <= 600:
        parser.error("--baseline must be 1..3600, --flood-phase 0..3600 and --slice 1..600 seconds")
    if round(args.baseline / args.slice) < 1:
        parser.error("--baseline must be at least one --slice")
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.2", 0))
    except OSError as error:
        raise SystemExit(f"cannot bind 127.0.0.2 as a source address (the guessing flood's): {error}")

    workdir = tempfile.mkdtemp(prefix="patchbay-hostile-")
    server = None
    stop = threading.Event()

    def on_signal(number, _frame):
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
                    f"  adminTokens: [\"{ADMIN}\"]\n"
                    f"  readTimeout: {args.read_timeout}s\n"
                    f"  maxConnections: {args.max_connections}\n"
                    f"  drainDelay: 0s\n"
                    f"store:\n  sqlite: ./queue.db\n"
                    f"delivery:\n  timeout: 2s\n  connectTimeout: 1s\n"
                    f"sources:\n  ci: {{kind: standard-webhooks, secret: \"{secret}\"}}\n"
                    f"targets:\n  hook: {{kind: webhook, url: \"http://127.0.0.1:{unused_port}/webhook/hostile\", "
                    f"secret: \"{target_secret}\"{extra}}}\n"
                    f"routes:\n  - match: {{app: Hostile}}\n    targets: [hook]\n    reminders: []\n"
                    f"    announceStart: false\n")

        config_path = write_loopback_config(binary, workdir, config)
        server = Server(binary, workdir, config_path, 0)
        server.start()
        port = server.port
        print(f"patchbay pid {server.process.pid} on 127.0.0.1:{port} (readTimeout {args.read_timeout}s, maxConnections "
              f"{args.max_connections}); {args.baseline:.0f} s without attack"
              + (f" and {args.flood_phase:.0f} s of /metrics + /readyz at {args.flood_rate:.0f}/s, alternating every "
                 f"{args.slice:.0f} s" if args.flood_phase else "")
              + f"; then {args.duration:.0f} s of full attack (workdir {workdir})", flush=True)

        # The attackers are processes (their threads would otherwise share this one's interpreter
        # lock with the probes), started by spawn: they begin while the probe threads run.
        context = multiprocessing.get_context("spawn")
        origin = time.monotonic() + 1.0  # the probes' t = 0; a flood process has started by then
        phases = collections.OrderedDict()  # name -> [(from, to)] in seconds since origin
        # Without attack and the flood alone alternate in slices, so that other work on the machine
        # weighs on both alike; each slice's first 0.5 s is left out of the figures.
        quiet, flooding, kinds = round(args.baseline / args.slice), round(args.flood_phase / args.slice), []
        while quiet or flooding:
            if quiet:
                kinds.append("without attack")
                quiet -= 1
            if flooding:
                kinds.append("/metrics+/readyz flood")
                flooding -= 1
        for index, kind in enumerate(kinds):
            phases.setdefault(kind, []).append((index * args.slice + 0.5, (index + 1) * args.slice))
        windows = [(origin + index * args.slice, origin + (index + 1) * args.slice)
                   for index, kind in enumerate(kinds) if kind != "without attack"]
        probes = {
            "healthz": Probe("healthz", healthz_attempt(port), stop, origin, 0.1),
            "intake": Probe("intake", intake_attempt(port), stop, origin, 0.1),
            "admin": Probe("admin", admin_attempt(port), stop, origin, 2.0),
        }
        # The server's RSS, VmHWM, threads and fds each second: samples (t, ProcSample).
        sampler = Sampler(lambda: proc_sample(server.process.pid) if server.alive() else None, 1.0, origin, stop,
                          name="sampler")
        for thread in list(probes.values()) + [sampler]:
            thread.start()
        flood_stats = []
        if windows:
            flood_stats = run_children(context, [("open flood", open_flood_main, (port, windows, args.flood_rate, 16))],
                                       len(kinds) * args.slice + 90)
        time.sleep(max(0.0, origin + len(kinds) * args.slice - time.monotonic()))
        # The server before any hostile traffic: the last sample before the first flood slice.
        first_flood = min((began for began, _ in phases.get("/metrics+/readyz flood", [])), default=float("inf"))
        baseline = next((sample for sample in reversed(sampler.samples) if sample[0] < first_flood - 0.5), None)

        options = {"slowloris": args.slowloris, "trickle_interval": args.trickle_interval,
                   "chunked_bytes": args.chunked_mb * MB, "pause": args.pause, "console_rate": args.console_rate,
                   "signin_rate": args.signin_rate}
        began = time.monotonic()
        attack_stats = run_children(context, [
            ("attacker", attacker_main, (port, args.duration, secret, options)),
            ("open flood", open_flood_main, (port, [(began, began + args.duration)], args.flood_rate, 16))],
            args.duration + 90)
        phases["full attack"] = [(began - origin, time.monotonic() - origin)]

        # Give the server up to 10 s to release what the attack held (every client socket is closed now).
        settle_deadline = time.monotonic() + 10
        while time.monotonic() < settle_deadline and server.alive():
            sample = proc_sample(server.process.pid)
            if sample is None or baseline is None or sample.fds <= baseline[1].fds + 2:
                break
            time.sleep(0.5)
        stop.set()
        for thread in list(probes.values()) + [sampler]:
            thread.join(timeout=10)
        after = proc_sample(server.process.pid) if server.alive() else None
        after_sockets = socket_states(server.process.pid) if server.alive() else {}

        # Final checks.
        final_status, final_error, relay_status = None, None, None
        if server.alive():
            answer = http_request(port, "POST", "/v1/events", json.dumps(valid_event("mw-hostile-final")).encode(),
                                  dict(AUTH), timeout=10)
            final_status, final_error = answer.status, answer.error
            relay_status, _, _ = raw_exchange(port, request_bytes(
                "POST", "/v1/relay/ci", json.dumps(valid_event("mw-hostile-relay")).encode(),
                relay_headers(secret, [json.dumps(valid_event("mw-hostile-relay")).encode()])))

        return report(probes, sampler, phases, baseline, after, after_sockets, flood_stats, attack_stats, server,
                      final_status, final_error, relay_status)
    except KeyboardInterrupt:
        print("interrupted; stopping", file=sys.stderr)
        return 1
    finally:
        stop.set()
        for child in multiprocessing.active_children():
            child.kill()
            child.join(timeout=10)
        if server is not None:
            server.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def in_phase(samples, intervals):
    """The samples whose t falls in one of the (from, to) intervals."""
    return [s for s in samples if any(began <= s[0] < ended for began, ended in intervals)]


def figures(samples):
    """(count, p50, p99, max, failures) of probe samples."""
    latencies = [s[1] for s in samples if s[1] is not None]
    return (len(samples), percentile(latencies, .5), percentile(latencies, .99), max(latencies, default=float("nan")),
            sum(1 for s in samples if s[1] is None))


def print_attacks(title, stats_list, notes):
    print(title)
    for entry in stats_list or []:
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
            if entry["name"] in ("slowloris", "console slowloris", "sign-in guessing", "/metrics + /readyz flood"):
                continue  # closing a trickling connection, 401/429 to guesses and 200/503 to probes are all fine
            answer = key.rsplit("-> ", 1)[-1]
            if answer.startswith("5"):
                notes.append(f"{entry['name']}: {value} x {key} (a 5xx to hostile input)")
            elif answer.startswith("2"):
                notes.append(f"{entry['name']}: {value} x {key} (hostile input accepted)")
            elif not answer[:1].isdigit() and "run ended" not in key:
                notes.append(f"{entry['name']}: {value} x {key} (no HTTP answer)")


def report(probes, sampler, phases, baseline, after, after_sockets, flood_stats, attack_stats, server,
           final_status, final_error, relay_status):
    health, intake, admin = probes["healthz"].samples, probes["intake"].samples, probes["admin"].samples
    print()
    print("Per 5 s (t from the start of the probes; " + ", ".join(
        f"{name} {', '.join(f'{began:.0f}-{ended:.0f}' for began, ended in intervals)} s" for name, intervals in phases.items()) + "):")
    print(f"{'t (s)':>11} {'phase':<8} {'healthz n':>9} {'p50 ms':>7} {'p99 ms':>8} {'fail':>4} {'intake n':>8} {'p50 ms':>7} "
          f"{'p99 ms':>8} {'fail':>4} {'RSS MB':>7} {'fds':>5} {'thr':>4}")
    end = max([s[0] for s in health] + [s[0] for s in sampler.samples] + [0])
    bucket = 0.0
    short = {"without attack": "none", "/metrics+/readyz flood": "flood", "full attack": "attack"}
    while bucket <= end:
        window = [(bucket, bucket + 5)]
        h, i = figures(in_phase(health, window)), figures(in_phase(intake, window))
        procs = in_phase(sampler.samples, window)
        label = next((short.get(name, name) for name, intervals in phases.items()
                      if any(began - 0.5 <= bucket + 2.5 < ended for began, ended in intervals)), "after")
        print(f"{bucket:5.0f}-{bucket + 5:<5.0f} {label:<8} {h[0]:>9} {h[1]:>7.1f} {h[2]:>8.1f} {h[4]:>4} {i[0]:>8} {i[1]:>7.1f} "
              f"{i[2]:>8.1f} {i[4]:>4} {max((s[1].rss_kb for s in procs), default=0) / 1024:>7.1f} "
              f"{max((s[1].fds for s in procs), default=0):>5} {max((s[1].threads for s in procs), default=0):>4}")
        bucket += 5

    # The phases side by side.
    print()
    print("Phases side by side:")
    columns = list(phases)
    width = max(24, max(len(c) for c in columns) + 2)
    print(f"  {'':<34}" + "".join(f"{c:>{width}}" for c in columns))
    by_phase = {name: (figures(in_phase(health, intervals)), figures(in_phase(intake, intervals)), in_phase(admin, intervals),
                       in_phase(sampler.samples, intervals)) for name, intervals in phases.items()}

    def row(label, cell):
        print(f"  {label:<34}" + "".join(f"{cell(name):>{width}}" for name in columns))
    row("/healthz probes (every 100 ms)", lambda n: f"{by_phase[n][0][0]}")
    row("/healthz p50 / p99 / max ms", lambda n: "%.1f / %.1f / %.1f" % by_phase[n][0][1:4])
    row("/healthz failures", lambda n: f"{by_phase[n][0][4]}")
    row("intake POSTs (10/s)", lambda n: f"{by_phase[n][1][0]}")
    row("intake p50 / p99 / max ms", lambda n: "%.1f / %.1f / %.1f" % by_phase[n][1][1:4])
    row("intake failures (not 202)", lambda n: f"{by_phase[n][1][4]}")
    row("admin sign-ins OK (every 2 s)", lambda n: f"{sum(1 for s in by_phase[n][2] if s[1] is not None)}/{len(by_phase[n][2])}")
    row("RSS max MB", lambda n: f"{max((s[1].rss_kb for s in by_phase[n][3]), default=0) / 1024:.1f}")
    row("open fds max", lambda n: f"{max((s[1].fds for s in by_phase[n][3]), default=0)}")
    rates = {}
    for name, stats_list in (("/metrics+/readyz flood", flood_stats), ("full attack", attack_stats)):
        for entry in stats_list or []:
            if entry["name"] == "/metrics + /readyz flood":
                rates[name] = entry["extra"].get("requests a second (achieved)", "-")
    row("/metrics+/readyz req/s achieved", lambda n: f"{rates.get(n, '-')}")

    notes = []
    print()
    if flood_stats:
        print_attacks("Flood phase (answers seen, counts):", flood_stats, notes)
    print_attacks("Full attack (answers seen, counts):", attack_stats, notes)

    base_name = columns[0]
    attack = by_phase.get("full attack")
    flood = by_phase.get("/metrics+/readyz flood")
    h_fail_all = [s for s in health if s[1] is None]
    i_fail_all = [s for s in intake if s[1] is None]
    rss_max = max((s[1].rss_kb for s in sampler.samples), default=0) / 1024
    hwm = max((s[1].hwm_kb for s in sampler.samples), default=0) / 1024
    fds_max = max((s[1].fds for s in sampler.samples), default=0)
    print()
    print("Summary:")
    for name in columns:
        h, i, a, _ = by_phase[name]
        print(f"  {name}: /healthz p99 {h[2]:.1f} ms ({h[4]} failed of {h[0]}), intake p99 {i[2]:.1f} ms "
              f"({i[4]} failed of {i[0]}), admin sign-ins {sum(1 for s in a if s[1] is not None)}/{len(a)}")
    for label, failures in (("/healthz", h_fail_all), ("intake", i_fail_all)):
        if failures:
            print(f"  {label} failures (first): " + ", ".join(f"t={s[0]:.1f}s {s[2]}" for s in failures[:5]))
    admin_failures = [s for s in admin if s[1] is None]
    if admin_failures:
        print("  admin sign-in failures (first): " + ", ".join(f"t={s[0]:.1f}s {s[2]}" for s in admin_failures[:5]))
    if baseline:
        print(f"  before the attacks: RSS {baseline[1].rss_kb / 1024:.1f} MB, fds {baseline[1].fds}, "
              f"threads {baseline[1].threads}")
    print(f"  RSS max {rss_max:.1f} MB (VmHWM {hwm:.1f} MB), fds max {fds_max}")
    if after:
        print(f"  after the attack (clients all closed, up to 10 s later): RSS {after.rss_kb / 1024:.1f} MB, "
              f"fds {after.fds}, threads {after.threads}, sockets {after_sockets}")
        if baseline and after.fds > baseline[1].fds + 2:
            notes.append(f"fds did not return to baseline after every client closed: {baseline[1].fds} -> {after.fds} "
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
    if attack is not None:
        h, i, a, _ = attack
        if h[0] - h[4] == 0:
            reasons.append("no successful /healthz during the attack")
        elif h[2] >= HEALTHZ_P99_LIMIT_MS:
            reasons.append(f"/healthz p99 under attack {h[2]:.1f} ms >= {HEALTHZ_P99_LIMIT_MS:.0f} ms")
        if i[0] - i[4] == 0:
            reasons.append("no accepted event during the attack")
        elif i[2] >= INTAKE_P99_LIMIT_MS:
            reasons.append(f"intake p99 under attack {i[2]:.1f} ms >= {INTAKE_P99_LIMIT_MS:.0f} ms")
    if h_fail_all:
        reasons.append(f"{len(h_fail_all)} /healthz failures")
    if i_fail_all:
        reasons.append(f"{len(i_fail_all)} intake failures")
    if admin_failures:
        reasons.append(f"{len(admin_failures)} of {len(admin)} admin sign-ins failed")
    if flood is not None:
        base_p99, flood_p99 = by_phase[base_name][1][2], flood[1][2]
        if not flood_p99 <= FLOOD_INTAKE_FACTOR * base_p99:
            reasons.append(f"intake p99 under the /metrics+/readyz flood {flood_p99:.1f} ms > {FLOOD_INTAKE_FACTOR:.0f} x "
                           f"{base_p99:.1f} ms without attack")
    if max(rss_max, hwm) >= RSS_LIMIT_MB:
        reasons.append(f"RSS reached {max(rss_max, hwm):.1f} MB >= {RSS_LIMIT_MB:.0f} MB")
    if not server.alive():
        died = f" at t={sampler.missed_at:.1f}s" if sampler.missed_at is not None else ""
        reasons.append(f"server {server.exit_description()}{died}")
        print("  server log tail:\n    " + "\n    ".join(server.log_text()[-2500:].splitlines()[-25:]))
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
        return 1
    h, i, _, _ = attack
    print(f"VERDICT: PASS - under attack /healthz p99 {h[2]:.1f} ms, intake p99 {i[2]:.1f} ms (without attack "
          f"{by_phase[base_name][0][2]:.1f} and {by_phase[base_name][1][2]:.1f} ms), no failures, RSS max "
          f"{max(rss_max, hwm):.1f} MB, valid event 202")
    return 0


if __name__ == "__main__":
    sys.exit(main())
