import Foundation
import Testing

@testable import PatchbayCore

@Suite("Retry policy and expiry")
struct DeliveryPolicyTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let policy = RetryPolicy(baseDelay: .seconds(2), maxDelay: .seconds(60), maxAttempts: 5, maxAge: .seconds(3600), jitter: 0.5)

    @Test func backoffDoublesUpToTheCapWithBoundedJitter() {
        let exact = RetryPolicy(baseDelay: .seconds(2), maxDelay: .seconds(60), jitter: 0)
        #expect(
            (1...7).map { exact.backoff(afterFailures: $0, random: 0.9) } == [
                .seconds(2), .seconds(4), .seconds(8), .seconds(16), .seconds(32), .seconds(60), .seconds(60),
            ])
        for failures in 1...6 {
            let full = exact.backoff(afterFailures: failures, random: 0)
            #expect(policy.backoff(afterFailures: failures, random: 0) == full)
            #expect(policy.backoff(afterFailures: failures, random: 0.999) >= full / 2)
            #expect(policy.backoff(afterFailures: failures, random: 0.999) < full)
        }
    }

    @Test func givesUpAfterMaxAttemptsOrMaxAge() {
        let retry = DeliveryOutcome.retry(after: nil, reason: .serverError)
        #expect(policy.transition(for: retry, failures: 4, age: .seconds(10), now: now, random: 0) == .retry(at: now.addingTimeInterval(16)))
        #expect(policy.transition(for: retry, failures: 5, age: .seconds(10), now: now, random: 0) == .dead)
        #expect(policy.transition(for: retry, failures: 1, age: .seconds(3599), now: now, random: 0) == .dead, "the retry would land past maxAge")
        #expect(policy.transition(for: .permanent(reason: .clientError), failures: 1, age: .zero, now: now, random: 0) == .dead)
        #expect(policy.transition(for: .delivered(reason: .delivered), failures: 9, age: .zero, now: now, random: 0) == .delivered)
    }

    @Test func retryAfterIsHonouredAndRateLimitsDoNotCount() {
        let limited = DeliveryOutcome.retry(after: .seconds(30), reason: .rateLimited)
        // Past maxAttempts, but a rate limit is not a failure: it waits as asked.
        #expect(policy.transition(for: limited, failures: 5, age: .zero, now: now, random: 0) == .retry(at: now.addingTimeInterval(30)))
        let busy = DeliveryOutcome.retry(after: .seconds(45), reason: .serverError)
        #expect(policy.transition(for: busy, failures: 1, age: .zero, now: now, random: 0) == .retry(at: now.addingTimeInterval(45)))
        let unspecified = DeliveryOutcome.retry(after: nil, reason: .rateLimited)
        #expect(policy.transition(for: unspecified, failures: 0, age: .zero, now: now, random: 0) == .retry(at: now.addingTimeInterval(1)))
    }

    func event(_ type: EventType) -> PatchEvent {
        PatchEvent(type: type, app: "A", environment: "P", window: MaintenanceWindow(start: now, end: now.addingTimeInterval(900)))
    }

    @Test func expiry() {
        let queued = now.addingTimeInterval(-3600)
        let before = now.addingTimeInterval(-60)
        let during = now.addingTimeInterval(60)
        let after = now.addingTimeInterval(1000)
        #expect(Expiry.reason(for: event(.reminder), queuedAt: queued, now: before) == nil)
        #expect(
            Expiry.reason(for: event(.reminder), queuedAt: queued, now: during)
                == "the reminder's window started at 2027-01-15T08:00:00Z, while the delivery waited")
        #expect(Expiry.reason(for: event(.scheduled), queuedAt: queued, now: during) == nil)
        #expect(
            Expiry.reason(for: event(.scheduled), queuedAt: queued, now: after)
                == "the window ended at 2027-01-15T08:15:00Z, while the delivery waited")
        #expect(Expiry.reason(for: event(.started), queuedAt: queued, now: during) == nil)
        #expect(Expiry.reason(for: event(.started), queuedAt: queued, now: after) != nil)
        // Accepted after the boundary: the sender meant it; it goes out.
        #expect(Expiry.reason(for: event(.scheduled), queuedAt: after, now: after.addingTimeInterval(1)) == nil)
        for type in [EventType.completed, .failed, .cancelled] {
            #expect(Expiry.reason(for: event(type), queuedAt: queued, now: after.addingTimeInterval(86400 * 30)) == nil)
        }
    }
}

/// How a send's follow-up state meets the stored one (review F6): decided once for both stores.
@Suite("Follow-up resolution")
struct FollowUpResolutionTests {
    let created = FollowUpUpdate(state: FollowUpState(objectID: "inc-2", status: "scheduled"), plannedObjectID: nil)
    let update = FollowUpUpdate(state: FollowUpState(objectID: "inc-1", status: "in_progress"), plannedObjectID: "inc-1")

    @Test func aCreatedObjectIsKeptWhenTheMaintenanceHasNone() {
        #expect(FollowUpResolution.of(created, stored: nil, leaseHeld: true) == .store(created.state))
        #expect(FollowUpResolution.of(created, stored: nil, leaseHeld: false) == .store(created.state), "even after the lease ran out")
        #expect(
            FollowUpResolution.of(created, stored: FollowUpState(announced: ["patch.completed": ["i-1"]]), leaseHeld: false) == .store(created.state))
    }

    @Test func aSecondObjectIsExtra() {
        let stored = FollowUpState(objectID: "inc-1", status: "scheduled")
        #expect(FollowUpResolution.of(created, stored: stored, leaseHeld: true) == .extra(created.state))
        #expect(FollowUpResolution.of(created, stored: stored, leaseHeld: false) == .extra(created.state))
        #expect(FollowUpResolution.of(created, stored: created.state, leaseHeld: false) == .store(created.state), "the same object again is no extra")
    }

    /// A kind that replaces its object on purpose (a Datadog downtime that ended is replaced by a
    /// new one for an overrun) planned against the stored one: the new one is the maintenance's.
    @Test func aReplacementOfThePlannedObjectIsKept() {
        let stored = FollowUpState(objectID: "dt-1", status: "scheduled")
        let replacement = FollowUpUpdate(state: FollowUpState(objectID: "dt-2", status: "scheduled"), plannedObjectID: "dt-1")
        #expect(FollowUpResolution.of(replacement, stored: stored, leaseHeld: true) == .store(replacement.state))
        #expect(FollowUpResolution.of(replacement, stored: stored, leaseHeld: false) == .store(replacement.state))
        // ... unless another send already replaced it too: then this one is extra.
        let other = FollowUpState(objectID: "dt-3", status: "scheduled")
        #expect(FollowUpResolution.of(replacement, stored: other, leaseHeld: false) == .extra(replacement.state))
    }

    @Test func anUpdateIsWrittenOnlyUnderTheLease() {
        let stored = FollowUpState(objectID: "inc-1", status: "scheduled")
        #expect(FollowUpResolution.of(update, stored: stored, leaseHeld: true) == .store(update.state))
        #expect(FollowUpResolution.of(update, stored: stored, leaseHeld: false) == .nothing)
    }
}
