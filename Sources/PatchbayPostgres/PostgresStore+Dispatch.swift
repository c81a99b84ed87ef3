import Foundation
import Logging
import PatchbayCore
import PostgresNIO

/// The dispatcher's side of the queue on PostgreSQL: SKIP LOCKED claims in lane order under a
/// lease, completions that hand over the lane's next delivery, and putting a delivery back.
///
/// Locks, always taken in this order so concurrent transactions never wait on each other in a
/// circle: the idempotency key's advisory lock, then the maintenance's (or relay lane's) advisory
/// lock, then that maintenance's `lanes` rows. Claims lock only delivery rows, with SKIP LOCKED.
extension PostgresStore: DispatchStore {
    public func claimDue(now: Date, limit: Int, lease: Duration) async throws -> [ClaimedDelivery] {
        guard limit > 0 else { return [] }
        let leaseUntil = now.addingTimeInterval(lease.seconds)
        let token = Identifier.make("lease")
        let rows = try await statement { [self] connection -> [PostgresRow] in
            // Only the head of each (maintenance, target) lane may go: the oldest unfinished
            // delivery, pending or in flight. Due deliveries are walked in due order and each is
            // kept only if its lane holds nothing unfinished before it (one index probe), so a
            // claim costs what it takes, not a pass over every unfinished lane. SKIP LOCKED passes
            // over heads another instance is claiming right now; the state test is checked again
            // on the locked row, so a head another instance just leased is never taken twice. A
            // lease has run out only when the caller's clock and the database's both say so: an
            // instance whose clock runs ahead never takes a lease another instance still holds.
            // The statement is prepared, and its generic plan cannot know the LIMIT: `= ANY`
            // keeps the leased rows found by their key, where a plain join hashed a scan of
            // the whole table.
            try await Self.rows(
                """
                WITH picked AS (
                    SELECT d.seq, d.next_attempt_at AS due_at FROM deliveries d
                    WHERE d.state IN ('pending', 'in_flight') AND d.next_attempt_at <= \(now)
                      AND (d.state = 'pending' OR d.next_attempt_at <= statement_timestamp())
                      AND NOT EXISTS (SELECT 1 FROM deliveries earlier
                                      WHERE earlier.maintenance_key = d.maintenance_key AND earlier.target = d.target
                                        AND earlier.state IN ('pending', 'in_flight') AND earlier.lane_seq < d.lane_seq)
                    ORDER BY d.next_attempt_at, d.seq
                    LIMIT \(limit)
                    FOR UPDATE OF d SKIP LOCKED
                )
                UPDATE deliveries d SET state = 'in_flight', next_attempt_at = \(leaseUntil), lease_token = \(token),
                                        leased_by = \(instanceID), attempts = d.attempts + 1, updated_at = \(now)
                FROM picked, events e
                WHERE d.seq = ANY (ARRAY(SELECT seq FROM picked)) AND d.seq = picked.seq AND e.seq = d.event_seq
                RETURNING \(unescaped: Self.claimReturning), picked.due_at
                """, preparedAs: Prepared.Claim.self, on: connection, logger: logger)
        }
        return try await claims(from: rows, token: token, now: now)
    }

    /// What a claim returns of a leased delivery and its event (`due_at`: when it was due).
    static let claimReturning = """
        d.seq, d.id, d.target, d.target_kind, d.display_timezone, d.attempts, d.throttles,
        COALESCE(d.replayed_at, d.created_at) AS created_at, d.resources,
        e.id AS event_id, e.payload, e.type AS event_type, e.received_at
        """

    /// Leased rows as claims (`ClaimTriage`), oldest due first; the undecodable ones are made dead here.
    func claims(from rows: [PostgresRow], token: String, now: Date) async throws -> [ClaimedDelivery] {
        var stored: [(dueAt: Date, seq: Int64, claim: StoredClaim)] = []
        var unreadable: [ClaimTriage.Undecodable] = []
        for row in rows {
            let columns = row.columns
            let id: String = try columns.value("id")
            let attempt: Int = try columns.value("attempts")
            do {
                stored.append(
                    (
                        try columns.value("due_at"), try columns.value("seq"),
                        StoredClaim(
                            id: id, eventID: try columns.value("event_id"), target: try columns.value("target"),
                            targetKind: try columns.value("target_kind"), displayTimeZone: try columns.value("display_timezone"),
                            attempt: attempt, createdAt: try columns.value("created_at"), leaseToken: token,
                            resources: try columns.value("resources", as: String.self), throttles: try columns.value("throttles"),
                            payload: try columns.value("payload"), eventType: try columns.value("event_type"),
                            receivedAt: try columns.value("received_at")
                        )
                    ))
            } catch {
                unreadable.append(ClaimTriage.Undecodable(deliveryID: id, attempt: attempt, error: error))
            }
        }
        // RETURNING has no order: oldest due first, as SQLite hands them out.
        stored.sort { ($0.dueAt, $0.seq) < ($1.dueAt, $1.seq) }
        var triage = ClaimTriage(stored.map(\.claim))
        triage.undecodable += unreadable
        guard !triage.undecodable.isEmpty else { return triage.claims }
        let undecodable = triage.undecodable
        for row in undecodable {
            logger.error("stored event cannot be decoded; the delivery is dead", metadata: ["delivery.id": "\(row.deliveryID)"])
        }
        try await transaction { [self] connection in
            for row in undecodable {
                try await Self.rows(
                    """
                    INSERT INTO attempts (delivery_id, number, started_at, latency_ms, status_code, outcome, reason, response_excerpt)
                    VALUES (\(row.deliveryID), \(row.attempt), \(now), 0, NULL, 'dead', \(DeliveryReason.undecodable.rawValue),
                            \(row.explanation))
                    """, on: connection, logger: logger)
                try await Self.rows(
                    """
                    UPDATE deliveries SET state = 'dead', lease_token = NULL, leased_by = NULL, next_attempt_at = \(now),
                                          updated_at = \(now), last_reason = \(DeliveryReason.undecodable.rawValue)
                    WHERE id = \(row.deliveryID)
                    """, on: connection, logger: logger)
            }
        }
        return triage.claims
    }

    public func complete(
        _ claim: ClaimedDelivery, attempt: AttemptRecord, transition: DeliveryTransition, followUp: FollowUpUpdate?,
        throttled: Bool, at now: Date, lease: Duration?
    ) async throws -> Completion {
        let maintenanceKey = claim.event.maintenanceKey.storageValue
        let (state, nextAttempt): (DeliveryState, Date) =
            switch transition {
            case .delivered: (.delivered, now)
            case .retry(let at): (.pending, at)
            case .dead: (.dead, now)
            case .expired: (.expired, now)
            case .superseded: (.superseded, now)
            }
        let token = attempt.handOverToken
        let record = Self.completionStatement(
            claim, attempt: attempt, state: state, nextAttempt: nextAttempt, throttled: throttled, now: now,
            holdLaneUntil: { if case .retry(let at) = transition { at } else { nil } }(),
            handOver: transition.isFinal ? lease.map { (token, now.addingTimeInterval($0.seconds), instanceID) } : nil)
        let (outcome, extra): (CompletionRow, FollowUpState?)
        if let followUp {
            // The follow-up's state is settled under its own lock, in the same transaction as the
            // record, so a send's object and its delivery's result commit together.
            (outcome, extra) = try await transaction { [self] connection in
                let outcome = try CompletionRow(try await Self.rows(record, preparedAs: Prepared.Completion.self, on: connection, logger: logger))
                guard outcome.inserted else { return (outcome, nil) }
                let extra = try await settleFollowUp(
                    followUp, maintenanceKey: maintenanceKey, target: claim.target, leaseHeld: outcome.stillOurs,
                    now: now, on: connection)
                return (outcome, extra)
            }
        } else {
            // One statement is its own transaction: one round trip records the send.
            outcome = try await statement { [self] connection in
                try CompletionRow(try await Self.rows(record, preparedAs: Prepared.Completion.self, on: connection, logger: logger))
            }
            extra = nil
        }
        // After the commit: a wake-up that cannot be sent costs the others a poll, and must not
        // make a committed record look failed (it would be retried and logged as lost).
        if outcome.stillOurs, transition.isFinal, lease == nil { try? await statement { [self] in try await announceWork(on: $0) } }
        guard let next = outcome.next else { return Completion(stillOurs: outcome.stillOurs, extraObject: extra) }
        return Completion(stillOurs: outcome.stillOurs, next: try await claims(from: [next], token: token, now: now).first, extraObject: extra)
    }

    /// What the completion statement answered: whether its attempt was new (the same record
    /// again, a try whose commit went through while its reply was lost, inserts nothing and
    /// counts as ours), whether the lease was still ours, and the lane's next delivery if it was
    /// handed to this worker.
    struct CompletionRow {
        let inserted: Bool
        let stillOurs: Bool
        let next: PostgresRow?

        init(_ rows: [PostgresRow]) throws {
            guard let row = rows.first else { throw StoreError.permanent("the completion returned no row") }
            let columns = row.columns
            let insertedCount: Int = try columns.value("inserted")
            let updatedCount: Int = try columns.value("updated")
            let handedID: String? = try columns.value("id")
            inserted = insertedCount > 0
            stillOurs = !inserted || updatedCount > 0
            next = handedID == nil ? nil : row
        }
    }

    /// A send's record in one statement: the attempt, the delivery's new state, and either the
    /// lane held behind a retry or the lane's next head leased to this worker. Each statement is
    /// a round trip, and round trips are what PostgreSQL delivery spends its time on; writes in a
    /// WITH run to completion whether or not the final SELECT reads them.
    ///
    /// All parts see the database as it was when the statement began, so the delivery just
    /// finished still looks in flight to `head` and is left out by its `seq`. No other instance
    /// can take the next head meanwhile: until this statement commits, the finished delivery still
    /// stands before it in its lane.
    static func completionStatement(
        _ claim: ClaimedDelivery, attempt: AttemptRecord, state: DeliveryState, nextAttempt: Date, throttled: Bool,
        now: Date, holdLaneUntil: Date?, handOver: (token: String, leaseUntil: Date, instance: String)?
    ) -> PostgresQuery {
        // One text whatever the transition (parameters switch `held` and `head` off), so the
        // server can plan it once per connection.
        let handsOver = handOver != nil
        return """
            WITH attempt AS (
                INSERT INTO attempts (delivery_id, number, started_at, latency_ms, status_code, outcome, reason, response_excerpt)
                SELECT \(attempt.deliveryID), \(attempt.number), \(attempt.startedAt), \(attempt.latencyMilliseconds),
                       \(attempt.statusCode)::int8, \(attempt.outcome), \(attempt.reason), \(attempt.responseExcerpt)::text
                WHERE NOT EXISTS (
                    SELECT 1 FROM attempts WHERE delivery_id = \(attempt.deliveryID) AND number = \(attempt.number)
                                             AND started_at = \(attempt.startedAt))
                RETURNING 1
            ), updated AS (
                UPDATE deliveries SET state = \(state.rawValue), next_attempt_at = \(nextAttempt), lease_token = NULL, leased_by = NULL,
                                      updated_at = \(now), last_reason = \(attempt.reason), throttles = throttles + \(throttled ? 1 : 0)
                WHERE id = \(claim.id) AND lease_token = \(claim.leaseToken) AND state = 'in_flight'
                  AND EXISTS (SELECT 1 FROM attempt)
                RETURNING seq, maintenance_key, target, lane_seq
            ), held AS (
                -- A head put back until then (a retry) holds the rest of its lane until the same
                -- time: they could not go before it anyway, and left due, every claim walked past
                -- them. Only ever moved later, so a summary waiting out its groupWait keeps it.
                UPDATE deliveries later SET next_attempt_at = \(holdLaneUntil)::timestamptz
                FROM updated u
                WHERE \(holdLaneUntil)::timestamptz IS NOT NULL AND later.maintenance_key = u.maintenance_key AND later.target = u.target
                  AND later.state = 'pending' AND later.lane_seq > u.lane_seq AND later.next_attempt_at < \(holdLaneUntil)::timestamptz
            ), head AS (
                -- LATERAL, so the lane is read through its index from the front, whatever the
                -- planner guesses of `updated`: joined plainly, a generic plan hashed every
                -- unfinished delivery of the table (3.6 ms a record in a lane of 6,000).
                SELECT h.seq, h.state, h.due_at FROM updated u
                CROSS JOIN LATERAL (
                    SELECT d.seq, d.state, d.next_attempt_at AS due_at FROM deliveries d
                    WHERE d.maintenance_key = u.maintenance_key AND d.target = u.target
                      AND d.state IN ('pending', 'in_flight') AND d.seq <> u.seq
                    ORDER BY d.lane_seq LIMIT 1
                    FOR UPDATE OF d
                ) AS h
                WHERE \(handsOver)::boolean
            ), handed AS (
                UPDATE deliveries d SET state = 'in_flight', next_attempt_at = \(handOver?.leaseUntil ?? now), lease_token = \(handOver?.token)::text,
                                        leased_by = \(handOver?.instance)::text, attempts = d.attempts + 1, updated_at = \(now)
                FROM head, events e
                WHERE d.seq = head.seq AND head.state = 'pending' AND head.due_at <= \(now) AND e.seq = d.event_seq
                RETURNING \(unescaped: claimReturning), head.due_at
            ), rehanded AS (
                -- The same record tried again after its commit went through unseen (the reply
                -- lost with the connection; the attempt is already there): that commit handed
                -- the lane's next delivery over under this record's token, which only this
                -- record's tries know. It goes to this try with a lease from now, rather than
                -- waiting out a lease nobody holds; never shortened, as a stale try of the same
                -- record (its connection dead, the statement still running) may come last.
                UPDATE deliveries d SET next_attempt_at = GREATEST(d.next_attempt_at, \(handOver?.leaseUntil ?? now)), updated_at = \(now)
                FROM events e
                WHERE \(handsOver)::boolean AND NOT EXISTS (SELECT 1 FROM attempt)
                  AND d.maintenance_key = (SELECT maintenance_key FROM deliveries WHERE id = \(claim.id)) AND d.target = \(claim.target)
                  AND d.state = 'in_flight' AND d.lease_token = \(handOver?.token)::text AND e.seq = d.event_seq
                RETURNING \(unescaped: claimReturning), d.updated_at AS due_at
            )
            SELECT (SELECT count(*) FROM attempt) AS inserted, (SELECT count(*) FROM updated) AS updated, next.*
            FROM (SELECT 1) AS one LEFT JOIN (SELECT * FROM handed UNION ALL SELECT * FROM rehanded) AS next ON true
            """
    }

    /// Writes (or not) a send's follow-up state as `FollowUpResolution` decides, under a lock of
    /// its own per (maintenance, target): two workers whose leases overlapped (a stall, a lost
    /// lease) settle one after the other, so the first object recorded wins. No other code takes
    /// this lock, so it cannot wait in a circle with intake's locks. Returns an extra object.
    func settleFollowUp(
        _ update: FollowUpUpdate, maintenanceKey: String, target: String, leaseHeld: Bool, now: Date,
        on connection: PostgresConnection
    ) async throws -> FollowUpState? {
        try await Self.lock("followup:" + maintenanceKey + "\u{1F}" + target, on: connection, logger: logger)
        let stored = try await Self.rows(
            "SELECT state FROM followups WHERE maintenance_key = \(maintenanceKey) AND target = \(target)",
            on: connection, logger: logger
        ).first.map { try StoredJSON.followUp(try $0.decode(String.self)) }
        switch FollowUpResolution.of(update, stored: stored, leaseHeld: leaseHeld) {
        case .store(let state):
            try await Self.rows(
                """
                INSERT INTO followups (maintenance_key, target, state, updated_at) VALUES (\(maintenanceKey), \(target), \(try StoredJSON.encode(state)), \(now))
                ON CONFLICT (maintenance_key, target) DO UPDATE SET state = EXCLUDED.state, updated_at = EXCLUDED.updated_at
                """, on: connection, logger: logger)
            return nil
        case .extra(let state):
            return state
        case .nothing:
            return nil
        }
    }

    public func maintenanceContext(
        for event: PatchEvent, target: String, depth: MaintenanceSnapshot.Depth
    ) async throws -> (FollowUpState?, MaintenanceSnapshot) {
        let key = event.maintenanceKey.storageValue
        let (states, snapshot) = try await read { [self] connection -> ([(String, String)], MaintenanceSnapshot) in
            let states = try await Self.rows(
                "SELECT target, state FROM followups WHERE maintenance_key = \(key)",
                on: connection, logger: logger
            ).map { try $0.decode((String, String).self) }
            return (states, try await Self.snapshot(on: connection, logger: logger, key: key, depth: depth))
        }
        return try FollowUpState.decode(states, for: target, into: snapshot)
    }

    public func release(_ claim: ClaimedDelivery, until: Date, at now: Date) async throws -> Bool {
        // One statement: the delivery put back, and the rest of its lane held until then.
        try await statement { [self] connection in
            try await Self.rows(
                """
                WITH released AS (
                    UPDATE deliveries SET state = 'pending', next_attempt_at = \(until), lease_token = NULL, leased_by = NULL,
                                          attempts = attempts - 1, updated_at = \(now)
                    WHERE id = \(claim.id) AND lease_token = \(claim.leaseToken) AND state = 'in_flight'
                    RETURNING maintenance_key, target, lane_seq
                ), held AS (
                    UPDATE deliveries later SET next_attempt_at = \(until)
                    FROM released r
                    WHERE later.maintenance_key = r.maintenance_key AND later.target = r.target
                      AND later.state = 'pending' AND later.lane_seq > r.lane_seq AND later.next_attempt_at < \(until)
                )
                SELECT 1 FROM released
                """, on: connection, logger: logger
            ).count == 1
        }
    }

    public func laneHasLaterDelivery(than claim: ClaimedDelivery) async throws -> Bool {
        try await statement { [self] connection in
            !(try await Self.rows(
                """
                SELECT 1 FROM deliveries head
                JOIN deliveries later ON later.maintenance_key = head.maintenance_key AND later.target = head.target
                 AND later.state IN ('pending', 'in_flight') AND later.lane_seq > head.lane_seq
                WHERE head.id = \(claim.id)
                LIMIT 1
                """, on: connection, logger: logger
            ).isEmpty)
        }
    }
}
