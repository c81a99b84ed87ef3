#!/usr/bin/env python3
"""First contact, as a new user meets Patchbay (issue 26): the README's quick start on the example
configuration, on any date.

  1. `patchbay serve --config examples/patchbay.yaml --sink …` (the demo's command; only the ports
     are moved, so the test can run beside others), then the README's first event,
     `patchbay send --example completed`: every sink line the README's block shows appears, with
     the same vendor and text. Done today, and again with the clock of both processes set years
     ahead (Debian's faketime), where the example files' fixed window would be long past.
  2. The console answers at /console/sign-in, and the demo's admin token signs in.
  3. Long CLI work shows progress on a terminal and stays quiet in a pipe: `patchbay prune` on a
     store holding old finished deliveries, once under a pseudo-terminal and once in a pipe.

    scripts/first-contact-test.py [--binary .build/debug/patchbay]

Everything runs on 127.0.0.1 in a temporary directory. Exits 1 if any check fails.
"""
import argparse
import os
import pathlib
import pty
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

from patchbay_harness import ROOT, Checks, ConsoleClient, free_port, http_request

TOKEN = "dev-token-0123456789abcdef"
ADMIN_TOKEN = "dev-admin-token-0123456789abcdef"
FUTURE = "2031-03-15 12:03:00"


def readme_sink_lines():
    """The sink lines the README's quick start shows: (vendor, the text before any id in brackets)."""
    text = (ROOT / "README.md").read_text()
    start = text.index("## Quick start")
    block = text[start:text.index("## ", start + 5)]
    lines = [line for line in block.splitlines() if line.startswith("sink: ")]
    expected = []
    for line in lines:
        match = re.match(r"sink: (\S+)\s+(\S+) (\S+) (\d+)\s+(.*)$", line)
        if match:
            vendor, method, _path, status, summary = match.groups()
            expected.append((vendor, method, status, summary.split(" (")[0]))
    return expected


def demo_config(workdir, api_port, sink_port):
    """examples/patchbay.yaml with its ports moved; the store in the working directory, as there."""
    text = (ROOT / "examples/patchbay.yaml").read_text()
    text = text.replace("127.0.0.1:9090", f"127.0.0.1:{sink_port}").replace("listen: 127.0.0.1:8080", f"listen: 127.0.0.1:{api_port}")
    path = pathlib.Path(workdir) / "patchbay.yaml"
    path.write_text(text)
    return path


def faked(clock):
    """The command prefix and environment that run a process at `clock` (None: the real time)."""
    if clock is None:
        return [], {}
    return ["faketime", clock], {"FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def quick_start(binary, check, clock, label):
    workdir = tempfile.mkdtemp(prefix="patchbay-first-contact-")
    api_port, sink_port = free_port(), free_port()
    config = demo_config(workdir, api_port, sink_port)
    prefix, extra = faked(clock)
    env = {**os.environ, **extra}
    env.pop("PATCHBAY_TOKEN", None)
    env.pop("PATCHBAY_ADMIN_TOKEN", None)
    log = pathlib.Path(workdir) / "serve.log"
    with open(log, "w") as out:
        server = subprocess.Popen(prefix + [binary, "serve", "--config", str(config), "--sink", f"127.0.0.1:{sink_port}"],
                                  cwd=workdir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                  start_new_session=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and http_request(api_port, "GET", "/healthz", timeout=1).status != 200:
            if server.poll() is not None:
                break
            time.sleep(0.1)
        sent = subprocess.run(prefix + [binary, "send", "--url", f"http://127.0.0.1:{api_port}", "--example", "completed"],
                              cwd=workdir, capture_output=True, text=True, timeout=60, env={**env, "PATCHBAY_TOKEN": TOKEN})
        check(sent.returncode == 0 and sent.stdout.startswith("202 "),
              f"{label}: `patchbay send --example completed` is accepted: exit {sent.returncode}, {sent.stdout.strip()[:120]} {sent.stderr.strip()[:200]}")
        expected = readme_sink_lines()
        seen = []
        deadline = time.time() + 20
        while time.time() < deadline:
            seen = [line for line in log.read_text().splitlines() if line.startswith("sink: ")]
            if len(seen) >= len(expected):
                break
            time.sleep(0.2)
        time.sleep(1)
        seen = [line for line in log.read_text().splitlines() if line.startswith("sink: ")]
        for vendor, method, status, summary in expected:
            found = [line for line in seen if re.match(rf"sink: {re.escape(vendor)}\s+{method} \S+ {status}\s+{re.escape(summary)}", line)]
            check(len(found) == 1, f"{label}: the README's sink line for {vendor} ({method} {status} {summary}) appears once: "
                                   f"{found[0] if found else 'not seen'}")
        check(len(expected) >= 4 and len(seen) == len(expected),
              f"{label}: the sink shows as many lines as the README ({len(seen)} seen, {len(expected)} shown)")

        page = http_request(api_port, "GET", "/console/sign-in")
        check(page.status == 200, f"{label}: the console answers at /console/sign-in: {page!r}")
        client = ConsoleClient(api_port)
        signed = client.sign_in(ADMIN_TOKEN)
        console = client.get("/console")
        check(signed.status in (302, 303) and console.status == 200,
              f"{label}: the demo's admin token signs in: {signed!r}, then GET /console {console!r}")
    finally:
        stop(server, check, label, graceful=clock is None)
    return workdir, config


def stop(server, check, label, graceful):
    """Stops the server's whole process group and waits until none of it is left. Under faketime
    the server is a child of the faketime process, and libfaketime's interposed calls keep it from
    ever seeing SIGTERM (it stays up, orphaned): that run is stopped with SIGKILL. The run on
    today's clock must stop on SIGTERM, as systemd stops it."""
    os.killpg(server.pid, signal.SIGTERM if graceful else signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        server.poll()
        try:
            os.killpg(server.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(server.pid, signal.SIGKILL)
    check(False, f"{label}: the server stopped within 30 s of {'SIGTERM' if graceful else 'SIGKILL'}")


def progress(binary, check, workdir, config):
    """Old finished deliveries in the demo's store, then `patchbay prune` in a terminal and in a pipe."""
    database = pathlib.Path(workdir) / "patchbay.db"
    old = time.time() - 100 * 86_400
    with sqlite3.connect(database) as db:
        db.execute("""INSERT INTO events (id, body_sha256, type, app, environment, maintenance_key, payload, delivery_count, received_at)
                      VALUES ('evt_old', 'x', 'patch.completed', 'Old', 'Test', 'old', '{}', 3000, ?)""", (old,))
        seq = db.execute("SELECT seq FROM events WHERE id = 'evt_old'").fetchone()[0]
        db.executemany("""INSERT INTO deliveries (id, event_seq, target, target_kind, maintenance_key, display_timezone, state,
                                                  next_attempt_at, created_at, updated_at)
                          VALUES (?, ?, 'ops-slack', 'slack', 'old', 'UTC', 'delivered', ?, ?, ?)""",
                       [(f"dlv_old_{index}", seq, old, old, old) for index in range(3000)])
    command = [binary, "prune", "--config", str(config)]
    piped = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=120)
    check(piped.returncode == 0 and "pruning" not in piped.stderr and "deliveries" in piped.stdout,
          f"prune in a pipe: no progress line (stderr {piped.stderr.strip()[:120]!r}), the report on stdout")
    with sqlite3.connect(database) as db:
        db.executemany("""INSERT INTO deliveries (id, event_seq, target, target_kind, maintenance_key, display_timezone, state,
                                                  next_attempt_at, created_at, updated_at)
                          VALUES (?, (SELECT seq FROM events LIMIT 1), 'ops-slack', 'slack', 'old', 'UTC', 'delivered', ?, ?, ?)""",
                       [(f"dlv_again_{index}", old, old, old) for index in range(3000)])
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(workdir)
        os.execv(binary, command)
    output = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.waitpid(pid, 0)
    text = output.decode(errors="replace")
    check("pruning" in text and "rows deleted" in text, f"prune on a terminal shows its progress: {text.strip()[:160]!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(ROOT / ".build/debug/patchbay"))
    args = parser.parse_args()
    binary = str(pathlib.Path(args.binary).resolve())
    check = Checks()
    started = time.monotonic()
    workdir, config = quick_start(binary, check, None, "today")
    if shutil.which("faketime"):
        quick_start(binary, check, FUTURE, f"on {FUTURE[:10]}")
    else:
        check(False, "faketime is not installed (apt-get install faketime): the quick start could not be tried on another date")
    progress(binary, check, workdir, config)
    print(f"first-contact test: {time.monotonic() - started:.0f} s")
    sys.exit(check.finish("first-contact test", workdir))


if __name__ == "__main__":
    main()
