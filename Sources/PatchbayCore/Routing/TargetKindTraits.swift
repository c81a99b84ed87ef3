import Foundation

/// What a route may add for the targets of one kind, read without Core knowing the kind:
/// `statuspage: {target: status, components: [...]}` is `RouteResourceKey(routeKey: "statuspage",
/// listKey: "components", ...)`, declared by the Statuspage folder through the target registry.
public struct RouteResourceKey: Sendable {
    /// The route's key that names the target and lists its resources.
    public var routeKey: String
    /// The list inside it: component ids, check ids, service ids.
    public var listKey: String
    /// nil for an acceptable resource id, else why it is not ("expected a numeric check id").
    public var validate: @Sendable (String) -> String?

    public init(routeKey: String, listKey: String, validate: @escaping @Sendable (String) -> String? = { _ in nil }) {
        self.routeKey = routeKey
        self.listKey = listKey
        self.validate = validate
    }
}

/// What the configuration and the server need to know about a target kind, declared by the kind
/// itself, so a new kind touches its own folder and the registry, never Core or the server.
public struct TargetKindTraits: Sendable {
    public var kind: String
    /// The route-level resources this kind takes, if any.
    public var routeResource: RouteResourceKey?
    /// Whether relayed bodies may be passed through to it unchanged (`sources.<name>.passthrough`).
    public var acceptsPassthrough: Bool
    /// Whether it posts one chat message per event, so a route's `chat:` grouping applies to it.
    public var isChat: Bool
    /// Whether it keeps one vendor object per maintenance that follows the window on its own
    /// (an incident, a maintenance window): reminders and "beginning" notices skip it.
    public var keepsMaintenanceObject: Bool

    public init(kind: String, routeResource: RouteResourceKey? = nil, acceptsPassthrough: Bool = false, isChat: Bool = false,
                keepsMaintenanceObject: Bool = false) {
        self.kind = kind
        self.keepsMaintenanceObject = keepsMaintenanceObject
        self.routeResource = routeResource
        self.acceptsPassthrough = acceptsPassthrough
        self.isChat = isChat
    }
}
