import Foundation
import PatchbayCore
import PostgresNIO

/// The audit trail on PostgreSQL: one row per operator action, shared by every instance.
extension PostgresStore: AuditStore {
    public func recordAudit(_ record: AuditRecord) async throws {
        try await transaction { [self] connection in
            try await Self.rows(
                """
                INSERT INTO audit_log (id, at, actor, method, actor_id, action, outcome, source, detail)
                VALUES (\(record.id), \(record.at), \(record.actor), \(record.method), \(record.actorID), \(record.action),
                        \(record.outcome.rawValue), \(record.source), \(record.detail))
                """, on: connection, logger: logger)
        }
    }

    public func auditTrail(_ filter: AuditFilter) async throws -> [AuditRecord] {
        try await read { [self] connection in
            let rows = try await Self.rows(
                """
                SELECT id, at, actor, method, actor_id, action, outcome, source, detail FROM audit_log
                WHERE (\(filter.since)::timestamptz IS NULL OR at >= \(filter.since)) AND (\(filter.action)::text IS NULL OR action = \(filter.action))
                ORDER BY at DESC, seq DESC LIMIT \(filter.limit)
                """, on: connection, logger: logger)
            return try rows.map { row in
                let (id, at, actor, method, actorID, action, outcome, source, detail) = try row.decode(
                    (String, Date, String, String, String?, String, String, String?, String).self)
                return AuditRecord(
                    id: id, at: at, actor: actor, method: method, actorID: actorID, action: action,
                    outcome: AuditRecord.Outcome(rawValue: outcome) ?? .failed, source: source, detail: detail)
            }
        }
    }
}
