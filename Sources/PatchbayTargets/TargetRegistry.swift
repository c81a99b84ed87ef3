import Foundation
import PatchbayCore

/// The kinds of target Patchbay can deliver to. Adding one means a folder beside `Slack/`, and a
/// line here that reads its config section.
public enum TargetRegistry {
    public static let kinds: [String] = [SlackTarget.kind, TeamsTarget.kind, StatuspageTarget.kind, PingdomTarget.kind]

    /// Reads one entry of `targets:`; reports problems to the section's diagnostics.
    public static func target(named name: String, section: ConfigSection) -> (any DeliveryTarget)? {
        guard section.isMap else {
            section.report("expected a mapping with at least a kind, like {kind: slack, url: ...}")
            return nil
        }
        guard let kind = section.string("kind", required: true) else { return nil }
        switch kind {
        case SlackTarget.kind:
            return SlackTarget(name: name, section: section)
        case TeamsTarget.kind:
            return TeamsTarget(name: name, section: section)
        case StatuspageTarget.kind:
            return StatuspageTarget(name: name, section: section)
        case PingdomTarget.kind:
            return PingdomTarget(name: name, section: section)
        default:
            section.report("kind", "'\(kind)' is not a target kind; known kinds: \(kinds.joined(separator: ", "))")
            return nil
        }
    }
}
