#!/usr/bin/env python3
"""The web console (`patchbay serve`, /console) in headless chromium through selenium, against the
real binary and the sink. A maintenance of three servers goes to Slack and to a webhook whose six
deliveries die (500). Checks: sign-in (a wrong token 401), the maintenance's progress, dead mark,
timeline and deliveries; a dead delivery previewed (secret redacted), replayed and received by the
sink; the targets page; screenshots at 1280 and 375 px (.build/console-screenshots/), no horizontal
scroll at 375 px; the token field reached by TAB; sign-out; a viewer sees pages but cannot replay;
forged POSTs answer 403; no visited URL carries a token.

    apt-get install chromium chromium-driver; python3 -m pip install selenium; scripts/console-browser-test.py

Nothing is downloaded (Debian's chromedriver is named, SE_OFFLINE=true). Everything runs on
127.0.0.1. Exits 1 if any check fails.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from patchbay_harness import ROOT, Checks, Server, Sink, free_port, post_event

from console_browser import CHROMEDRIVER, CHROMIUM, ActionChains, Browser, Keys, NoSuchElementException, TimeoutException, WebDriverException, failed_step

TOKEN = "console-token-0123456789abcdef"
ADMIN = "admin-token-0123456789abcdef"
VIEWER = "viewer-token-0123456789abcdef"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WINDOW_START = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(time.time() + 86400))
WINDOW_END = time.strftime("%Y-%m-%dT%H:30:00Z", time.gmtime(time.time() + 86400))
SHOTS = ROOT / ".build/console-screenshots"


def event(index, kind):
    return json.dumps({"type": f"patch.{kind}", "app": "App1", "environment": "Production",
                       "instance": {"id": f"i-{index}", "name": f"web-{index}"},
                       "window": {"id": "mw-console", "start": WINDOW_START, "end": WINDOW_END}}).encode()


def dead_webhook_deliveries(binary, workdir, config):
    """The ids of the webhook target's dead deliveries, from `patchbay deliveries list`."""
    output = subprocess.run([binary, "deliveries", "list", "--json", "--state", "dead", "--target", "flaky", "--config", config],
                            cwd=workdir, capture_output=True, text=True, check=True).stdout
    return [delivery["id"] for delivery in json.loads(output)]


def http(url, method="GET", body=None, headers=None):
    """The status of one request (urllib: no cookies but those in headers)."""
    if isinstance(body, dict):
        body, headers = urllib.parse.urlencode(body).encode(), {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(ROOT / ".build/debug/patchbay"))
    args = parser.parse_args()
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not os.access(tool, os.X_OK):
            sys.exit(f"console-browser-test: {tool} is missing (apt-get install chromium chromium-driver)")
    SHOTS.mkdir(parents=True, exist_ok=True)

    workdir = tempfile.mkdtemp(prefix="patchbay-console-")
    sink = Sink(args.binary, workdir)
    sink_url = f"http://127.0.0.1:{sink.port}"
    config = os.path.join(workdir, "patchbay.yaml")
    with open(config, "w") as out:
        out.write(f"""server:
  tokens: ["{TOKEN}"]
  adminTokens: ["{ADMIN}"]
  viewerTokens: ["{VIEWER}"]
store: {{sqlite: ./queue.db}}
delivery: {{pollInterval: 250ms}}
targets:
  ops: {{kind: slack, url: "{sink_url}/slack/T0/B0/console", rate: {{perSecond: 50, burst: 50}}}}
  flaky: {{kind: webhook, url: "{sink_url}/webhook/flaky", secret: "{SECRET}", allowPrivateNetworks: true, retry: {{maxAttempts: 1}}}}
routes:
  - targets: [ops, flaky]
    reminders: []
    announceStart: false
""")
    server = Server(args.binary, workdir, config, free_port())
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    check = Checks()
    browser = None
    try:
        # Six webhook deliveries (3 servers x started/completed), each answered 500 once: all dead.
        script = json.dumps({"path": "/webhook/flaky", "responses": [{"status": 500}] * 6}).encode()
        check(http(f"{sink_url}/_sink/script", "POST", script, {"Content-Type": "application/json"}) == 200, "sink scripted: six 500s for the webhook")
        statuses = [post_event(server.port, TOKEN, event(i, kind), f"console-{i}-{kind}") for i in (1, 2, 3) for kind in ("started", "completed")]
        check(statuses == [202] * 6, f"six events accepted {statuses}")
        deadline = time.time() + 40
        while time.time() < deadline and len(dead_webhook_deliveries(args.binary, workdir, config)) < 6:
            time.sleep(0.5)
        dead = dead_webhook_deliveries(args.binary, workdir, config)
        check(len(dead) == 6, f"the webhook's deliveries are dead ({len(dead)})")
        if len(dead) < 2:
            raise TimeoutException("too few dead deliveries to go on")
        check(http(f"{sink_url}/_sink/script", "DELETE") == 200, "sink scripts cleared")

        b = browser = Browser(base, shots=SHOTS)
        # 1. Sign-in: a wrong token is refused (401, .error), the admin's lands on the maintenances.
        b.go("/console/sign-in")
        b.shoot("sign-in")
        cookies = "; ".join(f"{c['name']}={c['value']}" for c in b.driver.get_cookies())
        fields = {"csrf": b.css("input[name=csrf]").get_attribute("value"), "token": "wrong-token"}
        status = http(f"{base}/console/sign-in", "POST", fields, {"Cookie": cookies, "Origin": base})
        check(status == 401, f"a wrong token (with the form's CSRF token and cookie) answers 401 ({status})")
        b.css("input#token").send_keys("wrong-token")
        b.click("button#sign-in")
        check(b.text(".error").strip() != "" and b.all("input#token"), f"a wrong token re-shows the form with an error: {b.text('.error').strip()[:80]!r}")
        b.sign_in(ADMIN)
        check(b.all("main") and b.all("a#nav-maintenances") and b.all("a#nav-deliveries") and b.all("a#nav-targets") and b.all("button#sign-out"),
              "the page has <main>, the three nav links and the sign-out button")
        row = b.css('tr.maintenance[data-window="mw-console"]')
        progress = b.text("svg.progress title", row)
        check("3 of 3 completed" in progress, f"progress: {progress!r}")
        check(bool(b.all(".dead-mark", row)), "the maintenance carries a dead mark")
        widths = b.shoot("maintenances")
        check(widths[375] <= 375 + 1, f"the maintenances page fits 375 px without horizontal scroll (scrollWidth {widths[375]})")

        # 2. The maintenance's page.
        b.click("a.maintenance-link", b.css('tr.maintenance[data-window="mw-console"]'))
        check("App1" in b.text("h1"), f"the maintenance page names the system: {b.text('h1').strip()!r}")
        check(bool(b.all("svg.timeline")), "it has a timeline")
        rows = b.all("tr.delivery")
        check(len(rows) > 0 and {"ops", "flaky"} <= {r.get_attribute("data-target") for r in rows}, f"it lists deliveries to both targets ({len(rows)})")
        b.shoot("maintenance")

        # 3. Dead deliveries, one previewed and replayed.
        b.go("/console/deliveries?state=dead&target=flaky")
        rows = b.all("tr.delivery")
        check(len(rows) == 6 and all(r.get_attribute("data-state") == "dead" for r in rows), f"six dead webhook deliveries listed ({len(rows)})")
        check(len(b.all("input.select-delivery")) == len(rows) and bool(b.all("button#preview-selected")), "an admin can select deliveries for a replay")
        missing = [f for f in ("select#state", "input#target", "input#app", "input#since", "button#filter") if not b.all(f)]
        check(not missing, f"the filter form is complete (missing: {missing})")
        b.shoot("deliveries")
        b.click("a.delivery-link")
        replayed = b.path().rstrip("/").rsplit("/", 1)[-1]
        victim = next(d for d in dead if d != replayed)
        check(bool(b.all("pre.request")) and bool(b.all("table.attempts")) and SECRET[6:14] not in b.text("pre.request"), f"delivery {replayed}: attempts shown, the secret redacted")
        b.shoot("delivery")
        b.click("button#preview-replay")
        request = b.text("pre.request")
        check(request.startswith("POST http://127.0.0.1:") and "webhook-signature" in request and SECRET[6:14] not in request,
              "the replay preview shows the request, signed, without the secret")
        b.shoot("replay-preview")
        b.click("button#confirm-replay", confirm=True)
        check("replayed" in b.text(".flash"), f"confirmed: {b.text('.flash').strip()!r}")
        def answered():
            return any(r["path"].startswith("/webhook/flaky") and r["status"] == 200 for r in sink.requests())
        deadline = time.time() + 20
        while time.time() < deadline and not answered():
            time.sleep(0.25)
        check(answered(), "the replayed delivery reached the sink (200)")
        replay = f"{base}/console/deliveries/replay"
        admin_cookie = (b.driver.get_cookie("pb_session") or {}).get("value", "")
        status = http(replay, "POST", {"ids": victim, "confirm": "1"}, {"Cookie": f"pb_session={admin_cookie}"})
        check(admin_cookie != "" and status == 403, f"an admin's session without the CSRF token cannot replay ({status})")

        # Targets, with a test message for admins (previewed, not sent).
        b.go("/console/targets")
        check({r.get_attribute("data-target") for r in b.all("tr.target")} == {"ops", "flaky"}, "the targets page lists ops and flaky")
        check(len(b.all("button.test-message")) == 2, "an admin gets a test-message button per target")
        b.shoot("targets")
        b.click("button.test-message")
        check(bool(b.all("button#confirm-test")), "a test message is previewed before it is sent")

        # 6. Sign out: the console asks for a token again.
        b.click("button#sign-out")
        b.go("/console")
        check(b.path() == "/console/sign-in", f"after signing out /console leads to {b.path()}")

        # 5. Keyboard: the token field is reached with TAB from the page's start.
        b.driver.delete_all_cookies()
        b.go("/console/sign-in")
        b.css("input#token")
        b.driver.execute_script("document.activeElement && document.activeElement.blur()")
        focused = []
        while len(focused) < 5 and "token" not in focused:
            ActionChains(b.driver).send_keys(Keys.TAB).perform()
            focused.append(b.driver.execute_script("return document.activeElement && document.activeElement.id"))
        check("token" in focused, "the token field is reached with at most 5 TABs")

        # 7. A viewer: pages, no replay; forged POSTs are refused.
        b.driver.delete_all_cookies()
        b.sign_in(VIEWER)
        check(bool(b.all('tr.maintenance[data-window="mw-console"]')), "a viewer sees the maintenances")
        b.go(f"/console/deliveries/{victim}")
        b.css("pre.request")
        check(not b.all("button#preview-replay"), "a viewer gets no replay button")
        b.go("/console/deliveries?state=dead&target=flaky")
        check(not b.all("input.select-delivery") and not b.all("button#preview-selected"), "a viewer cannot select deliveries for a replay")
        status = http(replay, "POST", {"ids": victim, "confirm": "1"})
        check(status == 403, f"a replay POST without a session answers 403 ({status})")
        csrf = b.css("input[name=csrf]").get_attribute("value")
        viewer_cookie = (b.driver.get_cookie("pb_session") or {}).get("value", "")
        status = http(replay, "POST", {"ids": victim, "confirm": "1", "csrf": csrf}, {"Cookie": f"pb_session={viewer_cookie}"})
        check(viewer_cookie != "" and csrf and status == 403, f"a viewer's session and CSRF token cannot replay ({status})")
        check(victim in dead_webhook_deliveries(args.binary, workdir, config), "the viewer's target delivery is still dead")

        # 8. No token in any URL.
        leaked = [url for url in b.visited if "token-0123456789" in url]
        check(not leaked, f"no token in the {len(b.visited)} URLs visited {leaked[:2]}")
    except (TimeoutException, NoSuchElementException, WebDriverException) as error:
        check(False, f"browser step failed: {failed_step(error)}")
        try:
            browser.driver.save_screenshot(os.path.join(workdir, "failure.png"))
            with open(os.path.join(workdir, "failure.html"), "w") as out:
                out.write(browser.driver.page_source)
        except (AttributeError, WebDriverException):
            pass  # no browser, or it is gone
    finally:
        if browser is not None:
            browser.driver.quit()
        server.stop()
        sink.stop()
    check.finish("console browser test", workdir)


if __name__ == "__main__":
    main()
