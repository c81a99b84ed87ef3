import Crypto
import Foundation
import PatchbayCore
import PatchbayRelay
import PatchbaySink
import PatchbayTestSupport
import Testing

/// Signed webhooks, SNS and EventBridge through the real binary; deliveries reach the sink, and
/// the outbound webhook target's signature verifies.
@Suite("End to end: relay", .serialized)
struct RelayEndToEndTests {
    static let inboundSecret = "whsec_" + Data((0..<32).map { UInt8($0 * 7 % 256) }).base64EncodedString()
    static let outboundSecret = "whsec_" + Data((0..<32).map { UInt8(255 - $0) }).base64EncodedString()
    static let topic = "arn:aws:sns:us-east-1:123456789012:patching"
    static let ebKey = "eb-key-0123456789abcdef"

    static func config(sinkURL: String) -> String {
        ServerHarness.config(
            targets: """
                  ops-slack: {kind: slack, url: "\(sinkURL)/slack/relay", rate: {perSecond: 100, burst: 20}}
                  hook: {kind: webhook, url: "\(sinkURL)/webhook/out", secret: "\(outboundSecret)", allowPrivateNetworks: true}
                """,
            routes: "  - targets: [ops-slack, hook]"
        ) + """

            sources:
              ci: {kind: standard-webhooks, secret: "\(inboundSecret)"}
              ci-raw: {kind: standard-webhooks, secret: "\(inboundSecret)", passthrough: [hook]}
              gh: {kind: github, secret: "gh-secret-0123456789"}
              aws-sns: {kind: sns, topics: ["\(topic)"], certificateURLPattern: '^http://127\\.0\\.0\\.1:\\d+/sns/.*\\.pem$', allowPrivateNetworks: true}
              aws-events: {kind: eventbridge, apiKeyHeader: X-Patchbay-Key, apiKey: "\(ebKey)"}
              tickets:
                kind: json
                hmacHeader: X-Tickets-Signature
                secret: tickets-secret-0123
                map: {type: state, app: service, environment: "=Production", instance.id: host, window.start: from, window.end: to}
                types: {running: patch.started, done: patch.completed}
            awsMapping:
              windows: {"mw-0c50858d01EXAMPLE": {app: App1, environment: Production}}
              documents: {"AWS-RunPowerShellScript": {app: Fleet, environment: Production}}
            """
    }

    static func event() -> Data {
        let start = Timestamp.rfc3339(Date().addingTimeInterval(86400))
        let end = Timestamp.rfc3339(Date().addingTimeInterval(86400 + 1800))
        return Data(
            #"{"type":"patch.started","app":"App1","environment":"Production","instance":{"id":"i-relay","name":"relay-1"},"window":{"start":"\#(start)","end":"\#(end)"}}"#
                .utf8)
    }

    static func fixture(_ name: String) throws -> Data {
        try Data(contentsOf: Golden.directory("PatchbayRelayTests/Fixtures/aws").appendingPathComponent(name))
    }

    func relay(_ harness: ServerHarness, _ source: String, _ body: Data, headers: [String: String]) async throws -> (Int, JSONValue?) {
        let request = OutboundRequest(
            method: "POST", url: Secret("http://127.0.0.1:\(harness.port)/v1/relay/\(source)"), displayURL: "relay",
            headers: [HTTPHeader("Content-Type", "application/json")] + headers.map { HTTPHeader($0.key, $0.value) },
            body: body)
        let response = try await harness.client.send(request, timeouts: TransportTimeouts()).get()
        return (response.status, try? JSONDecoder().decode(JSONValue.self, from: response.body))
    }

    func signed(_ body: Data, id: String, at time: Date = Date()) -> [String: String] {
        let timestamp = Int64(time.timeIntervalSince1970)
        let key = StandardWebhooks.key(fromSecret: Self.inboundSecret)!
        return [
            "webhook-id": id, "webhook-timestamp": String(timestamp),
            "webhook-signature": StandardWebhooks.signature(id: id, timestamp: timestamp, body: body, key: key),
        ]
    }

    @Test func aSignedWebhookIsDeliveredAndTheOutboundWebhookVerifies() async throws {
        try await withServerAndSink(config: { Self.config(sinkURL: $0) }) { harness, sink in
            try await harness.start()
            let body = Self.event()
            let (status, answer) = try await relay(harness, "ci", body, headers: signed(body, id: "msg_1"))
            #expect(status == 202)
            #expect(answer?["deliveries"] == .number(2))

            let slack = await sink.sink.waitFor(1) { $0.vendor == "slack" }
            #expect(slack.first?.body.contains("relay-1") == true)
            let outbound = await sink.sink.waitFor(1) { $0.vendor == "webhook" }
            guard let request = outbound.first else {
                Issue.record("no outbound webhook")
                return
            }
            let key = StandardWebhooks.key(fromSecret: Self.outboundSecret)!
            #expect(throws: Never.self) {
                try StandardWebhooks.verify(
                    id: request.headers["webhook-id"], timestamp: request.headers["webhook-timestamp"],
                    signatures: request.headers["webhook-signature"], body: Data(request.body.utf8), key: key, now: Date())
            }
            #expect(request.headers["webhook-id"]?.hasPrefix("dlv_") == true, "webhook-id is the delivery id, stable across retries")
            let sent = try JSONDecoder().decode(JSONValue.self, from: Data(request.body.utf8))
            #expect(sent["instance"]?["name"]?.stringValue == "relay-1")

            // The same webhook-id again is a sender's retry: 200 duplicate (a 4xx would make it retry for days).
            let (replayed, replayAnswer) = try await relay(harness, "ci", body, headers: signed(body, id: "msg_1"))
            #expect(replayed == 200)
            #expect(replayAnswer?["status"]?.stringValue == "duplicate")
            // Bad signatures, stale timestamps, unknown sources, malformed bodies.
            var wrong = signed(body, id: "msg_2")
            wrong["webhook-signature"] = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
            #expect(try await relay(harness, "ci", body, headers: wrong).0 == 401)
            let (stale, staleAnswer) = try await relay(harness, "ci", body, headers: signed(body, id: "msg_3", at: Date().addingTimeInterval(-600)))
            #expect(stale == 401)
            #expect(staleAnswer?["message"]?.stringValue?.contains("older than the 5-minute tolerance") == true)
            #expect(try await relay(harness, "nobody", body, headers: signed(body, id: "msg_4")).0 == 404)
            let junk = Data("not json".utf8)
            #expect(try await relay(harness, "ci", junk, headers: signed(junk, id: "msg_5")).0 == 400)
            try await Task.sleep(for: .milliseconds(300))
            #expect(sink.sink.requests(vendor: "slack").count == 1, "only the one good request was delivered")
            let metrics = try await harness.admin("GET", "/metrics").text
            #expect(metrics.contains(#"patchbay_relay_rejected_total{reason="bad_signature"} 2"#))
            #expect(metrics.contains(#"patchbay_relay_rejected_total{reason="duplicate"} 1"#))
        }
    }

    @Test func aPassthroughSourceRelaysTheBodyUnchanged() async throws {
        try await withServerAndSink(config: { Self.config(sinkURL: $0) }) { harness, sink in
            try await harness.start()
            // Not a Patchbay event: passthrough does not care what the body is.
            let body = Data(#"{"build": 4711, "result": "green", "note": "ünïcødé \"quoted\""}"#.utf8)
            let (status, answer) = try await relay(harness, "ci-raw", body, headers: signed(body, id: "raw_1"))
            #expect(status == 202)
            #expect(answer?["deliveries"] == .number(1))
            let received = await sink.sink.waitFor(1) { $0.vendor == "webhook" }
            guard let request = received.first else {
                Issue.record("nothing passed through")
                return
            }
            #expect(Data(request.body.utf8) == body, "byte for byte")
            #expect(request.contentType == "application/json")
            let key = StandardWebhooks.key(fromSecret: Self.outboundSecret)!
            #expect(throws: Never.self) {
                try StandardWebhooks.verify(
                    id: request.headers["webhook-id"], timestamp: request.headers["webhook-timestamp"],
                    signatures: request.headers["webhook-signature"], body: Data(request.body.utf8), key: key, now: Date())
            }
            #expect(try await relay(harness, "ci-raw", body, headers: signed(body, id: "raw_1")).0 == 200, "a duplicate is answered 200")
            try await Task.sleep(for: .milliseconds(300))
            #expect(sink.sink.requests(vendor: "slack").isEmpty, "passthrough goes to the webhook targets only")
            #expect(sink.sink.requests(vendor: "webhook").count == 1)
            let rows = try await harness.deliveries()
            #expect(rows.first?["eventType"]?.stringValue == "relay.passthrough")
            #expect(rows.first?["state"]?.stringValue == "delivered")
        }
    }

    @Test func githubAndEventBridge() async throws {
        try await withServerAndSink(config: { Self.config(sinkURL: $0) }) { harness, sink in
            try await harness.start()
            let body = Self.event()
            let signature = "sha256=" + HexHMAC.sha256(body, secret: "gh-secret-0123456789")
            #expect(try await relay(harness, "gh", body, headers: ["X-Hub-Signature-256": signature, "X-GitHub-Delivery": "d1"]).0 == 202)
            #expect(try await relay(harness, "gh", body, headers: ["X-Hub-Signature-256": "sha256=00", "X-GitHub-Delivery": "d2"]).0 == 401)
            // X-GitHub-Delivery is not signed: a captured request replayed with a new GUID is the
            // same signed body, so a duplicate, not a second event.
            let (again, againAnswer) = try await relay(
                harness, "gh", body, headers: ["X-Hub-Signature-256": signature, "X-GitHub-Delivery": "d-forged"])
            #expect(again == 200 && againAnswer?["status"]?.stringValue == "duplicate")

            // Any JSON sender, by HMAC header and a field mapping.
            let start = Timestamp.rfc3339(Date().addingTimeInterval(86400))
            let end = Timestamp.rfc3339(Date().addingTimeInterval(90000))
            let ticket = Data(#"{"state":"done","service":"Billing","host":"db-3","from":"\#(start)","to":"\#(end)"}"#.utf8)
            let ticketSignature = "sha256=" + HexHMAC.sha256(ticket, secret: "tickets-secret-0123")
            #expect(try await relay(harness, "tickets", ticket, headers: ["X-Tickets-Signature": ticketSignature]).0 == 202)
            #expect(try await relay(harness, "tickets", ticket, headers: ["X-Tickets-Signature": "sha256=beef"]).0 == 401)
            let partial = Data(#"{"state":"done"}"#.utf8)
            let (unmappable, unmappableAnswer) = try await relay(
                harness, "tickets", partial,
                headers: ["X-Tickets-Signature": "sha256=" + HexHMAC.sha256(partial, secret: "tickets-secret-0123")])
            #expect(unmappable == 422)
            #expect(unmappableAnswer?["message"]?.stringValue?.contains("not in the body") == true)

            let execution = try Self.fixture("eventbridge/mw-execution-state-change.json")
            let (status, answer) = try await relay(harness, "aws-events", execution, headers: ["X-Patchbay-Key": Self.ebKey])
            #expect(status == 202)
            #expect(answer?["deliveries"] == .number(2))
            #expect(try await relay(harness, "aws-events", execution, headers: ["X-Patchbay-Key": "wrong-key-0123456789"]).0 == 401)
            let compliance = try Self.fixture("eventbridge/compliance-patch-compliant.json")
            let (ignored, ignoredAnswer) = try await relay(harness, "aws-events", compliance, headers: ["X-Patchbay-Key": Self.ebKey])
            #expect(ignored == 202 && ignoredAnswer?["status"]?.stringValue == "ignored")
            // A lifecycle event from a document nobody mapped: kept and reported, not dropped.
            let unmappedBody = try String(decoding: Self.fixture("eventbridge/ec2-command-status-change.json"), as: UTF8.self)
                .replacingOccurrences(of: "AWS-RunPowerShellScript", with: "Custom-Patch-Doc")
            let (unmapped, unmappedAnswer) = try await relay(harness, "aws-events", Data(unmappedBody.utf8), headers: ["X-Patchbay-Key": Self.ebKey])
            #expect(unmapped == 202 && unmappedAnswer?["status"]?.stringValue == "unmapped")
            #expect(unmappedAnswer?["reason"]?.stringValue == "no awsMapping.documents entry for Custom-Patch-Doc")
            let listed = try await harness.cli(["unmapped"], name: "unmapped")
            #expect(listed.status == 0)
            #expect(listed.stdout.contains("source aws-events: no awsMapping.documents entry for Custom-Patch-Doc"))
            #expect(listed.stdout.contains("Custom-Patch-Doc"))

            let slack = await sink.sink.waitFor(3) { $0.vendor == "slack" }
            #expect(slack.count == 3)
            #expect(slack.contains { $0.body.contains("Patching Complete") && $0.body.contains("App1 - Production") })
            #expect(slack.contains { $0.body.contains("Billing - Production") && $0.body.contains("db-3") })
        }
    }

    @Test func snsNotificationsAreVerifiedAndConfirmationsFetched() async throws {
        try await withServerAndSink(config: { Self.config(sinkURL: $0) }) { harness, sink in
            try await harness.start()
            let signer = try TestSNSSigner()
            let certURL = "\(sink.baseURL)/sns/SimpleNotificationService-test.pem"
            sink.sink.script(path: "/sns/SimpleNotificationService-test.pem", [ScriptedResponse(status: 200, body: signer.certificatePEM)])
            let message = String(decoding: try Self.fixture("sns/runcommand-invocation.json"), as: UTF8.self)
            func post(_ fields: [String: String]) async throws -> (Int, JSONValue?) {
                let body = try JSONEncoder().encode(fields)
                return try await relay(harness, "aws-sns", body, headers: ["x-amz-sns-message-type": fields["Type"] ?? ""])
            }
            // An agent's Idempotency-Key shaped like a relay id cannot turn the real SNS message
            // into a conflict: intake keys and relay ids live in separate namespaces.
            let first = try signer.notification(message: message, topic: Self.topic, certURL: certURL, version: "1")
            let squatter = Data(
                #"{"type":"patch.started","app":"App1","environment":"Production","window":{"start":"2030-01-01T00:00:00Z","end":"2030-01-01T01:00:00Z"}}"#
                    .utf8)
            #expect(try await harness.post(squatter, idempotencyKey: "aws-sns:\(first["MessageId"] ?? "")").status == 202)
            #expect(try await harness.post(squatter, idempotencyKey: "relay:aws-sns:\(first["MessageId"] ?? "")").status == 202)
            for version in ["1", "2"] {
                let (status, answer) = try await post(
                    version == "1" ? first : try signer.notification(message: message, topic: Self.topic, certURL: certURL, version: version))
                #expect(status == 202, "v\(version): \(String(describing: answer))")
            }
            // SNS retries a message it got no 2xx for: the repeat is a 200 duplicate.
            let (repeated, repeatedAnswer) = try await post(first)
            #expect(repeated == 200 && repeatedAnswer?["status"]?.stringValue == "duplicate")
            var tampered = try signer.notification(message: message, topic: Self.topic, certURL: certURL)
            tampered["Message"] = message.replacingOccurrences(of: "InProgress", with: "Success")
            #expect(try await post(tampered).0 == 401)
            let wrongTopic = try signer.notification(message: message, topic: "arn:aws:sns:us-east-1:123456789012:other", certURL: certURL)
            #expect(try await post(wrongTopic).0 == 403)
            // A topic this source does not take is refused before any certificate is fetched.
            let strangerCert = "\(sink.baseURL)/sns/SimpleNotificationService-stranger.pem"
            let stranger = try signer.notification(message: message, topic: "arn:aws:sns:us-east-1:123456789012:other", certURL: strangerCert)
            #expect(try await post(stranger).0 == 403)
            #expect(sink.sink.requests.filter { $0.path.hasSuffix("stranger.pem") }.isEmpty, "no fetch for a topic not configured")
            let foreign = try signer.notification(message: message, topic: Self.topic, certURL: "https://evil.example/sns/cert.pem")
            #expect(try await post(foreign).0 == 403)

            let confirmation = try signer.confirmation(topic: Self.topic, certURL: certURL, subscribeURL: "\(sink.baseURL)/sns/confirm?Token=tok123")
            #expect(try await post(confirmation).0 == 200)
            let confirms = sink.sink.requests.filter { $0.path == "/sns/confirm" }
            #expect(confirms.count == 1 && confirms.first?.method == "GET")
            #expect(sink.sink.requests.filter { $0.path.hasSuffix(".pem") }.count == 1, "the certificate was fetched once")

            let slack = await sink.sink.waitFor(2) { $0.vendor == "slack" && $0.body.contains("Fleet - Production") }
            #expect(slack.count == 2, "both SNS notifications were delivered, once each")
        }
    }
}
