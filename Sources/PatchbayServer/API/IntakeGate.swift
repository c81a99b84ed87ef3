import Foundation
import Hummingbird
import PatchbayCore
import ServiceLifecycle
import Synchronization

/// Closes intake when shutdown begins: new requests get 503 (so load balancers and agents retry
/// elsewhere or later) while the dispatcher finishes what is in flight. Runs as the last service
/// of the group, so it is the first to hear of shutdown.
public final class IntakeGate: Service, Sendable, CustomStringConvertible {
    private let draining = Atomic<Bool>(false)
    /// How long to keep answering 503 before the HTTP server stops accepting connections.
    let drainDelay: Duration

    public init(drainDelay: Duration) {
        self.drainDelay = drainDelay
    }

    public var isDraining: Bool { draining.load(ordering: .acquiring) }

    public var description: String { "IntakeGate" }

    public func run() async throws {
        try? await gracefulShutdown()
        draining.store(true, ordering: .releasing)
        if drainDelay > .zero { try? await Task.sleep(for: drainDelay) }
    }

    public func close() { draining.store(true, ordering: .releasing) }
}

/// Answers 503 to everything but health checks and metrics while the gate is closed.
struct DrainingMiddleware<Context: RequestContext>: RouterMiddleware {
    let gate: IntakeGate
    let metrics: PatchbayMetrics
    static var alwaysOpen: Set<String> { ["/healthz", "/readyz", "/metrics"] }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if gate.isDraining, !Self.alwaysOpen.contains(request.uri.path) {
            metrics.requestRejected(.draining)
            throw APIError(
                .serviceUnavailable, code: "draining",
                message: "Patchbay is shutting down and accepts no new requests; retry in a few seconds",
                headers: [.retryAfter: "5"])
        }
        return try await next(request, context)
    }
}

/// Anything a handler throws that is not an answer of its own (a store error in an admin read,
/// a bug) becomes a 503 with `Retry-After` and a JSON body, never a bare 500: senders retry a
/// 503, and the log has the detail.
struct UnexpectedErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError {
            throw error
        } catch {
            context.logger.error(
                "request failed unexpectedly; answered 503",
                metadata: [
                    "path": "\(LogText.escape(request.uri.path))",
                    "error": "\(error)",
                ])
            throw APIError(
                .serviceUnavailable, code: "unavailable", message: "the request could not be completed; retry later",
                headers: [.retryAfter: "5"])
        }
    }
}
