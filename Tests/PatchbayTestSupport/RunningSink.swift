import Foundation
import Hummingbird
import Logging
import PatchbaySink
import ServiceLifecycle

/// The vendor sink running in the test process on a free loopback port.
public final class RunningSink: Sendable {
    public let sink: Sink
    public let port: Int
    private let task: Task<Void, any Error>
    private let group: ServiceGroup

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    private init(sink: Sink, port: Int, task: Task<Void, any Error>, group: ServiceGroup) {
        self.sink = sink
        self.port = port
        self.task = task
        self.group = group
    }

    public static func start(port requestedPort: Int = 0) async throws -> RunningSink {
        let sink = try Sink()
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "sink")
        logger.logLevel = .warning
        let app = buildSinkApplication(sink: sink, host: "127.0.0.1", port: requestedPort, logger: logger) { port in
            continuation.yield(port)
            continuation.finish()
        }
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CancellationError() }
        return RunningSink(sink: sink, port: port, task: task, group: group)
    }

    /// A graceful shutdown, not a cancellation: cancelling a NIO server while it still holds an
    /// accepted connection it has not served traps in NIOAsyncWriter's deinit
    /// (apple/swift-nio#3481). Cancelled only if it has not stopped within 5 s.
    public func stop() async {
        await group.triggerGracefulShutdown()
        let task = task
        let deadline = Task {
            try await Task.sleep(for: .seconds(5))
            task.cancel()
        }
        _ = try? await task.value
        deadline.cancel()
    }
}

/// A loopback port nothing listens on (bound, then closed).
public func unusedLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}
