import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import PatchbayCore
import PatchbaySQLite
import PatchbayTestSupport
import Testing

@testable import PatchbayServer

@Suite("POST /v1/events")
struct EventRoutesTests {
    static let token = "test-token-0123456789abcdef"
    static let yaml = """
        server:
          listen: 127.0.0.1:0
          tokens: ["\(token)", "second-token-abcdefghijkl"]
          maxBodyBytes: 2048
        targets:
          ops-slack: {kind: slack, url: "http://127.0.0.1:9/slack/T/B/X"}
          other-slack: {kind: slack, url: "http://127.0.0.1:9/slack/T/B/Y"}
        routes:
          - match: {app: App1, environment: Production}
            targets: [ops-slack, other-slack]
            timezone: America/Los_Angeles
        """

    let event =
        #"{"type":"patch.started","app":"App1","environment":"Production","instance":{"id":"i-1"},"window":{"start":"2026-12-04T00:30:00","end":"2026-12-04T00:45:00"}}"#

    func withApp(_ test: @Sendable (any TestClientProtocol, SQLiteStore) async throws -> Void) async throws {
        let directory = try TemporaryDirectory("routes")
        defer { directory.remove() }
        let configuration = try PatchbayConfiguration.parse(yaml: Self.yaml, environment: [:])
        let store = try SQLiteStore(settings: StoreSettings(sqlitePath: directory.path("q.db")), logger: Logger(label: "test"))
        let router = buildRouter(configuration: configuration, parts: ApplicationParts(store: store))
        let app = Application(router: router)
        try await app.test(.router) { client in try await test(client, store) }
    }

    func post(
        _ client: any TestClientProtocol, _ body: String, token: String? = token, headers extra: HTTPFields = [:]
    ) async throws -> (Int, JSONValue?) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        headers.append(contentsOf: extra)
        return try await client.execute(uri: "/v1/events", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
            let json = try? JSONDecoder().decode(JSONValue.self, from: Data(response.body.readableBytesView))
            return (Int(response.status.code), json)
        }
    }

    @Test func acceptsAndCommitsBeforeAnswering() async throws {
        try await withApp { client, store in
            let (status, json) = try await post(client, event)
            #expect(status == 202)
            #expect(json?["deliveries"] == .number(2))
            #expect(json?["id"]?.stringValue?.hasPrefix("evt_") == true)
            #expect(try await store.counts() == [.pending: 2])
            // The route's zone was applied to the local window time.
            let claims = try await store.claimDue(now: Date(), limit: 10, lease: .seconds(30))
            #expect(claims.map { Timestamp.rfc3339($0.event.window.start) } == ["2026-12-04T08:30:00Z", "2026-12-04T08:30:00Z"])
        }
    }

    @Test func anyConfiguredTokenWorksAndOthersGet401() async throws {
        try await withApp { client, store in
            #expect(try await post(client, event, token: "second-token-abcdefghijkl").0 == 202)
            let (missing, body) = try await post(client, event, token: nil)
            #expect(missing == 401)
            #expect(body?["error"]?.stringValue == "unauthorized")
            #expect(try await post(client, event, token: "wrong-token-0123456789abc").0 == 401)
            #expect(try await post(client, event, token: Self.token + "x").0 == 401)
            #expect(try await store.counts() == [.pending: 2], "only the authorized event was queued")
        }
    }

    @Test func badInputGets400NamingTheFieldAndTheServerKeepsServing() async throws {
        try await withApp { client, store in
            let cases: [(String, String)] = [
                ("{not json", "body: is not valid JSON"),
                (#"{"type":"patch.started"}"#, "app: is required"),
                (event.replacingOccurrences(of: "patch.started", with: "patch.done"), "type: must be one of"),
                (event.replacingOccurrences(of: #""App1""#, with: "42"), "app: expected a string, got a number"),
                (event.replacingOccurrences(of: "2026-12-04T00:30:00", with: "soon"), "window.start: expected an RFC 3339 date-time"),
                (
                    event.replacingOccurrences(of: "2026-12-04T00:30:00", with: "2026-03-08T02:30:00")
                        .replacingOccurrences(of: "2026-12-04T00:45:00", with: "2026-03-08T03:30:00"), "does not exist in America/Los_Angeles"
                ),
                ("[]", "body: expected a JSON object"),
                ("", "body: is not valid JSON"),
            ]
            for (body, expected) in cases {
                let (status, json) = try await post(client, body)
                #expect(status == 400, "\(body)")
                #expect(json?["error"]?.stringValue == "invalid_event")
                #expect(json?["message"]?.stringValue?.contains(expected) == true, "\(json?["message"]?.stringValue ?? "no message") ∌ \(expected)")
            }
            #expect(try await post(client, event).0 == 202, "still serving after bad input")
            #expect(try await store.counts() == [.pending: 2])
        }
    }

    @Test func oversizedBodyGets413() async throws {
        try await withApp { client, store in
            let padding = String(repeating: "x", count: 4000)
            let big = event.replacingOccurrences(of: #""instance""#, with: #""details":{"pad":"\#(padding)"},"instance""#)
            let (status, json) = try await post(client, big)
            #expect(status == 413)
            #expect(json?["message"]?.stringValue == "body: larger than the 2048-byte limit (server.maxBodyBytes)")
            #expect(try await store.counts().isEmpty)
        }
    }

    @Test func idempotencyKeyAnswersTheSameOrConflicts() async throws {
        try await withApp { client, store in
            let key: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "run-42-web-1-started"]
            let (first, firstBody) = try await post(client, event, headers: key)
            let (again, againBody) = try await post(client, event, headers: key)
            #expect(first == 202 && again == 202)
            #expect(firstBody == againBody)
            let changed = event.replacingOccurrences(of: "i-1", with: "i-2")
            let (conflict, conflictBody) = try await post(client, changed, headers: key)
            #expect(conflict == 409)
            #expect(conflictBody?["error"]?.stringValue == "idempotency_conflict")
            // The `id` field works as a key too.
            let withID = event.replacingOccurrences(of: #"{"type""#, with: #"{"id":"agent-7","type""#)
            let (one, oneBody) = try await post(client, withID)
            let (two, twoBody) = try await post(client, withID)
            #expect(one == 202 && two == 202 && oneBody == twoBody)
            #expect(try await store.counts() == [.pending: 4], "two events, two targets each; repeats queued nothing")
        }
    }

    @Test func healthz() async throws {
        try await withApp { client, _ in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }

    /// Bytes that are not printable ASCII were decoded lossily, so two different keys could
    /// collide and a real event be answered 409.
    @Test(arguments: ["clé-42", "tab\there", String(repeating: "k", count: 201)])
    func idempotencyKeysArePrintableASCII(_ key: String) async throws {
        try await withApp { client, store in
            let (status, json) = try await post(client, event, headers: [HTTPField.Name("Idempotency-Key")!: key])
            #expect(status == 400)
            #expect(json?["error"]?.stringValue == "invalid_header")
            #expect(json?["message"]?.stringValue?.hasPrefix("Idempotency-Key:") == true)
            #expect(try await store.counts().isEmpty)
        }
    }
}
