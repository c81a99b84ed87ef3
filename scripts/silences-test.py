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
# How long the kill scenario's relay holds each chunk of a vendor's answer.
HOLD = 1.5
SILENCE_ENTRY = """{key}: {{target: {target}, matchers: ['app="App1"', 'env="production"']}}"""


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


class Icinga2:
    """Debian's icinga2 with its API on a loopback port: a private CA and a server certificate
    made with openssl for the run, an API user with only the permissions Patchbay needs, and
    three hosts (two of App1). As root it runs as the package's nagios user."""

    USER, PASSWORD = "patchbay", "icinga-pw-0123456789"
    HOSTS = {"app1-web-1": "App1", "app1-web-2": "App1", "other-1": "Other"}

    def __init__(self, workdir):
        self.port = free_port()
        d = self.directory = os.path.join(workdir, "icinga2")
        for sub in ["etc", "data/certs", "log", "cache", "spool", "run"]:
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        certs = os.path.join(d, "data/certs")
        self.ca = os.path.join(certs, "ca.crt")

        def openssl(*arguments):
            subprocess.run(["openssl", *arguments], check=True, capture_output=True)
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=Patchbay Test CA",
                "-keyout", os.path.join(d, "ca.key"), "-out", self.ca)
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", os.path.join(certs, "localhost.key"),
                "-out", os.path.join(d, "localhost.csr"))
        with open(os.path.join(d, "ext.cnf"), "w") as out:
            out.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        openssl("x509", "-req", "-in", os.path.join(d, "localhost.csr"), "-CA", self.ca, "-CAkey", os.path.join(d, "ca.key"),
                "-CAcreateserial", "-days", "30", "-extfile", os.path.join(d, "ext.cnf"), "-out", os.path.join(certs, "localhost.crt"))
        os.chmod(os.path.join(certs, "localhost.key"), 0o600)
        hosts = "\n".join(f'object Host "{name}" {{ check_command = "dummy"; enable_active_checks = false; vars.app = "{app}" }}'
                          for name, app in self.HOSTS.items())
        with open(os.path.join(d, "etc/icinga2.conf"), "w") as out:
            out.write(f"""const NodeName = "localhost"
const ZoneName = "master"
object Endpoint NodeName {{ }}
object Zone ZoneName {{ endpoints = [ NodeName ] }}
object ApiListener "api" {{ bind_host = "127.0.0.1"; bind_port = {self.port} }}
object ApiUser "{self.USER}" {{ password = "{self.PASSWORD}", permissions = [ "actions/schedule-downtime", "actions/remove-downtime", "objects/query/Downtime" ] }}
object CheckCommand "dummy" {{ command = [ "/bin/true" ] }}
{hosts}
""")
        env = dict(os.environ)
        if os.getuid() == 0:
            # The daemon drops to nagios, which must reach its directory through the run's.
            os.chmod(workdir, 0o755)
            subprocess.run(["chown", "-R", "nagios:nagios", d], check=True)
            env["ICINGA2_USER"], env["ICINGA2_GROUP"] = "nagios", "nagios"
        else:
            import grp
            import pwd
            env["ICINGA2_USER"] = pwd.getpwuid(os.getuid()).pw_name
            env["ICINGA2_GROUP"] = grp.getgrgid(os.getgid()).gr_name
        defines = [f"-DDataDir={d}/data", f"-DLogDir={d}/log", f"-DCacheDir={d}/cache", f"-DSpoolDir={d}/spool", f"-DInitRunDir={d}/run"]
        self.process = subprocess.Popen(["icinga2", "daemon", "-c", os.path.join(d, "etc/icinga2.conf"), *defines],
                                        stdout=open(os.path.join(d, "daemon.log"), "w"), stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                self.downtimes()
                return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.3)
        raise SystemExit("icinga2 did not start:\n" + open(os.path.join(d, "daemon.log")).read()[-3000:])

    def downtimes(self):
        import base64
        import ssl
        context = ssl.create_default_context(cafile=self.ca)
        request = urllib.request.Request(f"https://localhost:{self.port}/v1/objects/downtimes", headers={
            "Accept": "application/json",
            "Authorization": "Basic " + base64.b64encode(f"{self.USER}:{self.PASSWORD}".encode()).decode()})
        with urllib.request.urlopen(request, timeout=5, context=context) as answer:
            return [item["attrs"] for item in json.loads(answer.read())["results"]]

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def icinga_lifecycle(check, server, icinga):
    """Downtimes per host: two App1 hosts, one other."""
    name = "icinga2"

    def post(kind, key, window_id, start, end, instance=None):
        body = {"type": f"patch.{kind}", "app": "App1", "environment": "Production",
                "window": {"id": window_id, "start": iso(start), "end": iso(end)}}
        if instance:
            body["instance"] = {"id": instance, "name": instance}
        status = post_event(server.port, TOKEN, json.dumps(body).encode(), f"{name}-{key}")
        check(status == 202, f"{name}: {kind} {instance or ''} accepted ({status})")

    def of(window_id, servers=None):
        found = [d for d in icinga.downtimes() if window_id in d["comment"] and d["author"] == "Patchbay"
                 and d["end_time"] > time.time()]
        if servers is not None:
            found = [d for d in found if ("is being patched" in d["comment"]) == servers]
        return found

    ahead = time.time() + 2 * 3600
    start, end = ahead - ahead % 60, ahead - ahead % 60 + 1800
    post("scheduled", "s1", "mw-ahead", start, end)
    found = wait_until(lambda: len(of("mw-ahead")) >= 2 and of("mw-ahead")) or of("mw-ahead")
    check(sorted(d["host_name"] for d in found) == ["app1-web-1", "app1-web-2"],
          f"{name}: one downtime per host the filter matches, none on other-1: {sorted(d['host_name'] for d in found)}")
    check(all(abs(d["start_time"] - start) < 2 and abs(d["end_time"] - end) < 2 and d["fixed"] for d in found),
          f"{name}: fixed, with the window's times")
    check(all("Patchbay" in d["comment"] and "App1 - Production" in d["comment"] for d in found), f"{name}: the comment names Patchbay and the maintenance")
    moved_start, moved_end = start + 3600, end + 3600
    post("scheduled", "s2", "mw-ahead", moved_start, moved_end)
    moved = wait_until(lambda: (lambda f: len(f) == 2 and all(abs(d["start_time"] - moved_start) < 2 for d in f) and f)(of("mw-ahead")))
    check(bool(moved), f"{name}: the reschedule left one downtime per host, with the new times ({[(d['host_name'], d['start_time']) for d in of('mw-ahead')]})")
    post("cancelled", "c1", "mw-ahead", moved_start, moved_end)
    check(bool(wait_until(lambda: not of("mw-ahead"))), f"{name}: the cancel removed them")

    now = time.time()
    start, end = now - 60, now + 3600
    post("scheduled", "s3", "mw-now", start, end)
    running = wait_until(lambda: len(of("mw-now", servers=False)) == 2 and of("mw-now", servers=False)) or of("mw-now", servers=False)
    check(len(running) == 2, f"{name}: the running maintenance's downtimes, one per App1 host ({len(running)})")
    servers = ["app1-web-1", "app1-web-2"]
    for host in servers:
        post("started", f"st-{host}", "mw-now", start, end, instance=host)
    per_server = wait_until(lambda: len(of("mw-now", servers=True)) == 2 and of("mw-now", servers=True)) or []
    check(sorted(d["host_name"] for d in per_server) == servers, f"{name}: each started server got its own downtime: {[d['host_name'] for d in per_server]}")
    finished_at = time.time()
    for host in servers:
        post("completed", f"co-{host}", "mw-now", start, end, instance=host)

    def cleared():
        all_open = of("mw-now")
        ending = [d for d in all_open if d["end_time"] < finished_at + CLEAR_AFTER + 15]
        return len(all_open) == 4 and len(ending) == 4 and all_open
    result = wait_until(cleared)
    check(bool(result), f"{name}: each completed server's downtime, and the maintenance's after the last, end clearAfter later "
          f"({[(d['host_name'], round(d['end_time'] - finished_at)) for d in of('mw-now')]})")


class HoldingRelay:
    """A TCP relay on a loopback port that holds every chunk the server sends for `hold` seconds
    (it works through TLS): the vendor has acted on a request while Patchbay still waits for
    the answer, the moment the kill scenario SIGKILLs it."""

    def __init__(self, upstream_port, hold):
        import socket
        import threading
        self.hold = hold
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.upstream_port = upstream_port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket
        import threading
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pump, args=(client, upstream, 0), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, self.hold), daemon=True).start()

    @staticmethod
    def _pump(source, destination, hold):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if hold:
                    time.sleep(hold)
                destination.sendall(data)
        except OSError:
            pass
        for sock in (source, destination):
            try:
                sock.close()
            except OSError:
                pass

    def stop(self):
        self.listener.close()


def kill_between_answer_and_record(check, binary, workdir, name, target_line, entry, open_objects, recorded_id, expected=1):
    """SIGKILLs Patchbay while the vendor's answer to a create is held, restarts it, and expects
    exactly one open object for the maintenance, the one Patchbay then records."""
    server = start_server(binary, workdir, f"{name}-kill", target_line, entry,
                          delivery="{pollInterval: 200ms, lease: 15s, timeout: 12s, connectTimeout: 10s}")
    try:
        ahead = time.time() + 2 * 3600
        start, end = ahead - ahead % 60, ahead - ahead % 60 + 1800
        body = {"type": "patch.scheduled", "app": "App1", "environment": "Production",
                "window": {"id": f"{name}-mw-kill", "start": iso(start), "end": iso(end)}}
        check(post_event(server.port, TOKEN, json.dumps(body).encode(), f"{name}-kill-s1") == 202, f"{name} kill: scheduled accepted")
        made = wait_until(lambda: len(open_objects(f"{name}-mw-kill")) >= expected and open_objects(f"{name}-mw-kill"), seconds=60)
        check(bool(made), f"{name} kill: the vendor made the object while its answer is held")
        server.kill()
        server.start()
        def settled():
            found = open_objects(f"{name}-mw-kill")
            recorded = recorded_id(server, f"{name}-mw-kill")
            return recorded and found and (found, recorded)
        result = wait_until(settled, seconds=90)
        found = open_objects(f"{name}-mw-kill")
        check(len(found) == expected and bool(result),
              f"{name} kill: after the restart still {expected} open object(s) for the maintenance ({len(found)}), "
              f"recorded as {result[1] if result else None}")
    finally:
        server.stop()


def recorded_object(server, window_id):
    shown = subprocess.run([server.binary, "maintenances", "show", window_id, "--json", "--config", server.config],
                           capture_output=True, text=True, cwd=server.workdir)
    if shown.returncode != 0:
        return None
    objects = [o for o in json.loads(shown.stdout).get("vendorObjects", []) if "·" not in o["target"]]
    return objects[0].get("objectID") if objects and objects[0].get("status") == "scheduled" else None


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
    parts = [args.only] if args.only else ["alertmanager", "icinga2", "grafana"]
    for part in parts:
        if part == "alertmanager":
            if not shutil.which("prometheus-alertmanager"):
                check(False, "prometheus-alertmanager is installed (scripts/ensure-deps prometheus-alertmanager)")
                continue
            manager = Alertmanager(workdir)
            base = f"http://127.0.0.1:{manager.port}"
            target = f"alerts: {{kind: alertmanager, urls: [\"http://127.0.0.1:{free_port()}\", \"{base}\"]}}"
            run(check, args.binary, workdir, "alertmanager", target, "alertmanager", manager.silences)
            relay = HoldingRelay(manager.port, HOLD)
            kill_between_answer_and_record(
                check, args.binary, workdir, "alertmanager", f"alerts: {{kind: alertmanager, url: \"http://127.0.0.1:{relay.port}\"}}",
                SILENCE_ENTRY.format(key="alertmanager", target="alerts"), lambda w: open_ones(ours(manager.silences(), w)), recorded_object)
            relay.stop()
            manager.stop()
        elif part == "icinga2":
            if not shutil.which("icinga2"):
                check(False, "icinga2 is installed (scripts/ensure-deps icinga2-bin icinga2-common)")
                continue
            icinga = Icinga2(workdir)
            target = (f"icinga: {{kind: icinga2, url: \"https://localhost:{icinga.port}\", username: {Icinga2.USER}, "
                      f"password: \"{Icinga2.PASSWORD}\", caFile: \"{icinga.ca}\"}}")
            entry = f"""icinga2:
      target: icinga
      filter: 'host.vars.app == "App1"'
      clearAfter: {CLEAR_AFTER}s
      instances: {{filter: 'host.name == "{{{{instance.name}}}}"', clearAfter: {CLEAR_AFTER}s}}"""
            server = start_server(args.binary, workdir, "icinga2", target, entry)
            try:
                icinga_lifecycle(check, server, icinga)
            finally:
                server.stop()
            relay = HoldingRelay(icinga.port, HOLD)
            kill_between_answer_and_record(
                check, args.binary, workdir, "icinga2", target.replace(f"localhost:{icinga.port}", f"localhost:{relay.port}"),
                "icinga2: {target: icinga, filter: 'host.vars.app == \"App1\"'}",
                lambda w: [d for d in icinga.downtimes() if w in d["comment"] and d["end_time"] > time.time()], recorded_object, expected=2)
            relay.stop()
            icinga.stop()
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
            relay = HoldingRelay(sink.port, HOLD)
            kill_between_answer_and_record(
                check, args.binary, workdir, "grafana", target.replace(f":{sink.port}/", f":{relay.port}/"),
                SILENCE_ENTRY.format(key="grafana", target="graf"), lambda w: open_ones(ours(listed(), w)), recorded_object)
            relay.stop()
            sink.stop()
    check.finish("silences test", workdir)


def run(check, binary, workdir, name, target_line, route_key, list_silences):
    target_name = target_line.split(":")[0]
    entry = f"""{route_key}:
      target: {target_name}
      matchers: ['app="App1"', 'env="production"']
      clearAfter: {CLEAR_AFTER}s
      instances: {{matcher: 'instance=~"{{{{instance.name}}}}(:[0-9]+)?"', clearAfter: {CLEAR_AFTER}s}}"""
    server = start_server(binary, workdir, name, target_line, entry)
    try:
        lifecycle(check, name, server, list_silences, target_name)
    finally:
        server.stop()


def start_server(binary, workdir, name, target_line, entry, delivery="{pollInterval: 200ms}"):
    directory = os.path.join(workdir, name)
    os.makedirs(directory, exist_ok=True)
    config = os.path.join(directory, "patchbay.yaml")
    with open(config, "w") as out:
        out.write(f"""server:
  tokens: ["{TOKEN}"]
store: {{sqlite: ./queue.db}}
delivery: {delivery}
targets:
  {target_line}
routes:
  - match: {{app: App1}}
    {entry}
    reminders: []
    announceStart: false
""")
    server = Server(binary, directory, config, free_port())
    server.start()
    return server


if __name__ == "__main__":
    main()
