import Foundation
import PatchbayCore
import PatchbayTestSupport
import Testing

@testable import PatchbayTargets

/// The notices Patchbay sends itself — reminder, "beginning", reschedule, overrun — rendered for
/// every target kind, with hostile text in every field: golden files, and the escaping holds.
@Suite("Planned notice messages")
struct NoticeMessageTests {
    static let start = Timestamp.parseRFC3339("2026-12-04T08:30:00Z")!
    static let end = Timestamp.parseRFC3339("2026-12-04T08:45:00Z")!

    static let targets: [(String, any DeliveryTarget)] =
        [
            ("slack", SlackTarget(name: "s", url: Secret("http://127.0.0.1:9/slack/T/B/notice")))
        ] + VendorTargetTests.targets

    /// A notice whose names try to break out, as the scheduler builds it.
    static func notice(_ kind: NoticeKind) -> PatchEvent {
        let type: EventType =
            switch kind {
            case .reminder: .reminder
            case .rescheduled: .scheduled
            case .beginning, .overrun: .started
            }
        var event = Fixtures.hostileEvent(type)
        event.instance = nil
        event.notice = kind
        switch kind {
        case .reminder:
            event.details = ["lead": .string("1h")]
        case .rescheduled:
            event.previousWindow = MaintenanceWindow(id: event.window.id, start: start.addingTimeInterval(-7200), end: end.addingTimeInterval(-7200))
        case .overrun:
            event.previousWindow = event.window
            event.window.end = end.addingTimeInterval(1800)
            event.details = ["overdue": .array([.string("web-1 <!channel> *now*"), .string("db \"2\" & <@U1>")])]
        case .beginning:
            break
        }
        return event
    }

    static let kinds: [NoticeKind] = [.reminder, .beginning, .rescheduled, .overrun]

    @Test(arguments: kinds)
    func everyTargetRendersTheNoticeAsGolden(_ kind: NoticeKind) throws {
        let event = Self.notice(kind)
        // The vendor objects exist already (created by the announcement) for the planned window.
        // For a reschedule they still have the previous window.
        let before = kind == .rescheduled ? event.previousWindow! : MaintenanceWindow(start: Self.start, end: Self.end)
        let state = FollowUpState(objectID: "777", status: "scheduled", windowStart: before.start, windowEnd: before.end)
        for (name, target) in Self.targets {
            let context = RenderContext(
                displayTimeZone: VendorTargetTests.zone, deliveryID: "dlv_golden", now: VendorTargetTests.now,
                followUp: state, resources: name == "pingdom" ? ["101"] : ["cmp1"])
            let step = try target.plan(event, context: context)
            let mismatch = try Golden.mismatch(
                VendorTargetTests.document(step),
                file: VendorTargetTests.golden.appendingPathComponent("notices/\(name)-\(kind.rawValue).json"))
            #expect(mismatch == nil, "\(mismatch ?? "")")
        }
    }

    @Test func chatTitlesSayWhatHappened() throws {
        let zone = TimeZone(identifier: "America/Los_Angeles")!
        let markup = SlackEscaping.markup
        func content(_ kind: NoticeKind) -> MessageContent {
            MessageText.content(for: Self.notice(kind), zone: zone, markup: markup, packageBudget: 1000)
        }
        #expect(content(.reminder).title == "Upcoming Patching")
        #expect(content(.beginning).title == "Patching Beginning")
        #expect(content(.rescheduled).title == "Patching Rescheduled")
        #expect(content(.overrun).title == "Patching Overrunning")
        let moved = content(.rescheduled)
        #expect(moved.text.contains("has moved from Thu 2026-12-03 22:30–22:45 PST (2026-12-04 06:30–06:45 UTC) to Fri 2026-12-04 00:30–00:45 PST"))
        #expect(moved.facts.map(\.title) == ["App Name", "Window", "Previous Window"])
        let overrun = content(.overrun)
        #expect(overrun.facts.map(\.title) == ["App Name", "Window", "Not Finished", "Extended Until"])
        #expect(overrun.color == MessageText.overrunColor)
        // Names of late instances are escaped like every other name.
        let late = try #require(overrun.facts.first { $0.title == "Not Finished" }?.value)
        #expect(late == "web-1 &lt;!channel&gt; *now*, db \"2\" &amp; &lt;@U1&gt;")
        #expect(overrun.text.contains("Fri 2026-12-04 01:15 PST"), "the extended end, in the route's zone")
    }

    @Test func statuspageExtendsTheIncidentAndPingdomTheWindowOnlyForAnOverrun() throws {
        let state = FollowUpState(objectID: "777", status: "in_progress", windowStart: Self.start, windowEnd: Self.end)
        let context = RenderContext(displayTimeZone: VendorTargetTests.zone, deliveryID: "d", now: Self.end, followUp: state)
        let statuspage = StatuspageTarget(name: "s", page: "pg1", apiKey: Secret("key-0123456789"))
        guard case .send(let patch) = try statuspage.plan(Self.notice(.overrun), context: context) else {
            Issue.record("an overrun updates the incident")
            return
        }
        let incident = try JSONDecoder().decode(JSONValue.self, from: patch.body)["incident"]
        #expect(patch.method == "PATCH")
        #expect(incident?["scheduled_until"]?.stringValue == "2026-12-04T09:15:00Z")
        #expect(incident?["status"] == nil, "an overrun does not change the incident's status")
        let after = statuspage.followUp(
            after: TransportResponse(status: 200, headers: [], body: Data("{}".utf8), latency: .zero),
            to: patch, event: Self.notice(.overrun), context: context)
        #expect(after?.windowEnd == Self.end.addingTimeInterval(1800))

        // A beginning notice never moves the Pingdom window, even with another window.
        var beginning = Self.notice(.beginning)
        beginning.window.end = Self.end.addingTimeInterval(600)
        let pingdom = PingdomTarget(name: "p", token: Secret("tok-0123456789"))
        guard case .skip = try pingdom.plan(beginning, context: context) else {
            Issue.record("only announcements and overruns move the window")
            return
        }
    }
}
