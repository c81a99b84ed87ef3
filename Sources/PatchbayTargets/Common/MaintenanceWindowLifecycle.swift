import Foundation
import PatchbayCore

/// The one vendor window a window-keeping target holds per maintenance (a Pingdom maintenance
/// window, a Datadog downtime, a PagerDuty maintenance window), and what each event of the
/// maintenance asks of it: announce → create; reschedule or overrun → move; cancel → end; a
/// server's own report → nothing. Decided here once for every such kind; each kind turns the
/// step into its vendor's request and applies its vendor's rules (what a past window allows).
public enum MaintenanceWindowLifecycle {
    /// The window as the target's follow-up state remembers it.
    public struct HeldWindow: Sendable, Equatable {
        /// The vendor's id; nil when the vendor answered the create without a usable one.
        public var id: String?
        public var start: Date?
        public var end: Date?

        public func hasBegun(at now: Date) -> Bool { start.map { $0 <= now } ?? false }
        public func hasEnded(at now: Date) -> Bool { end.map { $0 <= now } ?? false }
    }

    public enum Step: Sendable, Equatable {
        /// No window is held: make one for the event's window.
        case create
        /// Cancelled before any window was made: there is nothing to end.
        case nothingToEnd
        /// An earlier cancel ended the window.
        case alreadyEnded
        /// The maintenance was cancelled: end the held window.
        case end(HeldWindow)
        /// A reschedule or an overrun changed the window: move the held one to the event's.
        case move(HeldWindow)
        /// The held window already covers the event.
        case covered(HeldWindow)
    }

    /// What `event` asks of the window that `followUp` remembers.
    public static func step(for event: PatchEvent, followUp: FollowUpState?) -> Step {
        // A delivered create leaves a status even when the vendor's answer held no usable id: the
        // window exists, and making a second one would break "one window per maintenance".
        guard let state = followUp, state.objectID != nil || state.status != nil else {
            return event.type == .cancelled ? .nothingToEnd : .create
        }
        if state.status == deletedStatus { return .alreadyEnded }
        let held = HeldWindow(id: state.objectID, start: state.windowStart, end: state.windowEnd)
        if event.type == .cancelled { return .end(held) }
        // Only an announcement (a reschedule) or an overrun notice moves the window: agents'
        // started/completed events may carry their own idea of the window, which must not shrink
        // a window that was extended.
        let moves = event.type == .scheduled || event.notice == .overrun
        guard moves, held.start != event.window.start || held.end != event.window.end else { return .covered(held) }
        return .move(held)
    }

    /// The follow-up state after the vendor accepted `method` for `event`: a create keeps the
    /// vendor's id (`createdID`, nil when its answer held no usable one), a create or a move the
    /// window, an end marks the window ended.
    public static func followUp(after method: String, previous: FollowUpState?, event: PatchEvent, createdID: String?) -> FollowUpState {
        var state = previous ?? FollowUpState()
        switch method {
        case "DELETE":
            state.status = deletedStatus
        case "POST":
            state.objectID = createdID
            state.status = "scheduled"
            fallthrough
        default:
            state.windowStart = event.window.start
            state.windowEnd = event.window.end
        }
        return state
    }

    /// Why a held window without a usable id cannot be ended or moved.
    public static func noUsableIDReason(vendor: String, object: String, step: Step) -> String {
        let verb = if case .end = step { "cancel" } else { "move" }
        return "\(vendor) answered the create without a usable \(object) id, so Patchbay cannot \(verb) it; change it in \(vendor)"
    }

    public static let deletedStatus = "deleted"
}
