import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import PatchbayCore
import PatchbayTargets

/// The deliveries list, one delivery with its attempts and request preview, and replay.
extension ConsoleRoutes {
    func deliveriesPage(_ session: ConsoleSession, request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        func parameter(_ name: String) -> String? { query.get(name).flatMap { $0.isEmpty ? nil : $0 } }
        let pageNumber = parameter("page").flatMap(Int.init).map { min(max($0, 1), 200) } ?? 1
        var filter: DeliveryFilter
        do throws(QueryProblem) {
            filter = try DeliveryQuery.filter(
                state: parameter("state"), target: parameter("target"), app: parameter("app"),
                since: parameter("since"), limit: nil, now: clock())
        } catch {
            return message(session, heading: "Bad filter", text: error.description, status: .badRequest)
        }
        // One page and one row to tell whether another follows; no payloads (review F3).
        filter.limit = Self.pageSize + 1
        filter.offset = (pageNumber - 1) * Self.pageSize
        let rows = try await store.list(filter)
        let pageRows = Array(rows.prefix(Self.pageSize))
        func link(_ page: Int) -> String {
            var items = [URLQueryItem(name: "page", value: String(page))]
            for name in ["state", "target", "app", "since"] {
                if let value = parameter(name) { items.append(URLQueryItem(name: name, value: value)) }
            }
            var components = URLComponents()
            components.path = "/console/deliveries"
            components.queryItems = items
            return components.string ?? "/console/deliveries"
        }
        var values: [String: Any] = [
            "deliveries": pageRows.map(ConsoleViews.deliveryRow),
            "states": DeliveryState.allCases.map { ["value": $0.rawValue, "selected": $0 == filter.state] as [String: Any] },
            "target": parameter("target") ?? "", "app": parameter("app") ?? "", "since": parameter("since") ?? "",
        ]
        if pageNumber > 1 { values["previous"] = link(pageNumber - 1) }
        if rows.count > Self.pageSize, pageNumber < 200 { values["next"] = link(pageNumber + 1) }
        let replayed = parameter("replayed").flatMap(Int.init)
        return render(
            "deliveries", title: "Deliveries", values: values, session: session,
            flash: replayed.map { "\($0) \($0 == 1 ? "delivery" : "deliveries") replayed" })
    }

    func deliveryPage(_ session: ConsoleSession, id: String, request: Request) async throws -> Response {
        guard let detail = try await store.detail(id: id) else {
            return message(session, heading: "Not found", text: "No delivery \(id).", status: .notFound)
        }
        var values = ConsoleViews.deliveryRow(detail.summary)
        values["targetKind"] = detail.summary.targetKind
        values["eventID"] = detail.summary.eventID
        values["created"] = Timestamp.rfc3339(detail.summary.createdAt)
        values["request"] = await RequestPreview.describe(detail, configuration: configuration, store: store, now: clock())
        values["attempts"] = detail.attempts.map { attempt -> [String: Any] in
            [
                "number": attempt.number, "started": Timestamp.rfc3339(attempt.startedAt), "outcome": attempt.outcome,
                "status": attempt.statusCode.map(String.init) ?? "-", "latency": String(format: "%.0f ms", attempt.latencyMilliseconds),
                "detail": configuration.redactor.redact(attempt.reason + (attempt.responseExcerpt.map { ": " + String($0.prefix(200)) } ?? "")),
            ]
        }
        if detail.summary.eventType != RelayedMessage.eventType,
            let found = try await maintenances.maintenance(
                id: detail.event.window.id ?? Timestamp.rfc3339(detail.event.window.start), page: .overview)
        {
            values["maintenanceID"] = found.summary.id
        }
        let replayed = request.uri.queryParameters.get("replayed") != nil
        return render(
            "delivery", title: "Delivery \(id)", values: values, session: session, flash: replayed ? "Delivery replayed: it is queued again" : nil)
    }

    /// Without `confirm`, a dry-run preview of what would be sent; with it, the replay.
    func replay(_ session: ConsoleSession, form: Form, source: String) async throws -> Response {
        let ids = Array(Set(form.values("ids").filter { !$0.isEmpty && $0.count <= 64 })).sorted().prefix(200)
        guard !ids.isEmpty else {
            return message(session, heading: "Nothing selected", text: "Select at least one delivery to replay.", status: .badRequest)
        }
        if form.value("confirm") == "1" {
            var replayed = 0
            for id in ids where try await store.replay(id: id, at: clock(), dryRun: false) == .replayed { replayed += 1 }
            if replayed > 0 { wake.notify() }
            await audit.record(
                session.actor, "replay", .ok, source: source, detail: AuditTrail.replayDetail(Array(ids), dryRun: false, replayed: replayed))
            let target = ids.count == 1 ? "/console/deliveries/\(ids[0])?replayed=1" : "/console/deliveries?replayed=\(replayed)"
            return Response.redirect(to: target, type: .normal)
        }
        var items: [[String: Any]] = []
        var replayable = false
        for id in ids {
            let result = try await store.replay(id: id, at: clock(), dryRun: true)
            let verdict: String
            switch result {
            case .wouldReplay:
                verdict = "would be queued again"
                replayable = true
            case .alreadyQueued(let state): verdict = "already \(state): left alone"
            case .notFound: verdict = "not found"
            case .replayed: verdict = "replayed"
            }
            var item: [String: Any] = ["id": id, "verdict": verdict, "target": "?", "request": ""]
            if let detail = try await store.detail(id: id) {
                item["target"] = detail.summary.target
                item["request"] = await RequestPreview.describe(detail, configuration: configuration, store: store, now: clock())
            }
            items.append(item)
        }
        await audit.record(
            session.actor, "replay", .ok, source: source, detail: AuditTrail.replayDetail(Array(ids), dryRun: true, replayed: 0))
        return render(
            "replay-preview", title: "Replay",
            values: [
                "items": items, "count": ids.count, "noun": ids.count == 1 ? "delivery" : "deliveries",
                "replayable": replayable,
            ], session: session)
    }
}
