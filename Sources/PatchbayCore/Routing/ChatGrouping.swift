import Foundation

/// How a route's chat targets report a fleet: one message per server and stage (the default), or
/// one summary per maintenance and stage (`chat: {mode: per-maintenance, groupWait: 30s}`).
public struct ChatGrouping: Sendable, Hashable {
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        case perInstance = "per-instance"
        case perMaintenance = "per-maintenance"
    }

    public var mode: Mode
    /// How long after the first event of a (maintenance, stage) the summary goes out; events
    /// arriving before then are in it.
    public var groupWait: Duration

    public init(mode: Mode = .perInstance, groupWait: Duration = .seconds(30)) {
        self.mode = mode
        self.groupWait = groupWait
    }

    /// Reads `chat:`; absent means per-instance.
    public init(section parent: ConfigSection) {
        self.init()
        guard let section = parent.section("chat") else { return }
        section.allowOnly(["mode", "groupWait"])
        if let text = section.string("mode") {
            if let mode = Mode(rawValue: text) {
                self.mode = mode
            } else {
                section.report("mode", "must be \(Mode.allCases.map(\.rawValue).joined(separator: " or ")), got '\(text)'")
            }
        }
        groupWait = section.duration("groupWait", default: groupWait, range: .seconds(1)...(.seconds(3600)))
    }

    /// Whether an event goes into a summary: a server's own scheduled, started, completed or
    /// cancelled report. Failures are always sent at once, and notices Patchbay sends itself are
    /// about the whole maintenance already.
    public static func groups(_ event: PatchEvent) -> Bool {
        event.instance != nil && event.notice == nil && [.scheduled, .started, .completed, .cancelled].contains(event.type)
    }
}

/// A summary's deliveries have a lane of their own beside the target's per-event lane (so a
/// failure is not held behind a summary that waits for `groupWait`), and their own follow-up
/// state (which servers each stage's summaries already named): the target name with this suffix.
public enum DigestLane {
    public static let suffix = "/digest"

    public static func target(for name: String) -> String { name + suffix }

    /// The configured target a delivery goes to, and whether it is a summary.
    public static func split(_ deliveryTarget: String) -> (target: String, isDigest: Bool) {
        deliveryTarget.hasSuffix(suffix) ? (String(deliveryTarget.dropLast(suffix.count)), true) : (deliveryTarget, false)
    }
}
