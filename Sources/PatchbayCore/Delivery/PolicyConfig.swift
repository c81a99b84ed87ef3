import Foundation

extension RetryPolicy {
    /// Reads `retry: {base: 2s, cap: 5m, maxAttempts: 12, maxAge: 24h, jitter: 0.2}`; keys left
    /// out keep `defaults`.
    public init(section: ConfigSection?, defaults: RetryPolicy) {
        guard let section else {
            self = defaults
            return
        }
        section.allowOnly(["base", "cap", "maxAttempts", "maxAge", "jitter"])
        var policy = defaults
        policy.baseDelay = section.duration("base", default: defaults.baseDelay, range: .milliseconds(1)...(.seconds(3600)))
        policy.maxDelay = section.duration("cap", default: defaults.maxDelay, range: .milliseconds(1)...(.seconds(7 * 86400)))
        policy.maxAttempts = section.int("maxAttempts", default: defaults.maxAttempts, range: 1...1000)
        policy.maxAge = section.duration("maxAge", default: defaults.maxAge, range: .seconds(1)...(.seconds(30 * 86400)))
        if let text = section.string("jitter") {
            if let value = Double(text), (0...1).contains(value) {
                policy.jitter = value
            } else {
                section.report("jitter", "expected a fraction from 0 to 1, got '\(text)'")
            }
        }
        if policy.maxDelay < policy.baseDelay { section.report("cap", "must not be shorter than base") }
        self = policy
    }
}

extension PacingPolicy {
    /// Reads `rate: {perSecond: 1, burst: 3}`.
    public init(section: ConfigSection?, defaults: PacingPolicy) {
        guard let section else {
            self = defaults
            return
        }
        section.allowOnly(["perSecond", "burst"])
        var policy = defaults
        if let text = section.string("perSecond") {
            if let value = Double(text), value.isFinite, value > 0, value <= 10_000 {
                policy.rate = value
            } else {
                section.report("perSecond", "expected a number of requests per second above 0 and at most 10000, got '\(text)'")
            }
        }
        policy.burst = section.int("burst", default: defaults.burst, range: 1...10_000)
        self = policy
    }
}
