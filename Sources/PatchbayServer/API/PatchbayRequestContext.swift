import Hummingbird
import Logging
import NIOCore

/// The request context of every route: Hummingbird's core context plus the connection's peer
/// address, which the console's sign-in pacing keys on (`ClientAddress`).
public struct PatchbayRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer of the connection (a proxy's address behind one).
    public let remoteAddress: SocketAddress?
    /// On the console's signed-in routes: the operator and the form (`ConsoleSessionMiddleware`).
    var console: ConsoleRequest?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
