import Foundation
import PatchbayCore

/// Everything a renderer may depend on besides the event and the target's own config. Keeping
/// it explicit keeps rendering a pure function that golden tests can pin down.
public struct RenderContext: Sendable {
    /// The zone chat messages show the window in (the route's), beside UTC.
    public var displayTimeZone: TimeZone
    public var deliveryID: String
    public var now: Date
    /// What earlier deliveries for this maintenance left at this target (incident id, window id).
    public var followUp: FollowUpState?
    /// Where every instance of the maintenance stands.
    public var maintenance: MaintenanceSnapshot
    /// Statuspage component ids or Pingdom check ids from the route.
    public var resources: [String]
    /// The matching route's `templates` for this target; they win over the target's own.
    public var routeTemplates: MessageTemplates?
    /// A summary of the maintenance's stage (`chat.mode: per-maintenance`) instead of one
    /// server's message; `followUp` then holds which servers earlier summaries named.
    public var isSummary: Bool
    /// The event as stored (`ClaimedDelivery.encodedEvent`), when the caller has it: the same
    /// bytes `JSONEncoder.patchbay()` makes of the event, without the cost of encoding.
    public var encodedEvent: Data?
    /// How far the route's overrun notice extends the window (`routes[].overrunExtend`): a
    /// server's own silence lasts that long past the window, like the extended window would.
    public var overrunExtend: Duration
    /// Set on a live lane's delivery (`chat: {mode: live}`): the maintenance's one message is
    /// posted or edited, with `maintenance` read as it is now.
    public var live: LiveSend?

    public init(
        displayTimeZone: TimeZone, deliveryID: String, now: Date, followUp: FollowUpState? = nil,
        maintenance: MaintenanceSnapshot = .empty, resources: [String] = [], routeTemplates: MessageTemplates? = nil,
        isSummary: Bool = false, encodedEvent: Data? = nil, overrunExtend: Duration = NoticeSettings().overrunExtend,
        live: LiveSend? = nil
    ) {
        self.live = live
        self.overrunExtend = overrunExtend
        self.encodedEvent = encodedEvent
        self.routeTemplates = routeTemplates
        self.isSummary = isSummary
        self.displayTimeZone = displayTimeZone
        self.deliveryID = deliveryID
        self.now = now
        self.followUp = followUp
        self.maintenance = maintenance
        self.resources = resources
    }
}

public struct RenderError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// What one delivery does at its target.
public enum DeliveryStep: Sendable {
    /// Send this request.
    case send(OutboundRequest)
    /// Send this request and, once it is delivered, what its answer leads to: a lookup before a
    /// create (did an earlier attempt, killed before its record, already make the object?), or
    /// one request per vendor object an event changes. The target's `followUp` reads each
    /// delivered answer in turn; a link that is not delivered ends the attempt with its outcome,
    /// and the retry plans again from the state the links before it left. `next` answers nil
    /// when the step is done: the outcome is the last link's (an edit that found its message).
    case then(OutboundRequest, next: @Sendable (TransportResponse) -> DeliveryStep?)
    /// Nothing to send: the vendor object already says what this event would (a fifth
    /// `started` for an incident already in progress). The delivery counts as delivered.
    case skip(reason: String)
    /// The vendor cannot do what the event asks (delete a window that has started): the
    /// delivery is dead at once, with this reason, instead of being retried forever.
    case refuse(reason: String)
}

/// A configured destination. Each kind lives in its own folder with its config, rendering and
/// response classification.
public protocol DeliveryTarget: Sendable {
    var name: String { get }
    var kind: String { get }
    /// Every credential this target holds, so the redactor can keep them out of logs and the database.
    var secrets: [Secret] { get }
    /// Pure: the same event, context and config always give the same step.
    func plan(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> DeliveryStep
    func classify(_ result: Result<TransportResponse, TransportFailure>) -> DeliveryOutcome
    /// As `classify(_:)`, for kinds whose answer means something else per request (a 404 to a
    /// DELETE is "already gone", to an update a lost object). Defaults to `classify(_:)`.
    func classify(_ result: Result<TransportResponse, TransportFailure>, for request: OutboundRequest) -> DeliveryOutcome
    /// After a delivered send of `request`: what to remember for later events of the same
    /// maintenance. Returns nil when nothing changes.
    func followUp(after response: TransportResponse, to request: OutboundRequest, event: PatchEvent, context: RenderContext) -> FollowUpState?
    /// Whether `plan` reads `context.followUp` and `context.maintenance`. Chat targets do not, so
    /// the dispatcher spares them the store read.
    var usesMaintenanceState: Bool { get }
    /// Whether `plan` will list the maintenance's updated packages for this event
    /// (`context.maintenance.packagesUpdated`), judged on a counted read of the maintenance: the
    /// dispatcher then reads again with the servers' package lists, which no other send pays for.
    /// Only the send that will actually list them should say yes: a backlog of sends that skip
    /// would each read every list.
    func showsUpdatedPackages(for event: PatchEvent, followUp: FollowUpState?, maintenance: MaintenanceSnapshot) -> Bool
    /// Targets with the same key share one rate budget (Statuspage limits per API key).
    var pacingKey: String { get }
    /// A relayed body to pass through unchanged; only webhook targets take them.
    func relay(_ message: RelayedMessage, context: RenderContext) throws(RenderError) -> DeliveryStep
    /// How long the vendor asks for quiet, read from its answer (Pingdom's Req-Limit headers).
    func pause(after response: TransportResponse) -> Duration?
    /// Whether this target can keep a live message (`chat: {mode: live}`): post once, then edit.
    var editsMessagesInPlace: Bool { get }
    /// Pacing for this target when it differs from its kind's `defaultPolicy` (Slack's Web API
    /// is paced by method tier, its webhooks per channel); the target's `rate:` still wins.
    var defaultPacing: PacingPolicy? { get }
}

extension DeliveryTarget {
    public func classify(_ result: Result<TransportResponse, TransportFailure>) -> DeliveryOutcome {
        ResponseRule.classify(result)
    }

    public func classify(_ result: Result<TransportResponse, TransportFailure>, for request: OutboundRequest) -> DeliveryOutcome {
        classify(result)
    }

    public func followUp(after response: TransportResponse, to request: OutboundRequest, event: PatchEvent, context: RenderContext) -> FollowUpState?
    {
        nil
    }

    public var usesMaintenanceState: Bool { false }

    public func showsUpdatedPackages(for event: PatchEvent, followUp: FollowUpState?, maintenance: MaintenanceSnapshot) -> Bool {
        false
    }

    public var pacingKey: String { "\(kind):\(name)" }

    public func pause(after response: TransportResponse) -> Duration? { nil }

    public var editsMessagesInPlace: Bool { false }

    public var defaultPacing: PacingPolicy? { nil }

    public func relay(_ message: RelayedMessage, context: RenderContext) throws(RenderError) -> DeliveryStep {
        .refuse(reason: "a \(kind) target takes lifecycle events only; passthrough needs a webhook target")
    }
}

extension DeliveryStep {
    /// The most links one step may chain: an event of a 64-server maintenance changing each
    /// server's silence, and a lookup; anything longer is a bug, not a vendor's answer.
    public static let maxLinks = 70

    /// The first request of the step, if it sends one.
    public var firstRequest: OutboundRequest? {
        switch self {
        case .send(let request), .then(let request, _): request
        case .skip, .refuse: nil
        }
    }
}

/// Chat targets (Slack, Teams) post one message per event and keep no state, but for a
/// summary's named servers and a live message's id.
public protocol MessageTarget: DeliveryTarget {
    func render(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> OutboundRequest
    /// The step of a live lane's delivery (`LiveStep`), for kinds that `editsMessagesInPlace`.
    func planLive(_ event: PatchEvent, context: RenderContext, send: LiveSend) throws(RenderError) -> DeliveryStep
}

extension MessageTarget {
    public func plan(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> DeliveryStep {
        if let live = context.live { return try planLive(event, context: context, send: live) }
        if context.isSummary, MaintenanceDigest(event: event, context: context).newInstances.isEmpty {
            return .skip(reason: "every server this summary would name was in an earlier summary")
        }
        return .send(try render(event, context: context))
    }

    public func planLive(_ event: PatchEvent, context: RenderContext, send: LiveSend) throws(RenderError) -> DeliveryStep {
        .refuse(reason: "a \(kind) target cannot edit a message it sent, so it keeps no live message")
    }

    public func followUp(after response: TransportResponse, to request: OutboundRequest, event: PatchEvent, context: RenderContext) -> FollowUpState?
    {
        summaryFollowUp(event: event, context: context)
    }

    /// A summary remembers the servers it named, so the next one names only newcomers.
    public func summaryFollowUp(event: PatchEvent, context: RenderContext) -> FollowUpState? {
        context.isSummary ? MaintenanceDigest(event: event, context: context).followUp(after: context.followUp) : nil
    }
}

extension JSONEncoder {
    /// Encodes a payload, turning the (unexpected) failure into a render error that names the target kind.
    static func encodePayload(_ value: some Encodable, kind: String) throws(RenderError) -> Data {
        do {
            return try JSONEncoder.patchbay().encode(value)
        } catch {
            throw RenderError("could not encode the \(kind) payload")
        }
    }
}
