import Foundation
import Logging
import PatchbayCore
import PostgresNIO

/// Writing a whole queue read from another store (`patchbay migrate --from sqlite:PATH`) into this
/// one, in one transaction: all of it or nothing.
///
/// postgres-nio binds arrays of non-optional values only, so rows go in as `unnest` batches of
/// parallel arrays, and each nullable column comes with a second, boolean array saying whether
/// the value is there.
extension PostgresStore {
    /// Rows per `INSERT … SELECT FROM unnest(…)`.
    static let transferBatch = 1000

    /// Copies `transfer` into this store, which must hold no event, delivery or maintenance yet
    /// (checked after `LOCK TABLE events IN EXCLUSIVE MODE`, which holds intake back until the
    /// copy commits): nothing is ever mixed with or copied over earlier rows.
    ///
    /// Events, deliveries, attempts and planned notices get this store's own sequence numbers, in
    /// the source's order; each delivery takes its place in its (maintenance, target) lane in the
    /// source's delivery order, and `lanes` is set to each lane's last number. A delivery in
    /// flight in the source is copied pending, due at `now`, its lease cleared (its attempt count
    /// is kept, as when a dead process's lease is released).
    /// `progress` hears rows copied of all after each batch.
    public func importTransfer(_ transfer: StoreTransfer, now: Date, progress: StoreProgress? = nil) async throws -> TransferCounts {
        let deliveries = transfer.deliveries.sorted { $0.seq < $1.seq }
        // Each lane numbered from 1 in the source's delivery order.
        var laneSeqs: [Int64] = []
        laneSeqs.reserveCapacity(deliveries.count)
        var lanes: [TransferLane: Int64] = [:]
        var requeued = 0
        for delivery in deliveries {
            guard let state = DeliveryState(rawValue: delivery.state) else {
                throw StoreError.permanent("a delivery to copy has an unknown state (source seq \(delivery.seq))")
            }
            if state == .inFlight { requeued += 1 }
            let lane = TransferLane(maintenanceKey: delivery.maintenanceKey, target: delivery.target)
            let next = (lanes[lane] ?? 0) + 1
            lanes[lane] = next
            laneSeqs.append(next)
        }
        let laneRows: [(lane: TransferLane, last: Int64)] =
            lanes
            .map { (lane: $0.key, last: $0.value) }
            .sorted { ($0.lane.maintenanceKey, $0.lane.target) < ($1.lane.maintenanceKey, $1.lane.target) }
        let events = transfer.events.sorted { $0.seq < $1.seq }
        let notices = transfer.plannedNotices
        let lanePlaces = laneSeqs
        let requeuedCount = requeued

        let totalRows =
            transfer.events.count + transfer.deliveries.count + transfer.attempts.count + transfer.maintenanceInstances.count
            + transfer.followUps.count + transfer.maintenances.count + transfer.plannedNotices.count + transfer.unmapped.count
            + transfer.audit.count
        return try await transaction { [self] connection -> TransferCounts in
            var copied = 0
            func copiedBatch(_ rows: Int) {
                copied += rows
                progress?(copied, totalRows)
            }
            try await Self.rows("SET LOCAL lock_timeout = '60s'", on: connection, logger: logger)
            // Intake (and the notice scheduler) insert events: they wait here until the copy commits,
            // so the check below stays true while it runs. Readers are not held up.
            try await Self.rows("LOCK TABLE events IN EXCLUSIVE MODE", on: connection, logger: logger)
            if try await Self.queueRowsExist(on: connection, logger: logger) {
                throw StoreError.permanent(
                    """
                    the PostgreSQL store already holds events: a queue is copied only into an empty store, \
                    so that nothing is mixed with or copied over what it holds
                    """)
            }

            // Events, mapping the source's sequence numbers to the ones handed out here.
            var eventSeqs: [Int64: Int64] = [:]
            eventSeqs.reserveCapacity(events.count)
            for batch in Self.batches(events) {
                copiedBatch(batch.count)
                for (source, seq) in try await Self.insertEvents(batch, on: connection, logger: logger) { eventSeqs[source] = seq }
            }

            // Deliveries, each in its lane's order; in flight becomes pending, due now, lease cleared.
            var mappedEventSeqs: [Int64] = []
            mappedEventSeqs.reserveCapacity(deliveries.count)
            for delivery in deliveries {
                guard let seq = eventSeqs[delivery.eventSeq] else {
                    throw StoreError.permanent("a delivery refers to an event missing from the copy (source delivery seq \(delivery.seq))")
                }
                mappedEventSeqs.append(seq)
            }
            for range in Self.ranges(deliveries.count) {
                copiedBatch(range.count)
                try await Self.insertDeliveries(
                    deliveries[range], eventSeqs: mappedEventSeqs[range], lanePlaces: lanePlaces[range], now: now,
                    on: connection, logger: logger)
            }

            // Each lane's last number, so the next delivery intake adds goes behind the copied ones.
            for range in Self.ranges(laneRows.count) {
                try await Self.insertLanes(laneRows[range], on: connection, logger: logger)
            }

            for batch in Self.batches(transfer.attempts) {
                copiedBatch(batch.count)
                try await Self.insertAttempts(batch, on: connection, logger: logger)
            }

            // In the order instances first reported: reported_seq keeps it, as SQLite's rowid did.
            for batch in Self.batches(transfer.maintenanceInstances) {
                copiedBatch(batch.count)
                try await Self.insertMaintenanceInstances(batch, on: connection, logger: logger)
            }

            for batch in Self.batches(transfer.followUps) {
                copiedBatch(batch.count)
                try await Self.insertFollowUps(batch, on: connection, logger: logger)
            }

            for batch in Self.batches(transfer.maintenances) {
                copiedBatch(batch.count)
                try await Self.insertMaintenances(batch, on: connection, logger: logger)
            }

            for batch in Self.batches(notices) {
                copiedBatch(batch.count)
                try await Self.insertPlannedNotices(batch, on: connection, logger: logger)
            }

            for batch in Self.batches(transfer.unmapped) {
                copiedBatch(batch.count)
                try await Self.insertUnmapped(batch, on: connection, logger: logger)
            }

            for batch in Self.batches(transfer.audit) {
                copiedBatch(batch.count)
                try await Self.insertAudit(batch, on: connection, logger: logger)
            }

            // Running instances (if any) pick the copied work up at once.
            if !deliveries.isEmpty { try await announceWork(on: connection) }

            var counts = TransferCounts()
            counts.events = eventSeqs.count
            counts.deliveries = deliveries.count
            counts.requeued = requeuedCount
            counts.lanes = laneRows.count
            counts.attempts = transfer.attempts.count
            counts.maintenanceInstances = transfer.maintenanceInstances.count
            counts.followUps = transfer.followUps.count
            counts.maintenances = transfer.maintenances.count
            counts.plannedNotices = notices.count
            counts.unmapped = transfer.unmapped.count
            counts.audit = transfer.audit.count
            return counts
        }
    }

    // MARK: One table at a time, one batch per statement

    static func insertLanes(
        _ batch: ArraySlice<(lane: TransferLane, last: Int64)>, on connection: PostgresConnection,
        logger: Logger
    ) async throws {
        let laneKeys: [String] = batch.map { $0.lane.maintenanceKey }
        let targets: [String] = batch.map { $0.lane.target }
        let lasts: [Int64] = batch.map { $0.last }
        try await Self.rows(
            """
            INSERT INTO lanes AS l (maintenance_key, target, last_seq)
            SELECT u.c_lane, u.c_target, u.c_last
            FROM unnest(\(laneKeys)::text[], \(targets)::text[], \(lasts)::bigint[]) AS u(c_lane, c_target, c_last)
            ON CONFLICT (maintenance_key, target) DO UPDATE SET last_seq = GREATEST(l.last_seq, EXCLUDED.last_seq)
            """, on: connection, logger: logger)
    }

    /// Returns each event's (source seq, new seq).
    static func insertEvents(
        _ batch: ArraySlice<StoreTransfer.EventRow>, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [(Int64, Int64)] {
        let ids: [String] = batch.map { $0.id }
        let keys: [String] = batch.map { $0.idempotencyKey ?? "" }
        let hasKeys: [Bool] = batch.map { $0.idempotencyKey != nil }
        let digests: [String] = batch.map { $0.bodySHA256 }
        let types: [String] = batch.map { $0.type }
        let apps: [String] = batch.map { $0.app }
        let environments: [String] = batch.map { $0.environment }
        let laneKeys: [String] = batch.map { $0.maintenanceKey }
        let payloads: [String] = batch.map { $0.payload }
        let deliveryCounts: [Int64] = batch.map { Int64($0.deliveryCount) }
        let received: [Date] = batch.map { $0.receivedAt }
        let senders: [String] = batch.map { $0.sender ?? "" }
        let hasSenders: [Bool] = batch.map { $0.sender != nil }
        let returned = try await Self.rows(
            """
            INSERT INTO events (id, idempotency_key, body_sha256, type, app, environment, maintenance_key, payload, delivery_count, received_at,
                                sender)
            SELECT u.c_id, CASE WHEN u.c_has_key THEN u.c_key END, u.c_digest, u.c_type, u.c_app, u.c_environment, u.c_lane,
                   u.c_payload, u.c_count::integer, u.c_received, CASE WHEN u.c_has_sender THEN u.c_sender END
            FROM unnest(\(ids)::text[], \(keys)::text[], \(hasKeys)::boolean[], \(digests)::text[], \(types)::text[],
                        \(apps)::text[], \(environments)::text[], \(laneKeys)::text[], \(payloads)::text[],
                        \(deliveryCounts)::bigint[], \(received)::timestamptz[], \(senders)::text[], \(hasSenders)::boolean[])
                 WITH ORDINALITY AS u(c_id, c_key, c_has_key, c_digest, c_type, c_app, c_environment, c_lane, c_payload, c_count,
                                      c_received, c_sender, c_has_sender, c_ord)
            ORDER BY u.c_ord
            RETURNING id, seq
            """, on: connection, logger: logger)
        var seqByID: [String: Int64] = [:]
        for row in returned {
            let columns = row.columns
            seqByID[try columns.value("id", as: String.self)] = try columns.value("seq", as: Int64.self)
        }
        return try batch.map { event in
            guard let seq = seqByID[event.id] else {
                throw StoreError.permanent("an event was not written (source seq \(event.seq))")
            }
            return (event.seq, seq)
        }
    }

    /// In flight in the source becomes pending, due `now`, its lease cleared.
    static func insertDeliveries(
        _ batch: ArraySlice<StoreTransfer.DeliveryRow>, eventSeqs: ArraySlice<Int64>, lanePlaces: ArraySlice<Int64>,
        now: Date, on connection: PostgresConnection, logger: Logger
    ) async throws {
        let inFlight = DeliveryState.inFlight.rawValue
        let ids: [String] = batch.map { $0.id }
        let eventRefs: [Int64] = Array(eventSeqs)
        let targets: [String] = batch.map { $0.target }
        let kinds: [String] = batch.map { $0.targetKind }
        let laneKeys: [String] = batch.map { $0.maintenanceKey }
        let places: [Int64] = Array(lanePlaces)
        let zones: [String] = batch.map { $0.displayTimeZone }
        let states: [String] = batch.map { $0.state == inFlight ? DeliveryState.pending.rawValue : $0.state }
        let attempts: [Int64] = batch.map { Int64($0.attempts) }
        let nextAttempts: [Date] = batch.map { $0.state == inFlight ? now : $0.nextAttemptAt }
        let created: [Date] = batch.map { $0.createdAt }
        let updated: [Date] = batch.map { $0.state == inFlight ? now : $0.updatedAt }
        let reasons: [String] = batch.map { $0.lastReason ?? "" }
        let hasReasons: [Bool] = batch.map { $0.lastReason != nil }
        let resources: [String] = batch.map { $0.resources }
        let throttles: [Int64] = batch.map { Int64($0.throttles) }
        let replays: [Int64] = batch.map { Int64($0.replays) }
        let replayed: [Date] = batch.map { $0.replayedAt ?? Date(timeIntervalSince1970: 0) }
        let hasReplayed: [Bool] = batch.map { $0.replayedAt != nil }
        try await Self.rows(
            """
            INSERT INTO deliveries (id, event_seq, target, target_kind, maintenance_key, lane_seq, display_timezone, state, attempts,
                                    next_attempt_at, lease_token, leased_by, created_at, updated_at, last_reason, resources,
                                    throttles, replays, replayed_at)
            SELECT u.c_id, u.c_event, u.c_target, u.c_kind, u.c_lane, u.c_lane_seq, u.c_zone, u.c_state, u.c_attempts::integer,
                   u.c_next, NULL, NULL, u.c_created, u.c_updated, CASE WHEN u.c_has_reason THEN u.c_reason END, u.c_resources,
                   u.c_throttles::integer, u.c_replays::integer, CASE WHEN u.c_has_replayed THEN u.c_replayed END
            FROM unnest(\(ids)::text[], \(eventRefs)::bigint[], \(targets)::text[], \(kinds)::text[], \(laneKeys)::text[],
                        \(places)::bigint[], \(zones)::text[], \(states)::text[], \(attempts)::bigint[], \(nextAttempts)::timestamptz[],
                        \(created)::timestamptz[], \(updated)::timestamptz[], \(reasons)::text[], \(hasReasons)::boolean[],
                        \(resources)::text[], \(throttles)::bigint[], \(replays)::bigint[], \(replayed)::timestamptz[],
                        \(hasReplayed)::boolean[])
                 WITH ORDINALITY AS u(c_id, c_event, c_target, c_kind, c_lane, c_lane_seq, c_zone, c_state, c_attempts, c_next,
                                      c_created, c_updated, c_reason, c_has_reason, c_resources, c_throttles, c_replays,
                                      c_replayed, c_has_replayed, c_ord)
            ORDER BY u.c_ord
            """, on: connection, logger: logger)
    }

    static func insertAttempts(_ batch: ArraySlice<StoreTransfer.AttemptRow>, on connection: PostgresConnection, logger: Logger) async throws {
        let deliveryIDs: [String] = batch.map { $0.deliveryID }
        let numbers: [Int64] = batch.map { Int64($0.number) }
        let started: [Date] = batch.map { $0.startedAt }
        let latencies: [Double] = batch.map { $0.latencyMilliseconds }
        let statuses: [Int64] = batch.map { Int64($0.statusCode ?? 0) }
        let hasStatuses: [Bool] = batch.map { $0.statusCode != nil }
        let outcomes: [String] = batch.map { $0.outcome }
        let reasons: [String] = batch.map { $0.reason }
        let excerpts: [String] = batch.map { $0.responseExcerpt ?? "" }
        let hasExcerpts: [Bool] = batch.map { $0.responseExcerpt != nil }
        try await Self.rows(
            """
            INSERT INTO attempts (delivery_id, number, started_at, latency_ms, status_code, outcome, reason, response_excerpt)
            SELECT u.c_delivery, u.c_number::integer, u.c_started, u.c_latency, CASE WHEN u.c_has_status THEN u.c_status::integer END,
                   u.c_outcome, u.c_reason, CASE WHEN u.c_has_excerpt THEN u.c_excerpt END
            FROM unnest(\(deliveryIDs)::text[], \(numbers)::bigint[], \(started)::timestamptz[], \(latencies)::float8[],
                        \(statuses)::bigint[], \(hasStatuses)::boolean[], \(outcomes)::text[], \(reasons)::text[],
                        \(excerpts)::text[], \(hasExcerpts)::boolean[])
                 WITH ORDINALITY AS u(c_delivery, c_number, c_started, c_latency, c_status, c_has_status, c_outcome, c_reason,
                                      c_excerpt, c_has_excerpt, c_ord)
            ORDER BY u.c_ord
            """, on: connection, logger: logger)
    }

    static func insertMaintenanceInstances(
        _ batch: ArraySlice<StoreTransfer.InstanceRow>, on connection: PostgresConnection, logger: Logger
    ) async throws {
        let laneKeys: [String] = batch.map { $0.maintenanceKey }
        let instances: [String] = batch.map { $0.instanceID }
        let names: [String] = batch.map { $0.instanceName ?? "" }
        let hasNames: [Bool] = batch.map { $0.instanceName != nil }
        let types: [String] = batch.map { $0.lastType }
        let ranks: [Int64] = batch.map { Int64($0.stageRank) }
        let packages: [String] = batch.map { $0.packages }
        let updated: [Date] = batch.map { $0.updatedAt }
        try await Self.rows(
            """
            INSERT INTO maintenance_instances (maintenance_key, instance_id, instance_name, last_type, stage_rank, packages, updated_at)
            SELECT u.c_lane, u.c_instance, CASE WHEN u.c_has_name THEN u.c_name END, u.c_type, u.c_rank::integer, u.c_packages,
                   u.c_updated
            FROM unnest(\(laneKeys)::text[], \(instances)::text[], \(names)::text[], \(hasNames)::boolean[], \(types)::text[],
                        \(ranks)::bigint[], \(packages)::text[], \(updated)::timestamptz[])
                 WITH ORDINALITY AS u(c_lane, c_instance, c_name, c_has_name, c_type, c_rank, c_packages, c_updated, c_ord)
            ORDER BY u.c_ord
            """, on: connection, logger: logger)
    }

    static func insertFollowUps(_ batch: ArraySlice<StoreTransfer.FollowUpRow>, on connection: PostgresConnection, logger: Logger) async throws {
        let laneKeys: [String] = batch.map { $0.maintenanceKey }
        let targets: [String] = batch.map { $0.target }
        let states: [String] = batch.map { $0.state }
        let updated: [Date] = batch.map { $0.updatedAt }
        try await Self.rows(
            """
            INSERT INTO followups (maintenance_key, target, state, updated_at)
            SELECT u.c_lane, u.c_target, u.c_state, u.c_updated
            FROM unnest(\(laneKeys)::text[], \(targets)::text[], \(states)::text[], \(updated)::timestamptz[])
                 AS u(c_lane, c_target, c_state, c_updated)
            """, on: connection, logger: logger)
    }

    static func insertMaintenances(_ batch: ArraySlice<StoreTransfer.MaintenanceRow>, on connection: PostgresConnection, logger: Logger) async throws
    {
        let keys: [String] = batch.map { $0.maintenanceKey }
        let ids: [String] = batch.map { $0.id }
        let apps: [String] = batch.map { $0.app }
        let environments: [String] = batch.map { $0.environment }
        let windowKeys: [String] = batch.map { $0.windowKey }
        let windowIDs: [String] = batch.map { $0.windowID ?? "" }
        let hasWindowIDs: [Bool] = batch.map { $0.windowID != nil }
        let starts: [Date] = batch.map { $0.windowStart }
        let ends: [Date] = batch.map { $0.windowEnd }
        let windowZones: [String] = batch.map { $0.windowTimeZone ?? "" }
        let hasWindowZones: [Bool] = batch.map { $0.windowTimeZone != nil }
        let statuses: [String] = batch.map { $0.status }
        let displayZones: [String] = batch.map { $0.displayTimeZone }
        let tags: [String] = batch.map { $0.tags }
        let created: [Date] = batch.map { $0.createdAt }
        let updated: [Date] = batch.map { $0.updatedAt }
        try await Self.rows(
            """
            INSERT INTO maintenances (maintenance_key, id, app, environment, window_key, window_id, window_start, window_end,
                                      window_timezone, status, display_timezone, tags, created_at, updated_at)
            SELECT u.c_key, u.c_id, u.c_app, u.c_environment, u.c_window_key, CASE WHEN u.c_has_window_id THEN u.c_window_id END,
                   u.c_start, u.c_end, CASE WHEN u.c_has_zone THEN u.c_zone END, u.c_status, u.c_display_zone, u.c_tags,
                   u.c_created, u.c_updated
            FROM unnest(\(keys)::text[], \(ids)::text[], \(apps)::text[], \(environments)::text[], \(windowKeys)::text[],
                        \(windowIDs)::text[], \(hasWindowIDs)::boolean[], \(starts)::timestamptz[], \(ends)::timestamptz[],
                        \(windowZones)::text[], \(hasWindowZones)::boolean[], \(statuses)::text[], \(displayZones)::text[],
                        \(tags)::text[], \(created)::timestamptz[], \(updated)::timestamptz[])
                 AS u(c_key, c_id, c_app, c_environment, c_window_key, c_window_id, c_has_window_id, c_start, c_end, c_zone,
                      c_has_zone, c_status, c_display_zone, c_tags, c_created, c_updated)
            """, on: connection, logger: logger)
    }

    static func insertPlannedNotices(_ batch: ArraySlice<StoreTransfer.NoticeRow>, on connection: PostgresConnection, logger: Logger) async throws {
        let ids: [String] = batch.map { $0.id }
        let keys: [String] = batch.map { $0.maintenanceKey }
        let kinds: [String] = batch.map { $0.kind }
        let leads: [Int64] = batch.map { Int64($0.leadSeconds ?? 0) }
        let hasLeads: [Bool] = batch.map { $0.leadSeconds != nil }
        let dues: [Date] = batch.map { $0.dueAt }
        let states: [String] = batch.map { $0.state }
        let reasons: [String] = batch.map { $0.reason ?? "" }
        let hasReasons: [Bool] = batch.map { $0.reason != nil }
        let eventIDs: [String] = batch.map { $0.eventID ?? "" }
        let hasEventIDs: [Bool] = batch.map { $0.eventID != nil }
        let updated: [Date] = batch.map { $0.updatedAt }
        try await Self.rows(
            """
            INSERT INTO planned_notices (id, maintenance_key, kind, lead_seconds, due_at, state, reason, event_id, updated_at)
            SELECT u.c_id, u.c_key, u.c_kind, CASE WHEN u.c_has_lead THEN u.c_lead::integer END, u.c_due, u.c_state,
                   CASE WHEN u.c_has_reason THEN u.c_reason END, CASE WHEN u.c_has_event THEN u.c_event END, u.c_updated
            FROM unnest(\(ids)::text[], \(keys)::text[], \(kinds)::text[], \(leads)::bigint[], \(hasLeads)::boolean[],
                        \(dues)::timestamptz[], \(states)::text[], \(reasons)::text[], \(hasReasons)::boolean[],
                        \(eventIDs)::text[], \(hasEventIDs)::boolean[], \(updated)::timestamptz[])
                 WITH ORDINALITY AS u(c_id, c_key, c_kind, c_lead, c_has_lead, c_due, c_state, c_reason, c_has_reason, c_event,
                                      c_has_event, c_updated, c_ord)
            ORDER BY u.c_ord
            """, on: connection, logger: logger)
    }

    static func insertUnmapped(_ batch: ArraySlice<StoreTransfer.UnmappedRow>, on connection: PostgresConnection, logger: Logger) async throws {
        let sources: [String] = batch.map { $0.source }
        let dedupeIDs: [String] = batch.map { $0.dedupeID ?? "" }
        let hasDedupeIDs: [Bool] = batch.map { $0.dedupeID != nil }
        let reasons: [String] = batch.map { $0.reason }
        let bodies: [String] = batch.map { $0.body }
        let received: [Date] = batch.map { $0.receivedAt }
        try await Self.rows(
            """
            INSERT INTO relay_unmapped (source, dedupe_id, reason, body, received_at)
            SELECT u.c_source, CASE WHEN u.c_has_dedupe THEN u.c_dedupe END, u.c_reason, u.c_body, u.c_received
            FROM unnest(\(sources)::text[], \(dedupeIDs)::text[], \(hasDedupeIDs)::boolean[], \(reasons)::text[],
                        \(bodies)::text[], \(received)::timestamptz[])
                 WITH ORDINALITY AS u(c_source, c_dedupe, c_has_dedupe, c_reason, c_body, c_received, c_ord)
            ORDER BY u.c_ord
            """, on: connection, logger: logger)
    }

    static func insertAudit(_ batch: ArraySlice<AuditRecord>, on connection: PostgresConnection, logger: Logger) async throws {
        let ids: [String] = batch.map { $0.id }
        let ats: [Date] = batch.map { $0.at }
        let actors: [String] = batch.map { $0.actor }
        let methods: [String] = batch.map { $0.method }
        let actorIDs: [String] = batch.map { $0.actorID ?? "" }
        let hasActorIDs: [Bool] = batch.map { $0.actorID != nil }
        let actions: [String] = batch.map { $0.action }
        let outcomes: [String] = batch.map { $0.outcome.rawValue }
        let sources: [String] = batch.map { $0.source ?? "" }
        let hasSources: [Bool] = batch.map { $0.source != nil }
        let details: [String] = batch.map { $0.detail }
        try await Self.rows(
            """
            INSERT INTO audit_log (id, at, actor, method, actor_id, action, outcome, source, detail)
            SELECT u.c_id, u.c_at, u.c_actor, u.c_method, CASE WHEN u.c_has_actor_id THEN u.c_actor_id END, u.c_action, u.c_outcome,
                   CASE WHEN u.c_has_source THEN u.c_source END, u.c_detail
            FROM unnest(\(ids)::text[], \(ats)::timestamptz[], \(actors)::text[], \(methods)::text[], \(actorIDs)::text[],
                        \(hasActorIDs)::boolean[], \(actions)::text[], \(outcomes)::text[], \(sources)::text[], \(hasSources)::boolean[],
                        \(details)::text[])
                 WITH ORDINALITY AS u(c_id, c_at, c_actor, c_method, c_actor_id, c_has_actor_id, c_action, c_outcome, c_source,
                                      c_has_source, c_detail, c_ord)
            ORDER BY u.c_ord
            ON CONFLICT (id) DO NOTHING
            """, on: connection, logger: logger)
    }

    /// Whether the store holds an event, a delivery or a maintenance, so that `importTransfer`
    /// would refuse. Reads only: a schema not migrated yet counts as empty.
    public func holdsQueueRows() async throws -> Bool {
        try await read { [self] connection -> Bool in
            let present =
                try await Self.rows(
                    """
                    SELECT (to_regclass('events') IS NOT NULL AND to_regclass('deliveries') IS NOT NULL
                            AND to_regclass('maintenances') IS NOT NULL) AS present
                    """, on: connection, logger: logger
                ).first?.columns.value("present", as: Bool.self) ?? false
            guard present else { return false }
            return try await Self.queueRowsExist(on: connection, logger: logger)
        }
    }

    static func queueRowsExist(on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await Self.rows(
            """
            SELECT (EXISTS (SELECT 1 FROM events) OR EXISTS (SELECT 1 FROM deliveries) OR EXISTS (SELECT 1 FROM maintenances)) AS used
            """, on: connection, logger: logger
        ).first?.columns.value("used", as: Bool.self) ?? false
    }

    /// `rows` in slices of at most `transferBatch`.
    static func batches<Element>(_ rows: [Element]) -> [ArraySlice<Element>] {
        ranges(rows.count).map { rows[$0] }
    }

    /// `0..<count` in ranges of at most `transferBatch`.
    static func ranges(_ count: Int) -> [Range<Int>] {
        stride(from: 0, to: count, by: transferBatch).map { $0..<min($0 + transferBatch, count) }
    }
}
