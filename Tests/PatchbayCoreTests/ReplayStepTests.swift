import Foundation
import PatchbayCore
import Testing

/// The replay decision both stores write: only finished deliveries are queued again, a dry run
/// only answers, and a summary lane's replay makes the summary name its stage's servers again.
@Suite("Replay step")
struct ReplayStepTests {
    @Test func onlyFinishedDeliveriesAreQueuedAgain() {
        #expect(ReplayStep.decide(state: nil, storedLane: "ops", eventType: "patch.completed", dryRun: false) == .answer(.notFound))
        for queued in [DeliveryState.pending, .inFlight] {
            #expect(
                ReplayStep.decide(state: queued.rawValue, storedLane: "ops", eventType: "patch.completed", dryRun: false)
                    == .answer(.alreadyQueued(state: queued.rawValue)))
        }
        #expect(ReplayStep.decide(state: "dead", storedLane: "ops", eventType: "patch.completed", dryRun: true).answer == .wouldReplay)
        let step = ReplayStep.decide(state: "dead", storedLane: "ops", eventType: "patch.completed", dryRun: false)
        #expect(step == .replay(note: "replayed by an operator from state dead; renders with the current configuration", forgetStage: nil))
        #expect(step.answer == .replayed)
    }

    @Test func aSummaryLaneForgetsItsStage() {
        let summary = DeliveryLane(target: "ops", isSummary: true).storedName
        guard case .replay(_, let stage) = ReplayStep.decide(state: "delivered", storedLane: summary, eventType: "patch.completed", dryRun: false)
        else {
            Issue.record("a delivered summary is replayed")
            return
        }
        #expect(stage == "patch.completed")
    }
}
