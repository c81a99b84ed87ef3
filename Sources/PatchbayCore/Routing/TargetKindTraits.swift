import Foundation

/// What a route may add for the targets of one kind, read without Core knowing the kind:
/// `statuspage: {target: status, components: [...]}` is `RouteResourceKey(routeKey: "statuspage",
/// listKey: "components", ...)`, declared by the Statuspage folder through the target registry.
public struct RouteResourceKey: Sendable {
    /// The route's key that names the target and lists its resources.
    public var routeKey: String
    /// The list inside it: component ids, check ids, service ids; nil for a kind without one.
    public var listKey: String?
    /// nil for an acceptable resource id, else why it is not ("expected a numeric check id").
    public var validate: @Sendable (String) -> String?
    /// Single-text keys beside the list (`datadog: {target, scope: "env:prod", monitorTags: [...]}`),
    /// each required. They travel in the delivery's resources as `@key=value` (see `RouteResources`).
    public var scalarKeys: [String]
    /// Whether the list may be empty or left out (Datadog's monitor tags default to all monitors).
    public var listRequired: Bool
    /// Single-text keys that may be left out (`alertmanager: {clearAfter: 10m}`), as `@key=value`.
    public var optionalScalarKeys: [String]
    /// Maps of single-text keys inside the entry (`instances: {matcher: ..., clearAfter: 10m}`),
    /// by name, each with its keys; they travel as `@section.key=value`.
    public var sections: [String: [String]]
    /// Checks the entry as a whole once each part was read (`resources` encoded as delivered):
    /// problems by the key they concern (`matchers[1]`, `instances.clearAfter`, or "" for the
    /// entry itself).
    public var check: @Sendable (_ resources: [String]) -> [(key: String, problem: String)]

    public init(
        routeKey: String, listKey: String?, scalarKeys: [String] = [], listRequired: Bool = false,
        optionalScalarKeys: [String] = [], sections: [String: [String]] = [:],
        validate: @escaping @Sendable (String) -> String? = { _ in nil },
        check: @escaping @Sendable ([String]) -> [(key: String, problem: String)] = { _ in [] }
    ) {
        self.routeKey = routeKey
        self.listKey = listKey
        self.scalarKeys = scalarKeys
        self.listRequired = listRequired
        self.optionalScalarKeys = optionalScalarKeys
        self.sections = sections
        self.check = check
        self.validate = validate
    }
}

/// A delivery's route resources: list items as they are, scalar keys as `@key=value`.
public enum RouteResources {
    public static func encode(scalar key: String, _ value: String) -> String { "@\(key)=\(value)" }

    /// `@section.key=value`, a key of a map inside the route's entry.
    public static func encode(section: String, key: String, _ value: String) -> String { "@\(section).\(key)=\(value)" }

    /// The value of `key` in map `section`, from the first route that set it.
    public static func scalar(_ key: String, inSection section: String, in resources: [String]) -> String? {
        scalar("\(section).\(key)", in: resources)
    }

    /// The value of scalar `key`, from the first route that set it.
    public static func scalar(_ key: String, in resources: [String]) -> String? {
        let prefix = "@\(key)="
        return resources.first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
    }

    /// The list items (component ids, check ids, service ids, monitor tags).
    public static func items(in resources: [String]) -> [String] {
        resources.filter { !$0.hasPrefix("@") }
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

    public init(
        kind: String, routeResource: RouteResourceKey? = nil, acceptsPassthrough: Bool = false, isChat: Bool = false,
        keepsMaintenanceObject: Bool = false
    ) {
        self.kind = kind
        self.keepsMaintenanceObject = keepsMaintenanceObject
        self.routeResource = routeResource
        self.acceptsPassthrough = acceptsPassthrough
        self.isChat = isChat
    }
}
