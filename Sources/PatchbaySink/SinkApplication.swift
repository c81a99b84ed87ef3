import Hummingbird
import Logging
import NIOCore

/// Keeps the connection at hand so a scripted answer can reset it.
public struct SinkRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// The sink as a Hummingbird application. `onRunning` receives the bound port (useful with port 0).
public func buildSinkApplication(
    sink: Sink, host: String, port: Int, logger: Logger,
    onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let responder = CallbackResponder<SinkRequestContext> { request, context in
        try await sink.respond(to: request, context: context)
    }
    return Application(
        responder: responder,
        configuration: .init(address: .hostname(host, port: port), serverName: "PatchbaySink"),
        onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
        logger: logger
    )
}
