import Foundation

public enum DeliveryState: String, Sendable, Codable, CaseIterable {
    case pending
    case inFlight = "in_flight"
    case delivered
    case dead
    case expired
    /// A live message's edit that a later delivery of its lane made pointless before it was
    /// sent (`chat: {mode: live}`): final, never sent, the later one shows the newer state.
    case superseded
}

/// Why a send ended the way it did. Expected failures are values, not thrown errors, so the
/// dispatcher always records a reason.
public enum DeliveryOutcome: Sendable, Equatable {
    case delivered(reason: DeliveryReason)
    case retry(after: Duration?, reason: DeliveryReason)
    case permanent(reason: DeliveryReason)

    public var reason: DeliveryReason {
        switch self {
        case .delivered(let reason), .retry(_, let reason), .permanent(let reason): reason
        }
    }

    public var label: String {
        switch self {
        case .delivered: "delivered"
        case .retry: "retry"
        case .permanent: "permanent"
        }
    }
}

/// An event accepted for delivery, with the deliveries it fans out to; written in one transaction.
public struct EventSubmission: Sendable {
    public var eventID: String
    public var idempotencyKey: String?
    /// SHA-256 of the request body: a repeated key with another body is a conflict.
    public var bodyDigest: String
    public var event: PatchEvent
    public var receivedAt: Date
    public var deliveries: [DeliveryPlan]
    /// How the event's maintenance plans its notices; nil records nothing (tests of the queue alone).
    public var planning: MaintenancePlanning?
    /// Who sent it: `token:<name>` (the configured token's name), `relay:<source>`, `schedule`.
    public var sender: String?

    public init(
        eventID: String, idempotencyKey: String?, bodyDigest: String, event: PatchEvent, receivedAt: Date, deliveries: [DeliveryPlan],
        planning: MaintenancePlanning? = nil
    ) {
        self.planning = planning
        self.eventID = eventID
        self.idempotencyKey = idempotencyKey
        self.bodyDigest = bodyDigest
        self.event = event
        self.receivedAt = receivedAt
        self.deliveries = deliveries
    }
}

/// A relayed body passed through unchanged to webhook targets (a source with `passthrough:`).
public struct RelayedMessage: Sendable, Hashable, Codable {
    public var source: String
    public var contentType: String
    public var body: Data

    public init(source: String, contentType: String, body: Data) {
        self.source = source
        self.contentType = contentType
        self.body = body
    }

    /// Stored in place of an event; its deliveries keep the source's arrival order per target.
    public static let eventType = "relay.passthrough"

    /// The ordering lane both stores keep for the source's messages (in place of a maintenance
    /// key): each target sees the source's messages in arrival order.
    public var laneKey: String { ["relay", source, ""].joined(separator: "\u{1F}") }

    /// The message as both stores keep it in the event's payload column (`StoredPayload` reads it).
    public func storedPayload() throws -> String {
        String(decoding: try JSONEncoder.patchbay().encode(self), as: UTF8.self)
    }

    /// What stands for the message where an event is expected (listings, the claim): it never
    /// expires and belongs to a maintenance of its own.
    public func placeholderEvent(eventID: String, receivedAt: Date) -> PatchEvent {
        PatchEvent(
            type: .completed, app: source, environment: "relay",
            window: MaintenanceWindow(id: eventID, start: receivedAt, end: receivedAt.addingTimeInterval(1)),
            details: ["relayed": .bool(true)])
    }
}

public struct AcceptedEvent: Sendable, Hashable, Codable {
    public var id: String
    public var deliveries: Int

    public init(id: String, deliveries: Int) {
        self.id = id
        self.deliveries = deliveries
    }
}

public enum AcceptResult: Sendable, Hashable {
    /// Newly committed.
    case accepted(AcceptedEvent)
    /// Same idempotency key and body as an earlier request: that request's answer, nothing queued.
    case replayed(AcceptedEvent)
    /// Same idempotency key, different body.
    case conflict(existingEventID: String)
}

/// A delivery the dispatcher holds a lease on.
public struct ClaimedDelivery: Sendable {
    public var id: String
    public var eventID: String
    public var target: String
    public var targetKind: String
    public var displayTimeZone: String
    /// 1 for the first attempt.
    public var attempt: Int
    public var event: PatchEvent
    public var createdAt: Date
    /// Proves the lease is still ours when the result is written.
    public var leaseToken: String
    /// Statuspage component ids or Pingdom check ids from the routes.
    public var resources: [String]
    /// Earlier attempts answered with a rate limit; they do not count as failures.
    public var throttles: Int
    /// Set for a passthrough delivery: the body to send unchanged (`event` is then a placeholder).
    public var relayed: RelayedMessage?
    /// `event` as the store holds it, in Patchbay's stable JSON encoding (sorted keys): a target
    /// sending the event as JSON sends these bytes instead of encoding it again per attempt.
    /// Code that changes `event` must set this to nil (or to the new encoding), or a webhook would
    /// send the old bytes.
    public var encodedEvent: Data?

    public init(
        id: String, eventID: String, target: String, targetKind: String, displayTimeZone: String, attempt: Int,
        event: PatchEvent, createdAt: Date, leaseToken: String, resources: [String] = [], throttles: Int = 0,
        relayed: RelayedMessage? = nil, encodedEvent: Data? = nil
    ) {
        self.relayed = relayed
        self.encodedEvent = encodedEvent
        self.resources = resources
        self.throttles = throttles
        self.id = id
        self.eventID = eventID
        self.target = target
        self.targetKind = targetKind
        self.displayTimeZone = displayTimeZone
        self.attempt = attempt
        self.event = event
        self.createdAt = createdAt
        self.leaseToken = leaseToken
    }
}

/// One send, as recorded in the attempt history. Every text field is redacted before it gets here.
public struct AttemptRecord: Sendable, Hashable, Codable {
    public var deliveryID: String
    public var number: Int
    public var startedAt: Date
    public var latencyMilliseconds: Double
    public var statusCode: Int?
    public var outcome: String
    public var reason: String
    public var responseExcerpt: String?

    public init(
        deliveryID: String, number: Int, startedAt: Date, latencyMilliseconds: Double, statusCode: Int?,
        outcome: String, reason: String, responseExcerpt: String?
    ) {
        self.deliveryID = deliveryID
        self.number = number
        self.startedAt = startedAt
        self.latencyMilliseconds = latencyMilliseconds
        self.statusCode = statusCode
        self.outcome = outcome
        self.reason = reason
        self.responseExcerpt = responseExcerpt
    }

    /// The lease token under which recording this attempt hands the lane's next delivery to the
    /// same worker. Made from the record, not drawn at random, so that the same record tried
    /// again after its commit went through unseen (PostgreSQL: the reply lost with the
    /// connection) finds the delivery that commit handed over, instead of leaving it leased under
    /// a token nobody holds until the lease runs out. Unique as the record is: one delivery,
    /// attempt number and start.
    public var handOverToken: String {
        "lease_\(deliveryID)_\(number)_\(Int64((startedAt.timeIntervalSince1970 * 1_000_000).rounded()))"
    }
}

/// Where a delivery goes after an attempt.
public enum DeliveryTransition: Sendable, Hashable {
    case delivered
    case retry(at: Date)
    case dead
    case expired
    /// Not sent: a later delivery of its live lane will edit the same message (`LiveRole`).
    case superseded

    /// Delivered, dead, expired or superseded: its lane may go on.
    public var isFinal: Bool {
        if case .retry = self { return false }
        return true
    }
}

/// A row of the delivery listing: no secrets, target by name.
public struct DeliverySummary: Sendable, Hashable, Codable {
    public var id: String
    public var eventID: String
    public var eventType: String
    public var app: String
    public var environment: String
    public var target: String
    public var targetKind: String
    public var state: String
    public var attempts: Int
    public var nextAttemptAt: Date?
    public var createdAt: Date
    public var updatedAt: Date
    public var lastReason: String?
    /// Who sent the delivery's event (`EventSubmission.sender`); nil for Patchbay's own notices.
    public var sender: String?

    public init(
        id: String, eventID: String, eventType: String, app: String, environment: String, target: String, targetKind: String,
        state: String, attempts: Int, nextAttemptAt: Date?, createdAt: Date, updatedAt: Date, lastReason: String?, sender: String? = nil
    ) {
        self.sender = sender
        self.id = id
        self.eventID = eventID
        self.eventType = eventType
        self.app = app
        self.environment = environment
        self.target = target
        self.targetKind = targetKind
        self.state = state
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.lastReason = lastReason
    }
}

/// The durable queue, split by who uses it. SQLite (one server per file) and PostgreSQL (several
/// instances sharing one database) implement every role; `DeliveryStore` is all of them together.
///
/// Conventions every backend keeps, so the contract tests hold for each:
/// - the store mints delivery ids (`Identifier.make("dlv")`) when it commits the plans; event ids
///   come from the caller, so a retried request can be answered with the first one's id;
/// - a relayed body (`acceptRelayed`) is stored byte for byte and comes back in the claim's
///   `relayed`; the claim's `event` is then `RelayedMessage.placeholderEvent`;
/// - times are the caller's `now`, never the database's clock (heartbeats excepted), so tests can
///   drive the clock;
/// - errors are `StoreError`: transient ones (a lost connection, a serialization failure) are
///   worth retrying, permanent ones are not.
public typealias DeliveryStore = IntakeStore & DispatchStore & OperatorStore & RelayInboxStore

/// Every role of the store, the queue's and the maintenance clock's: what both backends are, and
/// what `serve` and the CLI open. Each consumer takes only the role it uses (the dispatcher a
/// `DispatchStore`, intake an `IntakeStore`, …), so a test or a new backend sees the few
/// requirements that matter to it.
public typealias PatchbayStore = DeliveryStore & MaintenanceStore & AuditStore

/// Intake: events and relayed bodies, committed with their deliveries before the 202.
public protocol IntakeStore: Sendable {
    /// Commits the event and all its deliveries in one transaction before returning.
    func accept(_ submission: EventSubmission) async throws -> AcceptResult
    /// Commits a relayed body and its passthrough deliveries in one transaction.
    func acceptRelayed(
        _ message: RelayedMessage, eventID: String, idempotencyKey: String, receivedAt: Date,
        deliveries: [DeliveryPlan]
    ) async throws -> AcceptResult
}

/// The dispatcher's side: leases, results, and the maintenance state renderers read.
public protocol DispatchStore: Sendable {
    /// Leases up to `limit` due deliveries: pending ones whose time has come and in-flight ones
    /// whose lease expired (their worker died). A delivery waits while an earlier one for the same
    /// maintenance and target is unfinished, so each target sees a maintenance's events in order,
    /// and no two deliveries of one lane are ever leased at once (also across instances).
    func claimDue(now: Date, limit: Int, lease: Duration) async throws -> [ClaimedDelivery]
    /// Records the attempt and moves the delivery on, if the lease is still ours. The attempt is
    /// recorded either way. The follow-up state is settled in the same transaction by
    /// `FollowUpResolution.of` against the stored one: a vendor object the send created is kept
    /// even when the lease was lost (unless the maintenance already has another, which comes back
    /// as `extraObject` for the caller to close). `throttled` (the vendor answered with a rate
    /// limit, `DeliveryReason.isRateLimit`) is counted apart: it does not use up the retry budget.
    ///
    /// With a `lease`, when the delivery is finished (delivered, dead, expired or superseded) and the next
    /// delivery of its lane is due, the same transaction leases that one to the same worker: a
    /// lane's deliveries then follow each other without a claim in between. `next` is nil when
    /// there is no lease, the lease was lost, the delivery goes on (a retry), or nothing is due.
    func complete(
        _ claim: ClaimedDelivery, attempt: AttemptRecord, transition: DeliveryTransition, followUp: FollowUpUpdate?,
        throttled: Bool, at now: Date, lease: Duration?
    ) async throws -> Completion
    /// The follow-up state of (maintenance, target) and where the maintenance's instances stand,
    /// as deep as `depth` says: counts and a bounded sample of names for a message about one
    /// server, every name for a summary, a bounded package list for a final update. A send of a
    /// 1,000-server maintenance costs about what one of a 10-server maintenance does (review F4).
    func maintenanceContext(
        for event: PatchEvent, target: String, depth: MaintenanceSnapshot.Depth
    ) async throws -> (FollowUpState?, MaintenanceSnapshot)
    /// Puts a claimed delivery back without counting an attempt (it waited for its pacing slot).
    func release(_ claim: ClaimedDelivery, until: Date, at now: Date) async throws -> Bool
    /// Whether a later delivery of the claim's lane is queued behind it (pending, or in flight
    /// after a lost lease): a live message's edit with one behind it is superseded, not sent.
    func laneHasLaterDelivery(than claim: ClaimedDelivery) async throws -> Bool
}

/// Operators' view, shared by the CLI, the admin API, `/metrics` and `/readyz`.
public protocol OperatorStore: Sendable {
    /// Newest first, without the events' payloads.
    func list(_ filter: DeliveryFilter) async throws -> [DeliverySummary]
    /// Deliveries updated since `since`, by target and state, counted by the store: what the
    /// console's targets page shows, without loading a row per delivery.
    func countsByTarget(since: Date) async throws -> [String: [String: Int]]
    /// The most recent delivery of `targets` updated since `since` that is not delivered and has
    /// a reason (the targets page's "last error").
    func lastFailure(targets: [String], since: Date) async throws -> DeliverySummary?
    func detail(id: String) async throws -> DeliveryDetail?
    /// Every recorded attempt of one delivery, oldest first.
    func attempts(deliveryID: String) async throws -> [AttemptRecord]
    /// Queues a delivered, dead, expired or superseded delivery again, to be rendered with the current
    /// configuration. A delivery already pending or in flight is left alone, so replaying twice
    /// never queues twice.
    func replay(id: String, at now: Date, dryRun: Bool) async throws -> ReplayResult
    func counts() async throws -> [DeliveryState: Int]
    /// How long the longest-waiting due delivery has been due.
    func oldestDueAge(now: Date) async throws -> Duration
    /// Confirms the store accepts writes (for readiness checks).
    func checkWritable() async throws
    /// Deletes (or, with `dryRun`, counts) finished work older than the policy allows, telling
    /// `progress` what was deleted so far after each batch.
    func prune(policy: RetentionPolicy, now: Date, dryRun: Bool, progress: StoreProgress?) async throws -> PruneReport
    /// Ends a console session on every instance sharing the store (sign-out): kept until the
    /// session would have expired anyway, when it is forgotten. True when this call revoked it
    /// (false: it already was), so a sign-in flow can be finished exactly once.
    @discardableResult
    func revokeSession(_ id: String, expires: Date, at now: Date) async throws -> Bool
    /// Whether a console session was signed out.
    func isSessionRevoked(_ id: String) async throws -> Bool
}

/// Relayed messages that map to no app and environment, kept for an operator to look at.
public protocol RelayInboxStore: Sendable {
    func recordUnmapped(source: String, dedupeID: String?, reason: String, body: String, at now: Date) async throws
    /// Unmapped relayed messages, newest first.
    func unmapped(limit: Int) async throws -> [UnmappedMessage]
}

/// Why a store operation failed, as callers need to know it: whether trying again can help.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    /// The database could not be reached or asked to retry (connection lost, serialization
    /// failure, deadlock, busy): nothing was committed; the same call may succeed later.
    case transient(String)
    /// Trying again will not help (a constraint, a full disk, a schema newer than this binary).
    case permanent(String)

    public var description: String {
        switch self {
        case .transient(let message): "store temporarily unavailable: \(message)"
        case .permanent(let message): "store error: \(message)"
        }
    }

    public var isTransient: Bool {
        if case .transient = self { return true }
        return false
    }
}

/// What recording an attempt did.
public struct Completion: Sendable {
    /// The lease was still this worker's: the delivery moved on.
    public var stillOurs: Bool
    /// The lane's next delivery, leased to the same worker.
    public var next: ClaimedDelivery?
    /// A vendor object this send created that the maintenance already has another of: the
    /// caller closes it through the target's cancel path (`FollowUpResolution.extra`).
    public var extraObject: FollowUpState?

    public init(stillOurs: Bool, next: ClaimedDelivery? = nil, extraObject: FollowUpState? = nil) {
        self.stillOurs = stillOurs
        self.next = next
        self.extraObject = extraObject
    }
}

/// Progress of long store work (a prune, a copy), for a terminal: `done` of `total` (nil when not
/// known beforehand) after each batch. Called from the store's tasks.
public typealias StoreProgress = @Sendable (_ done: Int, _ total: Int?) -> Void

extension OperatorStore {
    public func prune(policy: RetentionPolicy, now: Date, dryRun: Bool) async throws -> PruneReport {
        try await prune(policy: policy, now: now, dryRun: dryRun, progress: nil)
    }
}

extension DispatchStore {
    /// Every server by name, no package lists.
    public func maintenanceContext(for event: PatchEvent, target: String) async throws -> (FollowUpState?, MaintenanceSnapshot) {
        try await maintenanceContext(for: event, target: target, depth: .everyInstance)
    }

    /// Records the result, leasing the lane's next delivery when due; `followUp` is state the
    /// send planned with (an update, not a created object).
    public func completeAndLeaseNext(
        _ claim: ClaimedDelivery, attempt: AttemptRecord, transition: DeliveryTransition, followUp: FollowUpState?,
        throttled: Bool, at now: Date, lease: Duration?
    ) async throws -> (stillOurs: Bool, next: ClaimedDelivery?) {
        let result = try await complete(
            claim, attempt: attempt, transition: transition,
            followUp: followUp.map { FollowUpUpdate(state: $0, plannedObjectID: $0.objectID) },
            throttled: throttled, at: now, lease: lease)
        return (result.stillOurs, result.next)
    }

    /// Records the result without leasing anything next; true while the lease was still ours.
    public func complete(
        _ claim: ClaimedDelivery, attempt: AttemptRecord, transition: DeliveryTransition, followUp: FollowUpState?,
        throttled: Bool, at now: Date
    ) async throws -> Bool {
        try await completeAndLeaseNext(
            claim, attempt: attempt, transition: transition, followUp: followUp, throttled: throttled,
            at: now, lease: nil
        ).stillOurs
    }

    public func complete(
        _ claim: ClaimedDelivery, attempt: AttemptRecord, transition: DeliveryTransition, followUp: FollowUpState?,
        at now: Date
    ) async throws -> Bool {
        try await complete(claim, attempt: attempt, transition: transition, followUp: followUp, throttled: false, at: now)
    }
}

public struct UnmappedMessage: Sendable, Codable, Hashable {
    public var source: String
    public var reason: String
    public var body: String
    public var receivedAt: Date

    public init(source: String, reason: String, body: String, receivedAt: Date) {
        self.source = source
        self.reason = reason
        self.body = body
        self.receivedAt = receivedAt
    }
}

public struct DeliveryFilter: Sendable, Hashable {
    public var state: DeliveryState?
    public var target: String?
    public var app: String?
    /// Only deliveries updated at or after this time.
    public var since: Date?
    public var limit: Int
    /// Rows to skip, newest first (paging).
    public var offset: Int

    public init(state: DeliveryState? = nil, target: String? = nil, app: String? = nil, since: Date? = nil, limit: Int = 100, offset: Int = 0) {
        self.state = state
        self.target = target
        self.app = app
        self.since = since
        self.limit = limit
        self.offset = offset
    }
}

/// One delivery with its event and every attempt.
public struct DeliveryDetail: Sendable, Codable {
    public var summary: DeliverySummary
    public var event: PatchEvent
    public var displayTimeZone: String
    public var resources: [String]
    public var attempts: [AttemptRecord]

    public init(summary: DeliverySummary, event: PatchEvent, displayTimeZone: String, resources: [String], attempts: [AttemptRecord]) {
        self.summary = summary
        self.event = event
        self.displayTimeZone = displayTimeZone
        self.resources = resources
        self.attempts = attempts
    }
}

public enum ReplayResult: Sendable, Hashable, Codable {
    case replayed
    /// Dry run: it would be replayed.
    case wouldReplay
    /// Pending or in flight already: nothing queued.
    case alreadyQueued(state: String)
    case notFound
}

extension Duration {
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    public var milliseconds: Double { seconds * 1000 }
}
