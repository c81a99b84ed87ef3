import Foundation
import HummingbirdCore
import Logging
import NIOCore
import Synchronization

/// Frees connection slots held by stalled clients when the server is full. A client trickling a
/// header or a body a byte every few seconds holds its slot until `server.readTimeout`; forty of
/// them filled `server.maxConnections` and `/healthz` and intake waited in the listen backlog for
/// the whole deadline (review F1). While every slot is taken, a connection that is reading a
/// request (or waiting for its next one) and has sent nothing for `stall` is closed, a few times
/// a second (`stall` is half a second), and so is one whose request was already answered while its body still trickles in
/// (a 413, a 401: nothing more is owed to it), so a live client always gets a slot within a
/// second. Slow but steady senders, and every connection while the server has room, are left alone.
public final class StalledReaderShedder: Sendable {
    struct Reader {
        let channel: any Channel
        var lastProgress: NIODeadline
        /// Its request was answered before the request ended.
        var answered = false
    }

    private struct State {
        var open = 0
        var readers: [ObjectIdentifier: Reader] = [:]
        var sweeping = false
    }

    private let state = Mutex(State())
    let capacity: Int
    let stall: TimeAmount
    let logger: Logger

    public init(capacity: Int, stall: TimeAmount = .milliseconds(500), logger: Logger) {
        self.capacity = capacity
        self.stall = stall
        self.logger = logger
    }

    /// The connection limit Hummingbird applies, counting for the shedder as well.
    public var connectionLimit: ConnectionLimit { ConnectionLimit(shedder: self) }

    func opened() {
        let startSweeping = state.withLock { state -> Bool in
            state.open += 1
            guard state.open >= capacity, !state.sweeping else { return false }
            state.sweeping = true
            return true
        }
        if startSweeping { Task { await sweepWhileFull() } }
    }

    func closed() { state.withLock { $0.open -= 1 } }

    var isAcceptingNewConnections: Bool { state.withLock { $0.open < capacity } }

    /// The connection is reading a request (or waiting for its next one) from now on.
    func reading(_ id: ObjectIdentifier, channel: any Channel) {
        state.withLock { $0.readers[id] = Reader(channel: channel, lastProgress: .now()) }
    }

    /// Bytes of the request arrived.
    func progressed(_ id: ObjectIdentifier) {
        state.withLock { $0.readers[id]?.lastProgress = .now() }
    }

    /// The route answered before the request ended (its body still arriving).
    func answeredEarly(_ id: ObjectIdentifier) {
        state.withLock { $0.readers[id]?.answered = true }
    }

    /// The request is read whole (the route answers it), or the connection is gone.
    func doneReading(_ id: ObjectIdentifier) {
        _ = state.withLock { $0.readers.removeValue(forKey: id) }
    }

    private func sweepWhileFull() async {
        while true {
            let now = NIODeadline.now()
            let stalled = state.withLock { state -> [any Channel]? in
                guard state.open >= capacity else {
                    state.sweeping = false
                    return nil
                }
                let stalled = state.readers.filter { $0.value.answered || now - $0.value.lastProgress > stall }
                for id in stalled.keys { state.readers.removeValue(forKey: id) }
                return stalled.values.map(\.channel)
            }
            guard let stalled else { return }
            if !stalled.isEmpty {
                logger.notice(
                    "every connection slot is taken: closed connections that stalled mid-request",
                    metadata: ["closed": "\(stalled.count)", "max_connections": "\(capacity)"])
                for channel in stalled { channel.close(promise: nil) }
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Hummingbird's `AvailableConnectionsDelegate`: stop accepting at the capacity, and keep
    /// the shedder's count.
    public struct ConnectionLimit: AvailableConnectionsDelegate {
        let shedder: StalledReaderShedder

        public mutating func connectionOpened() { shedder.opened() }
        public mutating func connectionClosed() { shedder.closed() }
        public func isAcceptingNewConnections() -> Bool { shedder.isAcceptingNewConnections }
    }
}
