import Foundation

/// What an operator's replay of a delivery does, decided once for both stores inside their
/// transaction from the row they read (and locked): nothing for a delivery still queued, only
/// the answer on a dry run, else queue it again with an attempt that says so and, on a summary
/// lane, make the summary name its stage's servers again. Each store writes the step in SQL.
public enum ReplayStep: Sendable, Equatable {
    /// The answer, with nothing to write: not found, already queued, or a dry run.
    case answer(ReplayResult)
    /// Queue it again now, with `note` recorded as a `replay` attempt; `forgetStage` is set on a
    /// summary lane: its follow-up state forgets which servers that stage's summaries named
    /// (`FollowUpState.forgettingStage`), so the replayed summary names them again.
    case replay(note: String, forgetStage: String?)

    /// What the operator is told: `.replayed` once a replay step is written.
    public var answer: ReplayResult {
        if case .answer(let answer) = self { return answer }
        return .replayed
    }

    /// - Parameters:
    ///   - state: the delivery's state as stored; nil when there is no such delivery.
    ///   - storedLane: its stored lane name; `eventType` its event's type.
    public static func decide(state: String?, storedLane: String, eventType: String, dryRun: Bool) -> ReplayStep {
        guard let state else { return .answer(.notFound) }
        guard state != DeliveryState.pending.rawValue, state != DeliveryState.inFlight.rawValue else {
            return .answer(.alreadyQueued(state: state))
        }
        if dryRun { return .answer(.wouldReplay) }
        return .replay(
            note: "replayed by an operator from state \(state); renders with the current configuration",
            forgetStage: DeliveryLane(storedName: storedLane).isSummary ? eventType : nil)
    }
}
