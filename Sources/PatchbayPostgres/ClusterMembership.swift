import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// Keeps this instance alive in the cluster's eyes and watches the others: a heartbeat every
/// second, and the leases of instances silent for `silence` released at once, so a `kill -9`d
/// instance holds its maintenances for seconds, not for the whole lease. Also turns `NOTIFY`s into
/// dispatcher wake-ups. Stopped last (after the dispatcher), it then leaves the cluster.
///
/// A stall of the database, a restart, a failover or a partition is not an instance's death
/// (review F7): the heartbeat runs on a connection of its own (a busy pool never delays it) and
/// never waits longer than half the silence for an answer; silence is judged on the database's
/// clock, counted from the database's start at the latest; and an instance judges the others only
/// once it has itself beaten without a gap for a whole `silence` (`ObserverContinuity`), by when
/// every live instance has found the database again too. The silence threshold is twice the
/// pool's acquire timeout at least.
public struct ClusterMembership: Service, CustomStringConvertible {
    let store: PostgresStore
    /// Called when another instance announces work (`NOTIFY`) or leases were released.
    let onWork: @Sendable () -> Void
    let logger: Logger
    let beat: Duration
    let silence: Duration

    public init(store: PostgresStore, onWork: @escaping @Sendable () -> Void, logger: Logger, beat: Duration = .seconds(1), silence: Duration? = nil)
    {
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
            var continuity = ObserverContinuity(beat: beat, silence: silence)
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
                    let ownSilence = try await Self.within(silence / 2, closing: own) { [store] in try await store.heartbeat(on: own) }
                    continuity.beat(ownSilence: ownSilence, at: .now)
                    if failing {
                        logger.notice(
                            "heartbeat back; judging no other instance until this one has beaten for the whole silence",
                            metadata: ["silent_ms": "\(Int(ownSilence.milliseconds))", "silence_s": "\(Int(silence.seconds))"])
                    }
                    failing = false
                    // Judging waits; the beat never does. (A `continue` here skipped the sleep
                    // below, and every start beat as fast as the database answered for a whole
                    // silence: ~440 heartbeats a second, measured with pg_stat_statements.)
                    if continuity.mayJudge(at: .now) {
                        let released = try await Self.within(silence / 2, closing: own) { [store, silence] in
                            try await store.releaseLeasesOfSilentInstances(silence: silence, now: store.clusterNow(), on: own)
                        }
                        if released > 0 {
                            logger.notice(
                                "released deliveries leased by an instance that stopped answering", metadata: ["deliveries": "\(released)"])
                            onWork()
                        }
                    }
                } catch {
                    if !failing { logger.error("heartbeat failed; will try again", metadata: ["error": "\(error)"]) }
                    failing = true
                    continuity.failed()
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

    struct TimedOut: Error, CustomStringConvertible {
        var description: String { "the database did not answer the heartbeat in time" }
    }

    /// `body`'s value, or `TimedOut` after `limit`. The connection is closed then: that fails the
    /// query stuck on it (a half-open connection after a failover answers nothing), which a task
    /// cancellation alone would not end.
    static func within<T: Sendable>(
        _ limit: Duration, closing connection: PostgresConnection,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: limit)
                try? await connection.close()
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else { throw TimedOut() }
            return value
        }
    }
}

/// Whether an instance may judge the others: only once its own heartbeats have gone through
/// without a gap for a whole `silence`. An instance back from a stall, a failover or a partition
/// of its own has no way to tell whether the others were cut off as long as it was; after a
/// whole silence of its own beats, the live ones have beaten as well.
public struct ObserverContinuity: Sendable {
    let beat: Duration
    let silence: Duration
    /// Since when beats have gone through without a gap; nil after a failed one.
    private(set) var beatingSince: ContinuousClock.Instant?

    public init(beat: Duration, silence: Duration) {
        self.beat = beat
        self.silence = silence
    }

    /// A beat went through; `ownSilence` is how long this instance had been silent before it,
    /// by the database's clock (`PostgresStore.heartbeat`).
    public mutating func beat(ownSilence: Duration, at now: ContinuousClock.Instant) {
        if beatingSince == nil || ownSilence > beat * 3 { beatingSince = now }
    }

    /// A beat failed.
    public mutating func failed() { beatingSince = nil }

    public func mayJudge(at now: ContinuousClock.Instant) -> Bool {
        beatingSince.map { now - $0 >= silence } ?? false
    }
}
