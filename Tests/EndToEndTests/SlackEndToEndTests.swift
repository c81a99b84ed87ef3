import Foundation
import PatchbayCore
import PatchbaySink
import PatchbayTestSupport
import Testing

/// The real executable, the real SQLite file and libcurl, against the sink over loopback.
@Suite("End to end: agent → Patchbay → Slack", .serialized)
struct SlackEndToEndTests {
    static func slackConfig(sinkURL: String, delivery: String = "") -> String {
        ServerHarness.config(
            targets: "  ops-slack: {kind: slack, url: \"\(sinkURL)/slack/T0000/B0000/e2e\", rate: {perSecond: 100, burst: 10}}",
            routes: """
                  - match: {app: App1, environment: Production}
                    targets: [ops-slack]
                    timezone: America/Los_Angeles
                """,
            delivery: delivery
        )
    }

    @Test func everyExampleEventReachesSlackExactlyAsTheGoldenFiles() async throws {
        try await withServerAndSink(config: { Self.slackConfig(sinkURL: $0) }) { harness, sink in
            try await harness.start()
            for type in EventType.allCases {
                let (status, body) = try await harness.post(try Fixtures.exampleEvent(type))
                #expect(status == 202, "\(type.rawValue): \(String(describing: body))")
                #expect(body?["deliveries"] == .number(1))
            }
            let received = await sink.sink.waitFor(EventType.allCases.count) { $0.vendor == "slack" }
            #expect(received.count == EventType.allCases.count)
            // All six belong to one maintenance, so they arrive in the order they were accepted.
            let golden = Golden.directory("PatchbayTargetsTests/Golden/slack")
            for (type, request) in zip(EventType.allCases, received) {
                #expect(request.path == "/slack/T0000/B0000/e2e")
                #expect(request.contentType == "application/json; charset=utf-8")
                let mismatch = try Golden.mismatch(Data(request.body.utf8), file: golden.appendingPathComponent("\(type.rawValue).json"))
                #expect(mismatch == nil, "\(mismatch ?? "")")
            }
        }
    }

    @Test func anEventAcceptedBeforeSIGKILLIsDeliveredAfterRestart() async throws {
        // The sink is down at first, so the delivery cannot complete before the crash.
        let sinkPort = unusedLoopbackPort()
        let harness = try ServerHarness(config: Self.slackConfig(sinkURL: "http://127.0.0.1:\(sinkPort)", delivery: "  timeout: 1s\n  lease: 2s"))
        var sink: RunningSink?
        do {
            try await harness.start()
            let (status, body) = try await harness.post(try Fixtures.exampleEvent(.completed))
            #expect(status == 202)
            harness.server?.kill(SIGKILL)
            #expect(await harness.server?.waitForExit() == SIGKILL)

            sink = try await RunningSink.start(port: sinkPort)
            try await harness.start()
            let received = await sink!.sink.waitFor(1, timeout: .seconds(20)) { $0.vendor == "slack" }
            #expect(received.count == 1, "the accepted event was delivered after the restart")
            #expect(received.first?.body.contains("Patching Complete") == true)
            #expect(body?["id"]?.stringValue?.hasPrefix("evt_") == true)
            // Give a duplicate time to show up if the queue were wrong.
            try await Task.sleep(for: .milliseconds(500))
            #expect(sink!.sink.requests(vendor: "slack").count == 1)
        } catch {
            await harness.cleanUp()
            await sink?.stop()
            throw error
        }
        await harness.cleanUp()
        await sink?.stop()
    }

    /// A `kill -9` mid-send used to hold the maintenance for the whole 60 s lease; a restarted
    /// server now releases the leases its predecessor left and resumes within seconds.
    @Test func aRestartAfterKillResumesTheInterruptedMaintenanceAtOnce() async throws {
        try await withServerAndSink(config: { Self.slackConfig(sinkURL: $0) }) { harness, sink in
            try await harness.start()
            sink.sink.script(path: "/slack/T0000/B0000/e2e", [ScriptedResponse(hang: true)])
            let first = try Fixtures.exampleEvent(.started)
            #expect(try await harness.post(first).status == 202)
            // The sink records a request when it answers; this one hangs. Give the send time to start.
            try await Task.sleep(for: .seconds(1))
            // The second event of the maintenance waits behind the send in flight.
            #expect(try await harness.post(try Fixtures.exampleEvent(.completed)).status == 202)
            harness.server?.kill(SIGKILL)
            _ = await harness.server?.waitForExit(timeout: .seconds(10))
            sink.sink.clearScripts()

            let restarted = Date()
            try await harness.start()
            let received = await sink.sink.waitFor(2, timeout: .seconds(30)) { $0.vendor == "slack" }
            #expect(received.count == 2, "the interrupted send again, then the one queued behind it")
            #expect(received.first?.body.contains("Patching Beginning") == true)
            if let last = received.last {
                #expect(
                    last.receivedAt.timeIntervalSince(restarted) < 5, "resumed \(last.receivedAt.timeIntervalSince(restarted)) s after the restart")
                #expect(last.body.contains("Patching Complete"))
            }
            #expect(harness.allOutput.contains("released deliveries leased by a previous process"))

            // A second serve on the same file refuses to start, and leaves the first one's leases alone.
            let second = try await harness.cli(["serve", "--listen", "127.0.0.1:0"], name: "second-serve")
            #expect(second.status == 1)
            #expect(second.stderr.contains("another patchbay serve is using"))
        }
    }
}
