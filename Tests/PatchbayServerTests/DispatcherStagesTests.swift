import Foundation
import GRDB
import Logging
import PatchbayCore
import PatchbayTargets
import PatchbayTestSupport
import Synchronization
import Testing

@testable import PatchbaySQLite
@testable import PatchbayServer

/// The dispatcher's stages one at a time (plan, pace, send and classify, record), against a real
/// SQLite store and a transport that answers what each test scripts.
@Suite("Dispatcher stages")
struct DispatcherStagesTests {
    static let secret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
    static let yaml = """
        server: {tokens: ["test-token-0123456789abcdef"]}
        targets:
          hook: {kind: webhook, url: "http://127.0.0.1:9/hook", secret: "\(secret)", allowPrivateNetworks: true}
          slow: {kind: webhook, url: "http://127.0.0.1:9/slow", secret: "\(secret)", allowPrivateNetworks: true, rate: {perSecond: 1, burst: 1}}
        routes:
          - match: {app: App1}
            targets: [hook]
        """
    let t0 = Date(timeIntervalSince1970: 1_900_000_000)

    /// Answers every request with the next scripted result and keeps what it was sent.
    final class ScriptedTransport: HTTPTransport {
        let answers: Mutex<[Result<TransportResponse, TransportFailure>]>
        let sent = Mutex<[OutboundRequest]>([])
        init(_ answers: [Result<TransportResponse, TransportFailure>]) { self.answers = Mutex(answers) }
        func send(_ request: OutboundRequest, timeouts: TransportTimeouts) async -> Result<TransportResponse, TransportFailure> {
            sent.withLock { $0.append(request) }
            return answers.withLock {
                $0.isEmpty ? .failure(TransportFailure(kind: .other, message: "no answer scripted", latency: .zero)) : $0.removeFirst()
            }
        }
    }

    static func answer(_ status: Int, _ headers: [HTTPHeader] = [], body: String = "") -> Result<TransportResponse, TransportFailure> {
        .success(TransportResponse(status: status, headers: headers, body: Data(body.utf8), latency: .milliseconds(4)))
    }

    func with(
        _ transport: ScriptedTransport, settings: DispatcherSettings = DispatcherSettings(maxPause: .seconds(60)),
        pacer: Pacer = Pacer(), dropTargets: Set<String> = [],
        _ body: (Dispatcher, SQLiteStore) async throws -> Void
    ) async throws {
        let directory = try TemporaryDirectory("stages")
        defer { directory.remove() }
        let configuration = try PatchbayConfiguration.parse(yaml: Self.yaml, environment: [:])
        let store = try SQLiteStore(settings: StoreSettings(sqlitePath: directory.path("q.db")), logger: Logger(label: "test"))
        let dispatcher = Dispatcher(
            store: store, targets: configuration.targets.filter { !dropTargets.contains($0.key) },
            policies: configuration.policies, transport: transport, settings: settings,
            redactor: Redactor(secrets: []), wake: WakeSignal(), pacer: pacer, metrics: PatchbayMetrics(),
            logger: Logger(label: "test"), clock: { [t0] in t0 })
        try await body(dispatcher, store)
    }

    /// Queues one event per instance for `target`, all in one maintenance (one lane).
    func queue(_ store: SQLiteStore, target: String = "hook", instances: [String] = ["i-1"]) async throws {
        for instance in instances {
            let event = PatchEvent(
                type: .started, app: "App1", environment: "Production", instance: Instance(id: instance),
                window: MaintenanceWindow(id: "mw-1", start: t0.addingTimeInterval(60), end: t0.addingTimeInterval(960)))
            _ = try await store.accept(
                EventSubmission(
                    eventID: Identifier.make("evt"), idempotencyKey: nil, bodyDigest: instance, event: event,
                    receivedAt: t0, deliveries: [DeliveryPlan(target: target, targetKind: "webhook", displayTimeZone: "UTC")]))
        }
    }

    func claim(_ store: SQLiteStore) async throws -> ClaimedDelivery {
        try #require(try await store.claimDue(now: t0, limit: 1, lease: .seconds(60)).first)
    }

    /// The plan stage's request, or the test fails.
    func send(_ dispatcher: Dispatcher, _ claim: ClaimedDelivery) async throws -> Dispatcher.PlannedSend {
        guard case .send(let planned) = await dispatcher.plan(claim, startedAt: t0, logger: AttemptLogger(base: Logger(label: "t"), claim: claim))
        else {
            throw PlanDidNotSend()
        }
        return planned
    }

    struct PlanDidNotSend: Error {}

    @Test func planEndsAnAttemptForATargetNoLongerConfigured() async throws {
        try await with(ScriptedTransport([]), dropTargets: ["hook"]) { dispatcher, store in
            try await queue(store)
            let claim = try await claim(store)
            guard case .end(let ending) = await dispatcher.plan(claim, startedAt: t0, logger: AttemptLogger(base: Logger(label: "t"), claim: claim))
            else {
                Issue.record("expected the attempt to end")
                return
            }
            #expect(ending.outcome.reason == .unknownTarget)
            #expect(ending.outcome.label == "permanent")
        }
    }

    @Test func planRendersTheRequestForItsTarget() async throws {
        try await with(ScriptedTransport([])) { dispatcher, store in
            try await queue(store)
            let claim = try await claim(store)
            let planned = try await send(dispatcher, claim)
            #expect(planned.targetName == "hook")
            #expect(planned.request.method == "POST")
            #expect(String(decoding: planned.request.body, as: UTF8.self).contains("i-1"))
        }
    }

    @Test func sendAndClassifyCutsAVendorsLongPauseToMaxPauseAndPausesTheTarget() async throws {
        let pacer = Pacer()
        let transport = ScriptedTransport([Self.answer(429, [HTTPHeader("Retry-After", "999999")])])
        try await with(transport, pacer: pacer) { dispatcher, store in
            try await queue(store)
            let claim = try await claim(store)
            let planned = try await send(dispatcher, claim)
            var attempt = Dispatcher.Attempt(claim: claim, logger: AttemptLogger(base: Logger(label: "t"), claim: claim), startedAt: t0)
            let ending = await dispatcher.sendAndClassify(planned, attempt: &attempt)
            guard case .retry(let after, let reason) = ending.outcome else {
                Issue.record("expected a retry, got \(ending.outcome)")
                return
            }
            #expect(after == .seconds(60), "cut to delivery.maxPause")
            #expect(reason.isRateLimit)
            #expect(attempt.status == 429)
            let decision = pacer.reserve(key: planned.target.pacingKey, policy: planned.policy.pacing, now: t0.addingTimeInterval(30), maxWait: .zero)
            guard case .later(let at) = decision else {
                Issue.record("the target should be paused, got \(decision)")
                return
            }
            #expect(at >= t0.addingTimeInterval(59) && at <= t0.addingTimeInterval(61))
        }
    }

    @Test func sendAndClassifyKeepsATransportFailureAsARetryWithItsMessage() async throws {
        let failure = TransportFailure(kind: .timeout, message: "timed out after 10 s", latency: .seconds(10))
        try await with(ScriptedTransport([.failure(failure)])) { dispatcher, store in
            try await queue(store)
            let claim = try await claim(store)
            let planned = try await send(dispatcher, claim)
            var attempt = Dispatcher.Attempt(claim: claim, logger: AttemptLogger(base: Logger(label: "t"), claim: claim), startedAt: t0)
            let ending = await dispatcher.sendAndClassify(planned, attempt: &attempt)
            #expect(ending.outcome.label == "retry")
            #expect(ending.detail == "timed out after 10 s")
            #expect(attempt.latency == .seconds(10))
            #expect(attempt.status == nil)
        }
    }

    @Test func paceRequeuesWhenTheSlotIsFarAndTheDeliveryWaitsInTheStore() async throws {
        let pacer = Pacer()
        try await with(ScriptedTransport([]), pacer: pacer) { dispatcher, store in
            try await queue(store, target: "slow")
            let claim = try await claim(store)
            let planned = try await send(dispatcher, claim)
            // The vendor asked for quiet until t0 + 30 s: the slot is far beyond maxPacingWait.
            pacer.block(key: planned.target.pacingKey, policy: planned.policy.pacing, until: t0.addingTimeInterval(30))
            let goes = await dispatcher.paceOrRequeue(planned, claim: claim, logger: AttemptLogger(base: Logger(label: "t"), claim: claim))
            #expect(!goes)
            #expect(try await store.counts()[.pending] == 1)
            #expect(try await store.claimDue(now: t0.addingTimeInterval(10), limit: 1, lease: .seconds(60)).isEmpty, "not due before the pause ends")
            #expect(try await store.claimDue(now: t0.addingTimeInterval(31), limit: 1, lease: .seconds(60)).count == 1)
        }
    }

    @Test func recordCommitsTheResultAndHandsOverTheLanesNextDelivery() async throws {
        try await with(ScriptedTransport([])) { dispatcher, store in
            try await queue(store, instances: ["i-1", "i-2"])
            let claim = try await claim(store)
            var attempt = Dispatcher.Attempt(claim: claim, logger: AttemptLogger(base: Logger(label: "t"), claim: claim), startedAt: t0)
            attempt.status = 200
            let next = await dispatcher.record(&attempt, Dispatcher.Ending(outcome: .delivered(reason: .delivered), detail: "ok"))
            #expect(next?.0.event.instance?.id == "i-2", "the lane's next delivery is leased to the same worker")
            let counts = try await store.counts()
            #expect(counts[.delivered] == 1)
            #expect(counts[.inFlight] == 1)
            let attempts = try await store.attempts(deliveryID: claim.id)
            #expect(attempts.map(\.outcome) == ["delivered"])
            #expect(attempts.first?.statusCode == 200)
        }
    }

    /// A send's result is never lost (review F6): when recording the attempt fails (here SQLite's
    /// writer is held by another connection past the busy timeout, as a backup or a `sqlite3`
    /// shell would), the record is tried again while the lease lasts, and the delivery is not
    /// left to be sent a second time when its lease runs out.
    @Test func recordTriesAgainWhileTheStoreIsBusy() async throws {
        let directory = try TemporaryDirectory("busy")
        defer { directory.remove() }
        let transport = ScriptedTransport([Self.answer(200)])
        let configuration = try PatchbayConfiguration.parse(yaml: Self.yaml, environment: [:])
        let store = try SQLiteStore(
            settings: StoreSettings(sqlitePath: directory.path("q.db"), busyTimeout: .milliseconds(100)),
            logger: Logger(label: "test"))
        let dispatcher = Dispatcher(
            store: store, targets: configuration.targets, policies: configuration.policies, transport: transport,
            settings: DispatcherSettings(lease: .seconds(60)), redactor: Redactor(secrets: []), wake: WakeSignal(),
            metrics: PatchbayMetrics(), logger: Logger(label: "test"), clock: { [t0] in t0 })
        try await queue(store)
        let claim = try await claim(store)
        // Another connection takes the writer and keeps it for a second, ten busy timeouts.
        let other = try DatabaseQueue(path: directory.path("q.db"))
        let holding = AsyncStream<Void>.makeStream()
        let holder = Thread {
            try? other.writeWithoutTransaction { db in
                try db.execute(sql: "BEGIN IMMEDIATE")
                holding.continuation.yield()
                Thread.sleep(forTimeInterval: 1)
                try db.execute(sql: "COMMIT")
            }
        }
        holder.start()
        for await _ in holding.stream { break }
        _ = await dispatcher.attempt(claim, leasedAt: .now)
        #expect(transport.sent.withLock { $0.count } == 1, "sent once")
        #expect(try await store.counts() == [.delivered: 1], "the result was recorded once the writer was free")
        #expect(try await store.attempts(deliveryID: claim.id).map(\.outcome) == ["delivered"])
    }

    /// Two sends of one maintenance whose leases overlapped each created a Statuspage incident:
    /// the first recorded is the maintenance's, and the other is closed at once through the
    /// target's own cancel path, never left open on the public page (review F6).
    @Test func anExtraVendorObjectIsClosedThroughTheCancelPath() async throws {
        let directory = try TemporaryDirectory("extra")
        defer { directory.remove() }
        let transport = ScriptedTransport([
            Self.answer(201, body: #"{"id":"incretry","status":"scheduled"}"#),
            Self.answer(200, body: #"{"id":"incretry","status":"completed"}"#),
        ])
        let statuspage = StatuspageTarget(
            name: "status", page: "page1", apiKey: Secret("key-0123456789abcdef"),
            baseURL: URL(string: "http://127.0.0.1:9/statuspage")!)
        let store = try SQLiteStore(settings: StoreSettings(sqlitePath: directory.path("q.db")), logger: Logger(label: "test"))
        let dispatcher = Dispatcher(
            store: store, targets: ["status": statuspage], policies: ["status": StatuspageTarget.defaultPolicy],
            transport: transport, settings: DispatcherSettings(), redactor: Redactor(secrets: []), wake: WakeSignal(),
            metrics: PatchbayMetrics(), logger: Logger(label: "test"), clock: { [t0] in t0 })
        let event = PatchEvent(
            type: .scheduled, app: "App1", environment: "Production",
            window: MaintenanceWindow(id: "mw-1", start: t0.addingTimeInterval(3600), end: t0.addingTimeInterval(7200)))
        _ = try await store.accept(
            EventSubmission(
                eventID: Identifier.make("evt"), idempotencyKey: nil, bodyDigest: "d", event: event, receivedAt: t0,
                deliveries: [DeliveryPlan(target: "status", targetKind: "statuspage", displayTimeZone: "UTC")]))
        let slow = try #require(try await store.claimDue(now: t0, limit: 1, lease: .seconds(60)).first)
        let retry = try #require(try await store.claimDue(now: t0.addingTimeInterval(61), limit: 1, lease: .seconds(60)).first)
        let logger = AttemptLogger(base: Logger(label: "t"), claim: retry)
        guard case .send(let planned) = await dispatcher.plan(retry, startedAt: t0, logger: logger) else {
            Issue.record("the retry must plan a create")
            return
        }
        #expect(planned.request.method == "POST")
        // Meanwhile the slow send's record lands: its incident is the maintenance's.
        _ = try await store.complete(
            slow,
            attempt: AttemptRecord(
                deliveryID: slow.id, number: 1, startedAt: t0, latencyMilliseconds: 6000,
                statusCode: 201, outcome: "delivered", reason: "delivered", responseExcerpt: nil),
            transition: .delivered,
            followUp: FollowUpUpdate(
                state: FollowUpState(objectID: "incslow", status: "scheduled"),
                plannedObjectID: nil),
            throttled: false, at: t0, lease: nil)
        var attempt = Dispatcher.Attempt(claim: retry, logger: logger, startedAt: t0)
        let ending = await dispatcher.sendAndClassify(planned, attempt: &attempt)
        _ = await dispatcher.record(&attempt, ending)
        let sent = transport.sent.withLock { $0 }
        #expect(sent.count == 2)
        #expect(sent.last?.method == "PATCH" && sent.last?.displayURL.hasSuffix("/incidents/incretry") == true, "the extra incident is closed")
        let closing = try JSONDecoder().decode(JSONValue.self, from: sent.last?.body ?? Data())
        #expect(closing["incident"]?["status"]?.stringValue == "completed")
        #expect(try await store.maintenanceContext(for: event, target: "status").0?.objectID == "incslow", "the first recorded stays")
    }

    /// A target whose step is two requests (`DeliveryStep.then`), each keeping an object.
    struct TwoLinkTarget: DeliveryTarget {
        let name = "pair"
        let kind = "test-pair"
        var secrets: [Secret] { [] }
        var usesMaintenanceState: Bool { true }
        static func request(_ object: String) -> OutboundRequest {
            OutboundRequest(
                method: "POST", url: Secret("http://127.0.0.1:9/\(object)"), displayURL: object, headers: [], body: Data(), object: object)
        }
        func plan(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> DeliveryStep {
            .then(Self.request("first"), next: { _ in .send(Self.request("second")) })
        }
        func followUp(after response: TransportResponse, to request: OutboundRequest, event: PatchEvent, context: RenderContext) -> FollowUpState? {
            var state = context.followUp ?? FollowUpState()
            state.objects = (state.objects ?? [:]).merging([request.object ?? "": HeldObject(id: "\(response.status)", status: "made")]) { $1 }
            return state
        }
    }

    func twoLinkAttempt(_ answers: [Result<TransportResponse, TransportFailure>]) async throws -> (Dispatcher.Ending, [OutboundRequest]) {
        let directory = try TemporaryDirectory("links")
        defer { directory.remove() }
        let transport = ScriptedTransport(answers)
        let store = try SQLiteStore(settings: StoreSettings(sqlitePath: directory.path("q.db")), logger: Logger(label: "test"))
        let dispatcher = Dispatcher(
            store: store, targets: ["pair": TwoLinkTarget()], policies: [:], transport: transport, settings: DispatcherSettings(),
            redactor: Redactor(secrets: []), wake: WakeSignal(), metrics: PatchbayMetrics(), logger: Logger(label: "test"), clock: { [t0] in t0 })
        let event = PatchEvent(
            type: .scheduled, app: "App1", environment: "Production",
            window: MaintenanceWindow(id: "mw-1", start: t0.addingTimeInterval(3600), end: t0.addingTimeInterval(7200)))
        _ = try await store.accept(
            EventSubmission(
                eventID: Identifier.make("evt"), idempotencyKey: nil, bodyDigest: "d", event: event, receivedAt: t0,
                deliveries: [DeliveryPlan(target: "pair", targetKind: "test-pair", displayTimeZone: "UTC")]))
        let claim = try #require(try await store.claimDue(now: t0, limit: 1, lease: .seconds(60)).first)
        let planned = try await send(dispatcher, claim)
        var attempt = Dispatcher.Attempt(claim: claim, logger: AttemptLogger(base: Logger(label: "t"), claim: claim), startedAt: t0)
        let ending = await dispatcher.sendAndClassify(planned, attempt: &attempt)
        _ = await dispatcher.record(&attempt, ending)
        #expect(try await store.maintenanceContext(for: event, target: "pair").0 == ending.followUp, "what the links kept is recorded")
        return (ending, transport.sent.withLock { $0 })
    }

    /// A live lane drained by one worker: each `events` entry queued before the drain, every
    /// answer Slack's; returns what was sent and the deliveries' states.
    func drainLiveLane(_ events: [(EventType, String)], held: String? = nil) async throws -> (sent: [OutboundRequest], states: [String]) {
        let directory = try TemporaryDirectory("live")
        defer { directory.remove() }
        let transport = ScriptedTransport(
            (0..<10).map { _ in Self.answer(200, body: #"{"ok":true,"channel":"C0123456789","ts":"1700000000.000300","message":{}}"#) })
        let store = try SQLiteStore(settings: StoreSettings(sqlitePath: directory.path("q.db")), logger: Logger(label: "test"))
        let slack = SlackTarget(
            name: "app", token: Secret("xoxb-live-0123456789"), channel: "C0123456789", baseURL: URL(string: "http://127.0.0.1:9/slack-api")!)
        let dispatcher = Dispatcher(
            store: store, targets: ["app": slack], policies: [:], transport: transport, settings: DispatcherSettings(),
            redactor: Redactor(secrets: []), wake: WakeSignal(), metrics: PatchbayMetrics(), logger: Logger(label: "test"), clock: { [t0] in t0 })
        let window = MaintenanceWindow(id: "mw-1", start: t0.addingTimeInterval(-60), end: t0.addingTimeInterval(3600))
        for (type, instance) in events {
            let event = PatchEvent(type: type, app: "App1", environment: "Production", instance: Instance(id: instance), window: window)
            _ = try await store.accept(
                EventSubmission(
                    eventID: Identifier.make("evt"), idempotencyKey: nil, bodyDigest: instance, event: event, receivedAt: t0,
                    deliveries: [DeliveryPlan(target: "app", targetKind: "slack", displayTimeZone: "UTC", live: true)],
                    planning: MaintenancePlanning(settings: nil, displayTimeZone: "UTC")))
        }
        await dispatcher.deliver(try #require(try await store.claimDue(now: t0, limit: 1, lease: .seconds(60)).first))
        let states = try await store.list(DeliveryFilter(target: "app")).sorted { $0.createdAt < $1.createdAt || $0.id < $1.id }.map(\.state)
        return (transport.sent.withLock { $0 }, states)
    }

    /// Coalescing: an update with a later delivery queued behind it is recorded as superseded and
    /// never sent; the last one posts the message. A failure is never superseded: with a later
    /// delivery behind it, it only replies (the later one edits).
    @Test func aLiveLanesQueuedEditsAreSupersededAndOnlyTheLastIsSent() async throws {
        let (sent, states) = try await drainLiveLane([(.started, "i-1"), (.started, "i-2"), (.failed, "i-3"), (.completed, "i-1")])
        #expect(states.sorted() == ["delivered", "delivered", "superseded", "superseded"], "\(states)")
        let bodies = try sent.map { try JSONValue.parse($0.body) }
        #expect(sent.count == 3, "post + reply for the failure, then the last edit: \(sent.map(\.displayURL))")
        #expect(bodies[0]["thread_ts"] == nil && sent[0].url.reveal().hasSuffix("chat.postMessage"), "the failure finds no message: it posts one")
        #expect(bodies[1]["thread_ts"]?.stringValue == "1700000000.000300", "and replies under it")
        #expect(sent[2].url.reveal().hasSuffix("chat.update") && bodies[2]["ts"]?.stringValue == "1700000000.000300")
    }

    /// An edit that failed while a later delivery was queued behind it is superseded, not
    /// retried: the retry would hold the newer edit back.
    @Test func aFailedLiveEditWithALaterOneQueuedIsSupersededNotRetried() async throws {
        let directory = try TemporaryDirectory("live-retry")
        defer { directory.remove() }
        let store = try SQLiteStore(settings: StoreSettings(sqlitePath: directory.path("q.db")), logger: Logger(label: "test"))
        let dispatcher = Dispatcher(
            store: store, targets: [:], policies: [:], transport: ScriptedTransport([]), settings: DispatcherSettings(),
            redactor: Redactor(secrets: []), wake: WakeSignal(), metrics: PatchbayMetrics(), logger: Logger(label: "test"), clock: { [t0] in t0 })
        let window = MaintenanceWindow(id: "mw-1", start: t0, end: t0.addingTimeInterval(3600))
        func queue(_ type: EventType, _ instance: String) async throws {
            _ = try await store.accept(
                EventSubmission(
                    eventID: Identifier.make("evt"), idempotencyKey: nil, bodyDigest: instance,
                    event: PatchEvent(type: type, app: "App1", environment: "Production", instance: Instance(id: instance), window: window),
                    receivedAt: t0, deliveries: [DeliveryPlan(target: "app", targetKind: "slack", displayTimeZone: "UTC", live: true)]))
        }
        for (type, later) in [(EventType.started, true), (.failed, true), (.started, false)] {
            try await queue(type, "i-1")
            let claim = try #require(try await store.claimDue(now: t0, limit: 1, lease: .seconds(60)).first)
            if later { try await queue(.completed, "i-2") }
            var attempt = Dispatcher.Attempt(claim: claim, logger: AttemptLogger(base: Logger(label: "t"), claim: claim), startedAt: t0)
            _ = await dispatcher.record(&attempt, Dispatcher.Ending(outcome: .retry(after: nil, reason: .serverError), detail: "500"))
            let state = try await store.detail(id: claim.id)?.summary.state
            let expected = type == .started && later ? "superseded" : "pending"
            #expect(state == expected, "\(type), a later one queued: \(later)")
            // Clear the lane for the next case.
            for row in try await store.list(DeliveryFilter(target: "app")) where row.state == "pending" || row.state == "in_flight" {
                try await store.pool.write { db in
                    try db.execute(sql: "UPDATE deliveries SET state = 'dead' WHERE id = ?", arguments: [row.id])
                }
            }
        }
    }

    @Test func aStepOfTwoLinksSendsBothAndKeepsWhatEachAnswered() async throws {
        let (ending, sent) = try await twoLinkAttempt([Self.answer(200), Self.answer(201)])
        #expect(sent.map(\.displayURL) == ["first", "second"])
        #expect(ending.outcome.label == "delivered")
        #expect(ending.followUp?.objects?["first"]?.id == "200" && ending.followUp?.objects?["second"]?.id == "201")
    }

    @Test func aLinkThatFailsEndsTheAttemptAndKeepsWhatTheLinksBeforeItMade() async throws {
        let (ending, sent) = try await twoLinkAttempt([Self.answer(200), Self.answer(503)])
        #expect(sent.count == 2)
        #expect(ending.outcome.label == "retry")
        #expect(ending.followUp?.objects?["first"]?.id == "200" && ending.followUp?.objects?["second"] == nil)
    }

    /// Only the send that lists the updated packages reads every server's list: once the incident
    /// is completed, the completions still queued behind it (one per server) read counts only
    /// (review of F4: a backlog of 1,000 completions each decoded 1,000 lists to skip).
    @Test func onlyTheSendThatListsPackagesReadsThem() async throws {
        let directory = try TemporaryDirectory("packages")
        defer { directory.remove() }
        let statuspage = StatuspageTarget(
            name: "status", page: "page1", apiKey: Secret("key-0123456789abcdef"),
            baseURL: URL(string: "http://127.0.0.1:9/statuspage")!)
        let store = try SQLiteStore(settings: StoreSettings(sqlitePath: directory.path("q.db")), logger: Logger(label: "test"))
        let window = MaintenanceWindow(id: "mw-1", start: t0.addingTimeInterval(-600), end: t0.addingTimeInterval(1800))
        var events: [PatchEvent] = []
        for (instance, package) in [("i-1", "openssl"), ("i-2", "bash")] {
            var event = PatchEvent(type: .completed, app: "App1", environment: "Production", instance: Instance(id: instance), window: window)
            event.packages = [package]
            events.append(event)
            _ = try await store.accept(
                EventSubmission(
                    eventID: Identifier.make("evt"), idempotencyKey: nil, bodyDigest: instance, event: event,
                    receivedAt: t0,
                    deliveries: [
                        DeliveryPlan(
                            target: "status", targetKind: "statuspage",
                            displayTimeZone: "UTC")
                    ]))
        }
        let final = try await DeliveryPlanner.readMaintenance(for: events[1], lane: DeliveryLane(target: "status"), target: statuspage, from: store)
        #expect(final.1.packagesUpdated == ["openssl", "bash"], "every server has finished and the incident is open: the final update lists them")

        let first = try #require(try await store.claimDue(now: t0, limit: 1, lease: .seconds(60)).first)
        _ = try await store.complete(
            first,
            attempt: AttemptRecord(
                deliveryID: first.id, number: 1, startedAt: t0, latencyMilliseconds: 5,
                statusCode: 200, outcome: "delivered", reason: "delivered", responseExcerpt: nil),
            transition: .delivered,
            followUp: FollowUpUpdate(
                state: FollowUpState(objectID: "inc1", status: "completed"),
                plannedObjectID: nil),
            throttled: false, at: t0, lease: nil)
        let behind = try await DeliveryPlanner.readMaintenance(for: events[1], lane: DeliveryLane(target: "status"), target: statuspage, from: store)
        #expect(behind.0?.status == "completed")
        #expect(behind.1.packagesUpdated.isEmpty, "the incident is completed: this send skips, so it reads no lists")
        #expect(behind.1.completedCount == 2)
        guard
            case .skip = try statuspage.plan(
                events[1],
                context: RenderContext(
                    displayTimeZone: TimeZone(identifier: "UTC")!, deliveryID: "d",
                    now: t0, followUp: behind.0, maintenance: behind.1))
        else {
            Issue.record("a completion behind a completed incident must skip")
            return
        }
    }
}
