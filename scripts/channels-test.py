#!/usr/bin/env python3
"""The API and chat channels end to end: the real binary delivers to the sink's emulations of
PagerDuty, Datadog, Google Chat, Discord and Slack's Web API (a bot token). One maintenance of five servers is announced, its
servers start, it is moved, then cancelled. Checks:

- exactly one PagerDuty maintenance window and one Datadog downtime were created for it, each
  updated once on the reschedule (PUT / PATCH) and removed once on the cancel (DELETE);
- every Google Chat message of the maintenance carries the same thread key, and a second
  maintenance gets another;
- every Discord message is an embed that pings no one, and every request was answered 2xx.

    scripts/channels-test.py

Everything runs on 127.0.0.1. Exits 1 if any check fails.
"""
import argparse
import json
import os
import tempfile
import time

from patchbay_harness import ROOT, Checks, Server, Sink, free_port, post_event

TOKEN = "channels-token-0123456789abcdef"


def window(hours_from_now, minutes=30):
    start = time.time() + hours_from_now * 3600
    return (time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime(start)),
            time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime(start + minutes * 60)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(ROOT / ".build/debug/patchbay"))
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="patchbay-channels-")
    sink = Sink(args.binary, workdir)
    base = f"http://127.0.0.1:{sink.port}"
    fast = "rate: {perSecond: 50, burst: 50}"
    config = os.path.join(workdir, "patchbay.yaml")
    with open(config, "w") as out:
        out.write(f"""server:
  tokens: ["{TOKEN}"]
store: {{sqlite: ./queue.db}}
delivery: {{pollInterval: 250ms}}
targets:
  pager: {{kind: pagerduty, token: "pd-token-0123456789", from: ops@example.com, baseURL: "{base}/pagerduty", {fast}}}
  dog: {{kind: datadog, apiKey: "dd-api-key-0123456789", appKey: "dd-app-key-0123456789", baseURL: "{base}/datadog", {fast}}}
  chat: {{kind: googlechat, url: "{base}/googlechat/v1/spaces/AAAA/messages?key=k123&token=t456", {fast}}}
  disc: {{kind: discord, url: "{base}/discord/api/webhooks/123456/tok-abcdef", {fast}}}
  bot: {{kind: slack, token: "xoxb-channels-test-0123", channel: C0123456789, baseURL: "{base}/slack-api", {fast}}}
  lost: {{kind: slack, token: "xoxb-channels-test-0123", channel: C0NOTINCHAN, baseURL: "{base}/slack-api", {fast}}}
routes:
  - targets: [chat, disc, bot, lost]
    pagerduty: {{target: pager, services: [PIJ90N7]}}
    datadog: {{target: dog, scope: "env:production AND service:app1", monitorTags: [patching]}}
    reminders: []
    announceStart: false
""")
    server = Server(args.binary, workdir, config, free_port())
    server.start()
    check = Checks()

    def post(kind, key, window_id, start_end, instance=None):
        body = {"type": f"patch.{kind}", "app": "App1", "environment": "Production",
                "window": {"id": window_id, "start": start_end[0], "end": start_end[1]}}
        if instance:
            body["instance"] = {"id": instance, "name": f"web-{instance}"}
        status = post_event(server.port, TOKEN, json.dumps(body).encode(), key)
        check(status == 202, f"{kind} {instance or ''} accepted ({status})")

    def settle(count, seconds=30):
        deadline = time.time() + seconds
        while time.time() < deadline and len(sink.requests()) < count:
            time.sleep(0.25)
        time.sleep(1)

    try:
        planned = window(24)
        post("scheduled", "s-1", "mw-one", planned)
        settle(4)
        for index in range(5):
            post("started", f"st-{index}", "mw-one", planned, instance=f"i-{index}")
        settle(4 + 10)
        moved = window(26)
        post("scheduled", "s-2", "mw-one", moved)
        settle(4 + 10 + 4)
        post("cancelled", "c-1", "mw-one", moved)
        post("scheduled", "s-other", "mw-two", window(30))
        settle(4 + 10 + 4 + 4 + 4)

        requests = sink.requests()
        def of(vendor, method=None, path=None):
            return [r for r in requests if r["vendor"] == vendor and (method is None or r["method"] == method)
                    and (path is None or path in r["path"])]
        pager_windows = [r for r in of("pagerduty") if "maintenance_windows" in r["path"]]
        check([r["method"] for r in pager_windows[:3]] == ["POST", "PUT", "DELETE"],
              f"PagerDuty: create, update on reschedule, delete on cancel for mw-one: {[r['method'] for r in pager_windows]}")
        check(len(of("pagerduty", "POST", "maintenance_windows")) == 2, "PagerDuty: exactly one window per maintenance (two maintenances)")
        if pager_windows:
            created = json.loads(pager_windows[0]["body"])["maintenance_window"]
            check([s["id"] for s in created["services"]] == ["PIJ90N7"], f"the route's services {created['services']}")
            window_id = json.loads(pager_windows[0]["answer"])["maintenance_window"]["id"]
            check(all(window_id in r["path"] for r in pager_windows[1:3]), "the update and the delete address the created window")
            moved_body = json.loads(pager_windows[1]["body"])["maintenance_window"] if len(pager_windows) > 1 else {}
            check(moved_body.get("start_time", "").startswith(moved[0][:13]), f"the update moves the window to {moved[0]}")
        downtimes = of("datadog")
        check([r["method"] for r in downtimes[:3]] == ["POST", "PATCH", "DELETE"],
              f"Datadog: create, update on reschedule, cancel on cancel for mw-one: {[r['method'] for r in downtimes]}")
        check(len(of("datadog", "POST")) == 2, "Datadog: exactly one downtime per maintenance (two maintenances)")
        if downtimes:
            attributes = json.loads(downtimes[0]["body"])["data"]["attributes"]
            check(attributes["scope"] == "env:production AND service:app1" and attributes["monitor_identifier"] == {"monitor_tags": ["patching"]},
                  "the route's scope and monitor tags")
            downtime_id = json.loads(downtimes[0]["answer"])["data"]["id"]
            check(all(downtime_id in r["path"] for r in downtimes[1:3]), "the update and the cancel address the created downtime")
        chats = of("googlechat")
        keys_one = {json.loads(r["body"])["thread"]["threadKey"] for r in chats if "mw-one" in r["body"] or "web-i-" in r["body"]}
        all_keys = {json.loads(r["body"])["thread"]["threadKey"] for r in chats}
        check(len(chats) >= 8, f"Google Chat messages sent ({len(chats)})")
        check(len(keys_one) == 1, f"one maintenance's Google Chat messages share a thread key ({len(keys_one)})")
        check(len(all_keys) == 2, f"another maintenance has its own thread ({len(all_keys)} keys)")
        check(all("messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD" in (r.get("query") or "") for r in chats), "threads are replied to")
        discord = of("discord")
        check(len(discord) >= 8 and all(json.loads(r["body"])["allowed_mentions"] == {"parse": []} and json.loads(r["body"])["embeds"]
                                        for r in discord), f"Discord embeds that ping no one ({len(discord)})")
        check(all(200 <= r["status"] < 300 for r in requests), f"every vendor answered 2xx: {sorted({(r['vendor'], r['status']) for r in requests})}")
        bot = [r for r in of("slack-api") if '"C0123456789"' in r["body"]]
        lost = [r for r in of("slack-api") if '"C0NOTINCHAN"' in r["body"]]
        check(len(bot) >= 8 and all(r["path"].endswith("/chat.postMessage") and '"ok":true' in r["answer"] for r in bot),
              f"Slack bot token: every message posted with chat.postMessage and answered ok ({len(bot)})")
        check(len(lost) == len(bot) and all('"not_in_channel"' in r["answer"] for r in lost),
              f"Slack bot token, a channel the bot is not in: each message tried once, not retried (ok:false not_in_channel): "
              f"{len(lost)} vs {len(bot)}")
    finally:
        server.stop()
        sink.stop()
    check.finish("channels test", workdir)


if __name__ == "__main__":
    main()
