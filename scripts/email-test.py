#!/usr/bin/env python3
"""E-mail targets end to end: the real binary sends through libcurl to a real SMTP server
(aiosmtpd) on loopback. Checks:

- a message reaches the server with a plain-text and an HTML part, and the right headers
  (From, To, Cc, Subject, Date, Message-ID, MIME multipart/alternative);
- a second event of the same maintenance replies to the first (In-Reply-To, References);
- a 451 answer is retried and then delivered; a 550 answer makes the delivery dead at once;
- a target that requires STARTTLS (the default) sends nothing to a server that does not offer it;
- a hostile subject cannot inject a header.

    python3 -m pip install aiosmtpd; scripts/email-test.py

Everything runs on 127.0.0.1. Exits 1 if any check fails.
"""
import argparse
import email
import email.policy
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from patchbay_harness import ROOT, Checks, Server, free_port, post_event

try:
    from aiosmtpd.controller import Controller
except ImportError:
    sys.exit("email-test: needs aiosmtpd (python3 -m pip install aiosmtpd)")

TOKEN = "email-token-0123456789abcdef"
WINDOW_START = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(time.time() + 86400))
WINDOW_END = time.strftime("%Y-%m-%dT%H:30:00Z", time.gmtime(time.time() + 86400))


class Handler:
    """Accepts mail for changes@, answers 451 to the first try for flaky@, 550 for bounce@."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = []
        self.flaky_tries = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        recipients = envelope.rcpt_tos
        with self.lock:
            if any(r.startswith("bounce@") for r in recipients):
                return "550 5.1.1 mailbox unavailable"
            if any(r.startswith("flaky@") for r in recipients):
                self.flaky_tries += 1
                if self.flaky_tries == 1:
                    return "451 4.3.0 try again later"
            self.messages.append((envelope.mail_from, list(recipients), envelope.content))
        return "250 OK"


def deliveries(binary, workdir, config):
    output = subprocess.run([binary, "deliveries", "list", "--json", "--config", config], cwd=workdir,
                            capture_output=True, text=True, check=True).stdout
    return json.loads(output)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(ROOT / ".build/debug/patchbay"))
    args = parser.parse_args()

    handler = Handler()
    smtp_port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    workdir = tempfile.mkdtemp(prefix="patchbay-email-")
    config = os.path.join(workdir, "patchbay.yaml")
    url = f"smtp://127.0.0.1:{smtp_port}"
    common = 'from: "Patch Bot <patchbay@example.com>", allowInsecure: true, retry: {base: 1s, cap: 2s, jitter: 0}'
    with open(config, "w") as out:
        out.write(f"""server:
  tokens: ["{TOKEN}"]
store: {{sqlite: ./queue.db}}
delivery: {{pollInterval: 250ms}}
targets:
  changes: {{kind: email, url: "{url}", to: [changes@example.com], cc: [audit@example.com], {common}}}
  flaky: {{kind: email, url: "{url}", to: [flaky@example.com], {common}}}
  bounce: {{kind: email, url: "{url}", to: [bounce@example.com], {common}}}
  partial: {{kind: email, url: "{url}", to: [partial@example.com, nobody@example.com], {common}}}
  secure: {{kind: email, url: "{url}", to: [secure@example.com], from: patchbay@example.com, retry: {{base: 1s, cap: 2s, jitter: 0}}}}
routes:
  - targets: [changes, flaky, bounce, partial, secure]
    reminders: []
    announceStart: false
""")
    server = Server(args.binary, workdir, config, free_port())
    server.start()
    check = Checks()

    try:
        def post(kind, key, name):
            body = json.dumps({"type": f"patch.{kind}", "app": "App1", "environment": "Production",
                               "instance": {"id": "i-1", "name": name},
                               "window": {"id": "mw-mail", "start": WINDOW_START, "end": WINDOW_END}}).encode()
            return post_event(server.port, TOKEN, body, key)
        # A name trying to start a header line: the intake refuses control characters, so this
        # one carries a lookalike; the message must still hold exactly one Subject.
        hostile = "web-1 Bcc: victim@example.com   <b>x</b>"
        status = post("started", "mail-1", hostile)
        check(status == 202, f"started event accepted ({status})")
        time.sleep(1.5)
        check(post("completed", "mail-2", hostile) == 202, "completed event accepted")

        deadline = time.time() + 40
        while time.time() < deadline:
            states = {(d["target"], d["state"]) for d in deliveries(args.binary, workdir, config)}
            if ("flaky", "pending") not in states and ("changes", "pending") not in states and ("partial", "pending") not in states and \
               sum(1 for d in deliveries(args.binary, workdir, config) if d["target"] == "flaky" and d["state"] == "delivered") == 2:
                break
            time.sleep(0.5)
        listed = deliveries(args.binary, workdir, config)
        by_target = {}
        for delivery in listed:
            by_target.setdefault(delivery["target"], []).append(delivery)

        changes = [m for m in handler.messages if "changes@example.com" in m[1]]
        check(len(changes) == 2, f"two messages reached the server for changes@ ({len(changes)})")
        if len(changes) == 2:
            mail_from, recipients, raw = changes[0]
            check(mail_from == "patchbay@example.com", f"envelope sender {mail_from}")
            check(sorted(recipients) == ["audit@example.com", "changes@example.com"], f"envelope recipients {recipients}")
            first = email.message_from_bytes(raw, policy=email.policy.default)
            second = email.message_from_bytes(changes[1][2], policy=email.policy.default)
            check(first.get_content_type() == "multipart/alternative", f"multipart/alternative ({first.get_content_type()})")
            types = [part.get_content_type() for part in first.iter_parts()]
            check(types == ["text/plain", "text/html"], f"a plain-text and an HTML part {types}")
            plain = first.get_body(("plain",)).get_content()
            html = first.get_body(("html",)).get_content()
            check("web-1" in plain and "App1 - Production" in plain, "the text part names the server and the system")
            check("<table>" in html and "App1 - Production" in html, "the HTML part has the facts table")
            check(first["From"] == "Patch Bot <patchbay@example.com>", f"From: {first['From']}")
            check(first["To"] == "changes@example.com" and first["Cc"] == "audit@example.com", "To and Cc")
            check(str(first["Subject"]).startswith("Patching Beginning: web-1"), f"Subject: {first['Subject']}")
            check(first["Date"] is not None and first["Message-ID"] is not None, "Date and Message-ID present")
            check(first["Bcc"] is None and second["Bcc"] is None and len(first.get_all("Subject")) == 1,
                  "the server name injects no header")
            check("&lt;b&gt;x&lt;/b&gt;" in html, "HTML in the server name is escaped in the HTML part")
            check(second["In-Reply-To"] == first["Message-ID"] and second["References"] == first["Message-ID"],
                  f"the second message replies to the first ({second['In-Reply-To']} / {first['Message-ID']})")

        flaky = by_target.get("flaky", [])
        check(len(flaky) == 2 and all(d["state"] == "delivered" for d in flaky), f"451 retried, then delivered: {[d['state'] for d in flaky]}")
        check(handler.flaky_tries >= 3, f"the 451 was answered to a first try and the retry went through ({handler.flaky_tries} tries)")
        bounce = by_target.get("bounce", [])
        check(len(bounce) == 2 and all(d["state"] == "dead" for d in bounce), f"550 is dead at once: {[d['state'] for d in bounce]}")
        check(all(d.get("attempts") == 1 for d in bounce), f"with one attempt: {[d.get('attempts') for d in bounce]}")
        partial = by_target.get("partial", [])
        check(len(partial) == 2 and all(d["state"] == "delivered" for d in partial) and
              sum(1 for m in handler.messages if m[1] == ["partial@example.com"]) == 2,
              f"a refused recipient does not stop the mail to the others: {[d['state'] for d in partial]}")
        secure = by_target.get("secure", [])
        check(not any("secure@example.com" in m[1] for m in handler.messages), "no mail without STARTTLS when it is required")
        check(all(d["state"] in ("pending", "in_flight", "dead") for d in secure) and len(secure) == 2,
              f"the STARTTLS target's deliveries are not delivered: {[d['state'] for d in secure]}")
    finally:
        server.stop()
        controller.stop()
    check.finish("email test", workdir)


if __name__ == "__main__":
    main()
