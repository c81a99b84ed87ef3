import Foundation
import Hummingbird
import PatchbayCore

/// `GET /v1/maintenances` and `GET /v1/maintenances/{id}` behind `server.adminTokens`: the same
/// views as `patchbay maintenances list|show --json`.
struct MaintenanceRoutes {
    let store: any MaintenanceStore
    let settings: ServerSettings

    func register(on router: Router<PatchbayRequestContext>) {
        router.get("/v1/maintenances") { request, _ in
            try AdminAuthorization.check(request, settings: settings)
            let query: MaintenanceQuery
            do throws(QueryProblem) {
                query = try MaintenanceQuery(
                    since: request.uri.queryParameters.get("since"), limit: request.uri.queryParameters.get("limit"),
                    now: Date())
            } catch {
                throw APIError(error)
            }
            let rows = try await store.maintenances(since: query.since, limit: query.limit)
            return JSONResponse.make(status: .ok, body: rows.map(MaintenanceView.init))
        }
        router.get("/v1/maintenances/:id") { request, context in
            try AdminAuthorization.check(request, settings: settings)
            let id = try context.parameters.require("id")
            func page(_ name: String) throws -> Int {
                guard let text = request.uri.queryParameters.get(name) else { return 0 }
                guard let value = Int(text), (1...(MaintenanceDetail.Page.lastPage + 1)).contains(value) else {
                    throw APIError(QueryProblem(parameter: name, message: "expected a page number from 1 to \(MaintenanceDetail.Page.lastPage + 1)"))
                }
                return value - 1
            }
            let pages = MaintenanceDetail.Page(deliveries: try page("deliveries"), servers: try page("servers"))
            guard let detail = try await store.maintenance(id: id, page: pages) else {
                throw APIError(.notFound, code: "not_found", message: "id: no maintenance \(id) (use its mnt_ id or its window id)")
            }
            return JSONResponse.make(status: .ok, body: MaintenanceDetailView(detail))
        }
    }
}

/// A window in the route's zone and in UTC, as operators read it.
public struct WindowView: Encodable, Sendable {
    public var id: String?
    public var start: String
    public var end: String
    public var startUTC: String
    public var endUTC: String
    public var timezone: String

    public init(_ window: MaintenanceWindow, zone: String) {
        let tz = TimeZone(identifier: zone) ?? TimeZone(identifier: "UTC")!
        id = window.id
        start = Timestamp.rfc3339(window.start, in: tz)
        end = Timestamp.rfc3339(window.end, in: tz)
        startUTC = Timestamp.rfc3339(window.start)
        endUTC = Timestamp.rfc3339(window.end)
        timezone = tz.identifier
    }
}

public struct MaintenanceView: Encodable, Sendable {
    public var id: String
    public var app: String
    public var environment: String
    public var windowKey: String
    public var status: String
    public var window: WindowView
    public var instances: [String: Int]
    public var notices: [String: Int]
    public var deliveries: [String: Int]
    public var createdAt: Date
    public var updatedAt: Date

    public init(_ summary: MaintenanceSummary) {
        id = summary.id
        app = summary.app
        environment = summary.environment
        windowKey = summary.windowKey
        status = summary.status.rawValue
        window = WindowView(summary.window, zone: summary.displayTimeZone)
        instances = summary.instances
        notices = summary.notices
        deliveries = summary.deliveries
        createdAt = summary.createdAt
        updatedAt = summary.updatedAt
    }
}

public struct MaintenanceDetailView: Encodable, Sendable {
    public struct NoticeView: Encodable, Sendable {
        public var id: String
        public var notice: String
        public var due: String
        public var dueUTC: String
        public var state: String
        public var reason: String?
        public var eventID: String?
    }

    public var maintenance: MaintenanceView
    public var instances: [MaintenanceDetail.InstanceRow]
    public var notices: [NoticeView]
    public var vendorObjects: [MaintenanceDetail.VendorObject]
    public var deliveries: [DeliverySummary]

    public init(_ detail: MaintenanceDetail) {
        let zone = TimeZone(identifier: detail.summary.displayTimeZone) ?? TimeZone(identifier: "UTC")!
        maintenance = MaintenanceView(detail.summary)
        instances = detail.instances
        notices = detail.notices.map { notice in
            NoticeView(
                id: notice.id, notice: notice.label, due: Timestamp.rfc3339(notice.dueAt, in: zone), dueUTC: Timestamp.rfc3339(notice.dueAt),
                state: notice.state.rawValue, reason: notice.reason, eventID: notice.eventID)
        }
        // A summary lane's state (which servers its summaries named) is not a vendor object.
        vendorObjects = detail.vendorObjects.filter { !DeliveryLane(storedName: $0.target).isSummary }
        deliveries = detail.deliveries
    }
}
