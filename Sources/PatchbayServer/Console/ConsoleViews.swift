import Foundation
import PatchbayCore
import PatchbayTargets

/// What the console's templates show, built from the same store views as the admin API, and
/// the SVG it draws on the server (a progress bar, a timeline): no chart library, no script.
enum ConsoleViews {
    static func maintenanceRow(_ summary: MaintenanceSummary, detail: MaintenanceDetail?, kinds: [String: String]) -> [String: Any] {
        let zone = TimeZone(identifier: summary.displayTimeZone) ?? TimeZone(identifier: "UTC")!
        let utc = TimeZone(identifier: "UTC")!
        let count = { (stage: String) in summary.instances[stage] ?? 0 }
        let total = summary.instances.values.reduce(0, +)
        let (completed, failed) = (count("completed"), count("failed"))
        let running = count("started")
        let text = total == 0 ? "no server has reported" : "\(completed) of \(total) completed, \(failed) failed, \(running) running"
        var row: [String: Any] = [
            "id": summary.id, "system": "\(summary.app) - \(summary.environment)", "windowKey": summary.windowKey,
            "windowLocal":
                "\(Timestamp.rfc3339(summary.window.start, in: zone)) – \(Timestamp.rfc3339(summary.window.end, in: zone)) (\(zone.identifier))",
            "windowUTC": "\(Timestamp.rfc3339(summary.window.start, in: utc)) – \(Timestamp.rfc3339(summary.window.end, in: utc))",
            "progress": progress(completed: completed, failed: failed, running: running, total: total, label: text),
            "progressText": text,
        ]
        if let dead = summary.deliveries["dead"], dead > 0 { row["dead"] = dead }
        if summary.status == .cancelled { row["cancelled"] = true }
        let notices = summary.notices.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        if !notices.isEmpty { row["notices"] = notices }
        if let detail {
            var targets: [[String: Any]] = []
            for object in detail.vendorObjects where !DeliveryLane(storedName: object.target).isSummary {
                var entry: [String: Any] = ["name": objectLabel(object.target), "state": object.status ?? "created"]
                if let link = object.link { entry["link"] = link }
                targets.append(entry)
            }
            // Chat and other per-event targets: how many messages went out, how many wait or died
            // (counted by the store, every delivery, not only the page the detail holds).
            let known = Set(detail.vendorObjects.map(\.target).filter { !DeliveryLane(storedName: $0).isSummary })
            for (name, states) in detail.deliveriesByTarget.sorted(by: { $0.key < $1.key }) where !known.contains(name) {
                let sent = states["delivered"] ?? 0
                let dead = states["dead"] ?? 0
                targets.append(["name": name, "state": "\(sent) sent" + (dead > 0 ? ", \(dead) dead" : "")])
            }
            row["targets"] = targets
        }
        return row
    }

    /// A vendor object's target as people read it: a live lane's is the target's live message.
    static func objectLabel(_ storedLane: String) -> String {
        let lane = DeliveryLane(storedName: storedLane)
        return lane.isLive ? "\(lane.target) · live message" : storedLane
    }

    static func deliveryRow(_ summary: DeliverySummary) -> [String: Any] {
        var row: [String: Any] = [
            "id": summary.id, "target": summary.target, "eventType": summary.eventType, "app": summary.app, "environment": summary.environment,
            "state": summary.state, "attempts": summary.attempts, "updated": Timestamp.rfc3339(summary.updatedAt),
        ]
        if let reason = summary.lastReason { row["reason"] = reason }
        row["sender"] = summary.sender ?? "patchbay"
        return row
    }

    /// A bar of the maintenance's servers: completed (green), failed (red), running (amber), the
    /// rest grey. Widths are SVG attributes, which the Content-Security-Policy allows.
    static func progress(completed: Int, failed: Int, running: Int, total: Int, label: String) -> String {
        let width = 240.0
        var x = 0.0
        var parts = ""
        for (count, colour) in [(completed, "#2eb67d"), (failed, "#d92b5a"), (running, "#d9a21b")] where count > 0 && total > 0 {
            let w = width * Double(count) / Double(total)
            parts += "<rect x=\"\(format(x))\" y=\"0\" width=\"\(format(w))\" height=\"14\" fill=\"\(colour)\"/>"
            x += w
        }
        return "<svg class=\"progress\" viewBox=\"0 0 240 14\" role=\"img\" aria-label=\"\(escape(label))\"><title>\(escape(label))</title>"
            + "<rect x=\"0\" y=\"0\" width=\"240\" height=\"14\" fill=\"#e4e4e8\"/>\(parts)</svg>"
    }

    /// The maintenance on one time axis: its window, planned notices (triangles), server reports
    /// and deliveries (dots, coloured by state).
    static func timeline(_ detail: MaintenanceDetail, now: Date) -> String {
        let window = detail.summary.window
        var times = [window.start, window.end, detail.summary.createdAt, now]
        times += detail.notices.map(\.dueAt) + detail.deliveries.map(\.updatedAt) + detail.instances.map(\.updatedAt)
        let earliest = times.min() ?? now
        let latest = times.max() ?? now
        let span = max(latest.timeIntervalSince(earliest), 60)
        let (left, width) = (20.0, 760.0)
        func x(_ date: Date) -> Double { left + width * date.timeIntervalSince(earliest) / span }
        var svg =
            "<svg class=\"timeline\" viewBox=\"0 0 800 150\" role=\"img\" aria-labelledby=\"timeline-title\">"
            + "<title id=\"timeline-title\">Window, planned notices, server reports and deliveries over time</title>"
        svg +=
            "<rect x=\"\(format(x(window.start)))\" y=\"10\" width=\"\(format(max(2, x(window.end) - x(window.start))))\" height=\"130\" fill=\"#dbe9ff\"/>"
        svg += "<text x=\"\(format(x(window.start) + 3))\" y=\"24\" font-size=\"11\" fill=\"#1d1d1f\">window</text>"
        svg += "<line x1=\"\(format(x(now)))\" y1=\"5\" x2=\"\(format(x(now)))\" y2=\"145\" stroke=\"#5f6368\" stroke-dasharray=\"4 3\"/>"
        svg += "<text x=\"\(format(x(now) + 3))\" y=\"145\" font-size=\"10\" fill=\"#5f6368\">now</text>"
        for notice in detail.notices {
            let cx = x(notice.dueAt)
            svg +=
                "<path d=\"M\(format(cx)) 40 l6 10 h-12 z\" fill=\"#7b61ff\"><title>\(escape("\(notice.label) \(notice.state.rawValue) at \(Timestamp.rfc3339(notice.dueAt))"))</title></path>"
        }
        for instance in detail.instances {
            svg +=
                "<circle cx=\"\(format(x(instance.updatedAt)))\" cy=\"75\" r=\"4\" fill=\"#1d1d1f\"><title>\(escape("\(instance.name ?? instance.id) \(instance.stage)"))</title></circle>"
        }
        for delivery in detail.deliveries {
            let colour =
                switch delivery.state {
                case "delivered": "#2eb67d"
                case "dead": "#d92b5a"
                default: "#d9a21b"
                }
            svg +=
                "<circle cx=\"\(format(x(delivery.updatedAt)))\" cy=\"110\" r=\"4\" fill=\"\(colour)\"><title>\(escape("\(delivery.target) \(delivery.eventType) \(delivery.state)"))</title></circle>"
        }
        svg += "<text x=\"2\" y=\"79\" font-size=\"10\" fill=\"#5f6368\">S</text><text x=\"2\" y=\"114\" font-size=\"10\" fill=\"#5f6368\">D</text>"
        return svg + "</svg>"
    }

    static func pacing(_ policy: PacingPolicy?) -> String {
        guard let policy else { return "—" }
        return String(format: "%g/s, burst %d", policy.rate, policy.burst)
    }

    /// The event a target's test message renders: a completed server of a demo maintenance.
    static func sampleEvent(now: Date) -> PatchEvent {
        let start = now.addingTimeInterval(-1800)
        return PatchEvent(
            type: .completed, app: "Patchbay", environment: "Console test", instance: Instance(id: "i-test", name: "test-server"),
            window: MaintenanceWindow(id: "console-test", start: start, end: now.addingTimeInterval(1800), timezone: "UTC"),
            packages: ["example-package-1.0"], occurredAt: now)
    }

    static func format(_ value: Double) -> String { String(format: "%.1f", value) }

    static func escape(_ text: String) -> String { TemplateEscaping.html.escape(text) }
}
