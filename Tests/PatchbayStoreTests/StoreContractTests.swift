import Foundation
import Logging
import PatchbayCore
import PatchbayTestSupport
import PostgresNIO
import Testing

@testable import PatchbayPostgres
@testable import PatchbaySQLite

/// The backends the contract runs against. PostgreSQL needs a server: `scripts/test` starts one
/// (scripts/with-postgres) and sets PATCHBAY_TEST_POSTGRES_URL; without it these cases are skipped
/// with a printed reason.
enum StoreBackend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    static var postgresURL: String? { ProcessInfo.processInfo.environment["PATCHBAY_TEST_POSTGRES_URL"] }

    static let available: [StoreBackend] = {
        guard postgresURL != nil else {
            print(
                "note: PostgreSQL store tests skipped: PATCHBAY_TEST_POSTGRES_URL is not set (scripts/test starts a server when Debian's postgresql is installed)"
            )
            return [.sqlite]
        }
        return [.sqlite, .postgres]
    }()
}

/// A store of either backend, fresh for one test: a temporary SQLite file, or a schema of its own
/// in the test server (dropped afterwards).
struct StoreUnderTest {
    let store: any PatchbayStore
    let backend: StoreBackend
    /// Replaces the payload of the oldest event with one that cannot be decoded.
    let corruptOldestEvent: () async throws -> Void

    static func with(_ backend: StoreBackend, _ body: (StoreUnderTest) async throws -> Void) async throws {
        let logger = Logger(label: "test")
        switch backend {
        case .sqlite:
            let directory = try TemporaryDirectory("store")
            defer { directory.remove() }
            let store = try SQLiteStore(settings: StoreSettings(sqlitePath: directory.path("queue.db")), logger: logger)
            try await body(
                StoreUnderTest(store: store, backend: backend) {
                    try await store.pool.write { db in
                        try db.execute(sql: "UPDATE events SET payload = '{\"type\":\"patch.exploded\"}' WHERE seq = (SELECT MIN(seq) FROM events)")
                    }
                })
        case .postgres:
            let store = try PostgresTestServer.store(logger: logger)
            try await store.withRunningClient {
                try await store.migrate()
                do {
                    try await body(
                        StoreUnderTest(store: store, backend: backend) {
                            try await store.transaction { connection in
                                _ = try await PostgresStore.rows(
                                    """
                                    UPDATE events SET payload = '{"type":"patch.exploded"}' WHERE seq = (SELECT MIN(seq) FROM events)
                                    """, on: connection, logger: logger)
                            }
                        })
                } catch {
                    try? await PostgresTestServer.drop(store)
                    throw error
                }
                try await PostgresTestServer.drop(store)
            }
        }
    }
}

enum PostgresTestServer {
    /// A store on a new schema of the test server.
    static func store(
        schema: String = "t_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""),
        poolSize: Int = 8, logger: Logger = Logger(label: "test")
    ) throws -> PostgresStore {
        guard let url = StoreBackend.postgresURL else { throw StoreError.permanent("PATCHBAY_TEST_POSTGRES_URL is not set") }
        return try PostgresStore(settings: PostgresSettings(url: url, poolSize: poolSize, schema: schema), logger: logger)
    }

    static func drop(_ store: PostgresStore) async throws {
        guard let schema = store.settings.schema else { return }
        try await store.transaction { connection in
            try await PostgresStore.rows("DROP SCHEMA IF EXISTS \(unescaped: schema) CASCADE", on: connection, logger: Logger(label: "test"))
        }
    }
}

@Suite("Store contract (SQLite and PostgreSQL)")
struct StoreContractTests: StoreFixtures {
    let t0 = Date(timeIntervalSince1970: 1_700_000_000)

    /// An event's deliveries are numbered in the order its routes planned them, so a claim
    /// (oldest due first, then by number) hands them out in that order on both stores.
    @Test(arguments: StoreBackend.available)
    func anEventsDeliveriesGoInPlanOrder(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let planned = ["zeta", "alpha", "mid", "beta", "omega", "delta"]
            _ = try await under.store.accept(submission(event(), targets: planned))
            let claims = try await under.store.claimDue(now: t0, limit: 10, lease: .seconds(30))
            #expect(claims.map(\.target) == planned)
        }
    }

    @Test(arguments: StoreBackend.available)
    func acceptedEventsAreClaimedOnceAndCompleted(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            let result = try await store.accept(submission(event(), targets: ["ops-slack", "team-slack"]))
            guard case .accepted(let accepted) = result else {
                Issue.record("not accepted: \(result)")
                return
            }
            #expect(accepted.deliveries == 2)

            let claims = try await store.claimDue(now: t0, limit: 10, lease: .seconds(30))
            #expect(claims.map(\.target).sorted() == ["ops-slack", "team-slack"])
            #expect(claims.allSatisfy { $0.attempt == 1 && $0.eventID == accepted.id && $0.event.app == "App1" })
            // Webhook bodies are these stored bytes: they must be what encoding the event makes.
            let encoded = try JSONEncoder.patchbay().encode(claims[0].event)
            #expect(claims.allSatisfy { $0.encodedEvent == encoded })
            #expect(try await store.claimDue(now: t0, limit: 10, lease: .seconds(30)).isEmpty, "a leased delivery is not claimed twice")

            #expect(try await store.complete(claims[0], attempt: attempt(claims[0]), transition: .delivered, followUp: nil, at: t0))
            #expect(
                try await store.complete(
                    claims[1], attempt: attempt(claims[1], outcome: "retry"), transition: .retry(at: t0.addingTimeInterval(5)),
                    followUp: nil, at: t0))
            #expect(try await store.counts() == [.delivered: 1, .pending: 1])
            #expect(try await store.claimDue(now: t0.addingTimeInterval(4), limit: 10, lease: .seconds(30)).isEmpty)
            let retried = try await store.claimDue(now: t0.addingTimeInterval(5), limit: 10, lease: .seconds(30))
            #expect(retried.map(\.id) == [claims[1].id])
            #expect(retried.first?.attempt == 2)
            #expect(try await store.attempts(deliveryID: claims[1].id).map(\.outcome) == ["retry"])
            let listed = try await store.list(DeliveryFilter(state: .delivered))
            #expect(listed.map(\.id) == [claims[0].id])
            #expect(try await store.detail(id: claims[0].id)?.attempts.count == 1)
        }
    }

    /// `chat.mode: per-maintenance`: the first event of a (maintenance, target, stage) starts a
    /// summary due after groupWait; later ones while it waits add no delivery; a failure and
    /// other stages keep their own, and the summary's lane holds nothing else back.
    @Test(arguments: StoreBackend.available)
    func summariesTakeInTheEventsOfTheirStageWhileTheyWait(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            func digest(_ event: PatchEvent, at offset: Double = 0) async throws -> Int {
                var submission = submission(event, targets: [])
                submission.receivedAt = t0.addingTimeInterval(offset)
                submission.deliveries = [
                    DeliveryPlan(target: "ops", targetKind: "slack", displayTimeZone: "UTC", summaryWait: 30)
                ]
                _ = try await store.accept(submission)
                return try await store.counts()[.pending] ?? 0
            }
            #expect(try await digest(event(.completed, instance: "i-1")) == 1)
            #expect(try await digest(event(.completed, instance: "i-2"), at: 5) == 1, "a waiting summary takes the event in")
            #expect(try await digest(event(.started, instance: "i-3"), at: 6) == 2, "another stage has a summary of its own")
            #expect(try await digest(event(.completed, window: "mw-2"), at: 7) == 3, "another maintenance too")
            _ = try await store.accept(submission(event(.failed, instance: "i-4"), targets: ["ops"]))

            let now = try await store.claimDue(now: t0.addingTimeInterval(8), limit: 10, lease: .seconds(30))
            #expect(now.map(\.target) == ["ops"], "the failure goes at once, not held behind the waiting summaries")
            let due = try await store.claimDue(now: t0.addingTimeInterval(31), limit: 10, lease: .seconds(30))
            #expect(due.count == 1 && due.first?.event.instance?.id == "i-1", "the first summary is due 30 s after its first event")
            #expect(due.first?.target == "ops/digest")
            // An event arriving while its summary is in flight starts the next one (a follow-up).
            #expect(try await digest(event(.completed, instance: "i-5"), at: 38) == 3)
            let listed = try await store.list(DeliveryFilter(target: "ops", limit: 100)).map(\.target)
            #expect(Set(listed) == ["ops", "ops/digest"], "filtering by a target lists its summaries too")
            let (_, snapshot) = try await store.maintenanceContext(for: event(.completed), target: "ops/digest")
            #expect(Set(snapshot.instances.map(\.instance.id)) == ["i-1", "i-2", "i-3", "i-4", "i-5"])
        }
    }

    /// Replaying a summary forgets which servers its stage's summaries named, so the replay
    /// names them again instead of being skipped as "nothing new"; other stages keep theirs.
    @Test(arguments: StoreBackend.available)
    func aReplayedSummaryNamesItsServersAgain(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            var submission = submission(event(.completed), targets: [])
            submission.deliveries = [DeliveryPlan(target: "ops", targetKind: "slack", displayTimeZone: "UTC", summaryWait: 1)]
            _ = try await store.accept(submission)
            let claim = try #require(try await store.claimDue(now: t0.addingTimeInterval(2), limit: 1, lease: .seconds(30)).first)
            let named = FollowUpState(announced: ["patch.completed": ["i-1"], "patch.started": ["i-1"]])
            #expect(try await store.complete(claim, attempt: attempt(claim), transition: .delivered, followUp: named, at: t0.addingTimeInterval(2)))
            #expect(try await store.maintenanceContext(for: event(.completed), target: "ops/digest").0?.announced?["patch.completed"] == ["i-1"])

            #expect(try await store.replay(id: claim.id, at: t0.addingTimeInterval(3), dryRun: false) == .replayed)
            let after = try await store.maintenanceContext(for: event(.completed), target: "ops/digest").0
            #expect(after?.announced?["patch.completed"] == nil, "the replayed stage is forgotten")
            #expect(after?.announced?["patch.started"] == ["i-1"], "other stages are kept")
        }
    }

    /// A link one target's vendor returned (Statuspage's shortlink) reaches every target's
    /// templates, by target name; each target still gets its own follow-up state.
    @Test(arguments: StoreBackend.available)
    func vendorLinksReachEveryTargetOfTheMaintenance(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            _ = try await store.accept(submission(event(), targets: ["status", "ops"]))
            let claims = try await store.claimDue(now: t0, limit: 10, lease: .seconds(30))
            let status = try #require(claims.first { $0.target == "status" })
            #expect(
                try await store.complete(
                    status, attempt: attempt(status), transition: .delivered,
                    followUp: FollowUpState(objectID: "inc-1", link: "https://stspg.io/inc-1"), at: t0))
            let (own, snapshot) = try await store.maintenanceContext(for: event(), target: "ops")
            #expect(own == nil)
            #expect(snapshot.links == ["status": "https://stspg.io/inc-1"])
            let (statusState, _) = try await store.maintenanceContext(for: event(), target: "status")
            #expect(statusState?.objectID == "inc-1")
        }
    }

    @Test(arguments: StoreBackend.available)
    func idempotencyKeyReplaysOrConflicts(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            let first = try await store.accept(submission(event(), key: "key-1", digest: "aaa"))
            let again = try await store.accept(submission(event(), key: "key-1", digest: "aaa"))
            let other = try await store.accept(submission(event(), key: "key-1", digest: "bbb"))
            guard case .accepted(let accepted) = first else {
                Issue.record("first not accepted")
                return
            }
            #expect(again == .replayed(accepted))
            #expect(other == .conflict(existingEventID: accepted.id))
            #expect(try await store.counts() == [.pending: 1])
            #expect(try await store.eventID(idempotencyKey: "key-1") == accepted.id)
        }
    }

    /// The same key sent 20 times at once (to one process here; to several instances in the
    /// cluster test): one event, every other answer a replay of it.
    @Test(arguments: StoreBackend.available)
    func concurrentRepeatsOfOneKeyMakeOneEvent(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            let results = try await withThrowingTaskGroup(of: AcceptResult.self) { group in
                for _ in 0..<20 {
                    group.addTask { try await store.accept(self.submission(self.event(), key: "same", digest: "x")) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let accepted = results.compactMap { result -> AcceptedEvent? in if case .accepted(let a) = result { a } else { nil } }
            #expect(accepted.count == 1)
            #expect(results.filter { $0 == .replayed(accepted.first ?? AcceptedEvent(id: "", deliveries: 0)) }.count == 19)
            #expect(try await store.counts() == [.pending: 1])
        }
    }

    /// A send whose lease ran out still gives the maintenance the vendor object it created, when
    /// the maintenance has none yet: forgetting it made the retry create a second public
    /// Statuspage incident (review F6).
    @Test(arguments: StoreBackend.available)
    func anObjectCreatedByALostLeaseIsKept(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            _ = try await store.accept(submission(event(.scheduled), targets: ["status"]))
            let slow = try #require(try await store.claimDue(now: t0, limit: 1, lease: .seconds(30)).first)
            let retry = try #require(try await store.claimDue(now: t0.addingTimeInterval(31), limit: 1, lease: .seconds(30)).first)
            #expect(retry.id == slow.id, "the lease ran out and the delivery was claimed again")
            let created = FollowUpUpdate(state: FollowUpState(objectID: "inc-slow", status: "scheduled"), plannedObjectID: nil)
            let late = try await store.complete(
                slow, attempt: attempt(slow), transition: .delivered, followUp: created, throttled: false,
                at: t0.addingTimeInterval(32), lease: nil)
            #expect(!late.stillOurs && late.extraObject == nil)
            #expect(
                try await store.maintenanceContext(for: slow.event, target: "status").0?.objectID == "inc-slow",
                "the object the vendor returned is the maintenance's")
            // The new holder planned before it knew: its own object is the extra one, to close.
            let second = FollowUpUpdate(state: FollowUpState(objectID: "inc-retry", status: "scheduled"), plannedObjectID: nil)
            let done = try await store.complete(
                retry, attempt: attempt(retry), transition: .delivered, followUp: second, throttled: false,
                at: t0.addingTimeInterval(33), lease: nil)
            #expect(done.stillOurs)
            #expect(done.extraObject?.objectID == "inc-retry")
            #expect(try await store.maintenanceContext(for: slow.event, target: "status").0?.objectID == "inc-slow", "the first recorded wins")
            // An update (not a creation) from a lost lease writes nothing; from a held one, it does.
            _ = try await store.accept(submission(event(.started), targets: ["status"]))
            let update = try #require(try await store.claimDue(now: t0.addingTimeInterval(40), limit: 1, lease: .seconds(30)).first)
            let progressed = FollowUpUpdate(state: FollowUpState(objectID: "inc-slow", status: "in_progress"), plannedObjectID: "inc-slow")
            #expect(
                try await store.complete(
                    update, attempt: attempt(update), transition: .delivered, followUp: progressed, throttled: false,
                    at: t0.addingTimeInterval(41), lease: nil
                ).stillOurs)
            #expect(try await store.maintenanceContext(for: slow.event, target: "status").0?.status == "in_progress")
        }
    }

    /// A send reads the maintenance's counts and a few names, never every server's package list;
    /// the lists are read only for a final update of a finished maintenance, and only until the
    /// list is full (review F4: every send of a 1,000-server maintenance decoded 1,000 lists).
    @Test(arguments: StoreBackend.available)
    func snapshotsAreAsDeepAsTheSendNeeds(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            for (index, type) in [EventType.completed, .completed, .started].enumerated() {
                var report = event(type, instance: "i-\(index)")
                report.packages = type == .completed ? ["pkg-\(index)-a", "shared-1"] : []
                _ = try await store.accept(submission(report, digest: "p\(index)"))
            }
            let every = try await store.maintenanceContext(for: event(), target: "ops-slack", depth: .everyInstance).1
            #expect(every.instances.count == 3 && every.instances.allSatisfy { $0.packages.isEmpty })
            #expect(every.packagesUpdated.isEmpty && every.stageCounts == nil)
            let unfinished = try await store.maintenanceContext(for: event(), target: "ops-slack", depth: .withPackages).1
            #expect(unfinished.packagesUpdated.isEmpty, "one server is still running: no final text needs the lists yet")
            var last = event(.completed, instance: "i-2")
            last.packages = ["pkg-2-a"]
            _ = try await store.accept(submission(last, digest: "p-last"))
            let finished = try await store.maintenanceContext(for: event(), target: "ops-slack", depth: .withPackages).1
            #expect(finished.packagesUpdated == ["pkg-0-a", "shared-1", "pkg-1-a", "pkg-2-a"])
            #expect(!finished.morePackages)
            // Counted: exact counts, and at most namesPerStage names of each stage.
            for index in 3..<(MaintenanceSnapshot.namesPerStage + 10) {
                _ = try await store.accept(submission(event(.failed, instance: "f-\(index)"), digest: "f\(index)"))
            }
            let counted = try await store.maintenanceContext(for: event(), target: "ops-slack", depth: .counted).1
            #expect(counted.completedCount == 3)
            #expect(counted.failedCount == MaintenanceSnapshot.namesPerStage + 7)
            #expect(counted.instanceCount == MaintenanceSnapshot.namesPerStage + 10)
            #expect(counted.failed.count == MaintenanceSnapshot.namesPerStage, "the first of the stage by name")
            #expect(counted.failed.first?.instance.id == "f-3")
            #expect(counted.completed.map(\.instance.id) == ["i-0", "i-1", "i-2"])
            #expect(counted.unfinishedCount == 0 && counted.packagesUpdated.isEmpty)
        }
    }

    /// The package list of a final update stops at `packageLimit` distinct packages, and says
    /// there were more, whatever the fleet reported.
    @Test(arguments: StoreBackend.available)
    func aFinalUpdatesPackageListIsBounded(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            for index in 0..<3 {
                var report = event(.completed, instance: "i-\(index)")
                report.packages = (0..<600).map { "pkg-\(index)-\($0)" }
                _ = try await store.accept(submission(report, digest: "big\(index)"))
            }
            let finished = try await store.maintenanceContext(for: event(), target: "ops-slack", depth: .withPackages).1
            #expect(finished.packagesUpdated.count == MaintenanceSnapshot.packageLimit)
            #expect(finished.packagesUpdated.first == "pkg-0-0" && finished.morePackages)
        }
    }

    /// A maintenance's detail holds one page of servers and deliveries (newest first), counts
    /// by target and state over all of them, and package counts without reading the lists here.
    @Test(arguments: StoreBackend.available)
    func aMaintenancesDetailIsPaged(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            for index in 0..<5 {
                var report = event(.completed, instance: "i-\(index)")
                report.packages = (0...index).map { "pkg-\($0)" }
                var planned = submission(report, digest: "d\(index)", targets: ["ops-slack", "team-slack"])
                planned.planning = MaintenancePlanning(settings: nil, displayTimeZone: "UTC")
                _ = try await store.accept(planned)
            }
            let maintenance = try #require(try await store.maintenances(since: nil, limit: 1).first)
            let first = try #require(try await store.maintenance(id: maintenance.id, page: .first))
            #expect(first.instances.map(\.id) == ["i-0", "i-1", "i-2", "i-3", "i-4"])
            #expect(first.instances.map(\.packages) == [1, 2, 3, 4, 5])
            #expect(first.deliveries.count == 10 && first.deliveries.first?.eventID != first.deliveries.last?.eventID)
            #expect(first.deliveriesByTarget == ["ops-slack": ["pending": 5], "team-slack": ["pending": 5]])
            #expect(first.instanceCount == 5 && first.deliveryCount == 10)
            let past = try #require(try await store.maintenance(id: maintenance.id, page: MaintenanceDetail.Page(deliveries: 1, servers: 1)))
            #expect(past.instances.isEmpty && past.deliveries.isEmpty && past.deliveryCount == 10)
            let overview = try #require(try await store.maintenance(id: maintenance.id, page: .overview))
            #expect(overview.instances.isEmpty && overview.deliveries.isEmpty && overview.deliveriesByTarget["ops-slack"]?["pending"] == 5)
        }
    }

    @Test(arguments: StoreBackend.available)
    func expiredLeaseIsClaimedAgainAndTheOldWorkerCannotOverwrite(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            _ = try await store.accept(submission(event()))
            let first = try await store.claimDue(now: t0, limit: 1, lease: .seconds(30))
            #expect(first.count == 1)
            #expect(try await store.claimDue(now: t0.addingTimeInterval(29), limit: 1, lease: .seconds(30)).isEmpty)
            let second = try await store.claimDue(now: t0.addingTimeInterval(31), limit: 1, lease: .seconds(30))
            #expect(second.map(\.id) == first.map(\.id))
            #expect(second.first?.attempt == 2)
            #expect(try await store.complete(first[0], attempt: attempt(first[0]), transition: .delivered, followUp: nil, at: t0) == false)
            #expect(try await store.counts() == [.inFlight: 1])
            #expect(try await store.complete(second[0], attempt: attempt(second[0]), transition: .delivered, followUp: nil, at: t0) == true)
        }
    }

    /// A record tried again after its commit went through (PostgreSQL: the reply was lost on a
    /// dropped connection) writes nothing twice and reports the delivery as still recorded by
    /// this worker, not as taken over by another.
    @Test(arguments: StoreBackend.available)
    func theSameRecordTriedAgainIsWrittenOnce(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            _ = try await store.accept(submission(event()))
            let claim = try #require(try await store.claimDue(now: t0, limit: 1, lease: .seconds(30)).first)
            let record = attempt(claim)
            #expect(try await store.complete(claim, attempt: record, transition: .delivered, followUp: nil, at: t0) == true)
            #expect(try await store.complete(claim, attempt: record, transition: .delivered, followUp: nil, at: t0) == true)
            #expect(try await store.attempts(deliveryID: claim.id).count == 1)
            #expect(try await store.counts() == [.delivered: 1])
        }
    }

    @Test(arguments: StoreBackend.available)
    func laterEventsWaitForEarlierOnesOfTheSameMaintenanceAndTarget(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            _ = try await store.accept(submission(event(.scheduled)))
            _ = try await store.accept(submission(event(.started)))
            _ = try await store.accept(submission(event(.started, window: "mw-other")))
            let claims = try await store.claimDue(now: t0, limit: 10, lease: .seconds(30))
            #expect(claims.map(\.event.type) == [.scheduled, .started])
            #expect(claims.map(\.event.window.id) == ["mw-1", "mw-other"])
            let scheduled = claims[0]
            _ = try await store.complete(scheduled, attempt: attempt(scheduled, outcome: "retry"), transition: .retry(at: t0), followUp: nil, at: t0)
            let next = try await store.claimDue(now: t0, limit: 10, lease: .seconds(30))
            #expect(next.map(\.event.type) == [.scheduled])
            _ = try await store.complete(next[0], attempt: attempt(next[0]), transition: .delivered, followUp: nil, at: t0)
            let follower = try await store.claimDue(now: t0, limit: 10, lease: .seconds(30))
            #expect(follower.map(\.event.type) == [.started])
        }
    }

    /// Finishing a lane's head hands its next delivery to the same worker in the same
    /// transaction; a retry hands nothing over, and another worker's claim never sees it twice.
    @Test(arguments: StoreBackend.available)
    func finishingALanesHeadLeasesItsNextDelivery(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            for type in [EventType.scheduled, .started, .completed] { _ = try await store.accept(submission(event(type))) }
            let head = try #require(try await store.claimDue(now: t0, limit: 10, lease: .seconds(30)).first)
            #expect(head.event.type == .scheduled)
            let (ours, next) = try await store.completeAndLeaseNext(
                head, attempt: attempt(head), transition: .delivered, followUp: nil,
                throttled: false, at: t0, lease: .seconds(30))
            #expect(ours)
            #expect(next?.event.type == .started)
            #expect(try await store.claimDue(now: t0, limit: 10, lease: .seconds(30)).isEmpty, "leased to us: no one else gets it")
            let second = try #require(next)
            let (_, afterRetry) = try await store.completeAndLeaseNext(
                second, attempt: attempt(second, outcome: "retry"),
                transition: .retry(at: t0.addingTimeInterval(60)), followUp: nil,
                throttled: false, at: t0, lease: .seconds(30))
            #expect(afterRetry == nil, "a retry keeps its place at the head")
            #expect(try await store.claimDue(now: t0, limit: 10, lease: .seconds(30)).isEmpty, "the follower waits for the retry")
            let retried = try #require(try await store.claimDue(now: t0.addingTimeInterval(60), limit: 10, lease: .seconds(30)).first)
            #expect(retried.id == second.id && retried.attempt == 2)
            let (_, third) = try await store.completeAndLeaseNext(
                retried, attempt: attempt(retried), transition: .dead, followUp: nil,
                throttled: false, at: t0.addingTimeInterval(60), lease: .seconds(30))
            #expect(third?.event.type == .completed, "a dead head lets the lane go on too")
            let last = try #require(third)
            let (_, none) = try await store.completeAndLeaseNext(
                last, attempt: attempt(last), transition: .delivered, followUp: nil,
                throttled: false, at: t0.addingTimeInterval(60), lease: .seconds(30))
            #expect(none == nil)
            #expect(try await store.counts() == [.delivered: 2, .dead: 1])
        }
    }

    /// The same record tried again after its commit went through unseen (PostgreSQL: the reply
    /// lost with the connection) gets the lane's next delivery that commit handed over, with a
    /// lease from the try: otherwise the lane would stand still until a lease nobody holds ran
    /// out. Only this record's tries get it; a claim does not.
    @Test(arguments: StoreBackend.available)
    func theSameRecordTriedAgainGetsTheDeliveryItHandedOver(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            for type in [EventType.scheduled, .started] { _ = try await store.accept(submission(event(type))) }
            let head = try #require(try await store.claimDue(now: t0, limit: 10, lease: .seconds(30)).first)
            let record = attempt(head)
            let (_, handed) = try await store.completeAndLeaseNext(
                head, attempt: record, transition: .delivered, followUp: nil, throttled: false, at: t0, lease: .seconds(30))
            let first = try #require(handed)
            // The caller never saw that answer: it records the same attempt again, a second later.
            let (ours, again) = try await store.completeAndLeaseNext(
                head, attempt: record, transition: .delivered, followUp: nil, throttled: false, at: t0.addingTimeInterval(1),
                lease: .seconds(30))
            #expect(ours)
            let next = try #require(again, "the try gets the delivery its first commit handed over")
            #expect(next.id == first.id && next.attempt == first.attempt && next.event.type == .started)
            #expect(try await store.attempts(deliveryID: head.id).count == 1)
            #expect(try await store.claimDue(now: t0.addingTimeInterval(29), limit: 10, lease: .seconds(30)).isEmpty)
            #expect(
                try await store.claimDue(now: t0.addingTimeInterval(30.5), limit: 10, lease: .seconds(30)).isEmpty,
                "leased from the try (t0 + 1 s), not from the lost commit")
            // A stale try of the same record, stamped earlier, coming last: the lease is not shortened.
            let (_, stale) = try await store.completeAndLeaseNext(
                head, attempt: record, transition: .delivered, followUp: nil, throttled: false, at: t0.addingTimeInterval(0.5),
                lease: .seconds(30))
            #expect(stale?.id == first.id)
            #expect(try await store.claimDue(now: t0.addingTimeInterval(30.75), limit: 10, lease: .seconds(30)).isEmpty, "still leased to t0 + 31 s")
            #expect(try await store.complete(next, attempt: attempt(next), transition: .delivered, followUp: nil, at: t0.addingTimeInterval(2)))
            #expect(try await store.counts() == [.delivered: 2])
        }
    }

    /// A head put back (a retry, a vendor's pause) holds the rest of its lane until the same time,
    /// so claims never walk past them; a later head time never brings them earlier again.
    @Test(arguments: StoreBackend.available)
    func aHeadPutBackHoldsItsLaneUntilThen(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            for type in [EventType.scheduled, .started, .completed] { _ = try await store.accept(submission(event(type))) }
            _ = try await store.accept(submission(event(.started, window: "mw-other")))
            let head = try #require(try await store.claimDue(now: t0, limit: 1, lease: .seconds(30)).first)
            #expect(head.event.type == .scheduled)
            _ = try await store.completeAndLeaseNext(
                head, attempt: attempt(head, outcome: "retry"), transition: .retry(at: t0.addingTimeInterval(60)),
                followUp: nil, throttled: false, at: t0, lease: .seconds(30))
            let other = try await store.list(DeliveryFilter(state: .pending)).filter { $0.eventType == "patch.started" }
            #expect(Set(other.map(\.nextAttemptAt)) == [t0.addingTimeInterval(60), t0], "the other maintenance's lane is not held")
            let held = try await store.list(DeliveryFilter(state: .pending)).filter { $0.eventType == "patch.completed" }.map(\.nextAttemptAt)
            #expect(held == [t0.addingTimeInterval(60)])

            let again = try #require(
                try await store.claimDue(now: t0.addingTimeInterval(60), limit: 10, lease: .seconds(30)).first { $0.id == head.id })
            #expect(try await store.release(again, until: t0.addingTimeInterval(90), at: t0.addingTimeInterval(60)))
            let paused = try await store.list(DeliveryFilter(state: .pending)).filter { $0.eventType == "patch.completed" }.map(\.nextAttemptAt)
            #expect(paused == [t0.addingTimeInterval(90)], "a pacing release holds the lane too")
            let third = try #require(
                try await store.claimDue(now: t0.addingTimeInterval(90), limit: 10, lease: .seconds(30)).first { $0.id == head.id })
            #expect(try await store.release(third, until: t0.addingTimeInterval(70), at: t0.addingTimeInterval(90)))
            let kept = try await store.list(DeliveryFilter(state: .pending)).filter { $0.eventType == "patch.completed" }.map(\.nextAttemptAt)
            #expect(kept == [t0.addingTimeInterval(90)], "never moved earlier")
        }
    }

    /// Eight claimers at once over 40 lanes of 5: no two deliveries of one lane are ever leased
    /// together, and each lane goes in order.
    @Test(arguments: StoreBackend.available)
    func concurrentClaimersNeverLeaseTwoOfOneLane(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            for step in 0..<5 {
                for lane in 0..<40 {
                    _ = try await store.accept(submission(event(step == 0 ? .scheduled : .started, window: "mw-\(lane)", instance: "i-\(step)")))
                }
            }
            let log = LaneLog()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        var idle = 0
                        while idle < 20 {
                            let claims = try await store.claimDue(now: self.t0, limit: 3, lease: .seconds(300))
                            if claims.isEmpty {
                                idle += 1
                                try await Task.sleep(for: .milliseconds(5))
                                continue
                            }
                            idle = 0
                            for claim in claims { try log.begin(claim.event.window.id ?? "", instance: claim.event.instance?.id ?? "") }
                            for claim in claims {
                                // Each worker goes on with the lane's next delivery when the store hands it over.
                                var current: ClaimedDelivery? = claim
                                while let delivery = current {
                                    log.end(delivery.event.window.id ?? "")
                                    let (_, next) = try await store.completeAndLeaseNext(
                                        delivery, attempt: self.attempt(delivery), transition: .delivered,
                                        followUp: nil, throttled: false, at: self.t0, lease: .seconds(300))
                                    if let next { try log.begin(next.event.window.id ?? "", instance: next.event.instance?.id ?? "") }
                                    current = next
                                }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await store.counts() == [.delivered: 200])
            #expect(log.orders.count == 40)
            #expect(log.orders.values.allSatisfy { $0 == ["i-0", "i-1", "i-2", "i-3", "i-4"] })
        }
    }

    @Test(arguments: StoreBackend.available)
    func concurrentAcceptsAllCommit(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            let accepted = try await withThrowingTaskGroup(of: AcceptResult.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        try await store.accept(self.submission(self.event(window: "mw-\(index % 7)", instance: "i-\(index)"), key: "k-\(index)"))
                    }
                }
                return try await group.reduce(0) { count, result in if case .accepted = result { count + 1 } else { count } }
            }
            #expect(accepted == 200)
            #expect(try await store.counts() == [.pending: 200])
        }
    }

    @Test(arguments: StoreBackend.available)
    func anUndecodableRowIsDeadAndDoesNotBlockItsLane(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            _ = try await store.accept(submission(event(.scheduled)))
            _ = try await store.accept(submission(event(.completed)))
            try await under.corruptOldestEvent()
            #expect(try await store.claimDue(now: t0, limit: 10, lease: .seconds(30)).isEmpty)
            let dead = try await store.list(DeliveryFilter(state: .dead))
            #expect(dead.count == 1)
            #expect(dead.first?.lastReason == "undecodable_event")
            let next = try await store.claimDue(now: t0, limit: 10, lease: .seconds(30))
            #expect(next.map(\.event.type) == [.completed], "the lane moves on")
        }
    }

    @Test(arguments: StoreBackend.available)
    func aRelayedBodyComesBackByteForByteInOrder(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            let bodies = [Data("{\"b\":1,  \"a\":[2]}".utf8), Data("second \u{00e9}".utf8)]
            for (index, body) in bodies.enumerated() {
                let message = RelayedMessage(source: "gh", contentType: "application/json", body: body)
                let result = try await store.acceptRelayed(
                    message, eventID: Identifier.make("evt"), idempotencyKey: "relay:gh:\(index)", receivedAt: t0,
                    deliveries: [DeliveryPlan(target: "hook", targetKind: "webhook", displayTimeZone: "UTC")])
                guard case .accepted = result else {
                    Issue.record("not accepted: \(result)")
                    return
                }
            }
            let again = try await store.acceptRelayed(
                RelayedMessage(source: "gh", contentType: "application/json", body: bodies[0]),
                eventID: Identifier.make("evt"), idempotencyKey: "relay:gh:0", receivedAt: t0, deliveries: [])
            guard case .replayed = again else {
                Issue.record("a repeated relay id was not answered from the first: \(again)")
                return
            }
            let first = try await store.claimDue(now: t0, limit: 10, lease: .seconds(30))
            #expect(first.map { $0.relayed?.body } == [bodies[0]] as [Data?], "one lane per source: the second waits")
            #expect(first.allSatisfy { $0.encodedEvent == nil }, "a passthrough sends the relayed body, not an event")
            _ = try await store.complete(first[0], attempt: attempt(first[0]), transition: .delivered, followUp: nil, at: t0)
            let second = try await store.claimDue(now: t0, limit: 10, lease: .seconds(30))
            #expect(second.map { $0.relayed?.body } == [bodies[1]] as [Data?])
        }
    }

    @Test(arguments: StoreBackend.available)
    func replayQueuesOnceAndFollowUpStateIsKept(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            _ = try await store.accept(submission(event(.scheduled)))
            let claim = try #require(try await store.claimDue(now: t0, limit: 1, lease: .seconds(30)).first)
            let state = FollowUpState(objectID: "inc-1", status: "scheduled")
            _ = try await store.complete(claim, attempt: attempt(claim, outcome: "dead"), transition: .dead, followUp: state, at: t0)
            let (followUp, _) = try await store.maintenanceContext(for: claim.event, target: claim.target)
            #expect(followUp?.objectID == "inc-1")
            #expect(try await store.replay(id: claim.id, at: t0, dryRun: true) == .wouldReplay)
            let replays = try await withThrowingTaskGroup(of: ReplayResult.self) { group in
                for _ in 0..<5 { group.addTask { try await store.replay(id: claim.id, at: self.t0, dryRun: false) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(replays.filter { $0 == .replayed }.count == 1, "replayed once: \(replays)")
            #expect(try await store.replay(id: "dlv_missing", at: t0, dryRun: false) == .notFound)
            let again = try await store.claimDue(now: t0, limit: 1, lease: .seconds(30))
            #expect(again.map(\.id) == [claim.id])
            #expect(again.first?.attempt == 1, "a replay restarts the attempt count")
        }
    }

    /// A live lane's edit with a later delivery behind it is recorded as superseded: a final
    /// state, counted, listed by state and target, pruned like a delivered one, replayable; the
    /// lane goes on to the next delivery in the same transaction.
    @Test(arguments: StoreBackend.available)
    func aSupersededLiveEditIsFinalCountedListedReplayedAndPruned(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            func live(_ event: PatchEvent) -> EventSubmission {
                var submission = submission(event)
                submission.deliveries = [DeliveryPlan(target: "ops-slack", targetKind: "slack", displayTimeZone: "UTC", live: true)]
                return submission
            }
            _ = try await store.accept(live(event(.started, instance: "i-1")))
            let head = try #require(try await store.claimDue(now: t0, limit: 10, lease: .seconds(30)).first)
            #expect(head.target == "ops-slack/live")
            #expect(try await store.laneHasLaterDelivery(than: head) == false)
            _ = try await store.accept(live(event(.started, instance: "i-2")))
            _ = try await store.accept(submission(event(.started, instance: "i-3")))
            #expect(try await store.laneHasLaterDelivery(than: head) == true, "the second event of the live lane")
            let (ours, next) = try await store.completeAndLeaseNext(
                head, attempt: attempt(head, outcome: "superseded"), transition: .superseded, followUp: nil,
                throttled: false, at: t0, lease: .seconds(30))
            #expect(ours && next?.event.instance?.id == "i-2", "the lane goes on")
            #expect(try await store.laneHasLaterDelivery(than: try #require(next)) == false, "another lane's delivery is not behind it")
            #expect(try await store.counts()[.superseded] == 1)
            #expect(try await store.list(DeliveryFilter(state: .superseded)).map(\.id) == [head.id])
            #expect(try await store.list(DeliveryFilter(target: "ops-slack")).count == 3, "the live lane is the target's too")
            #expect(try await store.countsByTarget(since: t0)["ops-slack/live"]?["superseded"] == 1)
            #expect(try await store.replay(id: head.id, at: t0, dryRun: true) == .wouldReplay)
            let day = 86_400.0
            let kept = try await store.prune(policy: RetentionPolicy(), now: t0.addingTimeInterval(10 * day), dryRun: true)
            #expect(kept.deliveries == 0)
            let pruned = try await store.prune(policy: RetentionPolicy(), now: t0.addingTimeInterval(31 * day), dryRun: true)
            #expect(pruned.deliveries == 1, "kept as long as a delivered one: \(pruned)")
        }
    }

    /// The audit trail: newest first, filtered by time and action, pruned by its own retention;
    /// an event keeps who sent it.
    @Test(arguments: StoreBackend.available)
    func theAuditTrailIsKeptFilteredAndPrunedAndEventsKeepTheirSender(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            let alice = AuditActor(name: "Alice Admin", method: "oidc", id: "alice")
            try await store.recordAudit(AuditRecord(alice, action: "sign-in", outcome: .ok, at: t0, source: "10.0.0.7", detail: "role admin"))
            try await store.recordAudit(
                AuditRecord(alice, action: "replay", outcome: .ok, at: t0.addingTimeInterval(60), detail: "1 delivery (dlv_1); 1 queued again"))
            try await store.recordAudit(
                AuditRecord(AuditActor.server("pruner"), action: "prune", outcome: .ok, at: t0.addingTimeInterval(-400 * 86_400)))
            let all = try await store.auditTrail(AuditFilter(since: t0.addingTimeInterval(-3600)))
            #expect(all.map(\.action) == ["replay", "sign-in"], "newest first, since an hour before")
            #expect(all.last?.actor == "Alice Admin" && all.last?.actorID == "alice" && all.last?.source == "10.0.0.7" && all.last?.method == "oidc")
            #expect(try await store.auditTrail(AuditFilter(action: "sign-in")).map(\.detail) == ["role admin"])
            #expect(try await store.auditTrail(AuditFilter(limit: 1)).count == 1)
            let pruned = try await store.prune(policy: RetentionPolicy(), now: t0, dryRun: false)
            #expect(pruned.audit == 1, "older than store.retention.audit (365 days)")
            #expect(try await store.auditTrail(AuditFilter()).count == 2)
            var sent = submission(event())
            sent.sender = "token:ci-pipeline"
            _ = try await store.accept(sent)
            _ = try await store.accept(submission(event(.completed)))
            let senders = try await store.list(DeliveryFilter()).map(\.sender)
            #expect(Set(senders.map { $0 ?? "none" }) == ["token:ci-pipeline", "none"])
        }
    }

    /// A revocation is written once: the call that made it says so, so a sign-in flow is
    /// finished exactly once even when two callbacks race.
    @Test(arguments: StoreBackend.available)
    func aRevocationIsMadeOnceAndSaysWhoMadeIt(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            let results = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<6 {
                    group.addTask { try await store.revokeSession("oidc-flow:s-1", expires: self.t0.addingTimeInterval(600), at: self.t0) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.filter { $0 }.count == 1, "\(results)")
            #expect(try await store.isSessionRevoked("oidc-flow:s-1"))
        }
    }

    @Test(arguments: StoreBackend.available)
    func unmappedMessagesAreKeptNewestFirst(_ backend: StoreBackend) async throws {
        try await StoreUnderTest.with(backend) { under in
            let store = under.store
            try await store.recordUnmapped(source: "sns", dedupeID: "m1", reason: "no mapping", body: "{}", at: t0)
            try await store.recordUnmapped(source: "sns", dedupeID: "m2", reason: "no app", body: "[]", at: t0.addingTimeInterval(1))
            #expect(try await store.unmapped(limit: 10).map(\.reason) == ["no app", "no mapping"])
            try await store.checkWritable()
        }
    }
}

/// Events, submissions and attempts both store suites build their cases from.
protocol StoreFixtures {
    var t0: Date { get }
}

extension StoreFixtures {
    func event(_ type: EventType = .started, window: String = "mw-1", instance: String = "i-1") -> PatchEvent {
        PatchEvent(
            type: type, app: "App1", environment: "Production", instance: Instance(id: instance),
            window: MaintenanceWindow(id: window, start: t0, end: t0.addingTimeInterval(900)))
    }

    func submission(_ event: PatchEvent, key: String? = nil, digest: String = "d1", targets: [String] = ["ops-slack"]) -> EventSubmission {
        EventSubmission(
            eventID: Identifier.make("evt"), idempotencyKey: key, bodyDigest: digest, event: event, receivedAt: t0,
            deliveries: targets.map { DeliveryPlan(target: $0, targetKind: "slack", displayTimeZone: "UTC") })
    }

    func attempt(_ claim: ClaimedDelivery, outcome: String = "delivered") -> AttemptRecord {
        AttemptRecord(
            deliveryID: claim.id, number: claim.attempt, startedAt: t0, latencyMilliseconds: 3, statusCode: 200,
            outcome: outcome, reason: outcome, responseExcerpt: "ok")
    }
}

/// Records when each lane's delivery is leased and finished, failing on an overlap.
final class LaneLog: @unchecked Sendable {
    private let lock = NSLock()
    private var busy: Set<String> = []
    private(set) var orders: [String: [String]] = [:]

    struct Overlap: Error, CustomStringConvertible {
        let lane: String
        var description: String { "two deliveries of lane \(lane) were leased at once" }
    }

    func begin(_ lane: String, instance: String) throws {
        try lock.withLock {
            guard busy.insert(lane).inserted else { throw Overlap(lane: lane) }
            orders[lane, default: []].append(instance)
        }
    }

    func end(_ lane: String) {
        _ = lock.withLock { busy.remove(lane) }
    }
}
