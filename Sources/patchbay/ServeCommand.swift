import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Metrics
import PatchbayCore
import PatchbayCurl
import PatchbaySQLite
import PatchbayServer
import PatchbaySink
import Prometheus
import ServiceLifecycle

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the HTTP API and the delivery dispatcher.",
        discussion: """
            Accepts events on POST /v1/events, commits them to the queue (store.sqlite, or \
            store.postgres when several instances share the work), and \
            delivers them to the routed targets. Sends each maintenance's reminders, "Patching Beginning" \
            and overrun notices when they fall due, and announces the occurrences of `schedules:` ahead of time. SIGTERM or SIGINT stops intake, lets sends in flight \
            finish, and exits; anything not yet delivered stays queued for the next start.

            With --sink, a local stand-in for the vendors runs in the same process, so the example \
            configuration works offline.
            """
    )

    @OptionGroup var config: ConfigOption
    @OptionGroup var logging: LoggingOptions

    @Option(help: ArgumentHelp("Listen on this host:port instead of server.listen (port 0 picks a free port).", valueName: "host:port"))
    var listen: String?

    @Option(help: ArgumentHelp("Also run the local sink on this host:port, printing what each vendor receives.", valueName: "host:port"))
    var sink: String?

    func validate() throws {
        if let listen, ServerSettings.parseListen(listen) == nil {
            throw ValidationError("--listen: expected host:port like 127.0.0.1:8080, got '\(listen)'")
        }
        if let sink, ServerSettings.parseListen(sink) == nil {
            throw ValidationError("--sink: expected host:port like 127.0.0.1:9090, got '\(sink)'")
        }
    }

    func run() async throws {
        var configuration = try config.load()
        let logger = logging.bootstrap()
        if let listen, let (host, port) = ServerSettings.parseListen(listen) {
            configuration.server.host = host
            configuration.server.port = port
        }
        if let problem = configuration.server.exampleTokenProblem() {
            printError(problem)
            throw ExitCode(1)
        }
        let opened: OpenedStore
        do {
            opened = try OpenedStore.open(configuration, logger: logger)
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        do {
            try await opened.run { opened in
                try await serve(configuration: configuration, store: opened, logger: logger)
            }
        } catch let error as OpenedStore.OpenError {
            printError("\(error)")
            throw ExitCode(1)
        } catch let error as SQLiteStore.OpenError {
            printError("\(error)")
            throw ExitCode(1)
        }
    }

    private func serve(configuration: PatchbayConfiguration, store opened: OpenedStore, logger: Logger) async throws {
        let store = opened.store
        try await opened.prepareForServing(logger: logger)
        // The only place Patchbay chooses a metrics backend.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let metrics = PatchbayMetrics()
        let redactor = configuration.redactor
        let transport = CurlTransport(redactor: redactor, logger: logger)
        var parts = ApplicationParts(
            store: store, gate: IntakeGate(drainDelay: configuration.server.drainDelay), metrics: metrics,
            exposition: { registry.emitToString() }, transport: transport)
        // One clock for every part: on PostgreSQL the cluster's (this process's clock moved onto
        // the database's), so an instance whose clock is off agrees with the others.
        let clock = opened.clock
        parts.clock = clock
        let dispatcher = Dispatcher(
            store: store, targets: configuration.targets, policies: configuration.policies, transport: transport,
            settings: configuration.delivery, redactor: redactor, wake: parts.wake, pacer: opened.pacingBudget(),
            metrics: metrics, logger: logger, routeTemplates: configuration.routeTemplates,
            routes: configuration.routes, clock: clock)
        let intake = EventIntake(configuration: configuration, store: store, wake: parts.wake, metrics: metrics, clock: clock)
        parts.intake = intake
        let scheduler = Scheduler(
            store: store, intake: intake, routes: configuration.routes, targets: configuration.targets,
            schedules: configuration.schedules, wake: parts.wake, logger: logger, clock: clock)
        let host = configuration.server.host
        let storePath = opened.location
        let app = buildApplication(configuration: configuration, parts: parts, logger: logger) { port in
            logger.notice(
                "patchbay listening on http://\(host):\(port)", metadata: ["store": "\(storePath)", "version": "\(PatchbayVersion.current)"])
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let sink, let (sinkHost, sinkPort) = ServerSettings.parseListen(sink) {
            let localSink = try PatchbaySink.Sink(printSummary: { printLine("sink: " + $0) })
            services.append(
                .init(
                    service: buildSinkApplication(sink: localSink, host: sinkHost, port: sinkPort, logger: logger) { port in
                        logger.notice("local sink listening on http://\(sinkHost):\(port)")
                    }))
        }
        // Started in this order, stopped in reverse: the gate closes intake (503), the HTTP server
        // stops, then the dispatcher lets sends in flight finish, then (PostgreSQL) the instance
        // leaves the cluster.
        for service in opened.clusterServices(wake: parts.wake, logger: logger) {
            services.append(.init(service: service))
        }
        services.append(.init(service: dispatcher))
        services.append(.init(service: scheduler))
        services.append(.init(service: QueueGauges(store: store, metrics: metrics, logger: logger, clock: clock)))
        services.append(
            .init(
                service: Pruner(
                    policy: configuration.store.retention, interval: configuration.store.pruneInterval, logger: logger,
                    clock: clock, audit: AuditTrail(store: store, metrics: metrics, logger: logger, clock: clock)
                ) {
                    try await store.prune(policy: $0, now: $1, dryRun: false)
                }))
        services.append(.init(service: app))
        services.append(.init(service: parts.gate))
        var groupConfiguration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = configuration.delivery.shutdownGrace + configuration.delivery.timeouts.total
        try await ServiceGroup(configuration: groupConfiguration).run()
        transport.shutdown()
    }
}
