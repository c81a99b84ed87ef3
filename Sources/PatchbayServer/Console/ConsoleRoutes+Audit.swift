import Foundation
import Hummingbird
import PatchbayCore

/// The audit trail's page (admins only): who signed in, replayed, sent a test message, pruned.
extension ConsoleRoutes {
    static let auditActions = ["sign-in", "sign-out", "replay", "test-send", "prune"]
    static let auditPeriods: [(value: String, label: String, seconds: Double)] = [
        ("1d", "the last day", 86_400), ("7d", "the last 7 days", 7 * 86_400), ("30d", "the last 30 days", 30 * 86_400),
        ("365d", "the last year", 365 * 86_400),
    ]

    func auditPage(_ session: ConsoleSession, request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        let period = query["since"].map(String.init).flatMap { value in Self.auditPeriods.first { $0.value == value } } ?? Self.auditPeriods[1]
        let action = query["action"].map(String.init).flatMap { Self.auditActions.contains($0) ? $0 : nil }
        let records = try await auditStore.auditTrail(
            AuditFilter(since: clock().addingTimeInterval(-period.seconds), action: action, limit: 500))
        let rows = records.map { record -> [String: Any] in
            [
                "at": Timestamp.rfc3339(record.at), "actor": record.actor, "actorID": record.actorID ?? "—", "method": record.method,
                "action": record.action,
                "outcome": record.outcome.rawValue, "outcomeClass": record.outcome == .ok ? "delivered" : "dead",
                "source": record.source ?? "—", "detail": record.detail,
            ]
        }
        return render(
            "audit", title: "Audit trail",
            values: [
                "records": rows,
                "sinceOptions": Self.auditPeriods.map {
                    ["value": $0.value, "label": $0.label, "selected": $0.value == period.value] as [String: Any]
                },
                "actions": Self.auditActions.map { ["value": $0, "selected": $0 == action] as [String: Any] },
            ], session: session)
    }
}
