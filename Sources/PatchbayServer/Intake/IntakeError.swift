import PatchbayCore

/// Why intake refused an event. Intake knows nothing of HTTP: the routes that call it (the events
/// API and the relay) turn this into their answer with `APIError(_:)`, and the scheduler, which
/// announces occurrences itself, matches the case it expects.
public enum IntakeError: Error, Sendable {
    /// An agent's body is not a valid event.
    case invalidEvent(EventValidationError)
    /// A relay source's message, once mapped, is not a valid event.
    case invalidRelayedEvent(EventValidationError)
    /// The idempotency key (an agent's header, a relayed message id, a schedule occurrence) was
    /// used before for a different body.
    case idempotencyConflict(existingEventID: String)
    /// A passthrough source's message id was received before with another body.
    case duplicateMessage(existingEventID: String)
    /// Nothing was committed (a full disk, a locked or unreachable database): try again.
    case storeUnavailable
}
