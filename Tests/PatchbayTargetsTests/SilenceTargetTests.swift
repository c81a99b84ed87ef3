import Foundation
import PatchbayCore
import PatchbayTestSupport
import Testing

@testable import PatchbayTargets

/// Alertmanager, Grafana and Icinga 2: golden request chains for each event, matchers and
/// filters read and escaped, the lifecycle's clear step, and how answers are classified and kept.
@Suite("Silence and downtime targets")
struct SilenceTargetTests {
    static let now = Timestamp.parseRFC3339("2026-11-27T00:00:00Z")!
    static let zone = TimeZone(identifier: "America/Los_Angeles")!
    static let golden = Golden.directory("PatchbayTargetsTests/Golden/silences")
    static let resources = [
        #"app="App1""#, #"env="production""#, RouteResources.encode(scalar: "clearAfter", "5m"),
        RouteResources.encode(section: "instances", key: "matcher", #"instance=~"{{instance.name}}(:[0-9]+)?""#),
    ]
    static let icingaResources = [
        RouteResources.encode(scalar: "filter", #"host.vars.app == "App1""#),
        RouteResources.encode(section: "instances", key: "filter", #"host.name == "{{instance.name}}""#),
    ]
    static func connection(_ url: String) -> MonitorConnection {
        let section = ConfigSection(
            path: "t",
            value: .map([(key: "url", value: .scalar(url)), (key: "username", value: .scalar("u")), (key: "password", value: .scalar("pw-secret-1"))]
            ),
            diagnostics: ConfigDiagnostics())
        return MonitorConnection(section: section)!
    }
    static let alertmanager = AlertmanagerTarget(name: "alerts", connection: connection("http://127.0.0.1:9/am"))
    static let icinga = Icinga2Target(name: "icinga", connection: connection("https://127.0.0.1:9"))

    static func context(followUp: FollowUpState? = nil, resources: [String] = resources, maintenance: MaintenanceSnapshot = .empty) -> RenderContext {
        RenderContext(displayTimeZone: zone, deliveryID: "dlv_golden", now: now, followUp: followUp, maintenance: maintenance, resources: resources)
    }

    static func event(_ type: EventType) throws -> PatchEvent {
        try EventValidator().validate(body: Fixtures.exampleEvent(type))
    }

    static func answer(_ body: String, status: Int = 200) -> TransportResponse {
        TransportResponse(status: status, headers: [], body: Data(body.utf8), latency: .zero)
    }

    /// Every request of a step, each answered by `answer(request)`.
    static func requests(_ step: DeliveryStep, answer: (OutboundRequest) -> TransportResponse) -> [OutboundRequest] {
        var requests: [OutboundRequest] = []
        var current = step
        while requests.count < DeliveryStep.maxLinks {
            switch current {
            case .send(let request):
                return requests + [request]
            case .then(let request, let next):
                requests.append(request)
                guard let following = next(answer(request)) else { return requests }
                current = following
            case .skip, .refuse:
                return requests
            }
        }
        return requests
    }

    static func emptyLookup(_ request: OutboundRequest) -> TransportResponse {
        request.method == "GET" || request.headers.contains { $0.name == "X-HTTP-Method-Override" }
            ? answer(request.method == "GET" ? "[]" : #"{"results":[]}"#) : answer(#"{"silenceID":"5b1e0000-0000-4000-8000-000000000001"}"#)
    }

    func check(_ step: DeliveryStep, _ name: String) throws {
        var documents: [JSONValue] = []
        for request in Self.requests(step, answer: Self.emptyLookup) {
            documents.append(try JSONValue.parse(VendorTargetTests.document(.send(request))))
        }
        if documents.isEmpty { documents.append(try JSONValue.parse(VendorTargetTests.document(step))) }
        let mismatch = try Golden.mismatch(try JSONEncoder().encode(JSONValue.array(documents)), file: Self.golden.appendingPathComponent(name))
        #expect(mismatch == nil, "\(mismatch ?? "")")
    }

    // MARK: Golden files

    @Test(arguments: EventType.allCases)
    func firstEventsMatchGolden(_ type: EventType) throws {
        try check(try Self.alertmanager.plan(try Self.event(type), context: Self.context()), "alertmanager-\(type.rawValue).json")
        try check(try Self.icinga.plan(try Self.event(type), context: Self.context(resources: Self.icingaResources)), "icinga2-\(type.rawValue).json")
    }

    // MARK: Matchers and filters

    @Test func matchersAreReadAndValuesEscapedForTheirLanguage() throws {
        let regex = try SilenceMatcher.parse(#"instance=~"{{instance.name}}(:[0-9]+)?""#)
        var event = try Self.event(.started)
        event.instance = Instance(id: "i-1", name: "web-1.example.com")
        #expect(regex.resolved(for: event).value == #"web-1\.example\.com(:[0-9]+)?"#)
        let equal = try SilenceMatcher.parse(#"host="{{instance.name}}""#)
        #expect(equal.resolved(for: event).value == "web-1.example.com")
        #expect(try SilenceMatcher.parse(#"job!~"black\"box.*""#).text == #"job!~"black\"box.*""#)
        for broken in [#"app=App1"#, #"1app="x""#, #"app=="x""#, #"app="{{nope}}""#, #"app=~"(""#] {
            #expect(throws: RenderError.self, "\(broken)") { try SilenceMatcher.parse(broken) }
        }
    }

    @Test func routeEntriesAreCheckedAtLoadNamingTheKey() {
        let everything = SilenceAPI.routeProblems([#"app=~".*""#])
        #expect(everything.map(\.key) == ["matchers"])
        let broken = SilenceAPI.routeProblems([#"app="App1""#, "nonsense", RouteResources.encode(scalar: "clearAfter", "2d")])
        #expect(broken.map(\.key) == ["matchers[1]", "clearAfter"])
        #expect(SilenceAPI.routeProblems([]).map(\.key) == [""])
        #expect(Icinga2Target.routeProblems([RouteResources.encode(scalar: "filter", #"host.name == "x"#)]).map(\.key) == ["filter"])
    }

    @Test func icingaValuesTravelAsFilterVariables() throws {
        var event = try Self.event(.started)
        event.instance = Instance(id: "i-1", name: #"web" || true || ""#)
        let (filter, variables) = try Icinga2Filter(#"host.name == "{{instance.name}}" && host.vars.app == "{{app}}""#).bound(to: event)
        #expect(filter == "host.name == patchbay_instance_name && host.vars.app == patchbay_app")
        #expect(variables["patchbay_instance_name"] == #"web" || true || ""#)
    }

    // MARK: Lifecycle

    @Test func aRetriedCreateUpdatesTheSilenceItFindsInsteadOfMakingAnother() throws {
        let event = try Self.event(.scheduled)
        let step = try Self.alertmanager.plan(event, context: Self.context(resources: [#"app="App1""#]))
        guard case .then(let lookup, let next) = step else {
            Issue.record("expected a lookup first, got \(step)")
            return
        }
        #expect(lookup.method == "GET" && lookup.url.reveal().hasSuffix("/am/api/v2/silences?filter=app%3D%22App1%22"))
        let marker = SilenceAPI.marker(targetName: "alerts", event: event, instance: nil)
        let found = Self.answer(
            #"[{"id":"old-1","comment":"x \#(marker)","status":{"state":"expired"}},{"id":"mine-2","comment":"y \#(marker)","status":{"state":"pending"}},{"id":"theirs-3","comment":"z","status":{"state":"active"}}]"#
        )
        guard case .send(let update) = next(found), case .send(let create) = next(Self.answer("[]")) else {
            Issue.record("expected one POST after the lookup")
            return
        }
        #expect(try JSONValue.parse(update.body)["id"]?.stringValue == "mine-2")
        #expect(try JSONValue.parse(create.body)["id"] == nil)
    }

    @Test func theLastServersOutcomeEndsTheSilenceClearAfterLater() throws {
        let event = try Self.event(.completed)
        let held = FollowUpState(
            objectID: "s-1", status: "scheduled", windowStart: Self.now.addingTimeInterval(-3600), windowEnd: Self.now.addingTimeInterval(3600))
        let done = MaintenanceSnapshot(instances: [.init(instance: event.instance!, lastType: .completed)])
        let pending = MaintenanceSnapshot(instances: [
            .init(instance: event.instance!, lastType: .completed), .init(instance: Instance(id: "i-2"), lastType: .started),
        ])
        let resources = [#"app="App1""#, RouteResources.encode(scalar: "clearAfter", "5m")]
        let clear = try Self.alertmanager.plan(event, context: Self.context(followUp: held, resources: resources, maintenance: done))
        guard case .send(let request) = clear else {
            Issue.record("expected the clear, got \(clear)")
            return
        }
        #expect(request.object == "maintenance#clear")
        #expect(try JSONValue.parse(request.body)["endsAt"]?.stringValue == Timestamp.rfc3339(Self.now.addingTimeInterval(300)))
        guard case .skip = try Self.alertmanager.plan(event, context: Self.context(followUp: held, resources: resources, maintenance: pending)) else {
            Issue.record("a server still patching keeps the silence")
            return
        }
        let state = Self.alertmanager.followUp(
            after: Self.answer(#"{"silenceID":"s-2"}"#), to: request, event: event, context: Self.context(followUp: held))
        #expect(state?.objectID == "s-2" && state?.status == "cleared")
        #expect(state?.link == "http://127.0.0.1:9/am/#/silences/s-2")
    }

    @Test func aServersSilenceOpensOnStartedAndClearsOnItsOutcome() throws {
        let started = try Self.event(.started)
        let instanceOnly = [RouteResources.encode(section: "instances", key: "matcher", #"instance="{{instance.id}}""#)]
        let requests = Self.requests(try Self.alertmanager.plan(started, context: Self.context(resources: instanceOnly)), answer: Self.emptyLookup)
        #expect(requests.map(\.method) == ["GET", "POST"])
        let state = Self.alertmanager.followUp(
            after: Self.answer(#"{"silenceID":"srv-1"}"#), to: requests[1], event: started, context: Self.context())
        let id = started.instance!.id
        #expect(state?.objects?[id]?.id == "srv-1" && state?.objects?[id]?.status == "active")
        let completed = try Self.event(.completed)
        let clear = try Self.alertmanager.plan(completed, context: Self.context(followUp: state, resources: instanceOnly))
        guard case .send(let request) = clear else {
            Issue.record("expected the server's clear, got \(clear)")
            return
        }
        #expect(try JSONValue.parse(request.body)["id"]?.stringValue == "srv-1")
        #expect(try JSONValue.parse(request.body)["endsAt"]?.stringValue == Timestamp.rfc3339(Self.now.addingTimeInterval(600)))
    }

    @Test func anOverrunNoticeMovesTheSilenceToTheExtendedWindow() throws {
        var overrun = try Self.event(.scheduled)
        let held = FollowUpState(objectID: "s-1", status: "scheduled", windowStart: overrun.window.start, windowEnd: overrun.window.end)
        overrun.notice = .overrun
        overrun.window.end = overrun.window.end.addingTimeInterval(1800)
        let step = try Self.alertmanager.plan(overrun, context: Self.context(followUp: held, resources: [#"app="App1""#]))
        let marker = SilenceAPI.marker(targetName: "alerts", event: overrun, instance: nil)
        let requests = Self.requests(step) { request in
            request.method == "GET" ? Self.answer(#"[{"id":"s-1","comment":"\#(marker)","status":{"state":"active"}}]"#) : Self.answer("{}")
        }
        #expect(requests.map(\.method) == ["GET", "POST"], "a move looks the silence up, then updates it")
        let body = try JSONValue.parse(try #require(requests.last).body)
        #expect(body["id"]?.stringValue == "s-1")
        #expect(body["endsAt"]?.stringValue == Timestamp.rfc3339(overrun.window.end))
        #expect(body["startsAt"]?.stringValue == Timestamp.rfc3339(overrun.window.start), "the start is kept, so an active silence stays in place")
    }

    @Test func oneServersCancelIsItsOutcomeNotTheMaintenances() throws {
        var cancelled = try Self.event(.completed)
        cancelled.type = .cancelled
        let id = try #require(cancelled.instance?.id)
        let held = FollowUpState(
            objectID: "s-1", status: "scheduled", windowStart: Self.now.addingTimeInterval(-3600), windowEnd: Self.now.addingTimeInterval(3600),
            objects: [id: HeldObject(id: "srv-1", status: "active")])
        let others = MaintenanceSnapshot(instances: [
            .init(instance: cancelled.instance!, lastType: .cancelled), .init(instance: Instance(id: "i-2"), lastType: .started),
        ])
        let requests = Self.requests(
            try Self.alertmanager.plan(cancelled, context: Self.context(followUp: held, maintenance: others)), answer: Self.emptyLookup)
        #expect(requests.map(\.method) == ["POST"], "only the server's silence changes: \(requests.map(\.method))")
        #expect(requests.first?.object == "server:\(id)#clear")
        let state = Self.alertmanager.followUp(
            after: Self.answer(#"{"silenceID":"srv-2"}"#), to: requests[0], event: cancelled, context: Self.context(followUp: held))
        #expect(state?.status == "scheduled" && state?.objects?[id]?.status == "clearing")
    }

    @Test func aServerStartingAfterTheClearOpensTheSilenceAgain() throws {
        let started = try Self.event(.started)
        let cleared = FollowUpState(
            objectID: "s-1", status: "cleared", windowStart: Self.now.addingTimeInterval(-3600), windowEnd: Self.now.addingTimeInterval(3600))
        let requests = Self.requests(
            try Self.alertmanager.plan(started, context: Self.context(followUp: cleared, resources: [#"app="App1""#])), answer: Self.emptyLookup)
        #expect(requests.map(\.method) == ["GET", "POST"])
        #expect(try JSONValue.parse(requests[1].body)["endsAt"]?.stringValue == Timestamp.rfc3339(Self.now.addingTimeInterval(3600)))
        let state = Self.alertmanager.followUp(
            after: Self.answer(#"{"silenceID":"s-2"}"#), to: requests[1], event: started, context: Self.context(followUp: cleared))
        #expect(state?.status == "scheduled" && state?.objectID == "s-2")
    }

    @Test func placeholdersMustBeWholeValuesAndServersOnlyInInstances() {
        #expect(Icinga2Filter.problem(#"host.name == "{{instance.name}}.example.com""#)?.contains("whole value") == true)
        #expect(Icinga2Filter.problem(#"host.name == "{{instance.name}}" || host.vars.app == {{app}}"#) == nil)
        #expect(SilenceAPI.routeProblems([#"instance="{{instance.name}}""#]).map(\.key) == ["matchers[0]"])
        #expect(Icinga2Target.routeProblems([RouteResources.encode(scalar: "filter", #"host.name == "{{instance.name}}""#)]).map(\.key) == ["filter"])
    }

    @Test func aBaseURLMayNotCarryCredentials() {
        let diagnostics = ConfigDiagnostics()
        let section = ConfigSection(
            path: "targets.alerts", value: .map([(key: "url", value: .scalar("https://admin:hunter2-secret@am.example.com"))]),
            diagnostics: diagnostics)
        #expect(MonitorConnection(section: section) == nil)
        #expect(diagnostics.problems.map(\.path) == ["targets.alerts.url"])
        #expect(!diagnostics.problems.description.contains("hunter2"))
    }

    // MARK: Answers

    @Test func goneIsDoneForADeleteButNotForAnUpdate() {
        let delete = OutboundRequest(method: "DELETE", url: Secret("http://x/api/v2/silence/1"), displayURL: "x", headers: [], body: Data())
        let post = OutboundRequest(method: "POST", url: Secret("http://x/api/v2/silences"), displayURL: "x", headers: [], body: Data())
        let notFound025 = Result<TransportResponse, TransportFailure>.success(Self.answer("silence not found", status: 500))
        let notFound = Result<TransportResponse, TransportFailure>.success(Self.answer(#"{"message":"silence not found"}"#, status: 404))
        #expect(Self.alertmanager.classify(notFound025, for: delete).label == "delivered")
        #expect(Self.alertmanager.classify(notFound, for: delete).label == "delivered")
        #expect(Self.alertmanager.classify(notFound, for: post).label != "delivered")
        #expect(Self.alertmanager.classify(notFound025, for: post).label == "retry")
    }

    @Test func icingaMatchingNothingIsDoneForARemoveAndRefusedForASchedule() {
        let empty = Result<TransportResponse, TransportFailure>.success(Self.answer(#"{"results":[]}"#, status: 500))
        let none214 = Result<TransportResponse, TransportFailure>.success(Self.answer(#"{"error":404,"status":"No objects found."}"#, status: 404))
        let schedule = OutboundRequest(
            method: "POST", url: Secret("https://x/v1/actions/schedule-downtime"), displayURL: "x", headers: [], body: Data())
        let remove = OutboundRequest(method: "POST", url: Secret("https://x/v1/actions/remove-downtime"), displayURL: "x", headers: [], body: Data())
        #expect(Self.icinga.classify(empty, for: remove).label == "delivered")
        #expect(Self.icinga.classify(none214, for: remove).label == "delivered")
        #expect(Self.icinga.classify(empty, for: schedule).label == "permanent")
        #expect(Self.icinga.classify(none214, for: schedule).label != "delivered")
    }

    @Test func credentialsStayOutOfPrintableRequests() throws {
        let requests = Self.requests(
            try Self.icinga.plan(try Self.event(.scheduled), context: Self.context(resources: Self.icingaResources)), answer: Self.emptyLookup)
        #expect(!requests.isEmpty)
        for request in requests {
            #expect(request.headers.allSatisfy { $0.name != "Authorization" || $0.isSecret })
            #expect(!request.displayURL.contains("pw-secret-1"))
            #expect(request.headers.contains { $0.name == "Accept" && $0.value == "application/json" })
        }
    }
}
