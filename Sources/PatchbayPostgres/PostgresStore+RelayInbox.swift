import Foundation
import Logging
import PatchbayCore
import PostgresNIO

/// Relayed messages no mapping understood, kept for operators.
extension PostgresStore: RelayInboxStore {
    public func recordUnmapped(source: String, dedupeID: String?, reason: String, body: String, at now: Date) async throws {
        try await transaction { [self] connection in
            _ = try await Self.rows(
                """
                INSERT INTO relay_unmapped (source, dedupe_id, reason, body, received_at) VALUES (\(source), \(dedupeID), \(reason), \(body), \(now))
                """, on: connection, logger: logger)
        }
    }

    public func unmapped(limit: Int) async throws -> [UnmappedMessage] {
        try await read { [self] connection -> [UnmappedMessage] in
            try await Self.rows(
                "SELECT source, reason, body, received_at FROM relay_unmapped ORDER BY id DESC LIMIT \(limit)",
                on: connection, logger: logger
            ).map { row -> UnmappedMessage in
                let columns = row.columns
                return UnmappedMessage(
                    source: try columns.value("source", as: String.self), reason: try columns.value("reason", as: String.self),
                    body: try columns.value("body", as: String.self), receivedAt: try columns.value("received_at", as: Date.self))
            }
        }
    }
}
