import Foundation

/// What accepting a submission stores, decided once for both stores inside their transaction,
/// after the idempotency check: the maintenance's change (when the submission plans it) and the
/// event as stored, which the plan may rewrite (a `patch.scheduled` that moves a known
/// maintenance is stored as a reschedule notice carrying the old window). Each store reads the
/// maintenance, applies the change and inserts the event in the same transaction, so a crash never
/// leaves one without the other.
public struct AcceptStep: Sendable {
    /// The maintenance after the event; nil when the submission plans nothing.
    public var change: MaintenancePlanner.Change?
    public var event: PatchEvent
    /// `event` in Patchbay's stable JSON encoding, as the store keeps it.
    public var payload: String
    public var accepted: AcceptResult

    /// - Parameters:
    ///   - payload: the submission's event encoded before the transaction; encoded again only
    ///     when the plan rewrites the event.
    ///   - existing: the maintenance as stored now (read only when `submission.planning` is set).
    public init(_ submission: EventSubmission, payload: String, existing: MaintenanceRecord?) throws {
        accepted = .accepted(AcceptedEvent(id: submission.eventID, deliveries: submission.deliveries.count))
        event = submission.event
        self.payload = payload
        guard let planning = submission.planning else { return }
        let change = MaintenancePlanner.apply(
            submission.event, existing: existing, settings: planning.settings, displayTimeZone: planning.displayTimeZone,
            now: submission.receivedAt)
        self.change = change
        if change.event != submission.event {
            event = change.event
            self.payload = String(decoding: try JSONEncoder.patchbay().encode(change.event), as: UTF8.self)
        }
    }
}
