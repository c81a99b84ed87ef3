import Foundation

/// How a route's chat targets report a fleet: one message per server and stage (the default),
/// one summary per maintenance and stage (`chat: {mode: per-maintenance, groupWait: 30s}`), or
/// one living message per maintenance, edited in place as the fleet reports (`chat: {mode: live}`,
/// for targets that can edit a message; the others send summaries).
public struct ChatGrouping: Sendable, Hashable {
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        case perInstance = "per-instance"
        case perMaintenance = "per-maintenance"
        case live
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
/// beside it (for a chat target whose route groups the fleet) its summary lane or its live lane,
/// so a failure is not held behind a summary waiting for `groupWait`, and each keeps its own
/// follow-up state (which servers each stage's summaries already named; the live message's id).
///
/// Code reads a lane as this value; the stores keep it as one name, the target's, with
/// `/digest` appended for the summary lane (the name databases already hold) and `/live` for
/// the live lane.
public struct DeliveryLane: Sendable, Hashable {
    /// The configured target the lane's deliveries go to.
    public var target: String
    public var isSummary: Bool
    /// The lane of the maintenance's live message (`chat: {mode: live}`): each delivery edits it.
    public var isLive: Bool

    public init(target: String, isSummary: Bool = false, isLive: Bool = false) {
        self.target = target
        self.isSummary = isSummary && !isLive
        self.isLive = isLive
    }

    /// The lane a store keeps as `storedName`.
    public init(storedName: String) {
        if storedName.hasSuffix(Self.summarySuffix) {
            self.init(target: String(storedName.dropLast(Self.summarySuffix.count)), isSummary: true)
        } else if storedName.hasSuffix(Self.liveSuffix) {
            self.init(target: String(storedName.dropLast(Self.liveSuffix.count)), isLive: true)
        } else {
            self.init(target: storedName)
        }
    }

    /// Every lane a target may have, by stored name: what listings filtered by target read.
    public static func storedNames(of target: String) -> [String] {
        [DeliveryLane(target: target), DeliveryLane(target: target, isSummary: true), DeliveryLane(target: target, isLive: true)]
            .map(\.storedName)
    }

    /// The name the stores keep the lane under.
    public var storedName: String {
        isLive ? target + Self.liveSuffix : isSummary ? target + Self.summarySuffix : target
    }

    /// Why a configured target may not be named `name`, if it may not: the name would read back
    /// as another target's summary or live lane.
    public static func reservedNameProblem(_ name: String) -> String? {
        let lane = DeliveryLane(storedName: name)
        guard lane.isSummary || lane.isLive else { return nil }
        let suffix = lane.isLive ? liveSuffix : summarySuffix
        return "a target name may not end with '\(suffix)': that names the \(lane.isLive ? "live" : "summary") lane of a chat target"
    }

    static let summarySuffix = "/digest"
    static let liveSuffix = "/live"
}
