#!/usr/bin/env python3
"""One live chat message per maintenance, end to end with the real binary and the sink.

A route with `chat: {mode: live}` keeps one message per maintenance and chat target, posted on
the first delivery and edited in place as the fleet reports (Slack's Web API `chat.update`, a
Discord webhook message PATCH); failures are replies beside it (a Slack thread reply broadcast to
the channel, a separate Discord message). An edit with a later one queued behind it in its lane
is never sent: it is recorded as `superseded`. This runs three maintenances, each of its own app:

1. App1, a burst: 30 servers start and finish within about 5 s, 2 of them fail. Slack must get
   exactly one live chat.postMessage (no thread_ts), 1 to 15 chat.update of that ts, the last one
   counting 28 of 30 and naming both failed servers, and 2 thread replies for the failures;
   Discord one live POST (?wait=true), PATCHes of that message only, the last one current, and 2
   failure messages. Some edits were superseded, none is dead, and `maintenances show --json`
   records the live message's ts and id as the vendor objects of `<target>/live`.
2. App2: 30 servers start; once both live messages exist, half of them finish, `patchbay serve`
   is SIGKILLed at once (its lanes still busy) and restarted on the same database, and the rest
   finish (2 failing). Still one live message per target, every edit to it, the last one current.
3. App3, a lost message: after the live message exists and was edited, Slack answers the next
   chat.update `message_not_found` and Discord the next PATCH 404 Unknown Message (10008): one
   new live message per target, and the later edits go to it.

    scripts/live-test.py                                      # SQLite
    scripts/with-postgres scripts/live-test.py --store postgres

Everything runs on 127.0.0.1. Exits 1 if any check fails.
"""
import argparse
import concurrent.futures
import http.client
import json
import os
import re
import subprocess
import tempfile
import time

from patchbay_harness import ROOT, Checks, Server, Sink, free_port, http_call, post_event, store_section

TOKEN = "live-token-0123456789abcdef"
ADMIN = "live-admin-0123456789abcdef"
SLACK_TARGET, DISCORD_TARGET = "ops-slack-app", "ops-discord"
SLACK_CHANNEL = "C0123456789"
DISCORD_WEBHOOK = "/discord/api/webhooks/123456789012345678/live-token-abc"
# One window for every maintenance (a later event with other times would be a reschedule): it
# began ten minutes ago and ends in two hours, so no overrun notice is due during the run.
WINDOW_START = time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime(time.time() - 600))
WINDOW_END = time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime(time.time() + 7200))
COMPLETED = re.compile(r"(\d+) of (\d+) servers completed")


def server_name(prefix, index):
    # The same length for every index, so no name is part of another.
    return f"{prefix}-web-{index:02d}"


def event(app, window, prefix, index, kind):
    body = {"type": f"patch.{kind}", "app": app, "environment": "Production",
            "instance": {"id": f"i-{prefix}-{index:02d}", "name": server_name(prefix, index)},
            "window": {"id": window, "start": WINDOW_START, "end": WINDOW_END}}
    if kind == "failed":
        body["details"] = {"reason": "yum exited 1"}
    return json.dumps(body).encode()


def post_timeline(port, app, window, prefix, steps):
    """Posts (seconds from now, server index, kind) steps from 8 clients, each at its moment;
    returns [(index, kind, status)]. A retry would resend the same body under the same key."""
    begin = time.time()

    def post(step):
        at, index, kind = step
        time.sleep(max(0.0, begin + at - time.time()))
        status = post_event(port, TOKEN, event(app, window, prefix, index, kind), f"{window}-{index}-{kind}")
        return index, kind, status
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(post, sorted(steps)))


def plain(text):
    """Text with Discord's Markdown escapes (`\\-`, `\\_`) taken out."""
    return (text or "").replace("\\", "")


def body_of(request):
    try:
        body = json.loads(request.get("body") or "")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def slack_content(body):
    """(title, text, {field title: value}) of a Slack message's first attachment."""
    attachments = body.get("attachments") or [{}]
    first = attachments[0] if isinstance(attachments[0], dict) else {}
    fields = {f.get("title"): f.get("value") or "" for f in first.get("fields") or [] if isinstance(f, dict)}
    return first.get("title") or "", first.get("text") or "", fields


def discord_content(body):
    """(title, description, {field name: value}) of a Discord message's first embed."""
    embeds = body.get("embeds") or [{}]
    first = embeds[0] if isinstance(embeds[0], dict) else {}
    fields = {f.get("name"): f.get("value") or "" for f in first.get("fields") or [] if isinstance(f, dict)}
    return first.get("title") or "", first.get("description") or "", fields


def answered(request, key):
    """A string member of the vendor's answer (Slack's `ts`, Discord's `id`), or None. The sink
    keeps the first 2 KiB of the answer, so this reads it with a pattern rather than as JSON."""
    match = re.search(rf'"{key}"\s*:\s*"([^"]+)"', request.get("answer") or "")
    return match.group(1) if match else None


class Traffic:
    """One maintenance's requests at the sink, in the order the sink recorded them. A request is
    the maintenance's when it names its app ("App1 - Production") or one of its servers."""

    def __init__(self, sink, app, prefix):
        self.app, self.prefix = app, prefix
        self.live_title = f"Patching {app} - Production"
        self.slack_posts, self.slack_updates, self.slack_replies = [], [], []
        self.discord_posts, self.discord_patches, self.discord_failures = [], [], []
        self.other = []
        for request in sorted(sink.requests(), key=lambda r: r.get("seq", 0)):
            text = plain(request.get("body"))
            if f"{app} - Production" not in text and f"{prefix}-web-" not in text:
                continue
            body, path, method = body_of(request), request.get("path", ""), request.get("method")
            if request.get("vendor") == "slack-api" and path == "/slack-api/chat.postMessage":
                (self.slack_replies if body.get("thread_ts") else self.slack_posts).append(request)
            elif request.get("vendor") == "slack-api" and path == "/slack-api/chat.update":
                self.slack_updates.append(request)
            elif method == "POST" and path == DISCORD_WEBHOOK:
                title = discord_content(body)[0]
                if title == "Patching Failed":
                    self.discord_failures.append(request)
                elif self.live_title in plain(title):
                    self.discord_posts.append(request)
                else:
                    self.other.append(request)
            elif method == "PATCH" and path.startswith(DISCORD_WEBHOOK + "/messages/"):
                self.discord_patches.append(request)
            else:
                self.other.append(request)

    @staticmethod
    def patched_id(request):
        return request["path"].rsplit("/", 1)[1]

    def all_requests(self):
        return sorted(self.slack_posts + self.slack_updates + self.slack_replies + self.discord_posts + self.discord_patches
                      + self.discord_failures + self.other, key=lambda r: r.get("seq", 0))


def current(title, text, fields, app, total, failed):
    """Whether a live message's content is the finished maintenance's: `total - len(failed)` of
    `total` completed, and exactly the failed servers in its "Failed" field."""
    text = plain(text)
    match = COMPLETED.search(text)
    named = {name.strip().strip("`") for name in plain(fields.get("Failed", "")).split(",") if name.strip()}
    counts = bool(match) and (int(match.group(1)), int(match.group(2))) == (total - len(failed), total)
    failures = not failed or re.search(rf"\b{len(failed)} failed\b", text) is not None
    return plain(title) == f"Patching {app} - Production" and counts and failures and named == set(failed)


def describe(title, text, fields):
    return f"{plain(title)!r}: {plain(text)[:100]!r}, Failed: {plain(fields.get('Failed', ''))[:100]!r}"


def maintenance_view(server, window):
    """GET /v1/maintenances/<window id> (the view `maintenances show --json` prints), or None."""
    try:
        status, body = http_call(server.port, "GET", f"/v1/maintenances/{window}", headers={"Authorization": f"Bearer {ADMIN}"})
    except (OSError, http.client.HTTPException):
        return None
    try:
        return json.loads(body) if status == 200 else None
    except ValueError:
        return None


def live_objects(view):
    """(Slack ts, Discord message id) the maintenance's live lanes recorded, None for a missing one."""
    objects = {o.get("target"): o.get("objectID") for o in (view or {}).get("vendorObjects", [])}
    return objects.get(f"{SLACK_TARGET}/live"), objects.get(f"{DISCORD_TARGET}/live")


def delivery_counts(view):
    return (view or {}).get("maintenance", {}).get("deliveries", {}) or {}


def drain(server, sink, window, quiet=4.0, limit=120):
    """Waits until the maintenance has no pending or in-flight delivery and the sink got nothing
    for `quiet` seconds; returns (drained, seconds waited, the last view)."""
    began = time.time()
    seen, since, view = -1, time.time(), None
    while time.time() - began < limit:
        count = len(sink.requests())
        if count != seen:
            seen, since = count, time.time()
        view = maintenance_view(server, window)
        counts = delivery_counts(view)
        busy = view is None or counts.get("pending", 0) > 0 or counts.get("in_flight", 0) > 0
        if not busy and time.time() - since >= quiet:
            return True, time.time() - began, view
        time.sleep(0.5)
    return False, time.time() - began, view


def wait_until(predicate, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    return predicate()


def cli(server, *arguments):
    """`patchbay <arguments> --config <the server's>` in its directory: (exit status, stdout, stderr)."""
    done = subprocess.run([server.binary, *arguments, "--config", server.config], capture_output=True, text=True,
                          cwd=server.workdir, timeout=120)
    return done.returncode, done.stdout, done.stderr


def shown_objects(server, window):
    """The live lanes' vendor objects as `patchbay maintenances show <window> --json` prints them."""
    status, out, err = cli(server, "maintenances", "show", window, "--json")
    if status != 0:
        return None, None, f"exit {status}: {err.strip()[:200]}"
    try:
        view = json.loads(out)
    except ValueError:
        return None, None, f"not JSON: {out[:200]}"
    slack_ts, discord_id = live_objects(view)
    return slack_ts, discord_id, json.dumps(view.get("vendorObjects", []))[:300]


def all_answered(check, name, traffic, scripted=()):
    """Every request of the maintenance but the scripted ones got a 2xx (and no Slack `"ok": false`; a
    refusal is short, while an acceptance may be cut before its `ok` in the sink's 2 KiB)."""
    refused = [(r["method"], r["path"], r.get("status"), (r.get("answer") or "")[:80]) for r in traffic.all_requests()
               if r.get("seq") not in scripted and (not 200 <= (r.get("status") or 0) < 300
                                                     or (r.get("vendor") == "slack-api" and '"ok":false' in
                                                         (r.get("answer") or "").replace(" ", "")))]
    check(not refused, f"{name}: every request of the maintenance was accepted by the vendor: {refused[:3]}")


def check_live(check, name, traffic, total, failed, view, edits=(1, 15)):
    """The shared checks of a maintenance with one live message per target (scenarios 1 and 2):
    returns (Slack ts, Discord id) of the live messages, None where there is none. Each is read
    from the vendor's answer to the post, or when the sink cut that answer short of it, from
    what the maintenance's `view` recorded."""
    app = traffic.app
    recorded_ts, recorded_id = live_objects(view)
    check(len(traffic.slack_posts) == 1, f"{name}: Slack got exactly one live chat.postMessage without thread_ts "
                                         f"({len(traffic.slack_posts)})")
    slack_ts = None
    if traffic.slack_posts:
        live = body_of(traffic.slack_posts[0])
        slack_ts = answered(traffic.slack_posts[0], "ts") or recorded_ts
        check(live.get("channel") == SLACK_CHANNEL and slack_content(live)[0] == traffic.live_title,
              f"{name}: the live message is posted to {SLACK_CHANNEL} with the title {traffic.live_title!r}: "
              f"{live.get('channel')!r}, {slack_content(live)[0]!r}")
    updates = traffic.slack_updates
    check(edits[0] <= len(updates) <= edits[1],
          f"{name}: {edits[0]} to {edits[1]} chat.update of the live message ({len(updates)})")
    update_ts = sorted({body_of(r).get("ts") for r in updates}, key=str)
    check(slack_ts is not None and update_ts == [slack_ts] and all(body_of(r).get("channel") == SLACK_CHANNEL for r in updates),
          f"{name}: every chat.update edits the live message (ts {slack_ts}, in {SLACK_CHANNEL}): {update_ts}")
    if updates:
        last = slack_content(body_of(updates[-1]))
        check(current(*last, app, total, failed), f"{name}: the last chat.update is current: {describe(*last)}")
    replies = traffic.slack_replies
    check(len(replies) == len(failed), f"{name}: {len(failed)} thread replies for the failures ({len(replies)})")
    check(all(body_of(r).get("thread_ts") == slack_ts and body_of(r).get("channel") == SLACK_CHANNEL for r in replies),
          f"{name}: the replies are in the live message's thread: {[body_of(r).get('thread_ts') for r in replies]}")
    check(all(body_of(r).get("reply_broadcast") is True for r in replies),
          f"{name}: failure replies are broadcast to the channel")
    named = sorted(n for n in failed for r in replies if n in plain(r.get("body")))
    check(named == sorted(failed), f"{name}: each failed server has its reply: {named}")

    posts = traffic.discord_posts
    first_post = min(posts + traffic.discord_failures, key=lambda r: r.get("seq", 0), default=None)
    check(len(posts) == 1 and first_post is posts[0],
          f"{name}: Discord got exactly one live message, the maintenance's first POST ({len(posts)})")
    discord_id = (answered(posts[0], "id") or recorded_id) if posts else None
    if posts:
        check("wait=true" in (posts[0].get("query") or ""), f"{name}: the live message is posted with ?wait=true "
                                                              f"({posts[0].get('query')!r})")
    patches = traffic.discord_patches
    patched = sorted({Traffic.patched_id(r) for r in patches})
    check(len(patches) >= 1 and discord_id is not None and patched == [discord_id],
          f"{name}: {len(patches)} PATCH(es), all of the live message {discord_id}: {patched}")
    if patches:
        last = discord_content(body_of(patches[-1]))
        check(current(*last, app, total, failed), f"{name}: the last PATCH is current: {describe(*last)}")
    failures = traffic.discord_failures
    named = sorted(n for n in failed for r in failures if n in plain(r.get("body")))
    check(len(failures) == len(failed) and named == sorted(failed),
          f"{name}: {len(failed)} Discord failure messages, one per failed server ({len(failures)}: {named})")
    check(not traffic.other, f"{name}: no other message of the maintenance: "
                             f"{[(r['method'], r['path'], (r.get('body') or '')[:80]) for r in traffic.other[:3]]}")
    all_answered(check, name, traffic)
    return slack_ts, discord_id


def check_recorded(check, name, server, window, slack_ts, discord_id):
    shown_ts, shown_id, detail = shown_objects(server, window)
    check(shown_ts is not None and shown_ts == slack_ts and shown_id is not None and shown_id == discord_id,
          f"{name}: `maintenances show {window} --json` records {SLACK_TARGET}/live {shown_ts} (posted {slack_ts}) and "
          f"{DISCORD_TARGET}/live {shown_id} (posted {discord_id}): {detail}")


def burst(check, server, sink):
    """Scenario 1: 30 servers start and finish within about 5 s, 2 of them failing."""
    name, app, window, prefix = "burst", "App1", "live-burst", "burst"
    failing = {7, 19}
    steps = [(0.1 * i, i, "started") for i in range(30)]
    steps += [(1.5 + 0.1 * i, i, "failed" if i in failing else "completed") for i in range(30)]
    began = time.time()
    statuses = post_timeline(server.port, app, window, prefix, steps)
    check(all(status == 202 for _, _, status in statuses),
          f"{name}: 60 events accepted in {time.time() - began:.1f} s: {sorted({s for _, _, s in statuses}, key=str)}")
    drained, waited, view = drain(server, sink, window)
    counts = delivery_counts(view)
    check(drained, f"{name}: the lanes drained in {waited:.0f} s: {counts}")
    traffic = Traffic(sink, app, prefix)
    failed = [server_name(prefix, i) for i in sorted(failing)]
    slack_ts, discord_id = check_live(check, name, traffic, 30, failed, view)
    superseded = counts.get("superseded", 0)
    print(f"     {name}: deliveries by state {counts}")
    check(superseded >= 1, f"{name}: edits with a later one behind them were superseded, not sent ({superseded})")
    check(counts.get("dead", 0) == 0, f"{name}: no delivery is dead ({counts.get('dead', 0)})")
    status, out, err = cli(server, "deliveries", "list", "--state", "superseded", "--app", app, "--json")
    try:
        rows = json.loads(out) if status == 0 else []
    except ValueError:
        rows = []
    lanes = sorted({row.get("target") for row in rows})
    check(status == 0 and len(rows) >= 1 and all(row.get("state") == "superseded" for row in rows),
          f"{name}: `deliveries list --state superseded --json` lists them ({len(rows)}, lanes {lanes}) {err.strip()[:200]}")
    check_recorded(check, name, server, window, slack_ts, discord_id)


def kill_and_restart(check, server, sink):
    """Scenario 2: SIGKILL of `patchbay serve` in the middle of a maintenance's burst."""
    name, app, window, prefix = "kill", "App2", "live-kill", "kill"
    failing = {17, 26}
    statuses = post_timeline(server.port, app, window, prefix, [(0.07 * i, i, "started") for i in range(30)])
    check(all(status == 202 for _, _, status in statuses), f"{name}: 30 started accepted")

    def both_recorded():
        ids = live_objects(maintenance_view(server, window))
        return ids if all(ids) else None
    recorded = wait_until(both_recorded, 60)
    check(bool(recorded), f"{name}: both live messages are recorded before the kill: {recorded}")
    before = recorded or (None, None)
    statuses = post_timeline(server.port, app, window, prefix, [(0.1 * i, i, "completed") for i in range(15)])
    check(all(status == 202 for _, _, status in statuses), f"{name}: the first 15 outcomes accepted")
    server.kill()
    at_kill = len(Traffic(sink, app, prefix).all_requests())
    print(f"     {name}: SIGKILLed with {at_kill} request(s) of the maintenance at the sink so far")
    server.start()
    steps = [(0.1 * (i - 15), i, "failed" if i in failing else "completed") for i in range(15, 30)]
    statuses = post_timeline(server.port, app, window, prefix, steps)
    check(all(status == 202 for _, _, status in statuses), f"{name}: the other 15 outcomes accepted after the restart")
    drained, waited, view = drain(server, sink, window)
    counts = delivery_counts(view)
    check(drained, f"{name}: the lanes drained in {waited:.0f} s: {counts}")
    print(f"     {name}: deliveries by state {counts}")
    check(counts.get("dead", 0) == 0, f"{name}: no delivery is dead ({counts.get('dead', 0)})")
    traffic = Traffic(sink, app, prefix)
    failed = [server_name(prefix, i) for i in sorted(failing)]
    slack_ts, discord_id = check_live(check, name, traffic, 30, failed, view, edits=(1, 40))
    check(tuple(before) == (slack_ts, discord_id) and slack_ts is not None,
          f"{name}: the live messages recorded before the kill are the ones edited after it: "
          f"{before} vs {(slack_ts, discord_id)}")
    check_recorded(check, name, server, window, slack_ts, discord_id)


def lost_message(check, server, sink):
    """Scenario 3: the live message was deleted: a new one is posted and edited from then on."""
    name, app, window, prefix = "lost", "App3", "live-lost", "lost"
    count = 10
    statuses = post_timeline(server.port, app, window, prefix, [(0.1 * i, i, "started") for i in range(count)])
    check(all(status == 202 for _, _, status in statuses), f"{name}: {count} started accepted")
    drained, waited, view = drain(server, sink, window)
    check(drained, f"{name}: the lanes drained in {waited:.0f} s: {delivery_counts(view)}")
    old_ts, old_id = live_objects(view)
    traffic = Traffic(sink, app, prefix)
    check(len(traffic.slack_posts) == 1 and len(traffic.discord_posts) == 1 and old_ts and old_id,
          f"{name}: one live message per target, recorded as {old_ts} and {old_id}")
    edited = ([r for r in traffic.slack_updates if body_of(r).get("ts") == old_ts],
              [r for r in traffic.discord_patches if Traffic.patched_id(r) == old_id])
    check(all(edited), f"{name}: each was edited before it got lost ({len(edited[0])} chat.update, {len(edited[1])} PATCH)")
    seen = max((r.get("seq", 0) for r in sink.requests()), default=0)

    sink.script("/slack-api/chat.update", [{"status": 200, "body": json.dumps({"ok": False, "error": "message_not_found"})}])
    if old_id:
        sink.script(f"{DISCORD_WEBHOOK}/messages/{old_id}",
                    [{"status": 404, "body": json.dumps({"message": "Unknown Message", "code": 10008})}])
    statuses = post_timeline(server.port, app, window, prefix, [(0.2 * i, i, "completed") for i in range(count // 2)])
    check(all(status == 202 for _, _, status in statuses), f"{name}: {count // 2} outcomes accepted after the messages got lost")

    def reposted():
        now = Traffic(sink, app, prefix)
        return len(now.slack_posts) >= 2 and len(now.discord_posts) >= 2
    check(bool(wait_until(reposted, 90)), f"{name}: a new live message is posted at each target")
    drain(server, sink, window)
    statuses = post_timeline(server.port, app, window, prefix, [(0.2 * (i - count // 2), i, "completed")
                                                                 for i in range(count // 2, count)])
    check(all(status == 202 for _, _, status in statuses), f"{name}: the other {count - count // 2} outcomes accepted")
    drained, waited, view = drain(server, sink, window)
    counts = delivery_counts(view)
    check(drained, f"{name}: the lanes drained in {waited:.0f} s: {counts}")
    check(counts.get("dead", 0) == 0, f"{name}: no delivery is dead ({counts.get('dead', 0)})")

    traffic = Traffic(sink, app, prefix)
    after = lambda requests: [r for r in requests if r.get("seq", 0) > seen]  # noqa: E731
    lost_updates = [r for r in after(traffic.slack_updates) if "message_not_found" in (r.get("answer") or "")]
    check(len(lost_updates) == 1 and body_of(lost_updates[0]).get("ts") == old_ts,
          f"{name}: Slack answered message_not_found to one chat.update of {old_ts} "
          f"({[body_of(r).get('ts') for r in lost_updates]})")
    new_posts = after(traffic.slack_posts)
    check(len(traffic.slack_posts) == 2 and len(new_posts) == 1 and bool(lost_updates)
          and new_posts[0]["seq"] > lost_updates[0]["seq"],
          f"{name}: exactly one new live chat.postMessage (no thread_ts), after the refused edit ({len(new_posts)})")
    new_ts = answered(new_posts[0], "ts") if new_posts else None
    later = [r for r in traffic.slack_updates if new_posts and r["seq"] > new_posts[0]["seq"]]
    later_ts = sorted({body_of(r).get("ts") for r in later}, key=str)
    check(new_ts is not None and new_ts != old_ts and later and later_ts == [new_ts],
          f"{name}: the later chat.update ({len(later)}) edit the new message {new_ts}: {later_ts}")
    if later:
        last = slack_content(body_of(later[-1]))
        check(current(*last, app, count, []), f"{name}: the last chat.update is current: {describe(*last)}")

    lost_patches = [r for r in after(traffic.discord_patches) if r.get("status") == 404]
    check(len(lost_patches) == 1 and Traffic.patched_id(lost_patches[0]) == old_id,
          f"{name}: Discord answered 404 Unknown Message to one PATCH of {old_id} "
          f"({[Traffic.patched_id(r) for r in lost_patches]})")
    new_messages = after(traffic.discord_posts)
    check(len(traffic.discord_posts) == 2 and len(new_messages) == 1 and bool(lost_patches)
          and new_messages[0]["seq"] > lost_patches[0]["seq"],
          f"{name}: exactly one new Discord live message, after the refused PATCH ({len(new_messages)})")
    new_id = answered(new_messages[0], "id") if new_messages else None
    later = [r for r in traffic.discord_patches if new_messages and r["seq"] > new_messages[0]["seq"]]
    later_ids = sorted({Traffic.patched_id(r) for r in later})
    check(new_id is not None and new_id != old_id and later and later_ids == [new_id],
          f"{name}: the later PATCHes ({len(later)}) edit the new message {new_id}: {later_ids}")
    if later:
        last = discord_content(body_of(later[-1]))
        check(current(*last, app, count, []), f"{name}: the last PATCH is current: {describe(*last)}")
    check(not traffic.slack_replies and not traffic.discord_failures and not traffic.other,
          f"{name}: nothing else was sent for the maintenance "
          f"({len(traffic.slack_replies)} replies, {len(traffic.discord_failures)} failure messages, {len(traffic.other)} other)")
    all_answered(check, name, traffic, scripted={r["seq"] for r in lost_updates + lost_patches})
    check_recorded(check, name, server, window, new_ts, new_id)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", help="default: $PATCHBAY_TEST_POSTGRES_URL (each run uses a new schema)")
    parser.add_argument("--binary", default=str(ROOT / ".build/debug/patchbay"))
    parser.add_argument("--only", choices=["burst", "kill", "lost"], help="run one scenario")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="patchbay-live-")
    sink = Sink(args.binary, workdir)
    base = f"http://127.0.0.1:{sink.port}"
    config = os.path.join(workdir, "patchbay.yaml")
    # The targets keep their kinds' default pacing (Slack 1/s, burst 3; Discord 0.5/s, burst 2):
    # the backlog behind it is what makes edits superseded.
    with open(config, "w") as out:
        out.write(f"""server:
  tokens: ["{TOKEN}"]
  adminTokens: ["{ADMIN}"]
  drainDelay: 0s
{store_section(args.store, args.postgres_url)}
delivery: {{pollInterval: 250ms, timeout: 5s, lease: 10s}}
targets:
  {SLACK_TARGET}:
    kind: slack
    token: xoxb-live-test-0123456789
    channel: {SLACK_CHANNEL}
    baseURL: {base}/slack-api
  {DISCORD_TARGET}:
    kind: discord
    url: {base}{DISCORD_WEBHOOK}
routes:
  - targets: [{SLACK_TARGET}, {DISCORD_TARGET}]
    chat: {{mode: live}}
    reminders: []
    announceStart: false
""")
    server = Server(args.binary, workdir, config, free_port())
    server.start()
    check = Checks()
    try:
        for scenario, run in [("burst", burst), ("kill", kill_and_restart), ("lost", lost_message)]:
            if args.only in (None, scenario):
                began = time.time()
                run(check, server, sink)
                print(f"     {scenario}: {time.time() - began:.0f} s")
    finally:
        server.stop()
        sink.stop()
    check.finish(f"live test ({args.store})", workdir)


if __name__ == "__main__":
    main()
