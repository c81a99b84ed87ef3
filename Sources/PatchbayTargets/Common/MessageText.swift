import Foundation
import PatchbayCore

/// A chat message before a vendor's layout: both Slack and Teams show these parts.
public struct MessageContent: Sendable, Equatable {
    public var title: String
    /// Hex without `#`.
    public var color: String
    /// One sentence with the vendor's emphasis and escaping applied.
    public var text: String
    /// Plain-text one-liner for notifications (escaped for the vendor, never emphasized).
    public var fallback: String
    /// (title, value) pairs: App Name, Instance Name, Window, Packages Updated.
    public var facts: [(title: String, value: String)]
    /// Whether the Instance Name and App Name facts fit side by side.
    public var shortFactTitles: Set<String> { ["App Name", "Instance Name"] }

    /// The sentence and every fact cut to `limit` characters (with "…"): the last resort of a
    /// renderer whose message is still over its vendor's size with the package list cut short
    /// (a template's long output), so the message still goes, shortened, instead of being refused.
    public func cut(to limit: Int) -> MessageContent {
        var content = self
        content.text = MessageText.cut(text, to: limit)
        content.fallback = MessageText.cut(fallback, to: limit)
        content.facts = facts.map { ($0.title, MessageText.cut($0.value, to: limit)) }
        return content
    }

    public static func == (lhs: MessageContent, rhs: MessageContent) -> Bool {
        lhs.title == rhs.title && lhs.color == rhs.color && lhs.text == rhs.text && lhs.fallback == rhs.fallback
            && lhs.facts.map(\.title) == rhs.facts.map(\.title) && lhs.facts.map(\.value) == rhs.facts.map(\.value)
    }
}

/// How a vendor marks up user text in a message.
public struct Markup: Sendable {
    /// Makes any user-supplied text inert.
    public var escape: @Sendable (String) -> String
    /// Our own emphasis around an already-escaped name.
    public var emphasize: @Sendable (String) -> String

    public init(escape: @escaping @Sendable (String) -> String, emphasize: @escaping @Sendable (String) -> String) {
        self.escape = escape
        self.emphasize = emphasize
    }
}

/// Words and times shared by the chat targets (Slack, Teams), so both say the same thing.
public enum MessageText {
    /// The message a chat target sends for a delivery: the maintenance's summary when the
    /// delivery is one, else the event's own message.
    public static func content(for event: PatchEvent, context: RenderContext, markup: Markup, packageBudget: Int) -> MessageContent {
        if context.isSummary {
            return MaintenanceDigest(event: event, context: context).content(
                for: event, zone: context.displayTimeZone, markup: markup, budget: packageBudget)
        }
        return content(for: event, zone: context.displayTimeZone, markup: markup, packageBudget: packageBudget)
    }

    /// The message for `event`, with times in `zone` and UTC. `packageBudget` caps the characters
    /// of the package list; longer lists end with "… and N more".
    public static func content(for event: PatchEvent, zone: TimeZone, markup: Markup, packageBudget: Int) -> MessageContent {
        let e = markup.escape
        let title = title(for: event)
        let system = event.systemName
        let subject: String
        if let instance = event.instance {
            subject = "\(markup.emphasize(e(instance.name ?? instance.id))) (\(e(system)))"
        } else {
            subject = markup.emphasize(e(system))
        }
        let windowText = window(event.window, in: zone)
        let text: String
        switch event.type {
        case .scheduled where event.notice == .rescheduled && event.previousWindow != nil:
            text = "Patching of \(subject) has moved from \(window(event.previousWindow!, in: zone)) to \(windowText)."
        case .scheduled:
            text = "Patching of \(subject) is scheduled for \(windowText)."
        case .started where event.notice == .overrun:
            let overdue = overdueNames(event).map(e)
            let who = overdue.isEmpty ? "" : ": \(overdue.joined(separator: ", ")) \(overdue.count == 1 ? "has" : "have") not reported an outcome"
            text = "Patching of \(subject) is running past its window\(who). The window is extended to \(instant(event.window.end, in: zone))."
        case .started where event.notice == .beginning:
            text = "Patching of \(subject) is beginning now."
        case .reminder:
            text = "Reminder: patching of \(subject) starts \(instant(event.window.start, in: zone))."
        case .started:
            text = "Patching of \(subject) has begun."
        case .completed:
            let count = event.packages.count
            text =
                count == 0
                ? "Patching of \(subject) is complete: no packages needed updating."
                : "Patching of \(subject) is complete: \(count) package\(count == 1 ? "" : "s") updated."
        case .failed:
            if let reason = failureReason(event) {
                text = "Patching of \(subject) failed: \(e(reason))"
            } else {
                text = "Patching of \(subject) failed."
            }
        case .cancelled:
            text = "Patching of \(subject) scheduled for \(windowText) has been cancelled."
        }

        var facts: [(title: String, value: String)] = [("App Name", e(system))]
        if let instance = event.instance {
            facts.append(("Instance Name", e(instance.displayName)))
        }
        if event.notice == .overrun, let planned = event.previousWindow {
            facts.append(("Window", window(planned, in: zone)))
            let overdue = overdueNames(event)
            if !overdue.isEmpty { facts.append(("Not Finished", overdue.map(e).joined(separator: ", "))) }
            facts.append(("Extended Until", instant(event.window.end, in: zone)))
        } else if event.notice == .rescheduled, let previous = event.previousWindow {
            facts.append(("Window", windowText))
            facts.append(("Previous Window", window(previous, in: zone)))
        } else {
            facts.append(("Window", windowText))
        }
        if event.type == .completed {
            let list = event.packages.isEmpty ? "None" : packageList(event.packages, budget: packageBudget, escape: e)
            facts.append(("Packages Updated", list))
        }
        let fallbackSubject = event.instance.map { "\(system) / \($0.name ?? $0.id)" } ?? system
        return MessageContent(title: title, color: color(for: event), text: text, fallback: "\(title): \(fallbackSubject)", facts: facts)
    }

    /// The title of a message; notices Patchbay plans itself have their own.
    public static func title(for event: PatchEvent) -> String {
        switch event.notice {
        case .rescheduled? where event.type == .scheduled: "Patching Rescheduled"
        case .overrun? where event.type == .started: "Patching Overrunning"
        default: title(for: event.type)
        }
    }

    public static func color(for event: PatchEvent) -> String {
        event.notice == .overrun ? overrunColor : color(for: event.type)
    }

    /// Orange: still running, but late.
    public static let overrunColor = "E8912D"

    /// The instances an overrun notice names (`details.overdue`).
    public static func overdueNames(_ event: PatchEvent) -> [String] {
        guard case .array(let names)? = event.details["overdue"] else { return [] }
        return listed(names.compactMap(\.stringValue))
    }

    public static func title(for type: EventType) -> String {
        switch type {
        case .scheduled: "Patching Scheduled"
        case .reminder: "Upcoming Patching"
        case .started: "Patching Beginning"
        case .completed: "Patching Complete"
        case .failed: "Patching Failed"
        case .cancelled: "Patching Cancelled"
        }
    }

    /// Hex colour without `#`: amber while pending or running, green when done, red on failure.
    public static func color(for type: EventType) -> String {
        switch type {
        case .scheduled, .reminder, .started: "ECB22E"
        case .completed: "2EB67D"
        case .failed: "E01E5A"
        case .cancelled: "868686"
        }
    }

    /// The failure reason an agent may put in `details.reason` or `details.error`, cut to
    /// `maxReason` characters with a visible "…": a log excerpt pasted as the reason must not make
    /// the failure notice too large for the vendor (review F13), and the first lines say what failed.
    public static func failureReason(_ event: PatchEvent) -> String? {
        for key in ["reason", "error", "message"] {
            if let text = event.details[key]?.stringValue, !text.isEmpty { return cut(text, to: maxReason) }
        }
        return nil
    }

    /// Characters of a failure reason any message carries.
    public static let maxReason = 1000
    /// Servers a message names in one list (failed, not finished); the rest are counted.
    public static let maxNamesListed = 50

    /// `text` cut to `limit` characters, the last one "…" when anything was cut.
    public static func cut(_ text: String, to limit: Int) -> String {
        guard text.count > limit else { return text }
        return String(text.prefix(max(0, limit - 1))) + "…"
    }

    /// The first `maxNamesListed` names, then "and N more".
    public static func listed(_ names: [String]) -> [String] {
        guard names.count > maxNamesListed else { return names }
        return Array(names.prefix(maxNamesListed)) + ["and \(names.count - maxNamesListed) more"]
    }

    /// `Fri 2026-12-04 00:30–00:45 PST (08:30–08:45 UTC)`: the route's zone first, then UTC.
    public static func window(_ window: MaintenanceWindow, in zone: TimeZone) -> String {
        let local = span(window.start, window.end, zone: zone, withWeekday: true)
        if zone.secondsFromGMT(for: window.start) == 0, zone.secondsFromGMT(for: window.end) == 0,
            ["UTC", "GMT", "Etc/UTC", "Etc/GMT"].contains(zone.identifier)
        {
            return local
        }
        let utc = span(window.start, window.end, zone: TimeZone(identifier: "UTC")!, withWeekday: false)
        return "\(local) (\(utc))"
    }

    /// `Fri 2026-12-04 00:30 PST`
    public static func instant(_ date: Date, in zone: TimeZone) -> String {
        formatter("EEE yyyy-MM-dd HH:mm", zone).string(from: date) + " " + abbreviation(zone, at: date)
    }

    static func span(_ start: Date, _ end: Date, zone: TimeZone, withWeekday: Bool) -> String {
        let day = formatter(withWeekday ? "EEE yyyy-MM-dd" : "yyyy-MM-dd", zone)
        let time = formatter("HH:mm", zone)
        let startDay = day.string(from: start)
        let endDay = day.string(from: end)
        let startZone = abbreviation(zone, at: start)
        let endZone = abbreviation(zone, at: end)
        if startDay == endDay, startZone == endZone {
            return "\(startDay) \(time.string(from: start))–\(time.string(from: end)) \(startZone)"
        }
        return "\(startDay) \(time.string(from: start)) \(startZone) – \(endDay) \(time.string(from: end)) \(endZone)"
    }

    /// `PST`, `EDT`, `UTC`; zones without a common English abbreviation get their offset (`UTC+05:30`).
    static func abbreviation(_ zone: TimeZone, at date: Date) -> String {
        if ["UTC", "GMT", "Etc/UTC", "Etc/GMT"].contains(zone.identifier) { return "UTC" }
        let short = formatter("zzz", zone).string(from: date)
        if !short.isEmpty, !short.hasPrefix("GMT"), !short.hasPrefix("UTC"), short.allSatisfy({ $0.isLetter }) {
            return short
        }
        let offset = zone.secondsFromGMT(for: date)
        let sign = offset < 0 ? "-" : "+"
        let minutes = abs(offset) / 60
        return String(format: "UTC%@%02d:%02d", sign, minutes / 60, minutes % 60)
    }

    private static func formatter(_ format: String, _ zone: TimeZone) -> DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.calendar = Calendar(identifier: .gregorian)
        formatter.timeZone = zone
        formatter.dateFormat = format
        return formatter
    }

    /// Keeps a long package list readable and under vendor size limits: the first entries that fit
    /// in `budget` characters, then `… and 143 more`. `total` is how many there are when the list
    /// holds only the first of them (a count), `uncounted` when even that is not known.
    public static func packageList(
        _ packages: [String], budget: Int, separator: String = "\n",
        escape: (String) -> String = { $0 }, total: Int? = nil, uncounted: Bool = false
    ) -> String {
        let total = max(total ?? packages.count, packages.count)
        func rest(_ shown: Int) -> String { uncounted ? "… and more" : "… and \(total - shown) more" }
        var lines: [String] = []
        var used = 0
        for (index, package) in packages.enumerated() {
            let line = escape(package)
            let remaining = total - index - 1
            let tail = remaining > 0 || uncounted ? separator.count + 24 : 0
            if used + line.count + separator.count + tail > budget, index > 0 || line.count > budget {
                lines.append(rest(index))
                return lines.joined(separator: separator)
            }
            lines.append(line)
            used += line.count + separator.count
        }
        if total > packages.count || uncounted { lines.append(rest(packages.count)) }
        return lines.joined(separator: separator)
    }

    /// Servers' names for a list: the named ones (the first of their stage), then "and N more"
    /// when the count says there are more.
    public static func names(_ reports: [MaintenanceSnapshot.InstanceReport], count: Int) -> [String] {
        let shown = reports.prefix(maxNamesListed).map { $0.instance.name ?? $0.instance.id }
        return count > shown.count ? shown + ["and \(count - shown.count) more"] : shown
    }
}
