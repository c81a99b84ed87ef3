import Foundation
import PatchbayCore
import Testing

@testable import PatchbayRelay

/// Every AWS sample in shared/fixtures maps to its documented lifecycle event, or to a clear "ignored".
@Suite("AWS event mapping")
struct AWSEventMapperTests {
    /// AWS's own samples (copied from shared/fixtures/aws, unmodified, typos included).
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/aws")

    let mapper = AWSEventMapper(
        mapping: AWSMapping(
            windows: ["mw-0c50858d01EXAMPLE": .init(app: "App1", environment: "Production")],
            documents: ["AWS-RunPowerShellScript": .init(app: "Fleet", environment: "Production")]
        ))

    func load(_ name: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent(name)))
    }

    func event(_ result: AWSMappingResult) throws -> PatchEvent {
        guard case .event(let json, _) = result else { throw RelayRejection.malformed("expected an event, got \(result)") }
        return try EventValidator().validate(json: json)
    }

    @Test func maintenanceWindowExecutionSuccessIsCompleted() throws {
        let mapped = try event(mapper.map(eventBridge: load("eventbridge/mw-execution-state-change.json")))
        #expect(mapped.type == .completed)
        #expect(mapped.systemName == "App1 - Production")
        #expect(mapped.window.id == "14bea65d-5ccc-462d-a2f3-e99c8EXAMPLE", "one maintenance per window execution")
        #expect(Timestamp.rfc3339(mapped.window.start) == "2025-06-02T14:48:28.039Z")
        #expect(Timestamp.rfc3339(mapped.window.end) == "2025-06-02T14:52:18.084Z")
        #expect(mapped.instance == nil)
    }

    @Test(arguments: ["eventbridge/ec2-command-status-change.json", "eventbridge/ec2-command-invocation-status-change.json"])
    func runCommandSuccessIsCompleted(_ file: String) throws {
        let mapped = try event(mapper.map(eventBridge: load(file)))
        #expect(mapped.type == .completed)
        #expect(mapped.systemName == "Fleet - Production")
        #expect(mapped.window.id == "e8d3c0e4-71f7-4491-898f-c9b35bee5f3b")
        #expect(mapped.instance?.id == (file.contains("invocation") ? "i-02573cafcfEXAMPLE" : nil))
    }

    @Test(arguments: [
        "eventbridge/compliance-association-compliant.json", "eventbridge/compliance-association-non-compliant.json",
        "eventbridge/compliance-patch-compliant.json", "eventbridge/compliance-patch-non-compliant.json",
        "eventbridge/mw-state-change.json", "eventbridge/mw-target-registration.json",
        "eventbridge/mw-task-execution-state-change.json", "eventbridge/mw-task-target-invocation-state-change.json",
    ])
    func eventsWithoutLifecycleMeaningAreIgnoredWithAReason(_ file: String) throws {
        guard case .ignored(let reason) = mapper.map(eventBridge: try load(file)) else {
            Issue.record("\(file) should be ignored")
            return
        }
        #expect(!reason.isEmpty)
    }

    @Test func snsRunCommandNotifications() throws {
        let invocation = try event(mapper.map(runCommand: load("sns/runcommand-invocation.json"), dedupeID: "m1"))
        #expect(invocation.type == .started)
        #expect(invocation.instance?.id == "i-1234567890abcdef0")
        #expect(invocation.window.id == "ceb96b84-16aa-4540-91e3-925a9a278b8c")
        for file in ["sns/runcommand-summary-instanceids.json", "sns/runcommand-summary-tags.json"] {
            let summary = try event(mapper.map(runCommand: load(file), dedupeID: "m2"))
            #expect(summary.type == .started)
            #expect(summary.instance == nil)
            #expect(summary.window.end > summary.window.start)
        }
    }

    @Test func statusesMapAsDocumented() {
        #expect(AWSEventMapper.lifecycle("IN_PROGRESS") == .started)
        #expect(AWSEventMapper.lifecycle("InProgress") == .started)
        #expect(AWSEventMapper.lifecycle("Success") == .completed)
        #expect(AWSEventMapper.lifecycle("FAILED") == .failed)
        #expect(AWSEventMapper.lifecycle("TimedOut") == .failed)
        #expect(AWSEventMapper.lifecycle("TIMED_OUT") == .failed)
        #expect(AWSEventMapper.lifecycle("Cancelled") == .cancelled)
        #expect(AWSEventMapper.lifecycle("Canceled") == .cancelled)
        #expect(AWSEventMapper.lifecycle("CANCELLED") == .cancelled)
        #expect(AWSEventMapper.lifecycle("PENDING") == nil)
        #expect(AWSEventMapper.lifecycle("CANCELLING") == nil)
    }

    @Test func anUnconfiguredWindowOrDocumentIsUnmappedNotDropped() throws {
        let bare = AWSEventMapper(mapping: AWSMapping())
        guard case .unmapped(let reason) = bare.map(eventBridge: try load("eventbridge/mw-execution-state-change.json")) else {
            Issue.record("expected unmapped")
            return
        }
        #expect(reason.contains("mw-0ed7251d3fcf6e0c2"))
        guard case .unmapped = bare.map(runCommand: try load("sns/runcommand-invocation.json"), dedupeID: "x") else {
            Issue.record("expected unmapped")
            return
        }
    }
}
