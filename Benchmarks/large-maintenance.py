#!/usr/bin/env python3
"""A maintenance of a thousand servers, each reporting two thousand packages: what one send costs
(review F4) and what the console costs (review F3), against the real binary and the sink.

F4, per-send cost. For each target kind that reads the maintenance's state on every send
(--kinds, default both):

  webhook     a webhook target with a route template naming maintenance counts
              (`{{maintenance.completed}} of {{maintenance.instances}}`): the dispatcher calls
              `maintenanceContext` for every send (`routeTemplates != nil`), without packages;
  plain       (only when asked: a control) a webhook target without templates, which reads no
              maintenance state: what a send costs apart from the maintenance;
  statuspage  a Statuspage target (it `usesMaintenanceState`; its completed update lists the
              packages), with `rate: {perSecond: 10000, burst: 10000}` so pacing does not dominate.

two stores are filled: ONE maintenance of --servers servers, each POSTing one `patch.completed`
with --packages package names (40-60 characters, like RPM names), and --servers/--small
maintenances of --small servers each (the same number of events and deliveries). While filling,
the targets point at a listener that accepts and never answers and `delivery.concurrency` is 1:
one send hangs, nothing is delivered, the backlog builds with every server already reported (so
every send sees the whole maintenance). The server is stopped (SIGTERM; the hung send is then
reset and recorded as a retry) and restarted on the sink with `delivery.concurrency`
--concurrency (default 1: the big maintenance is one lane per target, so both sizes are then
compared send for send). From the first finished delivery on, for at most --drain-cap seconds:
wall time and CPU seconds of the patchbay process (utime+stime, /proc/<pid>/stat) per finished
delivery, counted from /metrics (`patchbay_delivery_attempts_total`: delivered, dead, expired).
Goal: the big maintenance within 2x of the small ones, wall and CPU.

F3, console. One more store: the big maintenance routed to both targets, each server reporting
`patch.started` (no packages) and then `patch.completed` (4 x --servers deliveries; the lanes'
heads are then started events, so parking the dispatcher costs little). The dispatcher is parked:
restarted on the never-answering listener, one send hangs and nothing else is claimed. Four
viewers (server.viewerTokens) sign in and load every console page at once in a loop for
--view-seconds (and until each page was asked for once): /console, the maintenance (and
?servers=2&deliveries=2), /console/deliveries (and ?page=200), the newest delivery of each target,
/console/targets; each request times out after --page-timeout s (--skip-pages leaves some out, to
see what the others cost). VmRSS is sampled every 0.2 s. PASS when every page answered 200 in
under 1 s every time and RSS grew by less than 50 MB over the sample taken just before.

    Benchmarks/large-maintenance.py --binary .build/release/patchbay
    Benchmarks/large-maintenance.py --binary /tmp/pb-new/patchbay --store postgres --postgres-url postgres://...
    Benchmarks/large-maintenance.py --servers 300 --packages 500 --parts f4     # quicker

Everything runs on 127.0.0.1 from a copy of the binary in a temporary directory (removed at the
end, with this run's PostgreSQL schemas when psql is on PATH, unless --keep). Python 3 standard
library only (and scripts/patchbay_harness.py). Caps are reported in the output when hit, so the
script always finishes. Exit 0 when everything ran (whatever the figures; --strict: 2 when a goal
is missed), 1 when something failed to run. Not part of CI.
"""
import argparse
import concurrent.futures
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "scripts"))
from patchbay_harness import (ROOT, ConsoleClient, Sampler, Server, Sink, config_problem, cpu_seconds,  # noqa: E402
                              http_request, rss_mb, store_section)

TOKEN = "large-maintenance-token-3f9a0c1d5e7b"
VIEWERS = [f"large-viewer-{n}-token-8c2e4a6f0b1d" for n in range(4)]
SECRET = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
HOOK_PATH = "/webhook/large-maintenance"
PAGE = "largepage"
# Route template: names maintenance counts, so every send reads the maintenance's state.
TEMPLATE = ('{"summary": "{{title}} {{system}}", "host": "{{#instance}}{{name}}{{/instance}}", '
            '"done": {{maintenance.completed}}, "of": {{maintenance.instances}} }')
KIND_TARGET = {"webhook": "hook", "statuspage": "status", "plain": "plain"}
METRIC_KIND = {"webhook": "webhook", "statuspage": "statuspage", "plain": "webhook"}
FINISHED = ("delivered", "dead", "expired")
PAGE_LIMIT_S = 1.0
RSS_GROWTH_LIMIT_MB = 50.0
COST_FACTOR = 2.0
MB = 1024 * 1024
RSS_INTERVAL_S = 0.2  # VmRSS is sampled this often (the harness's Sampler over rss_mb)


class Failed(Exception):
    pass


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------------------------
# A destination that never answers: holds the dispatcher's one worker while the backlog builds


class Blackhole:
    """Accepts connections and never answers. `reset()` resets the held connections (the send in
    flight then fails at once and is recorded as a retry) and stops listening."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.held, self.closed, self.accepted = [], False, 0
        self.thread = threading.Thread(target=self.accept, daemon=True)
        self.thread.start()

    def accept(self):
        while not self.closed:
            try:
                connection, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.held.append(connection)
            self.accepted += 1

    def reset(self):
        self.closed = True
        self.thread.join()
        self.listener.close()
        for connection in self.held:
            try:
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                connection.close()
            except OSError:
                pass
        self.held = []


# --------------------------------------------------------------------------------------------
# Configuration and events


def write_config(workdir, store_line, port, kinds, concurrency, blocked, body_bytes):
    """A config whose targets point at 127.0.0.1:port (the sink, or the blackhole when `blocked`:
    one worker, a send timeout longer than any fill)."""
    delivery = (f"{{concurrency: 1, timeout: 600s, lease: 1200s, shutdownGrace: 60s}}" if blocked
                else f"{{concurrency: {concurrency}, pollInterval: 250ms}}")
    targets, route = [], ["  - match: {app: Fleet}"]
    if "webhook" in kinds:
        targets.append(f'  hook: {{kind: webhook, url: "http://127.0.0.1:{port}{HOOK_PATH}", secret: "{SECRET}", '
                       f'allowPrivateNetworks: true, rate: {{perSecond: 10000, burst: 10000}}}}')
        route += ["    targets: [hook]", f"    templates: {{body: '{TEMPLATE}'}}"]
    if "plain" in kinds:
        targets.append(f'  plain: {{kind: webhook, url: "http://127.0.0.1:{port}{HOOK_PATH}", secret: "{SECRET}", '
                       f'allowPrivateNetworks: true, rate: {{perSecond: 10000, burst: 10000}}}}')
        route.append("    targets: [plain]")
    if "statuspage" in kinds:
        targets.append(f'  status: {{kind: statuspage, page: {PAGE}, apiKey: "large-maintenance-key", '
                       f'baseURL: "http://127.0.0.1:{port}/statuspage", rate: {{perSecond: 10000, burst: 10000}}}}')
        route.append("    statuspage: {target: status, components: [cmp0large]}")
    route += ["    reminders: []", "    announceStart: false"]
    text = f"""server:
  tokens: ["{TOKEN}"]
  viewerTokens: [{", ".join(f'"{token}"' for token in VIEWERS)}]
  maxBodyBytes: {max(262144, body_bytes + 4096)}
{store_line}
delivery: {delivery}
targets:
{chr(10).join(targets)}
routes:
{chr(10).join(route)}
"""
    path = os.path.join(workdir, "blocked.yaml" if blocked else "patchbay.yaml")
    pathlib.Path(path).write_text(text)
    return path


def package_names(count):
    """RPM-like names of 40-60 characters, the same list on every server (a fleet patched alike)."""
    stems = ["python3-botocore", "kernel-livepatch-repo", "glibc-langpack-en", "amazon-ssm-agent", "openssl-libs",
             "systemd-networkd", "ca-certificates", "libxml2-python3", "containerd-stress", "cloud-init-cfg"]
    names = []
    for index in range(count):
        stem = stems[index % len(stems)]
        names.append(f"{stem}-{index:05d}-{index % 9}.{index % 47}.{index % 13}-1.amzn2023.0.{index % 5}.x86_64")
    return names


class Events:
    """Event bodies built around one pre-encoded package list."""

    def __init__(self, packages):
        self.packages = json.dumps(package_names(packages), separators=(",", ":"))
        now = time.time()
        self.start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 1800))
        self.end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3 * 3600))

    def body(self, window, server, stage="completed"):
        head = {"type": f"patch.{stage}", "app": "Fleet", "environment": "Production",
                "instance": {"id": f"i-{window}-{server:05d}", "name": f"web-{window}-{server:05d}"},
                "window": {"id": window, "start": self.start, "end": self.end}}
        text = json.dumps(head, separators=(",", ":"))
        if stage != "completed":
            return text.encode()
        return (text[:-1] + ',"packages":' + self.packages + "}").encode()


def fill(port, events, plan, clients=4):
    """Posts one event per (window, server[, stage]) of `plan`, in order over `clients`
    connections; returns (deliveries queued, seconds)."""
    started = time.monotonic()
    problems = []

    def post(item):
        window, server, stage = item if len(item) == 3 else (*item, "completed")
        answer = http_request(port, "POST", "/v1/events", events.body(window, server, stage), {
            "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
            "Idempotency-Key": f"{window}-{server}-{stage}"}, timeout=120)
        if answer.status != 202:
            problems.append(f"{window}/{server}: {answer!r} {answer.text()[:200]}")
            return 0
        return json.loads(answer.body).get("deliveries", 0)
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        queued = sum(pool.map(post, plan))
    if problems:
        raise Failed(f"{len(problems)} events not accepted, e.g. {problems[0]}")
    return queued, time.monotonic() - started


def stop_blocked(server, blackhole):
    """SIGTERM (no new claims), then reset the hung send so it is recorded and the process exits."""
    server.process.send_signal(signal.SIGTERM)
    time.sleep(1.5)
    blackhole.reset()
    try:
        server.process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
        log("the blocked server did not stop in 90 s: killed")


# --------------------------------------------------------------------------------------------
# F4: the drain


def attempts(port):
    """{(target_kind, outcome): count} from /metrics, or None when it did not answer."""
    answer = http_request(port, "GET", "/metrics", timeout=10)
    if answer.status != 200:
        return None
    counts = {}
    for line in answer.text().splitlines():
        if not line.startswith("patchbay_delivery_attempts_total{"):
            continue
        labels, _, value = line.rpartition(" ")
        found = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        key = (found.get("target_kind"), found.get("outcome"))
        counts[key] = counts.get(key, 0) + float(value)
    return counts


def measure_drain(server, kind, expected, cap, start_timeout):
    """Samples /metrics every 0.2 s from the restart; figures from the first finished delivery on."""
    pid = server.process.pid
    restarted = time.monotonic()
    first = last = None
    rss = Sampler(lambda: rss_mb(pid), RSS_INTERVAL_S)  # (monotonic, MiB) while the process lives
    rss.start()
    capped = None
    try:
        while True:
            counts = attempts(server.port)
            now, cpu = time.monotonic(), cpu_seconds(pid)
            if counts is None or cpu is None:
                if not server.alive():
                    raise Failed(f"patchbay {server.exit_description()}; see {server.log}")
                time.sleep(0.2)
                continue
            finished = sum(counts.get((METRIC_KIND[kind], outcome), 0) for outcome in FINISHED)
            retries = counts.get((METRIC_KIND[kind], "retry"), 0)
            last = (now, cpu, finished, retries)
            if first is None and finished > 0:
                first = last
            if finished >= expected:
                break
            if first is None and now - restarted >= start_timeout:
                capped = f"no delivery within {start_timeout:.0f} s of the restart"
                break
            if first is not None and now - first[0] >= cap:
                capped = f"measured for {cap:.0f} s (cap), {int(finished)} of {expected} finished"
                break
            time.sleep(0.2)
    finally:
        rss.stop()
    result = {"expected": expected, "finished": int(last[2]) if last else 0, "retries": int(last[3]) if last else 0,
              "capped": capped, "rss_max": rss.max(0.0), "first_after": (first[0] - restarted) if first else None}
    if first is not None and last[2] > first[2]:
        count = last[2] - first[2]
        result.update(measured=int(count), seconds=last[0] - first[0],
                      wall_ms=(last[0] - first[0]) * 1000 / count, cpu_ms=(last[1] - first[1]) * 1000 / count)
    else:
        result.update(measured=0, seconds=(last[0] - first[0]) if first else 0.0, wall_ms=None, cpu_ms=None)
    return result


def new_store(ctx):
    """The harness's store line (a fresh PostgreSQL schema each time); schemas are remembered to drop them."""
    line = store_section(ctx.args.store, ctx.args.postgres_url)
    match = re.search(r"schema: (\w+)", line)
    if match:
        ctx.schemas.append(match.group(1))
    return line


def drop_schemas(ctx):
    """Drops this run's PostgreSQL schemas (about 250 MB each at the default sizes) with psql, when there is one."""
    if not ctx.schemas:
        return
    if not shutil.which("psql"):
        print(f"psql not found: drop the schemas {', '.join(ctx.schemas)} by hand")
        return
    for schema in ctx.schemas:
        subprocess.run(["psql", ctx.args.postgres_url, "-q", "-c", f"DROP SCHEMA IF EXISTS {schema} CASCADE"],
                       capture_output=True, timeout=120)


def run_f4(ctx, kind, size):
    """Fills a fresh store with one big maintenance (`size` == "big") or many small ones, then
    measures the drain of `kind`'s target."""
    servers, small = ctx.args.servers, ctx.args.small
    if size == "big":
        plan = [("mw-big", server) for server in range(servers)]
        label = f"1 x {servers} servers"
    else:
        count = max(1, servers // small)
        plan = [(f"mw-small-{number:04d}", server) for number in range(count) for server in range(small)]
        label = f"{count} x {small} servers"
    workdir = os.path.join(ctx.workdir, f"f4-{kind}-{size}")
    os.makedirs(workdir)
    store_line = new_store(ctx)
    blackhole = Blackhole()
    blocked = write_config(workdir, store_line, blackhole.port, [kind], 1, True, ctx.body_bytes)
    problem = config_problem(ctx.binary, blocked, workdir)
    if problem:
        raise Failed(f"config check failed:\n{problem}")
    server = Server(ctx.binary, workdir, blocked, 0, name="fill")
    server.start()
    try:
        queued, fill_seconds = fill(server.port, ctx.events, plan)
        before = attempts(server.port) or {}
    finally:
        stop_blocked(server, blackhole)
    time.sleep(3.0)  # the reset send's retry (2 s backoff) is due before the drain starts
    delivered_while_filling = sum(before.get((METRIC_KIND[kind], outcome), 0) for outcome in FINISHED)
    expected = int(queued - delivered_while_filling)
    log(f"F4 {kind} {label}: {len(plan)} events, {queued} deliveries queued in {fill_seconds:.1f} s; draining")
    config = write_config(workdir, store_line, ctx.sink.port, [kind], ctx.args.concurrency, False, ctx.body_bytes)
    server = Server(ctx.binary, workdir, config, 0, name="drain")
    server.start()
    try:
        result = measure_drain(server, kind, expected, ctx.args.drain_cap, ctx.args.start_timeout)
    finally:
        stop_started = time.monotonic()
        server.stop()
        result["stop_seconds"] = time.monotonic() - stop_started
    result.update(kind=kind, size=size, label=label, events=len(plan), fill_seconds=fill_seconds)
    shown = "-" if result["wall_ms"] is None else f"{result['wall_ms']:.1f} ms, CPU {result['cpu_ms']:.1f} ms per delivery"
    log(f"F4 {kind} {label}: {result['measured']} measured over {result['seconds']:.1f} s: {shown}"
        + (f" [{result['capped']}]" if result["capped"] else ""))
    return result


# --------------------------------------------------------------------------------------------
# F3: the console


def cli_json(ctx, workdir, config, *arguments):
    done = subprocess.run([ctx.binary, *arguments, "--json", "--config", config], cwd=workdir, capture_output=True,
                          text=True, timeout=120)
    if done.returncode != 0:
        raise Failed(f"patchbay {' '.join(arguments)} failed: {done.stdout}{done.stderr}")
    return json.loads(done.stdout)


def run_f3(ctx):
    args = ctx.args
    workdir = os.path.join(ctx.workdir, "f3")
    os.makedirs(workdir)
    kinds = ["webhook", "statuspage"]
    store_line = new_store(ctx)
    blackhole = Blackhole()
    blocked = write_config(workdir, store_line, blackhole.port, kinds, 1, True, ctx.body_bytes)
    server = Server(ctx.binary, workdir, blocked, 0, name="fill")
    server.start()
    try:
        # Every server reports started, then every server completed (a fleet patched in one go).
        plan = [("mw-big", number, stage) for stage in ("started", "completed") for number in range(args.servers)]
        queued, fill_seconds = fill(server.port, ctx.events, plan)
    finally:
        stop_blocked(server, blackhole)
    log(f"F3: {len(plan)} events, {queued} deliveries queued in {fill_seconds:.1f} s")

    # Restarted with the dispatcher parked: its one worker hangs on the blackhole.
    blackhole = Blackhole()
    blocked = write_config(workdir, store_line, blackhole.port, kinds, 1, True, ctx.body_bytes)
    server = Server(ctx.binary, workdir, blocked, 0, name="console")
    server.start()
    result = {"queued": queued}
    try:
        deadline = time.monotonic() + 60
        while blackhole.accepted == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2.0)  # the parked send's plan done; the process settles
        maintenance = next((row["id"] for row in cli_json(ctx, workdir, blocked, "maintenances", "list", "--limit", "10")
                            if (row.get("window") or {}).get("id") == "mw-big" or row.get("windowKey") == "mw-big"), None)
        if maintenance is None:
            raise Failed("the big maintenance is not listed")
        deliveries = {}
        for kind in kinds:
            rows = cli_json(ctx, workdir, blocked, "deliveries", "list", "--target", KIND_TARGET[kind], "--limit", "1")
            if rows:
                deliveries[kind] = rows[0]["id"]
        pages = [("maintenances", "/console"),
                 ("maintenance", f"/console/maintenances/{maintenance}"),
                 ("maintenance p2", f"/console/maintenances/{maintenance}?servers=2&deliveries=2"),
                 ("deliveries", "/console/deliveries"),
                 ("deliveries p200", "/console/deliveries?page=200")]
        pages += [(f"delivery ({KIND_TARGET[kind]})", f"/console/deliveries/{id_}") for kind, id_ in deliveries.items()]
        pages.append(("targets", "/console/targets"))
        skipped = {name.strip() for name in args.skip_pages.split(",") if name.strip()}
        pages = [(name, path) for name, path in pages if name not in skipped]

        viewers = []
        for token in VIEWERS:
            client = ConsoleClient(server.port, timeout=args.page_timeout)
            answer = client.sign_in(token)
            if answer.status not in (302, 303) or "pb_session" not in client.cookies:
                raise Failed(f"viewer sign-in failed: {answer!r} {answer.text()[:300]}")
            viewers.append(client)

        pid = server.process.pid
        idle = Sampler(lambda: rss_mb(pid), RSS_INTERVAL_S)
        idle.start()
        time.sleep(1.0)
        idle.stop()
        rss_before = idle.samples[-1][1] if idle.samples else rss_mb(pid)
        sampler = Sampler(lambda: rss_mb(pid), RSS_INTERVAL_S)
        sampler.start()
        records = []  # (page name, status or error, seconds)
        lock = threading.Lock()
        stop_at = time.monotonic() + args.view_seconds

        requested = set()

        def view(index, client):
            # Viewers start spread over the list, and go on past the deadline until every page
            # was requested at least once (slow pages would otherwise never reach the last ones).
            step = index * len(pages) // len(viewers)
            while time.monotonic() < stop_at or len(requested) < len(pages):
                name, path = pages[step % len(pages)]
                step += 1
                with lock:
                    requested.add(name)
                answer = client.get(path)
                with lock:
                    records.append((name, answer.status if answer.status is not None else answer.error, answer.seconds))
        threads = [threading.Thread(target=view, args=(index, client)) for index, client in enumerate(viewers)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        viewed = time.monotonic() - began
        time.sleep(0.5)
        sampler.stop()
        alive = server.alive()
        result.update(pages=pages, records=records, rss_before=rss_before, rss_max=sampler.max(0.0), viewed=viewed,
                      alive=alive, exit=server.exit_description(), maintenance=maintenance)
    finally:
        if server.alive():
            stop_blocked(server, blackhole)
        else:
            blackhole.reset()
    return result


# --------------------------------------------------------------------------------------------
# Report


def f4_table(results, args):
    print()
    print(f"F4: cost per send, {args.store}, delivery.concurrency {args.concurrency}, {args.packages} packages per server")
    header = (f"{'kind':<11} {'maintenances':<20} {'deliveries':>10} {'measured':>8} {'seconds':>8} {'ms/deliv':>9} "
              f"{'CPU ms/deliv':>12} {'max RSS MB':>10}  cap")
    print(header)
    print("-" * len(header))
    verdicts = []
    for kind in args.kinds:
        rows = {r["size"]: r for r in results if r["kind"] == kind}
        for size in ("big", "small"):
            row = rows.get(size)
            if row is None:
                continue
            wall = "-" if row["wall_ms"] is None else f"{row['wall_ms']:.2f}"
            cpu = "-" if row["cpu_ms"] is None else f"{row['cpu_ms']:.2f}"
            print(f"{kind:<11} {row['label']:<20} {row['expected']:>10} {row['measured']:>8} {row['seconds']:>8.1f} "
                  f"{wall:>9} {cpu:>12} {row['rss_max']:>10.0f}  {row['capped'] or 'no'}")
        big, small = rows.get("big"), rows.get("small")
        if big and small and big["wall_ms"] and small["wall_ms"]:
            wall_ratio = big["wall_ms"] / small["wall_ms"]
            cpu_ratio = big["cpu_ms"] / small["cpu_ms"] if small["cpu_ms"] else float("inf")
            ok = wall_ratio <= COST_FACTOR and cpu_ratio <= COST_FACTOR
            verdicts.append(ok)
            print(f"{kind:<11} big/small: wall {wall_ratio:.2f}x, CPU {cpu_ratio:.2f}x  -> "
                  f"{'PASS' if ok else 'FAIL'} (goal <= {COST_FACTOR:.0f}x)")
        elif big and small:
            verdicts.append(False)
            print(f"{kind:<11} big/small: no ratio (no delivery measured for the big maintenance) -> FAIL")
    return verdicts


def f3_table(result, args):
    print()
    print(f"F3: console with one maintenance of {args.servers} servers (started, completed with {args.packages} packages) "
          f"({result['queued']} deliveries), 4 viewers for {args.view_seconds:.0f} s, {args.store}")
    header = f"{'page':<19} {'requests':>8} {'not 200':>7} {'p50 ms':>8} {'max ms':>8}  path"
    print(header)
    print("-" * (len(header) + 30))
    all_ok = True
    for name, path in result["pages"]:
        times = sorted(seconds for page, status, seconds in result["records"] if page == name)
        bad = [status for page, status, seconds in result["records"] if page == name and status != 200]
        if not times:
            print(f"{name:<19} {0:>8} {'-':>7} {'-':>8} {'-':>8}  {path} (never requested)")
            all_ok = False
            continue
        p50, worst = times[len(times) // 2] * 1000, times[-1] * 1000
        slow = worst >= PAGE_LIMIT_S * 1000
        all_ok &= not slow and not bad
        note = ""
        if bad:
            kinds = sorted(set(map(str, bad)))
            note = f"  ({', '.join(kinds)}" + (f"; {args.page_timeout:.0f} s timeout hit" if "timeout" in kinds else "") + ")"
        print(f"{name:<19} {len(times):>8} {len(bad):>7} {p50:>8.0f} {worst:>8.0f}  {path}{note}")
    growth = result["rss_max"] - result["rss_before"]
    rss_ok = growth < RSS_GROWTH_LIMIT_MB
    print(f"RSS: {result['rss_before']:.0f} MB before, {result['rss_max']:.0f} MB max during (+{growth:.0f} MB); "
          f"viewing took {result['viewed']:.1f} s; server {result['exit']}")
    ok = all_ok and rss_ok and result["alive"]
    print(f"F3 -> {'PASS' if ok else 'FAIL'} (goal: every page 200 in < {PAGE_LIMIT_S:.0f} s, RSS growth < "
          f"{RSS_GROWTH_LIMIT_MB:.0f} MB)")
    return ok


class Context:
    pass


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_binary = ROOT / ".build/release/patchbay"
    if not default_binary.exists():
        default_binary = ROOT / ".build/debug/patchbay"
    parser.add_argument("--binary", default=str(default_binary),
                        help="patchbay binary (default .build/release/patchbay if present, else .build/debug/patchbay)")
    parser.add_argument("--servers", type=int, default=1000, help="servers in the big maintenance (default 1000)")
    parser.add_argument("--packages", type=int, default=2000, help="packages each server reports (default 2000)")
    parser.add_argument("--small", type=int, default=10, help="servers per small maintenance (default 10)")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", default=os.environ.get("PATCHBAY_TEST_POSTGRES_URL"),
                        help="default $PATCHBAY_TEST_POSTGRES_URL; each store gets a schema of its own")
    parser.add_argument("--kinds", default="webhook,statuspage",
                        help="F4 target kinds: webhook, statuspage, plain (default webhook,statuspage)")
    parser.add_argument("--skip-pages", default="",
                        help="F3: page names to leave out, comma-separated (e.g. 'delivery (status)'), to see what the others cost")
    parser.add_argument("--parts", default="f4,f3", help="which parts to run (default f4,f3)")
    parser.add_argument("--concurrency", type=int, default=1, help="delivery.concurrency while draining (default 1)")
    parser.add_argument("--drain-cap", type=float, default=60.0, help="longest drain measurement in s (default 60)")
    parser.add_argument("--start-timeout", type=float, default=60.0,
                        help="longest wait for the first delivery after the restart in s (default 60)")
    parser.add_argument("--view-seconds", type=float, default=20.0, help="F3: how long the viewers load pages (default 20)")
    parser.add_argument("--page-timeout", type=float, default=30.0, help="F3: per-request timeout in s (default 30)")
    parser.add_argument("--strict", action="store_true", help="exit 2 when a goal is missed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, databases)")
    args = parser.parse_args()
    args.kinds = [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
    parts = {part.strip() for part in args.parts.split(",")}
    if not set(args.kinds) <= set(KIND_TARGET) or not parts <= {"f3", "f4"}:
        parser.error("--kinds: webhook, statuspage, plain; --parts: f3, f4")
    if args.store == "postgres" and not args.postgres_url:
        parser.error("--store postgres needs --postgres-url or PATCHBAY_TEST_POSTGRES_URL")

    ctx = Context()
    ctx.args = args
    ctx.schemas = []
    ctx.workdir = tempfile.mkdtemp(prefix="patchbay-large-")
    if not os.access(args.binary, os.X_OK):
        raise SystemExit(f"no executable at {args.binary}")
    ctx.binary = os.path.join(ctx.workdir, "patchbay")
    shutil.copy2(args.binary, ctx.binary)
    version = subprocess.run([ctx.binary, "--version"], capture_output=True, text=True).stdout.strip()
    ctx.events = Events(args.packages)
    ctx.body_bytes = len(ctx.events.body("mw-small-0000", 0))
    log(f"{args.binary} ({version}), store {args.store}, {args.servers} servers x {args.packages} packages "
        f"(events of {ctx.body_bytes / 1024:.0f} KB), small maintenances of {args.small}; {os.cpu_count()} CPUs; "
        f"workdir {ctx.workdir}")
    ctx.sink = Sink(ctx.binary, ctx.workdir)
    started = time.monotonic()
    f4_results, f3_result, status = [], None, 0
    try:
        if "f4" in parts:
            for kind in args.kinds:
                for size in ("big", "small"):
                    f4_results.append(run_f4(ctx, kind, size))
        if "f3" in parts:
            f3_result = run_f3(ctx)
    except Failed as error:
        print(f"FAILED TO RUN: {error}")
        status = 1
    finally:
        ctx.sink.stop()
    missed = False
    if f4_results:
        missed |= not all(f4_table(f4_results, args))
    if f3_result:
        missed |= not f3_table(f3_result, args)
    print(f"\n{args.binary} ({version}), {args.store}: {time.monotonic() - started:.0f} s in all")
    if args.keep or status:
        print(f"kept {ctx.workdir}" + (f" and the schemas {', '.join(ctx.schemas)}" if ctx.schemas else ""))
    else:
        shutil.rmtree(ctx.workdir, ignore_errors=True)
        drop_schemas(ctx)
    if status == 0 and missed and args.strict:
        status = 2
    sys.exit(status)


if __name__ == "__main__":
    main()
