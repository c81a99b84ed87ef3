import Foundation
import PatchbayCore
import PatchbayTestSupport
import Testing

/// Five instances report one maintenance to all four vendors: Statuspage gets one incident
/// moved through its states, Pingdom one window, chat one message per event, each in order.
@Suite("End to end: one maintenance, four vendors", .serialized)
struct LifecycleEndToEndTests {
    static func config(sinkURL: String) -> String {
        ServerHarness.config(
            targets: """
                  ops-slack: {kind: slack, url: "\(sinkURL)/slack/T0/B0/lifecycle", rate: {perSecond: 100, burst: 20}}
                  ops-teams: {kind: teams, url: "\(sinkURL)/teams/workflow/lifecycle", rate: {perSecond: 100, burst: 20}}
                  status: {kind: statuspage, page: pg1, apiKey: "sp-key-0123456789", baseURL: "\(sinkURL)/statuspage", rate: {perSecond: 100}}
                  uptime: {kind: pingdom, token: "pd-token-0123456789", baseURL: "\(sinkURL)/pingdom/api/3.1"}
                """,
            routes: """
                  - match: {app: App1, environment: Production}
                    targets: [ops-slack, ops-teams]
                    statuspage: {target: status, components: [cmp1, cmp2]}
                    pingdom: {target: uptime, checks: [101, 102]}
                    timezone: America/Los_Angeles
                """
        )
    }

    /// A window tomorrow, in local Pacific time, as an agent would send it.
    static func event(_ type: EventType, instance: Int, start: Date) -> Data {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "America/Los_Angeles")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        let packages = type == .completed ? #","packages":["openssl-3.0.8-\#(instance)","curl-8.5.0"]"# : ""
        return Data(
            """
            {"type":"\(type.rawValue)","app":"App1","environment":"Production","instance":{"id":"i-\(instance)","name":"web-\(instance)"},
             "window":{"id":"mw-life","start":"\(formatter.string(from: start))","end":"\(formatter.string(from: start.addingTimeInterval(1800)))"}\(packages)}
            """.utf8)
    }

    @Test func fiveInstancesOneIncidentOneWindow() async throws {
        try await withServerAndSink(config: { Self.config(sinkURL: $0) }) { harness, sink in
            try await harness.start()
            let start = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 / 60).rounded(.down) * 60 + 86400)
            for type in [EventType.scheduled, .started, .completed] {
                for instance in 1...5 {
                    let answer = try await harness.post(Self.event(type, instance: instance, start: start))
                    #expect(answer.status == 202)
                    #expect(answer.body?["deliveries"] == .number(4))
                }
            }
            let slack = await sink.sink.waitFor(15, timeout: .seconds(30)) { $0.vendor == "slack" }
            let teams = await sink.sink.waitFor(15, timeout: .seconds(30)) { $0.vendor == "teams" }
            let statuspage = await sink.sink.waitFor(3, timeout: .seconds(30)) { $0.vendor == "statuspage" }
            let pingdom = await sink.sink.waitFor(1, timeout: .seconds(30)) { $0.vendor == "pingdom" }
            // Let any extra request show itself before counting.
            try await Task.sleep(for: .milliseconds(800))

            let titles = slack.map {
                $0.json?["attachments"].flatMap { attachments -> String? in
                    if case .array(let items) = attachments { return items.first?["title"]?.stringValue }
                    return nil
                } ?? "?"
            }
            #expect(
                titles == Array(repeating: "Patching Scheduled", count: 5) + Array(repeating: "Patching Beginning", count: 5)
                    + Array(repeating: "Patching Complete", count: 5))
            #expect(teams.count == 15)
            #expect(teams.allSatisfy { $0.status == 202 })

            let incidents = sink.sink.requests(vendor: "statuspage")
            #expect(incidents.map(\.method) == ["POST", "PATCH", "PATCH"], "exactly one incident, created then updated twice")
            #expect(incidents.map { $0.json?["incident"]?["status"]?.stringValue } == ["scheduled", "in_progress", "completed"])
            #expect(incidents.allSatisfy { $0.authorization == "OAuth sp-key-0123456789" })
            #expect(statuspage.count >= 3)
            // Both updates went to the one incident the POST created.
            let updated = Set(incidents.dropFirst().map(\.path))
            #expect(updated.count == 1 && updated.first?.hasPrefix("/statuspage/v1/pages/pg1/incidents/sp") == true)
            let created = incidents.first?.json?["incident"]
            #expect(created?["scheduled_for"]?.stringValue == Timestamp.rfc3339(start), "local Pacific time corrected to UTC")
            #expect(created?["name"]?.stringValue == "Scheduled Maintenance for App1 - Production")
            #expect(
                incidents.last?.json?["incident"]?["body"]?.stringValue?.hasPrefix("Patching is complete: 5 of 5 instances finished successfully.")
                    == true)

            let windows = sink.sink.requests(vendor: "pingdom")
            #expect(windows.map(\.method) == ["POST"], "exactly one Pingdom window")
            #expect(pingdom.first?.json?["from"] == .number(start.timeIntervalSince1970))
            #expect(pingdom.first?.json?["uptimeids"]?.stringValue == "101,102")
            #expect(pingdom.first?.authorization == "Bearer pd-token-0123456789")
        }
    }
}
