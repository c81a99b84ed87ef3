import Foundation
import PatchbayCore

/// Icinga 2 downtimes (`kind: icinga2`, REST API v1): one fixed downtime per matched host (and
/// all its services) per maintenance, following the window, and with `instances` one per server
/// from its `started` report until `clearAfter` after its outcome.
///
/// Icinga 2 has no action that moves or shortens a downtime, so a change schedules the new
/// downtimes, then removes the old ones (no gap). Downtimes are found by what their comment
/// carries, not by stored names: `patchbay:<maintenance>/<object>` and the `gen:` of the delivery
/// that made them. A retried delivery finds what an earlier attempt (killed before its record)
/// scheduled and does not schedule it twice; a cancel removes every downtime of the maintenance
/// in one request. Values from events reach Icinga only through `filter_vars`, never inside the
/// filter text, so no name can change what a filter means.
///
/// Facts (Icinga 2.13.6 on Debian, `doc/12-icinga2-api.md`, `lib/icinga/apiactions.cpp`;
/// `../shared/reference/monitors-and-live-messages.md` §2.4): every non-GET request needs
/// `Accept: application/json`; a schedule or remove that matches nothing answers 500 with
/// `{"results": []}` on 2.13 and 404 "No objects found." on 2.14 and later; an objects query
/// that matches nothing answers 200 with no results.
///
/// Config: `targets.<name>: {kind: icinga2, url: https://icinga.example.com:5665, username:
/// patchbay, password: ${ICINGA_API_PASSWORD}, caFile: /etc/patchbay/icinga-ca.crt}` (`urls:`
/// for several masters; `author`, default `Patchbay`). The API user needs the permissions
/// `actions/schedule-downtime`, `actions/remove-downtime` and `objects/query/Downtime`.
/// Route: `routes[].icinga2: {target, filter: 'host.vars.app == "App1"', clearAfter: 10m,
/// instances: {filter: 'host.name == "{{instance.name}}"', clearAfter: 10m}}`.
public struct Icinga2Target: RegisteredTarget {
    public static let kind = "icinga2"
    public static let defaultPolicy = TargetPolicy(pacing: PacingPolicy(rate: 10, burst: 10))
    public static let traits = TargetKindTraits(
        kind: kind,
        routeResource: RouteResourceKey(
            routeKey: "icinga2", listKey: nil, optionalScalarKeys: ["filter", "clearAfter"],
            sections: ["instances": ["filter", "clearAfter"]], check: { Icinga2Target.routeProblems($0) }),
        keepsMaintenanceObject: true)

    public let name: String
    public let connection: MonitorConnection
    public let author: String
    public var kind: String { Self.kind }
    public var secrets: [Secret] { connection.secrets }
    public var usesMaintenanceState: Bool { true }

    public init(name: String, connection: MonitorConnection, author: String = "Patchbay") {
        self.name = name
        self.connection = connection
        self.author = author
    }

    public init?(name: String, section: ConfigSection) {
        section.allowOnly(TargetRegistry.commonKeys.union(MonitorConnection.keys).union(["author"]))
        let author = section.string("author") ?? "Patchbay"
        guard let connection = MonitorConnection(section: section, basicAuthRequired: true) else { return nil }
        self.init(name: name, connection: connection, author: author)
    }

    // MARK: Route entries

    static func routeProblems(_ resources: [String]) -> [(key: String, problem: String)] {
        var problems: [(key: String, problem: String)] = []
        let wide = RouteResources.scalar("filter", in: resources)
        let instance = RouteResources.scalar("filter", inSection: "instances", in: resources)
        if wide == nil && instance == nil {
            problems.append(("", "needs filter (the maintenance's downtimes), instances.filter (one per server), or both"))
        }
        for (key, text) in [("filter", wide), ("instances.filter", instance)] {
            guard let text else { continue }
            if let problem = Icinga2Filter.problem(text) { problems.append((key, problem)) }
        }
        if let wide, wide.contains("{{instance.") {
            problems.append(("filter", "the maintenance's downtimes are for no one server: use {{instance.name}} in instances.filter"))
        }
        if instance == nil, RouteResources.scalar("clearAfter", inSection: "instances", in: resources) != nil {
            problems.append(("instances.filter", "is required with instances: the filter that picks one server's host"))
        }
        return problems + SilenceAPI.clearAfterProblems(resources)
    }

    // MARK: Planning

    static let maintenanceKey = "maintenance"

    public func plan(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> DeliveryStep {
        let resources = context.resources
        let (clearAfter, serverClear) = SilenceAPI.clearAfter(in: resources)
        var links: [[Link]] = []
        var reasons: [String] = []
        if let filter = RouteResources.scalar("filter", in: resources) {
            switch maintenanceLinks(event, context: context, filter: try Icinga2Filter(filter), clearAfter: clearAfter) {
            case .success(let chain): links.append(chain)
            case .failure(let reason): reasons.append(reason.description)
            }
        }
        if let filter = RouteResources.scalar("filter", inSection: "instances", in: resources) {
            switch serverLinks(event, context: context, filter: try Icinga2Filter(filter), clearAfter: serverClear) {
            case .success(let chain): links.append(chain)
            case .failure(let reason): reasons.append(reason.description)
            }
        }
        let all = links.flatMap { $0 }
        guard !all.isEmpty else { return .skip(reason: reasons.isEmpty ? "nothing to change in the downtimes" : reasons.joined(separator: "; ")) }
        return .chain(all[...], nothingToDo: "nothing to change in the downtimes")
    }

    typealias Link = RequestLink

    static func found(in response: TransportResponse) -> Bool {
        guard case .array(let results)? = (try? JSONValue.parse(response.body))?["results"] else { return false }
        return !results.isEmpty
    }

    private func maintenanceLinks(
        _ event: PatchEvent, context: RenderContext, filter: Icinga2Filter, clearAfter: Duration
    ) -> Result<[Link], RenderError> {
        var lifecycleEvent = event
        if SilenceAPI.isServerOutcome(event) { lifecycleEvent.type = .completed }
        let step = MaintenanceWindowLifecycle.step(for: lifecycleEvent, followUp: context.followUp)
        let key = Self.maintenanceKey
        let marker = self.marker(event, object: key)
        switch step {
        case .nothingToEnd:
            return .failure(RenderError("no downtime was scheduled for this maintenance, so there is nothing to remove"))
        case .alreadyEnded:
            return .failure(RenderError("the maintenance's downtimes were removed when it was cancelled"))
        case .end:
            // Every downtime of the maintenance, its servers' included, in one request.
            return .success([.send(remove(matching: self.marker(event, object: ""), except: nil, tag: ObjectTag(key: key, action: .end)))])
        case .create, .move:
            guard event.window.end > context.now, event.type != .cancelled else {
                return .failure(RenderError("the window ended at \(Timestamp.rfc3339(event.window.end)); a downtime for it would quiet nothing"))
            }
            return .success(
                replace(
                    marker: marker, filter: filter, event: event, start: event.window.start, end: event.window.end, context: context,
                    tag: ObjectTag(key: key, action: .set)))
        case .covered(let held):
            let status = context.followUp?.status
            // A server starting after the downtimes were cleared (a serial rollout) opens them
            // again until the window's end.
            if status == SilenceAPI.clearedStatus, event.type == .started, event.notice == nil {
                guard let end = held.end, end > context.now else {
                    return .failure(RenderError("the window has ended; the maintenance's downtimes stay cleared"))
                }
                return .success(
                    replace(
                        marker: marker, filter: filter, event: event, start: held.start ?? event.window.start, end: end, context: context,
                        tag: ObjectTag(key: key, action: .set)))
            }
            let finished =
                SilenceAPI.isServerOutcome(event) && context.maintenance.instanceCount > 0 && context.maintenance.unfinishedCount == 0
            guard finished, status != SilenceAPI.clearedStatus else {
                return .failure(RenderError("the maintenance's downtimes already cover this event"))
            }
            let clearAt = context.now.addingTimeInterval(clearAfter.seconds)
            if let end = held.end, end <= clearAt {
                return .failure(RenderError("the maintenance's downtimes end at \(Timestamp.rfc3339(end)) anyway"))
            }
            let clear = ObjectTag(key: key, action: .clear)
            if let start = held.start, start > clearAt {
                return .success([.send(remove(matching: marker, except: nil, tag: clear))])
            }
            return .success(
                replace(marker: marker, filter: filter, event: event, start: held.start ?? context.now, end: clearAt, context: context, tag: clear))
        }
    }

    private func serverLinks(_ event: PatchEvent, context: RenderContext, filter: Icinga2Filter, clearAfter: Duration) -> Result<[Link], RenderError>
    {
        if SilenceAPI.isMaintenanceCancel(event) {
            // Every server's downtime of the maintenance, in one request (a route with a
            // maintenance-wide filter already removed them with its own).
            let open = (context.followUp?.objects ?? [:]).values.contains { $0.status != MaintenanceWindowLifecycle.deletedStatus }
            guard open else { return .failure(RenderError("no server downtime is scheduled")) }
            return .success([
                .send(remove(matching: marker(event, object: ""), except: nil, tag: ObjectTag(key: Self.maintenanceKey, action: .end)))
            ])
        }
        guard let instance = event.instance, event.notice == nil else { return .success([]) }
        let held = context.followUp?.objects?[instance.id]
        let key = SilenceAPI.serverKey(instance.id)
        let marker = self.marker(event, object: instance.id)
        switch event.type {
        case .started:
            if held?.status == SilenceAPI.activeStatus { return .failure(RenderError("\(instance.id)'s downtime is already scheduled")) }
            if context.followUp?.status == MaintenanceWindowLifecycle.deletedStatus { return .failure(RenderError("the maintenance was cancelled")) }
            let end = max(event.window.end, context.now).addingTimeInterval(context.overrunExtend.seconds)
            return .success(
                replace(
                    marker: marker, filter: filter, event: event, start: context.now, end: end, context: context,
                    tag: ObjectTag(key: key, action: .set)))
        case .completed, .failed, .cancelled:
            guard held?.status == SilenceAPI.activeStatus else { return .failure(RenderError("\(instance.id) has no downtime to end")) }
            let end = context.now.addingTimeInterval(clearAfter.seconds)
            return .success(
                replace(
                    marker: marker, filter: filter, event: event, start: context.now, end: end, context: context,
                    tag: ObjectTag(key: key, action: .clear)))
        default:
            return .success([])
        }
    }

    /// New downtimes for [start, end], then the older ones of the same object removed: looked up
    /// first by this delivery's generation, so a retry schedules nothing twice.
    private func replace(
        marker: String, filter: Icinga2Filter, event: PatchEvent, start: Date, end: Date, context: RenderContext, tag: ObjectTag
    ) -> [Link] {
        let generation = "gen:" + Data("\(context.deliveryID)\n\(tag.text)".utf8).sha256Hex.prefix(10)
        let comment = Self.comment(event, key: tag.key) + " [\(marker) \(generation)]"
        return [
            // Scheduled only when the lookup finds nothing (a retry whose earlier attempt
            // scheduled the downtimes already).
            .decide(
                query(matching: marker, generation: generation), skipReason: "the downtimes were scheduled by an earlier attempt",
                then: { [self] answer in
                    Self.found(in: answer) ? nil : schedule(filter: filter, event: event, start: start, end: end, comment: comment, tag: tag)
                }),
            .send(remove(matching: marker, except: generation, tag: tag)),
        ]
    }

    /// `patchbay:<maintenance>/<object>`: the maintenance's token, then `maintenance` or the server.
    func marker(_ event: PatchEvent, object: String) -> String {
        let key = event.maintenanceKey
        let token = Data([name, key.app, key.environment, key.window].joined(separator: "\n").utf8).sha256Hex.prefix(12)
        guard !object.isEmpty else { return "patchbay:\(token)/" }
        let objectToken = object == Self.maintenanceKey ? object : "server-" + Data(object.utf8).sha256Hex.prefix(8)
        return "patchbay:\(token)/\(objectToken)"
    }

    static func comment(_ event: PatchEvent, key: String) -> String {
        let window = event.window.id.map { ", window \($0)" } ?? ""
        if let instance = event.instance, key.hasPrefix("server:") {
            return "Patchbay: \(instance.name ?? instance.id) is being patched (\(event.systemName)\(window))"
        }
        return "Patchbay: Scheduled Maintenance for \(event.systemName)\(window)"
    }

    // MARK: Requests

    private func request(_ path: String, body: JSONValue, tag: ObjectTag?, override: String? = nil) -> OutboundRequest {
        let urls = connection.urls.map { $0.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + path }
        // Exactly application/json: Icinga 2 answers 400 to a non-GET request without it.
        var headers = connection.headers + [HTTPHeader("Accept", "application/json"), HTTPHeader("Content-Type", "application/json")]
        if let override { headers.append(HTTPHeader("X-HTTP-Method-Override", override)) }
        let data = (try? JSONEncoder.patchbay().encode(body)) ?? Data()
        return OutboundRequest(
            method: "POST", url: Secret(urls[0]), displayURL: SilenceAPI.displayable(urls[0]), headers: headers, body: data, object: tag?.text,
            fallbackURLs: urls.dropFirst().map { Secret($0) })
    }

    func schedule(filter: Icinga2Filter, event: PatchEvent, start: Date, end: Date, comment: String, tag: ObjectTag) -> OutboundRequest {
        let (text, variables) = filter.bound(to: event)
        let body: JSONValue = .object([
            "type": .string("Host"), "filter": .string(text), "filter_vars": .object(variables.mapValues { .string($0) }),
            "start_time": .number(Timestamp.clamped(start).timeIntervalSince1970.rounded(.down)),
            "end_time": .number(Timestamp.clamped(end).timeIntervalSince1970.rounded(.up)),
            "fixed": .bool(true), "all_services": .bool(true), "author": .string(author), "comment": .string(comment),
        ])
        return request("/v1/actions/schedule-downtime", body: body, tag: tag)
    }

    /// Downtimes of this author whose comment holds `marker` (and not `except`).
    private func downtimeFilter(marker: String, generation: String?, excluding: Bool) -> (String, [String: JSONValue]) {
        var filter = "downtime.author == patchbay_author && match(patchbay_marker, downtime.comment)"
        var variables: [String: JSONValue] = ["patchbay_author": .string(author), "patchbay_marker": .string("*\(marker)*")]
        if let generation {
            filter += excluding ? " && !match(patchbay_generation, downtime.comment)" : " && match(patchbay_generation, downtime.comment)"
            variables["patchbay_generation"] = .string("*\(generation)*")
        }
        return (filter, variables)
    }

    func query(matching marker: String, generation: String) -> OutboundRequest {
        let (filter, variables) = downtimeFilter(marker: marker, generation: generation, excluding: false)
        let body: JSONValue = .object(["filter": .string(filter), "filter_vars": .object(variables), "attrs": .array([.string("name")])])
        return request("/v1/objects/downtimes", body: body, tag: nil, override: "GET")
    }

    func remove(matching marker: String, except generation: String?, tag: ObjectTag) -> OutboundRequest {
        let (filter, variables) = downtimeFilter(marker: marker, generation: generation, excluding: true)
        let body: JSONValue = .object(["type": .string("Downtime"), "filter": .string(filter), "filter_vars": .object(variables)])
        return request("/v1/actions/remove-downtime", body: body, tag: tag)
    }

    // MARK: Answers

    /// A remove or a lookup that matched nothing is done (2.13: 500 with no results; 2.14: 404);
    /// a schedule that matched no host is refused: the route's filter names no host Icinga knows.
    public func classify(_ result: Result<TransportResponse, TransportFailure>, for request: OutboundRequest) -> DeliveryOutcome {
        guard case .success(let response) = result, response.status == 404 || response.status == 500 else { return ResponseRule.classify(result) }
        let text = String(decoding: response.body.prefix(512), as: UTF8.self)
        let matchedNothing =
            text.contains("No objects found") || (response.status == 500 && text.replacingOccurrences(of: " ", with: "").contains(#""results":[]"#))
        guard matchedNothing else { return ResponseRule.classify(result) }
        if request.url.reveal().hasSuffix("/v1/actions/schedule-downtime") {
            return .permanent(reason: ResponseRule.Reason.clientError)
        }
        return .delivered(reason: ResponseRule.Reason.delivered)
    }

    public func followUp(after response: TransportResponse, to request: OutboundRequest, event: PatchEvent, context: RenderContext) -> FollowUpState?
    {
        guard let tag = ObjectTag(request.object) else { return nil }
        var state = context.followUp ?? FollowUpState()
        if SilenceAPI.isMaintenanceCancel(event) { state.status = MaintenanceWindowLifecycle.deletedStatus }
        let scheduled = request.url.reveal().hasSuffix("/v1/actions/schedule-downtime")
        var names: [String] = []
        if scheduled, case .array(let results)? = (try? JSONValue.parse(response.body))?["results"] {
            names = results.compactMap { $0["name"]?.stringValue }
        }
        guard let instance = tag.instance else {
            switch tag.action {
            case .end:
                // The remove took every downtime of the maintenance, the servers' too.
                state.status = MaintenanceWindowLifecycle.deletedStatus
                state.objects = state.objects?.mapValues { HeldObject(id: $0.id, status: MaintenanceWindowLifecycle.deletedStatus, end: $0.end) }
            case .clear: state.status = SilenceAPI.clearedStatus
            case .set:
                state.status = "scheduled"
                state.windowStart = event.window.start
                state.windowEnd = event.window.end
            }
            // The maintenance's downtimes are found by their marker, so the object id is the
            // marker: it stays the same through moves (Icinga makes new downtimes for each).
            if tag.action != .end { state.objectID = marker(event, object: Self.maintenanceKey) }
            return state
        }
        var objects = state.objects ?? [:]
        let previous = objects[instance]
        let end = (try? JSONValue.parse(request.body))?["end_time"].flatMap { value -> Date? in
            if case .number(let seconds) = value { return Date(timeIntervalSince1970: seconds) }
            return nil
        }
        let status = tag.action == .clear ? SilenceAPI.clearingStatus : SilenceAPI.activeStatus
        objects[instance] = HeldObject(id: names.first ?? previous?.id ?? marker(event, object: instance), status: status, end: end ?? previous?.end)
        state.objects = objects
        return state
    }
}
