import Foundation
import GRDB
import Logging
import PatchbayCore
import PatchbayTestSupport
import Testing

@testable import PatchbaySQLite

/// What only the SQLite store does: its file, its pragmas, pruning with trigger-kept counts.
/// The behaviour both stores share is in StoreContractTests.
@Suite("SQLite delivery store")
struct SQLiteStoreTests: StoreFixtures {
    let logger = Logger(label: "test")
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func withStore(_ body: (SQLiteStore, TemporaryDirectory) async throws -> Void) async throws {
        let directory = try TemporaryDirectory("store")
        defer { directory.remove() }
        let store = try SQLiteStore(settings: StoreSettings(sqlitePath: directory.path("queue.db")), logger: logger)
        try await body(store, directory)
    }

    @Test func concurrentAcceptsShareCommitsAndAllSurviveReopening() async throws {
        let directory = try TemporaryDirectory("store")
        defer { directory.remove() }
        let settings = StoreSettings(sqlitePath: directory.path("queue.db"))
        do {
            let store = try SQLiteStore(settings: settings, logger: logger)
            try await withThrowingTaskGroup(of: AcceptResult.self) { group in
                for index in 0..<200 {
                    group.addTask { try await store.accept(self.submission(self.event(instance: "i-\(index)"), key: "k-\(index)")) }
                }
                var accepted = 0
                for try await result in group {
                    if case .accepted = result { accepted += 1 }
                }
                #expect(accepted == 200)
            }
        }
        let reopened = try SQLiteStore(settings: settings, logger: logger)
        #expect(try await reopened.counts() == [.pending: 200])
        let journal = try await reopened.pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(journal == "wal")
        let synchronous = try await reopened.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") }
        #expect(synchronous == 2, "synchronous=FULL")
    }

    /// A record first asks whether its attempt is already there. Statistics gathered while
    /// `attempts` was nearly empty (an `ANALYZE` by an operator, or by run.py's backlog rows) made
    /// SQLite answer by scanning the whole table, once per record: the drain of a 100k backlog fell
    /// to ~2,000/s. The check names its index, so no statistics can change its plan.
    @Test func theRecordCheckUsesItsIndexWhateverTheStatistics() async throws {
        try await withStore { store, _ in
            _ = try await store.accept(submission(event()))
            let claim = try #require(try await store.claimDue(now: t0, limit: 1, lease: .seconds(60)).first)
            _ = try await store.complete(claim, attempt: attempt(claim), transition: .delivered, followUp: nil, at: t0)
            let plan = try await store.pool.write { db -> [String] in
                try db.execute(sql: "ANALYZE")
                return try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + SQLiteStore.attemptRecordedSQL, arguments: ["dlv_x", 1, 2.0])
                    .map { $0["detail"] as String }
            }
            #expect(plan.contains { $0.contains("USING INDEX attempts_delivery") }, "\(plan)")
            #expect(!plan.contains { $0.hasPrefix("SCAN attempts") }, "\(plan)")
        }
    }

    @Test func aMissingDirectoryIsAClearError() {
        #expect {
            _ = try SQLiteStore(settings: StoreSettings(sqlitePath: "/nonexistent-dir/queue.db"), logger: logger)
        } throws: { error in
            String(describing: error).contains("directory '/nonexistent-dir' does not exist")
        }
    }

    /// Nothing was ever deleted; now finished work goes after its retention, in batches, and the
    /// counts a scrape reads (kept by triggers) stay equal to the real ones.
    @Test func pruningDeletesFinishedWorkPastItsRetentionAndKeepsTheRest() async throws {
        try await withStore { store, _ in
            let day: TimeInterval = 86_400
            let planning = MaintenancePlanning(settings: nil, displayTimeZone: "UTC")
            var delivered: [ClaimedDelivery] = []
            for index in 0..<1200 {
                var submission = submission(event(.completed, window: "mw-old-\(index)", instance: "i-\(index)"), key: "k\(index)")
                submission.planning = planning
                _ = try await store.accept(submission)
            }
            // Deliver all but two; of those, one dead and one left pending.
            while true {
                let claims = try await store.claimDue(now: t0, limit: 500, lease: .seconds(30))
                if claims.isEmpty { break }
                delivered += claims
            }
            #expect(delivered.count == 1200)
            for claim in delivered.dropLast(2) {
                _ = try await store.complete(claim, attempt: attempt(claim), transition: .delivered, followUp: nil, at: t0)
            }
            let dead = delivered[delivered.count - 2]
            _ = try await store.complete(dead, attempt: attempt(dead, outcome: "dead"), transition: .dead, followUp: nil, at: t0)
            let pending = delivered[delivered.count - 1]
            _ = try await store.release(pending, until: t0.addingTimeInterval(100 * day), at: t0)

            func realCounts() async throws -> [DeliveryState: Int] {
                try await store.pool.read { db in
                    var counts: [DeliveryState: Int] = [:]
                    for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state") {
                        counts[DeliveryState(rawValue: row["state"])!] = row["n"]
                    }
                    return counts
                }
            }
            #expect(try await store.counts() == realCounts())
            #expect(try await store.counts() == [.delivered: 1198, .dead: 1, .pending: 1])

            // Day 10: nothing is old enough.
            #expect(try await store.prune(policy: RetentionPolicy(), now: t0.addingTimeInterval(10 * day), dryRun: false).total == 0)
            // Day 40: the dry run says what the real run then does.
            let later = t0.addingTimeInterval(40 * day)
            let planned = try await store.prune(policy: RetentionPolicy(), now: later, dryRun: true)
            let done = try await store.prune(policy: RetentionPolicy(), now: later, dryRun: false)
            #expect(planned == done)
            #expect(done.deliveries == 1198 && done.attempts == 1198)
            #expect(done.events == 1198, "events whose deliveries are all gone; the dead and pending ones' events stay")
            #expect(done.maintenances == 0, "maintenances are kept 90 days after their window")
            #expect(try await store.counts() == [.dead: 1, .pending: 1])
            #expect(try await store.counts() == realCounts())
            // The dead delivery is still there to replay; the idempotency key of its event still answers.
            #expect(try await store.detail(id: dead.id) != nil)
            let index = try #require(try await store.detail(id: dead.id)?.event.instance?.id.dropFirst(2))
            let again = try await store.accept(submission(event(.completed, window: "mw-old-\(index)", instance: "i-\(index)"), key: "k\(index)"))
            #expect(again == .replayed(AcceptedEvent(id: dead.eventID, deliveries: 1)))

            // Day 120: the dead one goes, and the maintenances without unfinished work.
            let last = try await store.prune(policy: RetentionPolicy(), now: t0.addingTimeInterval(120 * day), dryRun: false)
            #expect(last.deliveries == 1)
            #expect(last.maintenances == 1199, "the maintenance with a pending delivery is kept")
            #expect(try await store.counts() == [.pending: 1])
        }
    }
}
