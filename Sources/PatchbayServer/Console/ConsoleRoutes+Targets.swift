import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import PatchbayCore
import PatchbayTargets

/// The targets page and its test message.
extension ConsoleRoutes {
    /// The last hour per target, counted by the store (review F3: it listed up to 10,000 rows
    /// with their payloads on every refresh).
    func targetsPage(_ session: ConsoleSession) async throws -> Response {
        let now = clock()
        let since = now.addingTimeInterval(-3600)
        let counts = try await store.countsByTarget(since: since)
        var rows: [[String: Any]] = []
        for name in configuration.targetNames {
            guard let target = configuration.targets[name] else { continue }
            let lanes = DeliveryLane.storedNames(of: name)
            let states = lanes.compactMap { counts[$0] }.reduce(into: [String: Int]()) { $0.merge($1, uniquingKeysWith: +) }
            let delivered = states[DeliveryState.delivered.rawValue] ?? 0
            let dead = states[DeliveryState.dead.rawValue] ?? 0
            let superseded = states[DeliveryState.superseded.rawValue] ?? 0
            let expired = states[DeliveryState.expired.rawValue] ?? 0
            let waiting = (states[DeliveryState.pending.rawValue] ?? 0) + (states[DeliveryState.inFlight.rawValue] ?? 0)
            let finished = delivered + dead
            var row: [String: Any] = [
                "name": name, "kind": target.kind, "testable": TargetRegistry.traits(of: target.kind)?.keepsMaintenanceObject != true,
                "rate": finished == 0 ? "no finished deliveries" : String(format: "%.0f%% delivered", 100 * Double(delivered) / Double(finished)),
                "counts": "\(delivered) delivered, \(dead) dead, \(waiting) waiting"
                    + (expired > 0 ? ", \(expired) expired" : "") + (superseded > 0 ? ", \(superseded) live edits superseded" : ""),
                "pacing": ConsoleViews.pacing(configuration.policies[name]?.pacing),
                "paused": metrics.pausedUntil(name).flatMap { $0 > now ? Timestamp.rfc3339($0) : nil } ?? "—",
            ]
            if dead + waiting + expired > 0, let failing = try await store.lastFailure(targets: lanes, since: since) {
                row["lastError"] = failing.lastReason
                row["lastErrorAt"] = Timestamp.rfc3339(failing.updatedAt)
            }
            rows.append(row)
        }
        return render("targets", title: "Targets", values: ["targets": rows], session: session, refresh: 30)
    }

    /// A sample event rendered for the target; after the confirmation, sent straight through the
    /// transport (not queued), with the answer shown.
    func testMessage(_ session: ConsoleSession, target name: String, confirmed: Bool, source: String) async throws -> Response {
        guard let target = configuration.targets[name] else {
            return message(session, heading: "Not found", text: "No target \(name).", status: .notFound)
        }
        // A sample sent to Statuspage or Pingdom would open a real public incident or window
        // that nothing closes: test messages are for message kinds only.
        if TargetRegistry.traits(of: target.kind)?.keepsMaintenanceObject == true {
            return message(
                session, heading: "No test message",
                text:
                    "A \(target.kind) target keeps one vendor object per maintenance; a test would create a real one. Test it with a real maintenance in a staging page instead.",
                status: .conflict)
        }
        let event = ConsoleViews.sampleEvent(now: clock())
        let planner = DeliveryPlanner(routeTemplates: configuration.routeTemplates, routes: configuration.routes)
        let send = DeliveryPlanner.Send(
            event: event, lane: DeliveryLane(target: name), target: target, displayTimeZone: "UTC",
            deliveryID: "dlv_console_test_" + ConsoleKeys.randomID().prefix(8), now: clock())
        let context = planner.context(for: send, state: (nil, .empty))
        let rendered = RequestPreview.describe(
            { () throws(RenderError) in try planner.step(for: send, context: context) }, redactor: configuration.redactor)
        var values: [String: Any] = ["name": name, "eventType": event.type.rawValue, "system": event.systemName, "request": rendered]
        if confirmed {
            guard let transport else {
                return message(session, heading: "Cannot send", text: "This server has no outbound transport.", status: .serviceUnavailable)
            }
            let step: DeliveryStep
            do { step = try planner.step(for: send, context: context) } catch {
                return message(
                    session, heading: "Cannot render", text: configuration.redactor.redact(error.description), status: .unprocessableContent)
            }
            // A step of several links sends its first (for a silence, the lookup): enough to try
            // the address and the credentials without changing anything at the vendor.
            guard let request = step.firstRequest else {
                values["result"] = "Nothing to send for a sample event to this target."
                return render("test-preview", title: "Test message", values: values, session: session)
            }
            let result = await transport.send(request, timeouts: configuration.delivery.timeouts)
            values["result"] =
                switch result {
                case .success(let response): "Sent: the vendor answered \(response.status) (\(target.classify(result, for: request).label))."
                case .failure(let failure): "Not sent: \(configuration.redactor.redact(failure.message))"
                }
            let delivered = target.classify(result, for: request).label == "delivered"
            await audit.record(
                session.actor, "test-send", delivered ? .ok : .failed, source: source,
                detail: "target \(name) (\(target.kind)): \(values["result"] as? String ?? "")")
        }
        return render("test-preview", title: "Test message", values: values, session: session)
    }
}
