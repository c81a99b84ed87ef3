import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// Keeps this instance alive in the cluster's eyes and watches the others: a heartbeat every
/// second, and the leases of instances silent for `silence` released at once, so a `kill -9`d
/// instance holds its maintenances for seconds, not for the whole lease. Also turns `NOTIFY`s into
/// dispatcher wake-ups. Stopped last (after the dispatcher), it then leaves the cluster.
///
/// A stall of the database is not an instance's death: the heartbeat runs on a connection of its
/// own (a busy pool never delays it), silence is judged on the database's clock, counted from the
/// database's start at the latest, and an instance that could not beat itself judges nobody. The
/// silence threshold is well beyond the pool's acquire timeout.
public struct ClusterMembership: Service, CustomStringConvertible {
    let store: PostgresStore
    /// Called when another instance announces work (`NOTIFY`) or leases were released.
    let onWork: @Sendable () -> Void
    let logger: Logger
    let beat: Duration
    let silence: Duration

    public init(store: PostgresStore, onWork: @escaping @Sendable () -> Void, logger: Logger, beat: Duration = .seconds(1), silence: Duration? = nil) {
        self.store = store
        self.onWork = onWork
        self.logger = logger
        self.beat = beat
        self.silence = silence ?? Self.silence(acquireTimeout: store.settings.acquireTimeout)
    }

    /// Ten seconds, and never less than twice the pool's acquire timeout: a heartbeat that waited
    /// out one acquire must not look like death.
    public static func silence(acquireTimeout: Duration) -> Duration {
        max(.seconds(10), acquireTimeout * 2)
    }

    public var description: String { "ClusterMembership(instance: \(store.instanceID))" }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [onWork, store] in await store.listenForWork(onWork) }
            var connection: PostgresConnection?
            var failing = false
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                do {
                    let own: PostgresConnection
                    if let connection, !connection.isClosed {
                        own = connection
                    } else {
                        own = try await store.connectOwnConnection()
                        connection = own
                    }
                    let ownSilence = try await store.heartbeat(on: own)
                    if failing || ownSilence * 2 > silence {
                        logger.notice("heartbeat back after a silence; judging no other instance on this beat",
                                      metadata: ["silent_ms": "\(Int(ownSilence.milliseconds))"])
                    }
                    failing = false
                    let released = try await store.releaseLeasesOfSilentInstances(silence: silence, ownSilence: ownSilence,
                                                                                  now: store.clusterNow(), on: own)
                    if released > 0 {
                        logger.notice("released deliveries leased by an instance that stopped answering", metadata: ["deliveries": "\(released)"])
                        onWork()
                    }
                } catch {
                    if !failing { logger.error("heartbeat failed; will try again", metadata: ["error": "\(error)"]) }
                    failing = true
                    if let stale = connection {
                        connection = nil
                        try? await stale.close()
                    }
                }
                await cancelWhenGracefulShutdown { try? await Task.sleep(for: beat) }
            }
            if let connection { try? await connection.close() }
            group.cancelAll()
        }
        do {
            try await store.leaveCluster()
        } catch {
            logger.warning("could not leave the cluster cleanly; the others will release this instance's leases", metadata: ["error": "\(error)"])
        }
    }
}
