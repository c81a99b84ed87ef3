import Foundation

/// Pure decisions about a maintenance's planned notices. The store applies them inside the
/// transaction that commits the event (so a crash never leaves an event without its plan), and
/// the scheduler asks `fire` when a notice falls due.
public enum MaintenancePlanner {
    /// What one accepted event does to its maintenance.
    public struct Change: Sendable, Hashable {
        /// The maintenance as it stands after the event.
        public var record: MaintenanceRecord
        /// The event to store: a `patch.scheduled` that moves a known maintenance becomes a
        /// reschedule notice carrying the old window.
        public var event: PatchEvent
        /// Withdraw every notice still planned, with this reason (reschedule, cancel).
        public var dropPlanned: String?
        /// Notices to add.
        public var notices: [PlannedNotice]
        /// Whether `record` differs from what was stored.
        public var recordChanged: Bool
    }

    /// - Parameters:
    ///   - existing: the maintenance as stored, nil when this is its first event.
    ///   - settings: the notice plan of the first route that matches the event; nil when no route
    ///     matches (the maintenance is still recorded, with no notices).
    public static func apply(
        _ event: PatchEvent, existing: MaintenanceRecord?, settings: NoticeSettings?, displayTimeZone: String,
        now: Date
    ) -> Change {
        guard var record = existing else {
            let record = MaintenanceRecord(
                key: event.maintenanceKey, window: event.window, status: event.type == .cancelled ? .cancelled : .active,
                displayTimeZone: displayTimeZone, tags: event.tags, createdAt: now, updatedAt: now)
            let notices = event.type == .cancelled || settings == nil ? [] : plan(event.window, settings: settings!, now: now)
            return Change(record: record, event: event, dropPlanned: nil, notices: notices, recordChanged: true)
        }
        var event = event
        switch event.type {
        case .cancelled:
            guard record.status != .cancelled else { break }
            record.status = .cancelled
            record.updatedAt = now
            return Change(
                record: record, event: event, dropPlanned: "the maintenance was cancelled at \(Timestamp.rfc3339(now))",
                notices: [], recordChanged: true)
        case .scheduled:
            // A cancelled maintenance stays cancelled: its incident and Pingdom window are closed
            // or deleted, so announcing again takes a new window id.
            let moved = record.window.start != event.window.start || record.window.end != event.window.end
            guard moved, record.status == .active else { break }
            event.notice = .rescheduled
            event.previousWindow = record.window
            let reason = "rescheduled at \(Timestamp.rfc3339(now)) to \(Timestamp.rfc3339(event.window.start))–\(Timestamp.rfc3339(event.window.end))"
            record.window = event.window
            record.updatedAt = now
            let notices = settings.map { plan(event.window, settings: $0, now: now) } ?? []
            return Change(record: record, event: event, dropPlanned: reason, notices: notices, recordChanged: true)
        default:
            break
        }
        return Change(record: record, event: event, dropPlanned: nil, notices: [], recordChanged: false)
    }

    /// The notices of a window announced at `now`. A notice whose time has already passed is
    /// recorded as skipped, with the reason, and never sent late.
    public static func plan(_ window: MaintenanceWindow, settings: NoticeSettings, now: Date) -> [PlannedNotice] {
        var notices: [PlannedNotice] = []
        let announced = Timestamp.rfc3339(now)
        for lead in Set(settings.reminders).sorted(by: >) {
            let seconds = Int(lead.components.seconds)
            let due = window.start.addingTimeInterval(-Double(seconds))
            if due > now {
                notices.append(PlannedNotice(kind: .reminder, leadSeconds: seconds, dueAt: due, updatedAt: now))
            } else {
                notices.append(
                    PlannedNotice(
                        kind: .reminder, leadSeconds: seconds, dueAt: due, state: .skipped,
                        reason: "announced at \(announced), after this reminder's time \(Timestamp.rfc3339(due))",
                        updatedAt: now))
            }
        }
        if settings.announceStart {
            if window.start > now {
                notices.append(PlannedNotice(kind: .beginning, dueAt: window.start, updatedAt: now))
            } else {
                notices.append(
                    PlannedNotice(
                        kind: .beginning, dueAt: window.start, state: .skipped,
                        reason: "announced at \(announced), after the window started", updatedAt: now))
            }
        }
        let overrunDue = window.end.addingTimeInterval(settings.overrunGrace.seconds)
        if overrunDue > now {
            notices.append(PlannedNotice(kind: .overrun, dueAt: overrunDue, updatedAt: now))
        } else {
            notices.append(
                PlannedNotice(
                    kind: .overrun, dueAt: overrunDue, state: .skipped,
                    reason: "announced at \(announced), after the window and its overrun grace ended", updatedAt: now))
        }
        return notices
    }

    public enum Decision: Sendable, Hashable {
        /// Queue this event through the maintenance's routes.
        case send(PatchEvent)
        /// Record the notice as skipped, with the reason.
        case skip(reason: String)
    }

    /// What a due notice does now, given where the maintenance's instances stand.
    public static func fire(
        _ notice: PlannedNotice, record: MaintenanceRecord, snapshot: MaintenanceSnapshot, settings: NoticeSettings,
        now: Date
    ) -> Decision {
        let window = record.window
        let key = record.key
        func event(_ type: EventType, window: MaintenanceWindow, details: [String: JSONValue] = [:], previous: MaintenanceWindow? = nil) -> PatchEvent
        {
            var window = window
            window.id = key.window
            return PatchEvent(
                type: type, app: key.app, environment: key.environment, window: window, occurredAt: now, tags: record.tags,
                details: details, notice: notice.kind, previousWindow: previous)
        }
        switch notice.kind {
        case .reminder:
            guard now < window.start else {
                return .skip(reason: "the window started at \(Timestamp.rfc3339(window.start)) before the reminder could go out")
            }
            if let started = snapshot.instances.first(where: { $0.lastType.stageRank >= EventType.started.stageRank }) {
                return .skip(
                    reason: "patching is already under way: \(started.instance.name ?? started.instance.id) reported \(started.lastType.rawValue)")
            }
            return .send(event(.reminder, window: window, details: ["lead": .string(DurationText.short(notice.leadSeconds ?? 0))]))
        case .beginning:
            if let started = snapshot.instances.first(where: { $0.lastType.stageRank >= EventType.started.stageRank }) {
                return .skip(reason: "\(started.instance.name ?? started.instance.id) already reported \(started.lastType.rawValue)")
            }
            guard now < window.end else {
                return .skip(reason: "the window ended at \(Timestamp.rfc3339(window.end)) before the notice could go out")
            }
            return .send(event(.started, window: window))
        case .overrun:
            let overdue = snapshot.instances.filter { $0.lastType == .started }
            guard !overdue.isEmpty else {
                let finished = snapshot.instances.filter { $0.lastType.stageRank >= 2 }.count
                return .skip(reason: finished == 0 ? "no instance reported started" : "every instance that started reported an outcome")
            }
            var extended = window
            extended.end = window.end.addingTimeInterval(settings.overrunExtend.seconds)
            let names = overdue.map { JSONValue.string($0.instance.name ?? $0.instance.id) }
            return .send(event(.started, window: extended, details: ["overdue": .array(names)], previous: window))
        case .rescheduled:
            return .skip(reason: "a reschedule is not a planned notice")
        }
    }
}
