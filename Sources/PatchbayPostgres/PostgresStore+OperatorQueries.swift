import Foundation
import Logging
import PatchbayCore
import PostgresNIO

/// Operators' view on PostgreSQL: the SQLite store's queries, with the locks several instances
/// (and an operator's CLI beside them) need. Retention is in +Retention.
extension PostgresStore: OperatorStore {
    // MARK: Rows

    /// What a listing reads: never the event's payload, which only `detail` needs (review F3).
    static let summaryColumns = """
        d.id, e.id AS event_id, e.type, e.app, e.environment, d.target, d.target_kind, d.state, d.attempts,
        d.next_attempt_at, d.created_at, d.updated_at, d.last_reason, d.display_timezone, d.resources, e.sender
        """

    /// A row of `summaryColumns`, selected `FROM deliveries d JOIN events e ON e.seq = d.event_seq`.
    static func summary(_ row: PostgresRandomAccessRow) throws -> DeliverySummary {
        let state = try row.value("state", as: String.self)
        // next_attempt_at is the lease's end while in flight: only a pending delivery has a next attempt.
        let nextAttemptAt: Date? = try state == DeliveryState.pending.rawValue ? row.value("next_attempt_at", as: Date.self) : nil
        return DeliverySummary(
            id: try row.value("id", as: String.self), eventID: try row.value("event_id", as: String.self),
            eventType: try row.value("type", as: String.self), app: try row.value("app", as: String.self),
            environment: try row.value("environment", as: String.self), target: try row.value("target", as: String.self),
            targetKind: try row.value("target_kind", as: String.self), state: state, attempts: try row.value("attempts", as: Int.self),
            nextAttemptAt: nextAttemptAt, createdAt: try row.value("created_at", as: Date.self),
            updatedAt: try row.value("updated_at", as: Date.self), lastReason: try row.value("last_reason", as: String?.self),
            sender: try row.value("sender", as: String?.self)
        )
    }

    /// The `n` column of a one-row `SELECT COUNT(*) AS n …`.
    static func fetchCount(_ query: PostgresQuery, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        guard let row = try await Self.rows(query, on: connection, logger: logger).first else { return 0 }
        return try row.columns.value("n", as: Int.self)
    }

    // MARK: Inspection

    /// Counted from the state index at each call. SQLite keeps the counts in a table its triggers
    /// update; here that table's five rows would be hot rows every intake, claim and completion of
    /// every instance locks, serializing the whole cluster's writers on them.
    public func counts() async throws -> [DeliveryState: Int] {
        try await read { [self] connection -> [DeliveryState: Int] in
            var counts: [DeliveryState: Int] = [:]
            for row in try await Self.rows("SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state", on: connection, logger: logger) {
                let columns = row.columns
                if let state = DeliveryState(rawValue: try columns.value("state", as: String.self)) {
                    counts[state] = try columns.value("n", as: Int.self)
                }
            }
            return counts
        }
    }

    public func oldestDueAge(now: Date) async throws -> Duration {
        let oldest = try await read { [self] connection -> Date? in
            guard
                let row = try await Self.rows(
                    """
                    SELECT MIN(next_attempt_at) AS oldest FROM deliveries WHERE state = 'pending' AND next_attempt_at <= \(now)
                    """, on: connection, logger: logger
                ).first
            else { return nil }
            return try row.columns.value("oldest", as: Date?.self)
        }
        guard let oldest else { return .zero }
        return .milliseconds(Int64(max(0, now.timeIntervalSince(oldest)) * 1000))
    }

    public func attempts(deliveryID: String) async throws -> [AttemptRecord] {
        try await read { [self] connection in try await Self.attempts(on: connection, logger: logger, deliveryID: deliveryID) }
    }

    static func attempts(on connection: PostgresConnection, logger: Logger, deliveryID: String) async throws -> [AttemptRecord] {
        try await Self.rows(
            """
            SELECT delivery_id, number, started_at, latency_ms, status_code, outcome, reason, response_excerpt
            FROM attempts WHERE delivery_id = \(deliveryID) ORDER BY id
            """, on: connection, logger: logger
        ).map { row -> AttemptRecord in
            let columns = row.columns
            return AttemptRecord(
                deliveryID: try columns.value("delivery_id", as: String.self), number: try columns.value("number", as: Int.self),
                startedAt: try columns.value("started_at", as: Date.self), latencyMilliseconds: try columns.value("latency_ms", as: Double.self),
                statusCode: try columns.value("status_code", as: Int?.self), outcome: try columns.value("outcome", as: String.self),
                reason: try columns.value("reason", as: String.self), responseExcerpt: try columns.value("response_excerpt", as: String?.self)
            )
        }
    }

    public func list(_ filter: DeliveryFilter) async throws -> [DeliverySummary] {
        // Placeholders are numbered as the values are bound, so the clauses can come and go.
        var clauses: [String] = []
        var bindings = PostgresBindings()
        if let state = filter.state {
            bindings.append(state.rawValue)
            clauses.append("d.state = $\(bindings.count)")
        }
        if let target = filter.target {
            // A chat target's summaries and live message (its `/digest` and `/live` lanes) are its deliveries too.
            for lane in DeliveryLane.storedNames(of: target) { bindings.append(lane) }
            clauses.append("d.target IN ($\(bindings.count - 2), $\(bindings.count - 1), $\(bindings.count))")
        }
        if let app = filter.app {
            bindings.append(app)
            clauses.append("e.app = $\(bindings.count)")
        }
        if let since = filter.since {
            bindings.append(since)
            clauses.append("d.updated_at >= $\(bindings.count)")
        }
        bindings.append(filter.limit)
        bindings.append(filter.offset)
        let whereClause = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        let query = PostgresQuery(
            unsafeSQL:
                "SELECT \(Self.summaryColumns) FROM deliveries d JOIN events e ON e.seq = d.event_seq \(whereClause) ORDER BY d.seq DESC LIMIT $\(bindings.count - 1) OFFSET $\(bindings.count)",
            binds: bindings
        )
        return try await read { [self] connection -> [DeliverySummary] in
            try await Self.rows(query, on: connection, logger: logger).map { try Self.summary($0.columns) }
        }
    }

    /// `state IN (…)` lets the (state, updated_at) index serve the time range.
    public func countsByTarget(since: Date) async throws -> [String: [String: Int]] {
        try await read { [self] connection in
            var counts: [String: [String: Int]] = [:]
            for row in try await Self.rows(
                """
                SELECT target, state, COUNT(*)::bigint FROM deliveries
                WHERE state IN ('pending', 'in_flight', 'delivered', 'dead', 'expired', 'superseded') AND updated_at >= \(since)
                GROUP BY target, state
                """, on: connection, logger: logger)
            {
                let (target, state, count) = try row.decode((String, String, Int64).self)
                counts[target, default: [:]][state] = Int(count)
            }
            return counts
        }
    }

    public func lastFailure(targets: [String], since: Date) async throws -> DeliverySummary? {
        guard !targets.isEmpty else { return nil }
        return try await read { [self] connection in
            try await Self.rows(
                """
                SELECT \(unescaped: Self.summaryColumns) FROM deliveries d JOIN events e ON e.seq = d.event_seq
                WHERE d.target = ANY(\(targets)) AND d.state IN ('pending', 'in_flight', 'dead', 'expired') AND d.updated_at >= \(since)
                  AND d.last_reason IS NOT NULL
                ORDER BY d.updated_at DESC LIMIT 1
                """, on: connection, logger: logger
            ).first.map { try Self.summary($0.columns) }
        }
    }

    public func detail(id: String) async throws -> DeliveryDetail? {
        let found = try await read { [self] connection -> (DeliverySummary, String, String, String, [AttemptRecord])? in
            guard
                let row = try await Self.rows(
                    """
                    SELECT \(unescaped: Self.summaryColumns), e.payload FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.id = \(id)
                    """, on: connection, logger: logger
                ).first?.columns
            else { return nil }
            let summary = try Self.summary(row)
            let payload = try row.value("payload", as: String.self)
            let zone = try row.value("display_timezone", as: String.self)
            let resources = try row.value("resources", as: String.self)
            let attempts = try await Self.attempts(on: connection, logger: logger, deliveryID: id)
            return (summary, payload, zone, resources, attempts)
        }
        guard let (summary, payload, zone, resources, attempts) = found else { return nil }
        let (event, _) = try StoredPayload.decode(payload, type: summary.eventType, eventID: summary.eventID, receivedAt: summary.createdAt)
        return DeliveryDetail(summary: summary, event: event, displayTimeZone: zone, resources: StoredJSON.decodeList(resources), attempts: attempts)
    }

    public func replay(id: String, at now: Date, dryRun: Bool) async throws -> ReplayResult {
        try await transaction { [self] connection -> ReplayResult in
            // The row stays locked until commit: a second operator replaying at the same moment
            // waits here, then reads it pending and queues nothing.
            guard
                let row = try await Self.rows(
                    """
                    SELECT d.state, d.attempts, d.maintenance_key, d.target, e.type FROM deliveries d JOIN events e ON e.seq = d.event_seq
                    WHERE d.id = \(id) FOR UPDATE OF d
                    """, on: connection, logger: logger
                ).first?.columns
            else { return .notFound }
            let target = try row.value("target", as: String.self)
            let step = ReplayStep.decide(
                state: try row.value("state", as: String.self), storedLane: target, eventType: try row.value("type", as: String.self),
                dryRun: dryRun)
            guard case .replay(let note, let forgetStage) = step else { return step.answer }
            let attempts = try row.value("attempts", as: Int.self)
            let lane = try row.value("maintenance_key", as: String.self)
            try await Self.rows(
                """
                INSERT INTO attempts (delivery_id, number, started_at, latency_ms, status_code, outcome, reason, response_excerpt)
                VALUES (\(id), \(attempts), \(now), 0, NULL, 'replay', 'replay_requested', \(note))
                """, on: connection, logger: logger)
            // A fresh place at the end of its lane, numbered under the lane row's lock as intake
            // numbers: its old number may have been handed out again (a lane's row goes once
            // nothing in it is unfinished, and its numbering then starts over), and two unfinished
            // deliveries of one lane with the same number could both be taken for its head and
            // leased at once. So it goes behind whatever its lane has queued.
            try await Self.rows(
                """
                WITH lane AS (
                    INSERT INTO lanes AS l (maintenance_key, target, last_seq) VALUES (\(lane), \(target), 1)
                    ON CONFLICT (maintenance_key, target) DO UPDATE SET last_seq = l.last_seq + 1
                    RETURNING last_seq
                )
                UPDATE deliveries SET state = 'pending', next_attempt_at = \(now), lane_seq = lane.last_seq, attempts = 0, throttles = 0,
                                      replays = replays + 1, replayed_at = \(now), updated_at = \(now), last_reason = 'replay_requested',
                                      lease_token = NULL, leased_by = NULL
                FROM lane
                WHERE id = \(id)
                """, on: connection, logger: logger)
            if let forgetStage {
                // A replayed summary names its stage's servers again (see FollowUpState.forgettingStage).
                if let json = try await Self.rows(
                    "SELECT state FROM followups WHERE maintenance_key = \(lane) AND target = \(target) FOR UPDATE",
                    on: connection, logger: logger
                ).first.map({ try $0.decode(String.self) }),
                    let forgotten = FollowUpState.forgettingStage(forgetStage, in: json)
                {
                    try await Self.rows(
                        "UPDATE followups SET state = \(forgotten), updated_at = \(now) WHERE maintenance_key = \(lane) AND target = \(target)",
                        on: connection, logger: logger)
                }
            }
            try await announceWork(on: connection)
            return step.answer
        }
    }

    public func checkWritable() async throws {
        // A real row, committed: a server that lost its disk, ran out of space or became a
        // read-only standby (a failover) fails here as intake would.
        let now = Date()
        try await transaction { [self] connection in
            _ = try await Self.rows(
                """
                INSERT INTO readiness_probe (id, checked_at) VALUES (1, \(now))
                ON CONFLICT (id) DO UPDATE SET checked_at = EXCLUDED.checked_at
                """, on: connection, logger: logger)
        }
    }

    // MARK: Console sessions

    @discardableResult
    public func revokeSession(_ id: String, expires: Date, at now: Date) async throws -> Bool {
        try await transaction { [self] connection in
            try await Self.rows("DELETE FROM console_revocations WHERE expires_at < \(now)", on: connection, logger: logger)
            return try await !Self.rows(
                """
                INSERT INTO console_revocations (session_id, expires_at) VALUES (\(id), \(expires))
                ON CONFLICT (session_id) DO NOTHING
                RETURNING 1
                """, on: connection, logger: logger
            ).isEmpty
        }
    }

    public func isSessionRevoked(_ id: String) async throws -> Bool {
        try await read { [self] connection in
            try await !Self.rows("SELECT 1 FROM console_revocations WHERE session_id = \(id)", on: connection, logger: logger).isEmpty
        }
    }
}
