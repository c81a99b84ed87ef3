import Foundation
import GRDB
import PatchbayCore

/// Intake: an event or a relayed body committed with its deliveries, in one group-committed
/// transaction, before the 202.
extension SQLiteStore: IntakeStore {
    public func accept(_ submission: EventSubmission) async throws -> AcceptResult {
        let encoded = try JSONEncoder.patchbay().encode(submission.event)
        let payload = String(decoding: encoded, as: UTF8.self)
        return try await committer.write { db in
            if let key = submission.idempotencyKey, let earlier = try Self.earlierAnswer(db, key: key, digest: submission.bodyDigest) {
                return earlier
            }
            let existing =
                submission.planning == nil ? nil : try Self.maintenanceRecord(db, key: submission.event.maintenanceKey.storageValue)
            let step = try AcceptStep(submission, payload: payload, existing: existing)
            if let change = step.change { try Self.applyChange(db, change, now: submission.receivedAt) }
            try Self.insertEvent(
                db, id: submission.eventID, idempotencyKey: submission.idempotencyKey, digest: submission.bodyDigest,
                event: step.event, payload: step.payload, deliveries: submission.deliveries, receivedAt: submission.receivedAt,
                sender: submission.sender)
            return step.accepted
        }
    }

    /// Writes an event, its deliveries and its instance's stage. Shared by intake and the scheduler.
    static func insertEvent(
        _ db: Database, id: String, idempotencyKey: String?, digest: String, event: PatchEvent, payload: String,
        deliveries: [DeliveryPlan], receivedAt: Date, sender: String? = nil
    ) throws {
        let received = receivedAt.timeIntervalSince1970
        let maintenanceKey = event.maintenanceKey.storageValue
        try db.executeCached(
            sql: """
                INSERT INTO events (id, idempotency_key, body_sha256, type, app, environment, maintenance_key, payload, delivery_count, received_at, sender)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                id, idempotencyKey, digest, event.type.rawValue, event.app,
                event.environment, maintenanceKey, payload, deliveries.count, received, sender,
            ]
        )
        let eventSeq = db.lastInsertedRowID
        for plan in deliveries.map({ $0.settled(for: event) }) {
            var due = received
            if let wait = plan.summaryWait {
                // A summary of this (maintenance, target, stage) still waiting takes this event in.
                let waiting =
                    try Bool.fetchOne(
                        cached: db,
                        sql: """
                            SELECT EXISTS (SELECT 1 FROM deliveries d JOIN events e ON e.seq = d.event_seq
                                           WHERE d.maintenance_key = ? AND d.target = ? AND d.state = 'pending' AND e.type = ?)
                            """, arguments: [maintenanceKey, plan.lane.storedName, event.type.rawValue]) ?? false
                if waiting { continue }
                due = received + wait
            }
            try db.executeCached(
                sql: """
                    INSERT INTO deliveries (id, event_seq, target, target_kind, maintenance_key, display_timezone, state,
                                            next_attempt_at, created_at, updated_at, resources)
                    VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)
                    """,
                arguments: [
                    Identifier.make("dlv"), eventSeq, plan.lane.storedName, plan.targetKind, maintenanceKey,
                    plan.displayTimeZone, due, received, received, StoredJSON.encode(plan.resources),
                ]
            )
        }
        if let instance = event.instance {
            // Keep each instance's furthest stage: a late `started` must not hide its `completed`.
            try db.executeCached(
                sql: """
                    INSERT INTO maintenance_instances (maintenance_key, instance_id, instance_name, last_type, stage_rank, packages, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (maintenance_key, instance_id) DO UPDATE SET
                        instance_name = COALESCE(excluded.instance_name, instance_name),
                        last_type = excluded.last_type,
                        packages = CASE WHEN excluded.packages = '[]' THEN packages ELSE excluded.packages END,
                        stage_rank = excluded.stage_rank,
                        updated_at = excluded.updated_at
                    WHERE excluded.stage_rank >= stage_rank
                    """,
                arguments: [
                    maintenanceKey, instance.id, instance.name, event.type.rawValue,
                    event.type.stageRank, StoredJSON.encode(event.packages), received,
                ])
        }
    }

    public func acceptRelayed(
        _ message: RelayedMessage, eventID: String, idempotencyKey: String, receivedAt: Date,
        deliveries: [DeliveryPlan]
    ) async throws -> AcceptResult {
        let payload = try message.storedPayload()
        let digest = message.body.sha256Hex
        let lane = message.laneKey
        return try await committer.write { db in
            if let earlier = try Self.earlierAnswer(db, key: idempotencyKey, digest: digest) { return earlier }
            let received = receivedAt.timeIntervalSince1970
            try db.executeCached(
                sql: """
                    INSERT INTO events (id, idempotency_key, body_sha256, type, app, environment, maintenance_key, payload, delivery_count, received_at, sender)
                    VALUES (?, ?, ?, ?, ?, 'relay', ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    eventID, idempotencyKey, digest, RelayedMessage.eventType, message.source, lane, payload, deliveries.count, received,
                    "relay:" + message.source,
                ])
            let eventSeq = db.lastInsertedRowID
            for plan in deliveries {
                try db.executeCached(
                    sql: """
                        INSERT INTO deliveries (id, event_seq, target, target_kind, maintenance_key, display_timezone, state,
                                                next_attempt_at, created_at, updated_at)
                        VALUES (?, ?, ?, ?, ?, 'UTC', 'pending', ?, ?, ?)
                        """, arguments: [Identifier.make("dlv"), eventSeq, plan.lane.storedName, plan.targetKind, lane, received, received, received])
            }
            return .accepted(AcceptedEvent(id: eventID, deliveries: deliveries.count))
        }
    }

    /// The answer to an earlier request with the same idempotency key: the same one for the same
    /// body, a conflict for another.
    static func earlierAnswer(_ db: Database, key: String, digest: String) throws -> AcceptResult? {
        guard
            let row = try Row.fetchOne(
                cached: db, sql: "SELECT id, body_sha256, delivery_count FROM events WHERE idempotency_key = ?", arguments: [key])
        else {
            return nil
        }
        let existing = AcceptedEvent(id: row["id"], deliveries: row["delivery_count"])
        let stored: String = row["body_sha256"]
        return stored == digest ? .replayed(existing) : .conflict(existingEventID: existing.id)
    }
}
