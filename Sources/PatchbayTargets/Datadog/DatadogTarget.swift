import Foundation
import PatchbayCore

/// Datadog downtimes (`kind: datadog`, downtimes API v2): one downtime per maintenance, scheduled
/// by its first event, moved with PATCH when the window changes (replaced by a new one when it has
/// already ended), cancelled with DELETE when the maintenance is cancelled. Monitors in the route's `scope` stay quiet for the window, so
/// patching does not page anyone.
///
/// Config: `targets.<name>: {kind: datadog, apiKey: ${DD_API_KEY}, appKey: ${DD_APP_KEY}, site: datadoghq.eu}`.
/// `site` picks `https://api.<site>` from the documented sites [DD1]; `baseURL` (the local sink,
/// tests) replaces that URL entirely, so when both are given `baseURL` wins and `site` is only
/// checked. Route: `routes[].datadog: {target, scope: "env:production AND service:app1", monitorTags: [patching]}`;
/// without monitor tags the downtime covers every monitor in the scope (`["*"]`, [DD4]).
public struct DatadogTarget: DeliveryTarget, TemplatedTarget {
    public static let kind = "datadog"
    public static let defaultSite = "datadoghq.com"
    /// The sites the API lives on, each served at `https://api.<site>` [DD1][DD2][DD5].
    public static let sites = [
        "datadoghq.com", "us3.datadoghq.com", "us5.datadoghq.com", "datadoghq.eu", "ap1.datadoghq.com",
        "ap2.datadoghq.com", "uk1.datadoghq.com", "ddog-gov.com", "us2.ddog-gov.com",
    ]
    public static let defaultBaseURL = URL(string: "https://api.datadoghq.com")!
    /// Datadog publishes no number for the downtime endpoints, only per-endpoint limits announced
    /// in X-RateLimit headers [DD7]: go one request at a time per key, at most two a second, and
    /// let `pause(after:)` honour what the headers say.
    public static let defaultPolicy = TargetPolicy(pacing: PacingPolicy(rate: 2, burst: 1))
    public static let traits = TargetKindTraits(
        kind: kind,
        routeResource: RouteResourceKey(routeKey: "datadog", listKey: "monitorTags", scalarKeys: ["scope"]) { tag in
            DatadogTarget.monitorTagProblem(tag)
        },
        keepsMaintenanceObject: true)

    public let name: String
    public let apiKey: Secret
    public let appKey: Secret
    public let baseURL: URL
    /// `text`: the downtime's message. Values have `@` made inert (`@name` notifies in Datadog).
    public var templates: MessageTemplates?
    public static let templateKeys: Set<String> = ["text"]
    public static let templateEscaping = TemplateEscaping(name: "PATCHBAY_DATADOG") { DatadogTarget.inert($0) }
    public var kind: String { Self.kind }
    public var secrets: [Secret] { [apiKey, appKey] }

    public init(name: String, apiKey: Secret, appKey: Secret, baseURL: URL = defaultBaseURL) {
        self.name = name
        self.apiKey = apiKey
        self.appKey = appKey
        self.baseURL = baseURL
    }

    /// Reads `targets.<name>`: `{kind: datadog, apiKey: ..., appKey: ..., site: ..., baseURL: ...}`.
    public init?(name: String, section: ConfigSection) {
        section.allowOnly(TargetRegistry.commonKeys.union(["apiKey", "appKey", "site", "baseURL"]))
        let apiKey = section.secret("apiKey", minimumLength: 8)
        let appKey = section.secret("appKey", minimumLength: 8)
        var siteURL: URL? = Self.defaultBaseURL
        if let site = section.string("site") {
            siteURL = Self.apiURL(site: site)
            if siteURL == nil { section.report("site", Self.unknownSiteMessage(site)) }
        }
        // An explicit baseURL replaces the site's URL (the sink, a proxy); the site is still checked.
        let baseURL = section.url("baseURL") ?? siteURL
        guard let apiKey, let appKey, let baseURL, siteURL != nil else { return nil }
        self.init(name: name, apiKey: apiKey, appKey: appKey, baseURL: baseURL)
    }

    /// `https://api.<site>` for a documented site, else nil.
    public static func apiURL(site: String) -> URL? {
        let site = site.trimmingCharacters(in: .whitespaces).lowercased()
        guard sites.contains(site) else { return nil }
        return URL(string: "https://api.\(site)")
    }

    static func unknownSiteMessage(_ site: String) -> String {
        var message = "'\(site)' is not a Datadog site; use one of \(sites.joined(separator: ", "))"
        // The site selector in Datadog's docs reads `app.datadoghq.eu`; the API wants the bare site.
        for prefix in ["app.", "api."] where site.lowercased().hasPrefix(prefix) {
            let bare = String(site.dropFirst(prefix.count))
            if sites.contains(bare.lowercased()) { message += " (did you mean \(bare)?)" }
        }
        return message
    }

    /// nil for a usable monitor tag, else why not. Tags hold no whitespace (a space would split
    /// the tag in Datadog's matching); `monitor_identifier.monitor_tags` must be non-empty strings [DD4].
    static func monitorTagProblem(_ tag: String) -> String? {
        if tag.isEmpty { return "a monitor tag must not be empty" }
        if tag.contains(where: \.isWhitespace) { return "a monitor tag may not contain whitespace, got '\(tag)'" }
        return nil
    }

    /// Datadog counts requests per organisation and endpoint [DD7]; targets sharing an API key
    /// share the budget. The key itself never appears, only a prefix of its digest.
    public var pacingKey: String { "datadog:" + Data(apiKey.reveal().utf8).sha256Hex.prefix(16) }

    /// At `X-RateLimit-Remaining: 0` or a 429, wait `X-RateLimit-Reset` seconds [DD7] (the
    /// official Python client sleeps that long too [DD5]). The value is range-checked: anything
    /// longer than an hour (the longest period seen in practice) waits an hour, a run of digits too
    /// long for an Int included; zero, negative or garbled values ask for no pause.
    public func pause(after response: TransportResponse) -> Duration? {
        let remaining = response.header("X-RateLimit-Remaining").flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard response.status == 429 || remaining == 0 else { return nil }
        guard let reset = response.header("X-RateLimit-Reset")?.trimmingCharacters(in: .whitespaces),
            !reset.isEmpty, reset.allSatisfy({ ("0"..."9").contains($0) })
        else { return nil }
        guard let seconds = Int(reset) else { return .seconds(Self.longestPause) }
        guard seconds >= 1 else { return nil }
        return .seconds(min(seconds, Self.longestPause))
    }

    static let longestPause = 3600

    var downtimeURL: String {
        baseURL.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/api/v2/downtime"
    }

    // MARK: Payloads [DD4][DD6]

    struct Schedule: Encodable, Sendable {
        /// ISO 8601 with a zero UTC offset (`...Z`): the API takes no other offset [DD4]. Left out
        /// of the update of a downtime that has begun: only what changes is sent.
        var start: String?
        var end: String
    }

    struct MonitorIdentifier: Encodable, Sendable {
        var monitorTags: [String]
        enum CodingKeys: String, CodingKey { case monitorTags = "monitor_tags" }
    }

    struct CreateAttributes: Encodable, Sendable {
        var scope: String
        var monitorIdentifier: MonitorIdentifier
        var schedule: Schedule
        var message: String
        /// The recovery that follows the maintenance would otherwise notify everyone.
        var muteFirstRecoveryNotification = true
        /// Display only; the schedule itself is always UTC [DD4][DD6].
        var displayTimezone: String

        enum CodingKeys: String, CodingKey {
            case scope, schedule, message
            case monitorIdentifier = "monitor_identifier"
            case muteFirstRecoveryNotification = "mute_first_recovery_notification"
            case displayTimezone = "display_timezone"
        }
    }

    struct CreateRequest: Encodable, Sendable {
        struct Body: Encodable, Sendable {
            var type = "downtime"
            var attributes: CreateAttributes
        }
        var data: Body
    }

    /// PATCH carries the id in the body as well as the path; the API requires it [DD4].
    struct UpdateRequest: Encodable, Sendable {
        struct Attributes: Encodable, Sendable {
            var schedule: Schedule
        }
        struct Body: Encodable, Sendable {
            var id: String
            var type = "downtime"
            var attributes: Attributes
        }
        var data: Body
    }

    // MARK: Planning

    public var usesMaintenanceState: Bool { true }

    public func plan(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> DeliveryStep {
        let step = MaintenanceWindowLifecycle.step(for: event, followUp: context.followUp)
        switch step {
        case .nothingToEnd:
            return .skip(reason: "no downtime was scheduled for this maintenance, so there is nothing to cancel")
        case .alreadyEnded:
            return .skip(reason: "the downtime was cancelled")
        case .covered:
            return .skip(reason: "the downtime already covers this event")
        case .create:
            return try create(event, context: context)
        case .move(let held) where held.hasEnded(at: context.now):
            // An ended downtime is history (status `ended` [DD2]); whether PATCH revives one is not
            // documented, so a new downtime covers the moved or stretched window (an overrun
            // notice comes after the planned end). Its id replaces the old one.
            return try create(event, context: context)
        case .end(let held), .move(let held):
            guard let downtimeID = held.id.flatMap(Self.usableID) else {
                return .refuse(reason: MaintenanceWindowLifecycle.noUsableIDReason(vendor: "Datadog", object: "downtime", step: step))
            }
            let downtimeURL = "\(downtimeURL)/\(VendorID.pathSegment(downtimeID))"
            if case .end = step {
                if let end = held.end, held.hasEnded(at: context.now) {
                    return .skip(reason: "the downtime ended at \(Timestamp.rfc3339(end)), so there is nothing to cancel")
                }
                // A 404 here (someone deleted the downtime in Datadog) stays a permanent failure under
                // the shared rule: classify() cannot tell a DELETE from a PATCH, and the operator should see it.
                return .send(request("DELETE", url: downtimeURL, body: Data()))
            }
            guard var schedule = downtimeSchedule(event.window, now: context.now) else {
                return .skip(reason: "the new window ended at \(Timestamp.rfc3339(event.window.end)); a downtime for it would mute nothing")
            }
            // A downtime that has begun keeps its start; only its end moves (an overrun). The
            // update schema's `start` means "when it starts" (vendor-specs/datadog/openapi-v2.yaml,
            // DowntimeScheduleOneTimeCreateUpdateRequest): sending "now" would restart it.
            if held.hasBegun(at: context.now) { schedule.start = nil }
            let update = UpdateRequest(data: .init(id: downtimeID, attributes: .init(schedule: schedule)))
            return .send(request("PATCH", url: downtimeURL, body: try JSONEncoder.encodePayload(update, kind: "Datadog")))
        }
    }

    private func create(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> DeliveryStep {
        guard let schedule = downtimeSchedule(event.window, now: context.now) else {
            return .skip(reason: "the window ended at \(Timestamp.rfc3339(event.window.end)); a downtime for it would mute nothing")
        }
        guard let scope = RouteResources.scalar("scope", in: context.resources)?.trimmingCharacters(in: .whitespaces), !scope.isEmpty else {
            // Datadog requires a scope [DD4]; muting every monitor of the organisation is never meant.
            return .refuse(reason: "no Datadog scope: the route must set datadog.scope (like \"env:production AND service:app1\") for target \(name)")
        }
        var seen = Set<String>()
        let tags = RouteResources.items(in: context.resources).filter { seen.insert($0).inserted }
        let attributes = CreateAttributes(
            scope: scope,
            monitorIdentifier: MonitorIdentifier(monitorTags: tags.isEmpty ? ["*"] : tags),
            schedule: schedule,
            message: MessageTemplates.preferring(context.routeTemplates, over: templates)?
                .render("text", TemplateValues.values(for: event, context: context)).flatMap { $0.isEmpty ? nil : $0 } ?? Self.message(for: event),
            displayTimezone: context.displayTimeZone.identifier)
        let body = try JSONEncoder.encodePayload(CreateRequest(data: .init(attributes: attributes)), kind: "Datadog")
        return .send(request("POST", url: downtimeURL, body: body))
    }

    /// The window in UTC `Z` form, or nil when it has ended. A start already past is sent as the
    /// next whole second: "no start" means now [DD4], and whether the API takes a past start is
    /// not documented, so a late first event or the move of a running downtime cannot fail on it.
    func downtimeSchedule(_ window: MaintenanceWindow, now: Date) -> Schedule? {
        let end = Timestamp.clamped(window.end)
        let nextSecond = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.up))
        let start = window.start > now ? Timestamp.clamped(window.start) : nextSecond
        guard end > now, end > start else { return nil }
        return Schedule(start: Timestamp.rfc3339(start), end: Timestamp.rfc3339(end))
    }

    /// `Scheduled Maintenance for App1 - Production (mw-0123), by Patchbay`. The message goes out
    /// with the downtime's notifications, where `@name` notifies that user or integration; an `@`
    /// in sender-supplied names becomes a full-width `＠` so an event cannot page anyone.
    static func message(for event: PatchEvent) -> String {
        let id = event.window.id.map { " (\(inert($0)))" } ?? ""
        return "Scheduled Maintenance for \(inert(event.systemName))\(id), by Patchbay"
    }

    static func inert(_ text: String) -> String {
        text.replacingOccurrences(of: "@", with: "\u{FF20}")
    }

    /// Downtime ids are UUIDs [DD2][DD4]; anything else (a path, a query) is never put in a URL.
    static func usableID(_ id: String) -> String? {
        guard (1...64).contains(id.count), id.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "-") })
        else {
            return nil
        }
        return id
    }

    private func request(_ method: String, url: String, body: Data) -> OutboundRequest {
        // Both keys, as the official clients send them [DD4][DD5]; neither ever reaches a log.
        var headers = [
            HTTPHeader("DD-API-KEY", apiKey.reveal(), isSecret: true),
            HTTPHeader("DD-APPLICATION-KEY", appKey.reveal(), isSecret: true),
            HTTPHeader("Accept", "application/json"),
        ]
        if !body.isEmpty { headers.append(HTTPHeader("Content-Type", "application/json")) }
        return OutboundRequest(method: method, url: Secret(url), displayURL: Self.displayable(url), headers: headers, body: body)
    }

    /// The URL without any user or password a baseURL might carry.
    static func displayable(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.user != nil || components.password != nil else { return url }
        components.user = nil
        components.password = nil
        return components.string ?? OutboundRequest.displayForm(of: url)
    }

    public func followUp(after response: TransportResponse, to request: OutboundRequest, event: PatchEvent, context: RenderContext) -> FollowUpState?
    {
        // `data.id` is a string; anything else (a number, a path) is not kept, and later events
        // then say so instead of creating a second downtime.
        let createdID = ((try? JSONValue.parse(response.body))?["data"]?["id"]?.stringValue).flatMap(Self.usableID)
        return MaintenanceWindowLifecycle.followUp(after: request.method, previous: context.followUp, event: event, createdID: createdID)
    }
}
