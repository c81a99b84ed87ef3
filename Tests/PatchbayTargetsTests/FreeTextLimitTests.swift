import Foundation
import PatchbayCore
import PatchbayTestSupport
import Testing

@testable import PatchbayTargets

/// Failure text never kills the failure notice (review F13): a failure reason that is a pasted
/// log, or a fleet with thousands of failed servers, still renders within each vendor's size,
/// with a visible "…" where something was cut.
@Suite("Free text within vendor limits")
struct FreeTextLimitTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func failed(reason: String) throws -> PatchEvent {
        var event = try EventValidator().validate(body: Fixtures.exampleEvent(.started))
        event.type = .failed
        event.details = ["reason": .string(reason)]
        return event
    }

    func context(_ snapshot: MaintenanceSnapshot = .empty) -> RenderContext {
        RenderContext(displayTimeZone: TimeZone(identifier: "UTC")!, deliveryID: "dlv_limits", now: now, maintenance: snapshot)
    }

    func body(_ step: DeliveryStep) -> Data? {
        if case .send(let request) = step { return request.body }
        return nil
    }

    @Test func aLongFailureReasonIsCutEverywhere() throws {
        let event = try failed(reason: String(repeating: "E", count: 40_000))
        #expect(MessageText.failureReason(event)?.count == MessageText.maxReason)
        #expect(MessageText.failureReason(event)?.hasSuffix("…") == true)
        for format in [TeamsTarget.Format.adaptive, .messagecard] {
            let teams = try #require(
                body(try TeamsTarget(name: "t", url: Secret("http://127.0.0.1:9/teams/x"), format: format).plan(event, context: context())))
            #expect(teams.count <= TeamsTarget.maxPayloadBytes, "Teams \(format): \(teams.count) bytes")
            #expect(String(decoding: teams, as: UTF8.self).contains("…"))
        }
        let chat = try #require(
            body(
                try GoogleChatTarget(name: "g", url: Secret("http://127.0.0.1:9/googlechat/v1/spaces/S/messages?key=k&token=t"))
                    .plan(event, context: context())))
        #expect(chat.count <= GoogleChatTarget.maxPayloadBytes)
        let statuspage = StatuspageTarget(name: "s", page: "page1", apiKey: Secret("key-0123456789"))
        let incident = try #require(body(try statuspage.plan(event, context: context())))
        let text = try JSONDecoder().decode(JSONValue.self, from: incident)["incident"]?["body"]?.stringValue ?? ""
        #expect(text.count <= MessageText.maxReason + 100 && text.contains("…"))
    }

    /// 3,000 failed servers with long names: Statuspage's final update names the first ones and
    /// counts the rest, within its 25,000 characters.
    @Test func statuspagesCompletionStaysWithinItsLimit() throws {
        let instances = (0..<3000).map { index in
            MaintenanceSnapshot.InstanceReport(
                instance: Instance(id: "i-\(index)", name: "server-\(index)-" + String(repeating: "x", count: 150)),
                lastType: .failed)
        }
        let text = StatuspageText.completed(MaintenanceSnapshot(instances: instances))
        #expect(text.count <= StatuspageText.maxBody)
        #expect(text.contains("and 2950 more"))
    }

    /// A template whose output is far beyond any vendor's size is shortened, not refused.
    @Test func anOversizedMessageIsCutPartByPart() throws {
        var event = try failed(reason: "disk full")
        event.instance = Instance(id: "i-1", name: String(repeating: "n", count: 200))
        var content = MessageText.content(for: event, context: context(), markup: TeamsMarkdown.markup, packageBudget: 100)
        content.text = String(repeating: "T", count: 100_000)
        let cut = content.cut(to: 500)
        #expect(cut.text.count == 500 && cut.text.hasSuffix("…"))
        #expect(cut.facts.allSatisfy { $0.value.count <= 500 })
    }
}
