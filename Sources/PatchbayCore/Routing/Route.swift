import Foundation

/// Which events a route takes. A key left out matches anything.
public struct RouteMatch: Sendable, Hashable {
    public var app: String?
    public var environment: String?
    public var tags: [String: String]

    public init(app: String? = nil, environment: String? = nil, tags: [String: String] = [:]) {
        self.app = app
        self.environment = environment
        self.tags = tags
    }

    public func matches(app: String, environment: String, tags: [String: String]) -> Bool {
        if let expected = self.app, expected != app { return false }
        if let expected = self.environment, expected != environment { return false }
        return self.tags.allSatisfy { tags[$0.key] == $0.value }
    }
}

/// A target named by a route, with the vendor resources the route adds: Statuspage component
/// ids, Pingdom check ids.
public struct RouteTarget: Sendable, Hashable {
    public var name: String
    public var resources: [String]

    public init(_ name: String, resources: [String] = []) {
        self.name = name
        self.resources = resources
    }
}

/// Sends the events it matches to its targets, in place of a hand-written if/elif chain.
public struct Route: Sendable {
    public var match: RouteMatch
    public var targets: [RouteTarget]
    /// The zone messages are displayed in, and the zone of a local window time the event leaves unzoned.
    public var timezone: TimeZone?
    /// Reminders, "beginning" and overrun notices Patchbay sends on its own for the maintenances
    /// this route takes.
    public var notices: NoticeSettings
    /// Wording for the targets this route names; it wins over each target's own `templates`.
    public var templates: TemplateSources?
    /// One message per server and stage, or a summary per maintenance and stage, for chat targets.
    public var chat = ChatGrouping()

    public init(match: RouteMatch, targets: [RouteTarget], timezone: TimeZone? = nil, notices: NoticeSettings = NoticeSettings()) {
        self.match = match
        self.targets = targets
        self.timezone = timezone
        self.notices = notices
    }

    public init(match: RouteMatch, targets: [String], timezone: TimeZone? = nil, notices: NoticeSettings = NoticeSettings()) {
        self.init(match: match, targets: targets.map { RouteTarget($0) }, timezone: timezone, notices: notices)
    }
}

/// A delivery to create for one event: one per target, however many routes name it.
public struct DeliveryPlan: Sendable, Hashable, Codable {
    public var target: String
    public var targetKind: String
    /// IANA zone name the message shows the window in.
    public var displayTimeZone: String
    /// Statuspage component ids or Pingdom check ids, from every route that names the target.
    public var resources: [String]
    /// Set on a summary (`chat.mode: per-maintenance`): it is due this many seconds after the
    /// event, and an event finding a summary of its (maintenance, target, stage) still pending
    /// adds no delivery: it is in that summary.
    public var summaryWait: Double?
    /// Set for the target's live message (`chat.mode: live`): every event of the maintenance goes
    /// to the target's live lane, and each delivery edits that one message.
    public var live: Bool?

    /// The lane the delivery queues in: the target's summary lane for a summary, its live lane
    /// for the live message.
    public var lane: DeliveryLane { DeliveryLane(target: target, isSummary: summaryWait != nil, isLive: live == true) }

    /// The plan as stored for `event` as the store finally keeps it: a summary plan whose event
    /// turned out not to be grouped (the planner made a server's `patch.scheduled` a reschedule
    /// notice) goes back to the target's own lane, one message, at once.
    public func settled(for event: PatchEvent) -> DeliveryPlan {
        guard summaryWait != nil, !ChatGrouping.groups(event) else { return self }
        return DeliveryPlan(target: target, targetKind: targetKind, displayTimeZone: displayTimeZone, resources: resources)
    }

    public init(
        target: String, targetKind: String, displayTimeZone: String, resources: [String] = [], summaryWait: Double? = nil, live: Bool? = nil
    ) {
        self.summaryWait = summaryWait
        self.live = live
        self.target = target
        self.targetKind = targetKind
        self.displayTimeZone = displayTimeZone
        self.resources = resources
    }
}

public struct RouteTable: Sendable {
    public var routes: [Route]

    public init(routes: [Route]) {
        self.routes = routes
    }

    public func matching(app: String, environment: String, tags: [String: String]) -> [Route] {
        routes.filter { $0.match.matches(app: app, environment: environment, tags: tags) }
    }

    /// The zone for a local window time the event leaves unzoned: the first matching route's.
    public func fallbackZone(app: String, environment: String, tags: [String: String]) -> TimeZone? {
        matching(app: app, environment: environment, tags: tags).lazy.compactMap(\.timezone).first
    }

    /// The notice plan and display zone of a maintenance: those of the first route that matches
    /// its event; nil when no route does.
    public func noticeSettings(for event: PatchEvent) -> (settings: NoticeSettings, displayTimeZone: String)? {
        guard let route = matching(app: event.app, environment: event.environment, tags: event.tags).first else { return nil }
        return (route.notices, route.timezone?.identifier ?? event.window.timezone ?? "UTC")
    }

    /// The route templates for `target` when delivering `event`: those of the first matching route
    /// that names the target and has templates.
    public func templates(for event: PatchEvent, target: String) -> TemplateSources? {
        matching(app: event.app, environment: event.environment, tags: event.tags)
            .first { route in route.templates != nil && route.targets.contains { $0.name == target } }?.templates
    }

    /// One plan per distinct target, in route order: the first route naming a target sets its
    /// zone; resources from every matching route are merged, so each maintenance still gets one
    /// incident or window per target.
    /// `isChat` tells which kinds a route's `chat:` grouping applies to, `editsInPlace` which
    /// targets (by name) can keep a live message; in a live route the other chat targets send
    /// one summary per maintenance and stage instead.
    public func plans(
        for event: PatchEvent, kindOf: (String) -> String?, isChat: (String) -> Bool = { _ in false },
        editsInPlace: (String) -> Bool = { _ in false }
    ) -> [DeliveryPlan] {
        var index: [String: Int] = [:]
        var plans: [DeliveryPlan] = []
        for route in matching(app: event.app, environment: event.environment, tags: event.tags) {
            let zone = route.timezone?.identifier ?? event.window.timezone ?? "UTC"
            let summarize = route.chat.mode != .perInstance && ChatGrouping.groups(event)
            for target in route.targets {
                // One plan per configured target, summary or not: the first route naming it decides.
                if let existing = index[target.name] {
                    for resource in target.resources where !plans[existing].resources.contains(resource) {
                        plans[existing].resources.append(resource)
                    }
                    continue
                }
                guard let kind = kindOf(target.name) else { continue }
                index[target.name] = plans.count
                if route.chat.mode == .live && isChat(kind) && editsInPlace(target.name) {
                    plans.append(
                        DeliveryPlan(target: target.name, targetKind: kind, displayTimeZone: zone, resources: target.resources, live: true))
                    continue
                }
                plans.append(
                    DeliveryPlan(
                        target: target.name, targetKind: kind, displayTimeZone: zone, resources: target.resources,
                        summaryWait: summarize && isChat(kind) ? route.chat.groupWait.seconds : nil))
            }
        }
        return plans
    }
}
