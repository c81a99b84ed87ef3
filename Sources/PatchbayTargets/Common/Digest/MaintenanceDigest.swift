import Foundation
import PatchbayCore

/// One chat summary of a maintenance's stage (`chat: {mode: per-maintenance}`): the servers that
/// reached the stage and no earlier summary named. The first summary of a stage counts them
/// against the whole maintenance ("97 of 100 servers ... failed: web-7"); a later one, for
/// stragglers, names just the newcomers. Which servers were named is kept in the summary lane's
/// follow-up state, so a second summary of the same servers is never sent.
public struct MaintenanceDigest: Sendable {
    public typealias Report = MaintenanceSnapshot.InstanceReport

    public var stage: EventType
    /// Servers this summary names.
    public var newInstances: [Report]
    /// Every server that has reached the stage, named before or now.
    public var reached: [Report]
    /// Every server of the maintenance that reported anything.
    public var total: Int
    public var failed: [Report]
    /// Whether an earlier summary of this stage went out (this one is a follow-up).
    public var isFollowUp: Bool

    public init(event: PatchEvent, context: RenderContext) {
        stage = event.type
        let snapshot = context.maintenance
        reached = snapshot.instances.filter { Self.hasReached(event.type, $0) }
        let announced = Set(context.followUp?.announced?[event.type.rawValue] ?? [])
        newInstances = reached.filter { !announced.contains($0.instance.id) }
        total = snapshot.instances.count
        failed = snapshot.failed
        isFollowUp = !announced.isEmpty
    }

    /// A server counts for a stage's summary when its furthest report is that stage (or, for
    /// "begun", any later one but cancelled; "scheduled" counts every server).
    static func hasReached(_ stage: EventType, _ report: Report) -> Bool {
        switch stage {
        case .scheduled, .reminder: report.lastType != .cancelled
        case .started: report.lastType.stageRank >= EventType.started.stageRank && report.lastType != .cancelled
        case .completed, .failed, .cancelled: report.lastType == stage
        }
    }

    /// The follow-up state after this summary was delivered: its servers are named.
    public func followUp(after previous: FollowUpState?) -> FollowUpState {
        var state = previous ?? FollowUpState()
        var announced = state.announced ?? [:]
        announced[stage.rawValue, default: []].append(contentsOf: newInstances.map(\.instance.id))
        state.announced = announced
        return state
    }

    /// The message, in the same parts as a per-server one.
    public func content(for event: PatchEvent, zone: TimeZone, markup: Markup, budget: Int) -> MessageContent {
        let e = markup.escape
        let system = markup.emphasize(e(event.systemName))
        let count = newInstances.count
        let servers = "\(count) \(count == 1 ? "server" : "servers")"
        let windowText = MessageText.window(event.window, in: zone)
        let progress = isFollowUp ? " (\(reached.count) of \(total) now)" : ""
        let counted = isFollowUp ? "\(count) more \(count == 1 ? "server" : "servers")" : "\(count) of \(total) \(total == 1 ? "server" : "servers")"
        var text: String
        switch stage {
        case .scheduled, .reminder: text = "Patching of \(servers) of \(system) is scheduled for \(windowText)\(progress)."
        case .started: text = "\(counted) of \(system) \(count == 1 && isFollowUp ? "has" : "have") begun patching\(progress)."
        case .completed: text = "\(counted) of \(system) completed patching\(progress)"
        case .failed: text = "\(counted) of \(system) failed patching\(progress)."
        case .cancelled: text = "Patching of \(servers) of \(system) has been cancelled\(progress)."
        }
        if stage == .completed {
            text += failed.isEmpty ? "." : "; failed: \(failed.map { e($0.instance.name ?? $0.instance.id) }.joined(separator: ", "))."
        }
        var facts: [(title: String, value: String)] = [("App Name", e(event.systemName)), ("Window", windowText)]
        let names = newInstances.map { $0.instance.name ?? $0.instance.id }
        facts.append(
            (isFollowUp ? "Servers Since Last Summary" : "Servers", MessageText.packageList(names, budget: budget, separator: ", ", escape: e)))
        if stage == .completed, !failed.isEmpty {
            facts.append(
                ("Failed", MessageText.packageList(failed.map { $0.instance.name ?? $0.instance.id }, budget: budget, separator: ", ", escape: e)))
        }
        let title = MessageText.title(for: stage)
        return MessageContent(
            title: title, color: failed.isEmpty || stage != .completed ? MessageText.color(for: stage) : MessageText.overrunColor,
            text: text, fallback: "\(title): \(count) \(count == 1 ? "server" : "servers") of \(event.systemName)", facts: facts)
    }

    /// What templates see as `digest.*`.
    public var templateValues: [String: Any] {
        [
            "count": newInstances.count, "names": newInstances.map { $0.instance.name ?? $0.instance.id },
            "reached": reached.count, "total": total, "isFollowUp": isFollowUp,
            "failedNames": failed.map { $0.instance.name ?? $0.instance.id },
        ]
    }
}
