import Foundation
import Hummingbird
import PatchbayCore

/// The operators' API behind `server.adminTokens`: the same listing, detail and replay as the CLI,
/// for operators without shell access to the host.
struct DeliveryRoutes {
    let store: any DeliveryStore
    let settings: ServerSettings
    let wake: WakeSignal
    var clock: @Sendable () -> Date = Date.init

    func register(on router: Router<PatchbayRequestContext>) {
        router.get("/v1/deliveries") { request, _ in
            try authorize(request)
            let filter = try DeliveryQuery.filter(
                state: request.uri.queryParameters.get("state"), target: request.uri.queryParameters.get("target"),
                app: request.uri.queryParameters.get("app"), since: request.uri.queryParameters.get("since"),
                limit: request.uri.queryParameters.get("limit"), offset: request.uri.queryParameters.get("offset"), now: clock()
            )
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
            let status: HTTPResponse.Status = switch result {
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

/// Turns operator input (CLI flags, query parameters) into a store filter, with errors that name the parameter.
public enum DeliveryQuery {
    public static func filter(state: String?, target: String?, app: String?, since: String?, limit: String?, offset: String? = nil,
                              now: Date) throws -> DeliveryFilter {
        var filter = DeliveryFilter(target: target, app: app)
        if let state {
            guard let parsed = DeliveryState(rawValue: state) else {
                throw APIError(.badRequest, code: "invalid_parameter",
                               message: "state: must be one of \(DeliveryState.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            filter.state = parsed
        }
        if let since {
            guard let duration = ConfigSection.parseDuration(since) else {
                throw APIError(.badRequest, code: "invalid_parameter", message: "since: expected a duration like 30m, 2h or 7d, got '\(since)'")
            }
            filter.since = now.addingTimeInterval(-duration.seconds)
        }
        if let limit {
            guard let value = Int(limit), (1...10_000).contains(value) else {
                throw APIError(.badRequest, code: "invalid_parameter", message: "limit: expected a whole number from 1 to 10000")
            }
            filter.limit = value
        }
        if let offset {
            guard let value = Int(offset), (0...100_000).contains(value) else {
                throw APIError(.badRequest, code: "invalid_parameter", message: "offset: expected a whole number from 0 to 100000")
            }
            filter.offset = value
        }
        return filter
    }
}
