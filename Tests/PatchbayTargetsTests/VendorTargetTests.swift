import Foundation
import PatchbayCore
import PatchbayTestSupport
import Testing

@testable import PatchbayTargets

/// Golden files for every (target, event type) pair, for the example events and for hostile
/// text, plus the lifecycle rules of the stateful targets.
@Suite("Teams, Statuspage and Pingdom targets")
struct VendorTargetTests {
    static let canary = "canary-vendor-3b8d"
    static let now = Timestamp.parseRFC3339("2026-11-27T00:00:00Z")!
    static let zone = TimeZone(identifier: "America/Los_Angeles")!
    static let golden = Golden.directory("PatchbayTargetsTests/Golden")

    static let targets: [(String, any DeliveryTarget)] = [
        ("teams-adaptive", TeamsTarget(name: "t", url: Secret("http://127.0.0.1:9/teams/\(canary)"))),
        ("teams-messagecard", TeamsTarget(name: "t", url: Secret("http://127.0.0.1:9/teams-connector/\(canary)"), format: .messagecard)),
        (
            "statuspage",
            StatuspageTarget(name: "s", page: "pg1", apiKey: Secret("key-\(canary)"), baseURL: URL(string: "http://127.0.0.1:9/statuspage")!)
        ),
        ("pingdom", PingdomTarget(name: "p", token: Secret("tok-\(canary)"), baseURL: URL(string: "http://127.0.0.1:9/pingdom/api/3.1")!)),
    ]

    static let snapshot = MaintenanceSnapshot(instances: [
        .init(instance: Instance(id: "i-1", name: "web-1"), lastType: .completed, packages: ["openssl-3.0.8", "curl-8.5.0"]),
        .init(instance: Instance(id: "i-2", name: "web-2"), lastType: .failed),
        .init(instance: Instance(id: "i-3", name: "web-3"), lastType: .completed, packages: ["openssl-3.0.8", "kernel-6.1"]),
    ])

    /// The step as a document: method, URL, headers (secrets redacted) and body, or why nothing is sent.
    static func document(_ step: DeliveryStep) throws -> Data {
        var object: [String: JSONValue]
        switch step {
        case .skip(let reason): object = ["skip": .string(reason)]
        case .refuse(let reason): object = ["refuse": .string(reason)]
        case .send(let request), .then(let request, _):
            object = ["method": .string(request.method), "url": .string(request.url.reveal())]
            object["headers"] = .object(
                Dictionary(
                    uniqueKeysWithValues: request.headers.map {
                        ($0.name, .string($0.isSecret ? "<redacted>" : $0.value))
                    }))
            if !request.body.isEmpty { object["body"] = try JSONDecoder().decode(JSONValue.self, from: request.body) }
        }
        return try JSONEncoder.patchbay().encode(JSONValue.object(object))
    }

    func check(_ step: DeliveryStep, _ name: String) throws {
        let mismatch = try Golden.mismatch(Self.document(step), file: Self.golden.appendingPathComponent(name))
        #expect(mismatch == nil, "\(mismatch ?? "")")
    }

    static func context(followUp: FollowUpState? = nil, snapshot: MaintenanceSnapshot = .empty) -> RenderContext {
        RenderContext(
            displayTimeZone: zone, deliveryID: "dlv_golden", now: now, followUp: followUp, maintenance: snapshot,
            resources: ["cmp1", "cmp2"])
    }

    @Test(arguments: EventType.allCases)
    func firstEventOfAMaintenanceMatchesGolden(_ type: EventType) throws {
        let event = try EventValidator().validate(body: Fixtures.exampleEvent(type))
        for (name, target) in Self.targets {
            let resources = name == "pingdom" ? ["101", "102"] : ["cmp1", "cmp2"]
            var context = Self.context(snapshot: Self.snapshot)
            context.resources = resources
            try check(try target.plan(event, context: context), "\(name)/\(type.rawValue).json")
            try check(try target.plan(Fixtures.hostileEvent(type), context: context), "\(name)/hostile-\(type.rawValue).json")
        }
    }

    @Test(arguments: EventType.allCases)
    func laterEventsUpdateTheSameObjectAndMatchGolden(_ type: EventType) throws {
        let event = try EventValidator().validate(body: Fixtures.exampleEvent(type))
        let existing = FollowUpState(objectID: "obj42", status: "scheduled", windowStart: event.window.start, windowEnd: event.window.end)
        for (name, target) in Self.targets where name == "statuspage" || name == "pingdom" {
            try check(
                try target.plan(event, context: Self.context(followUp: existing, snapshot: Self.snapshot)), "\(name)/update-\(type.rawValue).json")
        }
    }

    @Test func noTargetLeaksItsSecret() throws {
        for (name, target) in Self.targets {
            #expect(!String(describing: target).contains(Self.canary), "\(name)")
            for type in EventType.allCases {
                guard case .send(let request) = try target.plan(Fixtures.hostileEvent(type), context: Self.context()) else { continue }
                #expect(!String(decoding: request.body, as: UTF8.self).contains(Self.canary), "\(name) body")
                #expect(!request.displayURL.contains(Self.canary), "\(name) display URL")
                #expect(request.headers.allSatisfy { $0.isSecret || !$0.value.contains(Self.canary) }, "\(name) headers")
            }
        }
    }

    // MARK: Teams

    @Test func teamsStaysUnder28KBAndEscapesMarkdown() throws {
        for (name, target) in Self.targets where name.hasPrefix("teams") {
            guard case .send(let request) = try target.plan(Fixtures.hostileEvent(.completed), context: Self.context()) else {
                Issue.record("no request")
                continue
            }
            #expect(request.body.count <= TeamsTarget.maxPayloadBytes, "\(name): \(request.body.count) bytes")
            let text = String(decoding: request.body, as: UTF8.self)
            #expect(text.contains("… and "), "\(name) cuts the list")
            #expect(text.contains(#"\\*bold\\*"#), "\(name) escapes Markdown")
            // Markup characters from the sender arrive backslash-escaped (in JSON, `\\<`).
            #expect(text.contains(#"App \"1\" \\<!channel\\> & \\<@U0123\\>"#), "\(name)")
        }
    }

    @Test func teamsReportsThrottlingInsideA200() {
        let target = TeamsTarget(name: "t", url: Secret("http://127.0.0.1:9/teams/x"), format: .messagecard)
        func response(_ status: Int, _ body: String) -> Result<TransportResponse, TransportFailure> {
            .success(TransportResponse(status: status, headers: [], body: Data(body.utf8), latency: .zero))
        }
        #expect(target.classify(response(200, "1")).label == "delivered")
        #expect(target.classify(response(202, "")).label == "delivered")
        #expect(
            target.classify(response(200, "Microsoft Teams endpoint returned HTTP error 429 with ContextId ..."))
                == .retry(after: nil, reason: .rateLimited))
        #expect(
            target.classify(response(200, "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 413")).label
                == "permanent")
        #expect(target.classify(response(400, "Summary or Text is required.")).label == "permanent")
    }

    // MARK: Statuspage lifecycle

    let statuspage = StatuspageTarget(
        name: "s", page: "pg1", apiKey: Secret("key-0123456789"), baseURL: URL(string: "http://127.0.0.1:9/statuspage")!)

    func event(_ type: EventType, instance: String? = "i-1") throws -> PatchEvent {
        var event = try EventValidator().validate(body: Fixtures.exampleEvent(type == .completed ? .completed : .started))
        event.type = type
        event.instance = instance.map { Instance(id: $0) }
        return event
    }

    @Test func statuspageMovesOneIncidentThroughTheLifecycle() throws {
        let window = try event(.started).window
        let scheduled = FollowUpState(objectID: "inc1", status: "scheduled", windowStart: window.start, windowEnd: window.end)
        let running = MaintenanceSnapshot(instances: [
            .init(instance: Instance(id: "i-1"), lastType: .completed),
            .init(instance: Instance(id: "i-2"), lastType: .started),
        ])
        // A fifth `started` for an incident already in progress sends nothing.
        guard case .send(let started) = try statuspage.plan(try event(.started), context: Self.context(followUp: scheduled)) else {
            Issue.record("started must PATCH")
            return
        }
        #expect(started.method == "PATCH" && started.displayURL.hasSuffix("/v1/pages/pg1/incidents/inc1"))
        var inProgress = scheduled
        inProgress.status = "in_progress"
        guard case .skip = try statuspage.plan(try event(.started), context: Self.context(followUp: inProgress)) else {
            Issue.record("a repeated started must be skipped")
            return
        }
        // Completed waits until every instance has finished.
        guard case .skip(let waiting) = try statuspage.plan(try event(.completed), context: Self.context(followUp: inProgress, snapshot: running))
        else {
            Issue.record("completed must wait for i-2")
            return
        }
        #expect(waiting == "waiting for 1 more instance to finish")
        guard
            case .send(let completed) = try statuspage.plan(
                try event(.completed), context: Self.context(followUp: inProgress, snapshot: Self.snapshot))
        else {
            Issue.record("completed must PATCH once all finished")
            return
        }
        let body = try JSONDecoder().decode(JSONValue.self, from: completed.body)
        #expect(body["incident"]?["status"]?.stringValue == "completed")
        #expect(
            body["incident"]?["body"]?.stringValue?.hasPrefix("Patching is complete: 2 of 3 instances finished successfully. Failed: web-2.") == true)
        var done = inProgress
        done.status = "completed"
        guard case .skip = try statuspage.plan(try event(.completed), context: Self.context(followUp: done, snapshot: Self.snapshot)) else {
            Issue.record("a second completed must be skipped")
            return
        }
    }

    @Test func statuspageRemembersTheIncidentItCreated() throws {
        let event = try event(.scheduled, instance: nil)
        let context = Self.context()
        let response = TransportResponse(status: 201, headers: [], body: Data(#"{"id":"p31zjtct2jer","status":"scheduled"}"#.utf8), latency: .zero)
        guard case .send(let created) = try statuspage.plan(event, context: context) else {
            Issue.record("the first event must create the incident")
            return
        }
        let state = statuspage.followUp(after: response, to: created, event: event, context: context)
        #expect(state == FollowUpState(objectID: "p31zjtct2jer", status: "scheduled", windowStart: event.window.start, windowEnd: event.window.end))
        let deleting = StatuspageTarget(name: "s", page: "pg1", apiKey: Secret("key-0123456789"), cancelAction: .delete)
        guard case .send(let delete) = try deleting.plan(try self.event(.cancelled), context: Self.context(followUp: state)) else {
            Issue.record("cancel with onCancel: delete must DELETE")
            return
        }
        #expect(delete.method == "DELETE" && delete.displayURL == "https://api.statuspage.io/v1/pages/pg1/incidents/p31zjtct2jer")
    }

    /// Vendor ids are data, not paths (review F14): an incident id not of Statuspage's form is
    /// refused when it comes back and never put in a request path; a kept id is one segment.
    @Test func statuspageIdsAreDataNotPaths() throws {
        let target = StatuspageTarget(name: "s", page: "page1", apiKey: Secret("key-0123456789"))
        let hostile = TransportResponse(status: 201, headers: [], body: Data(#"{"id":"../../otherpage/incidents/victim"}"#.utf8), latency: .zero)
        #expect(target.classify(.success(hostile)) == .permanent(reason: .vendorIDRefused))
        guard case .send(let created) = try target.plan(try event(.scheduled, instance: nil), context: Self.context()) else {
            Issue.record("the first event creates the incident")
            return
        }
        #expect(target.followUp(after: hostile, to: created, event: try event(.scheduled, instance: nil), context: Self.context())?.objectID == nil)
        let good = TransportResponse(status: 201, headers: [], body: Data(#"{"id":"p31zjtct2jer"}"#.utf8), latency: .zero)
        #expect(target.classify(.success(good)).label == "delivered")
        // A stored id from before this check is refused, not sent.
        let stored = FollowUpState(objectID: "../x", status: "scheduled")
        guard case .refuse(let reason) = try target.plan(try event(.started), context: Self.context(followUp: stored)) else {
            Issue.record("a stored id of another form must not reach a path")
            return
        }
        #expect(reason.hasPrefix("vendor_id_refused"))
        #expect(VendorID.pathSegment("a/../b?c#d") == "a%2F..%2Fb%3Fc%23d")
    }

    // MARK: Pingdom lifecycle    // MARK: Pingdom lifecycle

    let pingdom = PingdomTarget(name: "p", token: Secret("tok-0123456789"))

    @Test func pingdomCreatesMovesAndDeletesOneWindow() throws {
        let first = try event(.scheduled, instance: nil)
        let response = TransportResponse(status: 200, headers: [], body: Data(#"{"maintenance":{"id":777}}"#.utf8), latency: .zero)
        guard case .send(let created) = try pingdom.plan(first, context: Self.context()) else {
            Issue.record("the first event must create the window")
            return
        }
        let state = pingdom.followUp(after: response, to: created, event: first, context: Self.context())
        #expect(state?.objectID == "777")
        guard case .skip = try pingdom.plan(try event(.started), context: Self.context(followUp: state)) else {
            Issue.record("an unchanged window sends nothing")
            return
        }
        var moved = try event(.scheduled, instance: nil)
        moved.window.end = moved.window.end.addingTimeInterval(1800)
        guard case .send(let put) = try pingdom.plan(moved, context: Self.context(followUp: state)) else {
            Issue.record("a changed window must be PUT")
            return
        }
        #expect(put.method == "PUT" && put.displayURL.hasSuffix("/maintenance/777"))
        #expect(try JSONDecoder().decode(JSONValue.self, from: put.body)["to"] == .number(moved.window.end.timeIntervalSince1970))
        guard case .send(let delete) = try pingdom.plan(try event(.cancelled), context: Self.context(followUp: state)) else {
            Issue.record("a future window is deleted on cancel")
            return
        }
        #expect(delete.method == "DELETE")
        // Once the window has begun, Pingdom refuses deletion: say so instead of retrying forever.
        var late = Self.context(followUp: state)
        late.now = first.window.start.addingTimeInterval(60)
        guard case .refuse(let reason) = try pingdom.plan(try event(.cancelled), context: late) else {
            Issue.record("deleting a started window must be refused")
            return
        }
        #expect(reason.hasPrefix("window_already_started"))
    }

    /// Pingdom takes only a future `from` ("only future allowed", PUT /maintenance/{id} in its
    /// API 3.1 description): a window that has begun is extended by its `to` alone, and one that
    /// has not begun never moves to a start in the past.
    @Test func pingdomExtendsAStartedWindowByItsEndAlone() throws {
        let first = try event(.scheduled, instance: nil)
        let response = TransportResponse(status: 200, headers: [], body: Data(#"{"maintenance":{"id":777}}"#.utf8), latency: .zero)
        guard case .send(let created) = try pingdom.plan(first, context: Self.context()) else {
            Issue.record("the first event must create the window")
            return
        }
        let state = pingdom.followUp(after: response, to: created, event: first, context: Self.context())
        var overrun = try event(.scheduled, instance: nil)
        overrun.notice = .overrun
        overrun.window.end = overrun.window.end.addingTimeInterval(1800)
        var running = Self.context(followUp: state)
        running.now = first.window.start.addingTimeInterval(600)
        guard case .send(let put) = try pingdom.plan(overrun, context: running) else {
            Issue.record("an overrun extends the window")
            return
        }
        let body = try JSONDecoder().decode(JSONValue.self, from: put.body)
        #expect(body["from"] == nil, "a started window keeps its start: \(String(decoding: put.body, as: UTF8.self))")
        #expect(body["to"] == .number(overrun.window.end.timeIntervalSince1970))
        // Not begun yet, rescheduled to start a moment ago: the new start is the next second.
        var moved = try event(.scheduled, instance: nil)
        moved.window.start = first.window.start.addingTimeInterval(-7200)
        var before = Self.context(followUp: state)
        before.now = first.window.start.addingTimeInterval(-3600)
        guard case .send(let early) = try pingdom.plan(moved, context: before) else {
            Issue.record("a moved window is PUT")
            return
        }
        let from = try JSONDecoder().decode(JSONValue.self, from: early.body)["from"]
        #expect(from == .number(before.now.timeIntervalSince1970.rounded(.down) + 1))
    }
}

/// Window times given in local time reach Statuspage as UTC and Pingdom as UNIX seconds.
@Suite("Times corrected to UTC")
struct VendorTimeTests {
    static let statuspage = StatuspageTarget(name: "s", page: "pg1", apiKey: Secret("key-0123456789"))
    static let pingdom = PingdomTarget(name: "p", token: Secret("tok-0123456789"))

    static func request(_ target: any DeliveryTarget, start: String, end: String, zone: String) throws -> JSONValue {
        let body =
            #"{"type":"patch.scheduled","app":"App1","environment":"Production","window":{"start":"\#(start)","end":"\#(end)","timezone":"\#(zone)"}}"#
        let event = try EventValidator().validate(body: Data(body.utf8))
        let context = RenderContext(
            displayTimeZone: TimeZone(identifier: zone)!, deliveryID: "d", now: Timestamp.parseRFC3339("2026-01-01T00:00:00Z")!)
        guard case .send(let request) = try target.plan(event, context: context) else { throw RenderError("no request") }
        return try JSONDecoder().decode(JSONValue.self, from: request.body)
    }

    @Test(arguments: [
        // zone, local start, expected UTC start
        ("America/Los_Angeles", "2026-03-07T23:30:00", "2026-03-08T07:30:00Z"),  // day before spring-forward, PST
        ("America/Los_Angeles", "2026-03-08T01:30:00", "2026-03-08T09:30:00Z"),  // just before the gap, PST
        ("America/Los_Angeles", "2026-03-08T03:30:00", "2026-03-08T10:30:00Z"),  // just after, PDT
        ("America/Los_Angeles", "2026-10-31T23:30:00", "2026-11-01T06:30:00Z"),  // PDT
        ("America/Los_Angeles", "2026-11-01T01:30:00", "2026-11-01T08:30:00Z"),  // ambiguous: the earlier (PDT)
        ("America/Los_Angeles", "2026-11-01T03:30:00", "2026-11-01T11:30:00Z"),  // PST again
        ("Europe/Berlin", "2026-07-01T02:00:00", "2026-07-01T00:00:00Z"),
        ("Europe/Berlin", "2026-12-01T02:00:00", "2026-12-01T01:00:00Z"),
        ("Asia/Kolkata", "2026-12-04T14:00:00", "2026-12-04T08:30:00Z"),
        ("Pacific/Chatham", "2026-12-04T22:15:00", "2026-12-04T08:30:00Z"),  // +13:45 (summer)
        ("Pacific/Chatham", "2026-07-04T21:15:00", "2026-07-04T08:30:00Z"),  // +12:45
        ("UTC", "2026-12-04T08:30:00", "2026-12-04T08:30:00Z"),
    ])
    func localWindowReachesVendorsAsTheRightInstant(_ zone: String, _ localStart: String, _ utcStart: String) throws {
        let end = String(localStart.prefix(11)) + "23:59:00"
        let incident = try Self.request(Self.statuspage, start: localStart, end: localStart < end ? end : localStart, zone: zone)
        #expect(incident["incident"]?["scheduled_for"]?.stringValue == utcStart)
        let window = try Self.request(Self.pingdom, start: localStart, end: end, zone: zone)
        #expect(window["from"] == .number(Timestamp.parseRFC3339(utcStart)!.timeIntervalSince1970))
    }

    @Test func pacificWindowEndToEndNumbers() throws {
        // The seed bug: 00:30 Pacific read as UTC was 8 hours early (7 in summer).
        let winter = try Self.request(Self.pingdom, start: "2026-12-04T00:30:00", end: "2026-12-04T00:45:00", zone: "America/Los_Angeles")
        #expect(winter["from"] == .number(1_796_373_000) && winter["to"] == .number(1_796_373_900))
        let summer = try Self.request(Self.statuspage, start: "2026-07-04T00:30:00", end: "2026-07-04T00:45:00", zone: "America/Los_Angeles")
        #expect(summer["incident"]?["scheduled_for"]?.stringValue == "2026-07-04T07:30:00Z")
        #expect(summer["incident"]?["scheduled_until"]?.stringValue == "2026-07-04T07:45:00Z")
    }

    /// Found by reading: `{"maintenance":{"id":1e20}}` trapped converting to Int64, and the lease
    /// then re-sent the create after each crash.
    @Test(arguments: ["1e20", "-5", "1.5", "\"777\"", "null"])
    func anOutOfRangePingdomIdIsNotKept(_ id: String) throws {
        let pingdom = PingdomTarget(name: "p", token: Secret("tok-0123456789"))
        let event = try EventValidator().validate(body: Fixtures.exampleEvent(.scheduled))
        guard case .send(let created) = try pingdom.plan(event, context: VendorTargetTests.context()) else {
            Issue.record("the first event creates the window")
            return
        }
        let response = TransportResponse(status: 200, headers: [], body: Data(#"{"maintenance":{"id":\#(id)}}"#.utf8), latency: .zero)
        let state = pingdom.followUp(after: response, to: created, event: event, context: VendorTargetTests.context())
        #expect(state?.objectID == nil)
    }
}
