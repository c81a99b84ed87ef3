import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import PatchbayCore
import PatchbayTestSupport
import Testing

@testable import PatchbaySQLite
@testable import PatchbayServer

/// A full disk answers 503 with Retry-After, never a 202 nor a bare 500, and recovers; readiness
/// is a real write; the queue file is private.
@Suite("Durability edges")
struct DurabilityTests {
    static let token = "test-token-0123456789abcdef"
    static let yaml = """
        server:
          tokens: ["\(token)"]
          maxBodyBytes: 1048576
        targets:
          ops-slack: {kind: slack, url: "http://127.0.0.1:9/slack/T/B/X"}
        routes:
          - match: {app: App1}
            targets: [ops-slack]
        """

    /// An event of about 40 KB, so a few fill a small database.
    static func event(_ n: Int) -> String {
        let packages = (0..<800).map { #""package-\#(n)-\#($0)-1.0.0-1.amzn2023.x86_64""# }.joined(separator: ",")
        return
            #"{"type":"patch.completed","app":"App1","environment":"Production","instance":{"id":"i-\#(n)"},"window":{"id":"mw-\#(n)","start":"2026-12-04T08:30:00Z","end":"2026-12-04T08:45:00Z"},"packages":[\#(packages)]}"#
    }

    func post(_ client: any TestClientProtocol, _ body: String) async throws -> (status: Int, retryAfter: String?, id: String?) {
        try await client.execute(
            uri: "/v1/events", method: .post,
            headers: [.contentType: "application/json", .authorization: "Bearer \(Self.token)"],
            body: ByteBuffer(string: body)
        ) { response in
            let json = try? JSONDecoder().decode(JSONValue.self, from: Data(response.body.readableBytesView))
            return (Int(response.status.code), response.headers[.retryAfter], json?["id"]?.stringValue)
        }
    }

    @Test func aFullDiskAnswers503UntilSpaceReturnsAndLosesNothing() async throws {
        let directory = try TemporaryDirectory("full")
        defer { directory.remove() }
        let configuration = try PatchbayConfiguration.parse(yaml: Self.yaml, environment: [:])
        let store = try SQLiteStore(settings: StoreSettings(sqlitePath: directory.path("q.db")), logger: Logger(label: "test"))
        let pages = try await store.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0 }
        // The writer is one connection: SQLite's max_page_count stands in for a full disk.
        try await store.pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA max_page_count = \(pages + 40)") }
        let app = Application(router: buildRouter(configuration: configuration, parts: ApplicationParts(store: store)))
        try await app.test(.router) { client in
            var accepted: [String] = []
            var refusals = 0
            for n in 0..<60 {
                let answer = try await post(client, Self.event(n))
                if answer.status == 202, let id = answer.id {
                    #expect(refusals == 0, "no 202 once the disk is full")
                    accepted.append(id)
                } else {
                    #expect(answer.status == 503)
                    #expect(answer.retryAfter == "5")
                    refusals += 1
                }
            }
            #expect(!accepted.isEmpty && refusals > 0, "the database filled up: \(accepted.count) accepted, \(refusals) refused")
            // Small events still fit for a while; fill the last pages with them.
            let small =
                #"{"type":"patch.started","app":"App1","environment":"Production","window":{"start":"2026-12-04T08:30:00Z","end":"2026-12-04T08:45:00Z"}}"#
            var full = false
            for _ in 0..<2000 where !full {
                let answer = try await post(client, small)
                if answer.status == 202, let id = answer.id { accepted.append(id) } else { full = answer.status == 503 }
            }
            #expect(full)
            let ready = try await client.execute(uri: "/readyz", method: .get) { Int($0.status.code) }
            #expect(ready == 503, "not ready while the store cannot write")

            // Space returns.
            try await store.pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA max_page_count = 1073741823") }
            let after = try await post(client, Self.event(100))
            #expect(after.status == 202)
            #expect(try await client.execute(uri: "/readyz", method: .get) { Int($0.status.code) } == 200)
            if let id = after.id { accepted.append(id) }

            let stored = try await store.pool.read { db in try Set(String.fetchAll(db, sql: "SELECT id FROM events")) }
            #expect(Set(accepted).isSubset(of: stored), "every acknowledged event is on disk")
            #expect(try await store.pool.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") } == "ok")
        }
    }

    @Test func theQueueFilesArePrivate() async throws {
        let directory = try TemporaryDirectory("perms")
        defer { directory.remove() }
        let path = directory.path("q.db")
        let store = try SQLiteStore(settings: StoreSettings(sqlitePath: path), logger: Logger(label: "test"))
        try await store.checkWritable()
        for file in [path, path + "-wal"] {
            let mode = try #require(try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int)
            #expect(mode & 0o077 == 0, "\(file) is \(String(mode, radix: 8))")
        }
        // An existing world-readable file is made private when opened.
        let loose = directory.path("loose.db")
        FileManager.default.createFile(atPath: loose, contents: nil, attributes: [.posixPermissions: 0o644])
        _ = try SQLiteStore(settings: StoreSettings(sqlitePath: loose), logger: Logger(label: "test"))
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: loose)[.posixPermissions] as? Int)
        #expect(mode & 0o077 == 0)
    }

    @Test func readinessIsARealWrite() async throws {
        let directory = try TemporaryDirectory("ready")
        defer { directory.remove() }
        let store = try SQLiteStore(settings: StoreSettings(sqlitePath: directory.path("q.db")), logger: Logger(label: "test"))
        try await store.checkWritable()
        let written = try await store.pool.read { db in try Double.fetchOne(db, sql: "SELECT checked_at FROM readiness_probe") }
        #expect(written != nil)
    }
}
