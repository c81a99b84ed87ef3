import Foundation
import Logging
import PatchbayCore
import PatchbayTestSupport
import PostgresNIO
import Testing

@testable import PatchbayPostgres

/// What only the PostgreSQL store has: settings, deadlines, and the parts several instances share
/// (migrations, pacing budgets, heartbeats). Two `PostgresStore`s on one schema stand for two
/// instances; scripts/cluster-test.py does the same with real processes.
@Suite("PostgreSQL store: settings and cluster")
struct PostgresClusterTests {
    /// In the past: the store checks leases and notices against the database's clock as well
    /// as the caller's, so times the tests drive must not be ahead of the real one.
    let t0 = Date(timeIntervalSince1970: 1_700_000_000)

    @Test func urlsAreParsedAndErrorsNeverRepeatThePassword() throws {
        let settings = try PostgresSettings(url: "postgres://pat%40chbay:s3cr%2Ft@db.internal:6543/queue?sslmode=verify-full", poolSize: 4)
        #expect(settings.username == "pat@chbay")
        #expect(settings.password?.reveal() == "s3cr/t")
        #expect(settings.host == "db.internal" && settings.port == 6543 && settings.database == "queue")
        #expect(settings.sslMode == .verifyFull)
        #expect(!settings.redactedURL.contains("s3cr"))
        for bad in ["mysql://u:hunter2@h/db", "postgres://u:hunter2@h", "postgres://u:hunter2@h/db?sslmode=sometimes", "postgres://:hunter2@h/db"] {
            #expect {
                _ = try PostgresSettings(url: bad)
            } throws: { error in
                !String(describing: error).contains("hunter2")
            }
        }
    }

    /// postgres-nio's pool would wait about a minute for an unreachable server; intake must
    /// answer 503 long before that.
    @Test func anUnreachableServerIsATransientErrorWithinTheDeadline() async throws {
        let port = unusedLoopbackPort()
        var settings = try PostgresSettings(url: "postgres://patchbay@127.0.0.1:\(port)/patchbay?sslmode=disable")
        settings.acquireTimeout = .seconds(1)
        let store = try PostgresStore(settings: settings, logger: Logger(label: "test"))
        let started = ContinuousClock.now
        try await store.withRunningClient {
            do {
                _ = try await store.counts()
                Issue.record("counts() answered without a server")
            } catch let error as StoreError {
                #expect(error.isTransient, "\(error)")
            }
        }
        // Far below the pool's own minute, with room for a machine busy building (5.9 s seen).
        #expect(ContinuousClock.now - started < .seconds(20))
    }

    @Test(.enabled(if: StoreBackend.postgresURL != nil, "needs PATCHBAY_TEST_POSTGRES_URL"))
    func instancesStartingTogetherApplyEachMigrationOnce() async throws {
        let schema = "t_mig_" + UUID().uuidString.prefix(8).lowercased()
        let stores = try (0..<4).map { _ in try PostgresTestServer.store(schema: schema, poolSize: 2) }
        try await withRunning(stores) {
            let reports = try await withThrowingTaskGroup(of: PostgresStore.MigrationReport.self) { group in
                for store in stores { group.addTask { try await store.migrate() } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(reports.flatMap(\.applied).count == PostgresMigrations.all.count, "each migration applied by exactly one instance")
            #expect(reports.allSatisfy { $0.current == PostgresMigrations.all.last?.version })
            try await PostgresTestServer.drop(stores[0])
        }
    }

    /// One budget per vendor key for the cluster: a slot taken by one instance is gone for the
    /// other, and a vendor's pause recorded by one holds the other back.
    @Test(.enabled(if: StoreBackend.postgresURL != nil, "needs PATCHBAY_TEST_POSTGRES_URL"))
    func pacingBudgetsAndPausesAreSharedByTheCluster() async throws {
        let schema = "t_pace_" + UUID().uuidString.prefix(8).lowercased()
        let a = try PostgresTestServer.store(schema: schema, poolSize: 2)
        let b = try PostgresTestServer.store(schema: schema, poolSize: 2)
        try await withRunning([a, b]) {
            try await a.migrate()
            let budgetA = SharedPacingBudget(store: a, local: NoLocalBudget())
            let budgetB = SharedPacingBudget(store: b, local: NoLocalBudget())
            let statuspage = PacingPolicy(rate: 1, burst: 1)
            let now = Date()
            #expect(try await budgetA.reserve(key: "statuspage:k1", policy: statuspage, now: now, maxWait: .seconds(1)) == .go(after: .zero))
            guard case .go(let wait) = try await budgetB.reserve(key: "statuspage:k1", policy: statuspage, now: now, maxWait: .seconds(2)) else {
                Issue.record("the second instance got no slot within 2 s")
                return
            }
            #expect(wait > .milliseconds(800), "the other instance's slot comes a second later, not at once: \(wait)")
            // A third request that may not wait is told when to come back, about two seconds on.
            guard case .later(let at) = try await budgetA.reserve(key: "statuspage:k1", policy: statuspage, now: now, maxWait: .zero) else {
                Issue.record("a third slot within the same second")
                return
            }
            #expect(at.timeIntervalSince(now) > 1.5)
            // Another key is independent.
            #expect(try await budgetB.reserve(key: "statuspage:k2", policy: statuspage, now: now, maxWait: .zero) == .go(after: .zero))
            // A Retry-After of 30 s seen by A holds B back.
            try await budgetA.block(key: "slack:ops", policy: PacingPolicy(rate: 1, burst: 3), until: Date().addingTimeInterval(30))
            guard
                case .later(let resume) = try await budgetB.reserve(
                    key: "slack:ops", policy: PacingPolicy(rate: 1, burst: 3), now: Date(), maxWait: .seconds(1))
            else {
                Issue.record("the pause did not reach the other instance")
                return
            }
            #expect(resume.timeIntervalSinceNow > 25)
            try await PostgresTestServer.drop(a)
        }
    }

    /// A `kill -9`ed instance stops its heartbeat; the others release its leases within seconds
    /// and a late result from it is refused.
    @Test(.enabled(if: StoreBackend.postgresURL != nil, "needs PATCHBAY_TEST_POSTGRES_URL"))
    func aSilentInstancesLeasesAreReleasedAndItsLateResultRefused() async throws {
        let schema = "t_beat_" + UUID().uuidString.prefix(8).lowercased()
        let dead = try PostgresTestServer.store(schema: schema, poolSize: 2)
        let alive = try PostgresTestServer.store(schema: schema, poolSize: 2)
        try await withRunning([dead, alive]) {
            try await dead.migrate()
            try await dead.joinCluster(version: "test")
            try await alive.joinCluster(version: "test")
            let event = PatchEvent(
                type: .started, app: "App1", environment: "Production", instance: Instance(id: "i-1"),
                window: MaintenanceWindow(id: "mw-1", start: t0, end: t0.addingTimeInterval(900)))
            _ = try await dead.accept(
                EventSubmission(
                    eventID: Identifier.make("evt"), idempotencyKey: nil, bodyDigest: "d", event: event,
                    receivedAt: t0, deliveries: [DeliveryPlan(target: "ops", targetKind: "slack", displayTimeZone: "UTC")]))
            let claims = try await dead.claimDue(now: t0, limit: 10, lease: .seconds(600))
            #expect(claims.count == 1)
            #expect(try await alive.claimDue(now: t0, limit: 10, lease: .seconds(600)).isEmpty, "leased by the other instance")
            // Both are alive: nothing is released.
            #expect(try await alive.releaseLeasesOfSilentInstances(silence: .seconds(5), now: t0) == 0)
            // The first goes silent (its heartbeat stops), as after kill -9.
            try await alive.transaction { connection in
                _ = try await PostgresStore.rows(
                    "UPDATE instances SET heartbeat_at = clock_timestamp() - interval '6 seconds' WHERE id = \(dead.instanceID)",
                    on: connection, logger: Logger(label: "test"))
            }
            #expect(try await alive.heartbeat() < .seconds(2))
            #expect(try await alive.releaseLeasesOfSilentInstances(silence: .seconds(5), now: t0) == 1)
            let taken = try await alive.claimDue(now: t0, limit: 10, lease: .seconds(600))
            #expect(taken.map(\.id) == claims.map(\.id), "due again at once, not after the 600 s lease")
            let late = AttemptRecord(
                deliveryID: claims[0].id, number: 1, startedAt: t0, latencyMilliseconds: 1, statusCode: 200,
                outcome: "delivered", reason: "delivered", responseExcerpt: nil)
            #expect(try await dead.complete(claims[0], attempt: late, transition: .delivered, followUp: nil, at: t0) == false)
            #expect(try await alive.complete(taken[0], attempt: late, transition: .delivered, followUp: nil, at: t0) == true)
            let instances = try await alive.read { connection in
                try await PostgresStore.rows("SELECT COUNT(*) FROM instances", on: connection, logger: Logger(label: "test")).first?.decode(Int.self)
            }
            #expect(instances == 1, "the silent instance is forgotten")
            try await PostgresTestServer.drop(alive)
        }
    }

    /// Two instances' schedulers ticking at the same moment: every planned notice becomes one
    /// event, never two.
    @Test(.enabled(if: StoreBackend.postgresURL != nil, "needs PATCHBAY_TEST_POSTGRES_URL"))
    func plannedNoticesFireOncePerCluster() async throws {
        let schema = "t_clock_" + UUID().uuidString.prefix(8).lowercased()
        let a = try PostgresTestServer.store(schema: schema, poolSize: 4)
        let b = try PostgresTestServer.store(schema: schema, poolSize: 4)
        try await withRunning([a, b]) {
            try await a.migrate()
            let planning = MaintenancePlanning(settings: NoticeSettings(reminders: [.seconds(3600), .seconds(600)]), displayTimeZone: "UTC")
            let start = t0.addingTimeInterval(86_400)
            for index in 0..<20 {
                let event = PatchEvent(
                    type: .scheduled, app: "App1", environment: "Production",
                    window: MaintenanceWindow(id: "mw-\(index)", start: start, end: start.addingTimeInterval(1800)))
                _ = try await (index.isMultiple(of: 2) ? a : b).accept(
                    EventSubmission(
                        eventID: Identifier.make("evt"), idempotencyKey: nil, bodyDigest: "d\(index)", event: event, receivedAt: t0,
                        deliveries: [DeliveryPlan(target: "ops", targetKind: "slack", displayTimeZone: "UTC")], planning: planning))
            }
            // Every notice is due by the window's end; both instances fire in small batches at once.
            let late = start.addingTimeInterval(7200)
            let decide: @Sendable (DueNotice) -> NoticeFiring = { due in
                .send(
                    PatchEvent(type: .reminder, app: due.record.key.app, environment: due.record.key.environment, window: due.record.window),
                    [DeliveryPlan(target: "ops", targetKind: "slack", displayTimeZone: "UTC")])
            }
            let fired = try await withThrowingTaskGroup(of: [FiredNotice].self) { group in
                for store in [a, b, a, b] {
                    group.addTask {
                        var all: [FiredNotice] = []
                        while true {
                            let batch = try await store.fireDueNotices(now: late, limit: 7, decide: decide)
                            if batch.isEmpty { return all }
                            all += batch
                        }
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            let ids = fired.map(\.notice.id)
            #expect(ids.count == Set(ids).count, "a notice fired twice")
            #expect(ids.count == 20 * 4, "two reminders, the beginning and the overrun check for each of 20 maintenances")
            #expect(try await a.counts()[.pending] == 20 + ids.count)
            try await PostgresTestServer.drop(a)
        }
    }

    /// A stall of the database froze every heartbeat, the observer's own included: the first
    /// instance back must not take the others for dead and release their sends in flight
    /// (review F7). Its own silence, measured by its heartbeat, says it was cut off too.
    @Test(.enabled(if: StoreBackend.postgresURL != nil, "needs PATCHBAY_TEST_POSTGRES_URL"))
    func aStallOfTheDatabaseIsNoInstancesDeath() async throws {
        let schema = "t_stall_" + UUID().uuidString.prefix(8).lowercased()
        let first = try PostgresTestServer.store(schema: schema, poolSize: 2)
        let second = try PostgresTestServer.store(schema: schema, poolSize: 2)
        try await withRunning([first, second]) {
            try await first.migrate()
            try await first.joinCluster(version: "test")
            try await second.joinCluster(version: "test")
            _ = try await second.accept(
                EventSubmission(
                    eventID: Identifier.make("evt"), idempotencyKey: nil, bodyDigest: "d", event: event(),
                    receivedAt: t0, deliveries: [DeliveryPlan(target: "ops", targetKind: "slack", displayTimeZone: "UTC")]))
            let claims = try await second.claimDue(now: t0, limit: 10, lease: .seconds(600))
            #expect(claims.count == 1)
            // As after a 12 s pause of the database: every heartbeat is 12 s old.
            try await first.transaction { connection in
                _ = try await PostgresStore.rows(
                    "UPDATE instances SET heartbeat_at = clock_timestamp() - interval '12 seconds'",
                    on: connection, logger: Logger(label: "test"))
            }
            let ownSilence = try await first.heartbeat()
            #expect(ownSilence >= .seconds(11), "the observer knows it was silent itself: \(ownSilence)")
            // The observer was silent itself: it judges nobody until it has beaten for a whole
            // silence, by when the others have beaten too (they were only waiting for the database).
            var continuity = ObserverContinuity(beat: .seconds(1), silence: .seconds(10))
            let back = ContinuousClock.now
            continuity.beat(ownSilence: .seconds(3600), at: back - .seconds(60))
            continuity.beat(ownSilence: ownSilence, at: back)
            #expect(!continuity.mayJudge(at: back + .seconds(1)), "nobody is judged after a silence of one's own")
            #expect(!continuity.mayJudge(at: back + .seconds(9)))
            try await second.heartbeat()
            continuity.beat(ownSilence: try await first.heartbeat(), at: back + .seconds(10))
            #expect(continuity.mayJudge(at: back + .seconds(10)))
            #expect(try await first.releaseLeasesOfSilentInstances(silence: .seconds(10), now: t0) == 0, "the other beat again: it is alive")
            let late = AttemptRecord(
                deliveryID: claims[0].id, number: 1, startedAt: t0, latencyMilliseconds: 1, statusCode: 200,
                outcome: "delivered", reason: "delivered", responseExcerpt: nil)
            #expect(
                try await second.complete(claims[0], attempt: late, transition: .delivered, followUp: nil, at: t0),
                "the send in flight kept its lease")
            try await PostgresTestServer.drop(first)
        }
    }

    /// The heartbeat beats once per `beat`, also during the first silence after a start, when
    /// the instance may not judge others yet. It used to skip its sleep then and beat as fast as
    /// the database answered (hundreds a second), costing every start ten seconds of CPU.
    @Test(.enabled(if: StoreBackend.postgresURL != nil, "needs PATCHBAY_TEST_POSTGRES_URL"))
    func theHeartbeatKeepsItsPaceBeforeItMayJudge() async throws {
        let schema = "t_beat_" + UUID().uuidString.prefix(8).lowercased()
        let store = try PostgresTestServer.store(schema: schema, poolSize: 2)
        let logger = Logger(label: "test")
        try await withRunning([store]) {
            try await store.migrate()
            try await store.joinCluster(version: "test")
            // Counts the heartbeats as the database sees them.
            try await store.transaction { connection in
                for statement in [
                    "CREATE TABLE beats (at timestamptz NOT NULL)",
                    "CREATE FUNCTION count_beat() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO beats VALUES (clock_timestamp()); RETURN NEW; END $$",
                    "CREATE TRIGGER count_beat AFTER UPDATE ON instances FOR EACH ROW EXECUTE FUNCTION count_beat()",
                ] {
                    try await PostgresStore.rows(PostgresQuery(unsafeSQL: statement), on: connection, logger: logger)
                }
            }
            let membership = ClusterMembership(store: store, onWork: {}, logger: logger, beat: .milliseconds(200), silence: .seconds(10))
            let running = Task { try await membership.run() }
            try await Task.sleep(for: .milliseconds(1500))
            running.cancel()
            _ = try? await running.value
            let beats = try await store.read { connection in
                try await PostgresStore.rows("SELECT count(*) FROM beats", on: connection, logger: logger).first?.decode(Int.self) ?? 0
            }
            #expect((5...10).contains(beats), "one heartbeat per 200 ms over 1.5 s, not as fast as the database answers: \(beats)")
            try await PostgresTestServer.drop(store)
        }
    }

    /// Intake takes its locks and reads the maintenance in one call (`patchbay_intake_lock`). The
    /// read must see what another transaction committed while this one waited for the lock: read
    /// with the snapshot taken before the wait, a maintenance created meanwhile looked new, and
    /// its notices were planned twice.
    @Test(.enabled(if: StoreBackend.postgresURL != nil, "needs PATCHBAY_TEST_POSTGRES_URL"))
    func intakeReadsTheMaintenanceCommittedWhileItWaitedForTheLock() async throws {
        let schema = "t_lockread_" + UUID().uuidString.prefix(8).lowercased()
        let store = try PostgresTestServer.store(schema: schema, poolSize: 4)
        let logger = Logger(label: "test")
        let key = event().maintenanceKey
        try await withRunning([store]) {
            try await store.migrate()
            async let held: Void = store.transaction { connection in
                try await PostgresStore.lock("maintenance:" + key.storageValue, on: connection, logger: logger)
                try await PostgresStore.rows(
                    """
                    INSERT INTO maintenances (maintenance_key, id, app, environment, window_key, window_id, window_start, window_end,
                                              window_timezone, status, display_timezone, tags, created_at, updated_at)
                    VALUES (\(key.storageValue), 'mnt_held', \(key.app), \(key.environment), \(key.window), 'mw-1', \(self.t0),
                            \(self.t0.addingTimeInterval(900)), NULL, 'active', 'UTC', '{}', \(self.t0), \(self.t0))
                    """, on: connection, logger: logger)
                try await Task.sleep(for: .milliseconds(600))
            }
            try await Task.sleep(for: .milliseconds(150))
            let started = ContinuousClock.now
            let read = try await store.transaction { connection in
                try await PostgresStore.lockForIntake(idempotencyKey: nil, digest: "d", lane: key.storageValue, on: connection, logger: logger)
            }
            let waited = ContinuousClock.now - started
            try await held
            #expect(waited >= .milliseconds(200), "the read waited for the lock (\(waited))")
            #expect(read.earlier == nil)
            #expect(read.maintenance?.key == key, "the maintenance committed during the wait is seen")
            try await PostgresTestServer.drop(store)
        }
    }

    /// postgres-nio keeps a failed preparation for the connection's life and fails every later
    /// use of that statement with it. A connection whose preparation failed (here: its table did
    /// not exist yet; in production, a lock wait that timed out) is closed, so the pool replaces
    /// it and the statement works again once the cause is gone.
    @Test(.enabled(if: StoreBackend.postgresURL != nil, "needs PATCHBAY_TEST_POSTGRES_URL"))
    func aFailedPreparationDoesNotStickToItsConnection() async throws {
        let schema = "t_prep_" + UUID().uuidString.prefix(8).lowercased()
        let store = try PostgresTestServer.store(schema: schema, poolSize: 1)
        let logger = Logger(label: "test")
        try await withRunning([store]) {
            try await store.migrate()
            let closed = try await store.read { connection -> Bool in
                do {
                    try await PostgresStore.rows("SELECT count(*) FROM probe_later", preparedAs: ProbeStatement.self, on: connection, logger: logger)
                    Issue.record("the statement ran before its table existed")
                } catch {}
                return connection.isClosed
            }
            #expect(closed, "the connection that failed to prepare is closed")
            try await store.transaction { connection in
                try await PostgresStore.rows("CREATE TABLE probe_later (n int)", on: connection, logger: logger)
            }
            let count = try await store.read { connection in
                try await PostgresStore.rows("SELECT count(*) FROM probe_later", preparedAs: ProbeStatement.self, on: connection, logger: logger)
                    .first?.decode(Int.self)
            }
            #expect(count == 0, "prepared again on a new connection once the table exists")
            try await PostgresTestServer.drop(store)
        }
    }

    /// Intake writes share a transaction without a savepoint each; a write the database refuses
    /// rolls its batch back, and every write of the batch runs again alone, so only it fails.
    @Test(.enabled(if: StoreBackend.postgresURL != nil, "needs PATCHBAY_TEST_POSTGRES_URL"))
    func aRefusedWriteFailsAloneInItsBatch() async throws {
        let schema = "t_batch_" + UUID().uuidString.prefix(8).lowercased()
        let store = try PostgresTestServer.store(schema: schema, poolSize: 4)
        let logger = Logger(label: "test")
        let committer = PostgresGroupCommitter(maxBatch: 64, maxConcurrentBatches: 1)
        try await withRunning([store]) {
            try await store.migrate()
            // The first write holds the only batch slot while the others queue: they go as one batch.
            async let first: Int = committer.write(order: "a", store: store) { connection in
                try await PostgresStore.rows("SELECT pg_sleep(0.3)", on: connection, logger: logger)
                return -1
            }
            try await Task.sleep(for: .milliseconds(100))
            let results = await withTaskGroup(of: (Int, Bool).self) { group in
                for index in 0..<6 {
                    group.addTask {
                        do {
                            _ = try await committer.write(order: "b\(index)", store: store) { connection -> Int in
                                try await PostgresStore.rows(
                                    "INSERT INTO console_revocations (session_id, expires_at) VALUES (\("s\(index)"), now())",
                                    on: connection, logger: logger)
                                if index == 3 { try await PostgresStore.rows("SELECT 1 / 0", on: connection, logger: logger) }
                                return index
                            }
                            return (index, true)
                        } catch {
                            #expect(String(describing: error).contains("22012"), "the refusal is the write's own: \(error)")
                            return (index, false)
                        }
                    }
                }
                return await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
            }
            _ = try await first
            #expect(results == [0: true, 1: true, 2: true, 3: false, 4: true, 5: true])
            let stored = try await store.read { connection in
                try await PostgresStore.rows("SELECT session_id FROM console_revocations ORDER BY session_id", on: connection, logger: logger)
                    .map { try $0.decode(String.self) }
            }
            #expect(stored == ["s0", "s1", "s2", "s4", "s5"], "the refused write left nothing, the others are stored")
            try await PostgresTestServer.drop(store)
        }
    }

    /// An observer judges the others only after beating without a gap for a whole silence: a
    /// failover or a partition of its own must not make it release the others' sends in flight.
    @Test func anObserverJudgesOnlyAfterAWholeSilenceOfItsOwnBeats() {
        var continuity = ObserverContinuity(beat: .seconds(1), silence: .seconds(10))
        let t = ContinuousClock.now
        #expect(!continuity.mayJudge(at: t), "not before a first beat")
        continuity.beat(ownSilence: .seconds(1), at: t)
        #expect(!continuity.mayJudge(at: t + .seconds(9)))
        continuity.beat(ownSilence: .seconds(1), at: t + .seconds(9))
        #expect(continuity.mayJudge(at: t + .seconds(10)))
        // A failed beat, or a beat after a silence of its own (a partition): ten seconds again.
        continuity.failed()
        #expect(!continuity.mayJudge(at: t + .seconds(11)))
        continuity.beat(ownSilence: .seconds(1), at: t + .seconds(12))
        continuity.beat(ownSilence: .seconds(30), at: t + .seconds(21))
        #expect(!continuity.mayJudge(at: t + .seconds(22)), "a 30 s silence of its own starts the count again")
        #expect(continuity.mayJudge(at: t + .seconds(31)))
    }

    /// One clock per cluster (review F12): an instance whose own clock runs two minutes ahead
    /// neither takes a lease another instance still holds, nor fires a notice early, and its
    /// cluster clock reads the database's time.
    @Test(.enabled(if: StoreBackend.postgresURL != nil, "needs PATCHBAY_TEST_POSTGRES_URL"))
    func anInstanceWhoseClockRunsAheadStealsNoLeaseAndFiresNoNoticeEarly() async throws {
        let schema = "t_skew_" + UUID().uuidString.prefix(8).lowercased()
        let honest = try PostgresTestServer.store(schema: schema, poolSize: 2)
        guard let url = StoreBackend.postgresURL else { return }
        let ahead = try PostgresStore(
            settings: PostgresSettings(url: url, poolSize: 2, schema: schema), logger: Logger(label: "test"),
            localClock: { Date().addingTimeInterval(120) })
        try await withRunning([honest, ahead]) {
            try await honest.migrate()
            try await honest.joinCluster(version: "test")
            try await ahead.joinCluster(version: "test")
            #expect(abs(ahead.clusterNow().timeIntervalSinceNow) < 2, "the cluster clock is the database's, not the skewed one")
            let now = Date()
            _ = try await honest.accept(
                EventSubmission(
                    eventID: Identifier.make("evt"), idempotencyKey: nil, bodyDigest: "d", event: event(),
                    receivedAt: now, deliveries: [DeliveryPlan(target: "ops", targetKind: "slack", displayTimeZone: "UTC")]))
            #expect(try await honest.claimDue(now: now, limit: 10, lease: .seconds(60)).count == 1)
            // The skewed instance's own clock says the 60 s lease ran out a minute ago.
            #expect(
                try await ahead.claimDue(now: now.addingTimeInterval(120), limit: 10, lease: .seconds(60)).isEmpty,
                "a lease is not taken while the database's clock says it holds")
            // A notice due in a minute is not fired by the instance that thinks it is due.
            let planning = MaintenancePlanning(settings: NoticeSettings(reminders: [.seconds(3600)]), displayTimeZone: "UTC")
            let start = now.addingTimeInterval(3660)
            _ = try await honest.accept(
                EventSubmission(
                    eventID: Identifier.make("evt"), idempotencyKey: nil, bodyDigest: "n",
                    event: PatchEvent(
                        type: .scheduled, app: "App1", environment: "Production",
                        window: MaintenanceWindow(id: "mw-skew", start: start, end: start.addingTimeInterval(600))),
                    receivedAt: now, deliveries: [], planning: planning))
            let fired = try await ahead.fireDueNotices(now: now.addingTimeInterval(120), limit: 10) { _ in .skip(reason: "test") }
            #expect(fired.isEmpty, "the reminder is due in a minute by the database's clock: \(fired.map(\.notice.label))")
            try await PostgresTestServer.drop(honest)
        }
    }

    /// Reservations and admissions run at one rate, so a worker that slept for its slot is let
    /// through at once instead of waiting in a queue that grows by the difference of the two
    /// rates (review F8: a guard slower per send, 25 ms at 20/s, until workers held every
    /// dispatcher slot and outlived their leases). Workers here wake at their slots one after
    /// another; before, the thirtieth waited 0.7 s to be admitted.
    @Test(.enabled(if: StoreBackend.postgresURL != nil, "needs PATCHBAY_TEST_POSTGRES_URL"))
    func admissionsKeepPaceWithReservations() async throws {
        let schema = "t_admit_" + UUID().uuidString.prefix(8).lowercased()
        let store = try PostgresTestServer.store(schema: schema, poolSize: 2)
        try await withRunning([store]) {
            try await store.migrate()
            let budget = SharedPacingBudget(store: store, local: NoLocalBudget())
            let policy = PacingPolicy(rate: 20, burst: 1)
            var waits: [Duration] = []
            for _ in 0..<30 {
                guard case .go(let wait) = try await budget.reserve(key: "chat:k", policy: policy, now: Date(), maxWait: .seconds(10)) else {
                    Issue.record("no slot within 10 s")
                    return
                }
                try await Task.sleep(for: wait)
                var admitted = Duration.zero
                var extra = try await budget.admit(key: "chat:k", policy: policy, now: Date())
                while extra > .zero {
                    admitted += extra
                    try await Task.sleep(for: extra)
                    extra = try await budget.admit(key: "chat:k", policy: policy, now: Date())
                }
                waits.append(admitted)
            }
            let late = waits.suffix(10)
            #expect(late.allSatisfy { $0 < .milliseconds(100) }, "admission waits do not grow with the queue: last ten \(Array(late))")
            try await PostgresTestServer.drop(store)
        }
    }

    /// An upgrade cannot brick a cluster (review F11): a migration's large index is built
    /// concurrently, without the pool's statement timeout, while writes go on. On a table of 1M
    /// deliveries, a plain CREATE INDEX in the migration's transaction held off every write for
    /// the build, and with the statement timeout below the build's time no instance started.
    @Test(.enabled(if: StoreBackend.postgresURL != nil, "needs PATCHBAY_TEST_POSTGRES_URL"))
    func migratingALargeTableBlocksNoWriteAndHasNoTimeout() async throws {
        let schema = "t_big_" + UUID().uuidString.prefix(8).lowercased()
        guard let url = StoreBackend.postgresURL else { return }
        var settings = try PostgresSettings(url: url, poolSize: 4, schema: schema)
        // Far below the index build on 1M rows: the migration must not run under it.
        settings.statementTimeout = .milliseconds(300)
        let store = try PostgresStore(settings: settings, logger: Logger(label: "test"))
        try await withRunning([store]) {
            // The schema as version 3 left it, with a large deliveries table.
            try await store.transaction { connection in
                let logger = Logger(label: "test")
                _ = try await PostgresStore.rows("SET LOCAL statement_timeout = 0", on: connection, logger: logger)
                _ = try await PostgresStore.rows(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(schema)"), on: connection, logger: logger)
                _ = try await PostgresStore.rows(PostgresQuery(unsafeSQL: "SET LOCAL search_path TO \(schema)"), on: connection, logger: logger)
                _ = try await PostgresStore.rows(
                    """
                    CREATE TABLE patchbay_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                    """, on: connection, logger: logger)
                for migration in PostgresMigrations.all where migration.version <= 3 {
                    for statement in migration.statements {
                        _ = try await PostgresStore.rows(PostgresQuery(unsafeSQL: statement), on: connection, logger: logger)
                    }
                    _ = try await PostgresStore.rows(
                        "INSERT INTO patchbay_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                        on: connection, logger: logger)
                }
                _ = try await PostgresStore.rows(
                    """
                    INSERT INTO events (id, body_sha256, type, app, environment, maintenance_key, payload, delivery_count, received_at)
                    VALUES ('evt_seed', 'x', 'patch.completed', 'A', 'E', 'k', '{}', 0, now())
                    """, on: connection, logger: logger)
                _ = try await PostgresStore.rows(
                    """
                    INSERT INTO deliveries (id, event_seq, target, target_kind, maintenance_key, lane_seq, display_timezone, state,
                                            next_attempt_at, created_at, updated_at)
                    SELECT 'dlv_seed_' || g, (SELECT seq FROM events WHERE id = 'evt_seed'), 't', 'webhook', 'k' || g, 1, 'UTC',
                           CASE WHEN g % 100 = 0 THEN 'pending' ELSE 'delivered' END, now(), now(), now()
                    FROM generate_series(1, 1000000) g
                    """, on: connection, logger: logger)
            }
            // A writer beside the migration: each insert must get through in well under the build.
            let writes = Task { () -> [Duration] in
                var latencies: [Duration] = []
                var index = 0
                while !Task.isCancelled && index < 10_000 {
                    index += 1
                    let number = index
                    let started = ContinuousClock.now
                    try await store.transaction { connection in
                        _ = try await PostgresStore.rows("SET LOCAL lock_timeout = '2s'", on: connection, logger: Logger(label: "test"))
                        _ = try await PostgresStore.rows(
                            """
                            INSERT INTO deliveries (id, event_seq, target, target_kind, maintenance_key, lane_seq, display_timezone, state,
                                                    next_attempt_at, created_at, updated_at)
                            VALUES (\("dlv_live_\(number)"), (SELECT seq FROM events WHERE id = 'evt_seed'), 't', 'webhook', 'live', \(number), 'UTC',
                                    'pending', now(), now(), now())
                            """, on: connection, logger: Logger(label: "test"))
                    }
                    latencies.append(ContinuousClock.now - started)
                    try? await Task.sleep(for: .milliseconds(20))
                }
                return latencies
            }
            try await Task.sleep(for: .milliseconds(200))
            let started = ContinuousClock.now
            let report = try await store.migrate()
            let took = ContinuousClock.now - started
            writes.cancel()
            let latencies = try await writes.value
            #expect(report.current == PostgresMigrations.all.last?.version)
            let valid = try await store.read { connection in
                try await PostgresStore.rows(
                    """
                    SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE c.relname = 'deliveries_due_order' AND n.nspname = \(schema)
                    """, on: connection, logger: Logger(label: "test")
                ).first?.decode(Bool.self)
            }
            #expect(valid == true, "the due index was built and is valid")
            #expect(!latencies.isEmpty)
            #expect((latencies.max() ?? .zero) < .seconds(1), "no write waited for the build (\(took) long): slowest \(latencies.max() ?? .zero)")
            // Run again: nothing to do, nothing fails.
            _ = try await store.migrate()
            try await PostgresTestServer.drop(store)
        }
    }

    func event() -> PatchEvent {
        PatchEvent(
            type: .started, app: "App1", environment: "Production", instance: Instance(id: "i-1"),
            window: MaintenanceWindow(id: "mw-1", start: t0, end: t0.addingTimeInterval(900)))
    }

    /// Runs every store's pool while `body` runs.
    func withRunning(_ stores: [PostgresStore], _ body: () async throws -> Void) async throws {
        guard let first = stores.first else { return try await body() }
        try await first.withRunningClient {
            try await withRunning(Array(stores.dropFirst()), body)
        }
    }
}

/// A local budget that must not be used: every key in these tests is shared.
struct NoLocalBudget: PacingBudget {
    func reserve(key: String, policy: PacingPolicy, now: Date, maxWait: Duration) async throws -> PacingDecision {
        Issue.record("local budget used for \(key)")
        return .go(after: .zero)
    }
    func admit(key: String, policy: PacingPolicy, now: Date) async throws -> Duration { .zero }
    func block(key: String, policy: PacingPolicy, until: Date) async throws {}
}

/// A prepared statement of the tests' own.
enum ProbeStatement: PreparedStatementName { static let name = "patchbay_test_probe" }
