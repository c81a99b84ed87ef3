import Foundation
import Hummingbird
import Logging
import PatchbayCore
import PatchbayTargets
import ServiceLifecycle

/// Builds the HTTP application around an intake. Kept apart from `main` so tests can drive the
/// routes with HummingbirdTesting.
public func buildApplication(
    configuration: PatchbayConfiguration,
    store: any DeliveryStore,
    wake: WakeSignal,
    logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let router = buildRouter(configuration: configuration, store: store, wake: wake)
    return Application(
        router: router,
        configuration: .init(
            address: .hostname(configuration.server.host, port: configuration.server.port),
            serverName: "Patchbay"
        ),
        onServerRunning: { channel in
            await onServerRunning(channel.localAddress?.port ?? configuration.server.port)
        },
        logger: logger
    )
}

public func buildRouter(configuration: PatchbayConfiguration, store: any DeliveryStore, wake: WakeSignal) -> Router<BasicRequestContext> {
    let router = Router()
    let intake = EventIntake(store: store, routes: configuration.routes, targets: configuration.targets, wake: wake)
    HealthRoutes().register(on: router)
    EventRoutes(intake: intake, settings: configuration.server).register(on: router)
    return router
}
