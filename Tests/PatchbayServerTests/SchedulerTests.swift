import Foundation
import Logging
import PatchbayCore
import PatchbaySQLite
import PatchbayTargets
import PatchbayTestSupport
import Synchronization
import Testing

@testable import PatchbayServer

/// The maintenance clock with an injected time: planned notices fire at their due time, never
/// before, exactly once across a restart; late lead times are skipped; agents' reports decide
/// "beginning" and overrun notices.
@Suite("Scheduler: planned notices")
struct SchedulerTests {
    static let yaml = """
        server:
          tokens: ["test-token-0123456789abcdef"]
        targets:
          ops-slack: {kind: slack, url: "http://127.0.0.1:9/slack/T/B/X"}
          status: {kind: statuspage, page: pg1, apiKey: "sp-key-0123456789", baseURL: "http://127.0.0.1:9/statuspage"}
          uptime: {kind: pingdom, token: "pd-token-0123456789", baseURL: "http://127.0.0.1:9/pingdom/api/3.1"}
        routes:
          - match: {app: App1}
            targets: [ops-slack]
            statuspage: {target: status, components: [c1]}
            pingdom: {target: uptime, checks: ["101"]}
            timezone: America/Los_Angeles
            reminders: [24h, 1h]
            overrunGrace: 15m
            overrunExtend: 30m
        """

    /// The window start every test counts from: 2026-12-04T08:30:00Z, 45 minutes long.
    static let windowStart = Date(timeIntervalSince1970: 1_796_373_000)
    static let windowEnd = windowStart.addingTimeInterval(45 * 60)

    final class TestClock: Sendable {
        private let now = Mutex(Date(timeIntervalSince1970: 0))
        func set(_ date: Date) { now.withLock { $0 = date } }
        func callAsFunction() -> Date { now.withLock { $0 } }
    }

    /// A store on disk, the intake and the scheduler as `serve` wires them, on one test clock.
    final class Harness: @unchecked Sendable {
        let directory: TemporaryDirectory
        let configuration: PatchbayConfiguration
        let clock = TestClock()
        private(set) var store: SQLiteStore
        private(set) var intake: EventIntake
        private(set) var scheduler: Scheduler

        init() throws {
            directory = try TemporaryDirectory("scheduler")
            configuration = try PatchbayConfiguration.parse(yaml: SchedulerTests.yaml, environment: [:])
            (store, intake, scheduler) = try Self.open(directory, configuration, clock)
        }

        static func open(
            _ directory: TemporaryDirectory, _ configuration: PatchbayConfiguration, _ clock: TestClock
        ) throws
            -> (SQLiteStore, EventIntake, Scheduler)
        {
            let store = try SQLiteStore(settings: StoreSettings(sqlitePath: directory.path("q.db")), logger: Logger(label: "test"))
            let wake = WakeSignal()
            let intake = EventIntake(
                store: store, routes: configuration.routes, targets: configuration.targets, wake: wake,
                metrics: PatchbayMetrics(), schedules: configuration.schedules, clock: { clock() })
            let scheduler = Scheduler(
                store: store, intake: intake, routes: configuration.routes, targets: configuration.targets,
                schedules: configuration.schedules, wake: wake, logger: Logger(label: "test"), clock: { clock() })
            return (store, intake, scheduler)
        }

        /// A new process on the same database file.
        func restart() throws {
            (store, intake, scheduler) = try Self.open(directory, configuration, clock)
        }

        func post(_ type: EventType, instance: String? = nil, start: Date = windowStart, end: Date = windowEnd, at time: Date) async throws {
            clock.set(time)
            var json: [String: Any] = [
                "type": type.rawValue, "app": "App1", "environment": "Production",
                "window": ["id": "mw-1", "start": Timestamp.rfc3339(start), "end": Timestamp.rfc3339(end)],
            ]
            if let instance { json["instance"] = ["id": instance, "name": "web-\(instance)"] }
            let body = try JSONSerialization.data(withJSONObject: json)
            _ = try await intake.accept(body: body, idempotencyKey: UUID().uuidString, logger: Logger(label: "test"))
        }

        func tick(at time: Date) async {
            clock.set(time)
            await scheduler.runOnce()
        }

        var detail: MaintenanceDetail {
            get async throws {
                try #require(try await store.maintenance(id: "mw-1"))
            }
        }

        func notices(_ kind: String) async throws -> [PlannedNotice] {
            try await detail.notices.filter { $0.label.hasPrefix(kind) }
        }

        /// Deliveries of events Patchbay generated, as (event type, target).
        func generated() async throws -> [DeliverySummary] {
            var rows: [DeliverySummary] = []
            for row in try await store.list(DeliveryFilter(limit: 1000)).reversed() {
                let notice = try await store.detail(id: row.id)?.event.notice
                if let notice, notice != .rescheduled { rows.append(row) }
            }
            return rows
        }

        deinit { directory.remove() }
    }

    @Test func remindersFireAtTheirLeadTimesNeverBeforeAndOnceAcrossARestart() async throws {
        let h = try Harness()
        let t = Self.windowStart
        try await h.post(.scheduled, at: t.addingTimeInterval(-25 * 3600))
        #expect(try await h.notices("reminder").map(\.state) == [.planned, .planned])

        await h.tick(at: t.addingTimeInterval(-24 * 3600 - 1))
        #expect(try await h.generated().isEmpty, "nothing before its due time")

        await h.tick(at: t.addingTimeInterval(-24 * 3600))
        var sent = try await h.generated()
        #expect(sent.map(\.eventType) == ["patch.reminder"])
        #expect(sent.map(\.target) == ["ops-slack"], "reminders go to the route's chat targets only")
        #expect(try await h.notices("reminder 1d").first?.state == .sent)

        // A restart between the reminders: the sent one is not sent again.
        try h.restart()
        await h.tick(at: t.addingTimeInterval(-24 * 3600 + 10))
        await h.tick(at: t.addingTimeInterval(-3600 - 1))
        #expect(try await h.generated().count == 1)

        await h.tick(at: t.addingTimeInterval(-3600))
        try h.restart()
        await h.tick(at: t.addingTimeInterval(-3000))
        sent = try await h.generated()
        #expect(sent.map(\.eventType) == ["patch.reminder", "patch.reminder"])
        let leads = try await h.notices("reminder").map(\.state)
        #expect(leads == [.sent, .sent])
    }

    @Test func aLeadTimeAlreadyPastIsSkippedWithItsReason() async throws {
        let h = try Harness()
        let t = Self.windowStart
        try await h.post(.scheduled, at: t.addingTimeInterval(-30 * 60))
        let reminders = try await h.notices("reminder")
        #expect(reminders.map(\.state) == [.skipped, .skipped])
        #expect(reminders.allSatisfy { $0.reason?.contains("after this reminder's time") == true })
        await h.tick(at: t.addingTimeInterval(-60))
        #expect(try await h.generated().isEmpty, "a skipped reminder is never sent late")
    }

    @Test func anAgentsStartedBeforeTheWindowMeansNoBeginningNotice() async throws {
        let h = try Harness()
        let t = Self.windowStart
        try await h.post(.scheduled, at: t.addingTimeInterval(-2 * 3600))
        try await h.post(.started, instance: "1", at: t.addingTimeInterval(-60))
        await h.tick(at: t)
        let beginning = try #require(try await h.notices("beginning").first)
        #expect(beginning.state == .skipped)
        #expect(beginning.reason?.contains("already reported patch.started") == true)
    }

    @Test func noReminderOncePatchingIsUnderWay() async throws {
        let h = try Harness()
        let t = Self.windowStart
        try await h.post(.scheduled, at: t.addingTimeInterval(-3 * 3600))
        try await h.post(.started, instance: "1", at: t.addingTimeInterval(-2 * 3600))
        await h.tick(at: t.addingTimeInterval(-3600))
        let reminder = try #require(try await h.notices("reminder 1h").first)
        #expect(reminder.state == .skipped)
        #expect(reminder.reason?.hasPrefix("patching is already under way") == true)
        #expect(try await h.generated().isEmpty)
    }

    @Test func withoutAnAgentTheWindowStartIsAnnounced() async throws {
        let h = try Harness()
        let t = Self.windowStart
        try await h.post(.scheduled, at: t.addingTimeInterval(-2 * 3600))
        await h.tick(at: t.addingTimeInterval(-1))
        #expect(try await h.notices("beginning").first?.state == .planned)
        await h.tick(at: t)
        let sent = try await h.generated().filter { $0.eventType == "patch.started" }
        #expect(sent.map(\.target) == ["ops-slack"])
        let detail = try #require(try await h.store.detail(id: sent[0].id))
        #expect(detail.event.notice == .beginning)
        let slack = try #require(h.configuration.targets["ops-slack"])
        guard
            case .send(let request) = try slack.plan(
                detail.event,
                context: RenderContext(
                    displayTimeZone: TimeZone(identifier: "UTC")!,
                    deliveryID: "d", now: t))
        else {
            Issue.record("the beginning notice renders a message")
            return
        }
        #expect(String(decoding: request.body, as: UTF8.self).contains("Patching Beginning"))
    }

    @Test func aStartedInstanceWithoutAnOutcomeByEndPlusGraceOverrunsAndExtendsThePingdomWindow() async throws {
        let h = try Harness()
        let t = Self.windowStart
        let end = Self.windowEnd
        try await h.post(.scheduled, at: t.addingTimeInterval(-2 * 3600))
        try await h.post(.started, instance: "1", at: t.addingTimeInterval(60))
        try await h.post(.started, instance: "2", at: t.addingTimeInterval(60))
        try await h.post(.completed, instance: "2", at: t.addingTimeInterval(600))
        await h.tick(at: end.addingTimeInterval(15 * 60 - 1))
        #expect(try await h.notices("overrun").first?.state == .planned, "not before end + grace")
        await h.tick(at: end.addingTimeInterval(15 * 60))
        let overrun = try await h.generated().filter { $0.eventType == "patch.started" }
        #expect(Set(overrun.map(\.target)) == ["ops-slack", "status", "uptime"])
        let pingdomDelivery = try #require(overrun.first { $0.target == "uptime" })
        let event = try #require(try await h.store.detail(id: pingdomDelivery.id)?.event)
        #expect(event.notice == .overrun)
        #expect(MessageText.overdueNames(event) == ["web-1"], "only the instance without an outcome is overdue")

        // Pingdom's window was created for the planned window; the overrun PUTs a later `to`.
        let pingdom = try #require(h.configuration.targets["uptime"])
        let state = FollowUpState(objectID: "777", status: "scheduled", windowStart: t, windowEnd: end)
        let context = RenderContext(
            displayTimeZone: TimeZone(identifier: "UTC")!, deliveryID: "d", now: end.addingTimeInterval(900),
            followUp: state, resources: ["101"])
        guard case .send(let put) = try pingdom.plan(event, context: context) else {
            Issue.record("the overrun must move the Pingdom window")
            return
        }
        #expect(put.method == "PUT" && put.displayURL.hasSuffix("/maintenance/777"))
        let body = try JSONDecoder().decode(JSONValue.self, from: put.body)
        #expect(body["to"] == .number(end.timeIntervalSince1970 + 30 * 60))
        #expect(body["from"] == nil, "a window that has begun keeps its start: Pingdom refuses a `from` in the past")

        // An agent's late `completed` carrying the planned window does not shrink it back.
        var completed = event
        completed.type = .completed
        completed.notice = nil
        completed.window.end = end
        let extended = FollowUpState(objectID: "777", status: "scheduled", windowStart: t, windowEnd: end.addingTimeInterval(1800))
        guard
            case .skip = try pingdom.plan(
                completed,
                context: RenderContext(
                    displayTimeZone: TimeZone(identifier: "UTC")!, deliveryID: "d",
                    now: end.addingTimeInterval(1000), followUp: extended))
        else {
            Issue.record("a completed event must not move the window")
            return
        }
    }

    @Test func noOverrunWhenEveryStartedInstanceFinished() async throws {
        let h = try Harness()
        let t = Self.windowStart
        try await h.post(.scheduled, at: t.addingTimeInterval(-2 * 3600))
        try await h.post(.started, instance: "1", at: t.addingTimeInterval(60))
        try await h.post(.failed, instance: "1", at: t.addingTimeInterval(120))
        await h.tick(at: Self.windowEnd.addingTimeInterval(3600))
        let overrun = try #require(try await h.notices("overrun").first)
        #expect(overrun.state == .skipped)
        #expect(overrun.reason == "every instance that started reported an outcome")
    }

    @Test func aRescheduleMovesTheNoticesAndACancelDropsThem() async throws {
        let h = try Harness()
        let t = Self.windowStart
        try await h.post(.scheduled, at: t.addingTimeInterval(-48 * 3600))
        let later = t.addingTimeInterval(2 * 3600)
        try await h.post(.scheduled, start: later, end: later.addingTimeInterval(45 * 60), at: t.addingTimeInterval(-30 * 3600))
        let notices = try await h.detail.notices
        #expect(notices.filter { $0.state == .dropped }.count == 4)
        #expect(
            notices.filter { $0.state == .planned }.map(\.dueAt) == [
                later.addingTimeInterval(-24 * 3600), later.addingTimeInterval(-3600), later, later.addingTimeInterval(45 * 60 + 15 * 60),
            ])
        #expect(try await h.detail.summary.window.start == later)
        // The stored announcement is a reschedule carrying the old window.
        let rescheduled = try #require(try await h.store.list(DeliveryFilter(limit: 100)).first { $0.target == "ops-slack" })
        let event = try #require(try await h.store.detail(id: rescheduled.id)?.event)
        #expect(event.notice == .rescheduled)
        #expect(event.previousWindow?.start == t)

        // Old times pass: nothing fires. The new 24 h reminder fires.
        await h.tick(at: t.addingTimeInterval(-24 * 3600))
        #expect(try await h.generated().filter { $0.eventType == "patch.reminder" }.isEmpty)
        await h.tick(at: later.addingTimeInterval(-24 * 3600))
        #expect(try await h.generated().filter { $0.eventType == "patch.reminder" }.count == 1)

        try await h.post(.cancelled, at: later.addingTimeInterval(-12 * 3600))
        let afterCancel = try await h.detail
        #expect(afterCancel.summary.status == .cancelled)
        #expect(afterCancel.notices.filter { $0.state == .planned }.isEmpty)
        await h.tick(at: later.addingTimeInterval(3 * 3600))
        #expect(try await h.generated().count == 1, "a cancelled maintenance sends no more notices")
    }

    @Test func aCancelledMaintenanceStaysCancelled() async throws {
        let h = try Harness()
        let t = Self.windowStart
        try await h.post(.scheduled, at: t.addingTimeInterval(-48 * 3600))
        try await h.post(.cancelled, at: t.addingTimeInterval(-47 * 3600))
        try await h.post(.scheduled, start: t.addingTimeInterval(3600), end: t.addingTimeInterval(7200), at: t.addingTimeInterval(-46 * 3600))
        let detail = try await h.detail
        #expect(detail.summary.status == .cancelled)
        #expect(detail.notices.filter { $0.state == .planned }.isEmpty, "announcing again needs a new window id")
    }

    @Test func agentsJoinTheOccurrenceInProgressAndAnnouncementsComeOnTime() throws {
        let utc = TimeZone(identifier: "UTC")!
        let daily = try Schedule(expression: ScheduleExpression.parse("cron(0 2 * * ? *)"), timeZone: utc)
        let entry = ScheduleEntry(
            app: "App1", environment: "Production", expression: "cron(0 2 * * ? *)", schedule: daily,
            duration: .seconds(3600), announceAhead: .seconds(24 * 3600), windowID: "mw-daily")
        let today = Timestamp.parseRFC3339("2026-12-04T02:00:00Z")!
        // During today's window (and long after it, for late reports) an agent joins today's occurrence,
        // even though tomorrow's is already announced.
        #expect(entry.occurrence(containing: today.addingTimeInterval(600)) == today)
        #expect(entry.occurrence(containing: today.addingTimeInterval(5 * 3600)) == today)
        #expect(entry.occurrence(containing: today.addingTimeInterval(-600)) == today, "before the window: the announced one")
        let book = ScheduleBook(entries: [entry])
        let report = PatchEvent(
            type: .started, app: "App1", environment: "Production", instance: Instance(id: "i-1"),
            window: MaintenanceWindow(id: "mw-daily", start: today, end: today.addingTimeInterval(60)))
        #expect(book.attach(report, now: today.addingTimeInterval(600)).window.id == "mw-daily@2026-12-04T02:00:00Z")
        var other = report
        other.app = "App2"
        #expect(book.attach(other, now: today).window.id == "mw-daily", "another app's window id is left alone")

        // Announced 5 s early, so `reminders: [24h]` with `announceAhead: 24h` is planned, not skipped.
        let fridays = try Schedule(expression: ScheduleExpression.parse("cron(0 2 ? * FRI *)"), timeZone: utc)
        let weekly = ScheduleEntry(
            app: "App1", environment: "Production", expression: "cron(0 2 ? * FRI *)", schedule: fridays,
            duration: .seconds(3600), announceAhead: .seconds(24 * 3600), windowID: "mw-weekly")
        #expect(weekly.occurrencesToAnnounce(at: today.addingTimeInterval(-24 * 3600 - 6)).isEmpty)
        #expect(weekly.occurrencesToAnnounce(at: today.addingTimeInterval(-24 * 3600 - 5)) == [today])
        // Down at the announce time: the occurrence in progress is still announced.
        #expect(weekly.occurrencesToAnnounce(at: today.addingTimeInterval(1800)) == [today])
        #expect(weekly.occurrencesToAnnounce(at: today.addingTimeInterval(3600)).isEmpty, "not once its window is over")
        #expect(entry.occurrencesToAnnounce(at: today.addingTimeInterval(1800)) == [today, today.addingTimeInterval(86_400)])
    }
}
