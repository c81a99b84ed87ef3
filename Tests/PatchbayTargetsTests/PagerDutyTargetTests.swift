import Foundation
import PatchbayCore
import PatchbayTestSupport
import Testing

@testable import PatchbayTargets

/// PagerDuty: golden requests for every event type (first event of a maintenance, and with a
/// window already made, with and without change events), the window's lifecycle, change events,
/// answers (405, rate-limit headers), config and service ids, and that neither the REST token nor
/// the routing key leaks.
@Suite("PagerDuty target")
struct PagerDutyTargetTests {
    static let tokenCanary = "tok-canary-pd-7f3a"
    /// 32 letters and digits, like an Events API v2 integration key.
    static let routingKeyCanary = "canarypd0123456789abcdef01234567"
    static let now = Timestamp.parseRFC3339("2026-11-27T00:00:00Z")!
    static let zone = TimeZone(identifier: "America/Los_Angeles")!
    static let golden = Golden.directory("PatchbayTargetsTests/Golden/pagerduty")
    static let services = ["PIJ90N7", "PX1Y2Z3"]
    static let sinkURL = URL(string: "http://127.0.0.1:9/pagerduty")!
    static let serviceReferences = JSONValue.array(services.map { JSONValue.object(["id": .string($0), "type": .string("service_reference")]) })

    static let windowsOnly = PagerDutyTarget(
        name: "pd", token: Secret(tokenCanary), from: "ops@example.com",
        baseURL: sinkURL, eventsURL: sinkURL)
    static let withChangeEvents = PagerDutyTarget(
        name: "pd", token: Secret(tokenCanary), from: "ops@example.com",
        baseURL: sinkURL, eventsURL: sinkURL, routingKey: Secret(routingKeyCanary))

    static let snapshot = MaintenanceSnapshot(instances: [
        .init(instance: Instance(id: "i-1", name: "web-1"), lastType: .completed, packages: ["openssl-3.0.8", "curl-8.5.0"]),
        .init(instance: Instance(id: "i-2", name: "web-2"), lastType: .failed),
    ])

    static func context(followUp: FollowUpState? = nil, resources: [String] = services) -> RenderContext {
        RenderContext(
            displayTimeZone: zone, deliveryID: "dlv_golden", now: now, followUp: followUp, maintenance: snapshot,
            resources: resources)
    }

    /// A window already made for `event`'s maintenance, with the event's own times.
    static func existing(_ event: PatchEvent) -> FollowUpState {
        FollowUpState(objectID: "PW98YIO", status: "scheduled", windowStart: event.window.start, windowEnd: event.window.end)
    }

    static func example(_ type: EventType) throws -> PatchEvent {
        try EventValidator().validate(body: Fixtures.exampleEvent(type))
    }

    /// The step as a document: method, URL, headers (secret ones redacted) and body with every
    /// secret of the target redacted (a change event's body carries the routing key).
    static func document(_ step: DeliveryStep, target: PagerDutyTarget) throws -> Data {
        var object: [String: JSONValue]
        switch step {
        case .skip(let reason): object = ["skip": .string(reason)]
        case .refuse(let reason): object = ["refuse": .string(reason)]
        case .send(let request), .then(let request, _):
            object = ["method": .string(request.method), "url": .string(request.url.reveal()), "displayURL": .string(request.displayURL)]
            object["headers"] = .object(
                Dictionary(
                    uniqueKeysWithValues: request.headers.map {
                        ($0.name, .string($0.isSecret ? "<redacted>" : $0.value))
                    }))
            if !request.body.isEmpty {
                let redacted = Redactor(secrets: target.secrets).redact(String(decoding: request.body, as: UTF8.self))
                object["body"] = try JSONDecoder().decode(JSONValue.self, from: Data(redacted.utf8))
            }
        }
        return try JSONEncoder.patchbay().encode(JSONValue.object(object))
    }

    func check(_ step: DeliveryStep, target: PagerDutyTarget, _ name: String) throws {
        let mismatch = try Golden.mismatch(Self.document(step, target: target), file: Self.golden.appendingPathComponent(name))
        #expect(mismatch == nil, "\(mismatch ?? "")")
    }

    func sent(_ step: DeliveryStep, _ what: String) throws -> OutboundRequest {
        guard case .send(let request) = step else {
            Issue.record("\(what): expected a request, got \(step)")
            throw RenderError("no request")
        }
        return request
    }

    func body(_ request: OutboundRequest) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: request.body)
    }

    // MARK: Goldens

    @Test(arguments: EventType.allCases)
    func firstEventOfAMaintenanceMatchesGolden(_ type: EventType) throws {
        let target = Self.withChangeEvents
        try check(try target.plan(try Self.example(type), context: Self.context()), target: target, "\(type.rawValue).json")
        try check(try target.plan(Fixtures.hostileEvent(type), context: Self.context()), target: target, "hostile-\(type.rawValue).json")
    }

    /// A custom `text` template with hostile text in every value: the description and the change
    /// event's summary carry the values verbatim inside JSON strings, nothing breaks out.
    @Test(arguments: EventType.allCases)
    func customTemplatesMatchGoldenWithHostileText(_ type: EventType) throws {
        var target = Self.withChangeEvents
        let diagnostics = ConfigDiagnostics()
        target.templates = TargetRegistry.compileTemplates(
            TemplateSources(
                texts: ["text": "{{title}}: {{system}}{{#instance}} / {{name}}{{/instance}}{{#reason}} ({{reason}}){{/reason}}"],
                keyPath: "targets.pd.templates"), for: PagerDutyTarget.self, diagnostics: diagnostics, reportUnusedKeys: true)
        #expect(diagnostics.problems.isEmpty)
        let hostile = Fixtures.hostileEvent(type)
        let first = try target.plan(hostile, context: Self.context())
        try check(first, target: target, "template-hostile-\(type.rawValue).json")
        let later = try target.plan(hostile, context: Self.context(followUp: Self.existing(hostile)))
        try check(later, target: target, "template-hostile-change-\(type.rawValue).json")
        if case .send(let request) = first, let text = try body(request)["maintenance_window"]?["description"]?.stringValue {
            #expect(text.hasPrefix(MessageText.title(for: hostile) + ": " + hostile.systemName), "the values arrive as they were: \(text.prefix(80))")
        }
    }

    @Test(arguments: EventType.allCases)
    func laterEventsWithoutChangeEventsMatchGolden(_ type: EventType) throws {
        let target = Self.windowsOnly
        let event = try Self.example(type)
        try check(try target.plan(event, context: Self.context(followUp: Self.existing(event))), target: target, "update-\(type.rawValue).json")
        let hostile = Fixtures.hostileEvent(type)
        try check(
            try target.plan(hostile, context: Self.context(followUp: Self.existing(hostile))), target: target, "hostile-update-\(type.rawValue).json")
    }

    @Test(arguments: EventType.allCases)
    func laterEventsWithChangeEventsMatchGolden(_ type: EventType) throws {
        let target = Self.withChangeEvents
        let event = try Self.example(type)
        try check(try target.plan(event, context: Self.context(followUp: Self.existing(event))), target: target, "change-\(type.rawValue).json")
        let hostile = Fixtures.hostileEvent(type)
        try check(
            try target.plan(hostile, context: Self.context(followUp: Self.existing(hostile))), target: target, "hostile-change-\(type.rawValue).json")
    }

    @Test func rescheduleAndOverrunMatchGolden() throws {
        let scheduled = try Self.example(.scheduled)
        var moved = scheduled
        moved.notice = .rescheduled
        moved.previousWindow = scheduled.window
        moved.window.start = moved.window.start.addingTimeInterval(86_400)
        moved.window.end = moved.window.end.addingTimeInterval(86_400)
        let target = Self.withChangeEvents
        try check(try target.plan(moved, context: Self.context(followUp: Self.existing(scheduled))), target: target, "reschedule.json")
        try check(try target.plan(try overrun(), context: Self.context(followUp: Self.existing(scheduled))), target: target, "overrun.json")
    }

    func overrun() throws -> PatchEvent {
        var event = try Self.example(.started)
        event.notice = .overrun
        event.previousWindow = event.window
        event.window.end = event.window.end.addingTimeInterval(1800)
        event.details["overdue"] = .array([.string("web-1")])
        return event
    }

    // MARK: Window lifecycle

    @Test func createsOneWindowThenSkipsRepeats() throws {
        let target = Self.windowsOnly
        let first = try Self.example(.scheduled)
        let create = try sent(try target.plan(first, context: Self.context()), "first event")
        #expect(create.method == "POST" && create.displayURL == "http://127.0.0.1:9/pagerduty/maintenance_windows")
        let window = try body(create)["maintenance_window"]
        #expect(window?["type"]?.stringValue == "maintenance_window")
        #expect(window?["start_time"]?.stringValue == "2026-12-04T08:30:00Z")
        #expect(window?["end_time"]?.stringValue == "2026-12-04T08:45:00Z")
        #expect(window?["description"]?.stringValue == "Scheduled Maintenance for App1 - Production (mw-0123)")
        #expect(window?["services"] == Self.serviceReferences)
        let headers = Dictionary(uniqueKeysWithValues: create.headers.map { ($0.name, $0) })
        #expect(headers["Authorization"]?.value == "Token token=\(Self.tokenCanary)" && headers["Authorization"]?.isSecret == true)
        #expect(headers["Accept"]?.value == "application/vnd.pagerduty+json;version=2")
        #expect(headers["Content-Type"]?.value == "application/json")
        #expect(headers["From"]?.value == "ops@example.com")

        let answer = TransportResponse(
            status: 201, headers: [], body: Data(#"{"maintenance_window":{"id":"PW98YIO","type":"maintenance_window"}}"#.utf8), latency: .zero)
        #expect(target.classify(.success(answer)).label == "delivered")
        let state = target.followUp(after: answer, to: create, event: first, context: Self.context())
        #expect(state == FollowUpState(objectID: "PW98YIO", status: "scheduled", windowStart: first.window.start, windowEnd: first.window.end))

        for type in [EventType.scheduled, .reminder, .started, .completed, .failed] {
            guard case .skip(let reason) = try target.plan(try Self.example(type), context: Self.context(followUp: state)) else {
                Issue.record("\(type.rawValue) for an existing, unchanged window must send nothing")
                continue
            }
            #expect(reason == "the maintenance window already covers this event")
        }
    }

    @Test func duplicateServicesAreSentOnce() throws {
        let create = try sent(
            try Self.windowsOnly.plan(try Self.example(.scheduled), context: Self.context(resources: ["PIJ90N7", "PIJ90N7", "PX1Y2Z3"])), "create")
        #expect(try body(create)["maintenance_window"]?["services"] == Self.serviceReferences)
    }

    @Test func aRescheduleOrAnOverrunMovesTheWindowWithPut() throws {
        let target = Self.windowsOnly
        let first = try Self.example(.scheduled)
        let state = Self.existing(first)
        var moved = first
        moved.window.end = moved.window.end.addingTimeInterval(1800)
        let put = try sent(try target.plan(moved, context: Self.context(followUp: state)), "reschedule")
        #expect(put.method == "PUT" && put.displayURL == "http://127.0.0.1:9/pagerduty/maintenance_windows/PW98YIO")
        #expect(try body(put)["maintenance_window"]?["end_time"]?.stringValue == "2026-12-04T09:15:00Z")
        #expect(put.headers.contains { $0.name == "Authorization" && $0.isSecret })
        let answer = TransportResponse(status: 200, headers: [], body: Data(#"{"maintenance_window":{"id":"PW98YIO"}}"#.utf8), latency: .zero)
        let after = target.followUp(after: answer, to: put, event: moved, context: Self.context(followUp: state))
        #expect(after == FollowUpState(objectID: "PW98YIO", status: "scheduled", windowStart: moved.window.start, windowEnd: moved.window.end))

        let extended = try sent(try target.plan(try overrun(), context: Self.context(followUp: state)), "overrun")
        #expect(extended.method == "PUT" && extended.displayURL.hasSuffix("/maintenance_windows/PW98YIO"))

        // An agent's own idea of the window must not move (or shrink) it.
        var started = try Self.example(.started)
        started.window.end = started.window.end.addingTimeInterval(-600)
        guard case .skip = try target.plan(started, context: Self.context(followUp: state)) else {
            Issue.record("a started event with another window must not PUT")
            return
        }
        // A window that would already be over cannot be made.
        var late = first
        late.window.start = Self.now.addingTimeInterval(-7200)
        late.window.end = Self.now.addingTimeInterval(-3600)
        guard case .skip(let reason) = try target.plan(late, context: Self.context(followUp: state)) else {
            Issue.record("a window moved into the past must be skipped")
            return
        }
        #expect(reason.hasSuffix("PagerDuty takes windows that end in the future only"))
    }

    @Test func cancelDeletesTheWindowAndA405CountsAsDone() throws {
        let target = Self.withChangeEvents
        let cancelled = try Self.example(.cancelled)
        let state = Self.existing(cancelled)
        let delete = try sent(try target.plan(cancelled, context: Self.context(followUp: state)), "cancel")
        #expect(delete.method == "DELETE" && delete.displayURL == "http://127.0.0.1:9/pagerduty/maintenance_windows/PW98YIO")
        #expect(delete.body.isEmpty)
        #expect(delete.headers.contains { $0.name == "From" })

        let ended = TransportResponse(status: 405, headers: [], body: Data(#"{"error":{"message":"Method Not Allowed"}}"#.utf8), latency: .zero)
        #expect(target.classify(.success(ended)) == .delivered(reason: .delivered))
        let deleted = TransportResponse(status: 204, headers: [], body: Data(), latency: .zero)
        #expect(target.classify(.success(deleted)) == .delivered(reason: .delivered))
        for answer in [ended, deleted] {
            let after = target.followUp(after: answer, to: delete, event: cancelled, context: Self.context(followUp: state))
            #expect(after?.status == "deleted" && after?.objectID == "PW98YIO")
            for type in EventType.allCases {
                guard case .skip(let reason) = try target.plan(try Self.example(type), context: Self.context(followUp: after)) else {
                    Issue.record("\(type.rawValue) after the window was deleted must send nothing")
                    continue
                }
                #expect(reason == "the maintenance window was deleted")
            }
        }
        // Nothing was made: nothing to delete.
        guard case .skip = try target.plan(cancelled, context: Self.context()) else {
            Issue.record("cancel without a window must send nothing")
            return
        }
    }

    @Test func otherAnswersFollowTheSharedRule() {
        let target = Self.windowsOnly
        func answer(_ status: Int, _ headers: [HTTPHeader] = []) -> Result<TransportResponse, TransportFailure> {
            .success(TransportResponse(status: status, headers: headers, body: Data(), latency: .zero))
        }
        #expect(target.classify(answer(202)).label == "delivered")
        #expect(target.classify(answer(429)) == .retry(after: nil, reason: .rateLimited))
        #expect(target.classify(answer(500)).label == "retry")
        #expect(target.classify(answer(400)) == .permanent(reason: .clientError))
        #expect(target.classify(answer(401)) == .permanent(reason: .clientError))
        #expect(target.classify(answer(404)) == .permanent(reason: .clientError))
    }

    @Test func aWindowThatCannotBeMadeIsSkippedOrRefused() throws {
        var past = try Self.example(.completed)
        past.window.start = Self.now.addingTimeInterval(-7200)
        past.window.end = Self.now.addingTimeInterval(-3600)
        guard case .skip(let reason) = try Self.windowsOnly.plan(past, context: Self.context()) else {
            Issue.record("a window that ended cannot be created")
            return
        }
        #expect(reason == "the window ended at \(Timestamp.rfc3339(past.window.end)); PagerDuty takes windows that end in the future only")
        // With change events, the outcome still reaches the services' timeline.
        let change = try sent(try Self.withChangeEvents.plan(past, context: Self.context()), "change event for an ended window")
        #expect(change.displayURL == "http://127.0.0.1:9/pagerduty/v2/change/enqueue")

        guard case .refuse = try Self.windowsOnly.plan(try Self.example(.scheduled), context: Self.context(resources: [])) else {
            Issue.record("a window without services must be refused")
            return
        }
    }

    @Test(arguments: [#""../x""#, #""""#, "5", #""PW 98""#, #""PW98YIO/../../users""#, "null"])
    func anOddWindowIdIsNotKept(_ id: String) throws {
        let target = Self.windowsOnly
        let event = try Self.example(.scheduled)
        let create = try sent(try target.plan(event, context: Self.context()), "create")
        let answer = TransportResponse(status: 201, headers: [], body: Data(#"{"maintenance_window":{"id":\#(id)}}"#.utf8), latency: .zero)
        let state = target.followUp(after: answer, to: create, event: event, context: Self.context())
        #expect(state?.objectID == nil)
    }

    // MARK: Change events

    @Test(arguments: EventType.allCases)
    func changeEventsOnlyWhenConfiguredAndOnlyForOutcomes(_ type: EventType) throws {
        let event = try Self.example(type)
        let state = Self.existing(event)
        let configured = try Self.withChangeEvents.plan(event, context: Self.context(followUp: state))
        let unconfigured = try Self.windowsOnly.plan(event, context: Self.context(followUp: state))
        switch type {
        case .completed, .failed:
            let request = try sent(configured, "\(type.rawValue) with change events")
            #expect(request.method == "POST" && request.displayURL == "http://127.0.0.1:9/pagerduty/v2/change/enqueue")
            guard case .skip(let reason) = unconfigured else {
                Issue.record("\(type.rawValue) without change events must send nothing")
                return
            }
            #expect(reason == "the maintenance window already covers this event")
        case .cancelled:
            #expect(try sent(configured, "cancel").method == "DELETE")
            #expect(try sent(unconfigured, "cancel").method == "DELETE")
        case .scheduled, .reminder, .started:
            guard case .skip = configured, case .skip = unconfigured else {
                Issue.record("\(type.rawValue) for an unchanged window must send nothing")
                return
            }
        }
    }

    @Test func aChangeEventSaysWhatHappened() throws {
        let target = Self.withChangeEvents
        let completed = try Self.example(.completed)
        let request = try sent(try target.plan(completed, context: Self.context(followUp: Self.existing(completed))), "completed")
        #expect(!request.headers.contains { $0.name.caseInsensitiveCompare("Authorization") == .orderedSame })
        #expect(request.headers.map(\.name) == ["Content-Type"])
        let json = try body(request)
        #expect(json["routing_key"]?.stringValue == Self.routingKeyCanary)
        #expect(json["links"] == .array([]))
        #expect(json["payload"]?["summary"]?.stringValue == "Patching Complete: web-1 (App1 - Production)")
        #expect(json["payload"]?["source"]?.stringValue == "web-1")
        #expect(json["payload"]?["timestamp"]?.stringValue == "2026-12-04T08:41:07Z")
        let details = json["payload"]?["custom_details"]
        #expect(details?["app"]?.stringValue == "App1" && details?["environment"]?.stringValue == "Production")
        #expect(details?["instance"]?.stringValue == "web-1 (i-0abc123)")
        #expect(details?["packages"] == .array(completed.packages.map(JSONValue.string)))
        #expect(details?["reason"] == nil)

        let failed = try Self.example(.failed)
        let failure = try body(try sent(try target.plan(failed, context: Self.context(followUp: Self.existing(failed))), "failed"))
        #expect(failure["payload"]?["summary"]?.stringValue == "Patching Failed: web-1 (App1 - Production)")
        #expect(failure["payload"]?["custom_details"]?["reason"]?.stringValue == "yum exited with status 1: cannot download repomd.xml")

        // The change event leaves the window's state alone.
        let state = Self.existing(completed)
        let accepted = TransportResponse(
            status: 202, headers: [], body: Data(#"{"status":"success","message":"Change event processed"}"#.utf8), latency: .zero)
        #expect(target.classify(.success(accepted)).label == "delivered")
        #expect(target.followUp(after: accepted, to: request, event: completed, context: Self.context(followUp: state)) == state)
    }

    @Test func hostileTextStaysInsideTheChangeEventsLimits() throws {
        let target = Self.withChangeEvents
        var hostile = Fixtures.hostileEvent(.completed)
        hostile.instance = Instance(id: "i-1", name: String(repeating: "🚀\u{301}", count: 200))
        hostile.app = String(repeating: "A\"<", count: 66)
        hostile.environment = String(repeating: "é", count: 400)
        hostile.details["reason"] = .string(String(repeating: "x\n", count: 5000))
        let request = try sent(try target.plan(hostile, context: Self.context(followUp: Self.existing(hostile))), "hostile completed")
        let json = try body(request)
        let summary = try #require(json["payload"]?["summary"]?.stringValue)
        #expect(summary.utf16.count <= PagerDutyTarget.maxSummary && summary.hasSuffix("…"))
        guard case .array(let packages)? = json["payload"]?["custom_details"]?["packages"] else {
            Issue.record("packages must be a list")
            return
        }
        #expect(packages.count == 50)
        #expect(packages.first?.stringValue == "evil <script>alert(\"x\")</script> & <!channel>")
        #expect(json["payload"]?["custom_details"]?["packages_not_listed"] == .number(1950))
        #expect((json["payload"]?["custom_details"]?["reason"]?.stringValue?.utf16.count ?? .max) <= PagerDutyTarget.maxReason)
        #expect(request.body.count < 512_000)
    }

    @Test func truncationKeepsWholeCharacters() {
        #expect(PagerDutyTarget.truncated("short", maxUTF16: 1024) == "short")
        let exact = String(repeating: "a", count: 1024)
        #expect(PagerDutyTarget.truncated(exact, maxUTF16: 1024) == exact)
        let flags = String(repeating: "🇩🇪", count: 600)
        let cut = PagerDutyTarget.truncated(flags, maxUTF16: 1024)
        #expect(cut.utf16.count <= 1024 && cut.hasSuffix("…"))
        #expect(cut.dropLast().allSatisfy { $0 == "🇩🇪" })
    }

    // MARK: Secrets

    @Test func neitherTheTokenNorTheRoutingKeyLeaks() throws {
        let canaries = [Self.tokenCanary, Self.routingKeyCanary]
        for target in [Self.windowsOnly, Self.withChangeEvents] {
            let described = String(describing: target) + String(reflecting: target)
            #expect(canaries.allSatisfy { !described.contains($0) })
            for type in EventType.allCases {
                for event in [try Self.example(type), Fixtures.hostileEvent(type)] {
                    for followUp in [nil, Self.existing(event)] {
                        guard case .send(let request) = try target.plan(event, context: Self.context(followUp: followUp)) else { continue }
                        let body = String(decoding: request.body, as: UTF8.self)
                        #expect(!body.contains(Self.tokenCanary), "\(type.rawValue) body")
                        #expect(
                            canaries.allSatisfy { !request.displayURL.contains($0) && !request.url.reveal().contains($0) }, "\(type.rawValue) URL")
                        #expect(
                            request.headers.allSatisfy { header in header.isSecret || canaries.allSatisfy { !header.value.contains($0) } },
                            "\(type.rawValue) headers")
                        // The routing key is in a change event's body by design: the redactor must know it.
                        #expect(!Redactor(secrets: target.secrets).redact(body).contains(Self.routingKeyCanary))
                    }
                }
            }
        }
        #expect(Self.withChangeEvents.secrets.map { $0.reveal() } == canaries)
        #expect(Self.windowsOnly.secrets.map { $0.reveal() } == [Self.tokenCanary])
    }

    @Test func pacingIsSharedPerTokenWithoutRevealingIt() {
        let key = Self.windowsOnly.pacingKey
        #expect(key.hasPrefix("pagerduty:") && key.count == "pagerduty:".count + 16)
        #expect(!key.contains(Self.tokenCanary))
        #expect(key == Self.withChangeEvents.pacingKey)
        #expect(PagerDutyTarget.defaultPolicy.pacing == PacingPolicy(rate: 4, burst: 1))
    }

    @Test func waitsForTheRateLimitReset() {
        let target = Self.windowsOnly
        func pause(_ status: Int, _ headers: [(String, String)]) -> Duration? {
            target.pause(after: TransportResponse(status: status, headers: headers.map { HTTPHeader($0.0, $0.1) }, body: Data(), latency: .zero))
        }
        #expect(pause(429, [("ratelimit-reset", "30")]) == .seconds(30))
        #expect(pause(429, [("RateLimit-Reset", " 7 ")]) == .seconds(7))
        #expect(pause(200, [("ratelimit-remaining", "0"), ("ratelimit-reset", "12")]) == .seconds(12))
        #expect(pause(200, [("ratelimit-remaining", "5"), ("ratelimit-reset", "12")]) == nil)
        #expect(pause(201, []) == nil)
        #expect(pause(429, []) == nil)
        for nonsense in ["0", "-5", "3601", "99999999999999999999", "soon", "1.5"] {
            #expect(pause(429, [("ratelimit-reset", nonsense)]) == nil, "\(nonsense)")
        }
        #expect(pause(429, [("ratelimit-reset", "3600")]) == .seconds(3600))
    }

    // MARK: Route resources and config

    @Test func serviceIdsAreValidated() throws {
        let traits = PagerDutyTarget.traits
        #expect(traits.kind == "pagerduty" && traits.keepsMaintenanceObject)
        let resource = try #require(traits.routeResource)
        #expect(resource.routeKey == "pagerduty" && resource.listKey == "services" && resource.listRequired)
        for good in ["PIJ90N7", "P", "PX1Y2Z3", String(repeating: "A", count: 32)] {
            #expect(resource.validate(good) == nil, "\(good)")
        }
        for bad in ["", "pij90n7", "PIJ-90N7", "PIJ90N7 ", "../PIJ90N7", String(repeating: "A", count: 33), "PÍJ90N7", "@scope=x"] {
            #expect(resource.validate(bad) == "expected a PagerDuty service id like PIJ90N7, got '\(bad)'", "\(bad)")
        }
    }

    static func section(_ entries: [(String, ConfigValue)]) -> (ConfigSection, ConfigDiagnostics) {
        let diagnostics = ConfigDiagnostics()
        let value = ConfigValue.map(entries.map { (key: $0.0, value: $0.1) })
        return (ConfigSection(path: "targets.pd", value: value, diagnostics: diagnostics), diagnostics)
    }

    static func base(_ extra: [(String, ConfigValue)] = []) -> [(String, ConfigValue)] {
        [("kind", .scalar("pagerduty")), ("token", .scalar(tokenCanary)), ("from", .scalar("ops@example.com"))] + extra
    }

    @Test func readsItsConfig() throws {
        let (section, diagnostics) = Self.section(
            Self.base([
                ("baseURL", .scalar("http://127.0.0.1:9/pagerduty")),
                ("changeEvents", .map([(key: "routingKey", value: .scalar(Self.routingKeyCanary))])),
            ]))
        let target = try #require(PagerDutyTarget(name: "pd", section: section))
        #expect(diagnostics.problems.isEmpty, "\(diagnostics.problems)")
        #expect(target.from == "ops@example.com" && target.baseURL.absoluteString == "http://127.0.0.1:9/pagerduty")
        #expect(target.eventsURL == PagerDutyTarget.defaultEventsURL && target.routingKey?.reveal() == Self.routingKeyCanary)

        let (plain, plainDiagnostics) = Self.section(Self.base())
        let windowsOnly = try #require(PagerDutyTarget(name: "pd", section: plain))
        #expect(plainDiagnostics.problems.isEmpty)
        #expect(windowsOnly.baseURL == PagerDutyTarget.defaultBaseURL && windowsOnly.routingKey == nil)
    }

    @Test(arguments: [
        "short0123", "canarypd0123456789abcdef0123456", "canarypd0123456789abcdef012345678", "canarypd0123456789abcdef0123456-",
        "Rcanarypd0123456789abcdef0123456",
    ])
    func aBadRoutingKeyIsReportedWithoutPrintingIt(_ key: String) {
        let (section, diagnostics) = Self.section(Self.base([("changeEvents", .map([(key: "routingKey", value: .scalar(key))]))]))
        #expect(PagerDutyTarget(name: "pd", section: section) == nil)
        #expect(diagnostics.problems.map(\.path) == ["targets.pd.changeEvents.routingKey"])
        #expect(diagnostics.problems.allSatisfy { !$0.message.contains(key) && !$0.message.contains(Self.tokenCanary) })
    }

    @Test func configProblemsNameTheirKey() {
        let cases: [([(String, ConfigValue)], String)] = [
            ([("kind", .scalar("pagerduty")), ("token", .scalar(Self.tokenCanary))], "targets.pd.from"),
            (Self.base().filter { $0.0 != "token" }, "targets.pd.token"),
            (
                [("kind", .scalar("pagerduty")), ("token", .scalar(Self.tokenCanary)), ("from", .scalar("ops@example.com\r\nX-Evil: 1"))],
                "targets.pd.from"
            ),
            ([("kind", .scalar("pagerduty")), ("token", .scalar(Self.tokenCanary)), ("from", .scalar("Ops <ops@example.com>"))], "targets.pd.from"),
            (Self.base([("changeEvents", .map([]))]), "targets.pd.changeEvents.routingKey"),
            (Self.base([("eventsURL", .scalar("https://events.eu.pagerduty.com"))]), "targets.pd.eventsURL"),
            (
                Self.base([
                    ("eventsURL", .scalar("http://events.example.com")),
                    ("changeEvents", .map([(key: "routingKey", value: .scalar(Self.routingKeyCanary))])),
                ]), "targets.pd.eventsURL"
            ),
            (Self.base([("services", .scalar("PIJ90N7"))]), "targets.pd.services"),
        ]
        for (entries, path) in cases {
            let (section, diagnostics) = Self.section(entries)
            _ = PagerDutyTarget(name: "pd", section: section)
            #expect(diagnostics.problems.map(\.path).contains(path), "\(path): \(diagnostics.problems)")
            #expect(diagnostics.problems.allSatisfy { !$0.message.contains(Self.tokenCanary) && !$0.message.contains(Self.routingKeyCanary) })
        }
    }
}
