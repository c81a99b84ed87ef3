import Foundation
import PatchbayCore

/// A target kind as the registry knows it: its name, defaults and traits, and how to read its
/// config section. Each kind's folder declares these on its target type.
public protocol RegisteredTarget: DeliveryTarget {
    static var kind: String { get }
    /// Pacing and retry from the vendor's documented limits, before `delivery.retry` and the
    /// target's own `retry:` and `rate:`.
    static var defaultPolicy: TargetPolicy { get }
    /// Route-level resources, passthrough, chat grouping: what Core and the server ask of a kind.
    static var traits: TargetKindTraits { get }
    /// Reads `targets.<name>`, reporting problems to the section's diagnostics.
    init?(name: String, section: ConfigSection)
}

extension RegisteredTarget {
    public static var traits: TargetKindTraits { TargetKindTraits(kind: kind) }
}

/// The kinds of target Patchbay can deliver to. Adding one means a folder beside `Slack/` and a
/// line in `registered`; see "Adding a target kind" in the README.
public enum TargetRegistry {
    public static let registered: [any RegisteredTarget.Type] = [
        SlackTarget.self, TeamsTarget.self, StatuspageTarget.self, PingdomTarget.self, WebhookTarget.self,
        EmailTarget.self, GoogleChatTarget.self, DiscordTarget.self, PagerDutyTarget.self, DatadogTarget.self,
        AlertmanagerTarget.self, GrafanaTarget.self, Icinga2Target.self,
    ]

    public static let kinds: [String] = registered.map { $0.kind }

    public static func traits(of kind: String) -> TargetKindTraits? {
        registered.first { $0.kind == kind }?.traits
    }

    /// The route-level keys every kind declares (`statuspage:`, `pingdom:`), for `Route(section:)`.
    public static var routeResourceKeys: [(kind: String, key: RouteResourceKey)] {
        registered.compactMap { type in type.traits.routeResource.map { (type.kind, $0) } }
    }

    /// Keys every target section may have besides its kind's own.
    public static let commonKeys: Set<String> = ["kind", "retry", "rate", "allowInsecureHTTP", "templates", "caFile"]

    /// Reads one entry of `targets:` with its delivery policy: the kind's defaults, then
    /// `delivery.retry`, then the target's own `retry:` and `rate:`. Reports problems to the
    /// section's diagnostics.
    public static func target(
        named name: String, section: ConfigSection, retryDefaults: RetryPolicy? = nil
    )
        -> (target: any DeliveryTarget, policy: TargetPolicy)?
    {
        guard section.isMap else {
            section.report("expected a mapping with at least a kind, like {kind: slack, url: ...}")
            return nil
        }
        guard let kind = section.string("kind", required: true) else { return nil }
        guard let type = registered.first(where: { $0.kind == kind }) else {
            section.report("kind", "'\(kind)' is not a target kind; known kinds: \(kinds.joined(separator: ", "))")
            return nil
        }
        var parsed: (any DeliveryTarget)? = type.init(name: name, section: section)
        let defaults = type.defaultPolicy
        if let sources = TemplateSources(section: section) {
            if var templated = parsed as? any TemplatedTarget {
                templated.templates = compileTemplates(sources, for: type, diagnostics: section.diagnostics, reportUnusedKeys: true)
                parsed = templated
                if templated.templates == nil { parsed = nil }
            } else if !(type is any TemplatedTarget.Type) {
                section.report("templates", "a \(kind) target takes no templates; \(templatedKinds) do")
            }
        }
        // A target holding no credential (an Alertmanager on the internal network) sends nothing
        // secret, so plain http:// is its operator's call.
        if parsed?.secrets.isEmpty != true { requireHTTPS(section) }
        let policy = TargetPolicy(
            retry: RetryPolicy(section: section.section("retry"), defaults: retryDefaults ?? defaults.retry),
            pacing: PacingPolicy(section: section.section("rate"), defaults: parsed?.defaultPacing ?? defaults.pacing)
        )
        guard var parsed else { return nil }
        if let caFile = section.string("caFile") {
            if let problem = CATrustingTarget.problem(caFile) {
                section.report("caFile", problem)
                return nil
            }
            parsed = CATrustingTarget(base: parsed, caFile: caFile)
        }
        return (parsed, policy)
    }

    /// The kinds that take templates, with their keys: "slack (facts, text, title), ...".
    static var templatedKinds: String {
        registered.compactMap { $0 as? any TemplatedTarget.Type }
            .map { "\($0.kind) (\($0.templateKeys.sorted().joined(separator: ", ")))" }.joined(separator: ", ")
    }

    /// Compiles `sources` for a kind: the keys it takes, escaped for its channel. A key it does
    /// not take is reported when `reportUnusedKeys` (a target's own templates); a route's
    /// templates serve targets of several kinds, so there the caller checks each key is used by one.
    public static func compileTemplates(
        _ sources: TemplateSources, for type: any RegisteredTarget.Type, diagnostics: ConfigDiagnostics,
        reportUnusedKeys: Bool
    ) -> MessageTemplates? {
        guard let templated = type as? any TemplatedTarget.Type else { return nil }
        let given = sources.givenKeys
        if reportUnusedKeys {
            for key in given.subtracting(templated.templateKeys).sorted() {
                diagnostics.report(
                    sources.keyPath(of: key),
                    "a \(type.kind) target takes no \(key) template; it takes \(templated.templateKeys.sorted().joined(separator: ", "))")
            }
        }
        return MessageTemplates.compile(
            sources, keys: templated.templateKeys, escaping: { templated.templateEscaping(for: $0) },
            diagnostics: diagnostics
        ) { key, text in templated.problem(rendering: key, as: text) }
    }

    /// Compiles a route's `templates` for each target it names that takes templates, by target
    /// name; reports keys no target of the route takes.
    public static func compileRouteTemplates(
        _ sources: TemplateSources, targets: [String], kindOf: (String) -> String?,
        diagnostics: ConfigDiagnostics
    ) -> [String: MessageTemplates] {
        var byKind: [String: MessageTemplates] = [:]
        var compiled: [String: MessageTemplates] = [:]
        var used: Set<String> = []
        let given = sources.givenKeys
        for name in targets {
            guard let kind = kindOf(name), let type = registered.first(where: { $0.kind == kind }),
                let templated = type as? any TemplatedTarget.Type
            else { continue }
            used.formUnion(templated.templateKeys)
            // A route's keys this kind does not take leave its targets with their own wording.
            guard !templated.templateKeys.isDisjoint(with: given) else { continue }
            if byKind[kind] == nil, let templates = compileTemplates(sources, for: type, diagnostics: diagnostics, reportUnusedKeys: false) {
                byKind[kind] = templates
            }
            compiled[name] = byKind[kind]
        }
        for key in given.subtracting(used).sorted() {
            diagnostics.report(sources.keyPath(of: key), "no target of this route takes a \(key) template; \(templatedKinds) do")
        }
        return compiled
    }

    /// Every target carries a secret (its URL or a token): plain `http://` is allowed only to
    /// loopback (the local sink, tests) or with `allowInsecureHTTP: true`. The URL is never printed.
    static func requireHTTPS(_ section: ConfigSection) {
        guard !section.bool("allowInsecureHTTP", default: false) else { return }
        var urls = ["url", "baseURL"].compactMap { key in section.string(key).map { (key, $0) } }
        for (index, text) in (section.stringList("urls") ?? []).enumerated() { urls.append(("urls[\(index)]", text)) }
        for (key, text) in urls {
            guard let components = URLComponents(string: text), components.scheme?.lowercased() == "http" else {
                continue
            }
            let host = components.host?.lowercased() ?? ""
            if LoopbackHost.matches(host) { continue }
            section.report(
                key,
                "plain http:// to another host would send this target's secrets unencrypted; use https://, or set allowInsecureHTTP: true (value not shown: it is a secret)"
            )
        }
    }
}

extension RouteTable {
    /// The deliveries `event` makes among the configured `targets`: the one routing decision that
    /// intake stores, the scheduler's notices and `patchbay render` prints. A route's `chat:`
    /// grouping applies to the kinds the registry calls chat, a live message to the targets that
    /// can edit one.
    public func plans(for event: PatchEvent, targets: [String: any DeliveryTarget]) -> [DeliveryPlan] {
        plans(
            for: event, kindOf: { targets[$0]?.kind }, isChat: { TargetRegistry.traits(of: $0)?.isChat == true },
            editsInPlace: { targets[$0]?.editsMessagesInPlace == true })
    }
}
