import Foundation
import Testing

@testable import PatchbayCore

@Suite("Claims read back from either store")
struct ClaimTriageTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func row(_ id: String, payload: String, type: String, resources: String? = "[]") -> StoredClaim {
        StoredClaim(
            id: id, eventID: "evt_\(id)", target: "ops", targetKind: "webhook", displayTimeZone: "UTC", attempt: 2,
            createdAt: now, leaseToken: "lease_\(id)", resources: resources, throttles: 1, payload: payload, eventType: type,
            receivedAt: now.addingTimeInterval(5))
    }

    @Test func anEventARelayedBodyAndAnUnreadableRowAreSortedInOrder() throws {
        let event = PatchEvent(
            type: .started, app: "App1", environment: "Production",
            window: MaintenanceWindow(start: now, end: now.addingTimeInterval(900)))
        let eventJSON = String(decoding: try JSONEncoder.patchbay().encode(event), as: UTF8.self)
        let relayed = RelayedMessage(source: "github", contentType: "application/json", body: Data(#"{"a":1}"#.utf8))
        let relayedJSON = String(decoding: try JSONEncoder.patchbay().encode(relayed), as: UTF8.self)
        let triage = ClaimTriage([
            row("a", payload: eventJSON, type: "patch.started", resources: #"["c1","c2"]"#),
            row("b", payload: "{not json", type: "patch.started"),
            row("c", payload: relayedJSON, type: RelayedMessage.eventType),
        ])
        #expect(triage.claims.map(\.id) == ["a", "c"])
        let first = try #require(triage.claims.first)
        #expect(first.event == event)
        #expect(first.resources == ["c1", "c2"])
        #expect(first.encodedEvent == Data(eventJSON.utf8))
        #expect(first.attempt == 2 && first.throttles == 1 && first.leaseToken == "lease_a")
        let second = triage.claims[1]
        #expect(second.relayed == relayed)
        #expect(second.encodedEvent == nil)
        #expect(second.event == relayed.placeholderEvent(eventID: "evt_c", receivedAt: now.addingTimeInterval(5)))
        #expect(triage.undecodable.map(\.deliveryID) == ["b"])
        #expect(triage.undecodable.first?.attempt == 2)
        #expect(triage.undecodable.first?.explanation.hasPrefix("the stored event cannot be read back: ") == true)
    }

    @Test func anExplanationIsBoundedWhateverTheError() {
        struct Long: Error, CustomStringConvertible { var description: String { String(repeating: "x", count: 5_000) } }
        let row = ClaimTriage.Undecodable(deliveryID: "d", attempt: 1, error: Long())
        #expect(row.explanation.count <= 300 + "the stored event cannot be read back: ".count)
    }
}
