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
            switch try step() {
            case .send(let request):
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
        let lane = DeliveryPlanner.Lane(summary.target)
        let name = lane.targetName
        guard let target = configuration.targets[name] else { return "target '\(name)' is no longer in the configuration" }
        if summary.eventType == RelayedMessage.eventType { return "a relayed body, passed through to \(name) unchanged and signed" }
        let planner = DeliveryPlanner(routeTemplates: configuration.routeTemplates, store: store)
        let send = DeliveryPlanner.Send(
            event: detail.event, lane: lane, target: target, relayed: false, displayTimeZone: detail.displayTimeZone,
            deliveryID: summary.id, now: now, resources: detail.resources)
        // A maintenance state that cannot be read now still leaves a preview, rendered without it.
        let context: RenderContext
        do { context = try await planner.context(for: send) } catch { context = planner.context(for: send, state: (nil, .empty)) }
        return describe({ () throws(RenderError) in try target.plan(detail.event, context: context) }, redactor: configuration.redactor)
    }

    public static func prettyJSON(_ body: Data) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: body),
            let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { return String(decoding: body, as: UTF8.self) }
        return String(decoding: pretty, as: UTF8.self)
    }
}
