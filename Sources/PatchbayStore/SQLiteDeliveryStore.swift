import Foundation
import GRDB
import Logging
import PatchbayCore
import Synchronization

/// The embedded durable queue: SQLite in WAL mode with `synchronous=FULL`, so a committed event
/// survives `kill -9` and power loss. Writes go through one group committer; reads (CLI, admin)
/// run concurrently from the WAL.
public final class SQLiteDeliveryStore: DeliveryStore {
    public struct OpenError: Error, CustomStringConvertible {
        public var description: String
    }

    let pool: DatabasePool
    private let serverLock = Mutex<Int32?>(nil)
    /// The database file.
    public let path: String
    let committer: GroupCommitter
    private let logger: Logger

    public init(settings: StoreSettings, logger: Logger) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(settings.busyTimeout.seconds)
        configuration.label = "patchbay"
        let path = settings.sqlitePath
        self.path = path
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if !FileManager.default.fileExists(atPath: directory) {
            throw OpenError(description: "cannot open the store at '\(path)': directory '\(directory)' does not exist")
        }
        // The queue holds events and vendor ids: readable by this user only. SQLite gives the
        // -wal and -shm files the database file's permissions.
        Self.restrictPermissions(path: path, logger: logger)
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            // GRDB chooses synchronous=NORMAL when it switches the pool to WAL, which can lose the
            // last commits on power loss. A 202 promises the event is on disk, so FULL it is; the
            // pool's single writer connection keeps this for its lifetime.
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            try Migrations.migrator.migrate(pool)
        } catch let error as DatabaseError {
            throw OpenError(description: "cannot open the store at '\(path)': \(error.message ?? "SQLite error \(error.resultCode)")")
        }
        committer = GroupCommitter(writer: pool)
        self.logger = logger
    }

    /// Creates the database file 0600, or tightens an existing one that others could read.
    static func restrictPermissions(path: String, logger: Logger) {
        let manager = FileManager.default
        if !manager.fileExists(atPath: path) {
            manager.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
            return
        }
        for file in [path, path + "-wal", path + "-shm"] where manager.fileExists(atPath: file) {
            guard let mode = (try? manager.attributesOfItem(atPath: file))?[.posixPermissions] as? Int, mode & 0o077 != 0 else { continue }
            do {
                try manager.setAttributes([.posixPermissions: mode & 0o700], ofItemAtPath: file)
                logger.notice("store file was readable by other users; made it private", metadata: ["file": "\(file)"])
            } catch {
                logger.warning("store file is readable by other users and could not be made private", metadata: ["file": "\(file)"])
            }
        }
    }

    // MARK: Intake

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
                event: step.event, payload: step.payload, deliveries: submission.deliveries, receivedAt: submission.receivedAt)
            return step.accepted
        }
    }

    /// Writes an event, its deliveries and its instance's stage. Shared by intake and the scheduler.
    static func insertEvent(
        _ db: Database, id: String, idempotencyKey: String?, digest: String, event: PatchEvent, payload: String,
        deliveries: [DeliveryPlan], receivedAt: Date
    ) throws {
        let received = receivedAt.timeIntervalSince1970
        let maintenanceKey = event.maintenanceKey.storageValue
        try db.executeCached(
            sql: """
                INSERT INTO events (id, idempotency_key, body_sha256, type, app, environment, maintenance_key, payload, delivery_count, received_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                id, idempotencyKey, digest, event.type.rawValue, event.app,
                event.environment, maintenanceKey, payload, deliveries.count, received,
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
                    INSERT INTO events (id, idempotency_key, body_sha256, type, app, environment, maintenance_key, payload, delivery_count, received_at)
                    VALUES (?, ?, ?, ?, ?, 'relay', ?, ?, ?, ?)
                    """,
                arguments: [eventID, idempotencyKey, digest, RelayedMessage.eventType, message.source, lane, payload, deliveries.count, received])
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

    // MARK: Dispatch

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
    static func lease(_ db: Database, row: Row, leaseUntil: Double, now: Double) throws -> StoredClaim {
        let token = Identifier.make("lease")
        try db.executeCached(
            sql: """
                UPDATE deliveries SET state = 'in_flight', next_attempt_at = ?, lease_token = ?, attempts = attempts + 1, updated_at = ?
                WHERE seq = ?
                """, arguments: [leaseUntil, token, now, row["seq"] as Int64])
        return StoredClaim(
            id: row["id"], eventID: row["event_id"], target: row["target"], targetKind: row["target_kind"],
            displayTimeZone: row["display_timezone"], attempt: (row["attempts"] as Int) + 1,
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
            }
        let (stillOurs, extra, next) = try await committer.write { db -> (Bool, FollowUpState?, StoredClaim?) in
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
            return (true, extra, try Self.lease(db, row: head, leaseUntil: nowSeconds + lease.seconds, now: nowSeconds))
        }
        guard let next else { return Completion(stillOurs: stillOurs, extraObject: extra) }
        return Completion(stillOurs: stillOurs, next: try await claims(from: [next], now: nowSeconds).first, extraObject: extra)
    }

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

    /// Takes the file's server lock (`<db>.lock`, held until the process exits): one server per
    /// SQLite file, so a second `serve` fails instead of releasing the first one's live leases.
    public func lockForServing() throws {
        let lockPath = path + ".lock"
        let descriptor = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw OpenError(description: "cannot open the server lock '\(lockPath)': \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw OpenError(description: "another patchbay serve is using '\(path)' (its lock '\(lockPath)' is held): one server per SQLite file")
        }
        // Deliberately never closed: the lock goes with the process, also on kill -9.
        serverLock.withLock { $0 = descriptor }
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

    // MARK: Inspection

    /// From the counts the triggers keep (migration v8): a scrape costs five rows, not a scan.
    public func counts() async throws -> [DeliveryState: Int] {
        try await pool.read { db in
            var counts: [DeliveryState: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT state, n FROM delivery_counts WHERE n > 0") {
                if let state = DeliveryState(rawValue: row["state"]) { counts[state] = row["n"] }
            }
            return counts
        }
    }

    public func oldestDueAge(now: Date) async throws -> Duration {
        let oldest = try await pool.read { db in
            try Double.fetchOne(
                db, sql: "SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending' AND next_attempt_at <= ?",
                arguments: [now.timeIntervalSince1970])
        }
        guard let oldest else { return .zero }
        return .milliseconds(Int64(max(0, now.timeIntervalSince1970 - oldest) * 1000))
    }

    public func attempts(deliveryID: String) async throws -> [AttemptRecord] {
        try await pool.read { db in try Self.attempts(db, deliveryID: deliveryID) }
    }

    static func attempts(_ db: Database, deliveryID: String) throws -> [AttemptRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM attempts WHERE delivery_id = ? ORDER BY id", arguments: [deliveryID]).map { row in
            AttemptRecord(
                deliveryID: row["delivery_id"], number: row["number"], startedAt: Date(timeIntervalSince1970: row["started_at"]),
                latencyMilliseconds: row["latency_ms"], statusCode: row["status_code"], outcome: row["outcome"],
                reason: row["reason"], responseExcerpt: row["response_excerpt"]
            )
        }
    }

    /// What a listing reads: never the event's payload (up to the body limit, with every
    /// package name), which only `detail` needs (review F3).
    static let summaryColumns = """
        d.id, e.id AS event_id, e.type, e.app, e.environment, d.target, d.target_kind, d.state, d.attempts,
        d.next_attempt_at, d.created_at, d.updated_at, d.last_reason, d.display_timezone, d.resources
        """

    static func summary(_ row: Row) -> DeliverySummary {
        let state: String = row["state"]
        return DeliverySummary(
            id: row["id"], eventID: row["event_id"], eventType: row["type"], app: row["app"], environment: row["environment"],
            target: row["target"], targetKind: row["target_kind"], state: state, attempts: row["attempts"],
            nextAttemptAt: state == "pending" ? Date(timeIntervalSince1970: row["next_attempt_at"]) : nil,
            createdAt: Date(timeIntervalSince1970: row["created_at"]), updatedAt: Date(timeIntervalSince1970: row["updated_at"]),
            lastReason: row["last_reason"]
        )
    }

    public func list(_ filter: DeliveryFilter) async throws -> [DeliverySummary] {
        var clauses: [String] = []
        var arguments: StatementArguments = []
        if let state = filter.state {
            clauses.append("d.state = ?")
            _ = arguments.append(contentsOf: [state.rawValue])
        }
        if let target = filter.target {
            // A chat target's summaries (its `/digest` lane) are its deliveries too.
            clauses.append("d.target IN (?, ?)")
            _ = arguments.append(contentsOf: [target, DeliveryLane(target: target, isSummary: true).storedName])
        }
        if let app = filter.app {
            clauses.append("e.app = ?")
            _ = arguments.append(contentsOf: [app])
        }
        if let since = filter.since {
            clauses.append("d.updated_at >= ?")
            _ = arguments.append(contentsOf: [since.timeIntervalSince1970])
        }
        _ = arguments.append(contentsOf: [filter.limit, filter.offset])
        let whereClause = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        let sql =
            "SELECT \(Self.summaryColumns) FROM deliveries d JOIN events e ON e.seq = d.event_seq \(whereClause) ORDER BY d.seq DESC LIMIT ? OFFSET ?"
        let finalArguments = arguments
        return try await pool.read { db in
            try Row.fetchAll(db, sql: sql, arguments: finalArguments).map(Self.summary)
        }
    }

    /// `state IN (…)` lets the (state, updated_at) index serve the time range.
    public func countsByTarget(since: Date) async throws -> [String: [String: Int]] {
        try await pool.read { db in
            var counts: [String: [String: Int]] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT target, state, COUNT(*) AS n FROM deliveries
                    WHERE state IN ('pending', 'in_flight', 'delivered', 'dead', 'expired') AND updated_at >= ?
                    GROUP BY target, state
                    """, arguments: [since.timeIntervalSince1970])
            {
                counts[row["target"], default: [:]][row["state"]] = row["n"]
            }
            return counts
        }
    }

    public func lastFailure(targets: [String], since: Date) async throws -> DeliverySummary? {
        guard !targets.isEmpty else { return nil }
        let marks = Array(repeating: "?", count: targets.count).joined(separator: ", ")
        let arguments = StatementArguments(targets) + [since.timeIntervalSince1970]
        return try await pool.read { db in
            try Row.fetchOne(
                db,
                sql: """
                    SELECT \(Self.summaryColumns) FROM deliveries d JOIN events e ON e.seq = d.event_seq
                    WHERE d.target IN (\(marks)) AND d.state IN ('pending', 'in_flight', 'dead', 'expired') AND d.updated_at >= ?
                      AND d.last_reason IS NOT NULL
                    ORDER BY d.updated_at DESC LIMIT 1
                    """, arguments: arguments
            ).map(Self.summary)
        }
    }

    public func detail(id: String) async throws -> DeliveryDetail? {
        let found = try await pool.read { db -> (DeliverySummary, String, String, String, [AttemptRecord])? in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT \(Self.summaryColumns), e.payload FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.id = ?",
                    arguments: [id])
            else { return nil }
            let payload: String = row["payload"]
            return (Self.summary(row), payload, row["display_timezone"], row["resources"], try Self.attempts(db, deliveryID: id))
        }
        guard let (summary, payload, zone, resources, attempts) = found else { return nil }
        let (event, _) = try StoredPayload.decode(payload, type: summary.eventType, eventID: summary.eventID, receivedAt: summary.createdAt)
        return DeliveryDetail(summary: summary, event: event, displayTimeZone: zone, resources: StoredJSON.decodeList(resources), attempts: attempts)
    }

    public func replay(id: String, at now: Date, dryRun: Bool) async throws -> ReplayResult {
        try await committer.write { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT d.state, d.attempts, d.maintenance_key, d.target, e.type FROM deliveries d JOIN events e ON e.seq = d.event_seq
                        WHERE d.id = ?
                        """, arguments: [id])
            else {
                return .notFound
            }
            let state: String = row["state"]
            guard state != DeliveryState.pending.rawValue, state != DeliveryState.inFlight.rawValue else {
                return .alreadyQueued(state: state)
            }
            if dryRun { return .wouldReplay }
            let seconds = now.timeIntervalSince1970
            try db.execute(
                sql: """
                    INSERT INTO attempts (delivery_id, number, started_at, latency_ms, status_code, outcome, reason, response_excerpt)
                    VALUES (?, ?, ?, 0, NULL, 'replay', 'replay_requested', ?)
                    """,
                arguments: [
                    id, row["attempts"] as Int, seconds, "replayed by an operator from state \(state); renders with the current configuration",
                ])
            try db.execute(
                sql: """
                    UPDATE deliveries SET state = 'pending', next_attempt_at = ?, attempts = 0, throttles = 0, replays = replays + 1,
                                          replayed_at = ?, updated_at = ?, last_reason = 'replay_requested'
                    WHERE id = ?
                    """, arguments: [seconds, seconds, seconds, id])
            let target: String = row["target"]
            if DeliveryLane(storedName: target).isSummary {
                let key: String = row["maintenance_key"]
                if let json = try String.fetchOne(
                    db, sql: "SELECT state FROM followups WHERE maintenance_key = ? AND target = ?", arguments: [key, target]),
                    let forgotten = FollowUpState.forgettingStage(row["type"], in: json)
                {
                    try db.execute(
                        sql: "UPDATE followups SET state = ?, updated_at = ? WHERE maintenance_key = ? AND target = ?",
                        arguments: [forgotten, seconds, key, target])
                }
            }
            return .replayed
        }
    }

    public func recordUnmapped(source: String, dedupeID: String?, reason: String, body: String, at now: Date) async throws {
        try await committer.write { db in
            try db.execute(
                sql: "INSERT INTO relay_unmapped (source, dedupe_id, reason, body, received_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [source, dedupeID, reason, body, now.timeIntervalSince1970])
        }
    }

    public func unmapped(limit: Int) async throws -> [UnmappedMessage] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM relay_unmapped ORDER BY id DESC LIMIT ?", arguments: [limit]).map { row in
                UnmappedMessage(
                    source: row["source"], reason: row["reason"], body: row["body"],
                    receivedAt: Date(timeIntervalSince1970: row["received_at"]))
            }
        }
    }

    public func revokeSession(_ id: String, expires: Date, at now: Date) async throws {
        try await committer.write { db in
            try db.execute(sql: "DELETE FROM console_revocations WHERE expires_at < ?", arguments: [now.timeIntervalSince1970])
            try db.execute(
                sql: "INSERT OR REPLACE INTO console_revocations (session_id, expires_at) VALUES (?, ?)",
                arguments: [id, expires.timeIntervalSince1970])
        }
    }

    public func isSessionRevoked(_ id: String) async throws -> Bool {
        try await pool.read { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM console_revocations WHERE session_id = ?)", arguments: [id]) ?? false
        }
    }

    public func checkWritable() async throws {
        // A TEMP table lives in memory and stayed writable with a full disk: write a real row.
        let now = Date().timeIntervalSince1970
        try await committer.write { db in
            // 8 KiB of filler needs pages of its own: with no room left this fails as an event
            // would. Cleared at once, so the pages go back to the free list for the next probe.
            try db.execute(
                sql: "INSERT OR REPLACE INTO readiness_probe (id, checked_at, filler) VALUES (1, ?, zeroblob(8192))",
                arguments: [now])
            try db.execute(sql: "UPDATE readiness_probe SET filler = NULL WHERE id = 1")
        }
    }
}
