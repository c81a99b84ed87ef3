import Foundation
import Logging
import PatchbayCore
import PatchbayCurl
import PatchbayTestSupport
import Testing

@Suite("End to end: command line", .serialized)
struct CommandLineTests {
    @Test func badInputOverRealHTTPGetsClearErrorsAndTheServerKeepsServing() async throws {
        let config = { (sinkURL: String) in
            ServerHarness.config(
                targets: "  ops-slack: {kind: slack, url: \"\(sinkURL)/slack/T/B/X\"}",
                routes: "  - targets: [ops-slack]\n    timezone: America/Los_Angeles"
            ).replacingOccurrences(of: "  tokens:", with: "  maxBodyBytes: 4096\n  tokens:")
        }
        try await withServerAndSink(config: config) { harness, sink in
            try await harness.start()
            let good = try Fixtures.exampleEvent(.started)
            let oversized = Data(
                String(decoding: good, as: UTF8.self)
                    .replacingOccurrences(of: "\"details\"", with: "\"x\"")
                    .replacingOccurrences(of: "{\n  \"type\"", with: "{\"details\":{\"pad\":\"\(String(repeating: "p", count: 5000))\"},\n  \"type\"")
                    .utf8)
            let cases: [(Data, String?, String?, Int, String)] = [
                (Data("{\"type\":".utf8), nil, nil, 400, "body: is not valid JSON"),
                (
                    Data(
                        #"{"type":"patch.started","app":1,"environment":"P","window":{"start":"2026-12-04T00:30:00Z","end":"2026-12-04T00:45:00Z"}}"#
                            .utf8), nil, nil, 400, "app: expected a string, got a number"
                ),
                (Data(#"{"type":"patch.started"}"#.utf8), nil, nil, 400, "app: is required"),
                (
                    Data(
                        #"{"type":"patch.rebooted","app":"A","environment":"P","window":{"start":"2026-12-04T00:30:00Z","end":"2026-12-04T00:45:00Z"}}"#
                            .utf8), nil, nil, 400, "type: must be one of"
                ),
                (oversized, nil, nil, 413, "larger than the 4096-byte limit"),
                (good, nil, "", 401, "bearer token"),
                (good, nil, "not-the-token-0123456789", 401, "bearer token"),
            ]
            for (body, key, token, status, message) in cases {
                let answer = try await harness.post(body, idempotencyKey: key, token: token)
                #expect(answer.status == status, "\(message)")
                #expect(answer.body?["message"]?.stringValue?.contains(message) == true, "\(String(describing: answer.body)) ∌ \(message)")
            }
            #expect(try await harness.post(good, idempotencyKey: "k1").status == 202)
            let changed = Data(String(decoding: good, as: UTF8.self).replacingOccurrences(of: "web-1", with: "web-2").utf8)
            let conflict = try await harness.post(changed, idempotencyKey: "k1")
            #expect(conflict.status == 409)
            #expect(conflict.body?["message"]?.stringValue?.contains("Idempotency-Key") == true)
            #expect(try await harness.post(good).status == 202, "still serving")
            await sink.sink.waitFor(2) { $0.vendor == "slack" }
            #expect(sink.sink.requests(vendor: "slack").count == 2, "only the two accepted events were delivered")
        }
    }

    @Test func sinkCommandRecordsEveryRequestAsAJSONLine() async throws {
        let directory = try TemporaryDirectory("sink-cli")
        defer { directory.remove() }
        let record = directory.path("requests.jsonl")
        let sink = try ChildProcess(arguments: ["sink", "--listen", "127.0.0.1:0", "--record", record], directory: directory, name: "sink")
        defer { sink.kill(SIGKILL) }
        let port = try await sink.waitForOutput(matching: #"sink listening on http://127\.0\.0\.1:(\d+)"#)
        let client = CurlTransport(redactor: Redactor(secrets: []), logger: Logger(label: "client"))
        defer { client.shutdown() }
        let body = #"{"attachments":[{"fallback":"Patching Complete: App1 - Production","title":"Patching Complete"}]}"#
        let response = try await client.send(
            OutboundRequest(
                method: "POST", url: Secret("http://127.0.0.1:\(port)/slack/T1/B1/secretpath"),
                displayURL: "", headers: [HTTPHeader("Content-Type", "application/json")],
                body: Data(body.utf8)), timeouts: TransportTimeouts()
        ).get()
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == "ok")
        let summary = try await sink.waitForOutput(matching: #"(slack .*Patching Complete: App1 - Production)"#)
        #expect(!summary.contains("secretpath"), "the summary elides webhook paths")
        let lines = try String(contentsOfFile: record, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 1)
        let recorded = try JSONDecoder().decode(JSONValue.self, from: Data(lines[0].utf8))
        #expect(recorded["vendor"]?.stringValue == "slack")
        #expect(recorded["body"]?.stringValue == body)
        #expect(recorded["path"]?.stringValue == "/slack/T1/B1/secretpath")
        #expect(recorded["status"] == .number(200))
    }

    @Test func helpExplainsEveryCommand() async throws {
        let directory = try TemporaryDirectory("help")
        defer { directory.remove() }
        for command in [
            ["serve"], ["sink"], ["send"], ["render"], ["deliveries", "list"], ["deliveries", "show"], ["replay"], ["unmapped"],
            ["config", "check"], ["migrate"], ["maintenances", "list"], ["maintenances", "show"], ["schedule", "next"], ["schedule", "list"],
        ] {
            let result = try await ChildProcess.run(command + ["--help"], directory: directory, name: command.joined(separator: "-"))
            #expect(result.status == 0)
            #expect(result.stdout.contains("USAGE: patchbay \(command.joined(separator: " "))"), "\(result.stdout)")
            #expect(result.stdout.contains("OVERVIEW:"))
        }
        let missing = try await ChildProcess.run(["serve", "--config", directory.path("nope.yaml")], directory: directory, name: "missing")
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("cannot read configuration file"))
    }

    /// `send --example` builds the whole event: a flag beside it would be silently dropped, so it
    /// is refused, naming the flags, before anything is sent.
    @Test func anExampleRefusesTheFlagsItWouldIgnore() async throws {
        let directory = try TemporaryDirectory("example-flags")
        defer { directory.remove() }
        let mixed = try await ChildProcess.run(
            [
                "send", "--url", "http://127.0.0.1:9", "--example", "completed", "--app", "Billing",
                "--package", "openssl",
            ], directory: directory, name: "example-mixed")
        #expect(mixed.status != 0)
        #expect(
            mixed.stderr.contains("--example: give either an example, an event file, or flags (--app, --package would be ignored)"),
            "\(mixed.stderr)")
    }

    /// Operators' basics: the version, a default configuration path, and no serving of the
    /// README's public token beyond loopback.
    @Test func versionDefaultConfigAndExampleTokens() async throws {
        let directory = try TemporaryDirectory("basics")
        defer { directory.remove() }
        let version = try await ChildProcess.run(["--version"], directory: directory, name: "version")
        #expect(version.status == 0 && version.stdout.hasPrefix("patchbay \(PatchbayVersion.current)"))

        let none = try await ChildProcess.run(["config", "check"], directory: directory, name: "no-config")
        #expect(none.status == 1)
        #expect(none.stderr.contains("no configuration: pass --config FILE, set PATCHBAY_CONFIG, or create ./patchbay.yaml"))
        let yaml = """
            server: {listen: "0.0.0.0:0", tokens: ["dev-token-0123456789abcdef"]}
            store: {sqlite: ./q.db}
            targets: {ops: {kind: slack, url: "http://127.0.0.1:9/slack/x"}}
            routes: [{targets: [ops]}]
            """
        try yaml.write(toFile: directory.path("patchbay.yaml"), atomically: true, encoding: .utf8)
        let local = try await ChildProcess.run(["config", "check"], directory: directory, name: "default-config")
        #expect(local.status == 0 && local.stdout.contains("./patchbay.yaml: OK"))
        try yaml.write(toFile: directory.path("other.yaml"), atomically: true, encoding: .utf8)
        let fromEnvironment = try await ChildProcess.run(
            ["config", "check"], environment: ["PATCHBAY_CONFIG": directory.path("other.yaml")],
            directory: directory, name: "env-config")
        #expect(fromEnvironment.stdout.contains("other.yaml: OK"))

        let exposed = try await ChildProcess.run(["serve"], directory: directory, name: "exposed")
        #expect(exposed.status == 1)
        #expect(exposed.stderr.contains("a token is the example from the README"))
        #expect(!exposed.stderr.contains("dev-token-0123456789abcdef"), "the token itself is not printed")
    }
}
