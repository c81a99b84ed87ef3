import Foundation
import PatchbayCore
import PatchbayTestSupport
import Testing

@testable import PatchbayTargets

/// Datadog downtimes: golden requests for every event type (first event, an existing downtime
/// with the same window and with a moved one), the one-downtime lifecycle, keys kept out of
/// everything printable, site selection, and the X-RateLimit pause.
@Suite("Datadog target")
struct DatadogTargetTests {
    static let canary = "canary-datadog-7c1e"
    static let now = Timestamp.parseRFC3339("2026-11-27T00:00:00Z")!
    static let zone = TimeZone(identifier: "America/Los_Angeles")!
    static let golden = Golden.directory("PatchbayTargetsTests/Golden/datadog")
    static let scope = "env:production AND service:app1"
    static let resources = ["patching", "os:linux", RouteResources.encode(scalar: "scope", scope)]
    static let downtimeID = "3f1c2a9e-0d4b-41ef-9a7c-da7ad0900002"
    static let target = DatadogTarget(
        name: "dd", apiKey: Secret("api-\(canary)"), appKey: Secret("app-\(canary)"),
        baseURL: URL(string: "http://127.0.0.1:9/datadog")!)

    static func context(followUp: FollowUpState? = nil, resources: [String] = resources, now: Date = now) -> RenderContext {
        RenderContext(displayTimeZone: zone, deliveryID: "dlv_golden", now: now, followUp: followUp, resources: resources)
    }

    static func event(_ type: EventType) throws -> PatchEvent {
        try EventValidator().validate(body: Fixtures.exampleEvent(type))
    }

    /// The downtime Datadog holds for `event`'s maintenance: its window, or the window an hour earlier.
    static func existing(for event: PatchEvent, moved: Bool) -> FollowUpState {
        let shift: TimeInterval = moved ? -3600 : 0
        return FollowUpState(
            objectID: downtimeID, status: "scheduled", windowStart: event.window.start.addingTimeInterval(shift),
            windowEnd: event.window.end.addingTimeInterval(shift))
    }

    static func request(of step: DeliveryStep) -> OutboundRequest? {
        if case .send(let request) = step { return request }
        return nil
    }

    static func skipReason(of step: DeliveryStep) -> String? {
        if case .skip(let reason) = step { return reason }
        return nil
    }

    static func refuseReason(of step: DeliveryStep) -> String? {
        if case .refuse(let reason) = step { return reason }
        return nil
    }

    static func attributes(of request: OutboundRequest) throws -> JSONValue? {
        try JSONValue.parse(request.body)["data"]?["attributes"]
    }

    func check(_ step: DeliveryStep, _ name: String) throws {
        let mismatch = try Golden.mismatch(VendorTargetTests.document(step), file: Self.golden.appendingPathComponent(name))
        #expect(mismatch == nil, "\(mismatch ?? "")")
    }

    // MARK: Golden files

    @Test(arguments: EventType.allCases)
    func firstEventOfAMaintenanceMatchesGolden(_ type: EventType) throws {
        try check(try Self.target.plan(try Self.event(type), context: Self.context()), "\(type.rawValue).json")
        try check(try Self.target.plan(Fixtures.hostileEvent(type), context: Self.context()), "hostile-\(type.rawValue).json")
    }

    @Test(arguments: EventType.allCases)
    func laterEventsOfAMaintenanceMatchGolden(_ type: EventType) throws {
        let event = try Self.event(type)
        let hostile = Fixtures.hostileEvent(type)
        try check(
            try Self.target.plan(event, context: Self.context(followUp: Self.existing(for: event, moved: false))),
            "existing-\(type.rawValue).json")
        try check(
            try Self.target.plan(event, context: Self.context(followUp: Self.existing(for: event, moved: true))),
            "moved-\(type.rawValue).json")
        try check(
            try Self.target.plan(hostile, context: Self.context(followUp: Self.existing(for: hostile, moved: true))),
            "moved-hostile-\(type.rawValue).json")
    }

    /// A custom `text` template with hostile text in every value: every `@` a value brings is
    /// made inert, so an event cannot page anyone through the downtime's message.
    @Test(arguments: EventType.allCases)
    func customTemplatesMatchGoldenAndPageNoOne(_ type: EventType) throws {
        var target = Self.target
        let diagnostics = ConfigDiagnostics()
        target.templates = TargetRegistry.compileTemplates(
            TemplateSources(
                texts: ["text": "Patching {{system}}{{#instance}} on {{name}}{{/instance}} ({{window.text}})"],
                keyPath: "targets.dd.templates"), for: DatadogTarget.self, diagnostics: diagnostics, reportUnusedKeys: true)
        #expect(diagnostics.problems.isEmpty)
        let step = try target.plan(Fixtures.hostileEvent(type), context: Self.context())
        try check(step, "template-hostile-\(type.rawValue).json")
        if let request = Self.request(of: step), let message = try Self.attributes(of: request)?["message"]?.stringValue {
            #expect(!message.contains("@"), "no @ reaches Datadog from a value: \(message.prefix(80))")
            #expect(message.hasPrefix("Patching App"))
        }
    }

    // MARK: Lifecycle

    @Test func oneDowntimeIsScheduledMovedAndCancelled() throws {
        let target = Self.target
        let scheduled = try Self.event(.scheduled)
        let create = try #require(Self.request(of: try target.plan(scheduled, context: Self.context())), "the first event schedules the downtime")
        #expect(create.method == "POST")
        #expect(create.displayURL == "http://127.0.0.1:9/datadog/api/v2/downtime")
        #expect(create.headers.contains(HTTPHeader("Content-Type", "application/json")))
        #expect(create.headers.contains(HTTPHeader("Accept", "application/json")))
        let created = try #require(try Self.attributes(of: create))
        #expect(created["scope"]?.stringValue == Self.scope)
        #expect(created["monitor_identifier"] == .object(["monitor_tags": .array([.string("patching"), .string("os:linux")])]))
        #expect(created["schedule"] == .object(["start": .string("2026-12-04T08:30:00Z"), "end": .string("2026-12-04T08:45:00Z")]))
        #expect(created["message"]?.stringValue == "Scheduled Maintenance for App1 - Production (mw-0123), by Patchbay")
        #expect(created["mute_first_recovery_notification"] == .bool(true))
        #expect(created["display_timezone"]?.stringValue == "America/Los_Angeles")
        #expect(try JSONValue.parse(create.body)["data"]?["type"]?.stringValue == "downtime")

        let answer = TransportResponse(
            status: 200, headers: [],
            body: Data(
                #"""
                {"data":{"id":"\#(Self.downtimeID)","type":"downtime","attributes":{"status":"scheduled"}}}
                """#.utf8), latency: .zero)
        let state = try #require(target.followUp(after: answer, to: create, event: scheduled, context: Self.context()))
        #expect(
            state
                == FollowUpState(
                    objectID: Self.downtimeID, status: "scheduled", windowStart: scheduled.window.start,
                    windowEnd: scheduled.window.end))

        // Repeats and agents' reports send nothing: the downtime already covers them.
        for type in EventType.allCases where type != .cancelled {
            let step = try target.plan(try Self.event(type), context: Self.context(followUp: state))
            #expect(Self.skipReason(of: step) == "the downtime already covers this event", "\(type)")
        }
        // An agent's own idea of the window does not move the downtime; only an announcement does.
        var agentReport = try Self.event(.started)
        agentReport.window.end = agentReport.window.end.addingTimeInterval(-600)
        #expect(Self.skipReason(of: try target.plan(agentReport, context: Self.context(followUp: state))) != nil)

        // A reschedule PATCHes the same downtime, id in the path and in the body.
        var moved = scheduled
        moved.window.start = moved.window.start.addingTimeInterval(3600)
        moved.window.end = moved.window.end.addingTimeInterval(5400)
        let patch = try #require(Self.request(of: try target.plan(moved, context: Self.context(followUp: state))), "a reschedule moves the downtime")
        #expect(patch.method == "PATCH")
        #expect(patch.displayURL == "http://127.0.0.1:9/datadog/api/v2/downtime/\(Self.downtimeID)")
        #expect(
            try JSONValue.parse(patch.body)
                == .object([
                    "data": .object([
                        "id": .string(Self.downtimeID), "type": .string("downtime"),
                        "attributes": .object([
                            "schedule": .object(["start": .string("2026-12-04T09:30:00Z"), "end": .string("2026-12-04T10:15:00Z")])
                        ]),
                    ])
                ]))
        let patchAnswer = TransportResponse(status: 200, headers: [], body: Data(#"{"data":{"id":"\#(Self.downtimeID)"}}"#.utf8), latency: .zero)
        let movedState = try #require(target.followUp(after: patchAnswer, to: patch, event: moved, context: Self.context(followUp: state)))
        #expect(
            movedState == FollowUpState(objectID: Self.downtimeID, status: "scheduled", windowStart: moved.window.start, windowEnd: moved.window.end))
        #expect(Self.skipReason(of: try target.plan(moved, context: Self.context(followUp: movedState))) != nil, "the same reschedule again")

        // An overrun notice stretches the running downtime.
        var overrun = try Self.event(.started)
        overrun.notice = .overrun
        overrun.previousWindow = moved.window
        overrun.window = moved.window
        overrun.window.end = moved.window.end.addingTimeInterval(1800)
        let running = Self.context(followUp: movedState, now: moved.window.start.addingTimeInterval(600))
        let stretch = try #require(Self.request(of: try target.plan(overrun, context: running)), "an overrun extends the downtime")
        #expect(stretch.method == "PATCH")
        let schedule = try Self.attributes(of: stretch)?["schedule"]
        #expect(schedule?["end"]?.stringValue == "2026-12-04T10:45:00Z")
        // The downtime is running: only its end moves; its start is left out, not moved to now.
        #expect(schedule?["start"] == nil)

        // Cancelling deletes it; nothing is sent afterwards.
        let cancel = try #require(Self.request(of: try target.plan(try Self.event(.cancelled), context: Self.context(followUp: movedState))))
        #expect(cancel.method == "DELETE" && cancel.body.isEmpty)
        #expect(cancel.displayURL == "http://127.0.0.1:9/datadog/api/v2/downtime/\(Self.downtimeID)")
        #expect(!cancel.headers.contains { $0.name == "Content-Type" })
        let deleted = TransportResponse(status: 204, headers: [], body: Data(), latency: .zero)
        #expect(target.classify(.success(deleted)).label == "delivered")
        let gone = try #require(
            target.followUp(after: deleted, to: cancel, event: try Self.event(.cancelled), context: Self.context(followUp: movedState)))
        #expect(gone.status == "deleted" && gone.objectID == Self.downtimeID)
        for type in EventType.allCases {
            #expect(Self.skipReason(of: try target.plan(try Self.event(type), context: Self.context(followUp: gone))) == "the downtime was cancelled")
        }
    }

    @Test func anOverrunAfterTheDowntimeEndedSchedulesANewOne() throws {
        let started = try Self.event(.started)
        let state = Self.existing(for: started, moved: false)
        var overrun = started
        overrun.notice = .overrun
        overrun.previousWindow = started.window
        overrun.window.end = started.window.end.addingTimeInterval(3600)
        let late = Self.context(followUp: state, now: started.window.end.addingTimeInterval(300))
        let create = try #require(Self.request(of: try Self.target.plan(overrun, context: late)), "an ended downtime is replaced, not PATCHed")
        #expect(create.method == "POST" && create.displayURL.hasSuffix("/api/v2/downtime"))
        #expect(
            try Self.attributes(of: create)?["schedule"]
                == .object(["start": .string("2026-12-04T08:50:00Z"), "end": .string("2026-12-04T09:45:00Z")]))
        let newID = "7b2d0c4e-1111-4222-8333-944455566677"
        let answer = TransportResponse(status: 200, headers: [], body: Data(#"{"data":{"id":"\#(newID)","type":"downtime"}}"#.utf8), latency: .zero)
        let next = try #require(Self.target.followUp(after: answer, to: create, event: overrun, context: late))
        #expect(next == FollowUpState(objectID: newID, status: "scheduled", windowStart: overrun.window.start, windowEnd: overrun.window.end))
    }

    @Test func cancelWithoutADowntimeOrAfterItEndedSendsNothing() throws {
        let cancelled = try Self.event(.cancelled)
        #expect(Self.skipReason(of: try Self.target.plan(cancelled, context: Self.context()))?.hasPrefix("no downtime was scheduled") == true)
        let state = Self.existing(for: cancelled, moved: false)
        let after = Self.context(followUp: state, now: cancelled.window.end.addingTimeInterval(60))
        #expect(Self.skipReason(of: try Self.target.plan(cancelled, context: after))?.hasPrefix("the downtime ended at 2026-12-04T08:45:00Z") == true)
    }

    @Test func aWindowThatHasEndedIsNotScheduled() throws {
        let event = try Self.event(.completed)
        let late = Self.context(now: event.window.end)
        #expect(
            Self.skipReason(of: try Self.target.plan(event, context: late))
                == "the window ended at 2026-12-04T08:45:00Z; a downtime for it would mute nothing")
        var moved = try Self.event(.scheduled)
        moved.window.end = Self.now.addingTimeInterval(-60)
        moved.window.start = moved.window.end.addingTimeInterval(-600)
        let step = try Self.target.plan(moved, context: Self.context(followUp: Self.existing(for: try Self.event(.scheduled), moved: false)))
        #expect(Self.skipReason(of: step)?.hasPrefix("the new window ended") == true)
    }

    @Test func aFirstEventAfterTheStartSchedulesFromNow() throws {
        let started = try Self.event(.started)
        let now = started.window.start.addingTimeInterval(125.4)
        let request = try #require(Self.request(of: try Self.target.plan(started, context: Self.context(now: now))))
        let schedule = try Self.attributes(of: request)?["schedule"]
        #expect(schedule?["start"]?.stringValue == "2026-12-04T08:32:06Z")
        #expect(schedule?["end"]?.stringValue == "2026-12-04T08:45:00Z")
    }

    @Test func withoutAScopeTheDowntimeIsRefused() throws {
        let step = try Self.target.plan(try Self.event(.scheduled), context: Self.context(resources: ["patching"]))
        let reason = try #require(Self.refuseReason(of: step))
        #expect(reason.contains("datadog.scope") && reason.contains("dd"))
        let blank = try Self.target.plan(try Self.event(.scheduled), context: Self.context(resources: [RouteResources.encode(scalar: "scope", "  ")]))
        #expect(Self.refuseReason(of: blank) != nil)
    }

    @Test func withoutMonitorTagsEveryMonitorInTheScopeIsMuted() throws {
        let resources = [RouteResources.encode(scalar: "scope", Self.scope)]
        let request = try #require(Self.request(of: try Self.target.plan(try Self.event(.scheduled), context: Self.context(resources: resources))))
        #expect(try Self.attributes(of: request)?["monitor_identifier"] == .object(["monitor_tags": .array([.string("*")])]))
        // Two routes naming the same tag send it once.
        let doubled = ["patching", "patching", RouteResources.encode(scalar: "scope", Self.scope)]
        let once = try #require(Self.request(of: try Self.target.plan(try Self.event(.scheduled), context: Self.context(resources: doubled))))
        #expect(try Self.attributes(of: once)?["monitor_identifier"] == .object(["monitor_tags": .array([.string("patching")])]))
    }

    /// Found by reading: an id that is not a plain UUID-like token would be pasted into the URL path.
    @Test(arguments: [#""../../v1/monitor""#, #""a?b=c""#, #""""#, "12345", "null", #"{"x":1}"#])
    func anUnusableDowntimeIdIsNotKept(_ id: String) throws {
        let event = try Self.event(.scheduled)
        let create = try #require(Self.request(of: try Self.target.plan(event, context: Self.context())))
        let answer = TransportResponse(status: 200, headers: [], body: Data(#"{"data":{"id":\#(id),"type":"downtime"}}"#.utf8), latency: .zero)
        let state = try #require(Self.target.followUp(after: answer, to: create, event: event, context: Self.context()))
        #expect(state.objectID == nil && state.status == "scheduled")
        // No second downtime is created; what cannot be done without the id says so.
        #expect(Self.skipReason(of: try Self.target.plan(try Self.event(.started), context: Self.context(followUp: state))) != nil)
        #expect(Self.refuseReason(of: try Self.target.plan(try Self.event(.cancelled), context: Self.context(followUp: state))) != nil)
    }

    @Test func hostileNamesStayInertInTheMessage() throws {
        let request = try #require(Self.request(of: try Self.target.plan(Fixtures.hostileEvent(.scheduled), context: Self.context())))
        let message = try #require(try Self.attributes(of: request)?["message"]?.stringValue)
        // `@name` in a downtime message notifies that user or integration: none may come from a sender.
        #expect(!message.contains("@"))
        #expect(message == "Scheduled Maintenance for App \"1\" <!channel> & <\u{FF20}U0123> - Prod\nuction :fire: 🚀 (mw-\"1\"), by Patchbay")
        // The body is still one JSON document with the quotes escaped.
        #expect(try JSONValue.parse(request.body)["data"]?["type"]?.stringValue == "downtime")
    }

    // MARK: Secrets

    @Test func keysNeverReachURLsBodiesOrPlainHeaders() throws {
        #expect(!String(describing: Self.target).contains(Self.canary))
        #expect(!Self.target.pacingKey.contains(Self.canary) && Self.target.pacingKey.hasPrefix("datadog:"))
        #expect(Self.target.secrets.map { $0.reveal() } == ["api-\(Self.canary)", "app-\(Self.canary)"])
        var sent = 0
        for type in EventType.allCases {
            let hostile = Fixtures.hostileEvent(type)
            for context in [Self.context(), Self.context(followUp: Self.existing(for: hostile, moved: true))] {
                guard let request = Self.request(of: try Self.target.plan(hostile, context: context)) else { continue }
                sent += 1
                #expect(!request.displayURL.contains(Self.canary) && !request.url.reveal().contains(Self.canary), "\(type)")
                #expect(!String(decoding: request.body, as: UTF8.self).contains(Self.canary), "\(type)")
                #expect(request.headers.allSatisfy { $0.isSecret || !$0.value.contains(Self.canary) }, "\(type)")
                #expect(request.headers.filter(\.isSecret).map(\.name) == ["DD-API-KEY", "DD-APPLICATION-KEY"], "\(type)")
                #expect(request.headers.first { $0.name == "DD-APPLICATION-KEY" }?.value == "app-\(Self.canary)")
            }
        }
        #expect(sent >= 3)
    }

    @Test func targetsSharingAnAPIKeyShareOnePace() {
        let other = DatadogTarget(name: "dd-eu", apiKey: Secret("api-\(Self.canary)"), appKey: Secret("other-app-key"))
        let different = DatadogTarget(name: "dd", apiKey: Secret("another-api-key"), appKey: Secret("app-\(Self.canary)"))
        #expect(other.pacingKey == Self.target.pacingKey)
        #expect(different.pacingKey != Self.target.pacingKey)
        #expect(DatadogTarget.defaultPolicy.pacing == PacingPolicy(rate: 2, burst: 1))
    }

    // MARK: Configuration

    static func section(_ entries: [(String, String)]) -> (ConfigSection, ConfigDiagnostics) {
        let diagnostics = ConfigDiagnostics()
        var pairs: [(key: String, value: ConfigValue)] = [(key: "kind", value: .scalar("datadog"))]
        for (key, text) in entries { pairs.append((key: key, value: .scalar(text))) }
        return (ConfigSection(path: "targets.dd", value: .map(pairs), diagnostics: diagnostics), diagnostics)
    }

    static let keys = [("apiKey", "api-\(canary)"), ("appKey", "app-\(canary)")]

    @Test func theSiteSelectsTheAPIHost() throws {
        let (eu, euProblems) = Self.section(Self.keys + [("site", "datadoghq.eu")])
        let target = try #require(DatadogTarget(name: "dd", section: eu))
        #expect(euProblems.problems.isEmpty, "\(euProblems.problems)")
        #expect(target.baseURL.absoluteString == "https://api.datadoghq.eu")
        let request = try #require(Self.request(of: try target.plan(try Self.event(.scheduled), context: Self.context())))
        #expect(request.displayURL == "https://api.datadoghq.eu/api/v2/downtime")

        let (plain, _) = Self.section(Self.keys)
        #expect(DatadogTarget(name: "dd", section: plain)?.baseURL.absoluteString == "https://api.datadoghq.com")
        for site in DatadogTarget.sites {
            let (section, problems) = Self.section(Self.keys + [("site", site)])
            #expect(DatadogTarget(name: "dd", section: section)?.baseURL.absoluteString == "https://api.\(site)")
            #expect(problems.problems.isEmpty, "\(site)")
        }
    }

    @Test func baseURLWinsOverTheSite() throws {
        let (section, problems) = Self.section(Self.keys + [("site", "us5.datadoghq.com"), ("baseURL", "http://127.0.0.1:9/datadog")])
        let target = try #require(DatadogTarget(name: "dd", section: section))
        #expect(problems.problems.isEmpty)
        #expect(target.baseURL.absoluteString == "http://127.0.0.1:9/datadog")
    }

    @Test(arguments: ["datadoghq.co", "app.datadoghq.eu", "evil.example/datadoghq.com", ""])
    func anUnknownSiteIsReportedWithTheKnownOnes(_ site: String) throws {
        let (section, diagnostics) = Self.section(Self.keys + [("site", site)])
        #expect(DatadogTarget(name: "dd", section: section) == nil)
        let problem = try #require(diagnostics.problems.first)
        #expect(problem.path == "targets.dd.site")
        #expect(problem.message.contains("datadoghq.eu") && problem.message.contains("us2.ddog-gov.com"), "\(problem.message)")
        if site == "app.datadoghq.eu" { #expect(problem.message.contains("did you mean datadoghq.eu?")) }
    }

    @Test func bothKeysAreRequiredAndNeverQuoted() throws {
        let (section, diagnostics) = Self.section([("apiKey", "api-\(Self.canary)"), ("appKey", "tiny1"), ("colour", "red")])
        #expect(DatadogTarget(name: "dd", section: section) == nil)
        let paths = diagnostics.problems.map(\.path).sorted()
        #expect(paths == ["targets.dd.appKey", "targets.dd.colour"], "\(diagnostics.problems)")
        #expect(diagnostics.problems.allSatisfy { !$0.message.contains(Self.canary) && !$0.message.contains("tiny1") })
        let (missing, missingProblems) = Self.section([("apiKey", "api-\(Self.canary)")])
        #expect(DatadogTarget(name: "dd", section: missing) == nil)
        #expect(missingProblems.problems.map(\.path) == ["targets.dd.appKey"])
    }

    @Test func theRouteDeclaresScopeAndMonitorTags() throws {
        #expect(TargetRegistry.kinds.contains("datadog"), "DatadogTarget must be listed in TargetRegistry.registered")
        let traits = DatadogTarget.traits
        #expect(traits.keepsMaintenanceObject && !traits.isChat && !traits.acceptsPassthrough)
        let resource = try #require(traits.routeResource)
        #expect(resource.routeKey == "datadog" && resource.listKey == "monitorTags" && resource.scalarKeys == ["scope"])
        #expect(!resource.listRequired)
        #expect(resource.validate("patching") == nil && resource.validate("team:ops") == nil)
        #expect(resource.validate("") != nil)
        #expect(resource.validate("two words")?.contains("whitespace") == true)
        #expect(resource.validate("tab\there") != nil)
    }

    // MARK: Times

    @Test(arguments: [
        // zone, local start, expected UTC start
        ("America/Los_Angeles", "2026-12-04T00:30:00", "2026-12-04T08:30:00Z"),
        ("America/Los_Angeles", "2026-07-04T00:30:00", "2026-07-04T07:30:00Z"),
        ("Europe/Berlin", "2026-07-01T02:00:00", "2026-07-01T00:00:00Z"),
        ("Asia/Kolkata", "2026-12-04T14:00:00", "2026-12-04T08:30:00Z"),
        ("Pacific/Chatham", "2026-12-04T22:15:00", "2026-12-04T08:30:00Z"),
        ("UTC", "2026-12-04T08:30:00", "2026-12-04T08:30:00Z"),
    ])
    func theScheduleIsSentInUTCEndingInZ(_ zone: String, _ localStart: String, _ utcStart: String) throws {
        let end = String(localStart.prefix(11)) + "23:59:00"
        let body =
            #"{"type":"patch.scheduled","app":"App1","environment":"Production","window":{"start":"\#(localStart)","end":"\#(end)","timezone":"\#(zone)"}}"#
        let event = try EventValidator().validate(body: Data(body.utf8))
        let timeZone = try #require(TimeZone(identifier: zone))
        let context = RenderContext(
            displayTimeZone: timeZone, deliveryID: "d", now: Timestamp.parseRFC3339("2026-01-01T00:00:00Z")!,
            resources: Self.resources)
        let request = try #require(Self.request(of: try Self.target.plan(event, context: context)))
        let attributes = try Self.attributes(of: request)
        let start = try #require(attributes?["schedule"]?["start"]?.stringValue)
        let scheduledEnd = try #require(attributes?["schedule"]?["end"]?.stringValue)
        #expect(start == utcStart)
        #expect(start.hasSuffix("Z") && scheduledEnd.hasSuffix("Z"))
        #expect(Timestamp.parseRFC3339(scheduledEnd) == event.window.end)
        #expect(attributes?["display_timezone"]?.stringValue == timeZone.identifier)
    }

    // MARK: Rate limits

    static func response(_ status: Int, _ headers: [(String, String)]) -> TransportResponse {
        TransportResponse(status: status, headers: headers.map { HTTPHeader($0.0, $0.1) }, body: Data(), latency: .zero)
    }

    @Test func pauseFollowsXRateLimitReset() {
        let target = Self.target
        #expect(target.pause(after: Self.response(200, [("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", "7")])) == .seconds(7))
        #expect(target.pause(after: Self.response(429, [("x-ratelimit-reset", "12")])) == .seconds(12))
        #expect(target.pause(after: Self.response(200, [("X-RateLimit-Remaining", "5"), ("X-RateLimit-Reset", "7")])) == nil)
        #expect(target.pause(after: Self.response(200, [])) == nil)
        #expect(target.pause(after: Self.response(429, [])) == nil)
    }

    /// Found by reading: a reset far beyond Int's range must neither trap nor pause for ever.
    @Test(arguments: [
        ("99999999999999999999999999999999", Duration.seconds(3600)), ("86400", .seconds(3600)), ("3600", .seconds(3600)),
        (" 30 ", .seconds(30)), ("1", .seconds(1)),
    ])
    func aLongResetIsCappedAtAnHour(_ reset: String, _ expected: Duration) {
        #expect(Self.target.pause(after: Self.response(429, [("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", reset)])) == expected)
    }

    @Test(arguments: ["0", "-5", "1.5", "soon", "", "1e9"])
    func anUnusableResetAsksForNoPause(_ reset: String) {
        #expect(Self.target.pause(after: Self.response(429, [("X-RateLimit-Reset", reset)])) == nil)
    }

    @Test func answersAreClassifiedByTheSharedRule() {
        let target = Self.target
        #expect(target.classify(.success(Self.response(200, []))).label == "delivered")
        #expect(target.classify(.success(Self.response(429, []))) == .retry(after: nil, reason: .rateLimited))
        #expect(target.classify(.success(Self.response(400, []))).label == "permanent")
        // A DELETE of a downtime someone already removed in Datadog: dead, so an operator sees it.
        #expect(target.classify(.success(Self.response(404, []))).label == "permanent")
    }
}
