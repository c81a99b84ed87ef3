#!/usr/bin/env python3
"""Cluster test: two `patchbay serve` processes on one PostgreSQL database take events for many
maintenances (each event posted to either instance at random) and deliver them to a paced
Statuspage target per app and an unpaced webhook target. Then checks, at the sink:

- every accepted event reached the webhook (once, or with --kill no more duplicates than the
  killed instance's sends in flight);
- no two requests of one (maintenance, webhook) lane overlapped, and each lane arrived in the
  order its events were accepted; each maintenance's Statuspage lane began with its create and
  never overlapped;
- Statuspage requests per API key (one page per key) were at most 1 per second, cluster-wide;
- with --kill: the SIGKILLed instance's leases were released within 15 s by the survivor (its silence
  must pass 10 s, twice the pool's acquire timeout, so that a database stall is no instance's death).

    scripts/with-postgres scripts/cluster-test.py                       # 5000 events, 500 maintenances
    scripts/with-postgres scripts/cluster-test.py --kill
    scripts/cluster-test.py --postgres-url postgres://user@127.0.0.1:5432/db --events 1000 --maintenances 100

Everything runs on 127.0.0.1; each run uses a new schema. Exits 1 if any check fails.
"""
import argparse
import collections
import datetime
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time

from patchbay_harness import ROOT, Server, Sink, free_port, post_event, store_section

TOKEN = "cluster-token-0123456789abcdef"
WEBHOOK_SECRET = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--maintenances", type=int, default=500)
    parser.add_argument("--keys", type=int, default=50, help="Statuspage API keys (one page and one app each)")
    parser.add_argument("--clients", type=int, default=16, help="agents posting at once")
    parser.add_argument("--kill", action="store_true", help="SIGKILL one instance when 40%% of the events are in")
    parser.add_argument("--delay-ms", type=int, default=10, help="how long the sink takes to answer")
    parser.add_argument("--binary", default=str(ROOT / ".build/debug/patchbay"))
    parser.add_argument("--postgres-url", help="default: $PATCHBAY_TEST_POSTGRES_URL")
    args = parser.parse_args()
    per_maintenance = max(2, args.events // args.maintenances)

    workdir = tempfile.mkdtemp(prefix="patchbay-cluster-")
    sink = Sink(args.binary, workdir, delay_ms=args.delay_ms)
    base = f"http://127.0.0.1:{sink.port}"
    targets = [f"  hook: {{kind: webhook, url: \"{base}/webhook/cluster\", secret: \"{WEBHOOK_SECRET}\", allowPrivateNetworks: true,"
               f" rate: {{perSecond: 10000, burst: 10000}}}}"]
    routes = []
    for key in range(args.keys):
        targets.append(f"  sp-{key}: {{kind: statuspage, page: page{key}, apiKey: \"cluster-api-key-{key:03d}\", baseURL: \"{base}/statuspage\"}}")
        routes.append(f"  - match: {{app: app-{key}}}\n    targets: [hook]\n    statuspage: {{target: sp-{key}}}\n    reminders: []")
    config = os.path.join(workdir, "patchbay.yaml")
    with open(config, "w") as out:
        out.write(f"""server: {{listen: "127.0.0.1:0", tokens: ["{TOKEN}"], drainDelay: 0s}}
{store_section("postgres", args.postgres_url)}
delivery: {{concurrency: 16, pollInterval: 200ms, retry: {{base: 200ms, cap: 2s}}}}
targets:
{chr(10).join(targets)}
routes:
{chr(10).join(routes)}
""")
    servers = [Server(args.binary, workdir, config, free_port(), name=f"instance-{n}") for n in (1, 2)]
    for server in servers:
        server.start()

    base_start = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).replace(second=0, microsecond=0)

    def window_of(m):
        """Each maintenance its own start, so its Statuspage incident can be told apart at the sink."""
        start = base_start + datetime.timedelta(minutes=m)
        return {"id": f"mw-{m}", "start": start.isoformat().replace("+00:00", "Z"),
                "end": (start + datetime.timedelta(hours=1)).isoformat().replace("+00:00", "Z")}

    def events_of(m):
        """scheduled, then each instance's started, then completions (one instance never finishes)."""
        instances = max(1, (per_maintenance - 1 + 1) // 2)
        kinds = [("patch.scheduled", None)] + [("patch.started", i) for i in range(instances)] + [("patch.completed", i) for i in range(instances - 1)]
        return kinds[:per_maintenance]

    accepted = collections.defaultdict(list)  # maintenance -> [(type, instance)] in acceptance order
    lock = threading.Lock()
    alive = [True, True]
    posted = [0]
    kill_at = args.events * 0.4 if args.kill else None
    killed = {}

    def post(m, kind, instance):
        body = {"type": kind, "app": f"app-{m % args.keys}", "environment": "Production", "window": window_of(m)}
        if instance is not None:
            body["instance"] = {"id": f"i-{instance}"}
        data = json.dumps(body).encode()
        key = f"{m}-{kind}-{instance}"
        while True:
            choices = [n for n in (0, 1) if alive[n]]
            n = random.choice(choices)
            status = post_event(servers[n].port, TOKEN, data, key)
            if status in (200, 202):
                return
            if status in (None, 503):
                time.sleep(0.05)  # that instance is down: the agent tries again (same key), maybe on the other
                continue
            raise SystemExit(f"event {key}: HTTP {status}")

    def client(maintenances):
        for m in maintenances:
            for kind, instance in events_of(m):
                post(m, kind, instance)
                with lock:
                    accepted[m].append((kind, instance))
                    posted[0] += 1
                    if kill_at is not None and posted[0] >= kill_at and not killed:
                        killed["at"] = time.time()
                        alive[0] = False
                        servers[0].kill()
                        threading.Thread(target=watch_release, daemon=True).start()

    def watch_release():
        # The survivor logs the release; note when the line appears.
        deadline = time.time() + 60
        while time.time() < deadline:
            if "stopped answering" in open(servers[1].log, errors="replace").read():
                killed["released"] = time.time()
                return
            time.sleep(0.05)

    order = list(range(args.maintenances))
    random.shuffle(order)
    threads = [threading.Thread(target=client, args=(order[c::args.clients],)) for c in range(args.clients)]
    began = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    intake_seconds = time.time() - began
    total = sum(len(v) for v in accepted.values())

    # Wait until every accepted event reached the webhook and Statuspage is idle.
    deadline = time.time() + 600
    seen = set()
    while time.time() < deadline:
        requests = sink.requests()
        seen = {(json.loads(r["body"])["window"]["id"], json.loads(r["body"])["type"], (json.loads(r["body"]).get("instance") or {}).get("id"))
                for r in requests if r["vendor"] == "webhook"}
        if len(seen) >= total:
            break
        time.sleep(0.5)

    def unfinished():
        rows = []
        for state in ("pending", "in_flight", "dead"):
            listing = subprocess.run([args.binary, "deliveries", "list", "--json", "--state", state, "--limit", "1000", "--config", config],
                                     cwd=workdir, capture_output=True, text=True)
            if listing.returncode != 0:
                raise SystemExit(f"deliveries list failed: {listing.stderr[-2000:]}")
            rows += json.loads(listing.stdout or "[]")
        return rows

    # Then until the paced Statuspage deliveries are done too.
    rows = unfinished()
    while rows and any(row["state"] != "dead" for row in rows) and time.time() < deadline:
        time.sleep(1)
        rows = unfinished()
    drain_seconds = time.time() - began
    for server in servers:
        server.stop()
    sink.stop()
    requests = sink.requests()

    # Webhook: delivered, once, in order, never overlapping within a lane.
    hooks = [r for r in requests if r["vendor"] == "webhook"]
    by_lane = collections.defaultdict(list)
    copies = collections.Counter()
    for r in hooks:
        event = json.loads(r["body"])
        item = (event["type"], int(event["instance"]["id"][2:]) if event.get("instance") else None)
        by_lane[event["window"]["id"]].append((parse_time(r["startedAt"]), parse_time(r["receivedAt"]), item))
        copies[(event["window"]["id"], item)] += 1
    missing = [(m, item) for m, items in accepted.items() for item in items if copies[(f"mw-{m}", item)] == 0]
    duplicates = sum(count - 1 for count in copies.values())
    overlaps, out_of_order = 0, 0
    for m, items in accepted.items():
        lane = sorted(by_lane[f"mw-{m}"])
        for previous, current in zip(lane, lane[1:]):
            if current[0] < previous[1] - 0.001:
                overlaps += 1
        firsts = []
        for _, _, item in lane:
            if item not in firsts:
                firsts.append(item)
        if firsts != items:
            out_of_order += 1

    # Statuspage lanes: the create names the window start (one per maintenance), its answer the
    # incident id that later requests use. Per maintenance: the create first, no overlap.
    starts = {window_of(m)["start"]: m for m in accepted}
    incident_of, sp_lanes = {}, collections.defaultdict(list)
    for r in requests:
        if r["vendor"] != "statuspage":
            continue
        if r["method"] == "POST":
            fields = json.loads(r["body"]).get("incident", {})
            m = starts.get(fields.get("scheduled_for"))
            answer = json.loads(r.get("answer") or "{}")
            if m is not None and answer.get("id"):
                incident_of[answer["id"]] = m
        else:
            m = incident_of.get(r["path"].rsplit("/", 1)[-1])
        if m is not None:
            sp_lanes[m].append((parse_time(r["startedAt"]), parse_time(r["receivedAt"]), r["method"]))
    sp_overlaps = sum(1 for lane in sp_lanes.values() for a, b in zip(sorted(lane), sorted(lane)[1:]) if b[0] < a[1] - 0.001)
    sp_misordered = sum(1 for lane in sp_lanes.values() if sorted(lane)[0][2] != "POST")

    # Statuspage: per API key (one page each), requests spaced by at least ~1 s.
    pages = collections.defaultdict(list)
    for r in requests:
        if r["vendor"] == "statuspage":
            match = re.search(r"/pages/([^/]+)/", r["path"])
            pages[match.group(1) if match else "?"].append(parse_time(r["startedAt"]))
    statuspage_requests = sum(len(v) for v in pages.values())
    min_gap = min((b - a for times in pages.values() for a, b in zip(sorted(times), sorted(times)[1:])), default=None)
    worst_window = 0
    for times in pages.values():
        times.sort()
        j = 0
        for i in range(len(times)):
            while times[i] - times[j] >= 1.0:
                j += 1
            worst_window = max(worst_window, i - j + 1)

    stuck = rows
    checks = [
        (f"every accepted event reached the webhook ({total} accepted, {len(missing)} missing)", not missing),
        (f"no overlapping requests within a lane ({overlaps})", overlaps == 0),
        (f"every lane in acceptance order ({out_of_order} lanes out of order)", out_of_order == 0),
        (f"Statuspage lanes: the incident created first, no overlap ({len(sp_lanes)} of {len(accepted)} maintenances followed; "
         f"{sp_misordered} out of order, {sp_overlaps} overlapping)",
         len(sp_lanes) == len(accepted) and sp_misordered == 0 and sp_overlaps == 0),
        (f"Statuspage at most 1 request per second per API key ({statuspage_requests} requests over {len(pages)} keys;"
         f" most in any 1 s: {worst_window}; smallest gap {min_gap if min_gap is None else round(min_gap, 3)} s)", worst_window <= 1),
        (f"nothing pending, in flight or dead at the end ({len(stuck)})", not stuck),
    ]
    if args.kill:
        released = killed["released"] - killed["at"] if "released" in killed else None
        checks.append((f"the killed instance's leases released within 15 s ({'never' if released is None else f'{released:.1f} s'})",
                       released is not None and released <= 15))
        checks.append((f"duplicates no more than the killed instance's sends in flight ({duplicates} ≤ 16)", duplicates <= 16))
    else:
        checks.append((f"no duplicates ({duplicates})", duplicates == 0))
    print(f"cluster test: 2 instances, {total} events over {len(accepted)} maintenances, intake {intake_seconds:.1f} s "
          f"({total / intake_seconds:.0f}/s), all delivered after {drain_seconds:.1f} s; {len(hooks)} webhook and "
          f"{statuspage_requests} Statuspage requests{'; instance 1 SIGKILLed' if args.kill else ''}")
    for name, ok in checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    failed = sum(1 for _, ok in checks if not ok)
    print(f"cluster-test: {len(checks) - failed} passed, {failed} failed")
    if failed == 0:
        subprocess.run(["rm", "-rf", workdir])
    else:
        print(f"  kept {workdir} for inspection")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
