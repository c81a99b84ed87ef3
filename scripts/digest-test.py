#!/usr/bin/env python3
"""Per-maintenance chat summaries, end to end with the real binary and the sink.

A route with `chat: {mode: per-maintenance, groupWait: ...}` sends one summary per maintenance and
stage instead of one message per server. This posts, for a fleet:

1. 100 servers completing within about 10 s, 3 of them failing: the sink must receive exactly one
   summary ("97 of 100 servers ... completed patching; failed: ...") and the 3 failures, each sent
   at once (before the summary), not 100 messages;
2. a second maintenance whose first 40 servers report, then `patchbay serve` is SIGKILLed during
   groupWait and restarted, then 10 more report: exactly one summary, naming all 50;
3. a straggler reporting after its maintenance's summary went out: one short follow-up naming it.

    scripts/digest-test.py                      # SQLite
    scripts/with-postgres scripts/digest-test.py --store postgres

Everything runs on 127.0.0.1. Exits 1 if any check fails.
"""
import argparse
import concurrent.futures
import json
import os
import re
import tempfile
import time

from patchbay_harness import ROOT, Checks, Server, Sink, free_port, post_event, store_section

TOKEN = "digest-token-0123456789abcdef"
WINDOW_START = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(time.time() + 86400))
WINDOW_END = time.strftime("%Y-%m-%dT%H:30:00Z", time.gmtime(time.time() + 86400))


def event(window, index, kind):
    body = {"type": f"patch.{kind}", "app": "Fleet", "environment": "Production",
            "instance": {"id": f"i-{window}-{index}", "name": f"web-{window}-{index}"},
            "window": {"id": window, "start": WINDOW_START, "end": WINDOW_END}}
    if kind == "failed":
        body["details"] = {"reason": "yum exited 1"}
    return json.dumps(body).encode()


def post_all(port, window, indices, failing=(), spread=0.0):
    """Posts one event per index from 8 clients, over about `spread` seconds; returns the statuses."""
    begin = time.time()
    count = max(1, len(indices))

    def post(index):
        # Each event at its own moment of the spread, whichever client takes it.
        time.sleep(max(0.0, begin + spread * (index - indices[0]) / count - time.time()))
        kind = "failed" if index in failing else "completed"
        return post_event(port, TOKEN, event(window, index, kind), f"{window}-{index}-{kind}")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(post, indices))


def messages(sink, window):
    """The Slack messages of one maintenance: (kind, text, seconds since the first)."""
    found = []
    for request in sink.requests():
        if request["vendor"] != "slack":
            continue
        attachment = json.loads(request["body"])["attachments"][0]
        text = attachment["text"] + " " + " ".join(field["value"] for field in attachment["fields"])
        if f"web-{window}-" in text:
            kind = "summary" if " patching" in attachment["text"] and "server" in attachment["text"] else attachment["title"]
            found.append((kind, attachment["text"], request["receivedAt"]))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--group-wait", type=int, default=15, help="seconds")
    parser.add_argument("--binary", default=str(ROOT / ".build/debug/patchbay"))
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="patchbay-digest-")
    sink = Sink(args.binary, workdir)
    config = os.path.join(workdir, "patchbay.yaml")
    with open(config, "w") as out:
        out.write(f"""server:
  tokens: ["{TOKEN}"]
{store_section(args.store)}
delivery: {{pollInterval: 250ms}}
targets:
  ops: {{kind: slack, url: "http://127.0.0.1:{sink.port}/slack/T0/B0/digest", rate: {{perSecond: 50, burst: 50}}}}
routes:
  - targets: [ops]
    chat: {{mode: per-maintenance, groupWait: {args.group_wait}s}}
    reminders: []
    announceStart: false
""")
    server = Server(args.binary, workdir, config, free_port())
    server.start()
    check = Checks()

    try:
        # 1. A fleet of 100, 3 failing, within about 10 s.
        started = time.time()
        statuses = post_all(server.port, "mw-fleet", list(range(100)), failing={7, 42, 99}, spread=9.0)
        check(all(status == 202 for status in statuses), f"100 events accepted in {time.time() - started:.1f} s")
        # 2. 40 servers, SIGKILL during groupWait, restart, 10 more.
        statuses = post_all(server.port, "mw-killed", list(range(40)))
        server.kill()
        server.start()
        statuses += post_all(server.port, "mw-killed", list(range(40, 50)))
        check(all(status == 202 for status in statuses), "50 events accepted around a SIGKILL")

        deadline = time.time() + args.group_wait + 30
        while time.time() < deadline:
            if any(kind == "summary" for kind, _, _ in messages(sink, "mw-killed")) and \
               any(kind == "summary" for kind, _, _ in messages(sink, "mw-fleet")):
                break
            time.sleep(0.5)
        time.sleep(2)  # anything more that would come

        fleet = messages(sink, "mw-fleet")
        summaries = [text for kind, text, _ in fleet if kind == "summary"]
        failed = [text for kind, text, _ in fleet if kind == "Patching Failed"]
        check(len(fleet) == 4, f"the fleet of 100 produced {len(fleet)} messages (expected 1 summary and 3 failures)")
        check(len(summaries) == 1, f"one summary for the fleet, got {len(summaries)}")
        if summaries:
            check("97 of 100 servers" in summaries[0] and all(f"web-mw-fleet-{i}" in summaries[0] for i in (7, 42, 99)),
                  f"the summary counts 97 of 100 and names the failures: {summaries[0][:160]}")
        check(len(failed) == 3, f"each failure sent on its own ({len(failed)})")
        summary_times = [at for kind, _, at in fleet if kind == "summary"]
        failure_times = [at for kind, _, at in fleet if kind == "Patching Failed"]
        if summary_times and failure_times:
            check(max(failure_times) < summary_times[0], "the failures went out at once, before the summary")

        killed = messages(sink, "mw-killed")
        killed_summaries = [text for kind, text, _ in killed if kind == "summary"]
        check(len(killed) == 1 and len(killed_summaries) == 1, f"one summary for the maintenance around the SIGKILL, got {len(killed)} messages")
        if killed_summaries:
            check("50 of 50 servers" in killed_summaries[0], f"it names all 50: {killed_summaries[0][:120]}")

        # 3. A straggler after the summary: a short follow-up naming it alone.
        check(post_all(server.port, "mw-killed", [50]) == [202], "a straggler accepted after the summary")
        deadline = time.time() + args.group_wait + 30
        while time.time() < deadline and len(messages(sink, "mw-killed")) < 2:
            time.sleep(0.5)
        killed = messages(sink, "mw-killed")
        follow_ups = [text for kind, text, _ in killed[1:]]
        check(len(killed) == 2 and "1 more server" in (follow_ups[0] if follow_ups else ""),
              f"one follow-up for the straggler: {follow_ups[:1]}")
    finally:
        server.stop()
        sink.stop()
    check.finish(f"digest test ({args.store})", workdir)


if __name__ == "__main__":
    main()
