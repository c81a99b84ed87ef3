import Foundation
import Logging
import PatchbayCore
import PatchbayPostgres
import PatchbaySQLite
import PatchbayTestSupport
import Testing

/// `patchbay migrate --from sqlite:PATH`: a SQLite queue read out and written into PostgreSQL
/// carries on there as it would have on SQLite. Needs the test server (PATCHBAY_TEST_POSTGRES_URL).
@Suite("Copying a SQLite queue into PostgreSQL")
struct StoreTransferTests {
    let logger = Logger(label: "test")
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let targets = ["ops-slack", "team-slack"]

    func submission(window: String, _ type: EventType, key: String, at offset: TimeInterval) -> EventSubmission {
        let event = PatchEvent(
            type: type, app: "App1", environment: "Production", instance: Instance(id: "i-1"),
            window: MaintenanceWindow(id: window, start: t0.addingTimeInterval(7200), end: t0.addingTimeInterval(9000)))
        return EventSubmission(
            eventID: Identifier.make("evt"), idempotencyKey: key, bodyDigest: "digest-\(key)", event: event,
            receivedAt: t0.addingTimeInterval(offset),
            deliveries: targets.map { DeliveryPlan(target: $0, targetKind: "slack", displayTimeZone: "UTC") },
            planning: MaintenancePlanning(settings: NoticeSettings(), displayTimeZone: "UTC"))
    }

    /// Event id and target of each claim, in claim order.
    func heads(_ claims: [ClaimedDelivery]) -> [String] {
        claims.map { "\($0.eventID) \($0.target)" }
    }

    @Test func aCopiedQueueCarriesOnInPostgreSQL() async throws {
        guard StoreBackend.postgresURL != nil else {
            print(
                "note: store transfer test skipped: PATCHBAY_TEST_POSTGRES_URL is not set (scripts/test starts a server when Debian's postgresql is installed)"
            )
            return
        }
        let directory = try TemporaryDirectory("transfer")
        defer { directory.remove() }
        let sqlite = try SQLiteStore(settings: StoreSettings(sqlitePath: directory.path("queue.db")), logger: logger)

        // Two maintenances, two targets: four lanes of two deliveries each.
        let submissions = [
            submission(window: "mw-a", .scheduled, key: "k-a1", at: 0),
            submission(window: "mw-b", .scheduled, key: "k-b1", at: 1),
            submission(window: "mw-a", .started, key: "k-a2", at: 2),
            submission(window: "mw-b", .started, key: "k-b2", at: 3),
        ]
        var accepted: [AcceptedEvent] = []
        for var submission in submissions {
            submission.sender = "token:ci-pipeline"
            let result = try await sqlite.accept(submission)
            guard case .accepted(let event) = result else {
                Issue.record("not accepted: \(result)")
                return
            }
            accepted.append(event)
        }
        let (a1, b1, a2) = (accepted[0].id, accepted[1].id, accepted[2].id)

        // mw-a's first event: delivered to one target (with a vendor id), in flight to the other.
        let claims = try await sqlite.claimDue(now: t0.addingTimeInterval(10), limit: 2, lease: .seconds(300))
        #expect(heads(claims) == ["\(a1) ops-slack", "\(a1) team-slack"])
        let done = try #require(claims.first(where: { $0.target == "ops-slack" }))
        let record = AttemptRecord(
            deliveryID: done.id, number: done.attempt, startedAt: t0.addingTimeInterval(10), latencyMilliseconds: 3,
            statusCode: 200, outcome: "delivered", reason: "delivered", responseExcerpt: "ok")
        let completed = try await sqlite.complete(
            done, attempt: record, transition: .delivered,
            followUp: FollowUpState(objectID: "inc-1", status: "scheduled"), throttled: false,
            at: t0.addingTimeInterval(11))
        #expect(completed)

        try await sqlite.recordAudit(
            AuditRecord(
                AuditActor(name: "Alice Admin", method: "oidc", id: "alice"), action: "replay", outcome: .ok, at: t0.addingTimeInterval(12),
                source: "10.0.0.7", detail: "1 delivery"))
        let transfer = try await sqlite.exportForTransfer()
        let sqliteCounts = try await sqlite.counts()
        #expect(sqliteCounts == [.pending: 6, .inFlight: 1, .delivered: 1])
        let sqliteMaintenances = try await sqlite.maintenances(since: nil, limit: 10)
        #expect(transfer.events.count == 4)
        #expect(transfer.deliveries.count == 8)
        #expect(!transfer.plannedNotices.isEmpty)

        // What SQLite itself would hand out next, once the stopped server's lease is released.
        let importedAt = t0.addingTimeInterval(100)
        _ = try await sqlite.releaseLeasesOfPreviousProcess(at: importedAt)
        let sqliteNext = try await sqlite.claimDue(now: importedAt, limit: 10, lease: .seconds(300))
        #expect(heads(sqliteNext) == ["\(b1) ops-slack", "\(b1) team-slack", "\(a2) ops-slack", "\(a1) team-slack"])

        let postgres = try PostgresTestServer.store(logger: logger)
        try await postgres.withRunningClient {
            try await postgres.migrate()
            do {
                let counts = try await postgres.importTransfer(transfer, now: importedAt)
                #expect(counts.events == 4)
                #expect(counts.deliveries == 8)
                #expect(counts.requeued == 1)
                #expect(counts.lanes == 4)
                #expect(counts.attempts == 1)
                #expect(counts.maintenances == 2)
                #expect(counts.maintenanceInstances == 2)
                #expect(counts.followUps == 1)
                #expect(counts.plannedNotices == transfer.plannedNotices.count)
                #expect(counts == transfer.counts)
                #expect(counts.audit == 1)
                // Who sent each event, and the audit trail, came along.
                #expect(try await postgres.list(DeliveryFilter()).allSatisfy { $0.sender == "token:ci-pipeline" })
                #expect(try await postgres.auditTrail(AuditFilter()) == sqlite.auditTrail(AuditFilter()))

                // Every state as in SQLite, but what was in flight is pending again.
                var expected = sqliteCounts
                expected[.pending, default: 0] += expected[.inFlight] ?? 0
                expected[.inFlight] = nil
                let postgresCounts = try await postgres.counts()
                #expect(postgresCounts == expected)

                // Idempotency keys came along: a repeat is answered from the copied event.
                let repeated = try await postgres.accept(submissions[0])
                #expect(repeated == .replayed(accepted[0]))
                let keyed = try await postgres.eventID(idempotencyKey: "k-b2")
                #expect(keyed == accepted[3].id)

                // Vendor ids, instance reports, maintenances and their notices came along.
                let (followUp, snapshot) = try await postgres.maintenanceContext(for: done.event, target: "ops-slack")
                #expect(followUp?.objectID == "inc-1")
                #expect(snapshot.instances.map(\.instance.id) == ["i-1"])
                let postgresMaintenances = try await postgres.maintenances(since: nil, limit: 10)
                #expect(postgresMaintenances.map(\.id).sorted() == sqliteMaintenances.map(\.id).sorted())
                let noticesByID = Dictionary(uniqueKeysWithValues: postgresMaintenances.map { ($0.id, $0.notices) })
                #expect(sqliteMaintenances.allSatisfy { noticesByID[$0.id] == $0.notices })
                let attempts = try await postgres.attempts(deliveryID: done.id)
                #expect(attempts.map(\.outcome) == ["delivered"])

                // The lanes go on in SQLite's order: the same heads, in the same order, same attempts.
                let postgresNext = try await postgres.claimDue(now: importedAt, limit: 10, lease: .seconds(300))
                #expect(heads(postgresNext) == heads(sqliteNext))
                #expect(postgresNext.map(\.id) == sqliteNext.map(\.id))
                #expect(postgresNext.map(\.attempt) == sqliteNext.map(\.attempt))

                // A second copy into the now non-empty store is refused and writes nothing.
                let before = try await postgres.counts()
                await #expect(throws: StoreError.self) {
                    _ = try await postgres.importTransfer(transfer, now: importedAt)
                }
                let after = try await postgres.counts()
                #expect(after == before)
            } catch {
                try? await PostgresTestServer.drop(postgres)
                throw error
            }
            try await PostgresTestServer.drop(postgres)
        }
    }
}
