import Foundation
import PatchbayCore

/// The values a template sees, as raw text: the template's content type escapes each one for its
/// channel when it is rendered, so nothing here is escaped. Keys that do not apply (no instance,
/// no previous window) are left out rather than set to nil, which Mustache would print as "nil".
///
/// The README's "Templates" section documents every key; `TemplateValues.vocabulary()` is the
/// fullest context, which `TemplateCheck` uses to catch unknown names.
public enum TemplateValues {
    /// How many package names `packages.first` holds; `packages.more` counts the rest.
    public static let packagesShown = 10

    public static func values(for event: PatchEvent, context: RenderContext) -> [String: Any] {
        let zone = context.displayTimeZone
        var values: [String: Any] = [
            "type": event.type.rawValue,
            "stage": String(event.type.rawValue.dropFirst("patch.".count)),
            "title": MessageText.title(for: event),
            "color": MessageText.color(for: event),
            "app": event.app,
            "environment": event.environment,
            "system": event.systemName,
            "window": window(event.window, zone: zone),
            "packages": packages(event.packages),
            "tags": event.tags,
            "tagList": event.tags.sorted { $0.key < $1.key }.map { ["key": $0.key, "value": $0.value] },
            "maintenance": maintenance(context.maintenance, event: event),
            "links": context.maintenance.links,
            "deliveryId": context.deliveryID,
        ]
        if let instance = event.instance {
            var entry = ["id": instance.id, "displayName": instance.displayName]
            entry["name"] = instance.name ?? instance.id
            values["instance"] = entry
        }
        if let previous = event.previousWindow { values["previousWindow"] = window(previous, zone: zone) }
        if let notice = event.notice { values["notice"] = notice.rawValue }
        if let reason = MessageText.failureReason(event) { values["reason"] = reason }
        if let occurred = event.occurredAt { values["occurredAt"] = Timestamp.rfc3339(occurred) }
        let overdue = MessageText.overdueNames(event)
        if !overdue.isEmpty { values["overdue"] = overdue }
        if context.isSummary || context.live != nil {
            values["digest"] = MaintenanceDigest(event: event, context: context).templateValues
        }
        if context.live != nil { values["live"] = LiveMessage(event: event, context: context).templateValues }
        return values
    }

    static func window(_ window: MaintenanceWindow, zone: TimeZone) -> [String: Any] {
        [
            "text": MessageText.window(window, in: zone),
            "start": Timestamp.rfc3339(window.start),
            "end": Timestamp.rfc3339(window.end),
            "startLocal": MessageText.instant(window.start, in: zone),
            "endLocal": MessageText.instant(window.end, in: zone),
            "zone": zone.identifier,
            "id": window.id ?? Timestamp.rfc3339(window.start),
        ]
    }

    /// `packages.first` and `packages.more` make "first N and M more" without logic in the template:
    /// `{{#packages.first}}{{.}} {{/packages.first}}{{#packages.hasMore}}and {{packages.more}} more{{/packages.hasMore}}`.
    static func packages(_ list: [String]) -> [String: Any] {
        let shown = Array(list.prefix(packagesShown))
        var summary = shown.joined(separator: ", ")
        if list.count > shown.count { summary += " and \(list.count - shown.count) more" }
        return [
            "count": list.count, "all": list, "first": shown, "more": list.count - shown.count,
            "hasMore": list.count > shown.count, "any": !list.isEmpty, "summary": summary,
        ]
    }

    /// Counts are exact; a name list holds the first servers of its stage (at most
    /// `MessageText.maxNamesListed`, then "and N more").
    static func maintenance(_ snapshot: MaintenanceSnapshot, event: PatchEvent) -> [String: Any] {
        let started = snapshot.instances.filter { $0.lastType == .started }
        return [
            "id": event.window.id ?? Timestamp.rfc3339(event.window.start),
            "instances": snapshot.instanceCount,
            "started": snapshot.count(.started),
            "completed": snapshot.completedCount,
            "failed": snapshot.failedCount,
            "unfinished": snapshot.unfinishedCount,
            "startedNames": MessageText.names(started, count: snapshot.count(.started)),
            "completedNames": MessageText.names(snapshot.completed, count: snapshot.completedCount),
            "failedNames": MessageText.names(snapshot.failed, count: snapshot.failedCount),
            "unfinishedNames": MessageText.names(snapshot.unfinished, count: snapshot.unfinishedCount),
            "anyFailed": snapshot.failedCount > 0,
            "allFinished": snapshot.instanceCount > 0 && snapshot.unfinishedCount == 0,
        ]
    }

    /// The fullest context there is: every optional key present, every list non-empty. Names
    /// a template may use are exactly the names this holds.
    public static func vocabulary() -> [String: Any] {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let window = MaintenanceWindow(id: "w", start: start, end: start.addingTimeInterval(3600), timezone: "UTC")
        let event = PatchEvent(
            type: .started, app: "a", environment: "e", instance: Instance(id: "i", name: "n"), window: window,
            packages: Array(repeating: "p", count: packagesShown + 1), occurredAt: start, tags: ["k": "v"],
            details: ["reason": .string("r"), "overdue": .array([.string("o")])], notice: .overrun, previousWindow: window
        )
        let reports = EventType.allCases.map { MaintenanceSnapshot.InstanceReport(instance: Instance(id: $0.rawValue), lastType: $0) }
        var snapshot = MaintenanceSnapshot(instances: reports)
        snapshot.links = ["any": "https://example.invalid/"]
        let context = RenderContext(
            displayTimeZone: TimeZone(identifier: "UTC")!, deliveryID: "d", now: start, maintenance: snapshot, isSummary: true,
            live: LiveSend(role: .reply))
        return values(for: event, context: context)
    }
}
