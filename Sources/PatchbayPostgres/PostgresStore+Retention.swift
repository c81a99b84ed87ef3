import Foundation
import Logging
import PatchbayCore
import PostgresNIO

/// Retention on PostgreSQL: `patchbay prune` and the scheduled prune, in short batches.
extension PostgresStore {
    /// Rows deleted per transaction: each batch is its own short transaction, so intake and claims
    /// wait at most one batch for a row lock.
    static let pruneBatch = 500

    public func prune(policy: RetentionPolicy, now: Date, dryRun: Bool, progress: StoreProgress?) async throws -> PruneReport {
        let deliveryCutoffs: [(DeliveryState, Date)] = [
            (.delivered, now.addingTimeInterval(-policy.delivered.seconds)), (.expired, now.addingTimeInterval(-policy.expired.seconds)),
            (.dead, now.addingTimeInterval(-policy.dead.seconds)),
            // A superseded edit is kept as long as a delivered one.
            (.superseded, now.addingTimeInterval(-policy.delivered.seconds)),
        ]
        let (deliveredCutoff, expiredCutoff, deadCutoff) = (deliveryCutoffs[0].1, deliveryCutoffs[1].1, deliveryCutoffs[2].1)
        let eventCutoff = now.addingTimeInterval(-policy.events.seconds)
        let maintenanceCutoff = now.addingTimeInterval(-policy.maintenances.seconds)
        let unmappedCutoff = now.addingTimeInterval(-policy.unmapped.seconds)
        let auditCutoff = now.addingTimeInterval(-policy.audit.seconds)
        if dryRun {
            return try await read { [self] connection -> PruneReport in
                var report = PruneReport()
                for (state, cutoff) in deliveryCutoffs {
                    report.deliveries += try await Self.fetchCount(
                        """
                        SELECT COUNT(*) AS n FROM deliveries WHERE state = \(state.rawValue) AND updated_at < \(cutoff)
                        """, on: connection, logger: logger)
                    report.attempts += try await Self.fetchCount(
                        """
                        SELECT COUNT(*) AS n FROM attempts
                        WHERE delivery_id IN (SELECT id FROM deliveries WHERE state = \(state.rawValue) AND updated_at < \(cutoff))
                        """, on: connection, logger: logger)
                }
                // Events whose deliveries are all due to go (or gone) and that are old enough.
                report.events = try await Self.fetchCount(
                    """
                    SELECT COUNT(*) AS n FROM events e WHERE e.received_at < \(eventCutoff) AND NOT EXISTS (
                        SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND NOT (
                            (d.state IN ('delivered', 'superseded') AND d.updated_at < \(deliveredCutoff)) OR (d.state = 'expired' AND d.updated_at < \(expiredCutoff))
                            OR (d.state = 'dead' AND d.updated_at < \(deadCutoff))))
                    """, on: connection, logger: logger)
                // Maintenances with no delivery left once the prunable ones are gone (a dead one
                // still kept holds its maintenance, so a replay finds the vendor ids).
                report.maintenances = try await Self.fetchCount(
                    """
                    SELECT COUNT(*) AS n FROM maintenances m WHERE m.window_end < \(maintenanceCutoff) AND NOT EXISTS (
                        SELECT 1 FROM deliveries d WHERE d.maintenance_key = m.maintenance_key AND NOT (
                            (d.state IN ('delivered', 'superseded') AND d.updated_at < \(deliveredCutoff)) OR (d.state = 'expired' AND d.updated_at < \(expiredCutoff))
                            OR (d.state = 'dead' AND d.updated_at < \(deadCutoff))))
                    """, on: connection, logger: logger)
                report.unmapped = try await Self.fetchCount(
                    "SELECT COUNT(*) AS n FROM relay_unmapped WHERE received_at < \(unmappedCutoff)",
                    on: connection, logger: logger)
                report.audit = try await Self.fetchCount(
                    "SELECT COUNT(*) AS n FROM audit_log WHERE at < \(auditCutoff)", on: connection, logger: logger)
                return report
            }
        }
        var report = PruneReport()
        for (state, cutoff) in deliveryCutoffs {
            while true {
                let (deliveries, attempts) = try await transaction { [self] connection -> (Int, Int) in
                    // Locked while they go; one an operator is replaying right now is passed over
                    // (SKIP LOCKED) and, once replayed, no longer qualifies.
                    let ids = try await Self.rows(
                        """
                        SELECT id FROM deliveries WHERE state = \(state.rawValue) AND updated_at < \(cutoff)
                        LIMIT \(Self.pruneBatch) FOR UPDATE SKIP LOCKED
                        """, on: connection, logger: logger
                    ).map { try $0.columns.value("id", as: String.self) }
                    guard !ids.isEmpty else { return (0, 0) }
                    let attempts = try await Self.fetchCount(
                        """
                        WITH gone AS (DELETE FROM attempts WHERE delivery_id = ANY(\(ids)) RETURNING 1) SELECT COUNT(*) AS n FROM gone
                        """, on: connection, logger: logger)
                    let deliveries = try await Self.fetchCount(
                        """
                        WITH gone AS (DELETE FROM deliveries WHERE id = ANY(\(ids)) RETURNING 1) SELECT COUNT(*) AS n FROM gone
                        """, on: connection, logger: logger)
                    return (deliveries, attempts)
                }
                report.deliveries += deliveries
                report.attempts += attempts
                progress?(report.total, nil)
                if deliveries < Self.pruneBatch { break }
                await Task.yield()
            }
        }
        let lanes = try await pruneIdleLanes()
        report.events = try await deleteInBatches(
            """
            WITH gone AS (
                DELETE FROM events WHERE seq IN (SELECT e.seq FROM events e WHERE e.received_at < \(eventCutoff)
                    AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq) LIMIT \(Self.pruneBatch))
                RETURNING 1)
            SELECT COUNT(*) AS n FROM gone
            """)
        report.maintenances = try await pruneMaintenances(endedBefore: maintenanceCutoff)
        report.unmapped = try await deleteInBatches(
            """
            WITH gone AS (
                DELETE FROM relay_unmapped WHERE id IN (SELECT id FROM relay_unmapped WHERE received_at < \(unmappedCutoff) LIMIT \(Self.pruneBatch))
                RETURNING 1)
            SELECT COUNT(*) AS n FROM gone
            """)
        report.audit = try await deleteInBatches(
            """
            WITH gone AS (
                DELETE FROM audit_log WHERE seq IN (SELECT seq FROM audit_log WHERE at < \(auditCutoff) LIMIT \(Self.pruneBatch))
                RETURNING 1)
            SELECT COUNT(*) AS n FROM gone
            """)
        // Instances normally remove themselves (leaveCluster) or are removed with their leases
        // (releaseLeasesOfSilentInstances); this catches rows nobody reaped. Heartbeats are the
        // database's clock, so their age is measured with it, not with `now`. A paused instance
        // that comes back re-registers on its next heartbeat.
        let instances = try await transaction { [self] connection -> Int in
            try await Self.fetchCount(
                """
                WITH gone AS (DELETE FROM instances WHERE heartbeat_at < clock_timestamp() - interval '1 day' RETURNING 1)
                SELECT COUNT(*) AS n FROM gone
                """, on: connection, logger: logger)
        }
        // No table is checkpointed or vacuumed here: autovacuum reclaims the space.
        if lanes > 0 || instances > 0 {
            logger.debug("pruned idle lanes and stale instances", metadata: ["lanes": "\(lanes)", "instances": "\(instances)"])
        }
        return report
    }

    /// Deletes the `lanes` rows of lanes with no unfinished delivery: a row only hands out the
    /// lane's next number, and without this the table would grow by one row per maintenance and
    /// target for ever. The next delivery of the lane creates the row again, numbering from 1
    /// (nothing unfinished is left to be ordered against).
    private func pruneIdleLanes() async throws -> Int {
        var total = 0
        while true {
            let (candidates, removed) = try await transaction { [self] connection -> (Int, Int) in
                // SKIP LOCKED passes over lanes an intake is adding to right now.
                let rows = try await Self.rows(
                    """
                    SELECT l.maintenance_key, l.target FROM lanes l
                    WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.maintenance_key = l.maintenance_key AND d.target = l.target
                                        AND d.state IN ('pending', 'in_flight'))
                    LIMIT \(Self.pruneBatch) FOR UPDATE SKIP LOCKED
                    """, on: connection, logger: logger)
                guard !rows.isEmpty else { return (0, 0) }
                var keys: [String] = []
                var targets: [String] = []
                for row in rows {
                    let columns = row.columns
                    keys.append(try columns.value("maintenance_key", as: String.self))
                    targets.append(try columns.value("target", as: String.self))
                }
                // Checked again by a new statement, which sees every commit up to now: an intake
                // that committed to one of these lanes after the first statement began (its
                // snapshot missed the delivery) keeps the lane's row and its numbering. Later
                // intakes wait for the row lock held here, and then create the row afresh.
                let removed = try await Self.fetchCount(
                    """
                    WITH gone AS (
                        DELETE FROM lanes l USING unnest(\(keys)::text[], \(targets)::text[]) AS c(maintenance_key, target)
                        WHERE l.maintenance_key = c.maintenance_key AND l.target = c.target
                          AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.maintenance_key = l.maintenance_key AND d.target = l.target
                                            AND d.state IN ('pending', 'in_flight'))
                        RETURNING 1)
                    SELECT COUNT(*) AS n FROM gone
                    """, on: connection, logger: logger)
                return (rows.count, removed)
            }
            total += removed
            // A full batch of which none could go (all busy): the rest waits for the next prune.
            if candidates < Self.pruneBatch || removed == 0 { return total }
            await Task.yield()
        }
    }

    /// Deletes maintenances whose window ended before the cutoff and that have no delivery left,
    /// with their instances, vendor ids and planned notices.
    private func pruneMaintenances(endedBefore cutoff: Date) async throws -> Int {
        var total = 0
        while true {
            let (candidates, removed) = try await transaction { [self] connection -> (Int, Int) in
                let keys = try await Self.rows(
                    """
                    SELECT m.maintenance_key FROM maintenances m WHERE m.window_end < \(cutoff) AND NOT EXISTS (
                        SELECT 1 FROM deliveries d WHERE d.maintenance_key = m.maintenance_key)
                    LIMIT \(Self.pruneBatch)
                    """, on: connection, logger: logger
                ).map { try $0.columns.value("maintenance_key", as: String.self) }
                guard !keys.isEmpty else { return (0, 0) }
                // The maintenance's lock, which intake and the notice scheduler hold while they
                // write to it (see PostgresStore+Intake), tried and never waited for: one busy now is
                // left for the next prune. Held, it keeps a late event from adding a delivery
                // between the check below and the deletes.
                let locked = try await Self.rows(
                    """
                    SELECT u.k FROM unnest(\(keys)::text[]) AS u(k) WHERE pg_try_advisory_xact_lock(hashtextextended('maintenance:' || u.k, 0))
                    """, on: connection, logger: logger
                ).map { try $0.columns.value("k", as: String.self) }
                guard !locked.isEmpty else { return (keys.count, 0) }
                // Checked again by a new statement, which sees every commit up to the lock.
                let gone = try await Self.rows(
                    """
                    DELETE FROM maintenances m WHERE m.maintenance_key = ANY(\(locked))
                        AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.maintenance_key = m.maintenance_key)
                    RETURNING m.maintenance_key
                    """, on: connection, logger: logger
                ).map { try $0.columns.value("maintenance_key", as: String.self) }
                guard !gone.isEmpty else { return (keys.count, 0) }
                // Due planned notices of these (rare: the scheduler fires them long before) may be
                // locked by a scheduler waiting for this maintenance's lock; PostgreSQL breaks that
                // deadlock and `transaction` runs the batch again.
                for table in ["maintenance_instances", "followups", "planned_notices"] {
                    try await Self.rows("DELETE FROM \(unescaped: table) WHERE maintenance_key = ANY(\(gone))", on: connection, logger: logger)
                }
                return (keys.count, gone.count)
            }
            total += removed
            // A full batch of which none could go (all busy): the rest waits for the next prune.
            if candidates < Self.pruneBatch || removed == 0 { return total }
            await Task.yield()
        }
    }

    /// Runs a `WITH gone AS (DELETE … LIMIT pruneBatch … RETURNING 1) SELECT COUNT(*) AS n FROM gone`
    /// in its own transaction until a batch comes back short.
    private func deleteInBatches(_ query: PostgresQuery) async throws -> Int {
        var total = 0
        while true {
            let removed = try await transaction { [self] connection -> Int in
                try await Self.fetchCount(query, on: connection, logger: logger)
            }
            total += removed
            if removed < Self.pruneBatch { return total }
            await Task.yield()
        }
    }
}
