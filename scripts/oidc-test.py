#!/usr/bin/env python3
"""Console sign-in through a real OpenID Connect provider, in headless chromium, end to end.

The provider (`scripts/oidc_provider.py`, Authlib's authorization server on Flask) runs at
http://localhost:P and Patchbay at http://127.0.0.1:Q, so the two are different sites and the
cookies' SameSite rules are really exercised. Three users: alice (ops-admins, RS256), bob (sre,
ES256), carol (marketing). The test:

1. alice signs in through the provider's own login form, lands on the console as an admin with
   her name in the header, replays a dead delivery, sees her sign-in and the replay on the audit
   page with her name, and signs out;
2. bob lands as a viewer: no audit page for him;
3. refusals, each with a page that says why and no session: an ID token for another audience,
   expired, with another nonce, signed by a key the provider does not publish (same kid), from
   another issuer; carol (in no mapped group); a tampered `state`; a callback URL used twice;
4. the provider rotates its keys: signing in still works;
5. bob's ID tokens live 15 s; the provider drops him from his group; when the token has expired
   his session ends at his next request, and signing in again is refused;
6. nothing the provider issued (codes, ID tokens) and not the client secret is in Patchbay's log,
   the audit trail (`GET /v1/audit`, `patchbay audit list --json`) or a visited URL but the
   provider's own callback.

    scripts/oidc-test.py          # needs authlib (python3 -m pip install 'authlib==1.9.10'), selenium, chromium

Everything runs on loopback. Exits 1 if any check fails.
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
from console_browser import CHROMEDRIVER, CHROMIUM, Browser, NoSuchElementException, TimeoutException, WebDriverException, failed_step

TOKEN = "oidc-agent-token-0123456789abcdef"
ADMIN = "oidc-admin-token-0123456789abcdef"
CLIENT_SECRET = "oidc-client-secret-4f1d9c2b7a"
WINDOW_START = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(time.time() + 86400))
WINDOW_END = time.strftime("%Y-%m-%dT%H:30:00Z", time.gmtime(time.time() + 86400))
USERS = {"alice": ("alice-pw", "Alice Admin"), "bob": ("bob-pw", "Bob Viewer"), "carol": ("carol-pw", "Carol Nobody")}


def call(url, method="GET", body=None, headers=None):
    """(status, parsed JSON or text) of one request, no cookies."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as error:
        text, status = error.read().decode(), error.code
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


class Provider:
    """The test provider, a child process; its test-only endpoints script faults."""

    def __init__(self, workdir, redirect):
        self.port = free_port()
        self.issuer = f"http://localhost:{self.port}"
        self.log = open(os.path.join(workdir, "provider.log"), "w")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts/oidc_provider.py"), "--port", str(self.port), "--issuer", self.issuer,
             "--client-id", "patchbay", "--client-secret", CLIENT_SECRET, "--redirect-uri", redirect],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.process.stdout.readline()
        if not line.startswith("ready"):
            sys.exit(f"oidc-test: the provider did not start ({line!r}; see {self.log.name})")

    def test(self, path, body=None):
        status, answer = call(f"{self.issuer}/_test/{path}", "POST" if body is not None or path != "issued" else "GET", body)
        if status != 200:
            raise RuntimeError(f"provider /_test/{path}: {status} {answer}")
        return answer

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


class OIDCBrowser(Browser):
    def sign_in_with_provider(self, user, expect_form=True):
        """From the console's sign-in page through the provider's form (or its SSO) to the callback's answer."""
        self.driver.delete_all_cookies()
        self.go("/console/sign-in")
        self.click("a#oidc-sign-in")
        if expect_form:
            self.wait(lambda d: d.find_elements("css selector", "input#username"), "no login form at the provider")
            password, _ = USERS[user]
            self.css("input#username").send_keys(user)
            self.css("input#password").send_keys(password)
            self.click("button#login")
        self.visited.append(self.driver.current_url)
        # The callback answers a page; a successful one moves on to /console by itself.
        self.wait(lambda d: d.find_elements("css selector", "#signed-in-as, p.error, #signed-in-name"), "no answer after the provider")
        self.visited.append(self.driver.current_url)

    def signed_in_as(self):
        try:
            self.wait(lambda d: d.find_elements("css selector", "#signed-in-as"), "not on a console page", timeout=5)
        except TimeoutException:
            return None
        return self.text("#signed-in-as").strip(), self.text("header .muted").strip()

    def session_cookie(self):
        return self.driver.get_cookie("pb_session")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def callback_by_hand(base, provider, user):
    """The sign-in without a browser, up to the provider's redirect: (callback URL, flow cookie)."""
    opener = urllib.request.build_opener(NoRedirect)

    def fetch(url, data=None, cookie=None):
        request = urllib.request.Request(url, data=data, headers={"Cookie": cookie} if cookie else {})
        try:
            response = opener.open(request, timeout=10)
        except urllib.error.HTTPError as answer:
            response = answer
        return response.status, response.headers
    status, headers = fetch(f"{base}/console/oidc/start")
    flow = headers.get("Set-Cookie", "").split(";")[0]
    authorize = headers.get("Location", "")
    password, _ = USERS[user]
    status, headers = fetch(authorize, urllib.parse.urlencode({"username": user, "password": password}).encode())
    return headers.get("Location", ""), flow


def fetch_page(url, cookie=None):
    """(status, body, Set-Cookie headers) of a GET, redirects not followed."""
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        response = urllib.request.build_opener(NoRedirect).open(request, timeout=10)
    except urllib.error.HTTPError as answer:
        response = answer
    return response.status, response.read().decode(), response.headers.get_all("Set-Cookie") or []


def audit(base):
    status, records = call(f"{base}/v1/audit?since=1h&limit=1000", headers={"Authorization": f"Bearer {ADMIN}"})
    return records if status == 200 else []


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(ROOT / ".build/debug/patchbay"))
    args = parser.parse_args()
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not os.access(tool, os.X_OK):
            sys.exit(f"oidc-test: {tool} is missing (apt-get install chromium chromium-driver)")
    try:
        import authlib  # noqa: F401
    except ImportError:
        sys.exit("oidc-test: needs authlib (python3 -m pip install 'authlib==1.9.10')")

    workdir = tempfile.mkdtemp(prefix="patchbay-oidc-")
    sink = Sink(args.binary, workdir)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    provider = Provider(workdir, f"{base}/console/oidc/callback")
    config = os.path.join(workdir, "patchbay.yaml")
    with open(config, "w") as out:
        out.write(f"""server:
  listen: 127.0.0.1:{port}
  tokens: [{{name: ci-pipeline, token: "{TOKEN}"}}]
  adminTokens: [{{name: ops-api, token: "{ADMIN}"}}]
  consoleKey: "oidc-console-key-0123456789abcdef0123456789"
  drainDelay: 0s
  oidc:
    issuer: {provider.issuer}
    clientID: patchbay
    clientSecret: "{CLIENT_SECRET}"
    redirectURL: {base}/console/oidc/callback
    scopes: [openid, profile, email, groups]
    roles:
      admin: {{claim: groups, values: [ops-admins]}}
      viewer: {{claim: groups, values: [ops, sre]}}
store: {{sqlite: ./queue.db}}
delivery: {{pollInterval: 200ms}}
targets:
  broken:
    kind: webhook
    url: http://127.0.0.1:{sink.port}/status/400
    secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    allowPrivateNetworks: true
    retry: {{maxAttempts: 1}}
routes:
  - targets: [broken]
""")
    server = Server(args.binary, workdir, config, port)
    server.start()
    check = Checks()
    browser = None
    try:
        body = json.dumps({"type": "patch.completed", "app": "App1", "environment": "Production",
                           "instance": {"id": "i-1", "name": "web-1"},
                           "window": {"id": "mw-oidc", "start": WINDOW_START, "end": WINDOW_END}}).encode()
        check(post_event(port, TOKEN, body, "oidc-1") == 202, "an event accepted from the named token")
        deadline = time.time() + 30
        dead = []
        while time.time() < deadline and not dead:
            out = subprocess.run([args.binary, "deliveries", "list", "--json", "--state", "dead", "--config", config],
                                 cwd=workdir, capture_output=True, text=True).stdout
            dead = json.loads(out or "[]")
            time.sleep(0.3)
        check(len(dead) == 1 and dead[0].get("sender") == "token:ci-pipeline",
              f"the dead delivery records the token that sent its event: {[d.get('sender') for d in dead]}")
        listed = subprocess.run([args.binary, "deliveries", "list", "--config", config], cwd=workdir, capture_output=True, text=True).stdout
        check("token:ci-pipeline" in listed, "`patchbay deliveries list` shows the sender")

        browser = b = OIDCBrowser(base)
        # 1. alice, an admin, through the provider's form.
        b.sign_in_with_provider("alice")
        who = b.signed_in_as()
        check(who == ("Alice Admin", "admin"), f"alice lands on the console as an admin, named in the header: {who}")
        check(b.session_cookie() is not None and b.driver.get_cookie("pb_oidc") is None,
              "a session cookie, and the sign-in flow's cookie is gone")
        check(bool(b.all("a#nav-audit")), "an admin sees the audit page in the menu")
        b.go(f"/console/deliveries/{dead[0]['id']}")
        b.click("button#preview-replay")
        b.click("button#confirm-replay", confirm=True)
        check("replayed" in b.text(".flash"), f"alice replays the dead delivery: {b.text('.flash').strip()!r}")
        b.go("/console/audit?since=1d")
        rows = [(r.get_attribute("data-action"), r.find_element("css selector", "td.actor").text) for r in b.all("tr.audit")]
        check(("sign-in", "Alice Admin") in rows and ("replay", "Alice Admin") in rows,
              f"the audit page shows alice's sign-in and her replay: {rows[:6]}")
        b.click("button#sign-out")
        check(b.path() == "/console/sign-in" and b.session_cookie() is None, "alice signs out")
        b.go("/console")
        check(b.path() == "/console/sign-in", "after signing out the console asks to sign in again")
        records = audit(base)
        actions = [(r["action"], r["actor"], r["outcome"]) for r in records]
        check(("sign-out", "Alice Admin", "ok") in actions, f"GET /v1/audit records the sign-out: {actions[:5]}")
        alice = next((r for r in records if r["action"] == "sign-in" and r["actor"] == "Alice Admin"), {})
        check(alice.get("method") == "oidc" and alice.get("actorID") == "alice" and alice.get("source") == "127.0.0.1",
              f"who, how and from where: {alice}")

        # 2. bob, a viewer.
        provider.test("logout", {})
        b.sign_in_with_provider("bob")
        check(b.signed_in_as() == ("Bob Viewer", "viewer"), f"bob lands as a viewer: {b.signed_in_as()}")
        check(not b.all("a#nav-audit"), "a viewer has no audit page in the menu")
        b.go("/console/audit")
        check("needs an admin" in b.driver.page_source and not b.all("tr.audit"), "a viewer cannot read the audit trail")

        # 3. Refusals, each with its reason and no session.
        for fault, reason in [("audience", "another application"), ("expired", "expired"), ("nonce", "nonce"),
                              ("foreign-key", "signature"), ("issuer", "another provider")]:
            provider.test("logout", {})
            provider.test("fault", {"fault": fault})
            b.sign_in_with_provider("alice")
            error = b.text("p.error")
            check(reason in error and b.session_cookie() is None, f"an ID token with a wrong {fault} is refused: {error!r}")
        provider.test("logout", {})
        b.sign_in_with_provider("carol")
        error = b.text("p.error")
        check("Carol Nobody" in error and "none of the groups" in error and b.session_cookie() is None,
              f"carol, in no mapped group, is refused by name: {error!r}")
        # A tampered state: the provider is asked with another state than the console's cookie holds.
        provider.test("logout", {})
        b.driver.delete_all_cookies()
        b.go("/console/sign-in")
        b.click("a#oidc-sign-in")
        b.wait(lambda d: d.find_elements("css selector", "input#username"), "no login form")
        url = urllib.parse.urlparse(b.driver.current_url)
        query = dict(urllib.parse.parse_qsl(url.query))
        query["state"] = "tampered-" + query.get("state", "")[:8]
        b.driver.get(url._replace(query=urllib.parse.urlencode(query)).geturl())
        b.css("input#username").send_keys("alice")
        b.css("input#password").send_keys("alice-pw")
        b.click("button#login")
        b.wait(lambda d: d.find_elements("css selector", "p.error"), "no refusal for a tampered state")
        check("(state)" in b.text("p.error") and b.session_cookie() is None, f"a tampered state is refused: {b.text('p.error')!r}")
        # A callback URL used twice: the first signs in, the second (with the same flow cookie, or
        # without it) finds no flow to finish.
        callback, flow = callback_by_hand(base, provider, "alice")
        check("/console/oidc/callback?" in callback and "code=" in callback and flow.startswith("pb_oidc="),
              "by hand: the provider sends the code back to the callback")
        status, page, cookies = fetch_page(callback, flow)
        check(status == 200 and "Alice Admin" in page and any(c.startswith("pb_session=") for c in cookies),
              f"the first use of the callback signs in ({status})")
        for cookie in (flow, None):
            status, page, cookies = fetch_page(callback, cookie)
            check(status == 400 and "(state)" in page and not any(c.startswith("pb_session=") and len(c) > 20 for c in cookies),
                  f"the same callback URL used again is refused ({status}, flow cookie {'kept' if cookie else 'gone'})")

        # 4. Key rotation.
        provider.test("logout", {})
        provider.test("rotate", {})
        time.sleep(11)  # Patchbay fetches the keys again at most every 10 s
        b.sign_in_with_provider("alice")
        check(b.signed_in_as() == ("Alice Admin", "admin"), "after the provider rotated its keys, alice still signs in")

        # 5. bob leaves his group: his session ends with his ID token.
        provider.test("logout", {})
        provider.test("ttl", {"seconds": 15})
        b.sign_in_with_provider("bob")
        check(b.signed_in_as() == ("Bob Viewer", "viewer"), "bob signs in with a 15 s ID token")
        provider.test("groups/bob", {"groups": []})
        time.sleep(17)
        b.go("/console")
        check(b.path() == "/console/sign-in", f"once bob's ID token expired, his next request finds no session ({b.path()})")
        b.sign_in_with_provider("bob", expect_form=False)
        check("none of the groups" in b.text("p.error") and b.session_cookie() is None,
              f"signing in again, bob is refused: {b.text('p.error')!r}")
        refused = [r for r in audit(base) if r["action"] == "sign-in" and r["outcome"] == "refused"]
        check(any(r["actor"] == "Bob Viewer" for r in refused) and any("no_role" in r["detail"] for r in refused),
              "the refusal is in the audit trail, with its reason")

        # 6. Nothing secret leaked.
        issued = provider.test("issued")
        secrets = [s for s in issued.get("codes", []) + issued.get("id_tokens", []) + issued.get("access_tokens", []) if s]
        log = "".join(open(os.path.join(workdir, name)).read() for name in os.listdir(workdir) if name.startswith("serve-"))
        trail = json.dumps(audit(base)) + subprocess.run(
            [args.binary, "audit", "list", "--since", "1h", "--json", "--config", config], cwd=workdir, capture_output=True, text=True).stdout
        check(len(secrets) >= 10, f"the provider issued codes and tokens ({len(secrets)})")
        leaked = [s[:12] for s in secrets if s in log or s in trail] + (["client secret"] if CLIENT_SECRET in log + trail else [])
        check(not leaked and "eyJ" not in log and "eyJ" not in trail, f"no code, ID token or client secret in the log or the audit trail: {leaked}")
        urls = [u for u in b.visited if "/console/oidc/callback" not in u and not u.startswith(provider.issuer)]
        check(not any(s in u for s in secrets for u in urls), "no visited console URL carries a code or token")
        cli = subprocess.run([args.binary, "audit", "list", "--since", "1h", "--config", config], cwd=workdir, capture_output=True, text=True)
        check(cli.returncode == 0 and "Alice Admin" in cli.stdout and "replay" in cli.stdout, "`patchbay audit list` shows alice's actions")
    except (TimeoutException, NoSuchElementException, WebDriverException, RuntimeError) as error:
        check(False, f"the browser run stopped: {failed_step(error)}")
    finally:
        if browser:
            browser.driver.quit()
        server.stop()
        provider.stop()
        sink.stop()
    check.finish("oidc test", workdir)


if __name__ == "__main__":
    main()
