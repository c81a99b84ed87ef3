import Foundation
import PatchbayCore

/// Pingdom maintenance windows (`kind: pingdom`, API 3.1): one window per maintenance, created by
/// its first event, moved with PUT when the window changes, deleted when the maintenance is
/// cancelled. Times are UNIX seconds.
public struct PingdomTarget: DeliveryTarget, RegisteredTarget {
    public static let kind = "pingdom"
    public static let defaultBaseURL = URL(string: "https://api.pingdom.com/api/3.1")!
    /// Pingdom publishes no fixed rate; its Req-Limit headers say how much is left (see `pause`).
    public static let defaultPolicy = TargetPolicy(pacing: PacingPolicy(rate: 2, burst: 5))
    public static let traits = TargetKindTraits(
        kind: kind,
        routeResource: RouteResourceKey(routeKey: "pingdom", listKey: "checks") { check in
            UInt64(check) == nil ? "expected a numeric Pingdom check id, got '\(check)'" : nil
        }, keepsMaintenanceObject: true)

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
        section.allowOnly(TargetRegistry.commonKeys.union(["token", "baseURL"]))
        let token = section.secret("token", minimumLength: 8)
        let baseURL = section.url("baseURL") ?? Self.defaultBaseURL
        guard let token else { return nil }
        self.init(name: name, token: token, baseURL: baseURL)
    }

    public var pacingKey: String { "pingdom:" + Data(token.reveal().utf8).sha256Hex.prefix(16) }

    /// `Req-Limit-Short: Remaining: 394 Time until reset: 3589`: when nothing remains in either
    /// window, wait until it resets.
    public func pause(after response: TransportResponse) -> Duration? {
        var longest: Duration?
        for name in ["Req-Limit-Short", "Req-Limit-Long"] {
            guard let value = response.header(name), let limit = Self.parseLimit(value), limit.remaining <= 0 else { continue }
            if longest == nil || limit.reset > longest! { longest = limit.reset }
        }
        return longest
    }

    static func parseLimit(_ value: String) -> (remaining: Int, reset: Duration)? {
        let numbers = value.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        guard numbers.count == 2, value.contains("Remaining"), value.contains("reset") else { return nil }
        return (numbers[0], .seconds(numbers[1]))
    }

    var maintenanceURL: String {
        baseURL.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/maintenance"
    }

    struct Window: Encodable {
        var description: String?
        /// Left out of an update once the window has begun: Pingdom takes only a future `from`
        /// ("only future allowed", vendor-specs/pingdom/API_3.1.yaml, PUT /maintenance/{id}).
        var from: Int64?
        var to: Int64
        var uptimeids: String?
    }

    public func plan(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> DeliveryStep {
        let from = Int64(Timestamp.clamped(event.window.start).timeIntervalSince1970)
        let to = Int64(Timestamp.clamped(event.window.end).timeIntervalSince1970)
        let now = Int64(context.now.timeIntervalSince1970)
        let step = MaintenanceWindowLifecycle.step(for: event, followUp: context.followUp)
        switch step {
        case .nothingToEnd:
            return .skip(reason: "no window was created for this maintenance, so there is nothing to delete")
        case .alreadyEnded:
            return .skip(reason: "the maintenance window was deleted")
        case .covered:
            return .skip(reason: "the maintenance window already covers this event")
        case .create:
            if event.window.end <= context.now {
                return .skip(reason: "the window ended at \(Timestamp.rfc3339(event.window.end)); Pingdom takes future windows only")
            }
            let window = Window(
                description: description(event), from: max(from, now + 1),
                to: to, uptimeids: context.resources.isEmpty ? nil : context.resources.joined(separator: ","))
            return .send(request("POST", url: maintenanceURL, body: try JSONEncoder.encodePayload(window, kind: "Pingdom")))
        case .end(let held), .move(let held):
            guard let windowID = held.id else {
                return .refuse(reason: MaintenanceWindowLifecycle.noUsableIDReason(vendor: "Pingdom", object: "window", step: step))
            }
            let windowURL = "\(maintenanceURL)/\(VendorID.pathSegment(windowID))"
            if case .end = step {
                if let start = held.start, held.hasBegun(at: context.now) {
                    // Pingdom refuses to delete a window that has begun; retrying would never succeed.
                    return .refuse(
                        reason: "window_already_started: Pingdom deletes only future windows; window \(windowID) began at \(Timestamp.rfc3339(start))"
                    )
                }
                return .send(request("DELETE", url: windowURL, body: Data()))
            }
            if event.window.end <= context.now {
                return .skip(reason: "the new window ended at \(Timestamp.rfc3339(event.window.end)); Pingdom takes future windows only")
            }
            // A window that has begun keeps its start; only its end moves (an overrun, a reschedule
            // of its end). One that has not begun moves whole, never to a start in the past.
            let window = Window(description: nil, from: held.hasBegun(at: context.now) ? nil : max(from, now + 1), to: to, uptimeids: nil)
            return .send(request("PUT", url: windowURL, body: try JSONEncoder.encodePayload(window, kind: "Pingdom")))
        }
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

    public var usesMaintenanceState: Bool { true }

    public func followUp(after response: TransportResponse, to request: OutboundRequest, event: PatchEvent, context: RenderContext) -> FollowUpState?
    {
        MaintenanceWindowLifecycle.followUp(
            after: request.method, previous: context.followUp, event: event, createdID: Self.windowID(in: response.body))
    }

    /// The id of a created window: a JSON number, kept only when it is a whole number that fits,
    /// never trapping on 1e20 (a crash here would re-send the create after every restart).
    static func windowID(in body: Data) -> String? {
        let returned = try? JSONDecoder().decode(JSONValue.self, from: body)
        guard case .number(let id)? = returned?["maintenance"]?["id"], let whole = Int64(exactly: id), whole > 0 else { return nil }
        return String(whole)
    }
}
