import Foundation
import PatchbayCore
import Synchronization

/// The in-process `PacingBudget`, for every worker of one process (SQLite: one server per file).
/// A 429 or an exhausted Pingdom budget blocks the key until the vendor says it may go on.
public final class Pacer: PacingBudget {
    public typealias Decision = PacingDecision

    /// The theoretical arrival time of the next request per key (GCRA's TAT).
    private let nextFree = Mutex<[String: Date]>([:])

    /// Keys kept at most: past it, recharged keys go first, then the half closest to recharged.
    let maxKeys: Int

    public init(maxKeys: Int = 100_000) {
        self.maxKeys = maxKeys
    }

    public func reserve(key: String, policy: PacingPolicy, now: Date, maxWait: Duration) -> Decision {
        Self.take(key: key, policy: policy, now: now, maxWait: maxWait, in: nextFree, maxKeys: maxKeys)
    }

    /// When `key` may go again, if not now; takes nothing.
    public func pausedUntil(key: String, policy: PacingPolicy, now: Date) -> Date? {
        nextFree.withLock { table in
            guard let arrival = table[key] else { return nil }
            let earliest = arrival.addingTimeInterval(-policy.tolerance)
            return earliest > now ? earliest : nil
        }
    }

    /// GCRA: the key's next slot when it comes within `maxWait` (then taken), or when it comes.
    /// A key whose arrival time has passed is as good as absent: such keys are dropped now and
    /// then, so a table of many short-lived keys stays small.
    private static func take(
        key: String, policy: PacingPolicy, now: Date, maxWait: Duration, in table: borrowing Mutex<[String: Date]>,
        maxKeys: Int = .max
    ) -> Decision {
        let interval = policy.interval
        let tolerance = policy.tolerance
        return table.withLock { table in
            if table.count >= Self.pruneAt, table[key] == nil {
                table = table.filter { $0.value > now }
                if table.count >= maxKeys {
                    // Still full of live keys (many sources at once): forget the half nearest to
                    // recharged. Memory stays bounded; a forgotten key starts with a fresh budget.
                    let keep = table.sorted { $0.value > $1.value }.prefix(maxKeys / 2)
                    table = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
                }
            }
            let arrival = max(table[key] ?? now, now)
            let earliest = arrival.addingTimeInterval(-tolerance)
            let wait = max(0, earliest.timeIntervalSince(now))
            guard wait <= maxWait.seconds else { return .later(at: earliest) }
            table[key] = arrival.addingTimeInterval(interval)
            // To the millisecond: a Date holds about a tenth of a microsecond of noise at today's epoch.
            return .go(after: .milliseconds(Int64((wait * 1000).rounded())))
        }
    }

    /// Table size at which recharged keys are dropped.
    static let pruneAt = 1024

    /// Keys held now (tests of the bound).
    var keyCount: Int { nextFree.withLock { $0.count } }

    /// The sends actually started, per key (GCRA on the moments workers really send).
    private let sent = Mutex<[String: Date]>([:])

    /// Called right before a send that holds a slot: how much longer to wait so that sends really
    /// go out no faster than the rate (GCRA on the moments workers really send, at the same rate
    /// as `reserve`). Workers that slept for their slots and woke late together (a busy machine)
    /// are spaced again instead of bursting. Zero means go now, and the send is counted.
    public func admit(key: String, policy: PacingPolicy, now: Date) -> Duration {
        switch Self.take(key: key, policy: policy, now: now, maxWait: .zero, in: sent, maxKeys: maxKeys) {
        case .go: return .zero
        case .later(let at): return .milliseconds(Int64((at.timeIntervalSince(now) * 1000).rounded(.up)))
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
