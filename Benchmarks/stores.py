#!/usr/bin/env python3
"""Intake and delivery rates on SQLite and on PostgreSQL, same machine, same run.

For each store: one `patchbay serve` (release build) routes every event to a webhook target at
the sink (pacing off). wrk posts events spread over 1000 maintenances for --seconds; then the
dispatcher drains the backlog alone. Printed per store: intake events/s and p99 (wrk, 32
connections), deliveries/s while intake runs, and deliveries/s draining the backlog.

    PGTEST_DURABLE=1 scripts/with-postgres Benchmarks/stores.py            # durable PostgreSQL
    Benchmarks/stores.py --postgres-url postgres://user@127.0.0.1:5432/db

SQLite runs with synchronous=FULL; PostgreSQL as configured (scripts/with-postgres with
PGTEST_DURABLE=1: fsync and synchronous_commit on, so both stores flush every commit).
Needs wrk. Everything on 127.0.0.1.
"""
import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "scripts"))
from patchbay_harness import ROOT, Server, Sink, free_port, store_section  # noqa: E402

TOKEN = "bench-token-0123456789abcdef"
SECRET = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
local counter = 0
request = function()
  counter = counter + 1
  local m = counter %% 1000
  local body = string.format('{"type":"patch.started","app":"Bench","environment":"Production","instance":{"id":"i-%%d"},"window":{"id":"mw-%%d","start":"2030-01-01T00:30:00Z","end":"2030-01-01T00:45:00Z"}}', counter, m)
  return wrk.format(nil, nil, nil, body)
end
""" % TOKEN


def count_lines(path):
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def run(store, args, binary):
    workdir = tempfile.mkdtemp(prefix=f"patchbay-bench-{store}-")
    # Phase 1 fills a backlog when measuring the drain: the sink answers slowly meanwhile.
    sink = Sink(binary, workdir, delay_ms=2000 if args.drain_only else 0)
    port = free_port()
    config = os.path.join(workdir, "patchbay.yaml")
    pathlib.Path(config).write_text(f"""server: {{listen: "127.0.0.1:{port}", tokens: ["{TOKEN}"], drainDelay: 0s, maxConnections: 512}}
{store_section(store, args.postgres_url)}
delivery: {{concurrency: 32}}
targets:
  hook: {{kind: webhook, url: "http://127.0.0.1:{sink.port}/webhook/bench", secret: "{SECRET}", allowPrivateNetworks: true,
         rate: {{perSecond: 10000, burst: 10000}}}}
routes:
  - targets: [hook]
    reminders: []
    match: {{app: {"NoSuchApp" if args.intake_only else "Bench"}}}
""")
    server = Server(binary, workdir, config, port, name=f"serve-{store}")
    server.start()
    lua = os.path.join(workdir, "post.lua")
    pathlib.Path(lua).write_text(LUA)
    started = time.time()
    wrk = subprocess.run(["wrk", "-t1", "-c32", f"-d{args.seconds}s", "--latency", "-s", lua, f"http://127.0.0.1:{port}/v1/events"],
                         capture_output=True, text=True)
    intake_end = time.time()
    delivered_during = count_lines(sink.record)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", wrk.stdout)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", wrk.stdout)
    total = re.search(r"(\d+) requests in", wrk.stdout)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk.stdout)
    accepted = int(total.group(1)) - (int(non2xx.group(1)) if non2xx else 0)
    if args.drain_only:
        # Phase 2: a fast sink on the same port, the server restarted on the backlog.
        server.stop()
        sink.stop()
        sink = Sink(binary, workdir, port=sink.port)
        server.start()
    # Drain: deliveries per second over the next --drain seconds (or until done).
    drain_start, drained_from = time.time(), count_lines(sink.record)
    while not args.intake_only and time.time() - drain_start < args.drain and count_lines(sink.record) < accepted:
        time.sleep(0.25)
    drain_seconds = time.time() - drain_start
    drained = count_lines(sink.record) - drained_from
    server.stop()
    sink.stop()
    scale = {"us": 0.001, "ms": 1, "s": 1000}
    return {
        "store": store,
        "intake": float(rate.group(1)) if rate else 0.0,
        "p99": float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
        "accepted": accepted,
        "during": delivered_during / (intake_end - started),
        "drain": drained / drain_seconds if drain_seconds > 0 else 0.0,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--drain", type=int, default=10, help="seconds of backlog drain measured")
    parser.add_argument("--binary", default=str(ROOT / ".build/release/patchbay"))
    parser.add_argument("--postgres-url")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--intake-only", action="store_true", help="route nothing: the intake commit path alone")
    parser.add_argument("--drain-only", action="store_true",
                        help="fill a backlog (the sink answering in 2 s), then restart on it and measure the dispatcher alone")
    args = parser.parse_args()
    if not os.path.exists(args.binary):
        raise SystemExit(f"{args.binary}: build it first (swift build -c release --product patchbay)")
    results = [run(store, args, args.binary) for store in args.stores.split(",")]
    print(f"stores: wrk -t1 -c32 -d{args.seconds}s, 1000 maintenances, "
          f"{'intake only (no route matches)' if args.intake_only else 'webhook to the sink (pacing off)'}"
          f"{', backlog drained after a restart' if args.drain_only else ''}, {os.cpu_count()} cores")
    print(f"{'store':<10} {'intake ev/s':>12} {'p99 ms':>8} {'accepted':>9} {'deliv/s during':>15} {'deliv/s drain':>14}")
    for r in results:
        print(f"{r['store']:<10} {r['intake']:>12.0f} {r['p99']:>8.1f} {r['accepted']:>9} {r['during']:>15.0f} {r['drain']:>14.0f}")
    if len(results) != 2:
        return
    sqlite, postgres = results
    if sqlite["intake"] and sqlite["drain"]:
        print(f"postgres/sqlite: intake {postgres['intake'] / sqlite['intake']:.2f}x, drain {postgres['drain'] / max(sqlite['drain'], 1):.2f}x")


if __name__ == "__main__":
    main()
