import Foundation
import Logging
import PatchbayCore
import PostgresNIO

/// Intake on PostgreSQL: an event or a relayed body committed with its deliveries, the lane
/// numbers and the maintenance, in one transaction, before the 202.
///
/// Locks, always taken in this order so concurrent transactions never wait on each other in a
/// circle: the idempotency key's advisory lock, then the maintenance's (or relay lane's) advisory
/// lock, then that maintenance's `lanes` rows. Claims lock only delivery rows, with SKIP LOCKED.
extension PostgresStore: IntakeStore {
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
                deliveries: submission.deliveries, receivedAt: submission.receivedAt, sender: submission.sender)
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
        payload: String, deliveries: [DeliveryPlan], receivedAt: Date, sender: String? = nil
    ) async throws {
        let maintenanceKey = event.maintenanceKey.storageValue
        let eventSeq = try await insertEventRow(
            on: connection, id: id, idempotencyKey: idempotencyKey, digest: digest,
            type: event.type.rawValue, app: event.app, environment: event.environment,
            lane: maintenanceKey, payload: payload, deliveries: deliveries.count, receivedAt: receivedAt, sender: sender)
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
        receivedAt: Date, sender: String? = nil
    ) async throws -> Int64 {
        let rows = try await Self.rows(
            """
            INSERT INTO events (id, idempotency_key, body_sha256, type, app, environment, maintenance_key, payload, delivery_count, received_at, sender)
            VALUES (\(id), \(idempotencyKey), \(digest), \(type), \(app), \(environment), \(lane), \(payload), \(deliveries), \(receivedAt), \(sender))
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
                payload: payload, deliveries: deliveries.count, receivedAt: receivedAt, sender: "relay:" + message.source)
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
}
