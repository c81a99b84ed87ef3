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
            let maintenanceKey = submission.event.maintenanceKey.storageValue
            // A repeat sent to another instance at the same moment waits for the first to commit,
            // then finds its answer: one event per key, cluster-wide. Then one writer per
            // maintenance at a time: its plan and its lanes change together.
            let locked = try await Self.lockForIntake(
                idempotencyKey: submission.idempotencyKey, digest: submission.bodyDigest, lane: maintenanceKey,
                on: connection, logger: logger)
            if let earlier = locked.earlier { return earlier }
            let step = try AcceptStep(submission, payload: payload, existing: submission.planning == nil ? nil : locked.maintenance)
            if let change = step.change { try await Self.applyChange(on: connection, logger: logger, change, now: submission.receivedAt) }
            try await insertEvent(
                on: connection, id: submission.eventID, idempotencyKey: submission.idempotencyKey,
                digest: submission.bodyDigest, event: step.event, payload: step.payload,
                deliveries: submission.deliveries, receivedAt: submission.receivedAt, sender: submission.sender)
            return step.accepted
        }
        return result
    }

    /// Takes intake's locks in their order (the idempotency key's, when there is one, then the
    /// lane's: the maintenance's or the relay lane's) and reads what the write depends on, in one
    /// round trip: the earlier answer to the key (then no lane lock is taken) or the maintenance
    /// as stored. `patchbay_intake_lock` (migration 8) is a VOLATILE function, so each of its
    /// reads sees what was committed while it waited for a lock; a plain statement would read
    /// with the snapshot it took before waiting.
    static func lockForIntake(
        idempotencyKey: String?, digest: String, lane: String, on connection: PostgresConnection, logger: Logger
    ) async throws -> (earlier: AcceptResult?, maintenance: MaintenanceRecord?) {
        guard
            let row = try await rows(
                "SELECT * FROM patchbay_intake_lock(\(idempotencyKey)::text, \(lane))", preparedAs: Prepared.IntakeLock.self,
                on: connection, logger: logger
            ).first?.columns
        else { throw StoreError.permanent("the intake lock returned no row") }
        if let id = try row.value("earlier_id", as: String?.self) {
            let existing = AcceptedEvent(id: id, deliveries: try row.value("earlier_deliveries", as: Int.self))
            let stored: String = try row.value("earlier_digest")
            return (stored == digest ? .replayed(existing) : .conflict(existingEventID: existing.id), nil)
        }
        guard try row.value("app", as: String?.self) != nil else { return (nil, nil) }
        return (nil, try Self.record(row))
    }

    /// A transaction-level advisory lock on `name` (64-bit hash; a collision only makes two
    /// names wait for each other).
    static func lock(_ name: String, on connection: PostgresConnection, logger: Logger) async throws {
        try await rows("SELECT pg_advisory_xact_lock(hashtextextended(\(name), 0))", on: connection, logger: logger)
    }

    /// Writes an event, its deliveries (each taking the next place in its lane) and its
    /// instance's stage. The caller holds the maintenance's lock. Shared by intake and the scheduler.
    func insertEvent(
        on connection: PostgresConnection, id: String, idempotencyKey: String?, digest: String, event: PatchEvent,
        payload: String, deliveries: [DeliveryPlan], receivedAt: Date, sender: String? = nil
    ) async throws {
        let row = EventRow(
            id: id, idempotencyKey: idempotencyKey, digest: digest, type: event.type.rawValue, app: event.app,
            environment: event.environment, lane: event.maintenanceKey.storageValue, payload: payload, receivedAt: receivedAt,
            sender: sender)
        try await storeEvent(on: connection, row, plans: deliveries.map { $0.settled(for: event) }, reportOf: event)
    }

    /// Writes `event`'s row, its deliveries and the instance of `reporting` (nil: a relayed
    /// body). In one statement (`writeEvent`) unless a summary waits out its groupWait or a lane
    /// comes twice in the event: then a statement per delivery.
    func storeEvent(on connection: PostgresConnection, _ event: EventRow, plans: [DeliveryPlan], reportOf reporting: PatchEvent?) async throws {
        let lanes = plans.map(\.lane.storedName)
        if plans.allSatisfy({ $0.summaryWait == nil }), Set(lanes).count == lanes.count {
            try await writeEvent(on: connection, event, plans: plans, reportOf: reporting)
            return
        }
        let eventSeq = try await insertEventRow(on: connection, event, deliveries: plans.count)
        for plan in plans {
            var due = event.receivedAt
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
                    WHERE d.maintenance_key = \(event.lane) AND d.target = \(plan.lane.storedName) AND d.state = 'pending'
                      AND e.type = \(event.type)
                    LIMIT 1
                    FOR UPDATE OF d
                    """, on: connection, logger: logger)
                if !waiting.isEmpty { continue }
                due = event.receivedAt.addingTimeInterval(wait)
            }
            try await insertDelivery(on: connection, eventSeq: eventSeq, plan: plan, lane: event.lane, at: event.receivedAt, due: due)
        }
        if let reporting, let instance = reporting.instance {
            try await Self.rows(
                """
                INSERT INTO maintenance_instances AS m (maintenance_key, instance_id, instance_name, last_type, stage_rank, packages, updated_at)
                VALUES (\(event.lane), \(instance.id), \(instance.name), \(event.type), \(reporting.type.stageRank),
                        \(StoredJSON.encode(reporting.packages)), \(event.receivedAt))
                ON CONFLICT (maintenance_key, instance_id) DO UPDATE SET \(unescaped: Self.furthestStage)
                """, on: connection, logger: logger)
        }
        if !plans.isEmpty { try await announceWork(on: connection) }
    }

    /// How a report updates its instance's row: each instance keeps its furthest stage, so a late
    /// `started` does not hide its `completed`.
    static let furthestStage = """
        instance_name = COALESCE(EXCLUDED.instance_name, m.instance_name),
            last_type = EXCLUDED.last_type,
            packages = CASE WHEN EXCLUDED.packages = '[]' THEN m.packages ELSE EXCLUDED.packages END,
            stage_rank = EXCLUDED.stage_rank,
            updated_at = EXCLUDED.updated_at
        WHERE EXCLUDED.stage_rank >= m.stage_rank
        """

    /// An event's row as intake writes it.
    struct EventRow {
        let id: String
        let idempotencyKey: String?
        let digest: String
        let type: String
        let app: String
        let environment: String
        let lane: String
        let payload: String
        let receivedAt: Date
        let sender: String?
    }

    /// The event, its deliveries (each due now, each taking the next place in its own lane), its
    /// instance's stage and the wake-up, in one statement: a round trip where there were three
    /// and one per delivery. Each lane appears once (`lanes` would refuse a row updated twice).
    func writeEvent(
        on connection: PostgresConnection, _ event: EventRow, plans: [DeliveryPlan],
        reportOf reporting: PatchEvent?
    ) async throws {
        let instance = reporting?.instance
        let notify = !plans.isEmpty && claimNotifySlot()
        try await Self.rows(
            """
            WITH ev AS (
                INSERT INTO events (id, idempotency_key, body_sha256, type, app, environment, maintenance_key, payload, delivery_count, received_at, sender)
                VALUES (\(event.id), \(event.idempotencyKey)::text, \(event.digest), \(event.type), \(event.app), \(event.environment),
                        \(event.lane), \(event.payload), \(plans.count), \(event.receivedAt), \(event.sender)::text)
                RETURNING seq
            ), planned AS (
                SELECT * FROM unnest(\(plans.map { _ in Identifier.make("dlv") })::text[], \(plans.map(\.lane.storedName))::text[],
                                     \(plans.map(\.targetKind))::text[], \(plans.map(\.displayTimeZone))::text[],
                                     \(plans.map { StoredJSON.encode($0.resources) })::text[])
                         WITH ORDINALITY AS p(id, target, target_kind, display_timezone, resources, place)
            ), lane AS (
                -- The lane's row is locked until commit, so a lane's sequence numbers follow commit
                -- order even when two instances add to it at once.
                INSERT INTO lanes AS l (maintenance_key, target, last_seq) SELECT \(event.lane), target, 1 FROM planned
                ON CONFLICT (maintenance_key, target) DO UPDATE SET last_seq = l.last_seq + 1
                RETURNING target, last_seq
            ), delivery AS (
                INSERT INTO deliveries (id, event_seq, target, target_kind, maintenance_key, lane_seq, display_timezone, state,
                                        next_attempt_at, created_at, updated_at, resources)
                SELECT p.id, ev.seq, p.target, p.target_kind, \(event.lane), lane.last_seq, p.display_timezone, 'pending',
                       \(event.receivedAt), \(event.receivedAt), \(event.receivedAt), p.resources
                FROM planned p JOIN lane USING (target) CROSS JOIN ev
                ORDER BY p.place  -- the deliveries' seq in plan order, as SQLite and the old path give them
            ), instance AS (
                INSERT INTO maintenance_instances AS m (maintenance_key, instance_id, instance_name, last_type, stage_rank, packages, updated_at)
                SELECT \(event.lane), \(instance?.id)::text, \(instance?.name)::text, \(event.type),
                       \(reporting?.type.stageRank ?? 0), \(reporting.map { StoredJSON.encode($0.packages) } ?? "[]"), \(event.receivedAt)
                WHERE \(instance?.id)::text IS NOT NULL
                ON CONFLICT (maintenance_key, instance_id) DO UPDATE SET \(unescaped: Self.furthestStage)
            )
            SELECT (SELECT seq FROM ev), (SELECT count(*) FROM (SELECT pg_notify(\(Self.wakeChannel), '') WHERE \(notify)::boolean) AS n)
            """, preparedAs: Prepared.IntakeWrite.self, on: connection, logger: logger)
    }

    private func insertEventRow(on connection: PostgresConnection, _ event: EventRow, deliveries: Int) async throws -> Int64 {
        let rows = try await Self.rows(
            """
            INSERT INTO events (id, idempotency_key, body_sha256, type, app, environment, maintenance_key, payload, delivery_count, received_at, sender)
            VALUES (\(event.id), \(event.idempotencyKey), \(event.digest), \(event.type), \(event.app), \(event.environment), \(event.lane),
                    \(event.payload), \(deliveries), \(event.receivedAt), \(event.sender))
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
            let locked = try await Self.lockForIntake(
                idempotencyKey: idempotencyKey, digest: digest, lane: lane, on: connection, logger: logger)
            if let earlier = locked.earlier { return earlier }
            let plans = deliveries.map { DeliveryPlan(target: $0.target, targetKind: $0.targetKind, displayTimeZone: "UTC") }
            let row = EventRow(
                id: eventID, idempotencyKey: idempotencyKey, digest: digest, type: RelayedMessage.eventType, app: message.source,
                environment: "relay", lane: lane, payload: payload, receivedAt: receivedAt, sender: "relay:" + message.source)
            try await storeEvent(on: connection, row, plans: plans, reportOf: nil)
            return .accepted(AcceptedEvent(id: eventID, deliveries: deliveries.count))
        }
    }
}
