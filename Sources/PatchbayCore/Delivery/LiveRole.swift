import Foundation

/// What a delivery of a live lane (`chat: {mode: live}`) does to the maintenance's one living
/// message. Decided from the event alone, so the dispatcher, previews and replays agree.
public enum LiveRole: String, Sendable, Hashable {
    /// Edit the message to show the maintenance as it is now. Superseded, not sent, when a later
    /// delivery of the lane is already queued: that one will show a newer state.
    case update
    /// Edit the message, and also post this event as a reply under it (a thread reply on Slack,
    /// a message of its own on Discord), so people are notified: a server's failure, an overrun,
    /// a reschedule, the maintenance's cancellation. Never superseded; when a later delivery is
    /// queued it only replies.
    case reply

    public init(for event: PatchEvent) {
        switch (event.type, event.notice) {
        case (.failed, _), (.started, .overrun?), (.scheduled, .rescheduled?): self = .reply
        case (.cancelled, _) where event.instance == nil: self = .reply
        default: self = .update
        }
    }

    /// Whether a later delivery of the lane makes this one pointless.
    public var isSupersedable: Bool { self == .update }
}
