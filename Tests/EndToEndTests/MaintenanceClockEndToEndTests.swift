import Foundation
import PatchbayCore
import PatchbayTestSupport
import Testing

/// Patchbay owns the maintenance clock, end to end with the real binary and the sink: reminders,
/// "beginning" and overrun notices at their due times; a reschedule moves them; a cancel drops
/// them; a `schedules:` entry announces a maintenance with no event posted, once across restarts.
@Suite("End to end: the maintenance clock")
struct MaintenanceClockEndToEndTests {
    static func targets(_ sinkURL: String) -> String {
        """
          ops-slack: {kind: slack, url: "\(sinkURL)/slack/T0/B0/clock", rate: {perSecond: 100, burst: 20}}
          status: {kind: statuspage, page: pg1, apiKey: "sp-key-0123456789", baseURL: "\(sinkURL)/statuspage", rate: {perSecond: 100}}
          uptime: {kind: pingdom, token: "pd-token-0123456789", baseURL: "\(sinkURL)/pingdom/api/3.1", rate: {perSecond: 100, burst: 20}}
        """
    }

    static func event(_ type: EventType, app: String, start: Date, end: Date, instance: String? = nil) -> Data {
        let instanceJSON = instance.map { #","instance":{"id":"i-\#($0)","name":"\#($0)"}"# } ?? ""
        return Data(
            """
            {"type":"\(type.rawValue)","app":"\(app)","environment":"Production"\(instanceJSON),
             "window":{"id":"mw-\(app.lowercased())","start":"\(Timestamp.rfc3339(start))","end":"\(Timestamp.rfc3339(end))"}}
            """.utf8)
    }

    /// (app, title) of each Slack message, in arrival order, with its arrival time.
    static func slackMessages(_ sink: RunningSink) -> [(app: String, title: String, at: Date)] {
        sink.sink.requests(vendor: "slack").compactMap { request in
            guard case .array(let attachments)? = request.json?["attachments"], let first = attachments.first,
                let title = first["title"]?.stringValue, case .array(let fields)? = first["fields"],
                let app = fields.first?["value"]?.stringValue
            else { return nil }
            return (String(app.prefix { $0 != " " }), title, request.receivedAt)
        }
    }

    @Test(.timeLimit(.minutes(8)))
    func remindersBeginningAndOverrunArriveOnTimeARescheduleMovesThemACancelDropsThem() async throws {
        try await withServerAndSink(config: { sinkURL in
            ServerHarness.config(
                targets: Self.targets(sinkURL),
                routes: """
                      - match: {environment: Production}
                        targets: [ops-slack]
                        statuspage: {target: status, components: [cmp1]}
                        pingdom: {target: uptime, checks: [101]}
                        reminders: [90s, 30s]
                        overrunGrace: 5s
                        overrunExtend: 10m
                    """)
        }) { harness, sink in
            try await harness.start()
            let t0 = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.up) + 1)
            func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

            // App1: announced 3 minutes ahead; an agent starts after the window opens and never finishes.
            #expect(try await harness.post(Self.event(.scheduled, app: "App1", start: at(180), end: at(240))).status == 202)
            // App2: announced, then moved 40 s earlier.
            #expect(try await harness.post(Self.event(.scheduled, app: "App2", start: at(200), end: at(260))).status == 202)
            #expect(try await harness.post(Self.event(.scheduled, app: "App2", start: at(160), end: at(230))).status == 202)
            // App3: announced, then cancelled.
            #expect(try await harness.post(Self.event(.scheduled, app: "App3", start: at(170), end: at(230))).status == 202)
            #expect(try await harness.post(Self.event(.cancelled, app: "App3", start: at(170), end: at(230))).status == 202)

            let upToDate = await sink.sink.waitFor(5, timeout: .seconds(20)) { $0.vendor == "slack" }
            #expect(upToDate.count == 5)
            let plan = try await harness.cli(["maintenances", "show", "mw-app2", "--json"], name: "show-app2")
            #expect(plan.status == 0)
            let planned = try JSONDecoder().decode(JSONValue.self, from: Data(plan.stdout.utf8))
            guard case .array(let notices)? = planned["notices"] else {
                Issue.record("maintenances show lists the planned notices: \(plan.stdout) \(plan.stderr)")
                return
            }
            #expect(notices.filter { $0["state"]?.stringValue == "dropped" }.count == 4, "the reschedule dropped the old plan")
            #expect(notices.filter { $0["state"]?.stringValue == "planned" }.count == 4)

            // Wait for the beginning of App1 (t0+180), then let App1's agent start.
            while Date() < at(183) { try await Task.sleep(for: .milliseconds(200)) }
            #expect(try await harness.post(Self.event(.started, app: "App1", start: at(180), end: at(240), instance: "web-1")).status == 202)
            // The overrun notice is due at end + grace: t0+245.
            _ = await sink.sink.waitFor(1, timeout: .seconds(90)) { $0.vendor == "slack" && $0.body.contains("Patching Overrunning") }
            try await Task.sleep(for: .seconds(2))

            let messages = Self.slackMessages(sink)
            func titles(_ app: String) -> [String] { messages.filter { $0.app == app }.map(\.title) }
            #expect(
                titles("App1") == [
                    "Patching Scheduled", "Upcoming Patching", "Upcoming Patching", "Patching Beginning",
                    "Patching Beginning", "Patching Overrunning",
                ])
            #expect(
                titles("App2") == [
                    "Patching Scheduled", "Patching Rescheduled", "Upcoming Patching", "Upcoming Patching",
                    "Patching Beginning",
                ])
            #expect(titles("App3") == ["Patching Scheduled", "Patching Cancelled"], "a cancel drops every planned notice")

            // Each planned notice within 2 s of its due time, in order.
            func arrivals(_ app: String, _ title: String) -> [Date] { messages.filter { $0.app == app && $0.title == title }.map(\.at) }
            let due: [(String, String, [Double])] = [
                ("App1", "Upcoming Patching", [90, 150]), ("App1", "Patching Overrunning", [245]),
                ("App2", "Upcoming Patching", [70, 130]), ("App2", "Patching Beginning", [160]),
            ]
            for (app, title, seconds) in due {
                let got = arrivals(app, title)
                #expect(got.count == seconds.count, "\(app) \(title)")
                for (arrived, expected) in zip(got, seconds) {
                    let lateness = arrived.timeIntervalSince(at(expected))
                    #expect(lateness >= -0.2 && lateness <= 2, "\(app) \(title) due at t0+\(Int(expected))s arrived \(lateness)s after")
                }
            }
            let beginning1 = try #require(arrivals("App1", "Patching Beginning").first)
            #expect(abs(beginning1.timeIntervalSince(at(180))) <= 2)

            // Vendors: App2's incident and window moved; App3's closed and deleted; App1's extended.
            let incidents = sink.sink.requests(vendor: "statuspage")
            #expect(incidents.filter { $0.method == "POST" }.count == 3, "one incident per maintenance")
            let patches = incidents.filter { $0.method == "PATCH" }.compactMap { $0.json?["incident"] }
            #expect(patches.contains { $0["scheduled_for"]?.stringValue == Timestamp.rfc3339(at(160)) }, "the reschedule moves the incident")
            #expect(patches.contains { $0["status"]?.stringValue == "completed" && $0["body"]?.stringValue?.contains("cancelled") == true })
            #expect(patches.contains { $0["scheduled_until"]?.stringValue == Timestamp.rfc3339(at(240 + 600)) }, "the overrun extends the incident")
            let windows = sink.sink.requests(vendor: "pingdom")
            #expect(windows.filter { $0.method == "POST" }.count == 3)
            #expect(windows.filter { $0.method == "DELETE" }.count == 1, "the cancelled window is deleted")
            let puts = windows.filter { $0.method == "PUT" }.compactMap(\.json)
            #expect(puts.contains { $0["from"] == .number(at(160).timeIntervalSince1970) && $0["to"] == .number(at(230).timeIntervalSince1970) })
            #expect(puts.contains { $0["to"] == .number(at(240 + 600).timeIntervalSince1970) }, "the overrun PUTs a later `to`")
            #expect(puts.count == 2)
        }
    }

    @Test(.timeLimit(.minutes(5)))
    func aScheduleAnnouncesItsOccurrenceOnceAcrossRestartsWithNoEventPosted() async throws {
        // One occurrence 3 minutes ahead, as a cron with a seconds field (UTC); announced 2 minutes ahead.
        let occurrence = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 180).rounded(.up))
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: occurrence)
        let expression = "cron(\(c.second!) \(c.minute!) \(c.hour!) \(c.day!) \(c.month!) ? \(c.year!))"
        try await withServerAndSink(config: { sinkURL in
            ServerHarness.config(
                targets: Self.targets(sinkURL),
                routes: """
                      - match: {app: Fleet}
                        targets: [ops-slack]
                        statuspage: {target: status, components: [cmp1]}
                        pingdom: {target: uptime, checks: [101]}
                        reminders: []
                    """,
                delivery: """
                    schedules:
                      - {app: Fleet, environment: Production, expression: "\(expression)", timezone: UTC, duration: 30m,
                         announceAhead: 2m, windowId: mw-fleet}
                    """)
        }) { harness, sink in
            try await harness.start()
            let listed = try await harness.cli(["schedule", "list", "--json"], name: "schedule-list-1")
            #expect(listed.status == 0)
            #expect(listed.stdout.contains(#""announced":false"#), Comment(rawValue: listed.stdout + listed.stderr))
            // A graceful restart before the announcement.
            await harness.stop()
            try await harness.start()

            let created = await sink.sink.waitFor(1, timeout: .seconds(100)) { $0.vendor == "pingdom" }
            #expect(created.count == 1)
            let announcedAt = try #require(created.first?.receivedAt)
            // Announced announceAhead before the occurrence (up to 5 s early, so a reminder at that lead is kept).
            let offset = announcedAt.timeIntervalSince(occurrence.addingTimeInterval(-120))
            #expect(offset >= -6 && offset <= 2, "announced \(offset) s from announceAhead before the occurrence")
            _ = await sink.sink.waitFor(1, timeout: .seconds(10)) { $0.vendor == "statuspage" }
            _ = await sink.sink.waitFor(1, timeout: .seconds(10)) { $0.vendor == "slack" }
            // Wait until the three sends are recorded: a kill -9 before that would make them
            // in flight at the crash, and they would rightly be sent again (at least once).
            let recordedBy = Date().addingTimeInterval(10)
            while Date() < recordedBy {
                let states = try await harness.deliveries().compactMap { $0["state"]?.stringValue }
                if states.count == 3 && states.allSatisfy({ $0 == "delivered" }) { break }
                try await Task.sleep(for: .milliseconds(100))
            }

            // kill -9 and start again: the occurrence is not announced twice.
            harness.server?.kill(SIGKILL)
            _ = await harness.server?.waitForExit(timeout: .seconds(10))
            try await harness.start()
            try await Task.sleep(for: .seconds(3))

            #expect(sink.sink.requests(vendor: "statuspage").map(\.method) == ["POST"])
            let incident = sink.sink.requests(vendor: "statuspage").first?.json?["incident"]
            #expect(incident?["scheduled_for"]?.stringValue == Timestamp.rfc3339(occurrence))
            #expect(sink.sink.requests(vendor: "pingdom").map(\.method) == ["POST"])
            #expect(sink.sink.requests(vendor: "pingdom").first?.json?["to"] == .number(occurrence.timeIntervalSince1970 + 1800))
            let chat = Self.slackMessages(sink)
            #expect(chat.map(\.title) == ["Patching Scheduled"])

            // An agent reporting with the schedule's window id joins the announced occurrence.
            #expect(
                try await harness.post(
                    Self.event(
                        .started, app: "Fleet", start: Date(), end: Date().addingTimeInterval(600),
                        instance: "web-9")
                ).status == 202)
            let key = "mw-fleet@\(Timestamp.rfc3339(occurrence))"
            let shown = try await harness.cli(["maintenances", "show", key, "--json"], name: "show-fleet")
            #expect(shown.status == 0, Comment(rawValue: shown.stderr))
            let detail = try JSONDecoder().decode(JSONValue.self, from: Data(shown.stdout.utf8))
            #expect(detail["maintenance"]?["instances"]?["started"] == .number(1))
            let again = try await harness.cli(["schedule", "list", "--json"], name: "schedule-list-2")
            #expect(again.stdout.contains(#""announced":true"#), Comment(rawValue: again.stdout + again.stderr))
        }
    }
}
