import Foundation

/// What a worker may do with a delivery under its vendor budget.
public enum PacingDecision: Equatable, Sendable {
    /// Send after waiting this long (zero: now). A slot has been taken.
    case go(after: Duration)
    /// Too long to wait holding a worker: try again at this time. Nothing was taken.
    case later(at: Date)
}

/// Keeps each vendor budget (a Slack webhook, a Statuspage API key) under its rate: a generic
/// cell rate algorithm, so `burst` requests may go at once and the rest follow at `rate` per
/// second. In one process the budget lives in memory (`Pacer`); with several instances on
/// PostgreSQL it is a row per key, so the whole cluster shares one budget and one pause.
public protocol PacingBudget: Sendable {
    /// Takes the next slot for `key` when it comes within `maxWait`.
    func reserve(key: String, policy: PacingPolicy, now: Date, maxWait: Duration) async throws -> PacingDecision
    /// Called right before a send that holds a slot: how much longer to wait so that sends really
    /// go out no faster than the rate (workers that slept for their slot can wake late together).
    /// Zero means go now, and the send is counted at this moment. Admissions run at the same rate
    /// as reservations, so they never fall behind them: a worker waits here for the jitter of its
    /// wake-up, not in a queue that grows (the dispatcher bounds the wait all the same).
    func admit(key: String, policy: PacingPolicy, now: Date) async throws -> Duration
    /// No request for `key` before `until` (a `Retry-After`, an exhausted vendor budget).
    func block(key: String, policy: PacingPolicy, until: Date) async throws
}

extension PacingPolicy {
    /// Seconds between two requests at the steady rate.
    public var interval: Double { 1 / rate }
    /// How far ahead of the steady rate a burst may run, in seconds.
    public var tolerance: Double { interval * Double(max(burst - 1, 0)) }
}
