#!/usr/bin/env python3
"""Hostile clients against the console and the open endpoints, end to end with the real binary
(issue 20; findings F1, F2, F5, F9 and F15 of the December 2026 security review). Each check starts
its own `patchbay serve` (SQLite in a temporary directory) and prints what it saw:

  f1   45 connections POST /console/sign-in with Content-Length 200000 (and again with 2000, a
       plausible form that is read until it stalls) and trickle a byte every 3 s
       (readTimeout 5s, maxConnections 40): for 20 s, every 0.5 s, GET /healthz and a valid event
       must each answer within 1 s, and the server must close every trickling connection (the 40
       it holds by readTimeout + 3 s, the 5 waiting for a slot by 2 x readTimeout + 5 s).
  f2   wrong-token sign-ins from 127.0.0.2 (each with the form of the previous answer, as a
       browser), >= 30/s for 5 s: the admin signing in from 127.0.0.1 at 2 s and 4 s gets in (303
       and a working session), and the flooding address itself gets 429s. Then with
       server.trustedProxies [127.0.0.3]: an attacker behind that proxy (X-Forwarded-For
       203.0.113.7, also with a forged 203.0.113.9 in front) floods while the admin behind it
       (203.0.113.9) gets in; and 127.0.0.2, not a proxy, rotating X-Forwarded-For on each try,
       is still paced as one address.
  f5   rateLimit {perSecond: 1, burst: 1}: 20 events within about 1 s with `Bearer` spelled in
       different cases and followed by 1-20 spaces (some tabs): at most 2 accepted, the rest 429.
  f9   200 GET /metrics and 200 GET /readyz from 8 clients: each answers within 1 s; 200 GET
       /readyz one after another change readiness_probe.checked_at (the SQLite write check) at
       most 5 + (seconds taken) times, i.e. not once per request.
  f15  sign-out without the session's CSRF token answers 403 and the session keeps working; with
       it, a copy of the signed-out cookie is sent to the sign-in page; another session and a new
       sign-in with the same token still work.

With PostgreSQL (PATCHBAY_TEST_POSTGRES_URL or --postgres-url; scripts/with-postgres starts one)
also: f15 on two instances sharing the store and server.consoleKey (signed out on A, the copied
cookie is refused on B within 10 s), and f9 read with psql: readiness_probe.checked_at after each of
100 GET /readyz (as on SQLite), and the scans of deliveries in pg_stat_user_tables for 200 GET
/metrics (at most 40 plus 3 a second of background, not one or two per request). F9 on
PostgreSQL is skipped without psql.

    scripts/hostile-test.py [--binary .build/debug/patchbay] [--only f1,f2,f5,f9,f15]
    scripts/with-postgres scripts/hostile-test.py

Everything runs on 127.0.0.1 (client sockets also bind 127.0.0.2 and 127.0.0.3 as their source).
Takes about 40 s (70 s with PostgreSQL). Exits 1 if any check fails. --f1-control trickles into
POST /v1/events instead (its body already has a deadline), to show what F1's checks make of a
server that cuts slow bodies at readTimeout.
"""
import argparse
import collections
import json
import math
import os
import re
import select
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time

from patchbay_harness import (ROOT, Checks, ConsoleClient, Server, config_problem, free_port, http_request,
                              store_section)

TOKEN = "hostile-test-token-0123456789abcdef"
ADMIN = "admin-token-0123456789abcdef"
CONSOLE_KEY = "hostile-test-console-key-0123456789abcdef"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WINDOW_START = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(time.time() + 86400))
WINDOW_END = time.strftime("%Y-%m-%dT%H:30:00Z", time.gmtime(time.time() + 86400))
CHECKS = ("f1", "f2", "f5", "f9", "f15")


def event_body(index):
    """A valid event; its app matches no route, so it queues nothing to deliver."""
    return json.dumps({"type": "patch.completed", "app": "Hostile", "environment": "Production",
                       "instance": {"id": f"i-{index}", "name": f"web-{index}"},
                       "window": {"id": "mw-hostile", "start": WINDOW_START, "end": WINDOW_END}}).encode()


def post_event(port, index, authorization=None, key=None, timeout=5):
    return http_request(port, "POST", "/v1/events", event_body(index), {
        "Authorization": authorization or f"Bearer {TOKEN}", "Content-Type": "application/json",
        "Idempotency-Key": key or f"hostile-{index}-{time.time_ns()}"}, timeout=timeout)


class Servers:
    """Starts each check's server in its own directory, and stops them all at the end."""

    def __init__(self, binary, workdir):
        self.binary, self.workdir, self.started = binary, workdir, []

    def config(self, name, server_lines=(), store="store: {sqlite: ./queue.db}"):
        directory = os.path.join(self.workdir, name)
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, "patchbay.yaml")
        lines = "".join(f"  {line}\n" for line in server_lines)
        with open(path, "w") as out:
            out.write(f"""server:
  tokens: ["{TOKEN}"]
  adminTokens: ["{ADMIN}"]
  drainDelay: 0s
{lines}{store}
targets:
  unused: {{kind: webhook, url: "http://127.0.0.1:{free_port()}/webhook/unused", secret: "{SECRET}", allowPrivateNetworks: true}}
routes:
  - match: {{app: Unrouted}}
    targets: [unused]
    reminders: []
""")
        return directory, path

    def start(self, name, server_lines=(), store="store: {sqlite: ./queue.db}", instances=1):
        """The started server(s), or (None, the config check's complaint)."""
        directory, path = self.config(name, server_lines, store)
        problem = config_problem(self.binary, path, directory)
        if problem:
            return None, problem
        servers = []
        for number in range(instances):
            server = Server(self.binary, directory, path, free_port(), name=f"{name}-{number + 1}")
            self.started.append(server)
            server.start()
            servers.append(server)
        return (servers[0] if instances == 1 else servers), None

    def stop_all(self):
        for server in self.started:
            server.stop()


def summary(answers):
    """'40 answered (200 x 40), worst 12 ms' for a list of Answers."""
    counts = collections.Counter(a.status if a.status is not None else a.error for a in answers)
    worst = max((a.seconds for a in answers), default=0.0)
    return f"{len(answers)} sent ({', '.join(f'{k} x {v}' for k, v in counts.most_common())}), worst {worst * 1000:.0f} ms"


# ------------------------------------------------------------------------------------------------
# F1: trickled console form bodies must not take the server's connections


def check_f1(servers, check, control=False, content_length=200000):
    """`control`: trickle into POST /v1/events with a valid token instead (a body read that already
    has a deadline), to see what the checks make of a server that cuts bodies at readTimeout.
    `content_length`: 200000 is the review's (a form larger than any console form, refused at once);
    2000 is a plausible form, read until it stalls, so the connections must be shed as stalled."""
    read_timeout, max_connections, clients, trickle_every = 5.0, 40, 45, 3.0
    server, problem = servers.start(f"f1-{content_length}", ["readTimeout: 5s", f"maxConnections: {max_connections}"])
    if server is None:
        check(False, f"F1: the server refused its config: {problem}")
        return
    port = server.port
    head = (b"POST /console/sign-in HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " + str(content_length).encode() + b"\r\n\r\n")
    if control:
        head = (b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: 200000\r\n\r\n")
    open_socks = {}   # socket -> opened at
    ended = []        # (seconds open, how, first answer status or None)
    answers = {}      # socket -> status line seen before the close
    for _ in range(clients):
        sock = socket.create_connection(("127.0.0.1", port), timeout=3)
        sock.sendall(head)
        sock.setblocking(False)
        open_socks[sock] = time.monotonic()
    t0 = time.monotonic()
    print(f"     F1: {clients} connections sent a {'POST /v1/events (control)' if control else 'sign-in'} head with Content-Length {content_length}; trickling a byte every "
          f"{trickle_every:.0f} s (readTimeout {read_timeout:.0f} s, maxConnections {max_connections})")
    stop = threading.Event()

    def finish(sock, how):
        opened = open_socks.pop(sock)
        ended.append((time.monotonic() - opened, how, answers.get(sock)))
        try:
            sock.close()
        except OSError:
            pass

    def trickle():
        next_tick = time.monotonic() + trickle_every
        while not stop.is_set() and open_socks:
            wait = max(0.0, min(next_tick - time.monotonic(), 0.2))
            readable, _, _ = select.select(list(open_socks), [], [], wait)
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    finish(sock, "reset")
                    continue
                if not data:
                    finish(sock, "closed")
                elif sock not in answers:
                    match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
                    answers[sock] = int(match.group(1)) if match else -1
            if time.monotonic() >= next_tick:
                next_tick += trickle_every
                for sock in list(open_socks):
                    try:
                        sock.send(b"a")
                    except BlockingIOError:
                        pass
                    except OSError:
                        finish(sock, "send failed")

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()

    probes = {"healthz": [], "intake": []}   # (t sent, Answer)
    lock = threading.Lock()

    def probe(kind, index, sent_at):
        if kind == "healthz":
            answer = http_request(port, "GET", "/healthz", timeout=8)
        else:
            answer = post_event(port, index, timeout=8)
        with lock:
            probes[kind].append((sent_at, answer))

    threads = []
    for index in range(40):
        time.sleep(max(0.0, t0 + 0.5 * index - time.monotonic()))
        sent_at = time.monotonic() - t0
        for kind in ("healthz", "intake"):
            thread = threading.Thread(target=probe, args=(kind, index, sent_at), daemon=True)
            thread.start()
            threads.append(thread)
    for thread in threads:
        thread.join(timeout=12)
    # Closes are watched until 2 x readTimeout + 5 s (and at least as long as the probes ran).
    time.sleep(max(0.0, t0 + 2 * read_timeout + 5 - time.monotonic()))
    stop.set()
    trickler.join(timeout=5)
    still_open = len(open_socks)
    for sock in list(open_socks):
        finish(sock, "still open at the end (closed by the test)")

    for kind, expected in (("healthz", 200), ("intake", 202)):
        seen = sorted(probes[kind], key=lambda item: item[0])
        slow = [(t, a) for t, a in seen if a.status != expected or a.seconds >= 1.0]
        late = [a for t, a in seen if t >= read_timeout + 2]
        what = "GET /healthz" if kind == "healthz" else "POST /v1/events (valid)"
        detail = summary([a for _, a in seen])
        if slow:
            detail += "; not within 1 s: " + ", ".join(f"t={t:.1f}s {a!r}" for t, a in slow[:6]) + (" ..." if len(slow) > 6 else "")
        check(len(seen) == 40 and not slow, f"F1: {what} every 0.5 s for 20 s under {clients} trickling sign-ins, each "
                                             f"{expected} within 1 s: {detail}")
        print(f"     F1: ({what} sent from t={read_timeout + 2:.0f} s on: {summary(late)})")

    closed = [e for e in ended if not e[1].startswith("still open")]
    lifetimes = sorted(e[0] for e in closed)
    hows = collections.Counter(f"{e[1]}" + (f" after answering {e[2]}" if e[2] is not None else " with no answer") for e in ended)
    first_cut = sum(1 for seconds in lifetimes if seconds <= read_timeout + 3)
    spread = "-" if not lifetimes else f"{lifetimes[0]:.1f}/{lifetimes[len(lifetimes) // 2]:.1f}/{lifetimes[-1]:.1f} s"
    check(first_cut >= min(clients, max_connections) and still_open == 0 and all(s <= 2 * read_timeout + 5 for s in lifetimes),
          f"F1: the server closed the trickling connections: {len(closed)} of {clients} closed "
          f"({first_cut} within readTimeout + 3 s), {still_open} still open after {2 * read_timeout + 5:.0f} s; "
          f"open for min/median/max {spread}; {dict(hows)}")


def check_f1_answered(servers, check):
    """45 connections ask POST /v1/events without a token, with a one-byte body they send only
    after the 401, then keep the connection idle (keep-alive): each must still get a deadline for
    its next request (readTimeout), and while they fill maxConnections, /healthz must get a slot
    within 1 s (they are stalled, so they are shed)."""
    read_timeout, max_connections, clients = 5.0, 40, 45
    server, problem = servers.start("f1-answered", ["readTimeout: 5s", f"maxConnections: {max_connections}"])
    if server is None:
        check(False, f"F1 (answered, then idle): the server refused its config: {problem}")
        return
    port = server.port
    head = b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1\r\n\r\n"
    socks = []
    for _ in range(clients):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=3)
            sock.sendall(head)
            socks.append(sock)
        except OSError:
            break
    answered = 0
    for sock in socks:
        try:
            sock.settimeout(0.5)
            if sock.recv(4096).startswith(b"HTTP/1.1 401"):
                answered += 1
            sock.sendall(b"x")
        except OSError:
            pass
    t0 = time.monotonic()
    slow = []
    for index in range(16):
        time.sleep(max(0.0, t0 + 0.5 * index - time.monotonic()))
        answer = http_request(port, "GET", "/healthz", timeout=8)
        if answer.status != 200 or answer.seconds >= 1.0:
            slow.append(f"t={time.monotonic() - t0:.1f}s {answer!r}")
    time.sleep(max(0.0, t0 + read_timeout + 3 - time.monotonic()))
    # A connection that waited in the listen backlog gets its 401 late, after the loop above
    # looked: that answer is still buffered here, so read past it to the end of the stream; only
    # a connection with no end of stream is open.
    still_open = 0
    for sock in socks:
        try:
            sock.settimeout(0.2)
            for _ in range(16):  # a late 401 is one read; a server still talking after 64 KiB is open
                if not sock.recv(4096):
                    break
            else:
                still_open += 1
        except socket.timeout:
            still_open += 1
        except OSError:
            pass
        finally:
            sock.close()
    check(not slow, f"F1 (answered, then idle): GET /healthz every 0.5 s for 8 s beside {len(socks)} connections that got their 401 "
                    f"({answered}) and went idle, each 200 within 1 s" + ("" if not slow else ": " + ", ".join(slow[:6])))
    check(still_open == 0, f"F1 (answered, then idle): every idle connection closed by readTimeout + 3 s: {still_open} still open")


# ------------------------------------------------------------------------------------------------
# F2: sign-in pacing per client address# ------------------------------------------------------------------------------------------------
# F2: sign-in pacing per client address


def flood(port, source, seconds, rate, stats, forwarded=None, stop=None):
    """Wrong-token sign-ins from `source` at `rate`/s for `seconds`, as a browser would send them:
    each with the (nonce cookie, CSRF token) of the form on the previous answer (the first from GET
    /console/sign-in); `forwarded(n)` gives the X-Forwarded-For of the n-th. Counts answers in
    `stats`."""
    client = ConsoleClient(port, source=source, headers={"X-Forwarded-For": forwarded(0)} if forwarded else None)
    csrf = client.sign_in_form()
    began = time.monotonic()
    sent = 0
    while time.monotonic() - began < seconds and not (stop and stop.is_set()):
        headers = {"X-Forwarded-For": forwarded(sent)} if forwarded else None
        answer = client.post("/console/sign-in", {"csrf": csrf or "", "token": f"wrong-guess-{sent:06d}-abcdefgh"},
                             headers=headers)
        csrf = ConsoleClient.csrf(answer) or csrf
        stats[answer.status if answer.status is not None else answer.error] += 1
        sent += 1
        time.sleep(max(0.0, began + sent / rate - time.monotonic()))
    stats["rate"] = sent / max(1e-6, time.monotonic() - began)


def admin_signs_in(port, source=None, forwarded=None):
    """(succeeded, description): the sign-in form, then the admin token, then GET /console."""
    client = ConsoleClient(port, source=source, headers={"X-Forwarded-For": forwarded} if forwarded else None)
    answer = client.sign_in(ADMIN)
    location = answer.header("location") or ""
    ok = answer.status in (302, 303) and location.rstrip("/").endswith("/console") and "pb_session" in client.cookies
    page = client.get("/console") if ok else None
    ok = ok and page.status == 200
    text = f"sign-in {answer!r}" + (f" -> {location}" if location else "") + \
        (f", session cookie {'set' if 'pb_session' in client.cookies else 'missing'}") + \
        (f", GET /console {page.status}" if page else "")
    if answer.status == 429:
        text += " (Too many sign-in attempts)"
    return ok, text


def describe(stats):
    counts = {k: v for k, v in stats.items() if k != "rate"}
    return f"{sum(counts.values())} tries at {stats.get('rate', 0):.0f}/s, answers {dict(sorted(counts.items(), key=str))}"


def flood_with_admin(port, check, label, flood_source, flood_forwarded, admin_source, admin_forwarded, seconds=5.0, rate=40):
    stats = collections.Counter()
    attacker = threading.Thread(target=flood, args=(port, flood_source, seconds, rate, stats, flood_forwarded), daemon=True)
    began = time.monotonic()
    attacker.start()
    results = []
    for at in (2.0, 4.0):
        time.sleep(max(0.0, began + at - time.monotonic()))
        results.append((at, admin_signs_in(port, admin_source, admin_forwarded)))
    attacker.join(timeout=seconds + 30)
    for at, (ok, text) in results:
        check(ok, f"F2{label}: the admin signs in {at:.0f} s into the guessing flood: {text}")
    check(stats.get("rate", 0) >= 30, f"F2{label}: the flood ran at >= 30 tries/s: {describe(stats)}")
    check(stats.get(429, 0) > 0 and set(k for k in stats if k != "rate") <= {401, 403, 429},
          f"F2{label}: the flooding client gets 429s (and only 401/403/429): {describe(stats)}")


def check_f2(servers, check):
    server, problem = servers.start("f2")
    if server is None:
        check(False, f"F2: the server refused its config: {problem}")
        return
    print("     F2: wrong-token sign-ins from 127.0.0.2 at 40/s for 5 s; the admin signs in from 127.0.0.1 at 2 s and 4 s")
    flood_with_admin(server.port, check, "", "127.0.0.2", None, "127.0.0.1", None)

    # Behind a proxy: the client is the right-most X-Forwarded-For entry that is not a trusted proxy.
    server, problem = servers.start("f2-proxy", ['trustedProxies: ["127.0.0.3"]'])
    if server is None:
        lines = [line.strip() for line in problem.splitlines() if "trustedProxies" in line] or [problem]
        check(False, f"F2 (trustedProxies): the server refused its config: {lines[0][:160]}")
        return
    print("     F2: trustedProxies [127.0.0.3]: the attacker behind it (X-Forwarded-For 203.0.113.7, every other try "
          "'203.0.113.9, 203.0.113.7') floods; the admin behind it is 203.0.113.9")
    flood_with_admin(server.port, check, " behind a trusted proxy", "127.0.0.3",
                     lambda n: "203.0.113.7" if n % 2 == 0 else "203.0.113.9, 203.0.113.7",
                     "127.0.0.3", "203.0.113.9")
    stats = collections.Counter()
    flood(server.port, "127.0.0.2", 3.0, 40, stats, forwarded=lambda n: f"198.51.100.{n % 250 + 1}")
    check(stats.get(429, 0) > 0, "F2: 127.0.0.2 (not a trusted proxy) sending a new X-Forwarded-For on every try is paced "
                                 f"by its own address: {describe(stats)}")


# ------------------------------------------------------------------------------------------------
# F5: the intake rate limit is per token, however `Bearer` is spelled


def check_f5(servers, check):
    server, problem = servers.start("f5", ["rateLimit: {perSecond: 1, burst: 1}"])
    if server is None:
        check(False, f"F5: the server refused its config: {problem}")
        return
    spellings = ["Bearer", "bearer", "BEARER", "bEaReR"]
    answers = []
    began = time.monotonic()
    for i in range(1, 21):
        gap = " " * i if i % 5 else " " + "\t" * (i // 5)
        authorization = f"{spellings[i % 4]}{gap}{TOKEN}"
        answers.append((repr(authorization[:len(authorization) - len(TOKEN)]), post_event(server.port, i, authorization, key=f"rl-{i}")))
    elapsed = time.monotonic() - began
    statuses = [a.status for _, a in answers]
    accepted = statuses.count(202)
    allowed = 2 + math.floor(elapsed)   # burst 1, then 1/s: 2 within the first second (and one more per second after)
    print(f"     F5: 20 events in {elapsed:.2f} s: " + " ".join(str(s) for s in statuses))
    check(statuses[0] == 202, f"F5: the first (Authorization {answers[0][0]} + token) is accepted: {answers[0][1]!r}")
    check(accepted <= allowed, f"F5: at most {allowed} of 20 accepted under rateLimit {{perSecond: 1, burst: 1}} "
                               f"with `Bearer` in 4 cases and 1-20 spaces/tabs after it: {accepted} accepted")
    check(all(s in (202, 429) for s in statuses) and statuses.count(429) >= 20 - allowed,
          f"F5: the rest answered 429: {dict(collections.Counter(statuses))}")


# ------------------------------------------------------------------------------------------------
# F15: sign-out revokes the session and needs its CSRF token


def signed_in(port, label):
    client = ConsoleClient(port)
    answer = client.sign_in(ADMIN)
    if "pb_session" not in client.cookies:
        return None, f"{label}: could not sign in ({answer!r})"
    return client, None


def console_status(port, cookie):
    """GET /console with only this session cookie: '200', or '303 -> /console/sign-in'."""
    answer = http_request(port, "GET", "/console", headers={"Cookie": f"pb_session={cookie}"})
    location = answer.header("location")
    return answer, (f"{answer.status} -> {location}" if location else f"{answer.status if answer.status is not None else answer.error}")


def refused(answer):
    return answer.status in (302, 303) and (answer.header("location") or "").startswith("/console/sign-in")


def check_f15(servers, check):
    server, problem = servers.start("f15")
    if server is None:
        check(False, f"F15: the server refused its config: {problem}")
        return
    port = server.port
    client, problem = signed_in(port, "F15")
    other, problem2 = signed_in(port, "F15 (a second browser)")
    if client is None or other is None:
        check(False, problem or problem2)
        return
    copied = client.cookies["pb_session"]
    page = client.get("/console")
    csrf = ConsoleClient.csrf(page)
    check(page.status == 200 and csrf, f"F15: signed in: GET /console {page!r}, its sign-out form has a CSRF token: {bool(csrf)}")

    no_csrf = client.post("/console/sign-out", {}, keep=False)
    answer, text = console_status(port, copied)
    check(no_csrf.status == 403, f"F15: POST /console/sign-out without the CSRF token answers 403: {no_csrf!r}"
                                 f"{' -> ' + no_csrf.header('location') if no_csrf.header('location') else ''}")
    check(answer.status == 200, f"F15: ... and the session still works: GET /console {text}")
    forged = ("B" if (csrf or "A").startswith("A") else "A") + (csrf or "")[1:]
    wrong = client.post("/console/sign-out", {"csrf": forged}, keep=False)
    check(wrong.status == 403, f"F15: sign-out with a wrong CSRF token answers 403: {wrong!r}")

    out = client.post("/console/sign-out", {"csrf": csrf or ""})
    check(out.status in (302, 303), f"F15: sign-out with the session's CSRF token redirects: {out!r} -> {out.header('location')}")
    answer, text = console_status(port, copied)
    check(refused(answer), f"F15: a copy of the signed-out cookie gets the sign-in page, not the console: GET /console {text}")
    answer, text = console_status(port, other.cookies["pb_session"])
    check(answer.status == 200, f"F15: another session of the same token still works: GET /console {text}")
    again, problem = signed_in(port, "F15 (again)")
    answer, text = console_status(port, again.cookies["pb_session"]) if again else (None, problem)
    check(again is not None and answer.status == 200, f"F15: signing in again with the same token works: GET /console {text}")


def check_f15_cluster(servers, check, postgres_url):
    pair, problem = servers.start("f15-postgres", [f'consoleKey: "{CONSOLE_KEY}"'],
                                  store=store_section("postgres", postgres_url), instances=2)
    if pair is None:
        check(False, f"F15 (PostgreSQL): the servers refused their config: {problem}")
        return
    a, b = pair
    client, problem = signed_in(a.port, "F15 (PostgreSQL)")
    if client is None:
        check(False, problem)
        return
    copied = client.cookies["pb_session"]
    answer, text = console_status(b.port, copied)
    check(answer.status == 200, f"F15 (PostgreSQL): a session signed in on instance A works on instance B: {text}")
    csrf = ConsoleClient.csrf(client.get("/console"))
    out = client.post("/console/sign-out", {"csrf": csrf or ""})
    signed_out = time.monotonic()
    check(out.status in (302, 303), f"F15 (PostgreSQL): sign-out on A with the CSRF token: {out!r}")
    answer, text = console_status(b.port, copied)
    while not refused(answer) and time.monotonic() - signed_out < 10:
        time.sleep(0.25)
        answer, text = console_status(b.port, copied)
    took = time.monotonic() - signed_out
    check(refused(answer), f"F15 (PostgreSQL): the copied cookie is refused on instance B after the sign-out on A: "
                           f"GET /console {text}" + (f" ({took:.1f} s after the sign-out)" if refused(answer) else " for 10 s"))
    answer, text = console_status(a.port, copied)
    check(refused(answer), f"F15 (PostgreSQL): ... and on A: GET /console {text}")


# ------------------------------------------------------------------------------------------------
# F9: /metrics and /readyz must not do store work per request


def burst(port, paths, clients=8):
    answers = collections.defaultdict(list)
    lock = threading.Lock()
    work = list(paths)

    def run():
        while True:
            with lock:
                if not work:
                    return
                path = work.pop()
            answer = http_request(port, "GET", path, timeout=10)
            with lock:
                answers[path].append(answer)
    threads = [threading.Thread(target=run, daemon=True) for _ in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers, time.monotonic() - began


def check_burst(port, check, label):
    answers, seconds = burst(port, ["/metrics", "/readyz"] * 200)
    for path in ("/metrics", "/readyz"):
        seen = answers[path]
        ok = len(seen) == 200 and all(a.status == 200 and a.seconds < 1.0 for a in seen)
        check(ok, f"F9{label}: 200 GET {path} (8 clients, mixed with the other path; {seconds:.1f} s in all), "
                  f"each 200 within 1 s: {summary(seen)}")


def count_probe_writes(port, read_checked_at, requests):
    """GET /readyz `requests` times, one after another, reading readiness_probe.checked_at after
    each: (how often it changed, seconds taken, statuses, the last value read)."""
    previous, changes, statuses = read_checked_at(), 0, collections.Counter()
    began = time.monotonic()
    for _ in range(requests):
        statuses[http_request(port, "GET", "/readyz").status] += 1
        value = read_checked_at()
        if value != previous:
            changes += 1
            previous = value
    return changes, time.monotonic() - began, statuses, previous


def check_probe_writes(check, label, changes, elapsed, statuses, last, requests, extra=""):
    allowed = 5 + int(elapsed)
    note = f" (last read: {last})" if isinstance(last, str) and last.startswith("error") else ""
    check(changes <= allowed and statuses.get(200) == requests,
          f"F9{label}: {requests} GET /readyz one after another ({elapsed:.1f} s; {dict(statuses)}) changed "
          f"readiness_probe.checked_at {changes} times (at most {allowed}: not a store write per request){note}{extra}")


def check_f9(servers, check):
    server, problem = servers.start("f9")
    if server is None:
        check(False, f"F9: the server refused its config: {problem}")
        return
    check_burst(server.port, check, "")
    database = os.path.join(server.workdir, "queue.db")

    def checked_at():
        try:
            connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
            try:
                row = connection.execute("SELECT checked_at FROM readiness_probe WHERE id = 1").fetchone()
            finally:
                connection.close()
            return row[0] if row else None
        except sqlite3.OperationalError as error:
            return f"error: {error}"

    wal = database + "-wal"
    wal_before = os.path.getsize(wal) if os.path.exists(wal) else 0
    changes, elapsed, statuses, last = count_probe_writes(server.port, checked_at, 200)
    wal_after = os.path.getsize(wal) if os.path.exists(wal) else 0
    check_probe_writes(check, "", changes, elapsed, statuses, last, 200,
                       f"; WAL {wal_before / 1024:.0f} -> {wal_after / 1024:.0f} KiB")


def psql(url, sql):
    result = subprocess.run(["psql", url, "-AtX", "-c", sql], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip())
    return result.stdout.strip()


def check_f9_postgres(servers, check, postgres_url):
    if not shutil.which("psql"):
        print("     F9 (PostgreSQL): skipped: no psql")
        return
    store = store_section("postgres", postgres_url)
    schema = re.search(r"schema: (\w+)", store).group(1)
    server, problem = servers.start("f9-postgres", store=store)
    if server is None:
        check(False, f"F9 (PostgreSQL): the server refused its config: {problem}")
        return
    started = time.monotonic()

    # /readyz: readiness_probe.checked_at read after each request, as on SQLite.
    def checked_at():
        try:
            return psql(postgres_url, f"SELECT checked_at FROM {schema}.readiness_probe WHERE id = 1")
        except RuntimeError as error:
            return f"error: {error}"
    check_probe_writes(check, " (PostgreSQL)", *count_probe_writes(server.port, checked_at, 100), 100)

    # /metrics: scans of deliveries in pg_stat_user_tables. A backend reports its counts when it
    # goes idle, at most once a second; what it could not report then waits 10 s (PostgreSQL's
    # PGSTAT_IDLE_INTERVAL). So each reading comes 11 s after the last request that may have
    # scanned deliveries (the /readyz above do not). The background (dispatcher polls, a gauge
    # refresh) is allowed 3 scans a second on top of 40.
    def scans():
        return int(psql(postgres_url, "SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0) FROM pg_stat_user_tables "
                                      f"WHERE schemaname = '{schema}' AND relname = 'deliveries'") or 0)

    time.sleep(max(0.0, started + 11 - time.monotonic()))
    before = scans()
    began = time.monotonic()
    statuses = collections.Counter(http_request(server.port, "GET", "/metrics").status for _ in range(200))
    burst_seconds = time.monotonic() - began
    time.sleep(11)
    after = scans()
    window = time.monotonic() - began
    allowed = 40 + 3 * window
    check(statuses.get(200) == 200 and after - before <= allowed,
          f"F9 (PostgreSQL): 200 GET /metrics one after another ({burst_seconds:.1f} s; {dict(statuses)}) scanned "
          f"deliveries {after - before} times in the {window:.0f} s from the first to 11 s after the last "
          f"(at most {allowed:.0f}: not once per request)")

    check_burst(server.port, check, " (PostgreSQL)")


# ------------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(ROOT / ".build/debug/patchbay"))
    parser.add_argument("--only", default=",".join(CHECKS), help="comma-separated: " + ",".join(CHECKS))
    parser.add_argument("--postgres-url", default=os.environ.get("PATCHBAY_TEST_POSTGRES_URL"),
                        help="default: $PATCHBAY_TEST_POSTGRES_URL; without one the PostgreSQL parts are skipped")
    parser.add_argument("--f1-control", action="store_true",
                        help="F1 trickles into POST /v1/events (which has a body deadline) instead of the sign-in form")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory even when every check passes")
    args = parser.parse_args()
    only = [name.strip().lower() for name in args.only.split(",") if name.strip()]
    unknown = set(only) - set(CHECKS)
    if unknown:
        parser.error(f"unknown checks: {', '.join(sorted(unknown))}")
    for source in ("127.0.0.2", "127.0.0.3"):
        try:
            with socket.socket() as probe:
                probe.bind((source, 0))
        except OSError as error:
            raise SystemExit(f"hostile-test: cannot bind {source} as a source address: {error}")

    workdir = tempfile.mkdtemp(prefix="patchbay-hostile-test-")
    servers = Servers(args.binary, workdir)
    check = Checks()
    began = time.monotonic()
    try:
        for name in only:
            started = time.monotonic()
            print(f"---- {name.upper()}")
            if name == "f1":
                check_f1(servers, check, control=args.f1_control)
                if not args.f1_control:
                    check_f1(servers, check, content_length=2000)
                    check_f1_answered(servers, check)
            elif name == "f2":
                check_f2(servers, check)
            elif name == "f5":
                check_f5(servers, check)
            elif name == "f9":
                check_f9(servers, check)
                if args.postgres_url:
                    check_f9_postgres(servers, check, args.postgres_url)
                else:
                    print("     F9 (PostgreSQL): skipped: no PATCHBAY_TEST_POSTGRES_URL")
            elif name == "f15":
                check_f15(servers, check)
                if args.postgres_url:
                    check_f15_cluster(servers, check, args.postgres_url)
                else:
                    print("     F15 (PostgreSQL, two instances): skipped: no PATCHBAY_TEST_POSTGRES_URL")
            print(f"     ({time.monotonic() - started:.0f} s)")
            servers.stop_all()
            servers.started = []
    finally:
        servers.stop_all()
    print(f"hostile test: {time.monotonic() - began:.0f} s")
    if not check.failures and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    check.finish("hostile test", workdir)


if __name__ == "__main__":
    main()
