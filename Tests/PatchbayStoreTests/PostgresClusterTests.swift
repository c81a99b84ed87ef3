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
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

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
        #expect(ContinuousClock.now - started < .seconds(5))
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
            guard case .later(let resume) = try await budgetB.reserve(key: "slack:ops", policy: PacingPolicy(rate: 1, burst: 3), now: Date(), maxWait: .seconds(1)) else {
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
            let event = PatchEvent(type: .started, app: "App1", environment: "Production", instance: Instance(id: "i-1"),
                                   window: MaintenanceWindow(id: "mw-1", start: t0, end: t0.addingTimeInterval(900)))
            _ = try await dead.accept(EventSubmission(eventID: Identifier.make("evt"), idempotencyKey: nil, bodyDigest: "d", event: event,
                                                      receivedAt: t0, deliveries: [DeliveryPlan(target: "ops", targetKind: "slack", displayTimeZone: "UTC")]))
            let claims = try await dead.claimDue(now: t0, limit: 10, lease: .seconds(600))
            #expect(claims.count == 1)
            #expect(try await alive.claimDue(now: t0, limit: 10, lease: .seconds(600)).isEmpty, "leased by the other instance")
            // Both are alive: nothing is released.
            #expect(try await alive.releaseLeasesOfSilentInstances(silence: .seconds(5), now: t0) == 0)
            // The first goes silent (its heartbeat stops), as after kill -9.
            try await alive.transaction { connection in
                _ = try await PostgresStore.rows("UPDATE instances SET heartbeat_at = clock_timestamp() - interval '6 seconds' WHERE id = \(dead.instanceID)",
                                                 on: connection, logger: Logger(label: "test"))
            }
            try await alive.heartbeat()
            #expect(try await alive.releaseLeasesOfSilentInstances(silence: .seconds(5), now: t0) == 1)
            let taken = try await alive.claimDue(now: t0, limit: 10, lease: .seconds(600))
            #expect(taken.map(\.id) == claims.map(\.id), "due again at once, not after the 600 s lease")
            let late = AttemptRecord(deliveryID: claims[0].id, number: 1, startedAt: t0, latencyMilliseconds: 1, statusCode: 200,
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
                let event = PatchEvent(type: .scheduled, app: "App1", environment: "Production",
                                       window: MaintenanceWindow(id: "mw-\(index)", start: start, end: start.addingTimeInterval(1800)))
                _ = try await (index.isMultiple(of: 2) ? a : b).accept(EventSubmission(
                    eventID: Identifier.make("evt"), idempotencyKey: nil, bodyDigest: "d\(index)", event: event, receivedAt: t0,
                    deliveries: [DeliveryPlan(target: "ops", targetKind: "slack", displayTimeZone: "UTC")], planning: planning))
            }
            // Every notice is due by the window's end; both instances fire in small batches at once.
            let late = start.addingTimeInterval(7200)
            let decide: @Sendable (DueNotice) -> NoticeFiring = { due in
                .send(PatchEvent(type: .reminder, app: due.record.key.app, environment: due.record.key.environment, window: due.record.window),
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
