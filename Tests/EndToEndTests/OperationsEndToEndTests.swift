import Foundation
import PatchbayCore
import PatchbaySink
import PatchbayTestSupport
import Testing

/// Pacing, graceful shutdown, metrics, readiness and the admin API, through the real binary.
@Suite("End to end: operations", .serialized)
struct OperationsEndToEndTests {
    static func event(_ index: Int, app: String = "App1") -> Data {
        let start = Timestamp.rfc3339(Date().addingTimeInterval(86400))
        let end = Timestamp.rfc3339(Date().addingTimeInterval(86400 + 1800))
        return Data(
            #"{"type":"patch.completed","app":"\#(app)","environment":"Production","instance":{"id":"i-\#(index)"},"window":{"id":"mw-\#(index)","start":"\#(start)","end":"\#(end)"}}"#
                .utf8)
    }

    @Test func oneHundredEventsArriveNoFasterThanTheConfiguredRateAndNoneIsLost() async throws {
        let rate = 20.0
        let config = { (sinkURL: String) in
            ServerHarness.config(
                targets: "  paced: {kind: slack, url: \"\(sinkURL)/slack/paced\", rate: {perSecond: \(rate), burst: 1}}",
                routes: "  - targets: [paced]"
            )
        }
        try await withServerAndSink(config: config) { harness, sink in
            try await harness.start()
            // Fire all 100 at once, as 100 servers finishing together would.
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<100 { group.addTask { try await harness.post(Self.event(index)).status } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.count == 100 && statuses.allSatisfy { $0 == 202 })
            let received = await sink.sink.waitFor(100, timeout: .seconds(30)) { $0.path == "/slack/paced" }
            #expect(received.count == 100, "none lost")
            let times = received.map(\.receivedAt).sorted()
            let span = times.last!.timeIntervalSince(times.first!)
            #expect(span >= 99 / rate * 0.95, "100 sends took \(span)s; at \(rate)/s they need at least \(99 / rate)s")
            // No one-second window holds more sends than the rate allows. Judged on when each
            // send started (the attempt's startedAt, taken as the pacer admits it), not on arrival
            // at the in-process sink: on a loaded 2-core machine running the whole suite, the
            // sink's arrival times bunched up to 27 sends into one second at rate 20 (CI,
            // 2026-12-06) while the sends themselves were paced. At burst 1 a closed one-second
            // window spans rate + 1 slots; one more for the scheduler's wake-up jitter.
            func busiest(_ times: [Date]) -> Int {
                times.indices.map { index in times[index...].prefix { $0.timeIntervalSince(times[index]) < 1 }.count }.max() ?? 0
            }
            var starts: [Date] = []
            let listed = try await harness.admin("GET", "/v1/deliveries?limit=200")
            guard case .array(let rows)? = listed.body else {
                Issue.record("no deliveries listed: \(listed.text)")
                return
            }
            for id in rows.compactMap({ $0["id"]?.stringValue }) {
                let detail = try await harness.admin("GET", "/v1/deliveries/\(id)")
                if case .array(let attempts)? = detail.body?["attempts"],
                    let started = attempts.first?["startedAt"]?.stringValue.flatMap(Timestamp.parseRFC3339)
                {
                    starts.append(started)
                }
            }
            #expect(starts.count == 100, "every delivery has its attempt")
            let busiestStart = busiest(starts.sorted())
            #expect(busiestStart <= Int(rate) + 2, "\(busiestStart) sends started within one second")
            // Unpaced, all 100 arrive within a second; paced, the sink never sees twice the rate.
            let busiestArrival = busiest(times)
            #expect(busiestArrival <= 2 * Int(rate), "\(busiestArrival) sends arrived within one second")
            let bodies = Set(received.compactMap { $0.json?["attachments"].map { "\($0)" } })
            #expect(bodies.count == 100, "each event delivered once")
        }
    }

    @Test func sigtermClosesIntakeAndLetsTheSendInFlightFinish() async throws {
        let config = { (sinkURL: String) in
            ServerHarness.config(
                targets: "  slow: {kind: slack, url: \"\(sinkURL)/slack/slow\"}",
                routes: "  - targets: [slow]"
            ).replacingOccurrences(of: "drainDelay: 0s", with: "drainDelay: 2s")
        }
        try await withServerAndSink(config: config) { harness, sink in
            try await harness.start()
            sink.sink.script(path: "/slack/slow", [ScriptedResponse(delayMs: 1500)])
            let accepted = try await harness.post(Self.event(1))
            #expect(accepted.status == 202)
            try await Task.sleep(for: .milliseconds(300))
            harness.server?.kill(SIGTERM)
            try await Task.sleep(for: .milliseconds(200))
            let refused = try await harness.post(Self.event(2))
            #expect(refused.status == 503, "intake is closed while shutting down")
            #expect(refused.body?["error"]?.stringValue == "draining")
            let exit = await harness.server?.waitForExit(timeout: .seconds(20))
            #expect(exit == 0, "clean exit after draining")
            // The send that was in flight finished and was recorded as delivered.
            #expect(sink.sink.requests(vendor: "slack").count == 1)
            let rows = try await harness.deliveries()
            #expect(rows.count == 1)
            #expect(rows.first?["state"]?.stringValue == "delivered")
            #expect(harness.allOutput.contains("dispatcher stopped"))
        }
    }

    @Test func metricsReadinessAndTheAdminAPI() async throws {
        let config = { (sinkURL: String) in
            ServerHarness.config(
                targets: "  ops: {kind: slack, url: \"\(sinkURL)/slack/ops\"}\n  bad: {kind: slack, url: \"\(sinkURL)/status/404\"}",
                routes: "  - {match: {app: App1}, targets: [ops]}\n  - {match: {app: Broken}, targets: [bad]}"
            )
        }
        try await withServerAndSink(config: config) { harness, sink in
            try await harness.start()
            // Every series exists from start-up.
            let before = try await harness.admin("GET", "/metrics")
            #expect(before.status == 200)
            for series in [
                #"patchbay_delivery_attempts_total{target_kind="slack",outcome="dead",reason="client_error"} 0"#,
                #"patchbay_delivery_attempts_total{target_kind="pingdom",outcome="retry",reason="rate_limited"} 0"#,
                #"patchbay_events_accepted_total{type="patch.completed"} 0"#,
                #"patchbay_requests_rejected_total{reason="unauthorized"} 0"#,
                #"patchbay_deliveries{state="dead"} 0"#,
                "patchbay_oldest_due_delivery_age_seconds 0",
            ] {
                #expect(before.text.contains(series), "missing at start-up: \(series)")
            }
            #expect(try await harness.admin("GET", "/readyz").status == 200)

            #expect(try await harness.post(Self.event(1)).status == 202)
            #expect(try await harness.post(Self.event(2, app: "Broken")).status == 202)
            #expect(try await harness.post(Self.event(3), token: "wrong-token-000000000000").status == 401)
            await sink.sink.waitFor(2)
            try await Task.sleep(for: .milliseconds(400))
            let after = try await harness.admin("GET", "/metrics").text
            #expect(after.contains(#"patchbay_events_accepted_total{type="patch.completed"} 2"#))
            #expect(after.contains(#"patchbay_delivery_attempts_total{target_kind="slack",outcome="delivered",reason="delivered"} 1"#))
            #expect(after.contains(#"patchbay_delivery_attempts_total{target_kind="slack",outcome="dead",reason="client_error"} 1"#))
            #expect(after.contains(#"patchbay_requests_rejected_total{reason="unauthorized"} 1"#))
            #expect(after.contains("patchbay_send_duration_seconds_bucket"))
            // The queue gauges are refreshed by one background task every few seconds, never
            // read from the store per scrape (/metrics is open to anyone who reaches the port).
            var gauges = after
            let deadline = ContinuousClock.now + .seconds(10)
            while !gauges.contains(#"patchbay_deliveries{state="dead"} 1"#), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(250))
                gauges = try await harness.admin("GET", "/metrics").text
            }
            #expect(gauges.contains(#"patchbay_deliveries{state="dead"} 1"#))

            // The admin API: the same view as the CLI.
            let list = try await harness.admin("GET", "/v1/deliveries?state=dead")
            #expect(list.status == 200)
            guard case .array(let rows)? = list.body, let id = rows.first?["id"]?.stringValue else {
                Issue.record("no dead delivery listed: \(list.text)")
                return
            }
            #expect(rows.count == 1)
            let detail = try await harness.admin("GET", "/v1/deliveries/\(id)")
            #expect(detail.body?["summary"]?["state"]?.stringValue == "dead")
            guard case .array(let attempts)? = detail.body?["attempts"] else {
                Issue.record("no attempts")
                return
            }
            #expect(attempts.first?["statusCode"] == .number(404))
            let dry = try await harness.admin("POST", "/v1/deliveries/\(id)/replay?dryRun=true")
            #expect(dry.body?["result"] != nil && dry.status == 200)
            #expect(try await harness.admin("POST", "/v1/deliveries/\(id)/replay").status == 200)
            #expect(try await harness.admin("POST", "/v1/deliveries/\(id)/replay").status == 409, "already queued")
            #expect(try await harness.admin("GET", "/v1/deliveries/dlv_nope").status == 404)
            #expect(try await harness.admin("GET", "/v1/deliveries?state=lost").status == 400)
            let anonymous = try await harness.post(Data(), token: "")
            #expect(anonymous.status == 401)
        }
    }
}
