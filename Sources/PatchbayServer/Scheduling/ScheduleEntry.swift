import Foundation
import PatchbayCore

/// One entry of `schedules:`: a maintenance Patchbay announces itself, ahead of each occurrence
/// of an AWS maintenance-window expression, so no agent has to sleep until it is time.
/// ```yaml
/// schedules:
///   - {app: App1, environment: Production, expression: "cron(0 30 0 ? * FRI#4 *)",
///      timezone: America/Los_Angeles, duration: 45m, announceAhead: 24h, windowId: mw-0123}
/// ```
public struct ScheduleEntry: Sendable {
    public var app: String
    public var environment: String
    public var expression: String
    public var schedule: Schedule
    public var duration: Duration
    public var announceAhead: Duration
    /// The maintenance is keyed by this id plus the occurrence's start; agents that report with
    /// this window id join the occurrence in progress.
    public var windowID: String
    public var tags: [String: String]

    public init(
        app: String, environment: String, expression: String, schedule: Schedule, duration: Duration, announceAhead: Duration,
        windowID: String, tags: [String: String] = [:]
    ) {
        self.app = app
        self.environment = environment
        self.expression = expression
        self.schedule = schedule
        self.duration = duration
        self.announceAhead = announceAhead
        self.windowID = windowID
        self.tags = tags
    }

    /// The window of the occurrence starting at `start`, as its maintenance records it.
    public func window(startingAt start: Date) -> MaintenanceWindow {
        MaintenanceWindow(
            id: "\(windowID)@\(Timestamp.rfc3339(start))", start: start, end: start.addingTimeInterval(duration.seconds),
            timezone: schedule.timeZone.identifier)
    }

    /// The `patch.scheduled` event that announces the occurrence starting at `start`.
    public func announcement(startingAt start: Date, now: Date) -> PatchEvent {
        PatchEvent(
            type: .scheduled, app: app, environment: environment, window: window(startingAt: start), occurredAt: now, tags: tags,
            details: ["schedule": .string(expression)])
    }

    /// Announcing an occurrence twice (a restart, a second instance) queues nothing the second
    /// time: the key is the idempotency key of its announcement.
    public func announcementKey(startingAt start: Date) -> String {
        "schedule:\(MaintenanceKey(app: app, environment: environment, window: window(startingAt: start).id ?? windowID).storageValue)"
    }

    /// Events may come a while after the window: late `completed` reports still belong to it.
    var lateness: TimeInterval { max(duration.seconds, 12 * 3600) }

    /// The occurrence an agent's event belongs to when it names this entry's window id: the one
    /// in progress (or just over, for late reports), else the next one once it is announced.
    /// Nil when none is close.
    public func occurrence(containing now: Date) -> Date? {
        if let current = schedule.latest(atOrBefore: now), now.timeIntervalSince(current) <= duration.seconds + lateness {
            return current
        }
        if let next = schedule.next(after: now), next.timeIntervalSince(now) <= announceAhead.seconds + Self.announceEarly.seconds {
            return next
        }
        return nil
    }

    /// Announcements go out this much before `announceAhead`, so a reminder whose lead equals
    /// `announceAhead` (`reminders: [24h]` with `announceAhead: 24h`) is planned, not skipped.
    public static let announceEarly: Duration = .seconds(5)

    /// The occurrences to announce at `now`: the next one once it is within `announceAhead`, and
    /// one in progress that was never announced (Patchbay was down at its announce time).
    public func occurrencesToAnnounce(at now: Date) -> [Date] {
        var starts: [Date] = []
        if let current = schedule.latest(atOrBefore: now), now < current.addingTimeInterval(duration.seconds) {
            starts.append(current)
        }
        if let next = schedule.next(after: now), next.timeIntervalSince(now) <= announceAhead.seconds + Self.announceEarly.seconds {
            starts.append(next)
        }
        return starts
    }
}

extension ScheduleEntry {
    /// Reads one entry of `schedules:`. Problems are reported with their key path.
    public init?(section: ConfigSection) {
        section.allowOnly(["app", "environment", "expression", "timezone", "duration", "announceAhead", "windowId", "offset", "start", "end", "tags"])
        let app = section.string("app", required: true)
        let environment = section.string("environment", required: true)
        let text = section.string("expression", required: true)
        let windowID = section.string("windowId", required: true)
        let zone = section.timeZone("timezone") ?? TimeZone(identifier: "UTC")!
        let duration = section.duration("duration", default: .seconds(3600), range: .seconds(60)...Duration.seconds(24 * 3600))
        let ahead = section.duration("announceAhead", default: .seconds(24 * 3600), range: .seconds(60)...Duration.seconds(35 * 86_400))
        let offset = section.has("offset") ? section.int("offset", default: 1, range: 1...6) : nil
        let tags = section.stringMap("tags") ?? [:]
        func date(_ key: String) -> Date? {
            guard let value = section.string(key) else { return nil }
            guard let parsed = Timestamp.parseRFC3339(value) else {
                section.report(key, "expected an RFC 3339 date-time with an offset, like 2026-01-01T00:00:00-08:00, got '\(value)'")
                return nil
            }
            return parsed
        }
        let start = date("start")
        let end = date("end")
        guard let app, let environment, let text, let windowID else { return nil }
        let expression: ScheduleExpression
        do {
            expression = try ScheduleExpression.parse(text)
        } catch {
            section.report("expression", error.description)
            return nil
        }
        if case .rate = expression, start == nil {
            section.report("start", "rate() needs a start date to anchor its cadence, like start: 2026-01-06T02:00:00-08:00")
            return nil
        }
        let schedule: Schedule
        do {
            schedule = try Schedule(expression: expression, timeZone: zone, offsetDays: offset, startDate: start, endDate: end)
        } catch {
            section.report(error.field == "offset" ? "offset" : "expression", error.description)
            return nil
        }
        self.init(
            app: app, environment: environment, expression: text, schedule: schedule, duration: duration, announceAhead: ahead,
            windowID: windowID, tags: tags)
    }
}

/// Every schedule entry, for the intake (attaching agents' events to an occurrence) and the
/// scheduler (announcing occurrences).
public struct ScheduleBook: Sendable {
    public var entries: [ScheduleEntry]

    public init(entries: [ScheduleEntry]) {
        self.entries = entries
    }

    /// An agent's event that names a schedule's window id (`mw-0123`) joins that schedule's
    /// occurrence: its window becomes the occurrence's, so its maintenance is the announced one.
    public func attach(_ event: PatchEvent, now: Date) -> PatchEvent {
        guard let id = event.window.id,
            let entry = entries.first(where: { $0.windowID == id && $0.app == event.app && $0.environment == event.environment }),
            let start = entry.occurrence(containing: now)
        else { return event }
        var event = event
        event.window = entry.window(startingAt: start)
        return event
    }
}
