import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import PatchbayCore
import PatchbayTargets

/// The maintenances page (the console's home) and one maintenance's page.
extension ConsoleRoutes {
    func maintenancesPage(_ session: ConsoleSession) async throws -> Response {
        let now = clock()
        let days = 14
        let summaries = try await maintenances.maintenances(since: now.addingTimeInterval(-Double(days) * 86_400), limit: 100)
        var groups: [(String, [[String: Any]])] = [("Running", []), ("Upcoming", []), ("Recent", [])]
        for (index, summary) in summaries.enumerated() {
            // Per-target states need each maintenance's detail: read for the first 30 only, so a
            // page that refreshes every 30 s stays cheap; the rest show their counts.
            let detail = index < Self.detailedMaintenances ? try await maintenances.maintenance(id: summary.id, page: .overview) : nil
            let row = ConsoleViews.maintenanceRow(summary, detail: detail, kinds: configuration.targets.mapValues(\.kind))
            let index = summary.status == .cancelled || summary.window.end < now ? 2 : summary.window.start > now ? 1 : 0
            groups[index].1.append(row)
        }
        let shown = groups.filter { !$0.1.isEmpty }.map { ["name": $0.0, "count": $0.1.count, "rows": $0.1] as [String: Any] }
        return render("maintenances", title: "Maintenances", values: ["groups": shown, "days": days], session: session, refresh: 30)
    }

    /// One page of the maintenance's servers (`?servers=N`) and deliveries (`?deliveries=N`),
    /// 1-based: a maintenance of a thousand servers renders as fast as one of ten (review F3).
    func maintenancePage(_ session: ConsoleSession, id: String, request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        func number(_ name: String) -> Int { query.get(name).flatMap(Int.init).map { min(max($0, 1), MaintenanceDetail.Page.lastPage + 1) } ?? 1 }
        let (deliveryPage, serverPage) = (number("deliveries"), number("servers"))
        guard
            let detail = try await maintenances.maintenance(
                id: id, page: MaintenanceDetail.Page(deliveries: deliveryPage - 1, servers: serverPage - 1))
        else {
            return message(session, heading: "Not found", text: "No maintenance \(id).", status: .notFound)
        }
        var values = ConsoleViews.maintenanceRow(detail.summary, detail: detail, kinds: configuration.targets.mapValues(\.kind))
        let zone = TimeZone(identifier: detail.summary.displayTimeZone) ?? TimeZone(identifier: "UTC")!
        values["status"] = detail.summary.status.rawValue
        values["timeline"] = ConsoleViews.timeline(detail, now: clock())
        values["instances"] = detail.instances.map { row -> [String: Any] in
            [
                "name": row.name.map { "\($0) (\(row.id))" } ?? row.id, "stage": row.stage, "packages": row.packages,
                "updated": Timestamp.rfc3339(row.updatedAt),
            ]
        }
        values["vendorObjects"] = detail.vendorObjects.filter { !DeliveryLane(storedName: $0.target).isSummary }.map { object -> [String: Any] in
            var entry: [String: Any] = ["target": ConsoleViews.objectLabel(object.target), "status": object.status ?? "unknown"]
            if let id = object.objectID { entry["objectID"] = id }
            if let link = object.link { entry["link"] = link }
            return entry
        }
        values["notices"] = detail.notices.map { notice -> [String: Any] in
            var entry: [String: Any] = [
                "notice": notice.label, "due": Timestamp.rfc3339(notice.dueAt, in: zone), "dueUTC": Timestamp.rfc3339(notice.dueAt),
                "state": notice.state.rawValue,
            ]
            if let reason = notice.reason { entry["reason"] = reason }
            return entry
        }
        values["deliveries"] = detail.deliveries.map(ConsoleViews.deliveryRow)
        func link(deliveries: Int, servers: Int) -> String {
            "/console/maintenances/\(detail.summary.id)?servers=\(servers)&deliveries=\(deliveries)"
        }
        let perServers = MaintenanceDetail.Page.serversPerPage
        let perDeliveries = MaintenanceDetail.Page.deliveriesPerPage
        values["serversShown"] =
            "\(detail.instances.isEmpty ? 0 : (serverPage - 1) * perServers + 1)–\((serverPage - 1) * perServers + detail.instances.count) of \(detail.instanceCount)"
        values["deliveriesShown"] =
            "\(detail.deliveries.isEmpty ? 0 : (deliveryPage - 1) * perDeliveries + 1)–\((deliveryPage - 1) * perDeliveries + detail.deliveries.count) of \(detail.deliveryCount)"
        if serverPage > 1 { values["previousServers"] = link(deliveries: deliveryPage, servers: serverPage - 1) }
        if serverPage * perServers < detail.instanceCount, serverPage <= MaintenanceDetail.Page.lastPage {
            values["nextServers"] = link(deliveries: deliveryPage, servers: serverPage + 1)
        }
        if deliveryPage > 1 { values["previousDeliveries"] = link(deliveries: deliveryPage - 1, servers: serverPage) }
        if deliveryPage * perDeliveries < detail.deliveryCount, deliveryPage <= MaintenanceDetail.Page.lastPage {
            values["nextDeliveries"] = link(deliveries: deliveryPage + 1, servers: serverPage)
        }
        return render("maintenance", title: detail.summary.app + " - " + detail.summary.environment, values: values, session: session, refresh: 30)
    }
}
