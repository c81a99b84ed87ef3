import Foundation
import PatchbayCore
import PatchbayTargets

/// What a target renders a delivery from, decided once: the target a lane names, the route's own
/// wording, and the maintenance's state as deep as the send needs. The dispatcher's plan stage
/// and the request previews (the console, `patchbay deliveries show --request`) both go through
/// it, and so do the console's test message and `patchbay render`, so a preview shows what the
/// dispatcher would send.
struct DeliveryPlanner: Sendable {
    let routeTemplates: RouteTemplates
    /// The routes, for their notice settings (how far an overrun extends the window).
    var routes = RouteTable(routes: [])

    /// One delivery to render: its event on its lane, for its target.
    struct Send {
        var event: PatchEvent
        var lane: DeliveryLane
        var target: any DeliveryTarget
        /// A relayed body is sent as it came: no route wording, no maintenance state.
        var relayed: RelayedMessage? = nil
        var displayTimeZone: String
        var deliveryID: String
        var now: Date
        var resources: [String] = []
        var encodedEvent: Data? = nil
        /// On a live lane: a later delivery of the lane is queued (a reply then only replies).
        var laterQueued = false

        /// What a live lane's delivery does; nil on other lanes.
        var live: LiveSend? {
            guard lane.isLive, relayed == nil else { return nil }
            return LiveSend(role: LiveRole(for: event), laterQueued: laterQueued)
        }

        /// The route's own wording for this target, which wins over the target's.
        func templates(from routeTemplates: RouteTemplates) -> MessageTemplates? {
            relayed != nil || routeTemplates.isEmpty ? nil : routeTemplates.templates(for: event, target: lane.target)
        }
    }

    /// The plan step: what the target makes of `send` (a request, a skip or a refusal).
    func step(for send: Send, context: RenderContext) throws(RenderError) -> DeliveryStep {
        if let relayed = send.relayed { return try send.target.relay(relayed, context: context) }
        return try send.target.plan(send.event, context: context)
    }

    /// What `send` is rendered with, reading the maintenance from `store` only when the target or
    /// the route's wording uses it, or the lane is a summary.
    /// - Throws: when the maintenance's state cannot be read (the caller decides: the dispatcher
    ///   leaves the delivery leased, a preview renders without it).
    func context(for send: Send, reading store: any DispatchStore) async throws -> RenderContext {
        // Looked up once per send: the routes are matched against the event on every delivery.
        let templates = send.templates(from: routeTemplates)
        let needsState =
            send.relayed == nil && (send.target.usesMaintenanceState || templates != nil || send.lane.isSummary || send.lane.isLive)
        let state =
            needsState ? try await Self.readMaintenance(for: send.event, lane: send.lane, target: send.target, from: store) : (nil, .empty)
        return context(for: send, state: state, templates: templates)
    }

    /// `send`'s context with the maintenance state already known (or left out): previews that
    /// have no store (`patchbay render`, the console's test message) or could not read it.
    func context(for send: Send, state: (FollowUpState?, MaintenanceSnapshot)) -> RenderContext {
        context(for: send, state: state, templates: send.templates(from: routeTemplates))
    }

    private func context(for send: Send, state: (FollowUpState?, MaintenanceSnapshot), templates: MessageTemplates?) -> RenderContext {
        RenderContext(
            displayTimeZone: TimeZone(identifier: send.displayTimeZone) ?? TimeZone(identifier: "UTC")!,
            deliveryID: send.deliveryID, now: send.now, followUp: state.0, maintenance: state.1, resources: send.resources,
            routeTemplates: templates, isSummary: send.lane.isSummary, encodedEvent: send.encodedEvent,
            overrunExtend: overrunExtend(for: send), live: send.live)
    }

    /// The route's `overrunExtend`, matched only for the kinds that read the maintenance (a
    /// server's silence lasts that long past the window): a chat message's send, the hot path
    /// of a drain, matches no route for it.
    private func overrunExtend(for send: Send) -> Duration {
        let standard = NoticeSettings().overrunExtend
        guard send.target.usesMaintenanceState else { return standard }
        return routes.noticeSettings(for: send.event)?.settings.overrunExtend ?? standard
    }

    /// The maintenance as deep as this send needs: a summary names every server; other sends
    /// read counts and a few names, and only the send that will list the updated packages reads
    /// the maintenance again with them (a backlog of completions that skip reads no lists).
    static func readMaintenance(
        for event: PatchEvent, lane: DeliveryLane, target: any DeliveryTarget, from store: any DispatchStore
    ) async throws -> (FollowUpState?, MaintenanceSnapshot) {
        if lane.isSummary { return try await store.maintenanceContext(for: event, target: lane.storedName, depth: .everyInstance) }
        let counted = try await store.maintenanceContext(for: event, target: lane.storedName, depth: .counted)
        guard target.showsUpdatedPackages(for: event, followUp: counted.0, maintenance: counted.1) else { return counted }
        return try await store.maintenanceContext(for: event, target: lane.storedName, depth: .withPackages)
    }
}
