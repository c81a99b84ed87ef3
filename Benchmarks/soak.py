#!/usr/bin/env python3
"""Soak: `patchbay serve` delivering to the local sink for --minutes at --rate events per second.

Events are spread over --maintenances maintenances (patch.started / patch.completed from many
instances); the sink answers ~1 % of deliveries with a 500 and leaves ~0.5 % hanging (scripted
through POST /_sink/script, in batches, so the fractions hold whatever the delivery rate), and
`delivery.timeout: 2s` ends the hangs. Every --sample seconds it records the server's RSS (VmRSS),
open fds and threads, the WAL and database sizes, deliveries by state and attempts by outcome
(GET /metrics), the events accepted, and the client's answers and latency. After posting stops it
waits up to --drain seconds for the backlog to empty.

At the end it prints the samples and a summary: RSS growth (first-minute vs last-minute average
while posting), fd min/max, WAL max, whether the backlog stayed bounded, the answers seen, and a
verdict (PASS: RSS growth < 10 %, fds flat, WAL bounded, backlog bounded, no intake 5xx or
transport error, nothing dead, server alive). Exit 0 on PASS, 1 otherwise.

    Benchmarks/soak.py [--binary .build/debug/patchbay] [--minutes 30] [--rate 200] [--csv soak.csv]
    Benchmarks/soak.py --minutes 2              # a quick check

Python 3 standard library only (and scripts/patchbay_harness.py). Everything talks to 127.0.0.1;
the server and the sink run from a copy of the binary in a temporary directory and are stopped at
the end. Not part of CI.
"""
import argparse
import base64
import collections
import csv
import datetime
import http.client
import json
import os
import pathlib
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "scripts"))
from patchbay_harness import (ROOT, Child, copy_binary, file_size, free_port, http_call, metric_sum, metrics,  # noqa: E402
                              percentile, proc_sample, rfc3339, write_loopback_config)

TOKEN = "soak-token-5b8d2e7f1a9c4630"
MB = 1024 * 1024
STATES = ("pending", "in_flight", "delivered", "dead", "expired")


# --------------------------------------------------------------------------------------------


class Poster:
    """--clients threads with keep-alive connections, posting slot i at t0 + i / rate."""

    def __init__(self, port, rate, seconds, maintenances, clients, run_id, window):
        self.port, self.rate, self.seconds = port, rate, seconds
        self.maintenances, self.clients, self.run_id, self.window = maintenances, clients, run_id, window
        self.lock = threading.Lock()
        self.next_slot = 0
        self.statuses = collections.Counter()
        self.errors = collections.Counter()
        self.skipped = 0
        self.latencies = []        # since the last take
        self.all_latencies = []
        self.posted = 0
        self.stop = threading.Event()
        self.threads = []

    def body(self, slot):
        maintenance = slot % self.maintenances
        round_ = slot // self.maintenances
        instance = round_ // 2 % 50
        event = {
            "type": "patch.started" if round_ % 2 == 0 else "patch.completed",
            "app": "Soak", "environment": f"Env{maintenance % 10}",
            "instance": {"id": f"i-{maintenance:04d}{instance:02d}", "name": f"web-{instance}"},
            "window": {"id": f"mw-soak-{self.run_id}-{maintenance}", "start": self.window[0], "end": self.window[1]},
            "occurredAt": rfc3339(datetime.datetime.now(datetime.timezone.utc)),
        }
        if event["type"] == "patch.completed":
            event["packages"] = [f"openssl-3.0.8-1.amzn2023.0.{round_ % 20}.x86_64", "kernel-6.1.102-108.177"]
        return json.dumps(event).encode()

    def start(self):
        self.t0 = time.monotonic()
        for index in range(self.clients):
            thread = threading.Thread(target=self.work, name=f"poster-{index}", daemon=True)
            self.threads.append(thread)
            thread.start()

    def take_latencies(self):
        with self.lock:
            taken, self.latencies = self.latencies, []
        return taken

    def work(self):
        connection = None
        while not self.stop.is_set():
            with self.lock:
                slot = self.next_slot
                self.next_slot += 1
            due = self.t0 + slot / self.rate
            if due - self.t0 >= self.seconds:
                break
            now = time.monotonic()
            if now < due:
                if self.stop.wait(due - now):
                    break
            elif now - due > 5:
                with self.lock:
                    self.skipped += 1  # the client fell more than 5 s behind: skip rather than pile up
                continue
            body = self.body(slot)
            headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
                       "Idempotency-Key": f"soak-{self.run_id}-{slot}"}
            began = time.monotonic()
            status, error = None, None
            for attempt in range(2):  # one retry on a stale keep-alive connection
                try:
                    if connection is None:
                        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                    connection.request("POST", "/v1/events", body, headers)
                    response = connection.getresponse()
                    response.read()
                    status = response.status
                    if response.getheader("Connection", "").lower() == "close":
                        connection.close()
                        connection = None
                    break
                except (OSError, http.client.HTTPException) as exc:
                    error = type(exc).__name__
                    if connection is not None:
                        connection.close()
                    connection = None
                    if not isinstance(exc, (http.client.RemoteDisconnected, BrokenPipeError,
                                            ConnectionResetError)) or attempt == 1:
                        break
            elapsed = (time.monotonic() - began) * 1000
            with self.lock:
                self.posted += 1
                if status is not None:
                    self.statuses[status] += 1
                    self.latencies.append(elapsed)
                    self.all_latencies.append(elapsed)
                else:
                    self.errors[error] += 1
        if connection is not None:
            connection.close()

    def join(self, timeout):
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self.stop.set()


class Faults(threading.Thread):
    """Keeps the sink's script for the target path a few seconds ahead of the deliveries it has received:
    batches of 1000 answers with the requested fractions of 500s and hangs at random places."""

    def __init__(self, sink_port, path, sink_log, rate, fail_fraction, hang_fraction, stop):
        super().__init__(name="faults", daemon=True)
        self.sink_port, self.path, self.sink_log = sink_port, path, sink_log
        self.rate, self.fail_fraction, self.hang_fraction, self.stop_event = rate, fail_fraction, hang_fraction, stop
        self.received = 0
        self.offset = 0
        self.scripted = 0
        self.scripted_500 = self.scripted_hang = 0
        self.errors = 0
        self.random = random.Random(1)
        self.lock = threading.Lock()

    def count_received(self):
        """Requests the sink saw: one summary line each on its stdout."""
        with self.lock:
            self._count_received()

    def _count_received(self):
        try:
            with open(self.sink_log, "rb") as log:
                log.seek(self.offset)
                data = log.read()
        except OSError:
            return
        cut = data.rfind(b"\n") + 1
        self.offset += cut
        self.received += sum(1 for line in data[:cut].split(b"\n") if self.path.split("/")[1].encode() in line
                             and b"POST" in line)

    def run(self):
        batch = 1000
        ahead = max(batch, int(self.rate * 5))
        while not self.stop_event.is_set():
            self.count_received()
            # Script from where the sink is now; never more than `ahead` requests beyond it.
            self.scripted = max(self.scripted, self.received)
            while self.scripted < self.received + ahead and not self.stop_event.is_set():
                answers = [{"status": 200}] * batch
                fails = round(batch * self.fail_fraction)
                hangs = round(batch * self.hang_fraction)
                places = self.random.sample(range(batch), fails + hangs)
                for place in places[:fails]:
                    answers[place] = {"status": 500}
                for place in places[fails:]:
                    answers[place] = {"status": 200, "hang": True}  # the sink refuses an entry without status
                try:
                    status, _ = http_call(self.sink_port, "POST", "/_sink/script",
                                          json.dumps({"path": self.path, "responses": answers}),
                                          {"Content-Type": "application/json"})
                    if status != 200:
                        self.errors += 1
                        break
                except (OSError, http.client.HTTPException):
                    self.errors += 1
                    break
                self.scripted += batch
                self.scripted_500 += fails
                self.scripted_hang += hangs
            self.stop_event.wait(1.0)

    def clear(self):
        try:
            http_call(self.sink_port, "DELETE", "/_sink/script", timeout=5)
        except (OSError, http.client.HTTPException):
            pass


COLUMNS = ["t_s", "phase", "rss_mb", "fds", "threads", "wal_mb", "db_mb", "accepted_total", "posted", "answers_202",
           "answers_other", "post_errors", "post_p50_ms", "post_p99_ms", "pending", "in_flight", "delivered", "dead",
           "expired", "backlog", "oldest_due_s", "attempts_delivered", "attempts_retry", "attempts_dead",
           "scrape_ms", "sink_requests", "scripted_500", "scripted_hang", "sink_rss_mb", "sink_fds"]


def take_sample(t, phase, server, server_port, db, poster, faults, sink):
    row = {"t_s": round(t, 1), "phase": phase}
    proc = proc_sample(server.process.pid) if server.alive() else None
    row.update(rss_mb=round(proc.rss_kb / 1024, 1) if proc else "", threads=proc.threads if proc else "",
               fds=proc.fds if proc else "")
    row.update(wal_mb=round(file_size(db + "-wal") / MB, 2), db_mb=round(file_size(db) / MB, 2))
    with poster.lock:
        other = sum(count for status, count in poster.statuses.items() if status != 202)
        row.update(posted=poster.posted, answers_202=poster.statuses.get(202, 0), answers_other=other,
                   post_errors=sum(poster.errors.values()))
    latencies = poster.take_latencies()
    row.update(post_p50_ms=round(percentile(latencies, .5), 1) if latencies else "",
               post_p99_ms=round(percentile(latencies, .99), 1) if latencies else "")
    began = time.monotonic()
    values = metrics(server_port, timeout=30)
    row["scrape_ms"] = round((time.monotonic() - began) * 1000, 1)
    if values:
        for state in STATES:
            row[state] = int(metric_sum(values, "patchbay_deliveries", state=state))
        row["backlog"] = row["pending"] + row["in_flight"]
        row["accepted_total"] = int(metric_sum(values, "patchbay_events_accepted_total"))
        row["oldest_due_s"] = round(metric_sum(values, "patchbay_oldest_due_delivery_age_seconds"), 1)
        for outcome in ("delivered", "retry", "dead"):
            row[f"attempts_{outcome}"] = int(metric_sum(values, "patchbay_delivery_attempts_total", outcome=outcome))
    faults.count_received()
    row.update(sink_requests=faults.received, scripted_500=faults.scripted_500, scripted_hang=faults.scripted_hang)
    sink_proc = proc_sample(sink.process.pid) if sink.alive() else None
    row.update(sink_rss_mb=round(sink_proc.rss_kb / 1024, 1) if sink_proc else "", sink_fds=sink_proc.fds if sink_proc else "")
    return row


def print_row(row, header=False):
    shown = [("t_s", 7), ("phase", 6), ("rss_mb", 7), ("fds", 5), ("wal_mb", 7), ("db_mb", 8), ("accepted_total", 9),
             ("answers_other", 6), ("post_errors", 6), ("post_p99_ms", 8), ("pending", 8), ("in_flight", 6),
             ("delivered", 9), ("dead", 5), ("oldest_due_s", 7), ("attempts_retry", 7), ("scrape_ms", 8),
             ("sink_fds", 6)]
    if header:
        names = {"t_s": "t s", "accepted_total": "accepted", "answers_other": "non202", "post_errors": "errors",
                 "post_p99_ms": "post p99", "in_flight": "flight", "oldest_due_s": "oldest", "attempts_retry": "retries",
                 "scrape_ms": "scrape ms", "sink_fds": "sinkfd", "rss_mb": "RSS MB", "wal_mb": "WAL MB", "db_mb": "DB MB"}
        print(" ".join(f"{names.get(key, key):>{width}}" for key, width in shown), flush=True)
        return
    print(" ".join(f"{str(row.get(key, '')):>{width}}" for key, width in shown), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=str(ROOT / ".build/debug/patchbay"))
    parser.add_argument("--minutes", type=float, default=30.0, help="minutes of posting (default 30)")
    parser.add_argument("--rate", type=float, default=200.0, help="events per second (default 200)")
    parser.add_argument("--csv", help="write the samples to this CSV file")
    parser.add_argument("--kind", choices=["webhook", "slack"], default="webhook", help="target kind (default webhook)")
    parser.add_argument("--maintenances", type=int, default=1000, help="maintenances the events spread over")
    parser.add_argument("--clients", type=int, default=8, help="posting threads (keep-alive connections)")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples (default 10)")
    parser.add_argument("--fail", type=float, default=0.01, help="fraction of vendor answers that are 500 (0.01)")
    parser.add_argument("--hang", type=float, default=0.005, help="fraction of vendor answers that hang (0.005)")
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to wait for the backlog after posting")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, database)")
    args = parser.parse_args()
    if not (0 < args.minutes <= 24 * 60 and 0 < args.rate <= 5000 and 1 <= args.clients <= 64
            and 1 <= args.maintenances and 1 <= args.sample <= 600 and 0 <= args.drain <= 3600):
        parser.error("out of range: --minutes 0..1440, --rate 0..5000, --clients 1..64, --sample 1..600")

    workdir = tempfile.mkdtemp(prefix="patchbay-soak-")
    server = sink = poster = faults = None
    stop = threading.Event()

    def on_signal(_number, _frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)

    try:
        binary = copy_binary(args.binary, workdir)
        sink_port = free_port()
        sink = Child("sink", [binary, "sink", "--listen", f"127.0.0.1:{sink_port}", "--log-level", "warning"], workdir)
        sink.wait_for(r"sink listening on http://127\.0\.0\.1:\d+")
        path = "/webhook/soak" if args.kind == "webhook" else "/slack/T0SOAK/B0SOAK/soak"
        secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        target_rate = min(10000, int(args.rate * 5))
        secret_line = f", secret: \"{secret}\"" if args.kind == "webhook" else ""

        def config(private):
            extra = ", allowPrivateNetworks: true" if private else ""
            return (f"server:\n  listen: 127.0.0.1:0\n  tokens: [\"{TOKEN}\"]\n  drainDelay: 0s\n"
                    f"store:\n  sqlite: ./queue.db\n"
                    f"delivery:\n  timeout: 2s\n  connectTimeout: 1s\n  concurrency: 32\n"
                    f"targets:\n  soak: {{kind: {args.kind}, url: \"http://127.0.0.1:{sink_port}{path}\"{secret_line}, "
                    f"rate: {{perSecond: {target_rate}, burst: {max(10, int(args.rate))}}}{extra}}}\n"
                    f"routes:\n  - match: {{app: Soak}}\n    targets: [soak]\n    reminders: []\n"
                    f"    announceStart: false\n")

        config_path = write_loopback_config(binary, workdir, config)
        server = Child("serve", [binary, "serve", "--config", config_path, "--listen", "127.0.0.1:0",
                                 "--log-level", "notice"], workdir)
        server_port = int(server.wait_for(r"patchbay listening on http://127\.0\.0\.1:(\d+)").group(1))
        db = os.path.join(workdir, "queue.db")

        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        window = (rfc3339(now - datetime.timedelta(minutes=10)),
                  rfc3339(now + datetime.timedelta(minutes=args.minutes + 120)))
        run_id = uuid.uuid4().hex[:8]
        seconds = args.minutes * 60
        print(f"soak: serve pid {server.process.pid} on 127.0.0.1:{server_port}, sink pid {sink.process.pid} on "
              f"127.0.0.1:{sink_port} ({args.kind}); {args.rate:g} events/s for {args.minutes:g} min over "
              f"{args.maintenances} maintenances; {args.fail:.1%} 500s, {args.hang:.1%} hangs; workdir {workdir}",
              flush=True)

        faults = Faults(sink_port, path, sink.log, args.rate, args.fail, args.hang, stop)
        faults.start()
        poster = Poster(server_port, args.rate, seconds, args.maintenances, args.clients, run_id, window)
        samples = []
        print_row(None, header=True)
        started = time.monotonic()
        poster.start()
        next_sample = started
        while True:
            next_sample = min(next_sample + args.sample, started + seconds)
            time.sleep(max(0.0, next_sample - time.monotonic()))
            row = take_sample(time.monotonic() - started, "post", server, server_port, db, poster, faults, sink)
            samples.append(row)
            print_row(row)
            if not server.alive():
                print(f"serve {server.exit_description()} - stopping", flush=True)
                break
            if next_sample >= started + seconds:
                break
        poster.join(timeout=20)
        posting_ended = time.monotonic() - started
        # Drain: the sink keeps its scripted faults until the backlog is empty or --drain passes.
        drain_started = time.monotonic()
        drained_after = None
        while server.alive() and time.monotonic() - drain_started < args.drain:
            time.sleep(min(args.sample, 5.0))
            row = take_sample(time.monotonic() - started, "drain", server, server_port, db, poster, faults, sink)
            samples.append(row)
            print_row(row)
            if row.get("backlog") == 0:
                drained_after = time.monotonic() - drain_started
                break
        stop.set()
        faults.join(timeout=5)
        faults.clear()
        return summarize(args, samples, poster, faults, server, sink, posting_ended, drained_after)
    except KeyboardInterrupt:
        print("interrupted; stopping", file=sys.stderr)
        return 1
    finally:
        stop.set()
        if poster is not None:
            poster.stop.set()
        for child in (server, sink):
            if child is not None:
                child.stop(timeout=20)
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def summarize(args, samples, poster, faults, server, sink, posting_ended, drained_after):
    if args.csv:
        with open(args.csv, "w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore")
            writer.writeheader()
            for row in samples:
                writer.writerow(row)
    print()
    print("Samples:")
    print_row(None, header=True)
    for row in samples:
        print_row(row)

    posting = [row for row in samples if row["phase"] == "post" and row.get("rss_mb") != ""]
    first = [row for row in posting if row["t_s"] <= 60]
    last = [row for row in posting if row["t_s"] >= posting_ended - 60]
    average = lambda rows, key: sum(row[key] for row in rows) / len(rows) if rows else float("nan")
    rss_first, rss_last = average(first, "rss_mb"), average(last, "rss_mb")
    growth = (rss_last - rss_first) / rss_first * 100 if first and last else float("nan")
    fds = [row["fds"] for row in posting]
    wal_max = max((row["wal_mb"] for row in samples), default=0)
    db_last = samples[-1]["db_mb"] if samples else 0
    backlogs = [row.get("backlog") for row in posting if row.get("backlog") is not None]
    last_backlog = [row.get("backlog") for row in last if row.get("backlog") is not None]
    final = samples[-1] if samples else {}
    all_latency = poster.all_latencies
    with poster.lock:
        statuses = dict(poster.statuses)
        errors = dict(poster.errors)
    fds_first_max = max((row["fds"] for row in first), default=0)
    fds_last_max = max((row["fds"] for row in last), default=0)
    wal_first_max = max((row["wal_mb"] for row in first), default=0)
    wal_last_max = max((row["wal_mb"] for row in last), default=0)

    print()
    print("Summary:")
    print(f"  posting {posting_ended:.0f} s at {args.rate:g}/s: {poster.posted} posted, answers {statuses}, "
          f"transport errors {errors or 0}, slots skipped (client >5 s behind) {poster.skipped}")
    if all_latency:
        print(f"  intake latency: p50 {percentile(all_latency, .5):.1f} ms, p99 {percentile(all_latency, .99):.1f} ms, "
              f"max {max(all_latency):.1f} ms")
    print(f"  RSS: first-minute avg {rss_first:.1f} MB, last-minute avg {rss_last:.1f} MB, growth {growth:+.1f} %, "
          f"max {max((row['rss_mb'] for row in posting), default=0):.1f} MB")
    print(f"  fds: min {min(fds, default=0)}, max {max(fds, default=0)} (first-minute max {fds_first_max}, "
          f"last-minute max {fds_last_max})")
    print(f"  WAL: max {wal_max:.1f} MB (first minute max {wal_first_max:.1f}, last minute max {wal_last_max:.1f}); "
          f"database {db_last:.1f} MB at the end")
    print(f"  backlog (pending + in flight): max {max(backlogs, default=0)} while posting, last minute max "
          f"{max(last_backlog, default=0)}; " +
          (f"drained {drained_after:.0f} s after posting stopped" if drained_after is not None
           else f"{final.get('backlog')} left {args.drain:.0f} s after posting stopped"))
    print(f"  deliveries: delivered {final.get('delivered')}, dead {final.get('dead')}, expired {final.get('expired')}; "
          f"attempts: delivered {final.get('attempts_delivered')}, retry {final.get('attempts_retry')}, "
          f"dead {final.get('attempts_dead')}")
    print(f"  vendor faults scripted: {faults.scripted_500} x 500, {faults.scripted_hang} hangs over "
          f"{faults.received} sink requests ({faults.errors} scripting errors)")
    scrape = [row["scrape_ms"] for row in samples]
    print(f"  /metrics scrape: first {scrape[0] if scrape else '-'} ms, last {scrape[-1] if scrape else '-'} ms, "
          f"max {max(scrape, default=0)} ms")
    print(f"  sink: RSS {final.get('sink_rss_mb')} MB, fds {final.get('sink_fds')} at the end (it keeps every request "
          f"in memory and hung handlers sleep an hour: its growth is not the server's)")
    log = server.log_text()
    levels = collections.Counter(re.findall(r"^\S+ (warning|error|critical) ", log, re.M))
    print(f"  server: {server.exit_description()}; log lines at warning+: {dict(levels) or 0}")
    for line in [line for line in log.splitlines() if re.match(r"^\S+ (error|critical) ", line)][-5:]:
        print(f"    {line[:200]}")
    try:
        print(f"  machine load average (1/5/15 min): {' '.join(open('/proc/loadavg').read().split()[:3])} on "
              f"{os.cpu_count()} CPUs")
    except OSError:
        pass
    if args.csv:
        print(f"  samples written to {args.csv}")

    reasons = []
    if not (growth < 10):
        reasons.append(f"RSS growth {growth:+.1f} % (>= 10 %)")
    if fds_last_max > fds_first_max + 8:
        reasons.append(f"fds not flat: first-minute max {fds_first_max}, last-minute max {fds_last_max}")
    if wal_max > 64 or wal_last_max > max(2 * wal_first_max, 8):
        reasons.append(f"WAL not bounded: max {wal_max:.1f} MB, last minute {wal_last_max:.1f} MB")
    if max(last_backlog, default=0) > args.rate * 10 or (final.get("backlog") or 0) > args.rate:
        reasons.append(f"backlog not bounded: last-minute max {max(last_backlog, default=0)}, "
                       f"{final.get('backlog')} left after the drain")
    five = {status: count for status, count in statuses.items() if status >= 500}
    if five or errors:
        reasons.append(f"intake 5xx {five} / transport errors {errors}")
    if other := {status: count for status, count in statuses.items() if status != 202 and status < 500}:
        reasons.append(f"intake answered non-202 {other}")
    if final.get("dead"):
        reasons.append(f"{final.get('dead')} deliveries dead")
    if not server.alive():
        reasons.append(f"server {server.exit_description()}")
    if faults.errors or (args.fail + args.hang > 0 and not (faults.scripted_500 + faults.scripted_hang)):
        reasons.append(f"fault injection failed ({faults.errors} scripting errors): the run is not a soak")
    if len(posting) < 2:
        reasons.append("too few samples")
    print()
    if reasons:
        print("VERDICT: FAIL - " + "; ".join(reasons))
        return 1
    print(f"VERDICT: PASS - RSS growth {growth:+.1f} %, fds {min(fds)}-{max(fds)}, WAL max {wal_max:.1f} MB, "
          f"backlog bounded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
