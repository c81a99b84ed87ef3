import Foundation
import GRDB
import PatchbayCore

/// Relayed messages no mapping understood, kept for operators.
extension SQLiteStore: RelayInboxStore {
    public func recordUnmapped(source: String, dedupeID: String?, reason: String, body: String, at now: Date) async throws {
        try await committer.write { db in
            try db.execute(
                sql: "INSERT INTO relay_unmapped (source, dedupe_id, reason, body, received_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [source, dedupeID, reason, body, now.timeIntervalSince1970])
        }
    }

    public func unmapped(limit: Int) async throws -> [UnmappedMessage] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM relay_unmapped ORDER BY id DESC LIMIT ?", arguments: [limit]).map { row in
                UnmappedMessage(
                    source: row["source"], reason: row["reason"], body: row["body"],
                    receivedAt: Date(timeIntervalSince1970: row["received_at"]))
            }
        }
    }
}
