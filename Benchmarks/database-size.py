#!/usr/bin/env python3
"""Database size: how large the queue grows per event, with the realistic row mix.

Starts `patchbay serve` (a temporary directory, `store.retention` at its defaults) with one route
to a Slack target on a local `patchbay sink` paced at {perSecond: 10000, burst: 10000}, so every
event also leaves a delivered delivery and one attempt. Posts --events events (distinct
Idempotency-Keys, spread over --maintenances maintenances, ~400-byte bodies with a few packages)
from --clients keep-alive connections as fast as the server takes them, waits until the backlog is
delivered, and prints: events accepted, elapsed, events/s, the database and WAL sizes, bytes per
event, rows per table, `patchbay prune --dry-run --json` at the default retention, a
`patchbay prune` with the shortest retention allowed (rows this fresh are kept either way:
pruning needs them older than the retention), and `PRAGMA page_count / freelist_count /
page_size`. With fewer than 1,000,000 events it also prints a linear extrapolation to 1M,
labelled as such.

    Benchmarks/database-size.py [--binary .build/debug/patchbay] [--events 1000000] [--clients 6]
    Benchmarks/database-size.py --events 20000          # a quick check

Python 3 standard library (and scripts/patchbay_harness.py) plus the sqlite3 command-line tool (for
the PRAGMAs; optional).
Everything talks to 127.0.0.1; the server and the sink run from a copy of the binary in a
temporary directory and are stopped at the end. Not part of CI. Note: the sink keeps every request
it receives in memory (about a few KB each); its RSS is printed.
"""
import argparse
import collections
import datetime
import http.client
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "scripts"))
from patchbay_harness import (ROOT, Child, config_problem, file_size, free_port, metric_sum, metrics,  # noqa: E402
                              rfc3339, rss_mb)

TOKEN = "size-token-8c1f4e2a9b7d3650"
MB = 1024 * 1024
NAN = float("nan")  # rss_mb of a process that is gone: still prints as a number
MINIMUM_RETENTION = "{delivered: 1h, expired: 1h, dead: 1d, events: 7d, maintenances: 1d, unmapped: 1d}"
DEFAULT_RETENTION = "{delivered: 30d, expired: 30d, dead: 90d, events: 30d, maintenances: 90d, unmapped: 30d}"


class Poster:
    """--clients threads, each with one keep-alive connection, taking the next slot until --events."""

    def __init__(self, port, events, maintenances, clients, run_id, window):
        self.port, self.events, self.maintenances, self.clients = port, events, maintenances, clients
        self.run_id, self.window = run_id, window
        self.lock = threading.Lock()
        self.next_slot = 0
        self.statuses = collections.Counter()
        self.errors = collections.Counter()
        self.body_bytes = 0
        self.stop = threading.Event()
        self.threads = []

    def body(self, slot):
        maintenance = slot % self.maintenances
        round_ = slot // self.maintenances
        instance = round_ // 2
        event = {
            "type": "patch.started" if round_ % 2 == 0 else "patch.completed",
            "app": "SizeBench", "environment": f"Production-{maintenance % 10}",
            "instance": {"id": f"i-0{maintenance:04d}{instance:05d}a1b2", "name": f"web-{maintenance % 97}-{instance}"},
            "window": {"id": f"mw-size-{self.run_id}-{maintenance:04d}", "start": self.window[0],
                       "end": self.window[1]},
            "occurredAt": rfc3339(datetime.datetime.now(datetime.timezone.utc)),
            "tags": {"team": f"team-{maintenance % 20}", "tier": "web"},
        }
        if event["type"] == "patch.completed":
            event["packages"] = [f"openssl-3.0.8-1.amzn2023.0.{round_ % 20}.x86_64", "kernel-6.1.102-108.177.amzn2023.x86_64",
                                 "curl-8.5.0-1.amzn2023.0.4.x86_64", "glibc-2.34-52.amzn2023.0.11.x86_64"]
        else:
            event["details"] = {"agent": "patchbay-report 1.4", "baseline": "pb-0a1b2c3d4e5f67890",
                                "command": "AWS-RunPatchBaseline Install NoReboot"}
        return json.dumps(event, separators=(",", ":")).encode()

    def start(self):
        for index in range(self.clients):
            thread = threading.Thread(target=self.work, name=f"poster-{index}", daemon=True)
            self.threads.append(thread)
            thread.start()

    def posted(self):
        with self.lock:
            return sum(self.statuses.values()) + sum(self.errors.values())

    def work(self):
        connection = None
        while not self.stop.is_set():
            with self.lock:
                slot = self.next_slot
                if slot >= self.events:
                    break
                self.next_slot += 1
            body = self.body(slot)
            headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
                       "Idempotency-Key": f"size-{self.run_id}-{slot}"}
            status, error = None, None
            for attempt in range(5):  # the same key again is safe: intake answers a repeat from the first
                try:
                    if connection is None:
                        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                    connection.request("POST", "/v1/events", body, headers)
                    response = connection.getresponse()
                    response.read()
                    status = response.status
                    if response.getheader("Connection", "").lower() == "close":
                        connection.close()
                        connection = None
                    if status in (429, 503) and attempt < 4:
                        time.sleep(float(response.getheader("Retry-After", "1") or 1))
                        continue
                    break
                except (OSError, http.client.HTTPException) as exc:
                    error = type(exc).__name__
                    if connection is not None:
                        connection.close()
                    connection = None
                    time.sleep(0.2)
            with self.lock:
                if status is not None:
                    self.statuses[status] += 1
                    self.body_bytes += len(body)
                else:
                    self.errors[error] += 1
        if connection is not None:
            connection.close()


def sqlite_lines(db, sql):
    if not shutil.which("sqlite3"):
        return None
    try:
        result = subprocess.run(["sqlite3", db, sql], capture_output=True, text=True, timeout=600)
    except subprocess.SubprocessError as error:
        return [f"(sqlite3 failed: {error})"]
    if result.returncode != 0:
        return [f"(sqlite3: {result.stderr.strip()})"]
    return result.stdout.strip().splitlines()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=str(ROOT / ".build/debug/patchbay"))
    parser.add_argument("--events", type=int, default=1_000_000, help="events to post (default 1000000)")
    parser.add_argument("--clients", type=int, default=6, help="posting threads, one keep-alive connection each")
    parser.add_argument("--maintenances", type=int, default=1000, help="maintenances the events spread over")
    parser.add_argument("--drain", type=float, default=3600, help="seconds to wait for the backlog after posting")
    parser.add_argument("--progress", type=float, default=30, help="seconds between progress lines")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (database, logs)")
    args = parser.parse_args()
    if not (1 <= args.events <= 10_000_000 and 1 <= args.clients <= 64 and 1 <= args.maintenances
            and 0 <= args.drain <= 4 * 3600 and 1 <= args.progress <= 600):
        parser.error("out of range: --events 1..10000000, --clients 1..64, --drain 0..14400")

    workdir = tempfile.mkdtemp(prefix="patchbay-size-")
    server = sink = poster = None

    def on_signal(_number, _frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)

    try:
        binary = os.path.join(workdir, "patchbay")
        shutil.copy2(args.binary, binary)
        sink_port = free_port()
        sink = Child("sink", [binary, "sink", "--listen", f"127.0.0.1:{sink_port}", "--log-level", "warning"],
                     workdir, log=False)  # a line per request: not kept
        sink.wait_port(sink_port)

        def config(retention):
            return (f"server:\n  listen: 127.0.0.1:0\n  tokens: [\"{TOKEN}\"]\n  drainDelay: 0s\n"
                    f"store:\n  sqlite: ./queue.db\n  retention: {retention}\n"
                    f"targets:\n  chat: {{kind: slack, url: \"http://127.0.0.1:{sink_port}/slack/T0SIZE/B0SIZE/size\", "
                    f"rate: {{perSecond: 10000, burst: 10000}}}}\n"
                    f"routes:\n  - match: {{app: SizeBench}}\n    targets: [chat]\n    reminders: []\n"
                    f"    announceStart: false\n")

        config_path = os.path.join(workdir, "patchbay.yaml")
        minimum_path = os.path.join(workdir, "patchbay-minimum-retention.yaml")
        pathlib.Path(config_path).write_text(config(DEFAULT_RETENTION))
        pathlib.Path(minimum_path).write_text(config(MINIMUM_RETENTION))
        for path in (config_path, minimum_path):
            problem = config_problem(binary, path, workdir)
            if problem is not None:
                raise SystemExit(f"config check failed for {path}:\n{problem}")

        server = Child("serve", [binary, "serve", "--config", config_path, "--log-level", "notice"], workdir)
        server_port = int(server.wait_for(r"listening on http://127\.0\.0\.1:(\d+)").group(1))
        db = os.path.join(workdir, "queue.db")

        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        window = (rfc3339(now - datetime.timedelta(minutes=10)), rfc3339(now + datetime.timedelta(hours=12)))
        run_id = uuid.uuid4().hex[:8]
        poster = Poster(server_port, args.events, args.maintenances, args.clients, run_id, window)
        sample = len(poster.body(1))
        print(f"database-size: {args.events} events over {args.maintenances} maintenances from {args.clients} "
              f"clients; serve pid {server.process.pid} on 127.0.0.1:{server_port}, sink pid {sink.process.pid}; "
              f"bodies ~{sample} B; workdir {workdir}", flush=True)
        print(f"{'t s':>7} {'posted':>9} {'ev/s':>7} {'backlog':>8} {'delivered':>10} {'DB MB':>8} {'WAL MB':>7} "
              f"{'serve MB':>8} {'sink MB':>8}", flush=True)

        def progress(t, last):
            values = metrics(server_port)
            backlog = int(metric_sum(values, "patchbay_deliveries", state="pending")
                          + metric_sum(values, "patchbay_deliveries", state="in_flight")) if values else None
            delivered = int(metric_sum(values, "patchbay_deliveries", state="delivered")) if values else None
            posted = poster.posted()
            rate = (posted - last[1]) / max(1e-9, t - last[0])
            print(f"{t:7.0f} {posted:9d} {rate:7.0f} {str(backlog):>8} {str(delivered):>10} "
                  f"{file_size(db) / MB:8.1f} {file_size(db + '-wal') / MB:7.1f} {rss_mb(server.process.pid, NAN):8.1f} "
                  f"{rss_mb(sink.process.pid, NAN):8.1f}", flush=True)
            return (t, posted), backlog, values

        started = time.monotonic()
        poster.start()
        last = (0.0, 0)
        while any(thread.is_alive() for thread in poster.threads):
            time.sleep(0.5)
            if time.monotonic() - started >= last[0] + args.progress:
                last, _, _ = progress(time.monotonic() - started, last)
            if not server.alive():
                raise SystemExit(f"serve exited {server.process.returncode} while posting:\n{server.log_text()[-3000:]}")
        posting = time.monotonic() - started
        with poster.lock:
            statuses, errors, body_bytes = dict(poster.statuses), dict(poster.errors), poster.body_bytes
        accepted = statuses.get(202, 0)
        print(f"posting done after {posting:.0f} s: answers {statuses}, transport errors {errors or 0}", flush=True)

        drain_started = time.monotonic()
        drained = None
        values = {}
        while time.monotonic() - drain_started <= args.drain:
            last, backlog, values = progress(time.monotonic() - started, last)
            if backlog == 0:
                drained = time.monotonic() - drain_started
                break
            time.sleep(min(10.0, args.progress))
        total = time.monotonic() - started
        delivered = int(metric_sum(values, "patchbay_deliveries", state="delivered"))
        dead = int(metric_sum(values, "patchbay_deliveries", state="dead"))
        server_accepted = int(metric_sum(values, "patchbay_events_accepted_total"))
        db_live, wal_live = file_size(db), file_size(db + "-wal")
        serve_rss, sink_rss = rss_mb(server.process.pid, NAN), rss_mb(sink.process.pid, NAN)
        server.stop()
        db_stopped, wal_stopped = file_size(db), file_size(db + "-wal")

        print()
        print("Result:")
        print(f"  events accepted: {accepted} (202s; server counter {server_accepted}); answers {statuses}, "
              f"transport errors {errors or 0}; request bodies {body_bytes / max(1, sum(statuses.values())):.0f} B on average")
        print(f"  posting: {posting:.1f} s, {accepted / posting:.0f} events/s from {args.clients} clients; backlog "
              + (f"delivered {drained:.0f} s after posting ended" if drained is not None
                 else f"NOT drained after {args.drain:.0f} s") + f"; {total:.0f} s in all")
        print(f"  deliveries: delivered {delivered}, dead {dead}")
        print(f"  database file: {db_live / MB:.1f} MB, WAL {wal_live / MB:.1f} MB with the server running and drained; "
              f"after it stopped: database {db_stopped / MB:.1f} MB, WAL {wal_stopped / MB:.1f} MB")
        per_event = (db_stopped + wal_stopped) / max(1, accepted)
        print(f"  bytes per event (database + WAL after stop / events accepted): {per_event:.0f} B")
        print(f"  RSS at the end: serve {serve_rss:.1f} MB, sink {sink_rss:.1f} MB (the sink keeps every request)")
        rows = sqlite_lines(db, "SELECT 'events', COUNT(*) FROM events UNION ALL SELECT 'deliveries', COUNT(*) FROM deliveries "
                                "UNION ALL SELECT 'attempts', COUNT(*) FROM attempts UNION ALL SELECT 'maintenances', COUNT(*) "
                                "FROM maintenances UNION ALL SELECT 'maintenance_instances', COUNT(*) FROM maintenance_instances;")
        if rows:
            print("  rows: " + ", ".join(line.replace("|", " ") for line in rows))
        space = sqlite_lines(db, "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 12;")
        if space:
            print("  space by table/index (dbstat): " + ", ".join(
                f"{name} {int(size) / MB:.1f} MB" if size.isdigit() else line
                for line in space for name, _, size in [line.partition("|")]))

        print()
        print(f"$ patchbay prune --dry-run --json --config patchbay.yaml   # store.retention: {DEFAULT_RETENTION}")
        dry = subprocess.run([binary, "prune", "--dry-run", "--json", "--config", config_path], capture_output=True,
                             text=True, cwd=workdir, timeout=1800)
        print((dry.stdout + dry.stderr).strip() or f"(exit {dry.returncode})")
        print(f"$ patchbay prune --config patchbay-minimum-retention.yaml   # store.retention: {MINIMUM_RETENTION}")
        pruned = subprocess.run([binary, "prune", "--config", minimum_path], capture_output=True, text=True,
                                cwd=workdir, timeout=1800)
        print((pruned.stdout + pruned.stderr).strip() or f"(exit {pruned.returncode})")
        print("  (every row is minutes old: none is past even the shortest retention, so nothing can be pruned "
              "here; pruning needs rows older than store.retention)")
        pragmas = sqlite_lines(db, "PRAGMA page_count; PRAGMA freelist_count; PRAGMA page_size;")
        print(f"$ sqlite3 queue.db \"PRAGMA page_count; PRAGMA freelist_count; PRAGMA page_size\"")
        if pragmas and len(pragmas) == 3 and all(line.isdigit() for line in pragmas):
            count, free, size = (int(line) for line in pragmas)
            print(f"  page_count {count}, freelist_count {free}, page_size {size} "
                  f"({count * size / MB:.1f} MB, {free * size / MB:.1f} MB free)")
        else:
            print(f"  {pragmas}")
        if accepted and args.events < 1_000_000:
            scale = 1_000_000 / accepted
            print()
            print(f"EXTRAPOLATED (linear, from {accepted} events, not measured): 1,000,000 events ≈ "
                  f"{(db_stopped + wal_stopped) * scale / MB:.0f} MB of database at {per_event:.0f} B/event; "
                  f"posting ≈ {posting * scale / 60:.0f} min at {accepted / posting:.0f} events/s")
        try:
            load = " ".join(open("/proc/loadavg").read().split()[:3])
            print(f"machine: {os.cpu_count()} CPUs, load average {load} at the end")
        except OSError:
            pass
        return 0 if drained is not None and accepted == args.events and not dead else 1
    except KeyboardInterrupt:
        print("interrupted; stopping", file=sys.stderr)
        return 1
    finally:
        if poster is not None:
            poster.stop.set()
        for child in (server, sink):
            if child is not None:
                child.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
