import Foundation
import Hummingbird
import PatchbayCore

/// `GET /v1/audit` behind `server.adminTokens`: who signed in, replayed, sent a test message,
/// pruned; the same records as the console's audit page and `patchbay audit list --json`.
struct AuditRoutes {
    let store: any AuditStore
    let settings: ServerSettings
    var clock: @Sendable () -> Date = Date.init

    func register(on router: Router<PatchbayRequestContext>) {
        router.get("/v1/audit") { request, _ in
            try AdminAuthorization.check(request, settings: settings)
            let query = request.uri.queryParameters
            let filter: AuditFilter
            do throws(QueryProblem) {
                filter = try AuditQuery.filter(since: query.get("since"), action: query.get("action"), limit: query.get("limit"), now: clock())
            } catch {
                throw APIError(error)
            }
            return JSONResponse.make(status: .ok, body: try await store.auditTrail(filter))
        }
    }
}
