import Foundation
import PatchbayCore
import Testing

@testable import PatchbayServer

@Suite("Pacer")
struct PacerTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func burstThenSteadyRate() {
        let pacer = Pacer()
        let policy = PacingPolicy(rate: 2, burst: 3)
        let waits = (0..<6).map { _ in pacer.reserve(key: "k", policy: policy, now: t0, maxWait: .seconds(10)) }
        #expect(
            waits == [
                .go(after: .zero), .go(after: .zero), .go(after: .zero),
                .go(after: .milliseconds(500)), .go(after: .milliseconds(1000)), .go(after: .milliseconds(1500)),
            ])
        // Other keys have their own budget.
        #expect(pacer.reserve(key: "other", policy: policy, now: t0, maxWait: .zero) == .go(after: .zero))
    }

    @Test func longWaitsAreDeferredWithoutTakingASlot() {
        let pacer = Pacer()
        let policy = PacingPolicy(rate: 1, burst: 1)
        #expect(pacer.reserve(key: "k", policy: policy, now: t0, maxWait: .zero) == .go(after: .zero))
        #expect(pacer.reserve(key: "k", policy: policy, now: t0, maxWait: .milliseconds(500)) == .later(at: t0.addingTimeInterval(1)))
        #expect(pacer.reserve(key: "k", policy: policy, now: t0.addingTimeInterval(1), maxWait: .zero) == .go(after: .zero))
    }

    @Test func blockingHoldsTheKeyUntilTheVendorSaysSo() {
        let pacer = Pacer()
        let policy = PacingPolicy(rate: 10, burst: 1)
        pacer.block(key: "k", policy: policy, until: t0.addingTimeInterval(3))
        #expect(pacer.reserve(key: "k", policy: policy, now: t0, maxWait: .seconds(1)) == .later(at: t0.addingTimeInterval(3)))
        #expect(pacer.reserve(key: "k", policy: policy, now: t0.addingTimeInterval(3), maxWait: .zero) == .go(after: .zero))
    }

    /// Workers that slept for consecutive slots and woke late together are spaced again at send time.
    @Test func lateWakersAreSpacedAtSendTime() {
        let pacer = Pacer()
        let policy = PacingPolicy(rate: 10, burst: 1)
        let late = t0.addingTimeInterval(2)
        #expect(pacer.admit(key: "k", policy: policy, now: late) == .zero)
        let wait = pacer.admit(key: "k", policy: policy, now: late)
        #expect(wait >= .milliseconds(100) && wait <= .milliseconds(101), "the second waits one interval: \(wait)")
        #expect(pacer.admit(key: "k", policy: policy, now: late.addingTimeInterval(0.1)) == .zero)
        #expect(pacer.admit(key: "other", policy: policy, now: late) == .zero)
    }

    /// The table keeps a key only while it holds something back: many short-lived keys (sign-in
    /// sources) do not grow it for ever, and it never passes its bound.
    @Test func theTableIsBounded() {
        let pacer = Pacer(maxKeys: 2000)
        let policy = PacingPolicy(rate: 1, burst: 10)
        for index in 0..<5000 {
            _ = pacer.reserve(key: "source-\(index)", policy: policy, now: t0, maxWait: .zero)
        }
        #expect(pacer.keyCount <= 2000, "\(pacer.keyCount) keys")
        // Later, once every budget has recharged, new keys sweep the old ones away.
        for index in 0..<1100 {
            _ = pacer.reserve(key: "later-\(index)", policy: policy, now: t0.addingTimeInterval(3600), maxWait: .zero)
        }
        #expect(pacer.keyCount <= 1100, "\(pacer.keyCount) keys")
    }

    /// A key paced out reports until when, and the question takes nothing.
    @Test func pausedUntilTakesNothing() {
        let pacer = Pacer()
        let policy = PacingPolicy(rate: 1, burst: 2)
        #expect(pacer.pausedUntil(key: "k", policy: policy, now: t0) == nil)
        _ = pacer.reserve(key: "k", policy: policy, now: t0, maxWait: .zero)
        _ = pacer.reserve(key: "k", policy: policy, now: t0, maxWait: .zero)
        #expect(pacer.pausedUntil(key: "k", policy: policy, now: t0) == t0.addingTimeInterval(1))
        #expect(pacer.pausedUntil(key: "k", policy: policy, now: t0.addingTimeInterval(1)) == nil)
    }
}
