import Hummingbird

/// `GET /healthz`: the process is up and answering.
struct HealthRoutes {
    func register(on router: Router<BasicRequestContext>) {
        router.get("/healthz") { _, _ in
            JSONResponse.make(status: .ok, body: ["status": "ok"])
        }
    }
}
