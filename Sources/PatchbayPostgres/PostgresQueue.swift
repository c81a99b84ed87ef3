import Foundation
import Logging
import PatchbayCore
import PostgresNIO

/// Intake and the dispatcher's side of the queue on PostgreSQL.
///
/// Locks, always taken in this order so concurrent transactions never wait on each other in a
/// circle: the idempotency key's advisory lock, then the maintenance's (or relay lane's) advisory
/// lock, then that maintenance's `lanes` rows. Claims lock only delivery rows, with SKIP LOCKED.
extension PostgresStore: IntakeStore, DispatchStore {
    // MARK: Intake

    public func accept(_ submission: EventSubmission) async throws -> AcceptResult {
        let encoded = try JSONEncoder.patchbay().encode(submission.event)
        let payload = String(decoding: encoded, as: UTF8.self)
        let result = try await intakeCommitter.write(order: submission.event.maintenanceKey.storageValue, store: self) {
            [self] connection -> AcceptResult in
            if let key = submission.idempotencyKey {
                // A repeat sent to another instance at the same moment waits here for the first to
                // commit, then finds its answer: one event per key, cluster-wide.
                try await Self.lock("event-key:" + key, on: connection, logger: logger)
                if let earlier = try await Self.earlierAnswer(on: connection, logger: logger, key: key, digest: submission.bodyDigest) {
                    return earlier
                }
            }
            let maintenanceKey = submission.event.maintenanceKey.storageValue
            // One writer per maintenance at a time: its plan and its lanes change together.
            try await Self.lock("maintenance:" + maintenanceKey, on: connection, logger: logger)
            let existing =
                submission.planning == nil ? nil : try await Self.maintenanceRecord(on: connection, logger: logger, key: maintenanceKey)
            let step = try AcceptStep(submission, payload: payload, existing: existing)
            if let change = step.change { try await Self.applyChange(on: connection, logger: logger, change, now: submission.receivedAt) }
            try await insertEvent(
                on: connection, id: submission.eventID, idempotencyKey: submission.idempotencyKey,
                digest: submission.bodyDigest, event: step.event, payload: step.payload,
                deliveries: submission.deliveries, receivedAt: submission.receivedAt)
            return step.accepted
        }
        return result
    }

    /// A transaction-level advisory lock on `name` (64-bit hash; a collision only makes two
    /// names wait for each other).
    static func lock(_ name: String, on connection: PostgresConnection, logger: Logger) async throws {
        try await rows("SELECT pg_advisory_xact_lock(hashtextextended(\(name), 0))", on: connection, logger: logger)
    }

    static func earlierAnswer(on connection: PostgresConnection, logger: Logger, key: String, digest: String) async throws -> AcceptResult? {
        guard
            let row = try await rows(
                "SELECT id, body_sha256, delivery_count FROM events WHERE idempotency_key = \(key)",
                on: connection, logger: logger
            ).first?.columns
        else { return nil }
        let existing = AcceptedEvent(id: try row.value("id"), deliveries: try row.value("delivery_count", as: Int.self))
        let stored: String = try row.value("body_sha256")
        return stored == digest ? .replayed(existing) : .conflict(existingEventID: existing.id)
    }

    /// Writes an event, its deliveries (each taking the next place in its lane) and its
    /// instance's stage. The caller holds the maintenance's lock. Shared by intake and the scheduler.
    func insertEvent(
        on connection: PostgresConnection, id: String, idempotencyKey: String?, digest: String, event: PatchEvent,
        payload: String, deliveries: [DeliveryPlan], receivedAt: Date
    ) async throws {
        let maintenanceKey = event.maintenanceKey.storageValue
        let eventSeq = try await insertEventRow(
            on: connection, id: id, idempotencyKey: idempotencyKey, digest: digest,
            type: event.type.rawValue, app: event.app, environment: event.environment,
            lane: maintenanceKey, payload: payload, deliveries: deliveries.count, receivedAt: receivedAt)
        for plan in deliveries.map({ $0.settled(for: event) }) {
            var due = receivedAt
            if let wait = plan.summaryWait {
                // A summary of this (maintenance, target, stage) still waiting takes this event in.
                // The maintenance's advisory lock, held by this transaction, keeps two intakes
                // from both starting one. The row lock keeps a dispatcher from claiming the
                // summary until this event is committed (its claim skips locked rows), so the
                // summary's snapshot always holds this server; a summary claimed first is no
                // longer pending when the lock is granted, and this event starts the next one.
                let waiting = try await Self.rows(
                    """
                    SELECT 1 FROM deliveries d JOIN events e ON e.seq = d.event_seq
                    WHERE d.maintenance_key = \(maintenanceKey) AND d.target = \(plan.lane.storedName) AND d.state = 'pending'
                      AND e.type = \(event.type.rawValue)
                    LIMIT 1
                    FOR UPDATE OF d
                    """, on: connection, logger: logger)
                if !waiting.isEmpty { continue }
                due = receivedAt.addingTimeInterval(wait)
            }
            try await insertDelivery(on: connection, eventSeq: eventSeq, plan: plan, lane: maintenanceKey, at: receivedAt, due: due)
        }
        if let instance = event.instance {
            // Keep each instance's furthest stage: a late `started` must not hide its `completed`.
            try await Self.rows(
                """
                INSERT INTO maintenance_instances AS m (maintenance_key, instance_id, instance_name, last_type, stage_rank, packages, updated_at)
                VALUES (\(maintenanceKey), \(instance.id), \(instance.name), \(event.type.rawValue), \(event.type.stageRank),
                        \(StoredJSON.encode(event.packages)), \(receivedAt))
                ON CONFLICT (maintenance_key, instance_id) DO UPDATE SET
                    instance_name = COALESCE(EXCLUDED.instance_name, m.instance_name),
                    last_type = EXCLUDED.last_type,
                    packages = CASE WHEN EXCLUDED.packages = '[]' THEN m.packages ELSE EXCLUDED.packages END,
                    stage_rank = EXCLUDED.stage_rank,
                    updated_at = EXCLUDED.updated_at
                WHERE EXCLUDED.stage_rank >= m.stage_rank
                """, on: connection, logger: logger)
        }
        if !deliveries.isEmpty { try await announceWork(on: connection) }
    }

    private func insertEventRow(
        on connection: PostgresConnection, id: String, idempotencyKey: String?, digest: String, type: String,
        app: String, environment: String, lane: String, payload: String, deliveries: Int,
        receivedAt: Date
    ) async throws -> Int64 {
        let rows = try await Self.rows(
            """
            INSERT INTO events (id, idempotency_key, body_sha256, type, app, environment, maintenance_key, payload, delivery_count, received_at)
            VALUES (\(id), \(idempotencyKey), \(digest), \(type), \(app), \(environment), \(lane), \(payload), \(deliveries), \(receivedAt))
            RETURNING seq
            """, on: connection, logger: logger)
        guard let seq = try rows.first?.decode(Int64.self) else { throw StoreError.permanent("the event insert returned no row") }
        return seq
    }

    /// The lane's row is locked until commit, so a lane's sequence numbers follow commit order even
    /// when two instances add to it at once (a bigserial alone would not: a number taken first
    /// can commit last, and a follower would be sent before it).
    private func insertDelivery(
        on connection: PostgresConnection, eventSeq: Int64, plan: DeliveryPlan, lane: String, at time: Date,
        due: Date? = nil
    ) async throws {
        try await Self.rows(
            """
            WITH lane AS (
                INSERT INTO lanes AS l (maintenance_key, target, last_seq) VALUES (\(lane), \(plan.lane.storedName), 1)
                ON CONFLICT (maintenance_key, target) DO UPDATE SET last_seq = l.last_seq + 1
                RETURNING last_seq
            )
            INSERT INTO deliveries (id, event_seq, target, target_kind, maintenance_key, lane_seq, display_timezone, state,
                                    next_attempt_at, created_at, updated_at, resources)
            SELECT \(Identifier.make("dlv")), \(eventSeq), \(plan.lane.storedName), \(plan.targetKind), \(lane), lane.last_seq,
                   \(plan.displayTimeZone), 'pending', \(due ?? time), \(time), \(time), \(StoredJSON.encode(plan.resources))
            FROM lane
            """, on: connection, logger: logger)
    }

    public func acceptRelayed(
        _ message: RelayedMessage, eventID: String, idempotencyKey: String, receivedAt: Date,
        deliveries: [DeliveryPlan]
    ) async throws -> AcceptResult {
        let payload = try message.storedPayload()
        let digest = message.body.sha256Hex
        let lane = message.laneKey
        return try await intakeCommitter.write(order: lane, store: self) { [self] connection -> AcceptResult in
            try await Self.lock("event-key:" + idempotencyKey, on: connection, logger: logger)
            if let earlier = try await Self.earlierAnswer(on: connection, logger: logger, key: idempotencyKey, digest: digest) { return earlier }
            try await Self.lock("maintenance:" + lane, on: connection, logger: logger)
            let eventSeq = try await insertEventRow(
                on: connection, id: eventID, idempotencyKey: idempotencyKey, digest: digest,
                type: RelayedMessage.eventType, app: message.source, environment: "relay", lane: lane,
                payload: payload, deliveries: deliveries.count, receivedAt: receivedAt)
            for plan in deliveries {
                try await insertDelivery(
                    on: connection, eventSeq: eventSeq,
                    plan: DeliveryPlan(target: plan.target, targetKind: plan.targetKind, displayTimeZone: "UTC"),
                    lane: lane, at: receivedAt)
            }
            if !deliveries.isEmpty { try await announceWork(on: connection) }
            return .accepted(AcceptedEvent(id: eventID, deliveries: deliveries.count))
        }
    }

    // MARK: Dispatch

    public func claimDue(now: Date, limit: Int, lease: Duration) async throws -> [ClaimedDelivery] {
        guard limit > 0 else { return [] }
        let leaseUntil = now.addingTimeInterval(lease.seconds)
        let token = Identifier.make("lease")
        let rows = try await transaction { [self] connection -> [PostgresRow] in
            // Only the head of each (maintenance, target) lane may go: the oldest unfinished
            // delivery, pending or in flight. Due deliveries are walked in due order and each is
            // kept only if its lane holds nothing unfinished before it (one index probe), so a
            // claim costs what it takes, not a pass over every unfinished lane. SKIP LOCKED passes
            // over heads another instance is claiming right now; the state test is checked again
            // on the locked row, so a head another instance just leased is never taken twice. A
            // lease has run out only when the caller's clock and the database's both say so: an
            // instance whose clock runs ahead never takes a lease another instance still holds.
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
                WHERE d.seq = picked.seq AND e.seq = d.event_seq
                RETURNING \(unescaped: Self.claimReturning), picked.due_at
                """, on: connection, logger: logger)
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
            }
        let token = Identifier.make("lease")
        let (stillOurs, extra, next) = try await transaction { [self] connection -> (Bool, FollowUpState?, [PostgresRow]) in
            // The attempt and the delivery's new state in one statement: each statement is a round
            // trip, and round trips are what PostgreSQL delivery spends its time on. A WITH that
            // writes runs to completion even though the UPDATE does not read it.
            let updated = try await Self.rows(
                """
                WITH attempt AS (
                    INSERT INTO attempts (delivery_id, number, started_at, latency_ms, status_code, outcome, reason, response_excerpt)
                    VALUES (\(attempt.deliveryID), \(attempt.number), \(attempt.startedAt), \(attempt.latencyMilliseconds),
                            \(attempt.statusCode), \(attempt.outcome), \(attempt.reason), \(attempt.responseExcerpt))
                )
                UPDATE deliveries SET state = \(state.rawValue), next_attempt_at = \(nextAttempt), lease_token = NULL, leased_by = NULL,
                                      updated_at = \(now), last_reason = \(attempt.reason), throttles = throttles + \(throttled ? 1 : 0)
                WHERE id = \(claim.id) AND lease_token = \(claim.leaseToken) AND state = 'in_flight'
                RETURNING maintenance_key
                """, on: connection, logger: logger)
            let laneKey = try updated.first?.decode(String.self)
            var extra: FollowUpState?
            if let followUp {
                extra = try await settleFollowUp(
                    followUp, maintenanceKey: maintenanceKey, target: claim.target, leaseHeld: laneKey != nil,
                    now: now, on: connection)
            }
            guard let laneKey else { return (false, extra, []) }
            if case .retry(let at) = transition { try await holdLaneBehind(claim.id, until: at, on: connection) }
            guard let lease, transition.isFinal else {
                if state != .pending { try await announceWork(on: connection) }
                return (true, extra, [])
            }
            // The lane's new head, if it is due, goes to this worker at once. No other instance
            // can take it meanwhile: until this transaction commits, the delivery just finished
            // still stands before it in the lane.
            let next = try await Self.rows(
                """
                WITH head AS (
                    SELECT seq, state, next_attempt_at AS due_at FROM deliveries
                    WHERE maintenance_key = \(laneKey) AND target = \(claim.target) AND state IN ('pending', 'in_flight')
                    ORDER BY lane_seq LIMIT 1
                    FOR UPDATE
                )
                UPDATE deliveries d SET state = 'in_flight', next_attempt_at = \(now.addingTimeInterval(lease.seconds)), lease_token = \(token),
                                        leased_by = \(instanceID), attempts = d.attempts + 1, updated_at = \(now)
                FROM head, events e
                WHERE d.seq = head.seq AND head.state = 'pending' AND head.due_at <= \(now) AND e.seq = d.event_seq
                RETURNING \(unescaped: Self.claimReturning), head.due_at
                """, on: connection, logger: logger)
            return (true, extra, next)
        }
        guard !next.isEmpty else { return Completion(stillOurs: stillOurs, extraObject: extra) }
        return Completion(stillOurs: stillOurs, next: try await claims(from: next, token: token, now: now).first, extraObject: extra)
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
        try await transaction { [self] connection in
            let released =
                try await Self.rows(
                    """
                    UPDATE deliveries SET state = 'pending', next_attempt_at = \(until), lease_token = NULL, leased_by = NULL,
                                          attempts = attempts - 1, updated_at = \(now)
                    WHERE id = \(claim.id) AND lease_token = \(claim.leaseToken) AND state = 'in_flight'
                    RETURNING seq
                    """, on: connection, logger: logger
                ).count == 1
            if released { try await holdLaneBehind(claim.id, until: until, on: connection) }
            return released
        }
    }

    /// A lane's head put back until `until` (a retry, a vendor's pause) holds the rest of its lane
    /// until then as well: they could not go before it anyway, and left due, every claim walked
    /// past them. Only ever moved later, so a summary waiting out its groupWait keeps it.
    func holdLaneBehind(_ deliveryID: String, until: Date, on connection: PostgresConnection) async throws {
        try await Self.rows(
            """
            UPDATE deliveries later SET next_attempt_at = \(until)
            FROM deliveries head
            WHERE head.id = \(deliveryID) AND later.maintenance_key = head.maintenance_key AND later.target = head.target
              AND later.state = 'pending' AND later.lane_seq > head.lane_seq AND later.next_attempt_at < \(until)
            """, on: connection, logger: logger)
    }
}
