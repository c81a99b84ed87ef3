import Foundation

/// How long finished work is kept (`store.retention`). Pruning deletes in small batches, so it
/// never holds the writer long enough to stall intake.
public struct RetentionPolicy: Sendable, Hashable {
    /// Delivered deliveries and their attempts, by when they finished.
    public var delivered: Duration
    /// Expired deliveries.
    public var expired: Duration
    /// Dead deliveries: kept longer, an operator may still replay them.
    public var dead: Duration
    /// Events (which hold the idempotency keys), by when they arrived, once none of their
    /// deliveries is kept. At least as long as senders retry: SNS and Standard Webhooks senders
    /// retry for up to a few days.
    public var events: Duration
    /// Maintenances, their instances, planned notices and vendor ids, by when their window ended.
    public var maintenances: Duration
    /// Relayed messages that mapped to no app.
    public var unmapped: Duration
    /// The audit trail (who signed in, replayed, pruned), by when it happened.
    public var audit: Duration

    public init(
        delivered: Duration = .seconds(30 * 86_400), expired: Duration = .seconds(30 * 86_400), dead: Duration = .seconds(90 * 86_400),
        events: Duration = .seconds(30 * 86_400), maintenances: Duration = .seconds(90 * 86_400), unmapped: Duration = .seconds(30 * 86_400),
        audit: Duration = .seconds(365 * 86_400)
    ) {
        self.audit = audit
        self.delivered = delivered
        self.expired = expired
        self.dead = dead
        self.events = events
        self.maintenances = maintenances
        self.unmapped = unmapped
    }

    /// The least an idempotency key may be kept.
    public static let minimumEvents: Duration = .seconds(7 * 86_400)

    /// Reads `store.retention: {delivered: 30d, expired: 30d, dead: 90d, events: 30d, maintenances: 90d, unmapped: 30d, audit: 365d}`.
    public init(section: ConfigSection?) {
        let defaults = RetentionPolicy()
        guard let section else {
            self = defaults
            return
        }
        section.allowOnly(["delivered", "expired", "dead", "events", "maintenances", "unmapped", "audit"])
        let day: Duration = .seconds(86_400)
        let years: Duration = .seconds(10 * 365 * 86_400)
        self.init(
            delivered: section.duration("delivered", default: defaults.delivered, range: .seconds(3600)...years),
            expired: section.duration("expired", default: defaults.expired, range: .seconds(3600)...years),
            dead: section.duration("dead", default: defaults.dead, range: day...years),
            events: section.duration("events", default: defaults.events, range: Self.minimumEvents...years),
            maintenances: section.duration("maintenances", default: defaults.maintenances, range: day...years),
            unmapped: section.duration("unmapped", default: defaults.unmapped, range: day...years),
            audit: section.duration("audit", default: defaults.audit, range: (day * 30)...years)
        )
    }
}

/// What a prune removed (or, on a dry run, would remove).
public struct PruneReport: Sendable, Hashable, Codable {
    public var deliveries = 0
    public var attempts = 0
    public var events = 0
    public var maintenances = 0
    public var unmapped = 0
    public var audit = 0

    public init() {}

    public var total: Int { deliveries + attempts + events + maintenances + unmapped + audit }
}
