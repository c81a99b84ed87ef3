import Foundation

/// What Patchbay says on its own about a maintenance, at a due time, without an agent posting.
public enum NoticeKind: String, Codable, Sendable, CaseIterable {
    /// `patch.reminder` at a route's lead time before the window.
    case reminder
    /// "Patching Beginning" at the window start, unless an instance already reported `started`.
    case beginning
    /// "Patching Overrunning" when an instance that started has no outcome by end + grace.
    case overrun
    /// Not planned: a `patch.scheduled` that moved a known maintenance becomes "Patching Rescheduled".
    case rescheduled
}

/// Where a planned notice stands. Rows are never deleted by planning, so an operator sees why a
/// notice did not go out.
public enum NoticeState: String, Codable, Sendable, CaseIterable {
    /// Waiting for its due time.
    case planned
    /// Its event was queued for delivery (see `eventID`).
    case sent
    /// Not sent, with the reason: its lead time had passed when the maintenance was announced, or
    /// it became pointless (an instance already started; every instance finished).
    case skipped
    /// Withdrawn by a reschedule or a cancellation.
    case dropped
}

/// One stored notice of a maintenance.
public struct PlannedNotice: Sendable, Hashable, Codable {
    public var id: String
    public var kind: NoticeKind
    /// For reminders: how long before the window start.
    public var leadSeconds: Int?
    public var dueAt: Date
    public var state: NoticeState
    public var reason: String?
    /// The event queued when it was sent.
    public var eventID: String?
    public var updatedAt: Date

    public init(
        id: String = Identifier.make("ntc"), kind: NoticeKind, leadSeconds: Int? = nil, dueAt: Date, state: NoticeState = .planned,
        reason: String? = nil, eventID: String? = nil, updatedAt: Date
    ) {
        self.id = id
        self.kind = kind
        self.leadSeconds = leadSeconds
        self.dueAt = dueAt
        self.state = state
        self.reason = reason
        self.eventID = eventID
        self.updatedAt = updatedAt
    }

    /// `reminder 1h`, `beginning`, `overrun`.
    public var label: String {
        guard kind == .reminder, let leadSeconds else { return kind.rawValue }
        return "reminder \(DurationText.short(leadSeconds))"
    }
}

/// A route's notice plan: `routes[].reminders`, `announceStart`, `overrunGrace`, `overrunExtend`.
public struct NoticeSettings: Sendable, Hashable {
    public var reminders: [Duration]
    public var announceStart: Bool
    public var overrunGrace: Duration
    public var overrunExtend: Duration

    public init(
        reminders: [Duration] = [.seconds(3600)], announceStart: Bool = true, overrunGrace: Duration = .seconds(15 * 60),
        overrunExtend: Duration = .seconds(30 * 60)
    ) {
        self.reminders = reminders
        self.announceStart = announceStart
        self.overrunGrace = overrunGrace
        self.overrunExtend = overrunExtend
    }
}

/// A maintenance as Patchbay knows it: its current window and whether it was cancelled.
public struct MaintenanceRecord: Sendable, Hashable, Codable {
    public enum Status: String, Sendable, Codable {
        case active
        case cancelled
    }

    public var key: MaintenanceKey
    public var window: MaintenanceWindow
    public var status: Status
    /// The route zone its messages show times in.
    public var displayTimeZone: String
    /// The announcing event's tags, so planned notices match the same routes.
    public var tags: [String: String]
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        key: MaintenanceKey, window: MaintenanceWindow, status: Status = .active, displayTimeZone: String, tags: [String: String] = [:],
        createdAt: Date, updatedAt: Date
    ) {
        self.key = key
        self.tags = tags
        self.window = window
        self.status = status
        self.displayTimeZone = displayTimeZone
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// A short, URL-safe handle for operators (`mnt_` and 16 hex digits of the key's digest).
    public var id: String { key.id }
}

extension MaintenanceKey {
    /// Stable for the key: the CLI and the admin API name a maintenance by it.
    public var id: String { "mnt_" + Data(storageValue.utf8).sha256Hex.prefix(16) }
}

/// `1h`, `90s`, `1h30m`, `2d`: how the README writes durations.
public enum DurationText {
    public static func short(_ seconds: Int) -> String {
        if seconds == 0 { return "0s" }
        var rest = abs(seconds)
        var parts: [String] = []
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] where rest >= size {
            parts.append("\(rest / size)\(unit)")
            rest %= size
        }
        return (seconds < 0 ? "-" : "") + parts.joined()
    }
}
