import Foundation
import Hummingbird
import PatchbayCore

/// The operators' API behind `server.adminTokens`: the same listing, detail and replay as the CLI,
/// for operators without shell access to the host.
struct DeliveryRoutes {
    let store: any OperatorStore
    let settings: ServerSettings
    let wake: WakeSignal
    let audit: AuditTrail
    var clock: @Sendable () -> Date = Date.init

    func register(on router: Router<PatchbayRequestContext>) {
        router.get("/v1/deliveries") { request, _ in
            try authorize(request)
            let query = request.uri.queryParameters
            let filter: DeliveryFilter
            do throws(QueryProblem) {
                filter = try DeliveryQuery.filter(
                    state: query.get("state"), target: query.get("target"), app: query.get("app"),
                    since: query.get("since"), limit: query.get("limit"), offset: query.get("offset"), now: clock())
            } catch {
                throw APIError(error)
            }
            return JSONResponse.make(status: .ok, body: try await store.list(filter))
        }
        router.get("/v1/deliveries/:id") { request, context in
            try authorize(request)
            let id = try context.parameters.require("id")
            guard let detail = try await store.detail(id: id) else {
                throw APIError(.notFound, code: "not_found", message: "id: no delivery \(id)")
            }
            return JSONResponse.make(status: .ok, body: detail)
        }
        router.post("/v1/deliveries/:id/replay") { request, context in
            try authorize(request)
            let id = try context.parameters.require("id")
            let dryRun = request.uri.queryParameters.get("dryRun") == "true"
            let result = try await store.replay(id: id, at: clock(), dryRun: dryRun)
            if result == .replayed { wake.notify() }
            let name = settings.adminTokenName(request.headers[.authorization]) ?? "admin"
            await audit.record(
                AuditActor(name: "token \(name)", method: "token", id: name), "replay",
                result == .replayed || result == .wouldReplay ? .ok : .refused,
                source: ClientAddress.of(request, peer: context.remoteAddress, trustedProxies: settings.trustedProxies),
                detail: AuditTrail.replayDetail([id], dryRun: dryRun, replayed: result == .replayed ? 1 : 0) + " (\(result))")
            let status: HTTPResponse.Status =
                switch result {
                case .notFound: .notFound
                case .alreadyQueued: .conflict
                case .replayed, .wouldReplay: .ok
                }
            return JSONResponse.make(status: status, body: ReplayAnswer(id: id, result: result))
        }
    }

    struct ReplayAnswer: Encodable {
        var id: String
        var result: ReplayResult
    }

    private func authorize(_ request: Request) throws {
        try AdminAuthorization.check(request, settings: settings)
    }
}

/// The operators' API is open only with `server.adminTokens`, to a bearer of one of them.
enum AdminAuthorization {
    static func check(_ request: Request, settings: ServerSettings) throws {
        guard !settings.adminTokens.isEmpty else {
            throw APIError(.forbidden, code: "admin_disabled", message: "the admin API is off: set server.adminTokens to enable it")
        }
        guard ServerSettings.matches(request.headers[.authorization], tokens: settings.adminTokens) else {
            throw APIError.adminUnauthorized
        }
    }
}
