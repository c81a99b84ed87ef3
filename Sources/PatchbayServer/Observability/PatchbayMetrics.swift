import Foundation
import Metrics
import PatchbayCore
import PatchbayRelay
import PatchbayTargets
import Synchronization

/// Every metric Patchbay emits, created once with a small, fixed set of label values, so each
/// series exists (at zero) from start-up and a dashboard never sees a series appear from nowhere.
/// The backend (Prometheus) is chosen only by the executable.
public final class PatchbayMetrics: Sendable {
    /// How an attempt ended, the `outcome` label.
    public static let outcomes = ["delivered", "retry", "dead", "expired", "superseded"]

    /// Why an intake request was refused: one series per case, so none goes uncounted.
    public enum Rejection: String, CaseIterable, Sendable {
        case invalidEvent = "invalid_event"
        case unauthorized
        case bodyTooLarge = "body_too_large"
        case idempotencyConflict = "idempotency_conflict"
        case invalidHeader = "invalid_header"
        case draining
        case storeUnavailable = "store_unavailable"
        case rateLimited = "rate_limited"
    }

    private let deliveries: [String: Counter]
    private let sendDuration: [String: Metrics.Timer]
    private let accepted: [String: Counter]
    private let rejected: [String: Counter]
    private let queueDepth: [String: Gauge]
    private let oldestDueAge: Gauge
    private let relay: [String: Counter]
    private let auditFailures = Counter(label: "patchbay_audit_write_failures_total")

    /// Every relay rejection code, from the enum (none can be counted as `other` by omission),
    /// and the answers a relayed message shares with intake.
    public static let relayRejectionReasons =
        RelayRejection.Code.allCases.map(\.rawValue) + [
            "duplicate", "invalid_event", "unmapped", "unavailable", "store_unavailable", "idempotency_conflict", "other",
        ]

    public init(targetKinds: [String] = TargetRegistry.kinds) {
        var deliveries: [String: Counter] = [:]
        var sendDuration: [String: Metrics.Timer] = [:]
        for kind in targetKinds {
            // Every (outcome, reason) pair, from the enum: an outcome can never go uncounted.
            for outcome in Self.outcomes {
                for reason in DeliveryReason.allCases {
                    let counter = Counter(
                        label: "patchbay_delivery_attempts_total",
                        dimensions: [("target_kind", kind), ("outcome", outcome), ("reason", reason.rawValue)])
                    counter.increment(by: 0)
                    deliveries["\(kind)|\(outcome)|\(reason.rawValue)"] = counter
                }
            }
            sendDuration[kind] = Metrics.Timer(label: "patchbay_send_duration_seconds", dimensions: [("target_kind", kind)])
        }
        self.deliveries = deliveries
        self.sendDuration = sendDuration
        accepted = Dictionary(
            uniqueKeysWithValues: EventType.allCases.map {
                ($0.rawValue, Counter(label: "patchbay_events_accepted_total", dimensions: [("type", $0.rawValue)]))
            })
        rejected = Dictionary(
            uniqueKeysWithValues: Rejection.allCases.map {
                ($0.rawValue, Counter(label: "patchbay_requests_rejected_total", dimensions: [("reason", $0.rawValue)]))
            })
        queueDepth = Dictionary(
            uniqueKeysWithValues: DeliveryState.allCases.map {
                ($0.rawValue, Gauge(label: "patchbay_deliveries", dimensions: [("state", $0.rawValue)]))
            })
        oldestDueAge = Gauge(label: "patchbay_oldest_due_delivery_age_seconds")
        relay = Dictionary(
            uniqueKeysWithValues: Self.relayRejectionReasons.map {
                ($0, Counter(label: "patchbay_relay_rejected_total", dimensions: [("reason", $0)]))
            })
        Gauge(label: "patchbay_build_info", dimensions: [("version", PatchbayVersion.current)]).record(1)
        for counter in relay.values { counter.increment(by: 0) }
        auditFailures.increment(by: 0)
        for counter in accepted.values { counter.increment(by: 0) }
        for counter in rejected.values { counter.increment(by: 0) }
        for gauge in queueDepth.values { gauge.record(0) }
        oldestDueAge.record(0)
    }

    public func eventAccepted(_ type: EventType) { accepted[type.rawValue]?.increment() }

    public func requestRejected(_ reason: Rejection) { rejected[reason.rawValue]?.increment() }

    /// An operator action the audit trail could not record.
    public func auditWriteFailed() { auditFailures.increment() }

    /// A relayed message refused, or kept without an app (`unmapped`).
    /// A reason not in the list is counted as `other`, never dropped.
    public func relayRejected(_ reason: String) { (relay[reason] ?? relay["other"])?.increment() }

    /// One attempt's result: `outcome` is delivered, retry, dead or expired.
    public func attempt(kind: String, outcome: String, reason: DeliveryReason, latency: Duration?) {
        deliveries["\(kind)|\(outcome)|\(reason.rawValue)"]?.increment()
        if let latency, latency > .zero {
            sendDuration[kind]?.recordNanoseconds(Int64(latency.seconds * 1e9))
        }
    }

    /// A vendor asked for quiet (`Retry-After`, Pingdom's `Req-Limit`): the target sends nothing
    /// until this UNIX time. Targets never paused have no series.
    public func targetPaused(_ target: String, until: Date) {
        Gauge(label: "patchbay_target_paused_until_seconds", dimensions: [("target", target)]).record(until.timeIntervalSince1970)
        pauses.withLock { $0[target] = until }
    }

    /// Until when a vendor asked this target for quiet, as this process last heard (the console).
    public func pausedUntil(_ target: String) -> Date? {
        pauses.withLock { $0[target] }
    }

    private let pauses = Mutex<[String: Date]>([:])

    public func queue(counts: [DeliveryState: Int], oldestDueAge: Duration) {
        for state in DeliveryState.allCases {
            queueDepth[state.rawValue]?.record(Double(counts[state] ?? 0))
        }
        self.oldestDueAge.record(oldestDueAge.seconds)
    }
}
