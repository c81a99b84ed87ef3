import Foundation
import GRDB
import PatchbayCore

/// Dispatch: claims in lane order under a lease, completions that hand over the lane's next
/// delivery, the maintenance a send reads, and putting a delivery back.
extension SQLiteStore: DispatchStore {
    /// What a claim reads of a delivery and its event.
    static let claimColumns = """
        d.seq, d.id, d.target, d.target_kind, d.display_timezone, d.attempts, d.throttles,
        COALESCE(d.replayed_at, d.created_at) AS created_at, d.resources,
        e.id AS event_id, e.payload, e.type AS event_type, e.received_at
        """

    public func claimDue(now: Date, limit: Int, lease: Duration) async throws -> [ClaimedDelivery] {
        let nowSeconds = now.timeIntervalSince1970
        let leaseUntil = nowSeconds + lease.seconds
        let rows = try await committer.write { db -> [StoredClaim] in
            // Only the oldest unfinished delivery of each (maintenance, target) lane may go: the
            // others wait for it, so each target sees a maintenance's events in order. Due
            // deliveries are walked in due order (deliveries_due) and each is kept only if its
            // lane holds nothing unfinished before it (one probe of deliveries_unfinished_lane),
            // so a claim costs what it takes rather than a pass over every unfinished lane.
            let due = try Row.fetchAll(
                cached: db,
                sql: """
                    SELECT \(Self.claimColumns)
                    FROM deliveries d INDEXED BY deliveries_due
                    JOIN events e ON e.seq = d.event_seq
                    WHERE d.state IN ('pending', 'in_flight') AND d.next_attempt_at <= ?
                      AND NOT EXISTS (SELECT 1 FROM deliveries earlier INDEXED BY deliveries_unfinished_lane
                                      WHERE earlier.maintenance_key = d.maintenance_key AND earlier.target = d.target
                                        AND earlier.state IN ('pending', 'in_flight') AND earlier.seq < d.seq)
                    ORDER BY d.next_attempt_at, d.seq
                    LIMIT ?
                    """, arguments: [nowSeconds, limit])
            return try due.map { try Self.lease(db, row: $0, leaseUntil: leaseUntil, now: nowSeconds) }
        }
        return try await claims(from: rows, now: nowSeconds)
    }

    /// Leases one selected delivery, inside the write transaction.
    static func lease(_ db: Database, row: Row, leaseUntil: Double, now: Double, token: String = Identifier.make("lease")) throws -> StoredClaim {
        try db.executeCached(
            sql: """
                UPDATE deliveries SET state = 'in_flight', next_attempt_at = ?, lease_token = ?, attempts = attempts + 1, updated_at = ?
                WHERE seq = ?
                """, arguments: [leaseUntil, token, now, row["seq"] as Int64])
        return storedClaim(row, attempt: (row["attempts"] as Int) + 1, token: token)
    }

    /// A row of `claimColumns` as leased under `token`, its attempt numbered `attempt`.
    static func storedClaim(_ row: Row, attempt: Int, token: String) -> StoredClaim {
        StoredClaim(
            id: row["id"], eventID: row["event_id"], target: row["target"], targetKind: row["target_kind"],
            displayTimeZone: row["display_timezone"], attempt: attempt,
            createdAt: Date(timeIntervalSince1970: row["created_at"]), leaseToken: token, resources: row["resources"],
            throttles: row["throttles"], payload: row["payload"], eventType: row["event_type"],
            receivedAt: Date(timeIntervalSince1970: row["received_at"])
        )
    }

    /// The leased rows as claims (`ClaimTriage`); the undecodable ones are made dead here.
    func claims(from rows: [StoredClaim], now nowSeconds: Double) async throws -> [ClaimedDelivery] {
        let triage = ClaimTriage(rows)
        guard !triage.undecodable.isEmpty else { return triage.claims }
        for row in triage.undecodable {
            logger.error("stored event cannot be decoded; the delivery is dead", metadata: ["delivery.id": "\(row.deliveryID)"])
        }
        try await committer.write { db in
            for row in triage.undecodable {
                try db.executeCached(
                    sql: """
                        INSERT INTO attempts (delivery_id, number, started_at, latency_ms, status_code, outcome, reason, response_excerpt)
                        VALUES (?, ?, ?, 0, NULL, 'dead', ?, ?)
                        """, arguments: [row.deliveryID, row.attempt, nowSeconds, DeliveryReason.undecodable.rawValue, row.explanation])
                try db.executeCached(
                    sql: """
                        UPDATE deliveries SET state = 'dead', lease_token = NULL, next_attempt_at = ?, updated_at = ?, last_reason = ?
                        WHERE id = ?
                        """, arguments: [nowSeconds, nowSeconds, DeliveryReason.undecodable.rawValue, row.deliveryID])
            }
        }
        return triage.claims
    }

    public func complete(
        _ claim: ClaimedDelivery, attempt: AttemptRecord, transition: DeliveryTransition, followUp: FollowUpUpdate?,
        throttled: Bool, at now: Date, lease: Duration?
    ) async throws -> Completion {
        let maintenanceKey = claim.event.maintenanceKey.storageValue
        let nowSeconds = now.timeIntervalSince1970
        let (state, nextAttempt): (DeliveryState, Double) =
            switch transition {
            case .delivered: (.delivered, nowSeconds)
            case .retry(let at): (.pending, at.timeIntervalSince1970)
            case .dead: (.dead, nowSeconds)
            case .expired: (.expired, nowSeconds)
            case .superseded: (.superseded, nowSeconds)
            }
        let (stillOurs, extra, next) = try await committer.write { db -> (Bool, FollowUpState?, StoredClaim?) in
            // The same record again (a try whose commit went through, though its caller saw an
            // error): it is already there, and nothing is written twice.
            if try Bool.fetchOne(
                cached: db, sql: Self.attemptRecordedSQL,
                arguments: [attempt.deliveryID, attempt.number, attempt.startedAt.timeIntervalSince1970]) == true
            {
                guard let lease, transition.isFinal else { return (true, nil, nil) }
                return (true, nil, try Self.renewHandOver(db, by: attempt, claim: claim, leaseUntil: nowSeconds + lease.seconds, now: nowSeconds))
            }
            try db.executeCached(
                sql: """
                    INSERT INTO attempts (delivery_id, number, started_at, latency_ms, status_code, outcome, reason, response_excerpt)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    attempt.deliveryID, attempt.number, attempt.startedAt.timeIntervalSince1970, attempt.latencyMilliseconds,
                    attempt.statusCode, attempt.outcome, attempt.reason, attempt.responseExcerpt,
                ])
            try db.executeCached(
                sql: """
                    UPDATE deliveries SET state = ?, next_attempt_at = ?, lease_token = NULL, updated_at = ?, last_reason = ?,
                                          throttles = throttles + ?
                    WHERE id = ? AND lease_token = ? AND state = 'in_flight'
                    """,
                arguments: [
                    state.rawValue, nextAttempt, nowSeconds, attempt.reason,
                    throttled ? 1 : 0, claim.id, claim.leaseToken,
                ])
            let stillOurs = db.changesCount == 1
            var extra: FollowUpState?
            if let followUp {
                let stored = try String.fetchOne(
                    db, sql: "SELECT state FROM followups WHERE maintenance_key = ? AND target = ?",
                    arguments: [maintenanceKey, claim.target])
                switch FollowUpResolution.of(followUp, stored: try stored.map(StoredJSON.followUp), leaseHeld: stillOurs) {
                case .store(let state):
                    try db.executeCached(
                        sql: """
                            INSERT INTO followups (maintenance_key, target, state, updated_at) VALUES (?, ?, ?, ?)
                            ON CONFLICT (maintenance_key, target) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at
                            """, arguments: [maintenanceKey, claim.target, try StoredJSON.encode(state), nowSeconds])
                case .extra(let state):
                    extra = state
                case .nothing:
                    break
                }
            }
            guard stillOurs else { return (false, extra, nil) }
            if case .retry(let at) = transition { try Self.holdLaneBehind(db, deliveryID: claim.id, until: at.timeIntervalSince1970) }
            guard let lease, transition.isFinal else { return (true, extra, nil) }
            // The lane's new head, if it is due: the same worker goes on with it.
            guard
                let head = try Row.fetchOne(
                    cached: db,
                    sql: """
                        SELECT \(Self.claimColumns), d.state, d.next_attempt_at
                        FROM deliveries d INDEXED BY deliveries_unfinished_lane
                        JOIN events e ON e.seq = d.event_seq
                        WHERE d.maintenance_key = (SELECT maintenance_key FROM deliveries WHERE id = ?) AND d.target = ?
                          AND d.state IN ('pending', 'in_flight')
                        ORDER BY d.seq LIMIT 1
                        """, arguments: [claim.id, claim.target]),
                (head["state"] as String) == DeliveryState.pending.rawValue, (head["next_attempt_at"] as Double) <= nowSeconds
            else { return (true, extra, nil) }
            return (true, extra, try Self.lease(db, row: head, leaseUntil: nowSeconds + lease.seconds, now: nowSeconds, token: attempt.handOverToken))
        }
        guard let next else { return Completion(stillOurs: stillOurs, extraObject: extra) }
        return Completion(stillOurs: stillOurs, next: try await claims(from: [next], now: nowSeconds).first, extraObject: extra)
    }

    /// The lane's next delivery as the first commit of this same record handed it over (under
    /// the record's `handOverToken`, which only this record's tries know), leased again from now
    /// (never shortened); nil if that commit handed nothing over or the lease has since been lost.
    static func renewHandOver(
        _ db: Database, by attempt: AttemptRecord, claim: ClaimedDelivery, leaseUntil: Double, now: Double
    ) throws
        -> StoredClaim?
    {
        guard
            let row = try Row.fetchOne(
                cached: db,
                sql: """
                    SELECT \(claimColumns)
                    FROM deliveries d INDEXED BY deliveries_unfinished_lane
                    JOIN events e ON e.seq = d.event_seq
                    WHERE d.maintenance_key = (SELECT maintenance_key FROM deliveries WHERE id = ?) AND d.target = ?
                      AND d.state IN ('pending', 'in_flight') AND d.state = 'in_flight' AND d.lease_token = ?
                    LIMIT 1
                    """, arguments: [claim.id, claim.target, attempt.handOverToken])
        else { return nil }
        try db.executeCached(
            sql: "UPDATE deliveries SET next_attempt_at = MAX(next_attempt_at, ?), updated_at = ? WHERE seq = ?",
            arguments: [leaseUntil, now, row["seq"] as Int64])
        return storedClaim(row, attempt: row["attempts"], token: attempt.handOverToken)
    }

    /// Whether an attempt is already recorded. The index is named: statistics from an `ANALYZE`
    /// run while `attempts` was nearly empty (run.py's backlog rows run one; an operator may) made
    /// SQLite scan the whole table instead, once per record, and a drain of 100k due fell from
    /// ~5,600/s to ~2,000/s as the table grew.
    static let attemptRecordedSQL = """
        SELECT EXISTS (SELECT 1 FROM attempts INDEXED BY attempts_delivery WHERE delivery_id = ? AND number = ? AND started_at = ?)
        """

    public func maintenanceContext(
        for event: PatchEvent, target: String, depth: MaintenanceSnapshot.Depth
    ) async throws -> (FollowUpState?, MaintenanceSnapshot) {
        let key = event.maintenanceKey.storageValue
        let (states, snapshot) = try await pool.read { db -> ([(String, String)], MaintenanceSnapshot) in
            let rows = try Row.fetchAll(cached: db, sql: "SELECT target, state FROM followups WHERE maintenance_key = ?", arguments: [key])
            return (rows.map { ($0["target"], $0["state"]) }, try Self.snapshot(db, key: key, depth: depth))
        }
        return try FollowUpState.decode(states, for: target, into: snapshot)
    }

    /// Called by `serve` at start-up, after `lockForServing`: a SQLite file has one server, so every lease still held was
    /// left by a process that died (`kill -9`, power loss). Its deliveries are due again at once,
    /// instead of waiting out the lease while their maintenance's later events queue behind them.
    /// Returns how many were released.
    public func releaseLeasesOfPreviousProcess(at now: Date) async throws -> Int {
        try await committer.write { db in
            try db.executeCached(
                sql: """
                    UPDATE deliveries SET state = 'pending', next_attempt_at = ?, lease_token = NULL, updated_at = ?
                    WHERE state = 'in_flight'
                    """, arguments: [now.timeIntervalSince1970, now.timeIntervalSince1970])
            return db.changesCount
        }
    }

    public func release(_ claim: ClaimedDelivery, until: Date, at now: Date) async throws -> Bool {
        try await committer.write { db in
            try db.executeCached(
                sql: """
                    UPDATE deliveries SET state = 'pending', next_attempt_at = ?, lease_token = NULL, attempts = attempts - 1, updated_at = ?
                    WHERE id = ? AND lease_token = ? AND state = 'in_flight'
                    """, arguments: [until.timeIntervalSince1970, now.timeIntervalSince1970, claim.id, claim.leaseToken])
            guard db.changesCount == 1 else { return false }
            try Self.holdLaneBehind(db, deliveryID: claim.id, until: until.timeIntervalSince1970)
            return true
        }
    }

    public func laneHasLaterDelivery(than claim: ClaimedDelivery) async throws -> Bool {
        try await pool.read { db in
            try Bool.fetchOne(
                cached: db,
                sql: """
                    SELECT EXISTS (SELECT 1 FROM deliveries head
                                   JOIN deliveries later INDEXED BY deliveries_unfinished_lane
                                     ON later.maintenance_key = head.maintenance_key AND later.target = head.target
                                    AND later.state IN ('pending', 'in_flight') AND later.seq > head.seq
                                   WHERE head.id = ?)
                    """, arguments: [claim.id]) ?? false
        }
    }

    /// A lane's head put back until `until` (a retry, a vendor's pause) holds the rest of its lane
    /// until then as well. They could not go before it anyway; left due, every claim walked past
    /// them in the due index: 100k paused lanes of two took another target's drain from about
    /// 6,500/s to 136/s. Only ever moved later, so a summary waiting out its groupWait keeps it.
    static func holdLaneBehind(_ db: Database, deliveryID: String, until: Double) throws {
        try db.executeCached(
            sql: """
                UPDATE deliveries SET next_attempt_at = ?
                WHERE seq IN (SELECT later.seq FROM deliveries head
                              JOIN deliveries later INDEXED BY deliveries_unfinished_lane
                                ON later.maintenance_key = head.maintenance_key AND later.target = head.target
                               AND later.state IN ('pending', 'in_flight') AND later.seq > head.seq
                              WHERE head.id = ? AND later.state = 'pending' AND later.next_attempt_at < ?)
                """, arguments: [until, deliveryID, until])
    }
}
