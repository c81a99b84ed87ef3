import Foundation
import PatchbayCore

/// The silences of an Alertmanager API v2 (`POST /silences`, `DELETE /silence/{id}`,
/// `GET /silences?filter=`), which Alertmanager serves under `/api/v2` and Grafana Alerting
/// under `/api/alertmanager/grafana/api/v2`. One silence per maintenance follows the window as
/// the Statuspage incident does (announce → create, reschedule or overrun → move, cancel →
/// expire, the last server's outcome → end `clearAfter` later); with `instances`, one silence
/// per server lasts from its `started` report to `clearAfter` after its outcome.
///
/// Facts (`../shared/reference/monitors-and-live-messages.md` §2; alertmanager v0.25
/// `silence/silence.go`, `api/v2/api.go`): re-posting a silence with its id and the same
/// matchers updates it in place only while it keeps its start; otherwise Alertmanager expires it
/// and answers a new id, so the id of every answer is kept. Deleting an unknown id answers 500
/// (0.25) or 404 (later): both mean it is gone. Every create looks for the silence first, by the
/// marker its comment carries, so an attempt killed between the answer and its record does not
/// leave a second silence open when it is tried again.
public struct SilenceAPI: Sendable {
    /// Base URLs: the first, then the others when no connection to it can be made (an HA cluster).
    public var urls: [URL]
    /// `/api/v2`, or Grafana's path.
    public var apiPath: String
    /// Authorization, marked secret.
    public var headers: [HTTPHeader]
    /// `createdBy` of every silence (shown in the UI beside the comment).
    public var createdBy: String
    /// The product, for messages: "Alertmanager", "Grafana".
    public var vendor: String
    /// The UI page of a silence, from the base URL and the silence id.
    public var link: @Sendable (URL, String) -> String

    public static let defaultClearAfter: Duration = .seconds(600)
    static let maintenanceKey = "maintenance"

    /// The route entry: `{target, matchers: [...], clearAfter: 10m, instances: {matcher, clearAfter}}`.
    public static func routeResourceKey(routeKey: String) -> RouteResourceKey {
        RouteResourceKey(
            routeKey: routeKey, listKey: "matchers", optionalScalarKeys: ["clearAfter"],
            sections: ["instances": ["matcher", "clearAfter"]], check: { resources in routeProblems(resources) })
    }

    /// Load-time problems of a route entry, by key.
    static func routeProblems(_ resources: [String]) -> [(key: String, problem: String)] {
        let items = RouteResources.items(in: resources)
        var problems = SilenceMatcher.problems(items.enumerated().map { ("matchers[\($0.offset)]", $0.element) }, setKey: "matchers")
        for (index, item) in items.enumerated() where item.contains("{{instance.") {
            problems.append(("matchers[\(index)]", "the maintenance's silence is for no one server: use {{instance.name}} in instances.matcher"))
        }
        let instance = RouteResources.scalar("matcher", inSection: "instances", in: resources)
        if let instance {
            problems += SilenceMatcher.problems([("instances.matcher", instance)], setKey: "instances.matcher")
        } else if RouteResources.scalar("clearAfter", inSection: "instances", in: resources) != nil {
            problems.append(("instances.matcher", "is required with instances: the matcher that picks one server's alerts"))
        }
        if items.isEmpty && instance == nil {
            problems.append(("", "needs matchers (the maintenance's silence), instances.matcher (one silence per server), or both"))
        }
        return problems + clearAfterProblems(resources)
    }

    /// `clearAfter` and `instances.clearAfter`, when set, are durations up to a day.
    static func clearAfterProblems(_ resources: [String]) -> [(key: String, problem: String)] {
        ["clearAfter", "instances.clearAfter"].compactMap { key in
            // Under 10 s the end could pass before the request does (Alertmanager refuses an end
            // in the past); over a day is not "a moment for alerts to clear".
            guard let text = RouteResources.scalar(key, in: resources),
                ConfigSection.parseDuration(text).map({ $0 >= .seconds(10) && $0 <= .seconds(86_400) }) != true
            else { return nil }
            return (key, "expected a duration from 10s to 24h, like 10m; got '\(text)'")
        }
    }

    /// The route's `clearAfter` for the maintenance's object and for a server's.
    static func clearAfter(in resources: [String]) -> (maintenance: Duration, server: Duration) {
        let duration = { (key: String) in RouteResources.scalar(key, in: resources).flatMap(ConfigSection.parseDuration) }
        let maintenance = duration("clearAfter") ?? duration("instances.clearAfter") ?? defaultClearAfter
        return (maintenance, duration("instances.clearAfter") ?? maintenance)
    }

    // MARK: Planning

    /// What the route asks of this target, read from the delivery's resources.
    struct RouteEntry {
        var matchers: [SilenceMatcher]
        var instanceMatcher: SilenceMatcher?
        var clearAfter: Duration
        var instanceClearAfter: Duration

        init(resources: [String]) throws(RenderError) {
            matchers = []
            for text in RouteResources.items(in: resources) { matchers.append(try SilenceMatcher.parse(text)) }
            instanceMatcher = try RouteResources.scalar("matcher", inSection: "instances", in: resources).map { text throws(RenderError) in
                try SilenceMatcher.parse(text)
            }
            (clearAfter, instanceClearAfter) = SilenceAPI.clearAfter(in: resources)
        }
    }

    typealias Link = RequestLink

    /// Looks for a silence with `marker` in its comment, then posts `post(its id)` (an update), or
    /// `post(nil)` (a create) when there is none.
    static func findThenPost(_ request: OutboundRequest, marker: String, post: @escaping @Sendable (String?) -> OutboundRequest) -> Link {
        .decide(request, skipReason: "", then: { answer in post(foundSilence(in: answer, marker: marker)) })
    }

    public func plan(_ event: PatchEvent, context: RenderContext, targetName: String) throws(RenderError) -> DeliveryStep {
        let entry = try RouteEntry(resources: context.resources)
        var links: [Link] = []
        var reasons: [String] = []
        if !entry.matchers.isEmpty {
            switch maintenanceLink(event, context: context, entry: entry, targetName: targetName) {
            case .success(let link): links.append(link)
            case .failure(let reason): reasons.append(reason.description)
            }
        }
        if let matcher = entry.instanceMatcher {
            let (serverLinks, reason) = serverLinks(event, context: context, entry: entry, matcher: matcher, targetName: targetName)
            links += serverLinks
            if let reason { reasons.append(reason) }
        }
        guard !links.isEmpty else {
            return .skip(reason: reasons.isEmpty ? "nothing to change in the silences" : reasons.joined(separator: "; "))
        }
        return .chain(links[...], nothingToDo: "nothing to change in the silences")
    }

    /// The id of a silence that is not expired and carries `marker`, in a `GET /silences` answer.
    static func foundSilence(in response: TransportResponse, marker: String) -> String? {
        guard case .array(let items)? = try? JSONValue.parse(response.body) else { return nil }
        for item in items {
            guard let id = item["id"]?.stringValue, let comment = item["comment"]?.stringValue, comment.contains(marker),
                item["status"]?["state"]?.stringValue != "expired"
            else { continue }
            return id
        }
        return nil
    }

    /// A server's own report that ends its patching: its silence clears, and the last one clears
    /// the maintenance's. A server's `cancelled` is such an outcome, not the maintenance's cancel.
    static func isServerOutcome(_ event: PatchEvent) -> Bool {
        event.instance != nil && event.notice == nil && event.type.isOutcome
    }

    /// The maintenance itself was cancelled (not one server's run).
    static func isMaintenanceCancel(_ event: PatchEvent) -> Bool {
        event.type == .cancelled && event.instance == nil
    }

    private func maintenanceLink(
        _ event: PatchEvent, context: RenderContext, entry: RouteEntry, targetName: String
    ) -> Result<Link, RenderError> {
        let matchers = entry.matchers.map { $0.resolved(for: event) }
        let marker = Self.marker(targetName: targetName, event: event, instance: nil)
        let comment = Self.maintenanceComment(event, marker: marker)
        let set = ObjectTag(key: Self.maintenanceKey, action: .set)
        // Looks for the maintenance's silence first, and updates what it finds (or creates one).
        let lookupThenPost = { (start: Date, end: Date) -> Link in
            Self.findThenPost(
                lookup(matchers), marker: marker,
                post: { id in post(id: id, matchers: matchers, start: start, end: end, comment: comment, tag: set) })
        }
        var lifecycleEvent = event
        if Self.isServerOutcome(event) { lifecycleEvent.type = .completed }
        let step = MaintenanceWindowLifecycle.step(for: lifecycleEvent, followUp: context.followUp)
        switch step {
        case .nothingToEnd:
            return .failure(RenderError("no silence was made for this maintenance, so there is nothing to expire"))
        case .alreadyEnded:
            return .failure(RenderError("the maintenance's silence was expired when it was cancelled"))
        case .create, .move:
            guard event.window.end > context.now, event.type != .cancelled else {
                return .failure(RenderError("the window ended at \(Timestamp.rfc3339(event.window.end)); a silence for it would quiet nothing"))
            }
            // A move looks the silence up too: the id kept may be of a silence Alertmanager has
            // since expired or forgotten (an update then answers 404).
            return .success(lookupThenPost(event.window.start, event.window.end))
        case .end(let held):
            guard let id = held.id else {
                return .failure(RenderError(MaintenanceWindowLifecycle.noUsableIDReason(vendor: vendor, object: "silence", step: step)))
            }
            return .success(.send(delete(id: id, tag: ObjectTag(key: Self.maintenanceKey, action: .end))))
        case .covered(let held):
            let status = context.followUp?.status
            // A server starting after the silence was cleared (a serial rollout: the first
            // server finished before the next began) opens it again until the window's end.
            if status == Self.clearedStatus, event.type == .started, event.notice == nil {
                guard let end = held.end, end > context.now else {
                    return .failure(RenderError("the window has ended; the maintenance's silence stays cleared"))
                }
                return .success(lookupThenPost(held.start ?? event.window.start, end))
            }
            // The last server's outcome: the silence ends clearAfter from now (alerts need a
            // moment to clear), unless it ends sooner anyway.
            let finished =
                Self.isServerOutcome(event) && context.maintenance.instanceCount > 0 && context.maintenance.unfinishedCount == 0
            guard finished, status != Self.clearedStatus, let id = held.id else {
                return .failure(RenderError("the maintenance's silence already covers this event"))
            }
            let clearAt = context.now.addingTimeInterval(entry.clearAfter.seconds)
            if let end = held.end, end <= clearAt {
                return .failure(RenderError("the maintenance's silence ends at \(Timestamp.rfc3339(end)) anyway"))
            }
            let clear = ObjectTag(key: Self.maintenanceKey, action: .clear)
            if let start = held.start, start > clearAt {
                // Every server finished before the window began: the pending silence goes.
                return .success(.send(delete(id: id, tag: clear)))
            }
            return .success(
                .send(post(id: id, matchers: matchers, start: held.start ?? context.now, end: clearAt, comment: comment, tag: clear)))
        }
    }

    private func serverLinks(
        _ event: PatchEvent, context: RenderContext, entry: RouteEntry, matcher: SilenceMatcher, targetName: String
    ) -> ([Link], String?) {
        let held = context.followUp?.objects ?? [:]
        if Self.isMaintenanceCancel(event) {
            // The maintenance is cancelled: every server's silence still open goes too (those
            // already past their end are left alone). Beyond what one step may send, the rest
            // end on their own, at the window's end plus overrunExtend.
            let open = held.filter { $0.value.status != Self.deletedStatus && ($0.value.end.map { $0 > context.now } ?? true) }
                .sorted { $0.key < $1.key }
            let links = open.prefix(DeliveryStep.maxLinks - 4).map { key, object in
                Link.send(delete(id: object.id, tag: ObjectTag(key: Self.serverKey(key), action: .end)))
            }
            return (links, links.isEmpty ? "no server silence is open" : nil)
        }
        guard let instance = event.instance, event.notice == nil else { return ([], nil) }
        let current = held[instance.id]
        let matchers = [matcher.resolved(for: event)]
        let key = Self.serverKey(instance.id)
        let marker = Self.marker(targetName: targetName, event: event, instance: instance)
        let comment = Self.serverComment(event, instance: instance, marker: marker)
        switch event.type {
        case .started:
            if current?.status == Self.activeStatus { return ([], "\(instance.id)'s silence is already open") }
            if context.followUp?.status == Self.deletedStatus { return ([], "the maintenance was cancelled") }
            let end = max(event.window.end, context.now).addingTimeInterval(context.overrunExtend.seconds)
            let start = context.now
            let set = ObjectTag(key: key, action: .set)
            return (
                [
                    Self.findThenPost(
                        lookup(matchers), marker: marker,
                        post: { id in post(id: id, matchers: matchers, start: start, end: end, comment: comment, tag: set) })
                ], nil
            )
        case .completed, .failed, .cancelled:
            guard let current, current.status == Self.activeStatus else { return ([], "\(instance.id) has no open silence to end") }
            let end = context.now.addingTimeInterval(entry.instanceClearAfter.seconds)
            let clear = ObjectTag(key: key, action: .clear)
            return ([.send(post(id: current.id, matchers: matchers, start: context.now, end: end, comment: comment, tag: clear))], nil)
        default:
            return ([], nil)
        }
    }

    static func serverKey(_ instanceID: String) -> String { "server:" + instanceID }

    // MARK: Requests

    struct Silence: Encodable {
        var id: String?
        var matchers: [SilenceMatcher]
        var startsAt: String
        var endsAt: String
        var createdBy: String
        var comment: String
    }

    var apiBase: [String] {
        urls.map { $0.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + apiPath }
    }

    private func request(_ method: String, path: String, body: Data = Data(), tag: ObjectTag?) -> OutboundRequest {
        let urls = apiBase.map { $0 + path }
        var headers = headers + [HTTPHeader("Accept", "application/json")]
        if !body.isEmpty { headers.append(HTTPHeader("Content-Type", "application/json")) }
        return OutboundRequest(
            method: method, url: Secret(urls[0]), displayURL: Self.displayable(urls[0]), headers: headers, body: body,
            object: tag?.text, fallbackURLs: urls.dropFirst().map { Secret($0) })
    }

    func lookup(_ matchers: [SilenceMatcher]) -> OutboundRequest {
        let query = matchers.map { "filter=" + Self.queryEscaped($0.text) }.joined(separator: "&")
        return request("GET", path: "/silences?" + query, tag: nil)
    }

    func post(id: String?, matchers: [SilenceMatcher], start: Date, end: Date, comment: String, tag: ObjectTag) -> OutboundRequest {
        let silence = Silence(
            id: id, matchers: matchers, startsAt: Timestamp.rfc3339(Timestamp.clamped(start)), endsAt: Timestamp.rfc3339(Timestamp.clamped(end)),
            createdBy: createdBy, comment: comment)
        let body = (try? JSONEncoder.patchbay().encode(silence)) ?? Data()
        return request("POST", path: "/silences", body: body, tag: tag)
    }

    func delete(id: String, tag: ObjectTag) -> OutboundRequest {
        request("DELETE", path: "/silence/" + VendorID.pathSegment(id), tag: tag)
    }

    static func queryEscaped(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    /// The URL without any user or password.
    static func displayable(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return OutboundRequest.displayForm(of: url) }
        components.user = nil
        components.password = nil
        components.query = nil
        return components.string ?? OutboundRequest.displayForm(of: url)
    }

    // MARK: Comments and markers

    /// `[patchbay:1a2b3c4d5e6f]`: which maintenance (and server) at which target a silence
    /// belongs to, so a retried create finds the silence an earlier attempt made.
    static func marker(targetName: String, event: PatchEvent, instance: Instance?) -> String {
        let key = event.maintenanceKey
        let text = [targetName, key.app, key.environment, key.window, instance?.id ?? ""].joined(separator: "\n")
        return "[patchbay:\(Data(text.utf8).sha256Hex.prefix(12))]"
    }

    static func maintenanceComment(_ event: PatchEvent, marker: String) -> String {
        let window = event.window.id.map { "window \($0), " } ?? ""
        return
            "Patchbay: Scheduled Maintenance for \(event.systemName) (\(window)\(Timestamp.rfc3339(event.window.start)) to \(Timestamp.rfc3339(event.window.end))) \(marker)"
    }

    static func serverComment(_ event: PatchEvent, instance: Instance, marker: String) -> String {
        let window = event.window.id.map { ", window \($0)" } ?? ""
        return "Patchbay: \(instance.name ?? instance.id) is being patched (\(event.systemName)\(window)) \(marker)"
    }

    // MARK: Answers

    static let activeStatus = "active"
    static let clearingStatus = "clearing"
    static let clearedStatus = "cleared"
    static let deletedStatus = "deleted"

    /// A DELETE of a silence that is gone (404 now, 500 "silence not found" on 0.25) is done.
    public func classify(_ result: Result<TransportResponse, TransportFailure>, for request: OutboundRequest) -> DeliveryOutcome {
        if request.method == "DELETE", case .success(let response) = result,
            response.status == 404 || (response.status == 500 && String(decoding: response.body.prefix(512), as: UTF8.self).contains("not found"))
        {
            return .delivered(reason: ResponseRule.Reason.delivered)
        }
        return ResponseRule.classify(result)
    }

    /// The silence id an answer holds (`silenceID`; Grafana before 9 answered `id`).
    static func silenceID(in response: TransportResponse) -> String? {
        guard let json = try? JSONValue.parse(response.body) else { return nil }
        return (json["silenceID"]?.stringValue ?? json["id"]?.stringValue).flatMap { VendorID.isValid($0, extra: ["-"]) ? $0 : nil }
    }

    public func followUp(after response: TransportResponse, to request: OutboundRequest, event: PatchEvent, context: RenderContext) -> FollowUpState?
    {
        guard request.method != "GET", let tag = ObjectTag(request.object) else { return nil }
        var state = context.followUp ?? FollowUpState()
        // A cancelled maintenance opens nothing again, whichever silences it had.
        if Self.isMaintenanceCancel(event) { state.status = MaintenanceWindowLifecycle.deletedStatus }
        let id = request.method == "POST" ? Self.silenceID(in: response) : nil
        guard let instance = tag.instance else {
            switch (request.method, tag.action) {
            case ("DELETE", .clear): state.status = Self.clearedStatus
            case ("DELETE", _): state.status = MaintenanceWindowLifecycle.deletedStatus
            case (_, .clear):
                state.objectID = id ?? state.objectID
                state.status = Self.clearedStatus
            default:
                state.objectID = id ?? state.objectID
                state.status = "scheduled"
                state.windowStart = event.window.start
                state.windowEnd = event.window.end
            }
            if let objectID = state.objectID, let base = urls.first { state.link = link(base, objectID) }
            return state
        }
        var objects = state.objects ?? [:]
        let previous = objects[instance]
        if request.method == "DELETE" {
            if let previous { objects[instance] = HeldObject(id: previous.id, status: Self.deletedStatus, end: context.now, link: previous.link) }
        } else if let id = id ?? previous?.id {
            let end = (try? JSONValue.parse(request.body))?["endsAt"]?.stringValue.flatMap(Timestamp.parseRFC3339)
            objects[instance] = HeldObject(
                id: id, status: tag.action == .clear ? Self.clearingStatus : Self.activeStatus, end: end, link: urls.first.map { link($0, id) })
        }
        state.objects = objects
        return state
    }
}

/// What a request's `object` says: which object it acts on (`maintenance`, or `server:<instance
/// id>`) and what it does to it. Written `<key>#<action>` and read at the last `#`, so an
/// instance id may hold one.
struct ObjectTag: Sendable {
    enum Action: String, Sendable {
        /// Create or move (and, for Icinga, prune what the new downtimes replace).
        case set
        /// End soon: `clearAfter` after the outcome.
        case clear
        /// End now: cancelled.
        case end
    }

    let key: String
    let action: Action

    init(key: String, action: Action) {
        self.key = key
        self.action = action
    }

    init?(_ object: String?) {
        guard let object, let hash = object.lastIndex(of: "#"),
            let action = Action(rawValue: String(object[object.index(after: hash)...]))
        else { return nil }
        key = String(object[..<hash])
        self.action = action
    }

    var text: String { "\(key)#\(action.rawValue)" }

    /// The server's instance id for a server's object.
    var instance: String? { key.hasPrefix("server:") ? String(key.dropFirst("server:".count)) : nil }
}

/// A kind that keeps its silences through `SilenceAPI` (Alertmanager, Grafana): planning,
/// answers and follow-up state are the API's; the kind supplies its config and paths.
public protocol SilenceAPITarget: RegisteredTarget {
    var api: SilenceAPI { get }
}

extension SilenceAPITarget {
    public var usesMaintenanceState: Bool { true }

    public func plan(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> DeliveryStep {
        try api.plan(event, context: context, targetName: name)
    }

    public func classify(_ result: Result<TransportResponse, TransportFailure>, for request: OutboundRequest) -> DeliveryOutcome {
        api.classify(result, for: request)
    }

    public func followUp(after response: TransportResponse, to request: OutboundRequest, event: PatchEvent, context: RenderContext) -> FollowUpState?
    {
        api.followUp(after: response, to: request, event: event, context: context)
    }
}

extension SilenceAPI {
    /// `base` without its trailing slash, followed by `path`: a silence's page in the UI.
    static func page(_ base: URL, _ path: String) -> String {
        base.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + path
    }
}
