import Foundation
import PatchbayCore

/// Pingdom maintenance windows (`kind: pingdom`, API 3.1): one window per maintenance, created by
/// its first event, moved with PUT when the window changes, deleted when the maintenance is
/// cancelled. Times are UNIX seconds.
public struct PingdomTarget: DeliveryTarget {
    public static let kind = "pingdom"
    public static let defaultBaseURL = URL(string: "https://api.pingdom.com/api/3.1")!

    public let name: String
    public let token: Secret
    public let baseURL: URL
    public var kind: String { Self.kind }
    public var secrets: [Secret] { [token] }

    public init(name: String, token: Secret, baseURL: URL = defaultBaseURL) {
        self.name = name
        self.token = token
        self.baseURL = baseURL
    }

    /// Reads `targets.<name>`: `{kind: pingdom, token: ..., baseURL: ...}`.
    public init?(name: String, section: ConfigSection) {
        section.allowOnly(["kind", "token", "baseURL"])
        let token = section.secret("token", minimumLength: 8)
        let baseURL = section.url("baseURL") ?? Self.defaultBaseURL
        guard let token else { return nil }
        self.init(name: name, token: token, baseURL: baseURL)
    }

    var maintenanceURL: String {
        baseURL.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/maintenance"
    }

    struct Window: Encodable {
        var description: String?
        var from: Int64
        var to: Int64
        var uptimeids: String?
    }

    public func plan(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> DeliveryStep {
        let from = Int64(event.window.start.timeIntervalSince1970)
        let to = Int64(event.window.end.timeIntervalSince1970)
        guard let state = context.followUp, let windowID = state.objectID, state.status != "deleted" else {
            if context.followUp?.status == "deleted" { return .skip(reason: "the maintenance window was deleted") }
            if event.type == .cancelled { return .skip(reason: "no window was created for this maintenance, so there is nothing to delete") }
            if event.window.end <= context.now {
                return .skip(reason: "the window ended at \(Timestamp.rfc3339(event.window.end)); Pingdom takes future windows only")
            }
            let window = Window(description: description(event), from: max(from, Int64(context.now.timeIntervalSince1970) + 1),
                                to: to, uptimeids: context.resources.isEmpty ? nil : context.resources.joined(separator: ","))
            return .send(request("POST", url: maintenanceURL, body: try JSONEncoder.encodePayload(window, kind: "Pingdom")))
        }
        if event.type == .cancelled {
            if let start = state.windowStart, start <= context.now {
                // Pingdom refuses to delete a window that has begun; retrying would never succeed.
                return .refuse(reason: "window_already_started: Pingdom deletes only future windows; window \(windowID) began at \(Timestamp.rfc3339(start))")
            }
            return .send(request("DELETE", url: "\(maintenanceURL)/\(windowID)", body: Data()))
        }
        guard state.windowStart != event.window.start || state.windowEnd != event.window.end else {
            return .skip(reason: "the maintenance window already covers this event")
        }
        let window = Window(description: nil, from: from, to: to, uptimeids: nil)
        return .send(request("PUT", url: "\(maintenanceURL)/\(windowID)", body: try JSONEncoder.encodePayload(window, kind: "Pingdom")))
    }

    private func description(_ event: PatchEvent) -> String {
        let id = event.window.id.map { " (\($0))" } ?? ""
        return "Scheduled Maintenance for \(event.systemName)\(id)"
    }

    private func request(_ method: String, url: String, body: Data) -> OutboundRequest {
        var headers = [HTTPHeader("Authorization", "Bearer \(token.reveal())", isSecret: true)]
        if !body.isEmpty { headers.append(HTTPHeader("Content-Type", "application/json")) }
        return OutboundRequest(method: method, url: Secret(url), displayURL: url, headers: headers, body: body)
    }

    public func followUp(after response: TransportResponse, event: PatchEvent, context: RenderContext) -> FollowUpState? {
        guard case .send(let request)? = try? plan(event, context: context) else { return nil }
        var state = context.followUp ?? FollowUpState()
        switch request.method {
        case "DELETE":
            state.status = "deleted"
        case "POST":
            let returned = try? JSONDecoder().decode(JSONValue.self, from: response.body)
            if case .number(let id)? = returned?["maintenance"]?["id"] { state.objectID = String(Int64(id)) }
            state.status = "scheduled"
            fallthrough
        default:
            state.windowStart = event.window.start
            state.windowEnd = event.window.end
        }
        return state
    }
}
