import Foundation
import PatchbayCore
import PatchbaySink
import PatchbayTestSupport
import Testing

/// Retries, Retry-After, dead letters, timeouts, throttling and redirects, through the real
/// binary against the scripted sink.
@Suite("End to end: delivery policy", .serialized)
struct DeliveryPolicyEndToEndTests {
    static let apps = ["r500", "r429", "r400", "rhang", "r301"]

    static func config(sinkURL: String) -> String {
        var targets = apps.map { app in
            "  \(app): {kind: slack, url: \"\(sinkURL)/slack/\(app)\", rate: {perSecond: 50, burst: 5}}"
        }
        targets[0] = "  r500: {kind: slack, url: \"\(sinkURL)/slack/r500\", retry: {base: 400ms, cap: 10s, jitter: 0}}"
        targets.append(
            "  status: {kind: statuspage, page: pg1, apiKey: \"sp-key-0123456789\", baseURL: \"\(sinkURL)/statuspage\", rate: {perSecond: 20}}")
        var routes = apps.map { "  - {match: {app: \($0)}, targets: [\($0)]}" }
        routes.append("  - {match: {app: sp420}, statuspage: {target: status}}")
        return ServerHarness.config(
            targets: targets.joined(separator: "\n"), routes: routes.joined(separator: "\n"),
            delivery: "  timeout: 1s\n  lease: 5s\n  maxPause: 4s")
    }

    /// A started event for `app`, its window tomorrow so nothing expires.
    static func event(app: String, instance: String = "i-1") -> Data {
        let start = Timestamp.rfc3339(Date().addingTimeInterval(86400))
        let end = Timestamp.rfc3339(Date().addingTimeInterval(86400 + 1800))
        return Data(
            #"{"type":"patch.started","app":"\#(app)","environment":"Production","instance":{"id":"\#(instance)"},"window":{"start":"\#(start)","end":"\#(end)"}}"#
                .utf8)
    }

    func run(_ body: (ServerHarness, RunningSink) async throws -> Void) async throws {
        try await withServerAndSink(config: { Self.config(sinkURL: $0) }) { harness, sink in
            try await harness.start()
            try await body(harness, sink)
        }
    }

    func state(_ harness: ServerHarness, app: String) async throws -> JSONValue? {
        try await harness.deliveries(["--app", app]).first
    }

    @Test func threeServerErrorsThenSuccessFollowTheBackoff() async throws {
        try await run { harness, sink in
            sink.sink.script(path: "/slack/r500", [.status(500), .status(500), .status(500)])
            let accepted = try await harness.post(Self.event(app: "r500"))
            #expect(accepted.status == 202)
            let attempts = await sink.sink.waitFor(4, timeout: .seconds(15)) { $0.path == "/slack/r500" }
            #expect(attempts.map(\.status) == [500, 500, 500, 200])
            // base 400ms, no jitter: 0.4s, 0.8s, 1.6s apart (plus up to a poll interval).
            let times = attempts.map(\.receivedAt)
            for (index, expected) in [0.4, 0.8, 1.6].enumerated() {
                let gap = times[index + 1].timeIntervalSince(times[index])
                #expect(gap >= expected - 0.05 && gap < expected + 0.6, "gap \(index + 1) was \(gap)s, policy says \(expected)s")
            }
            try await Task.sleep(for: .milliseconds(200))
            let row = try await state(harness, app: "r500")
            #expect(row?["state"]?.stringValue == "delivered")
            #expect(row?["attempts"] == .number(4))
        }
    }

    /// Reproduced: `Retry-After: 9223372036854775807` froze the target and listing pending
    /// deliveries then killed the server; `4000000000` froze it until 2152.
    @Test(arguments: ["9223372036854775807", "4000000000", "99999999999999999999999"])
    func anAbsurdRetryAfterIsCappedAndListingStillWorks(_ value: String) async throws {
        try await run { harness, sink in
            sink.sink.script(path: "/slack/r429", [ScriptedResponse(status: 429, retryAfter: value)])
            #expect(try await harness.post(Self.event(app: "r429")).status == 202)
            _ = await sink.sink.waitFor(1, timeout: .seconds(10)) { $0.path == "/slack/r429" }
            // Listing the paused delivery works (it used to trap on the far-future time).
            let listed = try await harness.admin("GET", "/v1/deliveries?state=pending")
            #expect(listed.status == 200)
            // The sink has the request before the dispatcher has read the answer and recorded the
            // pause: wait for it to show (a single read right away failed under CI's load).
            var metrics = try await harness.admin("GET", "/metrics")
            let pauseSeries = #"patchbay_target_paused_until_seconds{target="r429"}"#
            let deadline = ContinuousClock.now + .seconds(5)
            while !metrics.text.contains(pauseSeries), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                metrics = try await harness.admin("GET", "/metrics")
            }
            #expect(metrics.text.contains(pauseSeries), "the pause shows in /metrics")
            // Every reason has its series from the start: no outcome can go uncounted.
            for reason in DeliveryReason.allCases {
                #expect(metrics.text.contains(#"reason="\#(reason.rawValue)""#), "no series for \(reason.rawValue)")
            }
            // delivery.maxPause is 4s: the retry comes within it, not in 2152.
            let attempts = await sink.sink.waitFor(2, timeout: .seconds(15)) { $0.path == "/slack/r429" }
            #expect(attempts.count == 2)
            if attempts.count == 2 {
                #expect(attempts[1].receivedAt.timeIntervalSince(attempts[0].receivedAt) < 7)
            }
            #expect(try await state(harness, app: "r429")?["state"]?.stringValue == "delivered")
            #expect(harness.server?.process.isRunning == true)
        }
    }

    /// Reproduced: `since=1e19` trapped converting a double to Int64 and killed the server.
    @Test func hugeNumbersInQueriesAre400s() async throws {
        try await run { harness, _ in
            for query in ["since=1e19", "since=1e400", "since=-5m", "limit=99999999999999999999", "limit=0", "state=nope"] {
                let answer = try await harness.admin("GET", "/v1/deliveries?\(query)")
                #expect(answer.status == 400, "\(query): \(answer.text)")
                #expect(answer.body?["error"]?.stringValue == "invalid_parameter")
            }
            #expect(try await harness.admin("GET", "/v1/maintenances?since=1e19").status == 400)
            #expect(try await harness.admin("GET", "/healthz").status == 200, "still serving")
        }
    }

    @Test func retryAfterIsHonoured() async throws {
        try await run { harness, sink in
            sink.sink.script(path: "/slack/r429", [ScriptedResponse(status: 429, retryAfter: "3")])
            let accepted = try await harness.post(Self.event(app: "r429"))
            #expect(accepted.status == 202)
            let attempts = await sink.sink.waitFor(2, timeout: .seconds(10)) { $0.path == "/slack/r429" }
            #expect(attempts.map(\.status) == [429, 200])
            if attempts.count == 2 {
                let gap = attempts[1].receivedAt.timeIntervalSince(attempts[0].receivedAt)
                #expect(gap >= 3.0, "retried after \(gap)s despite Retry-After: 3")
            }
        }
    }

    @Test func aClientErrorIsDeadAfterOneAttemptAndAReplayDeliversIt() async throws {
        try await run { harness, sink in
            sink.sink.script(path: "/slack/r400", [ScriptedResponse(status: 400, body: "invalid_payload")])
            let accepted = try await harness.post(Self.event(app: "r400"))
            #expect(accepted.status == 202)
            await sink.sink.waitFor(1) { $0.path == "/slack/r400" }
            try await Task.sleep(for: .milliseconds(400))
            let dead = try await harness.deliveries(["--state", "dead"])
            #expect(dead.count == 1)
            #expect(dead.first?["attempts"] == .number(1))
            #expect(dead.first?["lastReason"]?.stringValue == "client_error")
            #expect(sink.sink.requests.filter { $0.path == "/slack/r400" }.count == 1)
            guard let id = dead.first?["id"]?.stringValue else { return }

            // --dry-run changes nothing.
            let dry = try await harness.cli(["replay", "--state", "dead", "--dry-run"], name: "replay-dry")
            #expect(dry.status == 0)
            #expect(dry.stdout.contains("\(id)  would replay"))
            try await Task.sleep(for: .milliseconds(400))
            #expect(try await harness.deliveries(["--state", "dead"]).count == 1)
            #expect(sink.sink.requests.filter { $0.path == "/slack/r400" }.count == 1)

            // The real replay, while the server runs, is delivered; a second replay queues nothing.
            let replay = try await harness.cli(["replay", "--state", "dead"], name: "replay")
            #expect(replay.status == 0)
            #expect(replay.stdout.contains("\(id)  replayed"))
            await sink.sink.waitFor(2) { $0.path == "/slack/r400" }
            try await Task.sleep(for: .milliseconds(400))
            #expect(sink.sink.requests.filter { $0.path == "/slack/r400" }.map(\.status) == [400, 200])
            let detail = try await harness.cli(["deliveries", "show", id], name: "show")
            #expect(detail.stdout.contains("Delivery \(id): delivered"))
            #expect(detail.stdout.contains("replay_requested"))
            #expect(detail.stdout.contains("client_error"))
        }
    }

    @Test func replayingTwiceQueuesOnce() async throws {
        try await run { harness, sink in
            sink.sink.script(path: "/slack/r400", [.status(400), .status(503), .status(503), .status(503)])
            let accepted = try await harness.post(Self.event(app: "r400"))
            #expect(accepted.status == 202)
            await sink.sink.waitFor(1) { $0.path == "/slack/r400" }
            try await Task.sleep(for: .milliseconds(300))
            guard let id = try await harness.deliveries(["--state", "dead"]).first?["id"]?.stringValue else {
                Issue.record("no dead delivery")
                return
            }
            let first = try await harness.cli(["replay", id], name: "r1")
            let second = try await harness.cli(["replay", id], name: "r2")
            #expect(first.stdout.contains("replayed"))
            #expect(second.stdout.contains("already queued"), "\(second.stdout)")
            #expect(try await harness.deliveries().count == 1)
        }
    }

    @Test func aHangTimesOutAndIsRetried() async throws {
        try await run { harness, sink in
            sink.sink.script(path: "/slack/rhang", [ScriptedResponse(hang: true)])
            let accepted = try await harness.post(Self.event(app: "rhang"))
            #expect(accepted.status == 202)
            let started = Date()
            let delivered = await sink.sink.waitFor(1, timeout: .seconds(10)) { $0.path == "/slack/rhang" && $0.status == 200 }
            #expect(delivered.count == 1)
            #expect(Date().timeIntervalSince(started) >= 1.0, "the first attempt waited for the 1s timeout")
            try await Task.sleep(for: .milliseconds(300))
            let row = try await state(harness, app: "rhang")
            #expect(row?["state"]?.stringValue == "delivered")
            #expect(row?["attempts"] == .number(2))
        }
    }

    @Test func statuspage420IsThrottledNotDead() async throws {
        try await run { harness, sink in
            let path = "/statuspage/v1/pages/pg1/incidents"
            sink.sink.script(path: path, [.status(420), .status(420), .status(420)])
            let accepted = try await harness.post(Self.event(app: "sp420"))
            #expect(accepted.status == 202)
            let requests = await sink.sink.waitFor(4, timeout: .seconds(15)) { $0.path == path }
            #expect(requests.map(\.status) == [420, 420, 420, 201])
            try await Task.sleep(for: .milliseconds(300))
            let row = try await state(harness, app: "sp420")
            #expect(row?["state"]?.stringValue == "delivered")
        }
    }

    @Test func aRedirectIsNotFollowed() async throws {
        try await run { harness, sink in
            sink.sink.script(path: "/slack/r301", [ScriptedResponse(status: 301, headers: ["Location": "\(sink.baseURL)/slack/elsewhere"])])
            let accepted = try await harness.post(Self.event(app: "r301"))
            #expect(accepted.status == 202)
            await sink.sink.waitFor(1) { $0.path == "/slack/r301" }
            try await Task.sleep(for: .milliseconds(500))
            #expect(sink.sink.requests.filter { $0.path == "/slack/elsewhere" }.isEmpty)
            let row = try await state(harness, app: "r301")
            #expect(row?["state"]?.stringValue == "dead")
            #expect(row?["lastReason"]?.stringValue == "redirect_not_followed")
        }
    }
}
