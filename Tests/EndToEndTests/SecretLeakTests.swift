import Foundation
import PatchbayCore
import PatchbayTestSupport
import Testing

/// A canary secret planted in the configuration must not show up in any log line at any level,
/// any database row, or any CLI output, even when deliveries fail and are retried.
@Suite("End to end: secrets stay secret", .serialized)
struct SecretLeakTests {
    static let canary = "CANARY7f3e9a1b5c"
    /// A Standard Webhooks secret whose base64 holds the canary.
    static let inboundSecret = "whsec_" + Data("\(canary)-inbound-secret-bytes!".utf8).base64EncodedString()

    @Test func canaryAppearsNowhere() async throws {
        let token = "tok-\(Self.canary)-0123456789"
        let configFor = { (sinkURL: String) in
            ServerHarness.config(
                token: "${PATCHBAY_TOKEN}",
                targets: """
                      ops-slack: {kind: slack, url: "${SLACK_WEBHOOK_URL}", rate: {perSecond: 100, burst: 10}}
                      broken-slack: {kind: slack, url: "\(sinkURL)/status/500/\(Self.canary)/broken"}
                    """,
                routes: """
                      - match: {app: App1}
                        targets: [ops-slack, broken-slack]
                        timezone: America/Los_Angeles
                    """
            ) + """

                sources:
                  gh: {kind: github, secret: "gh-\(Self.canary)"}
                  hooks: {kind: standard-webhooks, secret: "${INBOUND_SECRET}"}
                """
        }
        try await withServerAndSink(config: configFor, token: token) { harness, sink in
            let config = configFor(sink.baseURL)
            let environment = [
                "PATCHBAY_TOKEN": token, "SLACK_WEBHOOK_URL": "\(sink.baseURL)/slack/T0/B0/\(Self.canary)",
                "INBOUND_SECRET": Self.inboundSecret,
            ]
            var outputs: [String] = []
            try await harness.start(logLevel: "trace", environment: environment)
            for type in EventType.allCases {
                #expect(try await harness.post(try Fixtures.exampleEvent(type)).status == 202)
            }
            #expect(try await harness.post(Data("{bad".utf8)).status == 400)
            // Relay requests with wrong signatures: refused, counted and logged, secrets not echoed.
            for source in ["gh", "hooks"] {
                let request = OutboundRequest(
                    method: "POST", url: Secret("http://127.0.0.1:\(harness.port)/v1/relay/\(source)"), displayURL: "relay",
                    headers: [
                        HTTPHeader("X-Hub-Signature-256", "sha256=00"), HTTPHeader("webhook-id", "m1"),
                        HTTPHeader("webhook-timestamp", String(Int(Date().timeIntervalSince1970))),
                        HTTPHeader("webhook-signature", "v1,AAAA"),
                    ],
                    body: Data("{}".utf8))
                let answer = try await harness.client.send(request, timeouts: TransportTimeouts()).get()
                #expect(answer.status == 401)
                outputs.append(String(decoding: answer.body, as: UTF8.self))
            }
            #expect(try await harness.post(try Fixtures.exampleEvent(.started), token: "wrong-\(Self.canary)").status == 401)
            // Wait for the good deliveries and for the broken target to fail and retry at least once.
            await sink.sink.waitFor(6) { $0.vendor == "slack" }
            await sink.sink.waitFor(2) { $0.vendor == "status" }

            let directory = harness.directory
            let examples = Fixtures.packageRoot.appendingPathComponent("Schemas/examples")
            let commands: [[String]] = [
                ["config", "check", "--config", harness.configPath],
                ["render", examples.appendingPathComponent("patch.completed.json").path, "--config", harness.configPath],
                ["send", examples.appendingPathComponent("patch.started.json").path, "--url", "http://127.0.0.1:\(harness.port)"],
            ]
            for (index, command) in commands.enumerated() {
                let result = try await ChildProcess.run(command, environment: environment, directory: directory, name: "cli-\(index)")
                #expect(result.status == 0, "\(command): \(result.stderr)")
                outputs.append(result.stdout + result.stderr)
            }
            // A broken config whose bad value is the secret itself.
            let broken = directory.path("broken.yaml")
            try config.replacingOccurrences(of: "${SLACK_WEBHOOK_URL}", with: "not-a-url-\(Self.canary)").write(
                toFile: broken, atomically: true, encoding: .utf8)
            let check = try await ChildProcess.run(
                ["config", "check", "--config", broken], environment: environment, directory: directory, name: "cli-broken")
            #expect(check.status == 1)
            #expect(check.stderr.contains("targets.ops-slack.url: expected an http:// or https:// URL"))
            outputs.append(check.stdout + check.stderr)
            await harness.stop()

            // The secrets were really used: the sink saw them on the wire.
            #expect(sink.sink.requests(vendor: "slack").contains { $0.path.contains(Self.canary) })
            outputs.append(harness.allOutput)
            #expect(harness.allOutput.contains("send failed; will retry"), "the failing target was exercised")
            #expect(harness.allOutput.contains("trace") || harness.allOutput.contains("debug") || harness.allOutput.contains("info"))

            var database = Data()
            for file in try FileManager.default.contentsOfDirectory(atPath: directory.url.path) where file.hasPrefix("queue.db") {
                database.append(try Data(contentsOf: directory.url.appendingPathComponent(file)))
            }
            #expect(database.range(of: Data("i-0abc123".utf8)) != nil, "the database files hold the events")
            #expect(database.range(of: Data(Self.canary.utf8)) == nil, "canary found in the database files")
            for (index, output) in outputs.enumerated() {
                #expect(
                    !output.contains(Self.canary),
                    "canary found in output #\(index):\n\(output.components(separatedBy: "\n").filter { $0.contains(Self.canary) }.prefix(3).joined(separator: "\n"))"
                )
            }
        }
    }
}
