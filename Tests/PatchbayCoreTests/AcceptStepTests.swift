import Foundation
import Testing

@testable import PatchbayCore

@Suite("What accepting an event stores")
struct AcceptStepTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func scheduled(startingIn minutes: Double) -> PatchEvent {
        let start = now.addingTimeInterval(minutes * 60)
        return PatchEvent(
            type: .scheduled, app: "App1", environment: "Production",
            window: MaintenanceWindow(id: "mw-1", start: start, end: start.addingTimeInterval(1800)))
    }

    func submission(_ event: PatchEvent, planned: Bool) -> EventSubmission {
        EventSubmission(
            eventID: "evt_1", idempotencyKey: nil, bodyDigest: "d", event: event, receivedAt: now,
            deliveries: [DeliveryPlan(target: "ops", targetKind: "slack", displayTimeZone: "UTC")],
            planning: planned ? MaintenancePlanning(settings: NoticeSettings(), displayTimeZone: "UTC") : nil)
    }

    func encoded(_ event: PatchEvent) throws -> String { String(decoding: try JSONEncoder.patchbay().encode(event), as: UTF8.self) }

    @Test func anEventThatPlansNothingIsStoredAsItCame() throws {
        let event = scheduled(startingIn: 60)
        let step = try AcceptStep(submission(event, planned: false), payload: "as-encoded", existing: nil)
        #expect(step.change == nil)
        #expect(step.event == event && step.payload == "as-encoded", "no second encoding")
        #expect(step.accepted == .accepted(AcceptedEvent(id: "evt_1", deliveries: 1)))
    }

    @Test func aNewMaintenanceIsPlannedAndItsEventKept() throws {
        let event = scheduled(startingIn: 60)
        let step = try AcceptStep(submission(event, planned: true), payload: try encoded(event), existing: nil)
        #expect(step.change?.record.window == event.window)
        #expect(step.event == event)
        #expect(step.payload == (try encoded(event)))
    }

    @Test func aMovedMaintenanceIsStoredAsTheRescheduleItBecomes() throws {
        let first = scheduled(startingIn: 60)
        let existing = MaintenancePlanner.apply(first, existing: nil, settings: NoticeSettings(), displayTimeZone: "UTC", now: now).record
        let moved = scheduled(startingIn: 120)
        let step = try AcceptStep(submission(moved, planned: true), payload: try encoded(moved), existing: existing)
        let change = try #require(step.change)
        #expect(change.event != moved, "the planner rewrites a move of a known maintenance")
        #expect(step.event == change.event)
        #expect(step.payload == (try encoded(change.event)), "the rewritten event is what is stored")
    }
}
