import Foundation
import Hummingbird
import PatchbayCore

/// `GET /healthz`: the process answers. `GET /readyz`: it should get traffic — intake is open
/// and the store accepts writes. `GET /metrics`: Prometheus text.
struct HealthRoutes {
    let store: any DeliveryStore
    let gate: IntakeGate
    let metrics: PatchbayMetrics
    /// Renders the metrics registry; nil when no backend was bootstrapped.
    let exposition: (@Sendable () -> String)?

    func register(on router: Router<BasicRequestContext>) {
        router.get("/healthz") { _, _ in
            JSONResponse.make(status: .ok, body: ["status": "ok"])
        }
        router.get("/readyz") { _, _ in
            if gate.isDraining {
                return JSONResponse.make(status: .serviceUnavailable, body: ["status": "draining"])
            }
            do {
                try await store.checkWritable()
                return JSONResponse.make(status: .ok, body: ["status": "ready"])
            } catch {
                return JSONResponse.make(status: .serviceUnavailable, body: ["status": "store not writable"])
            }
        }
        router.get("/metrics") { _, _ in
            guard let exposition else {
                return Response(status: .notFound)
            }
            // Queue gauges are read at scrape time, so they are exact whenever they are looked at.
            if let counts = try? await store.counts(), let age = try? await store.oldestDueAge(now: Date()) {
                metrics.queue(counts: counts, oldestDueAge: age)
            }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: exposition())))
        }
    }
}
