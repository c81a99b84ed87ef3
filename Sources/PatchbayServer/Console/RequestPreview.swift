import Foundation
import PatchbayCore
import PatchbayTargets

/// What a stored delivery would send now, with the current configuration: the CLI's
/// `deliveries show`, `render` and the console's delivery page all read it from here.
public enum RequestPreview {
    /// The request as text (secret headers and every configured secret redacted), or why nothing
    /// would be sent.
    public static func describe(_ step: () throws(RenderError) -> DeliveryStep, redactor: Redactor) -> String {
        do {
            let step = try step()
            switch step {
            case .send(let request), .then(let request, _):
                var lines = ["\(request.method) \(request.displayURL)"]
                if let mail = request.mail {
                    lines.append("MAIL FROM: <\(mail.from)>  RCPT TO: \(mail.recipients.map { "<\($0)>" }.joined(separator: ", "))")
                }
                for header in request.headers {
                    lines.append("\(header.name): \(header.isSecret ? Redactor.placeholder : redactor.redact(header.value))")
                }
                if !request.body.isEmpty {
                    lines.append("")
                    lines.append(redactor.redact(prettyJSON(request.body)))
                }
                if case .then = step {
                    lines.append("")
                    lines.append("then, depending on the answer: the request it leads to (a create, an update, one per vendor object)")
                }
                return lines.joined(separator: "\n")
            case .skip(let reason): return "nothing to send: \(reason)"
            case .refuse(let reason): return "would be refused: \(reason)"
            }
        } catch {
            return "cannot render: \(redactor.redact(error.description))"
        }
    }

    /// The stored delivery `detail` rendered by its target as configured now, with the
    /// maintenance state the dispatcher would read.
    public static func describe(
        _ detail: DeliveryDetail, configuration: PatchbayConfiguration, store: any DispatchStore,
        now: Date = Date()
    ) async -> String {
        let summary = detail.summary
        let lane = DeliveryLane(storedName: summary.target)
        let name = lane.target
        guard let target = configuration.targets[name] else { return "target '\(name)' is no longer in the configuration" }
        if summary.eventType == RelayedMessage.eventType { return "a relayed body, passed through to \(name) unchanged and signed" }
        let planner = DeliveryPlanner(routeTemplates: configuration.routeTemplates, routes: configuration.routes)
        let send = DeliveryPlanner.Send(
            event: detail.event, lane: lane, target: target, displayTimeZone: detail.displayTimeZone,
            deliveryID: summary.id, now: now, resources: detail.resources)
        // A maintenance state that cannot be read now still leaves a preview, rendered without it.
        let context: RenderContext
        do { context = try await planner.context(for: send, reading: store) } catch { context = planner.context(for: send, state: (nil, .empty)) }
        return describe({ () throws(RenderError) in try planner.step(for: send, context: context) }, redactor: configuration.redactor)
    }

    /// What `plan` of `event` would send, rendered as the dispatcher would with no maintenance
    /// behind it but the event's own server: what `patchbay render` prints, with nothing read
    /// and nothing sent.
    public static func describe(
        _ plan: DeliveryPlan, of event: PatchEvent, configuration: PatchbayConfiguration, now: Date = Date()
    ) -> String? {
        guard let target = configuration.targets[plan.target] else { return nil }
        let planner = DeliveryPlanner(routeTemplates: configuration.routeTemplates, routes: configuration.routes)
        let send = DeliveryPlanner.Send(
            event: event, lane: plan.lane, target: target, displayTimeZone: plan.displayTimeZone, deliveryID: "dlv_render", now: now,
            resources: plan.resources)
        // A summary or live message counts the maintenance's servers; here the event's server is
        // the only one known.
        let snapshot =
            plan.lane.isSummary || plan.lane.isLive
            ? event.instance.map { MaintenanceSnapshot(instances: [.init(instance: $0, lastType: event.type, packages: event.packages)]) }
            : nil
        let context = planner.context(for: send, state: (nil, snapshot ?? .empty))
        return describe({ () throws(RenderError) in try planner.step(for: send, context: context) }, redactor: configuration.redactor)
    }

    public static func prettyJSON(_ body: Data) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: body),
            let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { return String(decoding: body, as: UTF8.self) }
        return String(decoding: pretty, as: UTF8.self)
    }
}
