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

/// The queue a delivery waits in, and whose follow-up state it reads: a target's own lane, or
/// (for a chat target whose route sends one summary per maintenance) the target's summary lane
/// beside it, so a failure is not held behind a summary waiting for `groupWait`, and each keeps
/// its own follow-up state (which servers each stage's summaries already named).
///
/// Code reads a lane as this value; the stores keep it as one name, the target's, with
/// `/digest` appended for the summary lane (the name databases already hold).
public struct DeliveryLane: Sendable, Hashable {
    /// The configured target the lane's deliveries go to.
    public var target: String
    public var isSummary: Bool

    public init(target: String, isSummary: Bool = false) {
        self.target = target
        self.isSummary = isSummary
    }

    /// The lane a store keeps as `storedName`.
    public init(storedName: String) {
        if storedName.hasSuffix(Self.summarySuffix) {
            self.init(target: String(storedName.dropLast(Self.summarySuffix.count)), isSummary: true)
        } else {
            self.init(target: storedName)
        }
    }

    /// The name the stores keep the lane under.
    public var storedName: String { isSummary ? target + Self.summarySuffix : target }

    /// Why a configured target may not be named `name`, if it may not: the name would read back
    /// as another target's summary lane.
    public static func reservedNameProblem(_ name: String) -> String? {
        DeliveryLane(storedName: name).isSummary
            ? "a target name may not end with '\(summarySuffix)': that names the summary lane of a chat target" : nil
    }

    static let summarySuffix = "/digest"
}
