import Foundation
import PatchbayCore

/// PagerDuty (`kind: pagerduty`): one REST API v2 maintenance window per maintenance over the
/// route's services, created by its first event, moved with PUT when the window changes, deleted
/// (or ended, if running) when the maintenance is cancelled [PD1]. With `changeEvents.routingKey`
/// set, each `completed` and `failed` event of a maintenance that already has its window also
/// becomes an Events API v2 change event on the services' timeline [PE1].
///
/// One delivery sends one request, so the window is the main object: a `completed`/`failed`
/// event sends its change event only when the window needs no change (in particular, an event that
/// creates the window sends no change event).
public struct PagerDutyTarget: DeliveryTarget, TemplatedTarget {
    public static let kind = "pagerduty"
    public static let defaultBaseURL = URL(string: "https://api.pagerduty.com")!
    public static let defaultEventsURL = URL(string: "https://events.pagerduty.com")!

    /// 960 requests/min per key with the advice to send serially per token [PD4]: 4/s with no
    /// burst stays well inside it even when several Patchbay targets share one key (they share
    /// the pacing key too). Change events share this budget; see `pacingKey`.
    public static let defaultPolicy = TargetPolicy(pacing: PacingPolicy(rate: 4, burst: 1))

    public static let traits = TargetKindTraits(
        kind: kind,
        routeResource: RouteResourceKey(routeKey: "pagerduty", listKey: "services", listRequired: true) { service in
            PagerDutyTarget.isServiceID(service) ? nil : "expected a PagerDuty service id like PIJ90N7, got '\(service)'"
        },
        keepsMaintenanceObject: true
    )

    /// `ratelimit-reset` values outside this are not believed (0 would mean no pause at all; the
    /// dispatcher caps long pauses at delivery.maxPause anyway).
    static let resetRange = 1...3600
    /// `payload.summary` is at most 1024 characters [PE1][PE2].
    static let maxSummary = 1024
    /// A sender's failure reason can be long; this keeps a change event far below the 512 KB
    /// payload limit [PE3] without relying on the vendor dropping details.
    static let maxReason = 1024
    /// Packages listed in a change event's custom details; the rest are counted.
    static let maxChangeEventPackages = 50

    public let name: String
    public let token: Secret
    /// The e-mail of a PagerDuty user, sent as `From:` (required on POST [PD1], and with
    /// account-level keys [PD6]).
    public let from: String
    public let baseURL: URL
    public let eventsURL: URL
    /// The Events API v2 integration key; nil when change events are off.
    public let routingKey: Secret?
    /// `text`: the window's description and the change event's summary. Plain text (sent inside
    /// JSON strings), so values need no escaping; the change event cuts it to 1024 characters.
    public var templates: MessageTemplates?
    public static let templateKeys: Set<String> = ["text"]
    public static let templateEscaping = TemplateEscaping(name: "PATCHBAY_PLAIN_TEXT") { $0 }
    public var kind: String { Self.kind }
    /// The routing key travels in the change event's body, not in a header: listing it here is
    /// what keeps it out of logs, response excerpts and the database.
    public var secrets: [Secret] { [token] + (routingKey.map { [$0] } ?? []) }

    public init(
        name: String, token: Secret, from: String, baseURL: URL = defaultBaseURL, eventsURL: URL = defaultEventsURL,
        routingKey: Secret? = nil
    ) {
        self.name = name
        self.token = token
        self.from = from
        self.baseURL = baseURL
        self.eventsURL = eventsURL
        self.routingKey = routingKey
    }

    /// Reads `targets.<name>`: `{kind: pagerduty, token: ..., from: ops@example.com, baseURL: ...,
    /// eventsURL: ..., changeEvents: {routingKey: ...}}`.
    public init?(name: String, section: ConfigSection) {
        section.allowOnly(TargetRegistry.commonKeys.union(["token", "from", "baseURL", "eventsURL", "changeEvents"]))
        let token = section.secret("token", minimumLength: 8)
        let from = section.string("from", required: true)
        var fromIsValid = from != nil
        if let from, !Self.isPlausibleEmail(from) {
            fromIsValid = false
            section.report("from", "expected the e-mail address of a PagerDuty user, like ops@example.com, got '\(LogText.escape(from))'")
        }
        let baseURL = section.url("baseURL") ?? Self.defaultBaseURL
        let eventsURL = section.url("eventsURL") ?? Self.defaultEventsURL
        Self.requireHTTPSForEvents(section)
        var routingKey: Secret?
        var changeEventsAreValid = true
        if let changeEvents = section.section("changeEvents") {
            changeEvents.allowOnly(["routingKey"])
            if let key = changeEvents.secret("routingKey") {
                if let problem = Self.routingKeyProblem(key.reveal()) {
                    changeEvents.report("routingKey", problem)
                    changeEventsAreValid = false
                } else {
                    routingKey = key
                }
            } else {
                changeEventsAreValid = false
            }
        } else if section.has("eventsURL") {
            section.report("eventsURL", "is used only for change events; add changeEvents: {routingKey: ...} or remove it")
        }
        guard let token, let from, fromIsValid, changeEventsAreValid else { return nil }
        self.init(name: name, token: token, from: from, baseURL: baseURL, eventsURL: eventsURL, routingKey: routingKey)
    }

    // MARK: Validation

    /// PagerDuty object ids such as `PIJ90N7`: upper-case letters and digits.
    public static func isServiceID(_ text: String) -> Bool {
        (1...32).contains(text.utf8.count) && text.utf8.allSatisfy { isASCIIDigit($0) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }
    }

    /// A window id we are willing to put into a URL path later (`PW98YIO`). Anything else from the
    /// answer is not kept, so an odd answer cannot steer a later PUT or DELETE elsewhere.
    static func isWindowID(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count) && text.utf8.allSatisfy(isASCIIAlphanumeric)
    }

    static func isASCIIDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

    static func isASCIIAlphanumeric(_ byte: UInt8) -> Bool {
        isASCIIDigit(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
    }

    /// Events API v2 integration keys are 32 characters [PE1][PE3]. The message never quotes the key.
    static func routingKeyProblem(_ key: String) -> String? {
        guard key.utf8.count == 32, key.utf8.allSatisfy(isASCIIAlphanumeric) else {
            return "expected a 32-character Events API v2 integration key of letters and digits (value not shown: it is a secret)"
        }
        if key.hasPrefix("R") {
            // Event Orchestration/ruleset keys start with R and are not accepted for change events [PE3].
            return
                "a ruleset routing key cannot receive change events; use the Events API v2 integration key of a service (value not shown: it is a secret)"
        }
        return nil
    }

    /// One address for the `From:` header: no spaces or control characters (which could inject
    /// another header), no display name, one `@` with text on both sides.
    static func isPlausibleEmail(_ text: String) -> Bool {
        guard (3...254).contains(text.utf8.count) else { return false }
        let forbidden = Set("<>()[]\\,;:\"".utf8)
        guard text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && !forbidden.contains($0) }) else { return false }
        let halves = text.split(separator: "@", omittingEmptySubsequences: false)
        guard halves.count == 2, let local = halves.first, let domain = halves.last else { return false }
        return !local.isEmpty && !domain.isEmpty && !domain.hasPrefix(".") && !domain.hasSuffix(".")
    }

    /// `TargetRegistry.requireHTTPS` looks at `url` and `baseURL`; the events URL carries the
    /// routing key in its body, so it gets the same rule: https, or plain http to loopback only.
    static func requireHTTPSForEvents(_ section: ConfigSection) {
        guard let text = section.string("eventsURL"), let components = URLComponents(string: text),
            components.scheme?.lowercased() == "http"
        else { return }
        let host = components.host?.lowercased() ?? ""
        if LoopbackHost.matches(host) { return }
        // Read as text: `requireHTTPS` already reports an ill-formed allowInsecureHTTP value.
        if let insecure = section.string("allowInsecureHTTP"), ["true", "yes", "on"].contains(insecure.lowercased()) { return }
        section.report(
            "eventsURL",
            "plain http:// to another host would send the change events' routing key unencrypted; use https://, or set allowInsecureHTTP: true")
    }

    // MARK: Pacing and answers

    /// PagerDuty limits per key (account or user) [PD4], so targets sharing a token share the
    /// budget. Change events are limited per routing key instead (about 120/min [PE7]) and go
    /// through this budget too: a delivery's request is not known when it is paced.
    public var pacingKey: String { "pagerduty:" + Data(token.reveal().utf8).sha256Hex.prefix(16) }

    /// PagerDuty says how long to wait in `ratelimit-reset` (seconds), not in Retry-After [PD4][PD5].
    /// Wait that long when the budget is spent or we were told off; a 429 without the header
    /// (it happens [PD4]) falls back to the dispatcher's own quiet time.
    public func pause(after response: TransportResponse) -> Duration? {
        let remaining = response.header("ratelimit-remaining").flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard response.status == 429 || remaining == 0 else { return nil }
        guard let reset = response.header("ratelimit-reset").flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }),
            Self.resetRange.contains(reset)
        else { return nil }
        return .seconds(reset)
    }

    /// The shared rule, except 405. `classify` does not see the request, but on the endpoints this
    /// target calls PagerDuty documents 405 only for DELETE of a window that has already ended
    /// [PD1]: the cancellation has nothing left to do, so it counts as delivered (and `followUp`
    /// records the window as deleted) instead of failing permanently.
    public func classify(_ result: Result<TransportResponse, TransportFailure>) -> DeliveryOutcome {
        if case .success(let response) = result, response.status == 405 {
            return .delivered(reason: ResponseRule.Reason.delivered)
        }
        return ResponseRule.classify(result)
    }

    // MARK: Planning

    var windowsURL: String {
        baseURL.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/maintenance_windows"
    }

    var changeEventsURL: String {
        eventsURL.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/v2/change/enqueue"
    }

    public func plan(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> DeliveryStep {
        let step = MaintenanceWindowLifecycle.step(for: event, followUp: context.followUp)
        switch step {
        case .nothingToEnd:
            return .skip(reason: "no window was created for this maintenance, so there is nothing to delete")
        case .alreadyEnded:
            return .skip(reason: "the maintenance window was deleted")
        case .covered:
            if let step = try changeEvent(for: event, context: context) { return step }
            return .skip(reason: "the maintenance window already covers this event")
        case .create:
            if event.window.end <= context.now {
                // No window can be made any more, but the outcome is still worth a change event.
                if let step = try changeEvent(for: event, context: context) { return step }
                return .skip(
                    reason: "the window ended at \(Timestamp.rfc3339(event.window.end)); PagerDuty takes windows that end in the future only")
            }
            return try windowRequest("POST", url: windowsURL, event: event, context: context)
        case .end(let held), .move(let held):
            guard let windowID = held.id else {
                return .refuse(reason: MaintenanceWindowLifecycle.noUsableIDReason(vendor: "PagerDuty", object: "maintenance window", step: step))
            }
            let windowURL = "\(windowsURL)/\(VendorID.pathSegment(windowID))"
            if case .end = step {
                // DELETE removes a future window and ends a running one at once; a finished one
                // answers 405, which `classify` counts as done [PD1].
                return .send(restRequest("DELETE", url: windowURL, body: Data()))
            }
            if event.window.end <= context.now {
                return .skip(
                    reason: "the new window ended at \(Timestamp.rfc3339(event.window.end)); PagerDuty takes windows that end in the future only")
            }
            return try windowRequest("PUT", url: windowURL, event: event, context: context)
        }
    }

    /// POST or PUT of the whole window. A past `start_time` is fine: PagerDuty replaces it with
    /// "now" [PD1].
    private func windowRequest(_ method: String, url: String, event: PatchEvent, context: RenderContext) throws(RenderError) -> DeliveryStep {
        var seen = Set<String>()
        let services = RouteResources.items(in: context.resources).filter { seen.insert($0).inserted }
        guard !services.isEmpty else {
            return .refuse(reason: "a PagerDuty maintenance window needs at least one service; list them under routes[].pagerduty.services")
        }
        let window = PagerDutyWindowBody.Window(
            startTime: Timestamp.clamped(event.window.start), endTime: Timestamp.clamped(event.window.end),
            description: templated(event, context: context) ?? description(event),
            services: services.map { PagerDutyWindowBody.ServiceReference(id: $0) })
        let body = try JSONEncoder.encodePayload(PagerDutyWindowBody(maintenanceWindow: window), kind: "PagerDuty")
        return .send(restRequest(method, url: url, body: body))
    }

    /// The wording of `text` from the route's or the target's templates, when there is one.
    private func templated(_ event: PatchEvent, context: RenderContext) -> String? {
        MessageTemplates.preferring(context.routeTemplates, over: templates)?
            .render("text", TemplateValues.values(for: event, context: context)).flatMap { $0.isEmpty ? nil : $0 }
    }

    private func description(_ event: PatchEvent) -> String {
        let id = event.window.id.map { " (\($0))" } ?? ""
        return "Scheduled Maintenance for \(event.systemName)\(id)"
    }

    /// `Authorization: Token token=<key>` exactly, or 401 [PD2]; the Accept header pins API v2;
    /// Content-Type is required on every operation [PD1][PD3]; `From:` is required on POST and
    /// harmless elsewhere [PD1][PD5].
    private func restRequest(_ method: String, url: String, body: Data) -> OutboundRequest {
        OutboundRequest(
            method: method, url: Secret(url), displayURL: url,
            headers: [
                HTTPHeader("Authorization", "Token token=\(token.reveal())", isSecret: true),
                HTTPHeader("Accept", "application/vnd.pagerduty+json;version=2"),
                HTTPHeader("Content-Type", "application/json"),
                HTTPHeader("From", from),
            ],
            body: body
        )
    }

    /// The change event for a `completed` or `failed` event, when change events are configured;
    /// nil otherwise. No auth header: the routing key in the body is the credential [PE1][PE2].
    func changeEvent(for event: PatchEvent, context: RenderContext) throws(RenderError) -> DeliveryStep? {
        guard let routingKey, event.type == .completed || event.type == .failed else { return nil }
        let who = event.instance.map { instance in instance.name.flatMap { $0.isEmpty ? nil : $0 } ?? instance.id }
        let summary =
            templated(event, context: context) ?? who.map { "\(MessageText.title(for: event)): \($0) (\(event.systemName))" }
            ?? "\(MessageText.title(for: event)): \(event.systemName)"
        let packages = Array(event.packages.prefix(Self.maxChangeEventPackages))
        let details = PagerDutyChangeEvent.Details(
            app: event.app, environment: event.environment, instance: event.instance?.displayName, window: event.window.id,
            packages: packages, packagesNotListed: event.packages.count > packages.count ? event.packages.count - packages.count : nil,
            reason: MessageText.failureReason(event).map { Self.truncated($0, maxUTF16: Self.maxReason) })
        let payload = PagerDutyChangeEvent.Payload(
            summary: Self.truncated(summary, maxUTF16: Self.maxSummary), source: who ?? event.systemName,
            timestamp: Timestamp.clamped(event.occurredAt ?? context.now), customDetails: details)
        let body = try JSONEncoder.encodePayload(PagerDutyChangeEvent(routingKey: routingKey.reveal(), payload: payload), kind: "PagerDuty")
        return .send(
            OutboundRequest(
                method: "POST", url: Secret(changeEventsURL), displayURL: changeEventsURL,
                headers: [HTTPHeader("Content-Type", "application/json")], body: body))
    }

    /// `text` cut at a character boundary so it is at most `limit` UTF-16 units (which also bounds
    /// characters and code points, however the vendor counts), ending in `…` when cut.
    static func truncated(_ text: String, maxUTF16 limit: Int) -> String {
        guard text.utf16.count > limit else { return text }
        var result = ""
        var used = 0
        for character in text {
            let size = character.utf16.count
            guard used + size <= limit - 1 else { break }
            result.append(character)
            used += size
        }
        return result + "…"
    }

    // MARK: Follow-up

    public var usesMaintenanceState: Bool { true }

    public func followUp(after response: TransportResponse, to request: OutboundRequest, event: PatchEvent, context: RenderContext) -> FollowUpState?
    {
        // A change event leaves the window as it was.
        if request.url.reveal() == changeEventsURL { return context.followUp }
        // 204 (deleted or ended now) and 405 (had already ended) to a DELETE both leave no window to manage.
        let returned = try? JSONDecoder().decode(JSONValue.self, from: response.body)
        let createdID = (returned?["maintenance_window"]?["id"]?.stringValue).flatMap { Self.isWindowID($0) ? $0 : nil }
        return MaintenanceWindowLifecycle.followUp(after: request.method, previous: context.followUp, event: event, createdID: createdID)
    }
}
