import Foundation

/// When to try a failed delivery again, and when to give up. Exponential backoff with jitter,
/// capped; a delivery dies after `maxAttempts` counted failures or once it is older than `maxAge`,
/// whichever comes first. Rate-limit answers (429, 420) do not count as failures: the vendor is
/// fine, just busy, and the pacer slows the target down instead.
public struct RetryPolicy: Sendable, Hashable {
    public var baseDelay: Duration
    public var maxDelay: Duration
    public var maxAttempts: Int
    public var maxAge: Duration
    /// Fraction of each delay that is random (0 = none, 0.5 = the delay varies by up to half),
    /// so many deliveries that failed together do not retry together.
    public var jitter: Double

    public init(
        baseDelay: Duration = .seconds(2), maxDelay: Duration = .seconds(300), maxAttempts: Int = 12,
        maxAge: Duration = .seconds(24 * 3600), jitter: Double = 0.2
    ) {
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxAttempts = maxAttempts
        self.maxAge = maxAge
        self.jitter = jitter
    }

    /// The delay before attempt `failures + 1`; `random` is in 0..<1.
    public func backoff(afterFailures failures: Int, random: Double) -> Duration {
        let exponent = Double(min(max(failures - 1, 0), 30))
        let full = min(baseDelay.seconds * pow(2, exponent), maxDelay.seconds)
        let jittered = full * (1 - jitter * random)
        return .milliseconds(Int64(jittered * 1000))
    }

    /// Where a delivery goes after an outcome.
    /// - Parameters:
    ///   - failures: counted failures so far, including this one if it is a failure.
    ///   - age: time since the event was accepted.
    public func transition(for outcome: DeliveryOutcome, failures: Int, age: Duration, now: Date, random: Double) -> DeliveryTransition {
        switch outcome {
        case .delivered:
            return .delivered
        case .permanent:
            return .dead
        case .retry(let after, let reason):
            let throttled = reason.isRateLimit
            if !throttled, failures >= maxAttempts { return .dead }
            var delay = throttled ? .zero : backoff(afterFailures: failures, random: random)
            if let after, after > delay { delay = after }
            if throttled, delay == .zero { delay = .seconds(1) }
            if age + delay > maxAge { return .dead }
            return .retry(at: now.addingTimeInterval(delay.seconds))
        }
    }

}

/// How fast one target (or every target sharing a vendor credential) may be sent to.
public struct PacingPolicy: Sendable, Hashable {
    /// Requests per second on average.
    public var rate: Double
    /// Requests that may go at once after a quiet spell.
    public var burst: Int

    public init(rate: Double, burst: Int = 1) {
        self.rate = rate
        self.burst = burst
    }
}

/// Delivery rules for one target: its kind's defaults, overridden by its `retry:` and `rate:` keys.
public struct TargetPolicy: Sendable, Hashable {
    public var retry: RetryPolicy
    public var pacing: PacingPolicy

    public init(retry: RetryPolicy = RetryPolicy(), pacing: PacingPolicy = PacingPolicy(rate: 1, burst: 3)) {
        self.retry = retry
        self.pacing = pacing
    }
}

/// A delivery that is no longer useful is marked expired rather than sent late.
public enum Expiry {
    /// The reason `event` is no longer worth sending at `now`, or nil while it still is.
    /// - A reminder is useless once its window has started.
    /// - A "scheduled" or "beginning" notice is useless once its window has ended.
    /// Only a boundary passed while the delivery waited counts: an event accepted (or replayed)
    /// after it was sent late on purpose, and goes out. Outcomes (completed, failed, cancelled)
    /// never expire: they close the record.
    public static func reason(for event: PatchEvent, queuedAt: Date, now: Date) -> String? {
        let boundary: Date
        let what: String
        switch event.type {
        case .reminder:
            (boundary, what) = (event.window.start, "the reminder's window started at")
        case .scheduled, .started:
            (boundary, what) = (event.window.end, "the window ended at")
        case .completed, .failed, .cancelled:
            return nil
        }
        guard queuedAt < boundary, boundary <= now else { return nil }
        return "\(what) \(Timestamp.rfc3339(boundary)), while the delivery waited"
    }
}
