import Foundation
import PatchbayCore
import PatchbayTestSupport
import Testing

@testable import PatchbayTargets

/// Per-maintenance summaries: which events go into one, what it says, and that a summary names
/// each server once.
@Suite("Per-maintenance chat summaries")
struct DigestTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func event(_ type: EventType, instance: String? = "i-1", notice: NoticeKind? = nil) -> PatchEvent {
        PatchEvent(
            type: type, app: "App1", environment: "Production", instance: instance.map { Instance(id: $0, name: "web-\($0)") },
            window: MaintenanceWindow(id: "w", start: start, end: start.addingTimeInterval(3600)), notice: notice)
    }

    @Test func aPerMaintenanceRouteSummarizesServersReportsOnChatTargetsOnly() {
        var route = Route(match: RouteMatch(), targets: ["ops", "hook"])
        route.chat = ChatGrouping(mode: .perMaintenance, groupWait: .seconds(45))
        let table = RouteTable(routes: [route])
        let kinds = ["ops": "slack", "hook": "webhook"]
        func plans(_ event: PatchEvent) -> [String] {
            table.plans(for: event, kindOf: { kinds[$0] }, isChat: { $0 == "slack" }).map {
                "\($0.lane.storedName)@\($0.summaryWait.map { Int($0) } ?? 0)"
            }
        }
        #expect(plans(event(.completed)) == ["ops/digest@45", "hook@0"])
        #expect(plans(event(.started)) == ["ops/digest@45", "hook@0"])
        #expect(plans(event(.failed)) == ["ops@0", "hook@0"], "failures are sent at once")
        #expect(plans(event(.scheduled, instance: nil)) == ["ops@0", "hook@0"], "maintenance-wide events are one message already")
        #expect(plans(event(.started, instance: nil, notice: .overrun)) == ["ops@0", "hook@0"])
        // A target named by a per-instance route and a per-maintenance route gets one form only: the first route's.
        var perInstance = Route(match: RouteMatch(), targets: ["ops"])
        perInstance.chat = ChatGrouping()
        #expect(
            RouteTable(routes: [perInstance, route]).plans(for: event(.completed), kindOf: { kinds[$0] }, isChat: { $0 == "slack" })
                .map(\.lane.storedName) == ["ops", "hook"])
        #expect(
            RouteTable(routes: [route, perInstance]).plans(for: event(.completed), kindOf: { kinds[$0] }, isChat: { $0 == "slack" })
                .map(\.lane.storedName) == ["ops/digest", "hook"])
        route.chat = ChatGrouping()
        #expect(
            RouteTable(routes: [route]).plans(for: event(.completed), kindOf: { kinds[$0] }, isChat: { _ in true }).map(\.lane.storedName) == [
                "ops", "hook",
            ])
    }

    /// The planner turns a moved `patch.scheduled` into a reschedule notice inside the store; the
    /// summary plan then settles back to the target's own lane, sent at once.
    @Test func aRescheduleNeverWaitsInASummary() {
        let plan = DeliveryPlan(target: "ops", targetKind: "slack", displayTimeZone: "UTC", summaryWait: 30)
        #expect(plan.settled(for: event(.scheduled)) == plan)
        let settled = plan.settled(for: event(.scheduled, notice: .rescheduled))
        #expect(settled.lane.storedName == "ops" && settled.summaryWait == nil)
    }

    func context(_ reports: [(String, EventType)], announced: [String]? = nil) -> RenderContext {
        let snapshot = MaintenanceSnapshot(instances: reports.map { .init(instance: Instance(id: $0.0, name: "web-\($0.0)"), lastType: $0.1) })
        let followUp = announced.map { FollowUpState(announced: [EventType.completed.rawValue: $0]) }
        return RenderContext(
            displayTimeZone: TimeZone(identifier: "UTC")!, deliveryID: "d", now: start, followUp: followUp,
            maintenance: snapshot, isSummary: true)
    }

    @Test func theFirstSummaryCountsTheFleetAndNamesTheFailures() throws {
        let target = SlackTarget(name: "ops", url: Secret("http://127.0.0.1:9/slack/x"))
        let reports = (1...5).map { ("i-\($0)", EventType.completed) } + [("i-6", .failed), ("i-7", .started)]
        let context = context(reports)
        guard case .send(let request) = try target.plan(event(.completed), context: context) else {
            Issue.record("nothing sent")
            return
        }
        let attachment = try JSONDecoder().decode(JSONValue.self, from: request.body)["attachments"]
        guard case .array(let list)? = attachment, let first = list.first else {
            Issue.record("no attachment")
            return
        }
        #expect(first["text"]?.stringValue == "5 of 7 servers of *App1 - Production* completed patching; failed: web-i-6.")
        #expect(first["title"]?.stringValue == "Patching Complete")
        let state = target.followUp(
            after: TransportResponse(status: 200, headers: [], body: Data(), latency: .zero), to: request,
            event: event(.completed), context: context)
        #expect(state?.announced?[EventType.completed.rawValue] == (1...5).map { "i-\($0)" })
    }

    @Test func aLaterSummaryNamesOnlyNewcomersAndNoneIsSentTwice() throws {
        let target = SlackTarget(name: "ops", url: Secret("http://127.0.0.1:9/slack/x"))
        let reports = (1...6).map { ("i-\($0)", EventType.completed) }
        let followUp = context(reports, announced: (1...5).map { "i-\($0)" })
        guard case .send(let request) = try target.plan(event(.completed), context: followUp) else {
            Issue.record("nothing sent")
            return
        }
        let body = String(decoding: request.body, as: UTF8.self)
        #expect(body.contains("1 more server of *App1 - Production* completed patching (6 of 6 now)."))
        #expect(body.contains("\"web-i-6\"") && !body.contains("web-i-5"))
        let nothingNew = context(reports, announced: (1...6).map { "i-\($0)" })
        guard case .skip = try target.plan(event(.completed), context: nothingNew) else {
            Issue.record("a summary naming no one was sent")
            return
        }
    }

    @Test func templatesSeeTheSummary() throws {
        var target = SlackTarget(name: "ops", url: Secret("http://127.0.0.1:9/slack/x"))
        let diagnostics = ConfigDiagnostics()
        target.templates = TargetRegistry.compileTemplates(
            TemplateSources(
                texts: ["text": "{{#digest}}{{count}}/{{total}}: {{#names}}{{.}}{{^last()}} {{/last()}}{{/names}}{{/digest}}"], keyPath: "t"),
            for: SlackTarget.self, diagnostics: diagnostics, reportUnusedKeys: true)
        #expect(diagnostics.problems.isEmpty)
        let request = try target.render(event(.completed), context: context([("i-1", .completed), ("i-2 <!here>", .completed), ("i-3", .failed)]))
        #expect(String(decoding: request.body, as: UTF8.self).contains("\"text\":\"2/3: web-i-1 web-i-2 &lt;!here&gt;\""))
    }
}
