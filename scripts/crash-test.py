#!/usr/bin/env python3
"""Crash test: POSTs events under load while SIGKILLing and restarting `patchbay serve`, then
checks that every event that got a 202 was delivered at least once, that duplicates stay within
what was in flight at the kills, and that nothing is left in flight.

    scripts/crash-test.py                        # CI size: 60 events, 3 kills
    scripts/crash-test.py --events 2000 --kills 20 --interval 2

Everything runs on 127.0.0.1 in a temporary directory; the binary is .build/debug/patchbay
unless --binary says otherwise. Exits 1 if any check fails.
"""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import threading
import time

from patchbay_harness import ROOT, Server, Sink, free_port, post_event, store_section

TOKEN = "crash-token-0123456789abcdef"


WINDOW_START = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(time.time() + 86400))
WINDOW_END = time.strftime("%Y-%m-%dT%H:30:00Z", time.gmtime(time.time() + 86400))


def post(port, index):
    # A retry must resend the very same body: same key, other body is a 409 by design.
    start, end = WINDOW_START, WINDOW_END
    body = json.dumps({"type": "patch.completed", "app": "Crash", "environment": "Test",
                       "instance": {"id": f"crash-{index}"}, "window": {"id": f"mw-{index}", "start": start, "end": end}}).encode()
    return post_event(port, TOKEN, body, f"crash-{index}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=60)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.5, help="seconds between kills")
    parser.add_argument("--clients", type=int, default=4, help="agents posting at once")
    parser.add_argument("--binary", default=str(ROOT / ".build/debug/patchbay"))
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", help="default: $PATCHBAY_TEST_POSTGRES_URL (each run uses a new schema)")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="patchbay-crash-")
    sink = Sink(args.binary, workdir)
    record, sink_port = sink.record, sink.port
    port = free_port()
    config = os.path.join(workdir, "patchbay.yaml")
    pathlib.Path(config).write_text(f"""
server: {{listen: "127.0.0.1:{port}", tokens: ["{TOKEN}"], drainDelay: 0s}}
{store_section(args.store, args.postgres_url)}
delivery: {{timeout: 2s, lease: 4s, pollInterval: 100ms, retry: {{base: 200ms, cap: 2s, jitter: 0.2}}}}
targets:
  crash: {{kind: slack, url: "http://127.0.0.1:{sink_port}/slack/crash", rate: {{perSecond: 500, burst: 50}}}}
routes:
  - targets: [crash]
""")
    server = Server(args.binary, workdir, config, port)
    server.start()

    accepted, lock = set(), threading.Lock()

    def load(pending):
        while pending:
            retry = []
            for index in pending:
                status = post(port, index)
                if status == 202:
                    with lock:
                        accepted.add(index)
                elif status in (None, 503):
                    retry.append(index)  # server down: the agent tries again, same idempotency key
                else:
                    print(f"event {index}: unexpected HTTP {status}", file=sys.stderr)
                time.sleep(0.01)
            pending = retry
            if pending:
                time.sleep(0.2)

    loaders = [threading.Thread(target=load, args=(list(range(client, args.events, args.clients)),)) for client in range(args.clients)]
    started = time.time()
    for loader in loaders:
        loader.start()
    kills = 0
    while kills < args.kills:
        time.sleep(args.interval)
        server.kill()
        kills += 1
        server.start()
    for loader in loaders:
        loader.join()

    # Let the queue drain, then look.
    expected = {f"crash-{index}" for index in accepted}
    delivered = {}
    deadline = time.time() + 60
    while time.time() < deadline:
        delivered = {}
        if os.path.exists(record):
            for line in pathlib.Path(record).read_text().splitlines():
                # One request names its instance several times (text, fields): count it once.
                for instance in set(re.findall(r"crash-\d+", json.loads(line).get("body", ""))):
                    delivered[instance] = delivered.get(instance, 0) + 1
        if expected <= set(delivered):
            break
        time.sleep(0.2)
    time.sleep(1)
    listing = subprocess.run([args.binary, "deliveries", "list", "--json", "--limit", "10000", "--config", config],
                             cwd=workdir, capture_output=True, text=True)
    rows = json.loads(listing.stdout or "[]")
    server.stop()
    sink.stop()

    copies = delivered
    lost = sorted(expected - set(copies))
    duplicates = sum(count - 1 for count in copies.values() if count > 1)
    stuck = [row["id"] for row in rows if row["state"] in ("in_flight", "pending")]
    duplicate_limit = kills * 16  # at most the sends in flight at each kill (dispatcher concurrency)
    checks = [
        (f"every accepted event delivered ({len(accepted)} accepted, {len(lost)} lost)", not lost),
        (f"duplicates only from sends in flight at a kill ({duplicates} ≤ {duplicate_limit})", duplicates <= duplicate_limit),
        (f"nothing stuck in flight or pending ({len(stuck)})", not stuck),
        (f"all {args.events} events eventually accepted ({len(accepted)})", len(accepted) == args.events),
    ]
    print(f"crash test ({args.store}): {args.events} events from {args.clients} clients, {kills} SIGKILLs every {args.interval}s, {server.starts} starts, "
          f"{time.time() - started:.1f}s, {len(copies)} delivered, {duplicates} duplicate sends")
    for name, ok in checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    if lost:
        print(f"  lost: {lost[:20]}")
    failed = sum(1 for _, ok in checks if not ok)
    print(f"crash-test: {len(checks) - failed} passed, {failed} failed")
    if failed == 0:
        subprocess.run(["rm", "-rf", workdir])
    else:
        print(f"  kept {workdir} for inspection")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
