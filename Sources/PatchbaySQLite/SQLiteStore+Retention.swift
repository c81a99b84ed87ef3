import Foundation
import GRDB
import PatchbayCore

/// Retention on SQLite: finished work older than `store.retention` is deleted in small batches,
/// each its own short write, so intake waits at most one batch; then the WAL is checkpointed.
extension SQLiteStore {
    /// Rows deleted per write.
    static let pruneBatch = 500

    public func prune(policy: RetentionPolicy, now: Date, dryRun: Bool, progress: StoreProgress?) async throws -> PruneReport {
        var report = PruneReport()
        let seconds = now.timeIntervalSince1970
        let deliveryCutoffs: [(DeliveryState, Double)] = [
            (.delivered, seconds - policy.delivered.seconds), (.expired, seconds - policy.expired.seconds), (.dead, seconds - policy.dead.seconds),
            // A superseded edit is kept as long as a delivered one.
            (.superseded, seconds - policy.delivered.seconds),
        ]
        let eventCutoff = seconds - policy.events.seconds
        let maintenanceCutoff = seconds - policy.maintenances.seconds
        let unmappedCutoff = seconds - policy.unmapped.seconds
        let auditCutoff = seconds - policy.audit.seconds
        if dryRun {
            return try await pool.read { db in
                var report = PruneReport()
                for (state, cutoff) in deliveryCutoffs {
                    report.deliveries +=
                        try Int.fetchOne(
                            db, sql: "SELECT COUNT(*) FROM deliveries WHERE state = ? AND updated_at < ?",
                            arguments: [state.rawValue, cutoff]) ?? 0
                    report.attempts +=
                        try Int.fetchOne(
                            db,
                            sql: """
                                SELECT COUNT(*) FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE state = ? AND updated_at < ?)
                                """, arguments: [state.rawValue, cutoff]) ?? 0
                }
                // Events whose deliveries are all due to go (or gone) and that are old enough.
                report.events =
                    try Int.fetchOne(
                        db,
                        sql: """
                            SELECT COUNT(*) FROM events e WHERE e.received_at < ? AND NOT EXISTS (
                                SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND NOT (
                                    (d.state IN ('delivered', 'superseded') AND d.updated_at < ?) OR (d.state = 'expired' AND d.updated_at < ?)
                                    OR (d.state = 'dead' AND d.updated_at < ?)))
                            """, arguments: [eventCutoff, deliveryCutoffs[0].1, deliveryCutoffs[1].1, deliveryCutoffs[2].1]) ?? 0
                // Maintenances with no delivery left once the prunable ones are gone (a dead one
                // still kept holds its maintenance, so a replay finds the vendor ids).
                report.maintenances =
                    try Int.fetchOne(
                        db,
                        sql: """
                            SELECT COUNT(*) FROM maintenances m WHERE m.window_end < ? AND NOT EXISTS (
                                SELECT 1 FROM deliveries d WHERE d.maintenance_key = m.maintenance_key AND NOT (
                                    (d.state IN ('delivered', 'superseded') AND d.updated_at < ?) OR (d.state = 'expired' AND d.updated_at < ?)
                                    OR (d.state = 'dead' AND d.updated_at < ?)))
                            """, arguments: [maintenanceCutoff, deliveryCutoffs[0].1, deliveryCutoffs[1].1, deliveryCutoffs[2].1]) ?? 0
                report.unmapped =
                    try Int.fetchOne(
                        db, sql: "SELECT COUNT(*) FROM relay_unmapped WHERE received_at < ?",
                        arguments: [unmappedCutoff]) ?? 0
                report.audit = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit_log WHERE at < ?", arguments: [auditCutoff]) ?? 0
                return report
            }
        }
        for (state, cutoff) in deliveryCutoffs {
            while true {
                let (deliveries, attempts) = try await committer.write { db -> (Int, Int) in
                    let ids = try String.fetchAll(
                        db, sql: "SELECT id FROM deliveries WHERE state = ? AND updated_at < ? LIMIT ?",
                        arguments: [state.rawValue, cutoff, Self.pruneBatch])
                    guard !ids.isEmpty else { return (0, 0) }
                    let marks = databaseQuestionMarks(count: ids.count)
                    try db.execute(sql: "DELETE FROM attempts WHERE delivery_id IN (\(marks))", arguments: StatementArguments(ids))
                    let attempts = db.changesCount
                    try db.execute(sql: "DELETE FROM deliveries WHERE id IN (\(marks))", arguments: StatementArguments(ids))
                    return (db.changesCount, attempts)
                }
                report.deliveries += deliveries
                report.attempts += attempts
                progress?(report.total, nil)
                if deliveries < Self.pruneBatch { break }
                await Task.yield()
            }
        }
        report.events = try await deleteInBatches(
            """
            DELETE FROM events WHERE seq IN (SELECT e.seq FROM events e WHERE e.received_at < ?
                AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq) LIMIT ?)
            """, cutoff: eventCutoff)
        while true {
            let removed = try await committer.write { db -> Int in
                let keys = try String.fetchAll(
                    db,
                    sql: """
                        SELECT m.maintenance_key FROM maintenances m WHERE m.window_end < ? AND NOT EXISTS (
                            SELECT 1 FROM deliveries d WHERE d.maintenance_key = m.maintenance_key)
                        LIMIT ?
                        """, arguments: [maintenanceCutoff, Self.pruneBatch])
                guard !keys.isEmpty else { return 0 }
                let marks = databaseQuestionMarks(count: keys.count)
                for table in ["maintenance_instances", "followups", "planned_notices"] {
                    try db.execute(sql: "DELETE FROM \(table) WHERE maintenance_key IN (\(marks))", arguments: StatementArguments(keys))
                }
                try db.execute(sql: "DELETE FROM maintenances WHERE maintenance_key IN (\(marks))", arguments: StatementArguments(keys))
                return db.changesCount
            }
            report.maintenances += removed
            progress?(report.total, nil)
            if removed < Self.pruneBatch { break }
            await Task.yield()
        }
        report.unmapped = try await deleteInBatches(
            """
            DELETE FROM relay_unmapped WHERE id IN (SELECT id FROM relay_unmapped WHERE received_at < ? LIMIT ?)
            """, cutoff: unmappedCutoff)
        report.audit = try await deleteInBatches(
            "DELETE FROM audit_log WHERE seq IN (SELECT seq FROM audit_log WHERE at < ? LIMIT ?)", cutoff: auditCutoff)
        try await checkpoint()
        return report
    }

    private func deleteInBatches(_ sql: String, cutoff: Double) async throws -> Int {
        var total = 0
        while true {
            let removed = try await committer.write { db -> Int in
                try db.execute(sql: sql, arguments: [cutoff, Self.pruneBatch])
                return db.changesCount
            }
            total += removed
            if removed < Self.pruneBatch { return total }
            await Task.yield()
        }
    }

    /// Copies the WAL back into the database and truncates it, so it stays bounded. Readers
    /// in progress can hold it back; the next checkpoint catches up.
    public func checkpoint() async throws {
        try await pool.writeWithoutTransaction { db in
            _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)")
        }
    }

    /// Sizes on disk, for the operator and the benchmarks.
    public func fileSizes() -> (database: Int64, wal: Int64) {
        func size(_ path: String) -> Int64 {
            ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
        }
        return (size(path), size(path + "-wal"))
    }
}
