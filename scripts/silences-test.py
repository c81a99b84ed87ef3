#!/usr/bin/env python3
"""Silences and downtimes end to end: the real binary against Debian's Prometheus Alertmanager
(started here on a loopback port with a throwaway config and storage), Debian's Icinga 2 (its
API on loopback behind a private CA made for the run) and the sink's Grafana emulation. For each:

- a `patch.scheduled` two hours ahead makes one pending silence (downtimes on the route's hosts)
  with the window's times and the route's matchers;
- a reschedule moves it (still one open silence for the maintenance); a cancel ends it;
- with `instances`, three servers' `started` make three server silences, and their `completed`
  end them `clearAfter` later, the maintenance's own with the last one.

    scripts/silences-test.py [--only alertmanager|icinga2|grafana]

Everything runs on 127.0.0.1. Exits 1 if any check fails; a part whose Debian package is not
installed fails too (scripts/ensure-deps installs them), so CI cannot pass by skipping it.
"""
import argparse
import datetime
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

from patchbay_harness import ROOT, Checks, Child, Server, Sink, free_port, post_event

TOKEN = "silences-token-0123456789abcdef"
CLEAR_AFTER = 20


def iso(instant):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(instant))


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Alertmanager:
    """Debian's prometheus-alertmanager on a loopback port, gossip off, a null receiver."""

    def __init__(self, workdir):
        self.port = free_port()
        directory = os.path.join(workdir, "alertmanager")
        os.makedirs(os.path.join(directory, "data"), exist_ok=True)
        config = os.path.join(directory, "alertmanager.yml")
        with open(config, "w") as out:
            out.write('route: {receiver: "null"}\nreceivers: [{name: "null"}]\n')
        self.child = Child("alertmanager", [
            "prometheus-alertmanager", f"--config.file={config}", f"--storage.path={directory}/data",
            f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=warn"], workdir)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("alertmanager did not become ready:\n" + self.child.log_text())

    def silences(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v2/silences", timeout=5) as answer:
            return json.loads(answer.read())

    def stop(self):
        self.child.stop()


def ours(silences, window_id=None):
    return [s for s in silences if s["createdBy"] == "Patchbay" and (window_id is None or window_id in s["comment"])]


def open_ones(silences):
    return [s for s in silences if s["status"]["state"] != "expired"]


def wait_until(predicate, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    return predicate()


def matchers_of(silence):
    return sorted((m["name"], m["value"], m["isRegex"], m.get("isEqual", True)) for m in silence["matchers"])


def lifecycle(check, name, server, list_silences, target_key):
    """The shared scenario: a maintenance two hours ahead, moved, cancelled; then one running now
    whose three servers report."""

    def post(kind, key, window_id, start, end, instance=None):
        body = {"type": f"patch.{kind}", "app": "App1", "environment": "Production",
                "window": {"id": window_id, "start": iso(start), "end": iso(end)}}
        if instance:
            body["instance"] = {"id": instance, "name": f"{instance}.example.com"}
        status = post_event(server.port, TOKEN, json.dumps(body).encode(), f"{name}-{key}")
        check(status == 202, f"{name}: {kind} {instance or ''} accepted ({status})")

    ahead = time.time() + 2 * 3600
    start, end = ahead - ahead % 60, ahead - ahead % 60 + 1800
    post("scheduled", "s1", f"{name}-mw-ahead", start, end)
    found = wait_until(lambda: open_ones(ours(list_silences(), f"{name}-mw-ahead")))
    check(len(found) == 1, f"{name}: one open silence for the announced maintenance ({len(found)})")
    if found:
        silence = found[0]
        check(silence["status"]["state"] == "pending", f"{name}: it is pending until the window ({silence['status']['state']})")
        check(abs(parse_time(silence["startsAt"]) - start) < 2 and abs(parse_time(silence["endsAt"]) - end) < 2,
              f"{name}: the window's times {silence['startsAt']} to {silence['endsAt']}")
        check(matchers_of(silence) == [("app", "App1", False, True), ("env", "production", False, True)],
              f"{name}: the route's matchers {matchers_of(silence)}")
        check("[patchbay:" in silence["comment"] and "App1 - Production" in silence["comment"],
              f"{name}: the comment names Patchbay and the maintenance: {silence['comment']!r}")
    moved_start, moved_end = start + 3600, end + 3600
    post("scheduled", "s2", f"{name}-mw-ahead", moved_start, moved_end)
    moved = wait_until(lambda: [s for s in open_ones(ours(list_silences(), f"{name}-mw-ahead"))
                                if abs(parse_time(s["startsAt"]) - moved_start) < 2])
    now_open = open_ones(ours(list_silences(), f"{name}-mw-ahead"))
    check(len(moved) == 1 and len(now_open) == 1,
          f"{name}: the reschedule moved it: one open silence with the new times ({len(moved)} moved, {len(now_open)} open)")
    post("cancelled", "c1", f"{name}-mw-ahead", moved_start, moved_end)
    gone = wait_until(lambda: not open_ones(ours(list_silences(), f"{name}-mw-ahead")))
    check(gone, f"{name}: the cancel expired it")

    # A maintenance running now, three servers reporting.
    now = time.time()
    start, end = now - 60, now + 3600
    post("scheduled", "s3", f"{name}-mw-now", start, end)
    check(bool(wait_until(lambda: open_ones(ours(list_silences(), f"{name}-mw-now")))), f"{name}: the running maintenance's silence")
    servers = ["web-1", "web-2", "web-3"]
    for server_id in servers:
        post("started", f"st-{server_id}", f"{name}-mw-now", start, end, instance=server_id)
    per_server = wait_until(lambda: len([s for s in open_ones(ours(list_silences())) if "is being patched" in s["comment"]
                                          and f"{name}-mw-now" in s["comment"]]) >= 3 and
                            [s for s in open_ones(ours(list_silences())) if "is being patched" in s["comment"]
                             and f"{name}-mw-now" in s["comment"]])
    per_server = per_server or []
    check(len(per_server) == 3, f"{name}: three servers' started made three server silences ({len(per_server)})")
    check(sorted(m["value"] for s in per_server for m in s["matchers"]) ==
          sorted(f"{sid}\\.example\\.com(:[0-9]+)?" for sid in servers),
          f"{name}: each matches its own server, the name's dots escaped: {sorted(m['value'] for s in per_server for m in s['matchers'])}")
    finished_at = time.time()
    for server_id in servers:
        post("completed", f"co-{server_id}", f"{name}-mw-now", start, end, instance=server_id)

    def cleared():
        servers_open = [s for s in open_ones(ours(list_silences())) if f"{name}-mw-now" in s["comment"]
                        and "is being patched" in s["comment"]]
        ending = [s for s in servers_open if parse_time(s["endsAt"]) < finished_at + CLEAR_AFTER + 15]
        wide = [s for s in open_ones(ours(list_silences(), f"{name}-mw-now")) if "is being patched" not in s["comment"]]
        wide_ending = [s for s in wide if parse_time(s["endsAt"]) < finished_at + CLEAR_AFTER + 15]
        return (len(ending) == 3 and len(servers_open) == 3 and len(wide) == 1 and len(wide_ending) == 1) and (servers_open, wide)
    result = wait_until(cleared)
    check(bool(result), f"{name}: each completed server's silence, and the maintenance's after the last, end clearAfter later")
    if result:
        servers_open, wide = result
        ends = [parse_time(s["endsAt"]) - finished_at for s in servers_open + wide]
        check(all(CLEAR_AFTER - 5 < e < CLEAR_AFTER + 15 for e in ends), f"{name}: they end about {CLEAR_AFTER}s after: {[round(e) for e in ends]}")
    shown = subprocess.run([server.binary, "maintenances", "show", f"{name}-mw-now", "--json",
                            "--config", server.config], capture_output=True, text=True, cwd=server.workdir)
    objects = json.loads(shown.stdout).get("vendorObjects", []) if shown.returncode == 0 else []
    linked = [o for o in objects if o.get("link") and o.get("objectID") and o["objectID"] in o["link"]]
    check(sorted(o["target"] for o in linked) == sorted([target_key] + [f"{target_key} · {sid}" for sid in servers]),
          f"{name}: maintenances show links the maintenance's and each server's silence: {[(o['target'], o.get('link')) for o in objects]} {shown.stderr[:200]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(ROOT / ".build/debug/patchbay"))
    parser.add_argument("--only", choices=["alertmanager", "icinga2", "grafana"])
    args = parser.parse_args()
    check = Checks()
    workdir = tempfile.mkdtemp(prefix="patchbay-silences-")
    parts = [args.only] if args.only else ["alertmanager", "grafana"]
    for part in parts:
        if part == "alertmanager":
            if not shutil.which("prometheus-alertmanager"):
                check(False, "prometheus-alertmanager is installed (scripts/ensure-deps prometheus-alertmanager)")
                continue
            manager = Alertmanager(workdir)
            base = f"http://127.0.0.1:{manager.port}"
            target = f"alerts: {{kind: alertmanager, urls: [\"http://127.0.0.1:{free_port()}\", \"{base}\"]}}"
            run(check, args.binary, workdir, "alertmanager", target, "alertmanager", manager.silences)
            manager.stop()
        elif part == "grafana":
            sink = Sink(args.binary, workdir)
            base = f"http://127.0.0.1:{sink.port}/grafana"
            target = f"graf: {{kind: grafana, url: \"{base}\", token: \"glsa_0123456789abcdef\"}}"

            def listed():
                request = urllib.request.Request(f"{base}/api/alertmanager/grafana/api/v2/silences",
                                                 headers={"Authorization": "Bearer glsa_0123456789abcdef"})
                with urllib.request.urlopen(request, timeout=5) as answer:
                    return json.loads(answer.read())
            run(check, args.binary, workdir, "grafana", target, "grafana", listed)
            sink.stop()
    check.finish("silences test", workdir)


def run(check, binary, workdir, name, target_line, route_key, list_silences):
    directory = os.path.join(workdir, name)
    os.makedirs(directory, exist_ok=True)
    target_name = target_line.split(":")[0]
    config = os.path.join(directory, "patchbay.yaml")
    with open(config, "w") as out:
        out.write(f"""server:
  tokens: ["{TOKEN}"]
store: {{sqlite: ./queue.db}}
delivery: {{pollInterval: 200ms}}
targets:
  {target_line}
routes:
  - match: {{app: App1}}
    {route_key}:
      target: {target_name}
      matchers: ['app="App1"', 'env="production"']
      clearAfter: {CLEAR_AFTER}s
      instances: {{matcher: 'instance=~"{{{{instance.name}}}}(:[0-9]+)?"', clearAfter: {CLEAR_AFTER}s}}
    reminders: []
    announceStart: false
""")
    server = Server(binary, directory, config, free_port())
    server.start()
    try:
        lifecycle(check, name, server, list_silences, target_name)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
