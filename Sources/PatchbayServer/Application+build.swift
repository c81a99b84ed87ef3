import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import PatchbayCore
import PatchbayRelay
import PatchbayTargets
import ServiceLifecycle

/// What the HTTP application needs besides the configuration. Kept apart from `main` so tests can
/// drive the routes with HummingbirdTesting.
public struct ApplicationParts: Sendable {
    /// Every role of the store; each route group takes the one it uses.
    public var store: any PatchbayStore
    public var wake: WakeSignal
    public var gate: IntakeGate
    public var metrics: PatchbayMetrics
    /// Renders the metrics registry for `GET /metrics`; nil leaves the route answering 404.
    public var exposition: (@Sendable () -> String)?
    /// Fetches SNS certificates and confirms subscriptions; nil disables `sns` sources.
    public var transport: (any HTTPTransport)?
    /// The serve command's intake, shared with its scheduler; nil builds one from the configuration.
    public var intake: EventIntake?
    /// Paces `POST /v1/events` per token when `server.rateLimit` is set.
    public var intakeLimiter = Pacer()
    /// The clock intake, replays and the console read (`OpenedStore.clock`: the cluster's clock
    /// on PostgreSQL).
    public var clock: @Sendable () -> Date = Date.init
    /// `/readyz`'s shared write check.
    public var readiness: ReadinessProbe

    public init(
        store: any PatchbayStore, wake: WakeSignal = WakeSignal(), gate: IntakeGate = IntakeGate(drainDelay: .zero),
        metrics: PatchbayMetrics = PatchbayMetrics(), exposition: (@Sendable () -> String)? = nil,
        transport: (any HTTPTransport)? = nil
    ) {
        self.transport = transport
        self.store = store
        self.readiness = ReadinessProbe(store: store)
        self.wake = wake
        self.gate = gate
        self.metrics = metrics
        self.exposition = exposition
    }
}

public func buildApplication(
    configuration: PatchbayConfiguration,
    parts: ApplicationParts,
    logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let server = configuration.server
    // Slowloris and header floods: every request's head and body must arrive within
    // server.readTimeout (RequestReadDeadline), idle connections are closed, headers are bounded,
    // and so is the number of connections.
    let readTimeout = TimeAmount.milliseconds(Int64(server.readTimeout.milliseconds))
    // When every slot is taken, connections stalled mid-request are closed to make room.
    let shedder = StalledReaderShedder(capacity: server.maxConnections, logger: logger)
    let http1 = HTTP1Channel.Configuration(
        additionalChannelHandlers: [RequestReadDeadline(timeout: readTimeout, shedder: shedder)],
        idleTimeout: TimeAmount.milliseconds(Int64(server.idleTimeout.milliseconds)),
        httpDecoderConfiguration: .init(maxHeaderFieldSize: 16 * 1024, maxHeaderListSize: 64 * 1024, maxHeaderFieldCount: 200)
    )
    return Application(
        router: buildRouter(configuration: configuration, parts: parts),
        server: .http1(configuration: http1),
        configuration: .init(
            address: .hostname(server.host, port: server.port),
            serverName: "Patchbay",
            availableConnectionsDelegate: shedder.connectionLimit
        ),
        onServerRunning: { channel in
            await onServerRunning(channel.localAddress?.port ?? configuration.server.port)
        },
        logger: logger
    )
}

public func buildRouter(configuration: PatchbayConfiguration, parts: ApplicationParts) -> Router<PatchbayRequestContext> {
    let router = Router(context: PatchbayRequestContext.self)
    router.add(middleware: UnexpectedErrorMiddleware())
    router.add(middleware: DrainingMiddleware(gate: parts.gate, metrics: parts.metrics))
    let intake =
        parts.intake
        ?? EventIntake(
            configuration: configuration, store: parts.store, wake: parts.wake, metrics: parts.metrics,
            clock: parts.clock)
    HealthRoutes(readiness: parts.readiness, gate: parts.gate, exposition: parts.exposition).register(on: router)
    EventRoutes(intake: intake, settings: configuration.server, metrics: parts.metrics, limiter: parts.intakeLimiter).register(on: router)
    let audit = AuditTrail(store: parts.store, metrics: parts.metrics, logger: Logger(label: "patchbay.audit"), clock: parts.clock)
    DeliveryRoutes(store: parts.store, settings: configuration.server, wake: parts.wake, audit: audit, clock: parts.clock).register(on: router)
    MaintenanceRoutes(store: parts.store, settings: configuration.server).register(on: router)
    AuditRoutes(store: parts.store, settings: configuration.server, clock: parts.clock).register(on: router)
    if configuration.server.consoleEnabled {
        ConsoleRoutes(configuration: configuration, parts: parts, clock: parts.clock).register(on: router)
    }
    var verifiers: [String: SNSVerifier] = [:]
    if let transport = parts.transport {
        for (name, source) in configuration.sources {
            if case .sns(_, let pattern) = source.kind,
                let verifier = try? SNSVerifier(
                    certificateURLPattern: pattern, transport: transport,
                    destinations: source.allowPrivateNetworks ? .any : .publicOnly)
            {
                verifiers[name] = verifier
            }
        }
    }
    RelayRoutes(
        sources: configuration.sources, snsVerifiers: verifiers, awsMapper: AWSEventMapper(mapping: configuration.awsMapping),
        intake: intake, store: parts.store, maxBodyBytes: configuration.server.maxRelayBytes,
        metrics: parts.metrics, readTimeout: configuration.server.readTimeout
    ).register(on: router)
    return router
}
