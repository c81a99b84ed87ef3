import Foundation

/// How an accepted event's maintenance is planned: the store runs `MaintenancePlanner.apply` in
/// the transaction that commits the event, with these route settings.
public struct MaintenancePlanning: Sendable, Hashable {
    /// The first matching route's notice plan; nil when no route matches (no notices).
    public var settings: NoticeSettings?
    public var displayTimeZone: String

    public init(settings: NoticeSettings?, displayTimeZone: String) {
        self.settings = settings
        self.displayTimeZone = displayTimeZone
    }
}

/// A planned notice whose time has come, with what the scheduler needs to decide about it.
public struct DueNotice: Sendable {
    public var notice: PlannedNotice
    public var record: MaintenanceRecord
    public var snapshot: MaintenanceSnapshot

    public init(notice: PlannedNotice, record: MaintenanceRecord, snapshot: MaintenanceSnapshot) {
        self.notice = notice
        self.record = record
        self.snapshot = snapshot
    }
}

/// The scheduler's answer for one due notice.
public enum NoticeFiring: Sendable {
    /// Store this event with these deliveries and mark the notice sent.
    case send(PatchEvent, [DeliveryPlan])
    /// Mark the notice skipped with this reason.
    case skip(reason: String)
}

/// What happened to a due notice, for logs and metrics.
public struct FiredNotice: Sendable, Hashable {
    public var notice: PlannedNotice
    public var maintenance: MaintenanceKey
    /// The event queued, when it was sent.
    public var eventID: String?
    public var deliveries: Int

    public init(notice: PlannedNotice, maintenance: MaintenanceKey, eventID: String?, deliveries: Int) {
        self.notice = notice
        self.maintenance = maintenance
        self.eventID = eventID
        self.deliveries = deliveries
    }
}

/// One maintenance in a listing.
public struct MaintenanceSummary: Sendable, Hashable, Codable {
    public var id: String
    public var app: String
    public var environment: String
    /// The window id, or the window's start when the events carry none.
    public var windowKey: String
    public var window: MaintenanceWindow
    public var status: MaintenanceRecord.Status
    public var displayTimeZone: String
    /// Reported instances by their furthest stage: `started`, `completed`, `failed`, `cancelled`.
    public var instances: [String: Int]
    /// Planned notices by state.
    public var notices: [String: Int]
    /// Deliveries by state.
    public var deliveries: [String: Int]
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: String, app: String, environment: String, windowKey: String, window: MaintenanceWindow, status: MaintenanceRecord.Status,
        displayTimeZone: String, instances: [String: Int], notices: [String: Int], deliveries: [String: Int], createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.app = app
        self.environment = environment
        self.windowKey = windowKey
        self.window = window
        self.status = status
        self.displayTimeZone = displayTimeZone
        self.instances = instances
        self.notices = notices
        self.deliveries = deliveries
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// One maintenance with everything Patchbay knows about it. No secrets: targets by name.
public struct MaintenanceDetail: Sendable, Codable {
    public struct InstanceRow: Sendable, Hashable, Codable {
        public var id: String
        public var name: String?
        /// The furthest stage reported.
        public var stage: String
        public var packages: Int
        public var updatedAt: Date

        public init(id: String, name: String?, stage: String, packages: Int, updatedAt: Date) {
            self.id = id
            self.name = name
            self.stage = stage
            self.packages = packages
            self.updatedAt = updatedAt
        }
    }

    public struct VendorObject: Sendable, Hashable, Codable {
        public var target: String
        public var objectID: String?
        public var status: String?
        public var windowStart: Date?
        public var windowEnd: Date?
        /// A public link to it (a Statuspage incident's shortlink).
        public var link: String?
    }

    /// Which part of a maintenance's servers and deliveries a detail holds. A maintenance of a
    /// thousand servers has thousands of deliveries: a page is bounded whatever its size (review
    /// F3), and the totals are in `summary` and `deliveriesByTarget`.
    public struct Page: Sendable, Hashable, Codable {
        /// Zero-based page of deliveries, newest first; nil for none.
        public var deliveries: Int?
        /// Zero-based page of servers, in the order they first reported; nil for none.
        public var servers: Int?

        public init(deliveries: Int?, servers: Int?) {
            self.deliveries = deliveries.map { min(max($0, 0), Self.lastPage) }
            self.servers = servers.map { min(max($0, 0), Self.lastPage) }
        }

        public static let deliveriesPerPage = 50
        public static let serversPerPage = 100
        /// The furthest page served: a hard cap on what any request can make the store skip.
        public static let lastPage = 1000
        public static let first = Page(deliveries: 0, servers: 0)
        /// Counts, notices and vendor objects only (the console's list of maintenances).
        public static let overview = Page(deliveries: nil, servers: nil)
    }

    public var summary: MaintenanceSummary
    /// One page of servers (`page.servers`).
    public var instances: [InstanceRow]
    public var notices: [PlannedNotice]
    public var vendorObjects: [VendorObject]
    /// One page of deliveries, newest first (`page.deliveries`).
    public var deliveries: [DeliverySummary]
    /// Deliveries by target and state, all of them.
    public var deliveriesByTarget: [String: [String: Int]]
    public var page: Page

    public init(
        summary: MaintenanceSummary, instances: [InstanceRow], notices: [PlannedNotice], vendorObjects: [VendorObject],
        deliveries: [DeliverySummary], deliveriesByTarget: [String: [String: Int]] = [:], page: Page = .first
    ) {
        self.summary = summary
        self.instances = instances
        self.notices = notices
        self.vendorObjects = vendorObjects
        self.deliveries = deliveries
        self.deliveriesByTarget = deliveriesByTarget
        self.page = page
    }

    /// Servers reported in all (every page).
    public var instanceCount: Int { summary.instances.values.reduce(0, +) }
    /// Deliveries in all (every page).
    public var deliveryCount: Int { summary.deliveries.values.reduce(0, +) }
}

extension MaintenanceDetail.VendorObject {
    public init(target: String, state: FollowUpState) {
        self.target = target
        objectID = state.objectID
        status = state.status
        windowStart = state.windowStart
        windowEnd = state.windowEnd
        link = state.link
    }

    /// Every object a target's follow-up state holds: its own (when it made one), then each
    /// further one (a server's silence) as `target · key`.
    public static func all(target: String, state: FollowUpState) -> [Self] {
        var objects: [Self] = []
        if state.objectID != nil || state.status != nil || state.objects == nil { objects.append(Self(target: target, state: state)) }
        for (key, held) in (state.objects ?? [:]).sorted(by: { $0.key < $1.key }) {
            var object = Self(target: "\(target) · \(key)", state: FollowUpState())
            object.objectID = held.id
            object.status = held.status
            object.windowEnd = held.end
            object.link = held.link
            objects.append(object)
        }
        return objects
    }
}

/// Maintenances and their planned notices. The scheduler fires due notices through it; the CLI
/// and the admin API read it.
public protocol MaintenanceStore: Sendable {
    /// Turns due planned notices into events and deliveries, in one transaction per batch, so
    /// each notice is sent exactly once even across restarts. `decide` is pure and runs inside
    /// the transaction.
    func fireDueNotices(now: Date, limit: Int, decide: @escaping @Sendable (DueNotice) -> NoticeFiring) async throws -> [FiredNotice]
    /// When the next planned notice falls due, if any.
    func nextNoticeDue() async throws -> Date?
    /// Maintenances whose window ends at or after `since` (all when nil), latest window first.
    func maintenances(since: Date?, limit: Int) async throws -> [MaintenanceSummary]
    /// By id (`mnt_…`) or window id (a schedule's `mw-0123` finds its latest occurrence,
    /// `mw-0123@…`); the newest when several apps share a window id; nil when unknown. Holds one
    /// page of its servers and deliveries, never every one of them.
    func maintenance(id: String, page: MaintenanceDetail.Page) async throws -> MaintenanceDetail?
    /// The event accepted under an idempotency key (schedules use it to announce each occurrence once).
    func eventID(idempotencyKey: String) async throws -> String?
}

extension MaintenanceStore {
    /// The first page of servers and deliveries.
    public func maintenance(id: String) async throws -> MaintenanceDetail? {
        try await maintenance(id: id, page: .first)
    }
}
