import Foundation

/// Every row of a queue, read from one store to be written into another (`patchbay migrate
/// --from sqlite:PATH` copies a SQLite queue into PostgreSQL). Plain values: times as `Date`,
/// JSON columns (payloads, resources, packages, tags, follow-up state) as the text stored.
///
/// Sequence numbers are the source store's: they give the order rows were written in (events,
/// deliveries, notices are copied in that order) and deliveries name their event by it. The
/// destination hands out its own numbers.
public struct StoreTransfer: Sendable {
    public struct EventRow: Sendable, Hashable {
        /// The source store's sequence number, which `DeliveryRow.eventSeq` refers to.
        public var seq: Int64
        public var id: String
        public var idempotencyKey: String?
        public var bodySHA256: String
        public var type: String
        public var app: String
        public var environment: String
        public var maintenanceKey: String
        /// The event (or relayed message) as stored: copied byte for byte.
        public var payload: String
        public var deliveryCount: Int
        public var receivedAt: Date
        /// Who sent it (`token:<name>`, `relay:<source>`, `schedule`).
        public var sender: String?

        public init(
            seq: Int64, id: String, idempotencyKey: String?, bodySHA256: String, type: String, app: String, environment: String,
            maintenanceKey: String, payload: String, deliveryCount: Int, receivedAt: Date, sender: String? = nil
        ) {
            self.sender = sender
            self.seq = seq
            self.id = id
            self.idempotencyKey = idempotencyKey
            self.bodySHA256 = bodySHA256
            self.type = type
            self.app = app
            self.environment = environment
            self.maintenanceKey = maintenanceKey
            self.payload = payload
            self.deliveryCount = deliveryCount
            self.receivedAt = receivedAt
        }
    }

    public struct DeliveryRow: Sendable, Hashable {
        /// The source store's sequence number: a lane's deliveries go in this order.
        public var seq: Int64
        public var id: String
        /// The source store's `EventRow.seq` of its event.
        public var eventSeq: Int64
        public var target: String
        public var targetKind: String
        /// With `target`, the delivery's ordering lane.
        public var maintenanceKey: String
        public var displayTimeZone: String
        /// `DeliveryState` raw value as stored.
        public var state: String
        public var attempts: Int
        /// Pending: when it is due; in flight: when the lease ends.
        public var nextAttemptAt: Date
        public var leaseToken: String?
        public var createdAt: Date
        public var updatedAt: Date
        public var lastReason: String?
        /// JSON list of resource ids.
        public var resources: String
        public var throttles: Int
        public var replays: Int
        public var replayedAt: Date?

        public init(
            seq: Int64, id: String, eventSeq: Int64, target: String, targetKind: String, maintenanceKey: String, displayTimeZone: String,
            state: String, attempts: Int, nextAttemptAt: Date, leaseToken: String?, createdAt: Date, updatedAt: Date, lastReason: String?,
            resources: String, throttles: Int, replays: Int, replayedAt: Date?
        ) {
            self.seq = seq
            self.id = id
            self.eventSeq = eventSeq
            self.target = target
            self.targetKind = targetKind
            self.maintenanceKey = maintenanceKey
            self.displayTimeZone = displayTimeZone
            self.state = state
            self.attempts = attempts
            self.nextAttemptAt = nextAttemptAt
            self.leaseToken = leaseToken
            self.createdAt = createdAt
            self.updatedAt = updatedAt
            self.lastReason = lastReason
            self.resources = resources
            self.throttles = throttles
            self.replays = replays
            self.replayedAt = replayedAt
        }
    }

    public struct AttemptRow: Sendable, Hashable {
        public var deliveryID: String
        public var number: Int
        public var startedAt: Date
        public var latencyMilliseconds: Double
        public var statusCode: Int?
        public var outcome: String
        public var reason: String
        public var responseExcerpt: String?

        public init(
            deliveryID: String, number: Int, startedAt: Date, latencyMilliseconds: Double, statusCode: Int?, outcome: String,
            reason: String, responseExcerpt: String?
        ) {
            self.deliveryID = deliveryID
            self.number = number
            self.startedAt = startedAt
            self.latencyMilliseconds = latencyMilliseconds
            self.statusCode = statusCode
            self.outcome = outcome
            self.reason = reason
            self.responseExcerpt = responseExcerpt
        }
    }

    /// The furthest stage an instance of a maintenance reported. Listed in the order instances
    /// first reported, which snapshots keep.
    public struct InstanceRow: Sendable, Hashable {
        public var maintenanceKey: String
        public var instanceID: String
        public var instanceName: String?
        public var lastType: String
        public var stageRank: Int
        /// JSON list of packages.
        public var packages: String
        public var updatedAt: Date

        public init(
            maintenanceKey: String, instanceID: String, instanceName: String?, lastType: String, stageRank: Int, packages: String,
            updatedAt: Date
        ) {
            self.maintenanceKey = maintenanceKey
            self.instanceID = instanceID
            self.instanceName = instanceName
            self.lastType = lastType
            self.stageRank = stageRank
            self.packages = packages
            self.updatedAt = updatedAt
        }
    }

    /// What a vendor returned for a maintenance (incident or window id, status).
    public struct FollowUpRow: Sendable, Hashable {
        public var maintenanceKey: String
        public var target: String
        /// `FollowUpState` as JSON.
        public var state: String
        public var updatedAt: Date

        public init(maintenanceKey: String, target: String, state: String, updatedAt: Date) {
            self.maintenanceKey = maintenanceKey
            self.target = target
            self.state = state
            self.updatedAt = updatedAt
        }
    }

    public struct MaintenanceRow: Sendable, Hashable {
        public var maintenanceKey: String
        public var id: String
        public var app: String
        public var environment: String
        public var windowKey: String
        public var windowID: String?
        public var windowStart: Date
        public var windowEnd: Date
        public var windowTimeZone: String?
        public var status: String
        public var displayTimeZone: String
        /// JSON object of tags.
        public var tags: String
        public var createdAt: Date
        public var updatedAt: Date

        public init(
            maintenanceKey: String, id: String, app: String, environment: String, windowKey: String, windowID: String?,
            windowStart: Date, windowEnd: Date, windowTimeZone: String?, status: String, displayTimeZone: String, tags: String,
            createdAt: Date, updatedAt: Date
        ) {
            self.maintenanceKey = maintenanceKey
            self.id = id
            self.app = app
            self.environment = environment
            self.windowKey = windowKey
            self.windowID = windowID
            self.windowStart = windowStart
            self.windowEnd = windowEnd
            self.windowTimeZone = windowTimeZone
            self.status = status
            self.displayTimeZone = displayTimeZone
            self.tags = tags
            self.createdAt = createdAt
            self.updatedAt = updatedAt
        }
    }

    /// A reminder, "beginning" or overrun notice, planned or already fired, skipped or dropped.
    public struct NoticeRow: Sendable, Hashable {
        public var id: String
        public var maintenanceKey: String
        public var kind: String
        public var leadSeconds: Int?
        public var dueAt: Date
        public var state: String
        public var reason: String?
        public var eventID: String?
        public var updatedAt: Date

        public init(
            id: String, maintenanceKey: String, kind: String, leadSeconds: Int?, dueAt: Date, state: String, reason: String?,
            eventID: String?, updatedAt: Date
        ) {
            self.id = id
            self.maintenanceKey = maintenanceKey
            self.kind = kind
            self.leadSeconds = leadSeconds
            self.dueAt = dueAt
            self.state = state
            self.reason = reason
            self.eventID = eventID
            self.updatedAt = updatedAt
        }
    }

    /// A relayed message that mapped to no app.
    public struct UnmappedRow: Sendable, Hashable {
        public var source: String
        public var dedupeID: String?
        public var reason: String
        public var body: String
        public var receivedAt: Date

        public init(source: String, dedupeID: String?, reason: String, body: String, receivedAt: Date) {
            self.source = source
            self.dedupeID = dedupeID
            self.reason = reason
            self.body = body
            self.receivedAt = receivedAt
        }
    }

    /// In the source's order (sequence numbers, or insertion order for tables without one).
    public var events: [EventRow]
    public var deliveries: [DeliveryRow]
    public var attempts: [AttemptRow]
    public var maintenanceInstances: [InstanceRow]
    public var followUps: [FollowUpRow]
    public var maintenances: [MaintenanceRow]
    public var plannedNotices: [NoticeRow]
    public var unmapped: [UnmappedRow]
    /// The audit trail, oldest first.
    public var audit: [AuditRecord]

    public init(
        events: [EventRow] = [], deliveries: [DeliveryRow] = [], attempts: [AttemptRow] = [], maintenanceInstances: [InstanceRow] = [],
        followUps: [FollowUpRow] = [], maintenances: [MaintenanceRow] = [], plannedNotices: [NoticeRow] = [],
        unmapped: [UnmappedRow] = [], audit: [AuditRecord] = []
    ) {
        self.audit = audit
        self.events = events
        self.deliveries = deliveries
        self.attempts = attempts
        self.maintenanceInstances = maintenanceInstances
        self.followUps = followUps
        self.maintenances = maintenances
        self.plannedNotices = plannedNotices
        self.unmapped = unmapped
    }

    /// What a copy of these rows writes (for a dry run).
    public var counts: TransferCounts {
        var counts = TransferCounts()
        counts.events = events.count
        counts.deliveries = deliveries.count
        counts.requeued = deliveries.filter { $0.state == DeliveryState.inFlight.rawValue }.count
        counts.lanes = Set(deliveries.map { TransferLane(maintenanceKey: $0.maintenanceKey, target: $0.target) }).count
        counts.attempts = attempts.count
        counts.maintenanceInstances = maintenanceInstances.count
        counts.followUps = followUps.count
        counts.maintenances = maintenances.count
        counts.plannedNotices = plannedNotices.count
        counts.unmapped = unmapped.count
        counts.audit = audit.count
        return counts
    }
}

/// A (maintenance, target) ordering lane.
public struct TransferLane: Sendable, Hashable {
    public var maintenanceKey: String
    public var target: String

    public init(maintenanceKey: String, target: String) {
        self.maintenanceKey = maintenanceKey
        self.target = target
    }
}

/// Rows copied per table. Counts only: never row contents.
public struct TransferCounts: Sendable, Hashable, Codable {
    public var events = 0
    public var deliveries = 0
    /// Deliveries that were in flight in the source: copied as pending, due at once, lease cleared.
    public var requeued = 0
    /// (maintenance, target) lanes numbered.
    public var lanes = 0
    public var attempts = 0
    public var maintenanceInstances = 0
    public var followUps = 0
    public var maintenances = 0
    public var plannedNotices = 0
    public var unmapped = 0
    public var audit = 0

    public init() {}

    /// Table name and row count, in copy order, for printing.
    public var tables: [(table: String, rows: Int)] {
        [
            ("events", events), ("deliveries", deliveries), ("lanes", lanes), ("attempts", attempts),
            ("maintenance_instances", maintenanceInstances), ("followups", followUps), ("maintenances", maintenances),
            ("planned_notices", plannedNotices), ("relay_unmapped", unmapped), ("audit_log", audit),
        ]
    }
}
