import Foundation
import Logging
import PatchbayCore
import PostgresNIO
import Synchronization

/// What several instances on one database share: liveness, wake-ups and vendor budgets. The
/// maintenance clock, fired once per cluster, is in +Maintenance.
extension PostgresStore {
    /// The channel every instance listens on; a notification only says "look for due work".
    static let wakeChannel = "patchbay_work"

    // MARK: Wake-ups

    /// Tells every listening instance that work is due, when this transaction commits. At most
    /// one notification per 20 ms per process: each commit of a NOTIFY takes a cluster-wide lock,
    /// and a listener only needs to know that there is something to claim. (Within one process
    /// the intake wakes its own dispatcher directly.)
    func announceWork(on connection: PostgresConnection) async throws {
        guard claimNotifySlot() else { return }
        try await Self.rows("SELECT pg_notify(\(Self.wakeChannel), '')", on: connection, logger: logger)
    }

    /// Whether this process may send a wake-up now (at most one per 20 ms); if so, the slot is taken.
    func claimNotifySlot() -> Bool {
        let now = ContinuousClock.now
        return lastNotify.withLock { last -> Bool in
            if let previous = last, now - previous < .milliseconds(20) { return false }
            last = now
            return true
        }
    }

    /// Calls `onWork` for every notification until cancelled; reconnects (and calls `onWork` once,
    /// in case one was missed) after losing the connection. The poll keeps working meanwhile.
    public func listenForWork(_ onWork: @escaping @Sendable () -> Void) async {
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.wakeChannel) { notifications in
                        onWork()
                        for try await _ in notifications { onWork() }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning(
                    "lost the LISTEN connection; relying on polling until it is back",
                    metadata: ["error": "\(Self.storeError(error))"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    // MARK: Liveness

    /// Registers this process in `instances`; `serve` calls it before claiming anything. Also
    /// takes the first measure of the database's clock (`clusterNow`).
    public func joinCluster(version: String) async throws {
        let host = ProcessInfo.processInfo.hostName
        let pid = Int(ProcessInfo.processInfo.processIdentifier)
        try await transaction { [self] connection in
            try await measureClock(on: connection)
            try await Self.rows(
                """
                INSERT INTO instances (id, host, pid, version, started_at, heartbeat_at)
                VALUES (\(instanceID), \(host), \(pid), \(version), clock_timestamp(), clock_timestamp())
                """, on: connection, logger: logger)
        }
    }

    /// Renews this instance's heartbeat on a pooled connection (tests; `serve` beats on a
    /// connection of its own, `heartbeat(on:)`). Returns how long this instance had been silent.
    @discardableResult
    public func heartbeat() async throws -> Duration {
        try await read { [self] connection in try await heartbeat(on: connection) }
    }

    /// Renews this instance's heartbeat (the database's clock: instances' clocks need not agree),
    /// measures the clock offset, and returns how long this instance itself had been silent, by
    /// the database's clock: the time since its previous beat, or since the database started if
    /// that is later (a restart). A long silence means this instance could not reach the
    /// database either, so it must not judge the others (`releaseLeasesOfSilentInstances`).
    public func heartbeat(on connection: PostgresConnection) async throws -> Duration {
        try await measureClock(on: connection)
        let previous = try await Self.rows(
            """
            UPDATE instances i SET heartbeat_at = clock_timestamp()
            FROM (SELECT heartbeat_at FROM instances WHERE id = \(instanceID)) old
            WHERE i.id = \(instanceID)
            RETURNING EXTRACT(EPOCH FROM (clock_timestamp() - GREATEST(old.heartbeat_at, pg_postmaster_start_time())))::float8
            """, on: connection, logger: logger)
        if let silent = try previous.first?.decode(Double.self) {
            return .milliseconds(Int64(max(0, silent) * 1000))
        }
        // Another instance took us for dead and removed the row: come back. Our own silence is
        // unknown, so it counts as long (no judging the others on this beat).
        try await Self.rows(
            """
            INSERT INTO instances (id, host, pid, version, started_at, heartbeat_at)
            VALUES (\(instanceID), \(ProcessInfo.processInfo.hostName), \(Int(ProcessInfo.processInfo.processIdentifier)),
                    \(PatchbayVersion.current), clock_timestamp(), clock_timestamp())
            ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at
            """, on: connection, logger: logger)
        return .seconds(3600)
    }

    /// Deliveries leased by instances silent for longer than `silence` are due again at once, and
    /// those instances are forgotten. Silence is judged on the database's clock and counted from
    /// the database's start at the latest, so a restart of the database is nobody's death. The
    /// caller judges only while its own beats have gone through for a whole `silence`
    /// (`ObserverContinuity`). A lease's token still fences the old holder: if it was only slow,
    /// its late result is refused (`complete` says so).
    public func releaseLeasesOfSilentInstances(silence: Duration, now: Date) async throws -> Int {
        try await transaction { [self] connection in
            try await releaseLeasesOfSilentInstances(silence: silence, now: now, on: connection)
        }
    }

    /// As above, in one statement on the given connection (the heartbeat's own).
    public func releaseLeasesOfSilentInstances(silence: Duration, now: Date, on connection: PostgresConnection) async throws -> Int {
        let seconds = Double(Int64(silence.milliseconds)) / 1000
        let released =
            try await Self.rows(
                """
                WITH silent AS (
                    SELECT id FROM instances
                    WHERE id <> \(instanceID)
                      AND GREATEST(heartbeat_at, pg_postmaster_start_time()) < clock_timestamp() - make_interval(secs => \(seconds))
                    FOR UPDATE SKIP LOCKED
                ), released AS (
                    UPDATE deliveries SET state = 'pending', next_attempt_at = \(now), lease_token = NULL, leased_by = NULL, updated_at = \(now)
                    WHERE state = 'in_flight' AND leased_by IN (SELECT id FROM silent)
                    RETURNING 1
                ), forgotten AS (
                    DELETE FROM instances WHERE id IN (SELECT id FROM silent)
                )
                SELECT COUNT(*)::bigint FROM released
                """, on: connection, logger: logger
            ).first.map { try $0.decode(Int64.self) } ?? 0
        if released > 0 { try await announceWork(on: connection) }
        return Int(released)
    }

    /// A graceful stop: nothing is leased any more (the dispatcher finished), so the row goes.
    public func leaveCluster() async throws {
        try await transaction { [self] connection in
            try await Self.rows(
                """
                UPDATE deliveries SET state = 'pending', lease_token = NULL, leased_by = NULL WHERE state = 'in_flight' AND leased_by = \(instanceID)
                """, on: connection, logger: logger)
            try await Self.rows("DELETE FROM instances WHERE id = \(instanceID)", on: connection, logger: logger)
        }
    }
}

/// One budget per vendor key for the whole cluster: a row per key in `pacing_budgets`, read and
/// moved under its row lock with the database's clock. Keys paced above
/// `sharedRateLimit` per second are not vendor limits but Patchbay's own politeness (a webhook
/// with pacing turned up); those stay per process, so fast targets pay no round trip per send.
public struct SharedPacingBudget: PacingBudget {
    let store: PostgresStore
    let local: any PacingBudget
    /// Rates at or below this are shared by the cluster.
    public static let sharedRateLimit = 50.0

    public init(store: PostgresStore, local: any PacingBudget) {
        self.store = store
        self.local = local
    }

    public func reserve(key: String, policy: PacingPolicy, now: Date, maxWait: Duration) async throws -> PacingDecision {
        guard policy.rate <= Self.sharedRateLimit else { return try await local.reserve(key: key, policy: policy, now: now, maxWait: maxWait) }
        return try await store.gcra(key: key, column: "next_slot", policy: Self.guarded(policy), maxWait: maxWait.seconds, processNow: now)
    }

    /// Sends admitted by different instances reach the vendor after different delays (a busy
    /// worker, a new connection): each real send is spaced a tenth of an interval more than the
    /// rate (25-250 ms), so the vendor never counts more than the rate in any window. Measured on
    /// a loaded 2-core machine: 25 ms left two Statuspage requests 0.974 s apart.
    static func sendGuard(for policy: PacingPolicy) -> Double {
        min(0.25, max(0.025, policy.interval / 10))
    }

    /// The policy both budgets run at: reservations and admissions at one rate (before, sends were
    /// admitted a guard slower than slots were reserved, and workers piled up waiting to be
    /// admitted, holding dispatcher slots and leases: review F8).
    static func guarded(_ policy: PacingPolicy) -> PacingPolicy {
        var guarded = policy
        guarded.rate = 1 / (policy.interval + sendGuard(for: policy))
        return guarded
    }

    public func admit(key: String, policy: PacingPolicy, now: Date) async throws -> Duration {
        guard policy.rate <= Self.sharedRateLimit else { return try await local.admit(key: key, policy: policy, now: now) }
        switch try await store.gcra(key: key, column: "next_send", policy: Self.guarded(policy), maxWait: 0, processNow: now) {
        case .go: return .zero
        case .later(let at): return .milliseconds(Int64((max(0, at.timeIntervalSince(now)) * 1000).rounded(.up)))
        }
    }

    public func block(key: String, policy: PacingPolicy, until: Date) async throws {
        guard policy.rate <= Self.sharedRateLimit else { return try await local.block(key: key, policy: policy, until: until) }
        try await store.blockBudget(key: key, policy: policy, until: until)
    }
}

extension PostgresStore {
    /// GCRA on one budget row: the slot is taken when it comes within `maxWait`. The answer is in
    /// the caller's clock (`processNow` plus the wait the database computed), so clock skew
    /// between instances does not matter.
    func gcra(key: String, column: String, policy: PacingPolicy, maxWait: Double, processNow: Date) async throws -> PacingDecision {
        let interval = policy.interval
        let tolerance = policy.tolerance
        let column = column == "next_send" ? "next_send" : "next_slot"
        return try await transaction { [self] connection -> PacingDecision in
            try await Self.rows(
                """
                INSERT INTO pacing_budgets (key, next_slot, next_send) VALUES (\(key), clock_timestamp(), clock_timestamp())
                ON CONFLICT (key) DO NOTHING
                """, on: connection, logger: logger)
            guard
                let row = try await Self.rows(
                    """
                    SELECT EXTRACT(EPOCH FROM (GREATEST(\(unescaped: column), clock_timestamp()) - clock_timestamp()))::float8 AS ahead
                    FROM pacing_budgets WHERE key = \(key) FOR UPDATE
                    """, on: connection, logger: logger
                ).first
            else { throw StoreError.transient("pacing budget row vanished") }
            // `ahead`: how far the budget's next arrival time is from now.
            let ahead = try row.decode(Double.self)
            let wait = max(0, ahead - tolerance)
            guard wait <= maxWait else { return .later(at: processNow.addingTimeInterval(wait)) }
            try await Self.rows(
                """
                UPDATE pacing_budgets SET \(unescaped: column) = GREATEST(\(unescaped: column), clock_timestamp()) + make_interval(secs => \(interval))
                WHERE key = \(key)
                """, on: connection, logger: logger)
            return .go(after: .milliseconds(Int64(wait * 1000)))
        }
    }

    /// No reservation for `key` before `until` (plus the burst tolerance, as in memory).
    func blockBudget(key: String, policy: PacingPolicy, until: Date) async throws {
        // `until` is on the cluster's clock (the dispatcher's), not this process's.
        let seconds = max(0, until.timeIntervalSince(clusterNow())) + policy.tolerance
        try await transaction { [self] connection in
            try await Self.rows(
                """
                INSERT INTO pacing_budgets AS b (key, next_slot, next_send)
                VALUES (\(key), clock_timestamp() + make_interval(secs => \(seconds)), clock_timestamp())
                ON CONFLICT (key) DO UPDATE SET next_slot = GREATEST(b.next_slot, EXCLUDED.next_slot)
                """, on: connection, logger: logger)
        }
    }
}
