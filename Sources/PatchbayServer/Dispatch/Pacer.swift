import Foundation
import PatchbayCore
import Synchronization

/// The in-process `PacingBudget`, for every worker of one process (SQLite: one server per file).
/// A 429 or an exhausted Pingdom budget blocks the key until the vendor says it may go on.
public final class Pacer: PacingBudget {
    public typealias Decision = PacingDecision

    /// The theoretical arrival time of the next request per key (GCRA's TAT).
    private let nextFree = Mutex<[String: Date]>([:])

    public init() {}

    public func reserve(key: String, policy: PacingPolicy, now: Date, maxWait: Duration) -> Decision {
        let interval = 1 / policy.rate
        let tolerance = interval * Double(max(policy.burst - 1, 0))
        return nextFree.withLock { table in
            let arrival = max(table[key] ?? now, now)
            let earliest = arrival.addingTimeInterval(-tolerance)
            let wait = max(0, earliest.timeIntervalSince(now))
            guard wait <= maxWait.seconds else { return .later(at: earliest) }
            table[key] = arrival.addingTimeInterval(interval)
            return .go(after: .milliseconds(Int64(wait * 1000)))
        }
    }

    /// The sends actually started, per key (GCRA on the moments workers really send).
    private let sent = Mutex<[String: Date]>([:])

    /// Called right before a send that holds a slot: how much longer to wait so that sends really
    /// go out no faster than the rate. Workers that slept for their slot can wake late together
    /// (a busy machine); this spaces them again instead of letting them burst. Zero means go now,
    /// and the send is counted.
    public func admit(key: String, policy: PacingPolicy, now: Date) -> Duration {
        let interval = 1 / policy.rate
        let tolerance = interval * Double(max(policy.burst - 1, 0))
        return sent.withLock { table in
            let arrival = max(table[key] ?? now, now)
            let earliest = arrival.addingTimeInterval(-tolerance)
            let wait = earliest.timeIntervalSince(now)
            guard wait <= 0 else { return .milliseconds(Int64((wait * 1000).rounded(.up))) }
            table[key] = arrival.addingTimeInterval(interval)
            return .zero
        }
    }

    /// No request for `key` before `until`.
    public func block(key: String, policy: PacingPolicy, until: Date) {
        let tolerance = (1 / policy.rate) * Double(max(policy.burst - 1, 0))
        nextFree.withLock { table in
            let blocked = until.addingTimeInterval(tolerance)
            if (table[key] ?? .distantPast) < blocked { table[key] = blocked }
        }
    }
}
