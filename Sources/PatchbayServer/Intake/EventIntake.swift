import Foundation
import Logging
import PatchbayCore
import PatchbayTargets

/// From a request body to committed deliveries: validate, route, store in one transaction.
/// Shared by the HTTP API and, later, the relay sources.
public struct EventIntake: Sendable {
    public enum Outcome: Sendable, Equatable {
        case accepted(AcceptedEvent)
        case replayed(AcceptedEvent)
    }

    let store: any IntakeStore
    let routes: RouteTable
    let targets: [String: any DeliveryTarget]
    let wake: WakeSignal
    let metrics: PatchbayMetrics
    let schedules: ScheduleBook
    let clock: @Sendable () -> Date

    public init(
        store: any IntakeStore, routes: RouteTable, targets: [String: any DeliveryTarget], wake: WakeSignal,
        metrics: PatchbayMetrics, schedules: ScheduleBook = ScheduleBook(entries: []), clock: @escaping @Sendable () -> Date = Date.init
    ) {
        self.schedules = schedules
        self.store = store
        self.routes = routes
        self.targets = targets
        self.wake = wake
        self.metrics = metrics
        self.clock = clock
    }

    /// Intake as the configuration describes it: its routes, targets and schedules.
    public init(
        configuration: PatchbayConfiguration, store: any IntakeStore, wake: WakeSignal, metrics: PatchbayMetrics,
        clock: @escaping @Sendable () -> Date = Date.init
    ) {
        self.init(
            store: store, routes: configuration.routes, targets: configuration.targets, wake: wake, metrics: metrics,
            schedules: configuration.schedules, clock: clock)
    }

    public var validator: EventValidator {
        let routes = routes
        return EventValidator { app, environment, tags in routes.fallbackZone(app: app, environment: environment, tags: tags) }
    }

    /// - Throws: `IntakeError` for anything the sender must fix or retry.
    /// `sender` is who sent it (`token:<name>`), recorded with the event.
    public func accept(body: Data, idempotencyKey headerKey: String?, sender: String? = nil, logger: Logger) async throws(IntakeError) -> Outcome {
        let event: PatchEvent
        do {
            event = try validator.validate(body: body)
        } catch {
            metrics.requestRejected(.invalidEvent)
            throw .invalidEvent(error)
        }
        // Agents' keys live in their own namespace, apart from relayed message ids (`relay:`),
        // planned notices (`notice:`) and schedule announcements (`schedule:`).
        let key = (headerKey ?? event.id).map { "event:" + $0 }
        return try await accept(event, digest: body.sha256Hex, idempotencyKey: key, sender: sender, logger: logger)
    }

    /// An event built by a relay source from its sender's body; `digest` identifies that body.
    public func accept(
        json: JSONValue, digest: String, idempotencyKey: String, sender: String? = nil, logger: Logger
    ) async throws(IntakeError) -> Outcome {
        let event: PatchEvent
        do {
            event = try validator.validate(json: json)
        } catch {
            metrics.requestRejected(.invalidEvent)
            throw .invalidRelayedEvent(error)
        }
        return try await accept(event, digest: digest, idempotencyKey: idempotencyKey, sender: sender, logger: logger, relayed: true)
    }

    /// A verified body for a passthrough source: one delivery per named webhook target.
    public func acceptRelayed(
        _ message: RelayedMessage, dedupeID: String, targets names: [String],
        logger: Logger
    ) async throws(IntakeError) -> Outcome {
        let plans = names.compactMap { name in targets[name].map { DeliveryPlan(target: name, targetKind: $0.kind, displayTimeZone: "UTC") } }
        let result: AcceptResult
        do {
            result = try await store.acceptRelayed(
                message, eventID: Identifier.make("evt"), idempotencyKey: dedupeID, receivedAt: clock(),
                deliveries: plans)
        } catch {
            logger.error("could not commit the relayed body; answered 503", metadata: ["error": "\(error)"])
            throw .storeUnavailable
        }
        switch result {
        case .accepted(let accepted):
            logger.debug("relayed body queued for passthrough", metadata: ["event.id": "\(accepted.id)", "relay.source": "\(message.source)"])
            if accepted.deliveries > 0 { wake.notify() }
            return .accepted(accepted)
        case .replayed(let accepted):
            return .replayed(accepted)
        case .conflict(let existing):
            throw .duplicateMessage(existingEventID: existing)
        }
    }

    /// An announcement Patchbay makes itself (a `schedules:` occurrence): routed and planned
    /// exactly like an agent's `patch.scheduled`.
    /// - Throws: `IntakeError` (`.idempotencyConflict` when the occurrence was announced before with
    ///   another window).
    public func announce(_ event: PatchEvent, idempotencyKey: String, logger: Logger) async throws -> Outcome {
        let digest = try JSONEncoder.patchbay().encode(event.window).sha256Hex
        return try await accept(event, digest: digest, idempotencyKey: idempotencyKey, sender: "schedule", logger: logger, attach: false)
    }

    private func accept(
        _ event: PatchEvent, digest: String, idempotencyKey key: String?, sender: String?, logger: Logger,
        attach: Bool = true, relayed: Bool = false
    ) async throws(IntakeError) -> Outcome {
        let now = clock()
        // An agent reporting with a schedule's window id joins the occurrence Patchbay announced.
        let event = attach ? schedules.attach(event, now: now) : event
        let plans = routes.plans(for: event, targets: targets)
        let planning =
            routes.noticeSettings(for: event).map { MaintenancePlanning(settings: $0.settings, displayTimeZone: $0.displayTimeZone) }
            ?? MaintenancePlanning(settings: nil, displayTimeZone: event.window.timezone ?? "UTC")
        var submission = EventSubmission(
            eventID: Identifier.make("evt"), idempotencyKey: key, bodyDigest: digest, event: event,
            receivedAt: now, deliveries: plans, planning: planning
        )
        submission.sender = sender
        let result: AcceptResult
        do {
            result = try await store.accept(submission)
        } catch {
            // Nothing was committed (a full disk, a locked database): the sender must try again,
            // so a 503 with Retry-After, never a bare 500.
            metrics.requestRejected(.storeUnavailable)
            logger.error("could not commit the event; answered 503", metadata: ["error": "\(error)"])
            throw .storeUnavailable
        }
        switch result {
        case .accepted(let accepted):
            // Debug, not info: one line per event is the intake's largest cost after the commit
            // (patchbay_events_accepted_total counts them); refusals and errors stay visible.
            logger.debug(
                "event accepted",
                metadata: [
                    "event.id": "\(accepted.id)", "event.type": "\(event.type.rawValue)", "event.app": "\(LogText.escape(event.app))",
                    "event.environment": "\(LogText.escape(event.environment))", "deliveries": "\(accepted.deliveries)",
                ])
            metrics.eventAccepted(event.type)
            if accepted.deliveries > 0 { wake.notify() }
            return .accepted(accepted)
        case .replayed(let accepted):
            logger.debug("idempotent repeat answered from the first request", metadata: ["event.id": "\(accepted.id)"])
            return .replayed(accepted)
        case .conflict(let existing):
            // The relay counts its own refusals (patchbay_relay_rejected_total).
            if !relayed { metrics.requestRejected(.idempotencyConflict) }
            throw .idempotencyConflict(existingEventID: existing)
        }
    }
}
