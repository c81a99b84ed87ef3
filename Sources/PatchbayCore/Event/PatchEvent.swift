import Foundation

/// The lifecycle stage an event reports.
public enum EventType: String, Codable, CaseIterable, Sendable {
    case scheduled = "patch.scheduled"
    case reminder = "patch.reminder"
    case started = "patch.started"
    case completed = "patch.completed"
    case failed = "patch.failed"
    case cancelled = "patch.cancelled"
}

public struct Instance: Codable, Sendable, Hashable {
    public var id: String
    public var name: String?

    public init(id: String, name: String? = nil) {
        self.id = id
        self.name = name
    }

    /// `web-1 (i-0abc123)`, or just the id when there is no name.
    public var displayName: String {
        guard let name, !name.isEmpty, name != id else { return id }
        return "\(name) (\(id))"
    }
}

/// A maintenance window with its times already resolved to UTC instants. `timezone` is the zone the
/// sender used, kept for display.
public struct MaintenanceWindow: Codable, Sendable, Hashable {
    public var id: String?
    public var start: Date
    public var end: Date
    public var timezone: String?

    public init(id: String? = nil, start: Date, end: Date, timezone: String? = nil) {
        self.id = id
        self.start = start
        self.end = end
        self.timezone = timezone
    }
}

/// One validated patch lifecycle fact. Built only by `EventValidator`, so every instance obeys
/// `Schemas/patch-event.schema.json`.
public struct PatchEvent: Codable, Sendable, Hashable {
    public var id: String?
    public var type: EventType
    public var app: String
    public var environment: String
    public var instance: Instance?
    public var window: MaintenanceWindow
    public var packages: [String]
    public var occurredAt: Date?
    public var tags: [String: String]
    public var details: [String: JSONValue]
    /// Set only on events Patchbay plans itself (reminders, "beginning", overrun notices) or
    /// rewrites (a reschedule). Senders cannot set it: the validator refuses unknown fields.
    public var notice: NoticeKind?
    /// For a reschedule: the window the maintenance had before; for an overrun: the planned window.
    public var previousWindow: MaintenanceWindow?

    public init(
        id: String? = nil, type: EventType, app: String, environment: String, instance: Instance? = nil,
        window: MaintenanceWindow, packages: [String] = [], occurredAt: Date? = nil,
        tags: [String: String] = [:], details: [String: JSONValue] = [:], notice: NoticeKind? = nil,
        previousWindow: MaintenanceWindow? = nil
    ) {
        self.notice = notice
        self.previousWindow = previousWindow
        self.id = id
        self.type = type
        self.app = app
        self.environment = environment
        self.instance = instance
        self.window = window
        self.packages = packages
        self.occurredAt = occurredAt
        self.tags = tags
        self.details = details
    }

    /// `App1 - Production`, the way teams name a system in their messages today.
    public var systemName: String { "\(app) - \(environment)" }

    public var maintenanceKey: MaintenanceKey {
        MaintenanceKey(
            app: app, environment: environment,
            window: window.id ?? Timestamp.rfc3339(window.start))
    }
}

/// Identifies the patch run many instances report into: (app, environment, window id, or the
/// window's start when the sender gave no id).
public struct MaintenanceKey: Sendable, Hashable, Codable, CustomStringConvertible {
    public var app: String
    public var environment: String
    public var window: String

    public init(app: String, environment: String, window: String) {
        self.app = app
        self.environment = environment
        self.window = window
    }

    /// Unambiguous storage form: the unit separator cannot appear in validated names.
    public var storageValue: String { [app, environment, window].joined(separator: "\u{1F}") }

    public var description: String { "\(app)/\(environment)/\(window)" }
}
