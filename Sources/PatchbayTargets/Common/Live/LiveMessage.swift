import Foundation
import PatchbayCore

/// What a live lane's delivery does (`chat: {mode: live}`): its role, and whether a later
/// delivery of the lane is already queued (a reply then only replies: the later one edits).
public struct LiveSend: Sendable, Hashable {
    public var role: LiveRole
    public var laterQueued: Bool

    public init(role: LiveRole, laterQueued: Bool = false) {
        self.role = role
        self.laterQueued = laterQueued
    }
}

/// The one message per maintenance that stays current: counts by stage, a progress bar, the
/// failed and late servers by name, the window in the route's zone and UTC, the links other
/// targets left (a Statuspage incident), and the maintenance's state. Counted from the
/// maintenance as the store holds it when the edit is sent, so whichever edit goes last shows
/// the latest counts (a replay too); the window and a cancellation are the delivery's event's.
public struct LiveMessage: Sendable {
    public enum State: String, Sendable {
        case scheduled
        case inProgress = "in progress"
        case overrun = "running late"
        case completed
        case completedWithFailures = "completed with failures"
        case cancelled

        var color: String {
            switch self {
            case .scheduled, .inProgress: MessageText.color(for: .started)
            case .overrun: MessageText.overrunColor
            case .completed: MessageText.color(for: .completed)
            case .completedWithFailures: MessageText.color(for: .failed)
            case .cancelled: MessageText.color(for: .cancelled)
            }
        }
    }

    public var event: PatchEvent
    /// Servers that reported anything.
    public var total: Int
    public var scheduled: Int
    public var started: Int
    public var completed: Int
    public var failed: Int
    public var cancelled: Int
    public var failedNames: [String]
    /// Servers with no outcome once the window has ended (and those an overrun notice names).
    public var lateNames: [String]
    /// Links other targets of the maintenance left, by target name.
    public var links: [(target: String, link: String)]
    public var state: State

    public init(event: PatchEvent, context: RenderContext) {
        self.event = event
        let snapshot = context.maintenance
        total = snapshot.instanceCount
        scheduled = snapshot.count(.scheduled) + snapshot.count(.reminder)
        started = snapshot.count(.started)
        completed = snapshot.completedCount
        failed = snapshot.failedCount
        cancelled = snapshot.count(.cancelled)
        failedNames = MessageText.names(snapshot.failed, count: failed)
        let windowOver = context.now >= event.window.end
        lateNames = Self.late(snapshot: snapshot, event: event, windowOver: windowOver)
        links = snapshot.links.filter { !DeliveryLane(storedName: $0.key).isLive && !DeliveryLane(storedName: $0.key).isSummary }
            .filter { Self.isPlainLink($0.value) }
            .sorted { $0.key < $1.key }.map { (target: $0.key, link: $0.value) }
        let unfinished = snapshot.unfinishedCount
        if (event.instance == nil && event.type == .cancelled) || (total > 0 && cancelled == total) {
            state = .cancelled
        } else if total > 0 && unfinished == 0 && (completed + failed) > 0 {
            state = failed > 0 ? .completedWithFailures : .completed
        } else if event.notice == .overrun || (windowOver && unfinished > 0 && started > 0) {
            state = .overrun
        } else if started + completed + failed > 0 {
            state = .inProgress
        } else {
            state = .scheduled
        }
    }

    /// Servers that reported an outcome.
    public var finished: Int { completed + failed + cancelled }

    /// The servers with no outcome once the window is over, and those an overrun notice names,
    /// each once, then "and N more".
    static func late(snapshot: MaintenanceSnapshot, event: PatchEvent, windowOver: Bool) -> [String] {
        var names = windowOver ? snapshot.unfinished.map { $0.instance.name ?? $0.instance.id } : []
        var count = windowOver ? snapshot.unfinishedCount : 0
        if case .array(let overdue)? = event.details["overdue"] {
            for name in overdue.compactMap(\.stringValue) where !names.contains(name) {
                names.append(name)
                count = max(count, names.count)
            }
        }
        let shown = Array(names.prefix(MessageText.maxNamesListed))
        return count > shown.count ? shown + ["and \(count - shown.count) more"] : shown
    }

    /// A link shown as it is: only URL characters (no markup, no spaces), http(s), bounded. A
    /// vendor's answer is outside data; anything else is left out rather than escaped into a
    /// link that no longer works.
    static func isPlainLink(_ link: String) -> Bool {
        guard link.count <= 512, link.hasPrefix("https://") || link.hasPrefix("http://") else { return false }
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:/?#@!$&'()+,;=._~%-")
        return link.allSatisfy { allowed.contains($0) }
    }

    /// "28 of 30 servers completed, 2 failed": the sentence people read first.
    public func summary(markup: Markup, zone: TimeZone) -> String {
        let system = markup.emphasize(markup.escape(event.systemName))
        switch state {
        case .cancelled:
            return "Patching of \(system) has been cancelled."
        case .scheduled where total == 0:
            return "Patching of \(system) is scheduled for \(MessageText.window(event.window, in: zone))."
        default:
            var parts = ["\(completed) of \(total) \(total == 1 ? "server" : "servers") completed"]
            if failed > 0 { parts.append("\(failed) failed") }
            if started > 0 { parts.append("\(started) in progress") }
            if scheduled > 0 { parts.append("\(scheduled) not started") }
            if cancelled > 0 { parts.append("\(cancelled) cancelled") }
            return parts.joined(separator: ", ") + "."
        }
    }

    /// The message in the chat targets' parts.
    public func content(zone: TimeZone, markup: Markup, budget: Int) -> MessageContent {
        let e = markup.escape
        var text = summary(markup: markup, zone: zone)
        if total > 0 && state != .cancelled { text += "\n" + ProgressBar.text(done: finished, of: total) }
        var facts: [(title: String, value: String)] = [("Window", MessageText.window(event.window, in: zone))]
        if total > 0 {
            let stages = [
                ("not started", scheduled), ("in progress", started), ("completed", completed), ("failed", failed), ("cancelled", cancelled),
            ]
            facts.append(("By Stage", stages.filter { $0.1 > 0 }.map { "\($0.0) \($0.1)" }.joined(separator: " · ")))
        }
        if !failedNames.isEmpty { facts.append(("Failed", MessageText.packageList(failedNames, budget: budget, separator: ", ", escape: e))) }
        if !lateNames.isEmpty { facts.append(("Late", MessageText.packageList(lateNames, budget: budget, separator: ", ", escape: e))) }
        if !links.isEmpty { facts.append(("Links", links.map { "\(e($0.target)): \(e($0.link))" }.joined(separator: "\n"))) }
        facts.append(("State", state.rawValue))
        let title = "Patching \(e(event.systemName))"
        var fallback = "\(title): \(completed) of \(total) completed"
        if failed > 0 { fallback += ", \(failed) failed" }
        if state == .cancelled { fallback = "\(title): cancelled" }
        if state == .scheduled && total == 0 { fallback = "\(title): scheduled for \(MessageText.window(event.window, in: zone))" }
        return MessageContent(title: title, color: state.color, text: text, fallback: fallback, facts: facts)
    }

    /// What templates see as `live.*`.
    public var templateValues: [String: Any] {
        [
            "total": total, "scheduled": scheduled, "started": started, "completed": completed, "failed": failed, "cancelled": cancelled,
            "finished": finished, "failedNames": failedNames, "lateNames": lateNames, "state": state.rawValue,
            "progress": ProgressBar.text(done: finished, of: total),
        ]
    }
}

/// `█████████████████░░░ 93%`: block characters mean nothing in Slack's or Discord's markup.
public enum ProgressBar {
    public static func text(done: Int, of total: Int, width: Int = 20) -> String {
        guard total > 0 else { return String(repeating: "░", count: width) + " 0%" }
        let fraction = min(max(Double(done) / Double(total), 0), 1)
        let filled = Int((fraction * Double(width)).rounded(.down))
        return String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled) + " \(Int((fraction * 100).rounded(.down)))%"
    }
}
