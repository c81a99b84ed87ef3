import Foundation
import Hummingbird
import Logging
import PatchbayCore
import ServiceLifecycle
import Synchronization

/// `GET /healthz`: the process answers. `GET /readyz`: it should get traffic — intake is open
/// and the store accepts writes. `GET /metrics`: Prometheus text.
///
/// Both are open to anyone who reaches the port, so neither does database work per request
/// (review F9): `/metrics` shows the queue gauges `QueueGauges` refreshes in the background, and
/// `/readyz` answers from a write check at most `ReadinessProbe.maxAge` old, one at a time.
struct HealthRoutes {
    let readiness: ReadinessProbe
    let gate: IntakeGate
    /// Renders the metrics registry; nil when no backend was bootstrapped.
    let exposition: (@Sendable () -> String)?

    func register(on router: Router<PatchbayRequestContext>) {
        router.get("/healthz") { _, _ in
            JSONResponse.make(status: .ok, body: ["status": "ok"])
        }
        router.get("/readyz") { _, _ in
            if gate.isDraining {
                return JSONResponse.make(status: .serviceUnavailable, body: ["status": "draining"])
            }
            guard await readiness.isReady() else {
                return JSONResponse.make(status: .serviceUnavailable, body: ["status": "store not writable"])
            }
            return JSONResponse.make(status: .ok, body: ["status": "ready"])
        }
        router.get("/metrics") { _, _ in
            guard let exposition else {
                return Response(status: .notFound)
            }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: exposition())))
        }
    }
}

/// The store's write check for `/readyz`, shared: a success younger than `maxAge` is answered
/// again, and requests arriving while a check runs wait for that one, so a flood of probes costs
/// one write every `maxAge` at most while the store is fine, and one at a time while it is not
/// (a failure is not remembered: the probe says "ready" as soon as the store is back).
public final class ReadinessProbe: Sendable {
    let store: any OperatorStore
    let maxAge: Duration
    private struct State {
        var last: (at: ContinuousClock.Instant, ready: Bool)?
        var running: Task<Bool, Never>?
    }
    private let state = Mutex(State())

    public init(store: any OperatorStore, maxAge: Duration = .seconds(2)) {
        self.store = store
        self.maxAge = maxAge
    }

    public func isReady() async -> Bool {
        let check: Task<Bool, Never> = state.withLock { state in
            if let last = state.last, ContinuousClock.now - last.at < maxAge {
                let ready = last.ready
                return Task { ready }
            }
            if let running = state.running { return running }
            let store = store
            let running = Task { (try? await store.checkWritable()) != nil }
            state.running = running
            return running
        }
        let ready = await check.value
        state.withLock { state in
            // Only the check that ended: a newer one may be running already.
            if state.running == check {
                state.last = ready ? (ContinuousClock.now, ready) : nil
                state.running = nil
            }
        }
        return ready
    }
}

/// Refreshes the queue gauges of `/metrics` (deliveries by state, the oldest due delivery's age)
/// every `interval`: one reader, whatever the scrape rate. One `Service` in the ServiceGroup.
public struct QueueGauges: Service, CustomStringConvertible {
    let store: any OperatorStore
    let metrics: PatchbayMetrics
    let interval: Duration
    let logger: Logger
    let clock: @Sendable () -> Date

    public init(
        store: any OperatorStore, metrics: PatchbayMetrics, interval: Duration = .seconds(5), logger: Logger,
        clock: @escaping @Sendable () -> Date = Date.init
    ) {
        self.store = store
        self.metrics = metrics
        self.interval = interval
        self.logger = logger
        self.clock = clock
    }

    public var description: String { "QueueGauges(every: \(interval))" }

    public func run() async throws {
        var failing = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                metrics.queue(counts: try await store.counts(), oldestDueAge: try await store.oldestDueAge(now: clock()))
                failing = false
            } catch {
                if !failing { logger.warning("could not read the queue gauges; will try again", metadata: ["error": "\(error)"]) }
                failing = true
            }
            await cancelWhenGracefulShutdown { try? await Task.sleep(for: interval) }
        }
    }
}
