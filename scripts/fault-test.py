#!/usr/bin/env python3
"""Fault suite: injects the faults of README "What these promises mean when things break" into the
real `patchbay serve` (one instance on SQLite, two sharing one PostgreSQL database) and checks, at
the sink and in the store, that the promises hold. Each scenario prints what it saw, then ok/FAIL
lines:

- store-write (SQLite, PostgreSQL): the store refuses writes for 25 s just after a Statuspage
  create, a Grafana silence and a webhook went out (the sink takes 6 s to answer each). SQLite:
  another connection holds `BEGIN IMMEDIATE`; PostgreSQL: the database takes no connections and
  the instances' connections are terminated. Exactly one incident, one silence, one webhook id per
  event, and the maintenance knows the incident and the silence the sink created.
- db-pause (PostgreSQL): `kill -STOP` of the server for 8 s while 10 slow sends (12 s) are in flight
  on two instances, and a monitor keeps polling instance 2's /metrics until 3 s past the resume
  (its pool fills with waiting reads; if its heartbeat fails for want of a connection, the pause
  ends just after a failed beat, up to 7 s later, the worst moment): no webhook id twice, nothing
  lost, both instances accept events within 5 s of the resume, without a restart.
- db-restart (PostgreSQL): under a steady load on two instances, `pg_ctl restart -m fast`, then the
  server held down for 6 s (stop -m fast, start): no acknowledged event lost; intake answers
  only 202 or 503 with Retry-After (never 500, never a hang); duplicates no more than the sends in
  flight during the faults.
- clock-skew (PostgreSQL): instance 2 runs 120 s ahead (faketime): it steals none of instance 1's
  in-flight leases (slow sends, no webhook id twice) and sends a reminder no earlier than due.
- paced (PostgreSQL): a backlog of 400 events to a paced webhook (10/s, shared by the cluster,
  posted 20 s ahead) does not hold the workers an unpaced webhook needs (it answers in 500 ms):
  200 events to it drain within 2x of the time they take alone.
- agent-outage: the SSM document's steps run against a dead URL exit 0 and log the failure
  (agents/tests/test_agents.py -k document_agent_outage_never_fails_the_command).

    scripts/fault-test.py                                   # every scenario, both stores
    scripts/fault-test.py --store sqlite --only store-write
    scripts/fault-test.py --binary /tmp/old/patchbay --only db-pause,clock-skew

PostgreSQL scenarios start a throwaway server of their own (Debian's binaries, as
scripts/with-postgres does: they pause, stop and restart it), whatever PATCHBAY_TEST_POSTGRES_URL
says; without the binaries they are skipped. clock-skew needs `faketime` (scripts/ensure-deps
installs Debian's package when missing). Everything runs on 127.0.0.1; a scenario's directory
(logs, sink record) is kept when it fails. Exits 1 if any check fails.
"""
import argparse
import collections
import concurrent.futures
import datetime
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from patchbay_harness import ROOT, PostgresServer, Server, Sink, http_request, store_section

TOKEN = "fault-token-0123456789abcdef"
SECRET = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


def iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


TOMORROW = (int(time.time()) // 3600 + 24) * 3600


def event(kind, app, window, instance=None, start=None, end=None):
    start = TOMORROW if start is None else start
    body = {"type": f"patch.{kind}", "app": app, "environment": "Production",
            "window": {"id": window, "start": iso(start), "end": iso(end or start + 3600)}}
    if instance:
        body["instance"] = {"id": instance}
    return body


def post(port, body, key=None, timeout=10):
    """POSTs one event; the harness's Answer (status None when nothing came back in `timeout`)."""
    return http_request(port, "POST", "/v1/events", json.dumps(body).encode(), timeout=timeout, headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json", "Idempotency-Key": key or uuid.uuid4().hex})


def identity(body):
    """What tells events apart at the webhook: (window id, type, instance id)."""
    event = json.loads(body)
    return event["window"]["id"], event["type"], (event.get("instance") or {}).get("id")


class Webhooks:
    """The webhook requests the sink received on one path."""

    def __init__(self, sink, path):
        self.all = [r for r in sink.requests() if r["path"] == path]
        self.ids = collections.Counter(r["headers"].get("webhook-id") for r in self.all)
        self.events = collections.Counter(identity(r["body"]) for r in self.all)

    def twice(self):
        return {i: n for i, n in self.ids.items() if n > 1}

    def twice_text(self, limit=3):
        twice = sorted(self.twice().items())
        if not twice:
            return "none"
        return ", ".join(f"{i} x{n}" for i, n in twice[:limit]) + (f" and {len(twice) - limit} more" if len(twice) > limit else "")

    def duplicates(self):
        return sum(n - 1 for n in self.ids.values())


class Scenario:
    """One scenario's working directory, sink, servers and checks; `saw` prints an observation."""

    def __init__(self, suite, name):
        self.suite, self.name = suite, name
        self.binary = suite.binary
        self.workdir = tempfile.mkdtemp(prefix=f"patchbay-fault-{name.replace('/', '-')}-")
        self.failures, self.servers, self.sink = [], [], None
        self.config = os.path.join(self.workdir, "patchbay.yaml")

    def saw(self, text):
        print(f"  saw  {text}", flush=True)

    def check(self, condition, text):
        print(f"  {'ok  ' if condition else 'FAIL'} {text}", flush=True)
        if not condition:
            self.failures.append(text)

    def start_sink(self, delay_ms=0):
        self.sink = Sink(self.binary, self.workdir, delay_ms=delay_ms)
        return f"http://127.0.0.1:{self.sink.port}"

    def write_config(self, store, delivery, targets, routes):
        with open(self.config, "w") as out:
            out.write(f"""server: {{listen: "127.0.0.1:0", tokens: ["{TOKEN}"], drainDelay: 0s}}
{store}
delivery: {delivery}
targets:
{targets}
routes:
{routes}
""")

    def start_servers(self, count):
        for n in range(count):
            server = Server(self.binary, self.workdir, self.config, 0, name=f"instance-{n + 1}")
            server.start()
            self.servers.append(server)
        return self.servers

    def cli(self, *args):
        result = subprocess.run([self.binary, *args, "--config", self.config], cwd=self.workdir, capture_output=True, text=True,
                                timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"patchbay {' '.join(args)}: {result.stderr.strip()[-500:]}")
        return json.loads(result.stdout or "null")

    def deliveries(self, state=None, target=None):
        args = ["deliveries", "list", "--json", "--limit", "1000"]
        if state:
            args += ["--state", state]
        if target:
            args += ["--target", target]
        return self.cli(*args)

    def unfinished(self):
        return [d for state in ("pending", "in_flight") for d in self.deliveries(state)]

    def wait_until(self, condition, timeout, step=0.25):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if condition():
                return True
            time.sleep(step)
        return condition()

    def log_lines(self, pattern, limit=6):
        """Matching lines of every instance's logs, shortened, each named by its instance."""
        found = []
        for server in self.servers:
            for line in server.log_text().splitlines():
                if re.search(pattern, line):
                    found.append(f"{server.name}: {line[:260]}")
        return found[:limit] + ([f"... and {len(found) - limit} more"] if len(found) > limit else []), len(found)

    def show_log(self, pattern, what, limit=6):
        lines, count = self.log_lines(pattern, limit)
        self.saw(f"{what}: {count} log line(s)")
        for line in lines:
            print(f"         {line}")
        return count

    def close(self, keep):
        def stop(server):
            began = time.time()
            server.stop()
            if time.time() - began > 12:
                self.saw(f"{server.name} took {time.time() - began:.0f} s to stop after SIGTERM (then SIGKILL: {server.exit_description()})")
        stopping = [threading.Thread(target=stop, args=(server,)) for server in self.servers]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()
        if self.sink:
            self.sink.stop()
        if self.failures or keep:
            print(f"  logs and sink record kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# store-write: the store refuses writes right after a send


def store_write(sc, store):
    hold_seconds, send_ms, lease = 25, 6000, 40
    base = sc.start_sink()
    database = None
    if store == "sqlite":
        section = store_section("sqlite")
    else:
        database = f"fault_store_{uuid.uuid4().hex[:8]}"
        section = store_section("postgres", sc.suite.pg.create_database(database))
    sc.write_config(section, f"{{lease: {lease}s, pollInterval: 200ms, retry: {{base: 500ms, cap: 2s}}}}",
                    f'  hook: {{kind: webhook, url: "{base}/webhook/store", secret: "{SECRET}", allowPrivateNetworks: true}}\n'
                    f'  status: {{kind: statuspage, page: faultpage, apiKey: "fault-statuspage-key", baseURL: "{base}/statuspage"}}\n'
                    f'  graf: {{kind: grafana, url: "{base}/grafana", token: "fault-grafana-token"}}',
                    "  - targets: [hook]\n    statuspage: {target: status}\n    grafana: {target: graf, matchers: ['app=\"Store\"']}\n"
                    "    reminders: []\n    announceStart: false")
    servers = sc.start_servers(1 if store == "sqlite" else 2)
    incidents = "/statuspage/v1/pages/faultpage/incidents"
    sc.sink.script(incidents, [{"status": 201, "delayMs": send_ms}])
    sc.sink.script("/webhook/store", [{"delayMs": send_ms}])
    # The silence's lookup and its create each take send_ms: the create is answered in the hold.
    silences = "/grafana/api/alertmanager/grafana/api/v2/silences"
    sc.sink.script(silences, [{"delayMs": send_ms}, {"delayMs": send_ms}])
    window = "mw-store-1"
    answer = post(servers[0].port, event("scheduled", "Store", window))
    posted = time.time()
    sc.saw(f"patch.scheduled for {window} answered {answer.status}; Statuspage create and webhook each take {send_ms / 1000:.0f} s at the sink")
    if answer.status != 202:
        sc.check(False, f"the event was accepted (HTTP {answer.status})")
        return
    time.sleep(1)

    # The fault: nobody can write for hold_seconds.
    held = {}
    if store == "sqlite":
        def hold():
            connection = sqlite3.connect(os.path.join(sc.workdir, "queue.db"), timeout=10, isolation_level=None)
            connection.execute("BEGIN IMMEDIATE")
            held["from"] = time.time()
            time.sleep(hold_seconds)
            connection.execute("COMMIT")
            connection.close()
            held["to"] = time.time()
        how = "another connection holds BEGIN IMMEDIATE"
    else:
        def hold():
            pg = sc.suite.pg
            pg.sql(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            held["from"] = time.time()
            terminated = 0
            while time.time() < held["from"] + hold_seconds:
                terminated += int(pg.sql(f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{database}'") or 0)
                time.sleep(0.5)
            pg.sql(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
            held["to"] = time.time()
            held["terminated"] = terminated
        how = "the database takes no connections and the instances' connections are terminated"
    holder = threading.Thread(target=hold)
    holder.start()
    holder.join()
    sc.saw(f"store refused writes from +{held['from'] - posted:.1f} s to +{held['to'] - posted:.1f} s after the 202 ({how}"
           + (f"; {held['terminated']} backends terminated)" if "terminated" in held else ")"))

    # Done when both deliveries are final; on the old code the lease must run out first.
    def settled():
        states = [d["state"] for d in sc.deliveries()]
        return len(states) >= 3 and all(s in ("delivered", "dead") for s in states)
    sc.wait_until(lambda: time.time() > held["to"] + 2 and settled(), timeout=lease + 10 - (time.time() - posted))
    time.sleep(1)
    finished = time.time()
    requests = sc.sink.requests()
    creates = [r for r in requests if r["path"] == incidents and r["method"] == "POST"]
    others = [r for r in requests if r["vendor"] == "statuspage" and r not in creates]
    hooks = Webhooks(sc.sink, "/webhook/store")
    created_ids = [json.loads(r.get("answer") or "{}").get("id") for r in creates]
    sc.saw(f"after {finished - posted:.0f} s: {len(creates)} incident create(s) {created_ids} at "
           f"{[round(parse_time(r['startedAt']) - posted, 1) for r in creates]} s; other Statuspage requests: "
           f"{[(r['method'], r['path'].rsplit('/', 1)[-1]) for r in others]}; webhook ids {dict(hooks.ids)}")
    sc.show_log(r"could not record|recorded the attempt|lease expired|extra vendor object|close this one by hand|released deliveries", "record retries and released leases", limit=8)
    states = {d["target"]: f"{d['state']} after {d['attempts']} attempt(s)" for d in sc.deliveries()}
    sc.saw(f"deliveries: {states}")
    try:
        shown = sc.cli("maintenances", "show", window, "--json")
        known_by = {o["target"]: o.get("objectID") for o in (shown or {}).get("vendorObjects", [])}
    except RuntimeError as error:
        known_by = {"error": f"{error}"}
    known = list(known_by.values())
    sc.saw(f"maintenance {window} knows vendor objects {known}")

    sc.check(sc.log_lines(r"could not record")[1] > 0, "the fault bit: recording an attempt failed at least once")
    sc.check(len(creates) == 1, f"exactly one incident created ({len(creates)})")
    sc.check(not hooks.twice() and hooks.events[(window, "patch.scheduled", None)] >= 1,
             f"one webhook id per event: the event's webhook arrived ({sum(hooks.events.values())} request(s)), no id twice ({hooks.twice_text()})")
    sc.check(bool(created_ids) and known_by.get("status") == created_ids[0],
             f"the maintenance knows the incident the sink created ({known_by} vs {created_ids[:1]})")
    made = [json.loads(r.get("answer") or "{}").get("silenceID") for r in requests if r["path"] == silences and r["method"] == "POST"]
    sc.check(len(made) == 1 and known_by.get("graf") == made[0],
             f"exactly one Grafana silence made, and the maintenance knows it ({made} vs {known_by})")


# ---------------------------------------------------------------------------------------------
# db-pause: kill -STOP of the PostgreSQL server under slow sends


def serve_again(server, since, window, timeout=20):
    """Seconds from `since` until the instance's /readyz is 200 and it accepted an event (202)."""
    result = {}
    deadline = since + timeout
    key = uuid.uuid4().hex
    while time.time() < deadline:
        if "ready" not in result:
            if http_request(server.port, "GET", "/readyz", timeout=2).status == 200:
                result["ready"] = time.time() - since
            else:
                time.sleep(0.1)
                continue
        if post(server.port, event("started", "Pause", window, "i-after"), key=key, timeout=5).status == 202:
            result["accepted"] = time.time() - since
            return result
        time.sleep(0.1)
    return result


def db_pause(sc):
    pause_seconds, send_ms, sends = 8, 12000, 10
    base = sc.start_sink()
    sc.write_config(store_section("postgres", sc.suite.pg.url()), "{pollInterval: 200ms, retry: {base: 500ms, cap: 2s}}",
                    f'  hook: {{kind: webhook, url: "{base}/webhook/pause", secret: "{SECRET}", allowPrivateNetworks: true}}',
                    "  - targets: [hook]\n    reminders: []\n    announceStart: false")
    servers = sc.start_servers(2)
    sc.sink.script("/webhook/pause", [{"delayMs": send_ms}] * sends)
    accepted = []
    for i in range(sends):
        body = event("started", "Pause", f"mw-pause-{i}", "i-1")
        if post(servers[i % 2].port, body).status == 202:
            accepted.append(identity(json.dumps(body)))
    sc.wait_until(lambda: len(sc.deliveries("in_flight")) >= sends, timeout=5, step=0.1)
    sc.saw(f"{len(accepted)} events accepted (posted alternately to each instance); {len(sc.deliveries('in_flight'))} slow sends in flight")
    time.sleep(1)

    # A monitor polls instance 2's /metrics through the pause (and a little past it): its pool
    # fills up with waiting reads.
    stop_polling = threading.Event()

    def monitor():
        while not stop_polling.is_set():
            http_request(servers[1].port, "GET", "/metrics", timeout=15)
    pollers = [threading.Thread(target=monitor, daemon=True) for _ in range(24)]
    sc.suite.pg.pause()
    paused = time.time()
    for poller in pollers:
        poller.start()
    time.sleep(pause_seconds)
    # The worst moment to resume: just after instance 2 logged a failed heartbeat (its pool had no
    # connection for it in time), when it sleeps before the next one. Without such failures
    # (the heartbeat has a connection of its own), the pause ends after pause_seconds.
    failed_beats = lambda: len(re.findall(r"heartbeat failed", servers[1].log_text()))
    seen = failed_beats()
    timing = f"after {pause_seconds} s"
    if seen:
        if sc.wait_until(lambda: failed_beats() > seen, timeout=7, step=0.02):
            timing = "just after a failed heartbeat of instance-2"
    sc.suite.pg.resume()
    resumed = time.time()
    threading.Timer(3, stop_polling.set).start()  # the monitor goes on a little: it knows nothing of the pause
    sc.saw(f"PostgreSQL stopped (SIGSTOP of the postmaster and its children) for {resumed - paused:.1f} s, /metrics polled on "
           f"instance-2 by 24 clients until 3 s past the resume; resumed {timing}")

    after = {}
    threads = [threading.Thread(target=lambda s=s, n=n: after.__setitem__(s.name, serve_again(s, resumed, f"mw-pause-after-{n}")))
               for n, s in enumerate(servers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n, server in enumerate(servers):
        if "accepted" in after.get(server.name, {}):
            accepted.append((f"mw-pause-after-{n}", "patch.started", "i-after"))
    sc.saw("after the resume: " + "; ".join(
        f"{name} ready in {r.get('ready', float('nan')):.1f} s, accepted an event in {r.get('accepted', float('nan')):.1f} s"
        for name, r in after.items()))

    sc.wait_until(lambda: not sc.unfinished() and time.time() > resumed + 4, timeout=40, step=0.5)
    time.sleep(1)
    hooks = Webhooks(sc.sink, "/webhook/pause")
    lost = [e for e in accepted if hooks.events[e] == 0]
    sc.saw(f"webhook: {len(hooks.all)} requests, {len(hooks.ids)} ids; still unfinished: {len(sc.unfinished())}")
    sc.show_log(r"released deliveries|heartbeat (failed|back)|lease expired|could not record", "heartbeat and lease events")
    sc.check(not hooks.twice(), f"no webhook id twice ({hooks.duplicates()} duplicate sends: {hooks.twice_text()})")
    sc.check(not lost, f"nothing lost: every accepted event reached the webhook ({len(accepted)} accepted, {len(lost)} missing)")
    for server in servers:
        r = after.get(server.name, {})
        sc.check(r.get("accepted", 99) <= 5 and server.alive(),
                 f"{server.name} serves again within 5 s of the resume without a restart "
                 f"({'never' if 'accepted' not in r else '%.1f s' % r['accepted']}, {server.exit_description()})")


# ---------------------------------------------------------------------------------------------
# db-restart: PostgreSQL restarted, then held down, under a steady load


def db_restart(sc):
    down_seconds = 6
    base = sc.start_sink()
    sc.write_config(store_section("postgres", sc.suite.pg.url()),
                    "{timeout: 5s, lease: 20s, pollInterval: 200ms, retry: {base: 200ms, cap: 2s}}",
                    f'  hook: {{kind: webhook, url: "{base}/webhook/restart", secret: "{SECRET}", allowPrivateNetworks: true,'
                    f' rate: {{perSecond: 10000, burst: 10000}}}}',
                    "  - targets: [hook]\n    reminders: []\n    announceStart: false")
    servers = sc.start_servers(2)
    sc.sink.script("/webhook/restart", [{"delayMs": 300}] * 5000)
    stop = threading.Event()
    lock = threading.Lock()
    accepted, answers, slow = [], collections.Counter(), []
    began = time.time()

    def client(c):
        n = 0
        while not stop.is_set():
            body = event("completed", "Restart", f"mw-restart-{c}-{n}", f"i-{c}")
            key = uuid.uuid4().hex
            for tries in range(200):  # an agent: the same key again after a 503, on either instance
                server = servers[(c + tries) % 2]
                sent = time.time()
                answer = post(server.port, body, key=key, timeout=10)
                kind = answer.status if answer.status != 503 else ("503+Retry-After" if answer.header("retry-after") else "503 without Retry-After")
                with lock:
                    answers[kind if answer.status is not None else f"no answer ({answer.error})"] += 1
                    if answer.seconds > 6 or kind not in (202, "503+Retry-After"):
                        slow.append(f"{server.name} at +{sent - began:.1f} s: {answer.status or answer.error} after {answer.seconds:.1f} s")
                if answer.status == 202:
                    with lock:
                        accepted.append(identity(json.dumps(body)))
                    break
                time.sleep(0.2)
            n += 1
            time.sleep(0.05)
    clients = [threading.Thread(target=client, args=(c,)) for c in range(4)]
    for thread in clients:
        thread.start()
    faults = []
    time.sleep(4)
    t = time.time()
    sc.suite.pg.restart("fast")
    faults.append((t, time.time()))
    sc.saw(f"pg_ctl restart -m fast at +{t - began:.1f} s took {time.time() - t:.1f} s")
    time.sleep(5)
    t = time.time()
    sc.suite.pg.down("fast")
    time.sleep(down_seconds)
    sc.suite.pg.up()
    faults.append((t, time.time()))
    sc.saw(f"pg_ctl stop -m fast at +{t - began:.1f} s, started again {time.time() - t:.1f} s later")
    during = dict(answers)
    time.sleep(6)
    stop.set()
    for thread in clients:
        thread.join()
    sc.saw(f"intake answers over {time.time() - began:.0f} s: {dict(answers)}; slower than 6 s or neither 202 nor 503: {slow or 'none'}")

    sc.wait_until(lambda: not sc.unfinished(), timeout=60, step=0.5)
    sc.saw(f"nothing pending or in flight from +{time.time() - began:.0f} s")
    time.sleep(1)
    hooks = Webhooks(sc.sink, "/webhook/restart")
    lost = [e for e in accepted if hooks.events[e] == 0]
    spans = [(parse_time(r["startedAt"]), parse_time(r["receivedAt"])) for r in hooks.all]
    in_flight = sum(1 for a, b in spans if any(a <= f_end and b >= f_start for f_start, f_end in faults))
    unfinished = len(sc.unfinished())
    for i, n in sorted(hooks.twice().items())[:5]:
        sc.saw(f"  {i} sent {n} times, at " + ", ".join(f"+{parse_time(r['startedAt']) - began:.1f} s" for r in hooks.all if r["headers"].get("webhook-id") == i))
    sc.saw(f"webhook: {len(hooks.all)} requests for {len(accepted)} accepted events; {hooks.duplicates()} duplicate(s); "
           f"{in_flight} sends in flight during the faults; unfinished at the end: {unfinished}")
    sc.show_log(r"released deliveries|lease expired|could not record|recorded the attempt after", "record and lease events")
    bad = {k: v for k, v in answers.items() if k not in (202, "503+Retry-After")}
    sc.check(during.get("503+Retry-After", 0) > 0, f"the fault bit: intake answered 503 while the database was down ({during.get('503+Retry-After', 0)})")
    sc.check(not lost and unfinished == 0, f"0 acknowledged events lost ({len(accepted)} accepted, {len(lost)} missing, {unfinished} unfinished)")
    sc.check(not bad and not slow, f"intake answered only 202 or 503 with Retry-After, each within 6 s (other: {bad or 'none'})")
    sc.check(hooks.duplicates() <= in_flight, f"duplicates no more than the sends in flight during the faults ({hooks.duplicates()} <= {in_flight})")


# ---------------------------------------------------------------------------------------------
# clock-skew: one instance 120 s ahead


def faketime():
    """The faketime command (Debian's package faketime, installed by scripts/ensure-deps if missing).
    It forks the server (the harness signals their process group). Setting LD_PRELOAD ourselves
    instead loses the server's arguments: it prints its help and exits."""
    if not shutil.which("faketime"):
        subprocess.run([str(ROOT / "scripts/ensure-deps"), "faketime"], capture_output=True, timeout=600)
    return shutil.which("faketime")


def clock_skew(sc):
    skew, send_ms, sends, lead, due_in = 120, 20000, 6, 300, 30
    tool = faketime()
    if not tool:
        sc.check(False, "faketime is installed (apt-get install faketime)")
        return
    base = sc.start_sink()
    sc.write_config(store_section("postgres", sc.suite.pg.url()), "{timeout: 30s, lease: 60s, pollInterval: 200ms, retry: {base: 500ms, cap: 2s}}",
                    f'  slow: {{kind: webhook, url: "{base}/webhook/skew", secret: "{SECRET}", allowPrivateNetworks: true}}\n'
                    f'  notices: {{kind: webhook, url: "{base}/webhook/remind", secret: "{SECRET}", allowPrivateNetworks: true}}',
                    "  - match: {app: Slow}\n    targets: [slow]\n    reminders: []\n    announceStart: false\n"
                    f"  - match: {{app: Remind}}\n    targets: [notices]\n    reminders: [{lead}s]\n    announceStart: false")
    first = sc.start_servers(1)[0]
    sc.sink.script("/webhook/skew", [{"delayMs": send_ms}] * sends)
    began = time.time()
    accepted = []
    for i in range(sends):
        body = event("started", "Slow", f"mw-skew-{i}", "i-1")
        if post(first.port, body).status == 202:
            accepted.append(identity(json.dumps(body)))
    start = int(time.time()) + lead + due_in
    due = start - lead
    reminder = post(first.port, event("scheduled", "Remind", "mw-remind", start=start))
    sc.wait_until(lambda: len(sc.deliveries("in_flight")) >= sends, timeout=5, step=0.1)
    sc.saw(f"instance-1 (true clock) took {len(accepted)} slow sends ({send_ms / 1000:.0f} s each, lease 60 s); "
           f"{len(sc.deliveries('in_flight'))} in flight; a reminder is due at +{due - began:.0f} s ({reminder.status})")
    # Only the wall clock is moved: with libfaketime's monotonic clock faked as well, serve hangs
    # before its first log line on PostgreSQL.
    sc.servers.append(Server(sc.binary, sc.workdir, sc.config, 0, name="instance-2-skewed", wrapper=[tool, "-f", f"+{skew}s"],
                             env={"FAKETIME_DONT_FAKE_MONOTONIC": "1"}))
    sc.servers[1].start()
    line = next((line for line in sc.servers[1].log_text().splitlines() if re.match(r"\d{4}-\d\d-\d\dT", line)), "")
    shown = re.match(r"(\d{4}-\d\d-\d\dT[\d:.]+Z?)", line)
    ahead = (parse_time(shown.group(1) if shown.group(1).endswith("Z") else shown.group(1) + "Z") - time.time()) if shown else None
    sc.saw(f"instance-2 started under faketime -f +{skew}s at +{time.time() - began:.1f} s"
           + (f"; its log clock reads {ahead:+.0f} s" if ahead is not None else ""))

    sc.wait_until(lambda: time.time() > due + 4 and not sc.unfinished(), timeout=max(send_ms / 1000, due - time.time()) + 15, step=0.5)
    hooks = Webhooks(sc.sink, "/webhook/skew")
    notices = [r for r in sc.sink.requests() if r["path"] == "/webhook/remind" and json.loads(r["body"])["type"] == "patch.reminder"]
    arrivals = [parse_time(r["startedAt"]) for r in notices]
    lost = [e for e in accepted if hooks.events[e] == 0]
    sc.saw(f"slow webhook: {len(hooks.all)} requests, {len(hooks.ids)} ids; reminder sent at "
           f"{[f'{a - due:+.1f} s' for a in arrivals] or 'never'} (relative to due)")
    sc.show_log(r"released deliveries|lease expired|clock", "lease and clock events")
    sc.check(not hooks.twice() and not lost, f"no lease stolen: no webhook id twice ({hooks.twice_text()}), none lost ({len(lost)})")
    sc.check(len(arrivals) == 1 and arrivals[0] >= due - 1, f"the reminder sent once, not early ({[round(a - due, 1) for a in arrivals]} s from due)")


# ---------------------------------------------------------------------------------------------
# paced: a slow paced vendor does not hold the workers the others need


def post_many(servers, bodies, threads=8):
    def one(n):
        body = bodies[n]
        key = uuid.uuid4().hex
        for _ in range(50):
            if post(servers[n % len(servers)].port, body, key=key).status == 202:
                return identity(json.dumps(body))
            time.sleep(0.2)
        return None
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return [e for e in pool.map(one, range(len(bodies))) if e]


def paced(sc, rate=10, slow_events=400, fast_events=200, settle=20, fast_ms=500):
    """F8 at 10/s rather than the issue's 1/s: before the fix the admit queue grew by
    r - 1/(1/r + guard) per second, 0.09/s at 1/s (32 workers taken in about 6 minutes) but 2/s at
    10/s (in about 16 s). The unpaced vendor answers in fast_ms, so its drain depends on how many
    workers it gets rather than on intake speed."""
    base = sc.start_sink()
    section = store_section("postgres", sc.suite.pg.url())
    schema = re.search(r"schema: (\w+)", section).group(1)

    def row_updates():
        """Rows of `deliveries` updated so far (claims, requeues, results), from PostgreSQL's statistics."""
        sc.suite.pg.sql("SELECT pg_stat_clear_snapshot()", database="patchbay_test")
        return int(sc.suite.pg.sql(f"SELECT n_tup_upd FROM pg_stat_user_tables WHERE schemaname = '{schema}' AND relname = 'deliveries'",
                                   database="patchbay_test") or 0)
    sc.write_config(section, "{concurrency: 16, pollInterval: 200ms}",
                    f'  slow: {{kind: webhook, url: "{base}/webhook/slow", secret: "{SECRET}", allowPrivateNetworks: true,'
                    f' rate: {{perSecond: {rate}, burst: 1}}}}\n'
                    f'  fast: {{kind: webhook, url: "{base}/webhook/fast", secret: "{SECRET}", allowPrivateNetworks: true,'
                    f' rate: {{perSecond: 10000, burst: 10000}}}}',
                    "  - match: {app: S}\n    targets: [slow]\n    reminders: []\n    announceStart: false\n"
                    "  - match: {app: F}\n    targets: [fast]\n    reminders: []\n    announceStart: false")
    servers = sc.start_servers(2)
    # The unpaced vendor answers in fast_ms: its drain depends on the workers it gets.
    sc.sink.script("/webhook/fast", [{"delayMs": fast_ms}] * (2 * fast_events))

    def drain_fast(tag, label, limit):
        began = time.time()
        accepted = post_many(servers, [event("completed", "F", f"mw-fast-{tag}-{i}", "i-1") for i in range(fast_events)])
        posted = time.time() - began
        want = {e for e in accepted}
        done = sc.wait_until(lambda: want <= set(Webhooks(sc.sink, "/webhook/fast").events), timeout=limit, step=0.1)
        drained = time.time() - began if done else None
        sends = [(parse_time(r["startedAt"]), parse_time(r["receivedAt"])) for r in Webhooks(sc.sink, "/webhook/fast").all
                 if f"-{tag}-" in r["body"]]
        first = min((a for a, _ in sends), default=began) - began
        widest = max((sum(1 for a, b in sends if a <= t < b) for t, _ in sends), default=0)
        sc.saw(f"{label}: {len(accepted)} events to the unpaced target (answering in {fast_ms} ms) posted in {posted:.1f} s; "
               + (f"all delivered after {drained:.1f} s" if done else f"not all delivered after {limit:.0f} s ({len(sends)} sent)")
               + f"; first send after {first:.1f} s, at most {widest} in flight")
        return drained

    alone = drain_fast("alone", "alone", 60)
    began = time.time()
    slow_accepted = post_many(servers, [event("completed", "S", f"mw-slow-{i}", "i-1") for i in range(slow_events)])
    sc.saw(f"{len(slow_accepted)} events to the paced target ({rate}/s) posted in {time.time() - began:.1f} s; waiting {settle} s")
    sent, updates, measured = len(Webhooks(sc.sink, "/webhook/slow").all), row_updates(), time.time()
    time.sleep(max(5, began + settle - time.time()))
    in_flight = collections.Counter(d["target"] for d in sc.deliveries("in_flight"))
    seconds = time.time() - measured
    sends_rate = (len(Webhooks(sc.sink, "/webhook/slow").all) - sent) / seconds
    updates_rate = (row_updates() - updates) / seconds
    sc.saw(f"then: {len(Webhooks(sc.sink, '/webhook/slow').all)} paced sends done ({sends_rate:.1f}/s over the last {seconds:.0f} s, "
           f"while deliveries rows were updated {updates_rate:.0f}/s); in flight by target {dict(in_flight)} of 32 workers")
    limit = max(2 * alone + 15, 30)
    busy = drain_fast("busy", "with the paced backlog", limit)
    slow_hooks = Webhooks(sc.sink, "/webhook/slow")
    times = sorted(parse_time(r["startedAt"]) for r in slow_hooks.all)
    gap = min((b - a for a, b in zip(times, times[1:])), default=0)
    sc.saw(f"{'∞' if not busy else f'{busy / alone:.1f}'}x alone; paced sends so far {len(slow_hooks.all)}, smallest gap between two {gap:.3f} s")
    sc.show_log(r"lease expired|pacing", "pacing events")
    sc.check(busy is not None and busy <= 2 * alone,
             f"the unpaced target drains within 2x of its time alone ({'never' if busy is None else f'{busy:.1f} s'} vs {alone:.1f} s)")
    sc.check(not slow_hooks.twice(), f"the paced target: no webhook id twice ({slow_hooks.twice_text()})")


# ---------------------------------------------------------------------------------------------
# agent-outage: the SSM document's steps against a dead URL


def agent_outage(sc):
    name = "document_agent_outage_never_fails_the_command"
    result = subprocess.run([sys.executable, str(ROOT / "agents/tests/test_agents.py"), "--binary", sc.binary, "--require-binary", "-k", name],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    output = (result.stdout + result.stderr).strip()
    sc.saw("reportStarted and reportResult run against http://127.0.0.1:9 (nothing listens), and once after a failed patch step;"
           " the agent test checks each exits 0 and logs 'gave up after', the URL and 'patch.… was not reported':")
    for line in output.splitlines()[-12:]:
        print(f"         {line[:300]}")
    if re.search(rf"^SKIP {name}", result.stdout, re.M):
        sc.saw("skipped by the agent tests (see above)")
        return
    sc.check(result.returncode == 0 and re.search(rf"^ok +{name}", result.stdout, re.M) is not None,
             f"the SSM document's steps against a dead URL exit 0 and the log names the failure (agent test exit {result.returncode})")


# ---------------------------------------------------------------------------------------------


class Suite:
    def __init__(self, binary, keep):
        self.binary, self.keep, self.pg = binary, keep, None


SCENARIOS = [
    ("store-write/sqlite", "sqlite", lambda sc: store_write(sc, "sqlite")),
    ("store-write/postgres", "postgres", lambda sc: store_write(sc, "postgres")),
    ("db-pause", "postgres", db_pause),
    ("db-restart", "postgres", db_restart),
    ("clock-skew", "postgres", clock_skew),
    ("paced", "postgres", paced),
    ("agent-outage", None, agent_outage),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(ROOT / ".build/debug/patchbay"))
    parser.add_argument("--only", help="comma-separated scenario names (or prefixes): " + ", ".join(n for n, _, _ in SCENARIOS))
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"],
                        help="default: both when PostgreSQL's server binaries are installed, else sqlite")
    parser.add_argument("--keep", action="store_true", help="keep every scenario's directory (logs, sink record), not only failed ones")
    args = parser.parse_args()
    args.binary = os.path.abspath(args.binary)
    if not os.access(args.binary, os.X_OK):
        raise SystemExit(f"no patchbay binary at {args.binary} (swift build, or --binary)")
    store = args.store or ("both" if PostgresServer.binaries() else "sqlite")
    if store == "sqlite" and not args.store:
        print("fault-test: no PostgreSQL server binaries (/usr/lib/postgresql/*/bin); skipping the PostgreSQL scenarios", flush=True)
    wanted = [w.strip() for w in (args.only or "").split(",") if w.strip()]
    chosen = [(name, kind, run) for name, kind, run in SCENARIOS
              if (not wanted or any(name == w or name.startswith(w) for w in wanted)) and (kind is None or store in (kind, "both"))]
    if not chosen:
        raise SystemExit("no scenario chosen")

    suite = Suite(args.binary, args.keep)
    began = time.time()
    results = []
    try:
        if any(kind == "postgres" for _, kind, _ in chosen):
            suite.pg = PostgresServer().start()
            print(f"fault-test: PostgreSQL {suite.pg.sql('SHOW server_version')} of our own on 127.0.0.1:{suite.pg.port}", flush=True)
        for name, kind, run in chosen:
            print(f"== {name}", flush=True)
            sc = Scenario(suite, name)
            started = time.time()
            try:
                run(sc)
            except (Exception, SystemExit) as error:  # a scenario that breaks is a failure, the others still run
                sc.check(False, f"scenario ran to its end ({type(error).__name__}: {str(error)[-1500:]})")
            finally:
                if suite.pg:
                    suite.pg.resume()
                sc.close(args.keep)
            seconds = time.time() - started
            results.append((name, not sc.failures, seconds))
            print(f"  {'passed' if not sc.failures else 'FAILED'} in {seconds:.0f} s", flush=True)
    finally:
        if suite.pg:
            suite.pg.stop()
    failed = [name for name, ok, _ in results if not ok]
    print(f"fault-test: {len(results) - len(failed)} of {len(results)} scenarios passed in {time.time() - began:.0f} s"
          + (f"; FAILED: {', '.join(failed)}" if failed else "") + f" ({args.binary})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
