import Foundation
import GRDB
import PatchbayCore

/// What operators read and do: counts, lists, one delivery with its attempts, replay, console
/// session revocations, and the writability probe behind /readyz. Retention is in +Retention.
extension SQLiteStore: OperatorStore {
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
        d.next_attempt_at, d.created_at, d.updated_at, d.last_reason, d.display_timezone, d.resources, e.sender
        """

    static func summary(_ row: Row) -> DeliverySummary {
        let state: String = row["state"]
        return DeliverySummary(
            id: row["id"], eventID: row["event_id"], eventType: row["type"], app: row["app"], environment: row["environment"],
            target: row["target"], targetKind: row["target_kind"], state: state, attempts: row["attempts"],
            nextAttemptAt: state == "pending" ? Date(timeIntervalSince1970: row["next_attempt_at"]) : nil,
            createdAt: Date(timeIntervalSince1970: row["created_at"]), updatedAt: Date(timeIntervalSince1970: row["updated_at"]),
            lastReason: row["last_reason"], sender: row["sender"]
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
            // A chat target's summaries and live message (its `/digest` and `/live` lanes) are its deliveries too.
            clauses.append("d.target IN (?, ?, ?)")
            _ = arguments.append(contentsOf: StatementArguments(DeliveryLane.storedNames(of: target)))
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
                    WHERE state IN ('pending', 'in_flight', 'delivered', 'dead', 'expired', 'superseded') AND updated_at >= ?
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
            let target: String = row["target"]
            let step = ReplayStep.decide(state: row["state"], storedLane: target, eventType: row["type"], dryRun: dryRun)
            guard case .replay(let note, let forgetStage) = step else { return step.answer }
            let seconds = now.timeIntervalSince1970
            try db.execute(
                sql: """
                    INSERT INTO attempts (delivery_id, number, started_at, latency_ms, status_code, outcome, reason, response_excerpt)
                    VALUES (?, ?, ?, 0, NULL, 'replay', 'replay_requested', ?)
                    """,
                arguments: [id, row["attempts"] as Int, seconds, note])
            try db.execute(
                sql: """
                    UPDATE deliveries SET state = 'pending', next_attempt_at = ?, attempts = 0, throttles = 0, replays = replays + 1,
                                          replayed_at = ?, updated_at = ?, last_reason = 'replay_requested'
                    WHERE id = ?
                    """, arguments: [seconds, seconds, seconds, id])
            if let forgetStage {
                let key: String = row["maintenance_key"]
                if let json = try String.fetchOne(
                    db, sql: "SELECT state FROM followups WHERE maintenance_key = ? AND target = ?", arguments: [key, target]),
                    let forgotten = FollowUpState.forgettingStage(forgetStage, in: json)
                {
                    try db.execute(
                        sql: "UPDATE followups SET state = ?, updated_at = ? WHERE maintenance_key = ? AND target = ?",
                        arguments: [forgotten, seconds, key, target])
                }
            }
            return step.answer
        }
    }

    @discardableResult
    public func revokeSession(_ id: String, expires: Date, at now: Date) async throws -> Bool {
        try await committer.write { db in
            try db.execute(sql: "DELETE FROM console_revocations WHERE expires_at < ?", arguments: [now.timeIntervalSince1970])
            try db.execute(
                sql: "INSERT OR IGNORE INTO console_revocations (session_id, expires_at) VALUES (?, ?)",
                arguments: [id, expires.timeIntervalSince1970])
            return db.changesCount == 1
        }
    }

    public func isSessionRevoked(_ id: String) async throws -> Bool {
        try await pool.read { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM console_revocations WHERE session_id = ?)", arguments: [id]) ?? false
        }
    }
}
