import Foundation
import PatchbayCore
import PatchbayTargets

/// What a target renders a delivery from, decided once: the target a lane names, the route's own
/// wording, and the maintenance's state as deep as the send needs. The dispatcher's plan stage
/// and the request previews (the console, `patchbay deliveries show --request`) both go through
/// it, so a preview shows what the dispatcher would send.
struct DeliveryPlanner: Sendable {
    let routeTemplates: RouteTemplates
    let store: any DispatchStore

    /// A delivery's lane (`target`, or `target/digest` for a maintenance summary) as the target
    /// it names.
    struct Lane {
        /// The lane as stored: the maintenance state is kept per lane.
        var stored: String
        var targetName: String
        var isDigest: Bool

        init(_ stored: String) {
            self.stored = stored
            (targetName, isDigest) = DigestLane.split(stored)
        }
    }

    /// One delivery to render: its event on its lane, for its target.
    struct Send {
        var event: PatchEvent
        var lane: Lane
        var target: any DeliveryTarget
        /// A relayed body is sent as it came: no route wording, no maintenance state.
        var relayed: Bool
        var displayTimeZone: String
        var deliveryID: String
        var now: Date
        var resources: [String]
        var encodedEvent: Data?

        /// The route's own wording for this target, which wins over the target's.
        func templates(from routeTemplates: RouteTemplates) -> MessageTemplates? {
            relayed || routeTemplates.isEmpty ? nil : routeTemplates.templates(for: event, target: lane.targetName)
        }
    }

    /// What `send` is rendered with. Reads the maintenance only when the target or the route's
    /// wording uses it, or the lane is a summary.
    /// - Throws: when the maintenance's state cannot be read (the caller decides: the dispatcher
    ///   leaves the delivery leased, a preview renders without it).
    func context(for send: Send) async throws -> RenderContext {
        // Looked up once per send: the routes are matched against the event on every delivery.
        let templates = send.templates(from: routeTemplates)
        let needsState = !send.relayed && (send.target.usesMaintenanceState || templates != nil || send.lane.isDigest)
        let state = needsState ? try await readMaintenance(for: send.event, lane: send.lane, target: send.target) : (nil, .empty)
        return Self.context(for: send, state: state, templates: templates)
    }

    /// `send`'s context with the maintenance state already read (or left out).
    func context(for send: Send, state: (FollowUpState?, MaintenanceSnapshot)) -> RenderContext {
        Self.context(for: send, state: state, templates: send.templates(from: routeTemplates))
    }

    private static func context(for send: Send, state: (FollowUpState?, MaintenanceSnapshot), templates: MessageTemplates?) -> RenderContext {
        RenderContext(
            displayTimeZone: TimeZone(identifier: send.displayTimeZone) ?? TimeZone(identifier: "UTC")!,
            deliveryID: send.deliveryID, now: send.now, followUp: state.0, maintenance: state.1, resources: send.resources,
            routeTemplates: templates, isDigest: send.lane.isDigest, encodedEvent: send.encodedEvent)
    }

    /// The maintenance as deep as this send needs: a summary names every server; other sends
    /// read counts and a few names, and only the send that will list the updated packages reads
    /// the maintenance again with them (a backlog of completions that skip reads no lists).
    func readMaintenance(for event: PatchEvent, lane: Lane, target: any DeliveryTarget) async throws -> (FollowUpState?, MaintenanceSnapshot) {
        if lane.isDigest { return try await store.maintenanceContext(for: event, target: lane.stored, depth: .everyInstance) }
        let counted = try await store.maintenanceContext(for: event, target: lane.stored, depth: .counted)
        guard target.showsUpdatedPackages(for: event, followUp: counted.0, maintenance: counted.1) else { return counted }
        return try await store.maintenanceContext(for: event, target: lane.stored, depth: .withPackages)
    }
}
