import Foundation
import PatchbayCore

/// Atlassian Statuspage (`kind: statuspage`): one scheduled-maintenance incident per
/// maintenance, created by its first event and PATCHed through the lifecycle, with times sent as
/// UTC `Z` (Statuspage does not document how it reads other offsets).
public struct StatuspageTarget: DeliveryTarget, RegisteredTarget {
    public static let kind = "statuspage"
    public static let defaultBaseURL = URL(string: "https://api.statuspage.io")!
    /// "Each API token is limited to 1 request / second as measured on a 60 second rolling window."
    public static let defaultPolicy = TargetPolicy(pacing: PacingPolicy(rate: 1, burst: 1))
    public static let traits = TargetKindTraits(
        kind: kind, routeResource: RouteResourceKey(routeKey: "statuspage", listKey: "components"), keepsMaintenanceObject: true)

    public enum CancelAction: String, Sendable {
        /// Mark the incident completed with a cancellation note (subscribers see why).
        case complete
        /// Delete the incident.
        case delete
    }

    public let name: String
    public let page: String
    public let apiKey: Secret
    public let baseURL: URL
    public let cancelAction: CancelAction
    public var kind: String { Self.kind }
    public var secrets: [Secret] { [apiKey] }

    public init(name: String, page: String, apiKey: Secret, baseURL: URL = defaultBaseURL, cancelAction: CancelAction = .complete) {
        self.name = name
        self.page = page
        self.apiKey = apiKey
        self.baseURL = baseURL
        self.cancelAction = cancelAction
    }

    /// Reads `targets.<name>`: `{kind: statuspage, page: ..., apiKey: ..., baseURL: ..., onCancel: complete|delete}`.
    public init?(name: String, section: ConfigSection) {
        section.allowOnly(TargetRegistry.commonKeys.union(["page", "apiKey", "baseURL", "onCancel"]))
        let page = section.string("page", required: true)
        if let page, !page.allSatisfy({ $0.isLetter || $0.isNumber }) {
            section.report("page", "expected a Statuspage page id (letters and digits), got '\(page)'")
        }
        let apiKey = section.secret("apiKey", minimumLength: 8)
        let baseURL = section.url("baseURL") ?? Self.defaultBaseURL
        var cancel = CancelAction.complete
        if let text = section.string("onCancel") {
            if let parsed = CancelAction(rawValue: text) {
                cancel = parsed
            } else {
                section.report("onCancel", "must be complete or delete, got '\(text)'")
            }
        }
        guard let page, let apiKey else { return nil }
        self.init(name: name, page: page, apiKey: apiKey, baseURL: baseURL, cancelAction: cancel)
    }

    /// Statuspage limits per API key, so targets sharing a key share the budget.
    public var pacingKey: String { "statuspage:" + Data(apiKey.reveal().utf8).sha256Hex.prefix(16) }

    var incidentsURL: String {
        baseURL.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/v1/pages/\(page)/incidents"
    }

    public func plan(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> DeliveryStep {
        let state = context.followUp
        guard let storedID = state?.objectID, state?.status != "deleted" else {
            if state?.status == "deleted" { return .skip(reason: "the incident was deleted") }
            return try create(event, context: context)
        }
        guard Self.isIncidentID(storedID) else {
            return .refuse(reason: "vendor_id_refused: the stored incident id is not a Statuspage incident id; it is never put in a request path")
        }
        let incidentID = VendorID.pathSegment(storedID)
        let current = state?.status
        let windowChanged = state?.windowStart != event.window.start || state?.windowEnd != event.window.end
        var fields = IncidentFields()
        if event.notice == .overrun {
            guard current != "completed" else { return .skip(reason: "the incident is already completed") }
            fields.scheduledUntil = event.window.end
            fields.body = StatuspageText.overrun(event)
            let body = try JSONEncoder.encodePayload(["incident": fields], kind: "Statuspage")
            return .send(request("PATCH", url: "\(incidentsURL)/\(incidentID)", body: body))
        }
        switch event.type {
        case .scheduled, .reminder:
            guard current == "scheduled", windowChanged else {
                return .skip(reason: "the incident already has this window")
            }
            fields.scheduledFor = event.window.start
            fields.scheduledUntil = event.window.end
            fields.body = "The maintenance window moved to \(MessageText.window(event.window, in: TimeZone(identifier: "UTC")!))."
        case .started:
            guard current == "scheduled" else { return .skip(reason: "the incident is already \(current ?? "updated")") }
            fields.status = "in_progress"
            fields.body = StatuspageText.started(event)
            fields.components = componentStates(context.resources, "under_maintenance")
        case .completed:
            guard current != "completed" else { return .skip(reason: "the incident is already completed") }
            let unfinished = context.maintenance.unfinishedCount
            guard unfinished == 0 else {
                return .skip(reason: "waiting for \(unfinished) more instance\(unfinished == 1 ? "" : "s") to finish")
            }
            fields.status = "completed"
            fields.body = StatuspageText.completed(context.maintenance)
            fields.components = componentStates(context.resources, "operational")
        case .failed:
            guard current != "completed" else { return .skip(reason: "the incident is already completed") }
            fields.body = StatuspageText.failed(event)
        case .cancelled:
            guard current != "completed" else { return .skip(reason: "the incident is already completed") }
            if cancelAction == .delete {
                return .send(request("DELETE", url: "\(incidentsURL)/\(incidentID)", body: Data()))
            }
            fields.status = "completed"
            fields.body = StatuspageText.cancelled(event)
            fields.components = componentStates(context.resources, "operational")
        }
        let body = try JSONEncoder.encodePayload(["incident": fields], kind: "Statuspage")
        return .send(request("PATCH", url: "\(incidentsURL)/\(incidentID)", body: body))
    }

    private func create(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> DeliveryStep {
        var fields = IncidentFields()
        fields.name = String("Scheduled Maintenance for \(event.systemName)".prefix(255))
        fields.impactOverride = "maintenance"
        fields.scheduledFor = event.window.start
        fields.scheduledUntil = event.window.end
        fields.scheduledAutoInProgress = true
        fields.scheduledAutoCompleted = true
        fields.componentIDs = context.resources
        fields.components = componentStates(context.resources, "under_maintenance")
        switch event.type {
        case .scheduled, .reminder:
            fields.status = "scheduled"
            fields.body = StatuspageText.scheduled(event)
        case .started, .failed:
            fields.status = "in_progress"
            fields.body = event.type == .started ? StatuspageText.started(event) : StatuspageText.failed(event)
        case .completed:
            // Events arrived out of order or the scheduled one was never sent: record it anyway.
            guard context.maintenance.unfinishedCount == 0 else {
                fields.status = "in_progress"
                fields.body = StatuspageText.started(event)
                break
            }
            fields.status = "completed"
            fields.body = StatuspageText.completed(context.maintenance)
            fields.components = componentStates(context.resources, "operational")
        case .cancelled:
            return .skip(reason: "no incident was created for this maintenance, so there is nothing to cancel")
        }
        let body = try JSONEncoder.encodePayload(["incident": fields], kind: "Statuspage")
        return .send(request("POST", url: incidentsURL, body: body))
    }

    private func componentStates(_ ids: [String], _ status: String) -> [String: String]? {
        ids.isEmpty ? nil : Dictionary(uniqueKeysWithValues: ids.map { ($0, status) })
    }

    private func request(_ method: String, url: String, body: Data) -> OutboundRequest {
        OutboundRequest(
            method: method, url: Secret(url), displayURL: url,
            headers: [
                HTTPHeader("Authorization", "OAuth \(apiKey.reveal())", isSecret: true),
                HTTPHeader("Content-Type", "application/json"),
            ],
            body: body
        )
    }

    public var usesMaintenanceState: Bool { true }

    /// The final "completed" update lists the packages every server updated: a completion once
    /// every server has an outcome, to an incident not yet completed (see `plan`).
    public func showsUpdatedPackages(for event: PatchEvent, followUp: FollowUpState?, maintenance: MaintenanceSnapshot) -> Bool {
        event.type == .completed && followUp?.status != "completed" && maintenance.unfinishedCount == 0
    }

    /// Statuspage incident ids are short strings of letters and digits (`p31zjtct2jer`).
    static func isIncidentID(_ id: String) -> Bool { VendorID.isValid(id) }

    /// A 2xx whose incident id is not of Statuspage's form is refused (dead, logged with this
    /// reason), never kept: later requests would carry the API key to wherever it points.
    public func classify(_ result: Result<TransportResponse, TransportFailure>) -> DeliveryOutcome {
        let outcome = ResponseRule.classify(result)
        if case .delivered = outcome, case .success(let response) = result,
            let returned = try? JSONDecoder().decode(JSONValue.self, from: response.body), let id = returned["id"],
            id.stringValue.map(Self.isIncidentID) != true
        {
            return .permanent(reason: ResponseRule.Reason.vendorIDRefused)
        }
        return outcome
    }

    public func followUp(after response: TransportResponse, to request: OutboundRequest, event: PatchEvent, context: RenderContext) -> FollowUpState?
    {
        var state = context.followUp ?? FollowUpState()
        if request.method == "DELETE" {
            state.status = "deleted"
            return state
        }
        let sent = try? JSONDecoder().decode(JSONValue.self, from: request.body)
        let returned = try? JSONDecoder().decode(JSONValue.self, from: response.body)
        if request.method == "POST", let id = returned?["id"]?.stringValue, Self.isIncidentID(id) {
            state.objectID = id
        }
        // The public page of the incident, for templates' `links.<target>`.
        if let link = returned?["shortlink"]?.stringValue, link.hasPrefix("https://") || link.hasPrefix("http://") {
            state.link = link
        }
        if let status = sent?["incident"]?["status"]?.stringValue { state.status = status }
        if sent?["incident"]?["scheduled_for"] != nil || sent?["incident"]?["scheduled_until"] != nil {
            state.windowStart = event.window.start
            state.windowEnd = event.window.end
        }
        return state
    }
}

/// The fields of a Statuspage incident this target sets; nil ones are left out of the JSON.
struct IncidentFields: Encodable {
    var name: String?
    var status: String?
    var impactOverride: String?
    var scheduledFor: Date?
    var scheduledUntil: Date?
    var scheduledAutoInProgress: Bool?
    var scheduledAutoCompleted: Bool?
    var componentIDs: [String]?
    var components: [String: String]?
    var body: String?

    enum CodingKeys: String, CodingKey {
        case name, status, body, components
        case impactOverride = "impact_override"
        case scheduledFor = "scheduled_for"
        case scheduledUntil = "scheduled_until"
        case scheduledAutoInProgress = "scheduled_auto_in_progress"
        case scheduledAutoCompleted = "scheduled_auto_completed"
        case componentIDs = "component_ids"
    }
}

/// Incident update texts. Statuspage shows them to subscribers as plain text.
enum StatuspageText {
    static let maxBody = 25_000

    static func scheduled(_ event: PatchEvent) -> String {
        "Patching of \(event.systemName) is scheduled for \(MessageText.window(event.window, in: utc))."
    }

    static func started(_ event: PatchEvent) -> String {
        let who = event.instance.map { " on \($0.name ?? $0.id)" } ?? ""
        return "Patching of \(event.systemName) has begun\(who)."
    }

    static func overrun(_ event: PatchEvent) -> String {
        let overdue = MessageText.overdueNames(event)
        let who = overdue.isEmpty ? "" : " (not finished: \(overdue.joined(separator: ", ")))"
        return String(
            "Patching of \(event.systemName) is taking longer than planned\(who). The maintenance is extended until \(Timestamp.rfc3339(event.window.end))."
                .prefix(maxBody))
    }

    static func failed(_ event: PatchEvent) -> String {
        let who = event.instance.map { " on \($0.displayName)" } ?? ""
        let reason = MessageText.failureReason(event).map { ": \($0)" } ?? "."
        return String("Patching failed\(who)\(reason)".prefix(maxBody))
    }

    static func cancelled(_ event: PatchEvent) -> String {
        let reason = MessageText.failureReason(event).map { " Reason: \($0)" } ?? ""
        return String("This maintenance has been cancelled.\(reason)".prefix(maxBody))
    }

    static func completed(_ snapshot: MaintenanceSnapshot) -> String {
        let total = snapshot.instanceCount
        let done = snapshot.completedCount
        var text =
            total == 0
            ? "Patching is complete."
            : "Patching is complete: \(done) of \(total) instance\(total == 1 ? "" : "s") finished successfully."
        if snapshot.failedCount > 0 {
            text += " Failed: " + MessageText.names(snapshot.failed, count: snapshot.failedCount).joined(separator: ", ") + "."
        }
        let packages = snapshot.packagesUpdated
        if !packages.isEmpty, text.count < maxBody - 200 {
            text +=
                "\n\nUpdated packages:\n" + MessageText.packageList(packages, budget: maxBody - text.count - 100, uncounted: snapshot.morePackages)
        }
        return String(text.prefix(maxBody))
    }

    static let utc = TimeZone(identifier: "UTC")!
}
