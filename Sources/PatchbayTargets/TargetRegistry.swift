import Foundation
import PatchbayCore

/// The kinds of target Patchbay can deliver to. Adding one means a folder beside `Slack/`, and a
/// line here that reads its config section.
public enum TargetRegistry {
    public static let kinds: [String] = [SlackTarget.kind, TeamsTarget.kind, StatuspageTarget.kind, PingdomTarget.kind, WebhookTarget.kind]

    /// Keys every target section may have besides its kind's own.
    public static let commonKeys: Set<String> = ["kind", "retry", "rate", "allowInsecureHTTP"]

    /// Reads one entry of `targets:` with its delivery policy: the kind's defaults, then
    /// `delivery.retry`, then the target's own `retry:` and `rate:`. Reports problems to the
    /// section's diagnostics.
    public static func target(named name: String, section: ConfigSection, retryDefaults: RetryPolicy? = nil)
        -> (target: any DeliveryTarget, policy: TargetPolicy)?
    {
        guard section.isMap else {
            section.report("expected a mapping with at least a kind, like {kind: slack, url: ...}")
            return nil
        }
        guard let kind = section.string("kind", required: true) else { return nil }
        let parsed: (any DeliveryTarget)?
        let defaults: TargetPolicy
        switch kind {
        case SlackTarget.kind:
            (parsed, defaults) = (SlackTarget(name: name, section: section), SlackTarget.defaultPolicy)
        case TeamsTarget.kind:
            (parsed, defaults) = (TeamsTarget(name: name, section: section), TeamsTarget.defaultPolicy)
        case StatuspageTarget.kind:
            (parsed, defaults) = (StatuspageTarget(name: name, section: section), StatuspageTarget.defaultPolicy)
        case PingdomTarget.kind:
            (parsed, defaults) = (PingdomTarget(name: name, section: section), PingdomTarget.defaultPolicy)
        case WebhookTarget.kind:
            (parsed, defaults) = (WebhookTarget(name: name, section: section), WebhookTarget.defaultPolicy)
        default:
            section.report("kind", "'\(kind)' is not a target kind; known kinds: \(kinds.joined(separator: ", "))")
            return nil
        }
        requireHTTPS(section)
        let policy = TargetPolicy(
            retry: RetryPolicy(section: section.section("retry"), defaults: retryDefaults ?? defaults.retry),
            pacing: PacingPolicy(section: section.section("rate"), defaults: defaults.pacing)
        )
        guard let parsed else { return nil }
        return (parsed, policy)
    }

    /// Every target carries a secret (its URL or a token): plain `http://` is allowed only to
    /// loopback (the local sink, tests) or with `allowInsecureHTTP: true`. The URL is never printed.
    static func requireHTTPS(_ section: ConfigSection) {
        guard !section.bool("allowInsecureHTTP", default: false) else { return }
        for key in ["url", "baseURL"] {
            guard let text = section.string(key), let components = URLComponents(string: text), components.scheme?.lowercased() == "http" else { continue }
            let host = components.host?.lowercased() ?? ""
            if host == "localhost" || host == "::1" || host.hasPrefix("127.") { continue }
            section.report(key, "plain http:// to another host would send this target's secrets unencrypted; use https://, or set allowInsecureHTTP: true (value not shown: it is a secret)")
        }
    }
}
