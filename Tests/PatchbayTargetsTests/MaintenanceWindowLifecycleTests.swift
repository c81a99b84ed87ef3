import Foundation
import PatchbayCore
import Testing

@testable import PatchbayTargets

/// The one window lifecycle the window-keeping kinds (Pingdom, Datadog, PagerDuty) share: the
/// step each event asks for, and the follow-up state a delivered request leaves.
@Suite("Maintenance window lifecycle")
struct MaintenanceWindowLifecycleTests {
    static let now = Timestamp.parseRFC3339("2026-11-27T00:00:00Z")!
    static let window = MaintenanceWindow(id: "mw-1", start: now.addingTimeInterval(3600), end: now.addingTimeInterval(7200))

    static func event(_ type: EventType, notice: NoticeKind? = nil, window: MaintenanceWindow = window, server: Bool = false) -> PatchEvent {
        PatchEvent(
            type: type, app: "App1", environment: "Production", instance: server ? Instance(id: "i-1", name: "web-1") : nil,
            window: window, notice: notice)
    }

    static let held = FollowUpState(objectID: "w1", status: "scheduled", windowStart: window.start, windowEnd: window.end)

    @Test func eachEventAsksForItsStep() {
        typealias L = MaintenanceWindowLifecycle
        let heldWindow = L.HeldWindow(id: "w1", start: Self.window.start, end: Self.window.end)
        let later = MaintenanceWindow(id: "mw-1", start: Self.window.start, end: Self.window.end.addingTimeInterval(900))
        #expect(L.step(for: Self.event(.scheduled), followUp: nil) == .create)
        #expect(L.step(for: Self.event(.started, server: true), followUp: nil) == .create, "a late first event still opens the window")
        #expect(L.step(for: Self.event(.cancelled), followUp: nil) == .nothingToEnd)
        #expect(L.step(for: Self.event(.scheduled), followUp: Self.held) == .covered(heldWindow))
        #expect(L.step(for: Self.event(.scheduled, window: later), followUp: Self.held) == .move(heldWindow), "a reschedule moves it")
        #expect(L.step(for: Self.event(.started, notice: .overrun, window: later), followUp: Self.held) == .move(heldWindow))
        #expect(
            L.step(for: Self.event(.completed, window: later, server: true), followUp: Self.held) == .covered(heldWindow),
            "a server's own idea of the window never moves it")
        #expect(L.step(for: Self.event(.cancelled), followUp: Self.held) == .end(heldWindow))
        var deleted = Self.held
        deleted.status = "deleted"
        #expect(L.step(for: Self.event(.cancelled), followUp: deleted) == .alreadyEnded)
        #expect(L.step(for: Self.event(.scheduled, window: later), followUp: deleted) == .alreadyEnded)
    }

    @Test func aDeliveredRequestLeavesItsState() {
        typealias L = MaintenanceWindowLifecycle
        let created = L.followUp(after: "POST", previous: nil, event: Self.event(.scheduled), createdID: "w1")
        #expect(created == Self.held)
        let later = MaintenanceWindow(id: "mw-1", start: Self.window.start, end: Self.window.end.addingTimeInterval(900))
        let moved = L.followUp(after: "PUT", previous: created, event: Self.event(.scheduled, window: later), createdID: nil)
        #expect(moved.objectID == "w1" && moved.windowEnd == later.end, "a move keeps the id and remembers the new window")
        let ended = L.followUp(after: "DELETE", previous: moved, event: Self.event(.cancelled), createdID: nil)
        #expect(ended.status == "deleted" && ended.objectID == "w1")
    }

    /// Before the lifecycle was shared, a Pingdom or PagerDuty create answered without a usable
    /// id left a state that read as "no window", so the next event created a second window
    /// (Datadog alone refused). Every kind now refuses to end or move a window it cannot name,
    /// and never opens a second one.
    @Test(arguments: [
        PingdomTarget(name: "p", token: Secret("tok-0123456789")) as any DeliveryTarget,
        PagerDutyTarget(
            name: "pd", token: Secret("tok-0123456789"), from: "ops@example.com", baseURL: URL(string: "http://127.0.0.1:9/pd")!,
            eventsURL: URL(string: "http://127.0.0.1:9/pd")!),
        DatadogTarget(name: "dd", apiKey: Secret("api-0123456789"), appKey: Secret("app-0123456789")),
    ])
    func aCreateAnsweredWithoutAnIdOpensNoSecondWindow(_ target: any DeliveryTarget) throws {
        let context = RenderContext(
            displayTimeZone: TimeZone(identifier: "UTC")!, deliveryID: "d", now: Self.now, resources: ["@scope=env:production", "1234"])
        guard case .send(let create) = try target.plan(Self.event(.scheduled), context: context) else {
            Issue.record("the first event creates the window")
            return
        }
        let answer = TransportResponse(status: 200, headers: [], body: Data(#"{"unexpected":true}"#.utf8), latency: .zero)
        var later = context
        later.followUp = target.followUp(after: answer, to: create, event: Self.event(.scheduled), context: context)
        #expect(later.followUp?.objectID == nil)
        let moved = MaintenanceWindow(id: "mw-1", start: Self.window.start, end: Self.window.end.addingTimeInterval(900))
        for event in [Self.event(.cancelled), Self.event(.scheduled, window: moved)] {
            let step = try target.plan(event, context: later)
            guard case .refuse(let reason) = step else {
                Issue.record("\(target.kind) \(event.type): expected a refusal, got \(step)")
                continue
            }
            #expect(reason.contains("without a usable"), "\(reason)")
        }
        let report = try target.plan(Self.event(.completed, server: true), context: later)
        guard case .skip = report else {
            Issue.record("\(target.kind): a server's report must not open a second window, got \(report)")
            return
        }
    }
}
