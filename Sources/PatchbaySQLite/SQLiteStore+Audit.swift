import Foundation
import GRDB
import PatchbayCore

/// The audit trail on SQLite: one row per operator action, pruned by `store.retention.audit`.
extension SQLiteStore: AuditStore {
    public func recordAudit(_ record: AuditRecord) async throws {
        try await committer.write { db in
            try db.executeCached(
                sql: """
                    INSERT INTO audit_log (id, at, actor, method, actor_id, action, outcome, source, detail)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    record.id, record.at.timeIntervalSince1970, record.actor, record.method, record.actorID, record.action,
                    record.outcome.rawValue, record.source, record.detail,
                ])
        }
    }

    public func auditTrail(_ filter: AuditFilter) async throws -> [AuditRecord] {
        try await pool.read { db in
            var clauses: [String] = []
            var arguments: StatementArguments = []
            if let since = filter.since {
                clauses.append("at >= ?")
                _ = arguments.append(contentsOf: [since.timeIntervalSince1970])
            }
            if let action = filter.action {
                clauses.append("action = ?")
                _ = arguments.append(contentsOf: [action])
            }
            _ = arguments.append(contentsOf: [filter.limit])
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT id, at, actor, method, actor_id, action, outcome, source, detail FROM audit_log
                    \(clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND "))
                    ORDER BY at DESC, seq DESC LIMIT ?
                    """, arguments: arguments)
            return rows.map { row in
                AuditRecord(
                    id: row["id"], at: Date(timeIntervalSince1970: row["at"]), actor: row["actor"], method: row["method"],
                    actorID: row["actor_id"], action: row["action"], outcome: AuditRecord.Outcome(rawValue: row["outcome"]) ?? .failed,
                    source: row["source"], detail: row["detail"])
            }
        }
    }
}
