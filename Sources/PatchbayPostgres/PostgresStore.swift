import Foundation
import Logging
import NIOSSL
import PatchbayCore
import PostgresNIO
import Synchronization

/// The queue on PostgreSQL, for several Patchbay instances sharing one database. Same contract as
/// the SQLite store (`DeliveryStore`, `MaintenanceStore`), plus what a cluster needs: claims with
/// `FOR UPDATE SKIP LOCKED`, lanes ordered by commit, heartbeats that release a dead instance's
/// leases within seconds, one pacing budget per vendor key for the whole cluster, and
/// `LISTEN/NOTIFY` wake-ups (the poll stays as the fallback).
///
/// The client must be running (`run()`, or `PostgresStore.withRunningClient`) before any call.
public final class PostgresStore: Sendable {
    public let client: PostgresClient
    public let settings: PostgresSettings
    let logger: Logger
    /// This process, as named in `instances` and `deliveries.leased_by`.
    public let instanceID: String
    /// Concurrent accepts share transactions (see PostgresGroupCommitter).
    let intakeCommitter: PostgresGroupCommitter
    /// When this process last sent a wake-up notification (see `announceWork`).
    let lastNotify = Mutex<ContinuousClock.Instant?>(nil)
    /// How far the database's clock is ahead of this process's, in seconds, as last measured
    /// (`measureClock`): `clusterNow` is this process's clock moved onto the database's.
    let clockOffset = Mutex<(seconds: Double, measured: Bool)>((0, false))
    /// This process's clock; tests give one that is off.
    let localClock: @Sendable () -> Date

    public init(settings: PostgresSettings, logger: Logger, localClock: @escaping @Sendable () -> Date = Date.init) throws {
        self.localClock = localClock
        self.settings = settings
        self.logger = logger
        instanceID = Identifier.make("inst")
        // Half the pool for intake batches leaves the rest to claims, results and reads.
        // Measured (BENCHMARKS.md): each write in a batch costs ~10 round trips, so batches of 16
        // on half the pool beat both one transaction per event and large batches.
        intakeCommitter = PostgresGroupCommitter(maxBatch: 16, maxConcurrentBatches: max(1, settings.poolSize / 2))
        var configuration = PostgresClient.Configuration(
            host: settings.host, port: settings.port, username: settings.username, password: settings.password?.reveal(),
            database: settings.database, tls: try settings.tls()
        )
        configuration.options.maximumConnections = settings.poolSize
        configuration.options.connectTimeout = .seconds(5)
        // A statement that runs longer than this is cancelled by the server (and its transaction
        // rolled back), so a connection is never held by a stuck query.
        configuration.options.additionalStartupParameters = settings.startupParameters(statementTimeout: Int(settings.statementTimeout.milliseconds))
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
    }

    /// The one clock of the cluster: this process's clock moved by the offset to the database's
    /// last measured. Every time an instance writes or compares (due times, leases, retries,
    /// notices) comes from here, so an instance whose own clock is minutes off still agrees with
    /// the others. The claim and the notice firing also check the database's own clock.
    public func clusterNow() -> Date {
        localClock().addingTimeInterval(clockOffset.withLock { $0.seconds })
    }

    /// Reads the database's clock on `connection` and keeps the offset to this process's (the
    /// local time taken halfway through the round trip). A reading whose round trip took longer
    /// than `maxClockRoundTrip` (a stall, a busy server) is too uncertain and is dropped, once an
    /// offset is known.
    func measureClock(on connection: PostgresConnection) async throws {
        let before = localClock()
        let started = ContinuousClock.now
        guard let row = try await Self.rows("SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8", on: connection, logger: logger).first else {
            return
        }
        let roundTrip = ContinuousClock.now - started
        let after = localClock()
        let database = try row.decode(Double.self)
        let local = (before.timeIntervalSince1970 + after.timeIntervalSince1970) / 2
        clockOffset.withLock { offset in
            guard offset.measured == false || roundTrip <= Self.maxClockRoundTrip else { return }
            offset = (database - local, true)
        }
    }

    static let maxClockRoundTrip: Duration = .milliseconds(250)

    /// A connection of its own, outside the pool, for the cluster heartbeat: a pool starved by
    /// intake or stalled reads never delays a heartbeat. Statements on it end within
    /// `statementTimeout` milliseconds (0: never, for index builds).
    public func connectOwnConnection(statementTimeout: Int = 10_000) async throws -> PostgresConnection {
        var configuration = PostgresConnection.Configuration(
            host: settings.host, port: settings.port, username: settings.username,
            password: settings.password?.reveal(), database: settings.database,
            tls: try settings.connectionTLS())
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.additionalStartupParameters = settings.startupParameters(statementTimeout: statementTimeout)
        do {
            return try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
        } catch {
            throw Self.storeError(error)
        }
    }

    /// Runs the pool for as long as `body` runs (`serve`, tests).
    public func withRunningClient<T>(_ body: () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.client.run() }
            defer { group.cancelAll() }
            await Self.letTheClientStart()
            return try await body()
        }
    }

    /// Runs the pool until the process exits: for one-shot CLI commands.
    public func startClientInBackground() async {
        Task { await client.run() }
        await Self.letTheClientStart()
    }

    /// Gives `run()` its turn first: a lease before it starts works, but logs a warning.
    private static func letTheClientStart() async {
        try? await Task.sleep(for: .milliseconds(20))
    }

    // MARK: Running statements

    /// Runs one statement and collects its rows. Rows are always drained: postgres-nio reports an
    /// error raised after the row description (a unique violation in `UPDATE … RETURNING`, say)
    /// only through the row sequence, and an undrained one would let a transaction commit nothing.
    ///
    /// A statement is never sent on a connection already closed (the server restarted, failed
    /// over or ended the backend): postgres-nio 1.33 writes it to the dead channel and its answer
    /// never comes, so the caller (an intake request, a send's record) would wait for ever.
    @discardableResult
    static func rows(_ query: PostgresQuery, on connection: PostgresConnection, logger: Logger) async throws -> [PostgresRow] {
        guard !connection.isClosed else { throw StoreError.transient("the connection to PostgreSQL was closed") }
        var rows: [PostgresRow] = []
        for try await row in try await connection.query(query, logger: logger) { rows.append(row) }
        return rows
    }

    /// One read on a pooled connection, errors mapped to `StoreError`.
    func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await withLeasedConnection(body)
        } catch {
            throw Self.storeError(error)
        }
    }

    /// One statement that writes, outside BEGIN/COMMIT: a single statement is a transaction of its
    /// own, and the two extra round trips were a third of a claim's cost. A serialization failure
    /// or a deadlock runs it again (a few times), as `transaction` does.
    func statement<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await withLeasedConnection(body)
            } catch {
                if attempt < 5, Self.isRetryable(error) {
                    try? await Task.sleep(for: .milliseconds(Int64(5 * attempt) + Int64.random(in: 0...10)))
                    continue
                }
                throw Self.storeError(error)
            }
        }
    }

    /// One transaction. A serialization failure or a deadlock rolls back and runs the whole body
    /// again (a few times); every other error rolls back and is thrown as `StoreError`.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        var attempt = 0
        let logger = logger
        while true {
            attempt += 1
            do {
                return try await withLeasedConnection { connection in
                    try await Self.rows("BEGIN", on: connection, logger: logger)
                    do {
                        let value = try await body(connection)
                        try await Self.rows("COMMIT", on: connection, logger: logger)
                        return value
                    } catch {
                        _ = try? await Self.rows("ROLLBACK", on: connection, logger: logger)
                        throw error
                    }
                }
            } catch {
                let mapped = Self.storeError(error)
                if attempt < 5, Self.isRetryable(error) {
                    try? await Task.sleep(for: .milliseconds(Int64(5 * attempt) + Int64.random(in: 0...10)))
                    continue
                }
                throw mapped
            }
        }
    }

    /// Leases a pooled connection for `body`, waiting at most `settings.acquireTimeout` for one.
    /// postgres-nio's pool has no such deadline (a request waits until the server is back, or
    /// about a minute until its circuit breaker trips): without it an unreachable database would
    /// hold every intake request, instead of answering 503 at once. Only the wait is cut short;
    /// once the connection is ours the body runs to its end (the server's statement_timeout
    /// bounds it), so a connection never goes back to the pool mid-transaction.
    private func withLeasedConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        // 0: waiting for a connection; 1: leased; 2: given up.
        let lease = LeaseState()
        let client = client
        let limit = settings.acquireTimeout
        return try await withThrowingTaskGroup(of: LeaseStep<T>.self) { group in
            group.addTask {
                try await client.withConnection { connection in
                    guard lease.value.compareExchange(expected: 0, desired: 1, ordering: .sequentiallyConsistent).exchanged else {
                        throw StoreError.transient("no PostgreSQL connection within \(limit)")
                    }
                    return .done(try await body(connection))
                }
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                guard lease.value.compareExchange(expected: 0, desired: 2, ordering: .sequentiallyConsistent).exchanged else { return .leasedInTime }
                throw StoreError.transient("no PostgreSQL connection within \(limit) (is the server up and reachable?)")
            }
            defer { group.cancelAll() }
            while let step = try await group.next() {
                if case .done(let value) = step { return value }
            }
            throw StoreError.transient("the PostgreSQL request ended without an answer")
        }
    }

    static func sqlState(_ error: any Error) -> String? {
        (error as? PSQLError)?.serverInfo?[.sqlState]
    }

    /// The server answered and refused the statement (an SQLSTATE other than a lost connection
    /// or a shutting-down server): something about this write, or a lock it waited for, not the
    /// database being away.
    static func isRefusalOfOneWrite(_ error: any Error) -> Bool {
        guard let state = sqlState(error) else { return false }
        return !state.hasPrefix("08") && !["57P01", "57P02", "57P03"].contains(state)
    }

    /// Serialization failure or deadlock: the transaction did nothing and may simply run again.
    static func isRetryable(_ error: any Error) -> Bool {
        guard let state = sqlState(error) else { return false }
        return state == PostgresError.Code.serializationFailure.raw || state == PostgresError.Code.deadlockDetected.raw
    }

    /// Transient: the server could not be reached or asked us to retry; permanent otherwise. The
    /// message never carries the password (postgres-nio's errors do not hold the configuration).
    static func storeError(_ error: any Error) -> StoreError {
        if let error = error as? StoreError { return error }
        if let error = error as? PSQLError {
            if let state = error.serverInfo?[.sqlState] {
                let message = error.serverInfo?[.message] ?? "SQLSTATE \(state)"
                // 08: connection exceptions; 40: transaction rollback; 53: insufficient resources;
                // 57P01-57P03: the server is shutting down or starting.
                let transientClasses = ["08", "40", "53"]
                if transientClasses.contains(String(state.prefix(2))) || ["57P01", "57P02", "57P03", "55P03", "57014"].contains(state) {
                    return .transient("\(message) (SQLSTATE \(state))")
                }
                return .permanent("\(message) (SQLSTATE \(state))")
            }
            switch error.code {
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed, .queryCancelled:
                return .transient("the connection to PostgreSQL failed (\(error.code))")
            default:
                return .permanent("PostgreSQL client error (\(error.code))")
            }
        }
        if error is PostgresTransactionError, let inner = (error as? PostgresTransactionError)?.closureError {
            return storeError(inner)
        }
        if String(describing: type(of: error)).contains("ConnectionPoolError") || error is CancellationError {
            return .transient("no connection to PostgreSQL could be had (\(error))")
        }
        return .permanent(String(describing: error))
    }
}

/// 0: waiting for a connection; 1: leased; 2: given up.
final class LeaseState: Sendable {
    let value = Atomic<Int>(0)
}

/// What each racer of `withLeasedConnection` ends with.
enum LeaseStep<T: Sendable>: Sendable {
    case done(T)
    case leasedInTime
}

extension PostgresRandomAccessRow {
    /// The column decoded, or a permanent store error naming it.
    func value<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        do {
            return try self[column].decode(T.self)
        } catch {
            throw StoreError.permanent("cannot read column '\(column)' as \(T.self)")
        }
    }
}

extension PostgresRow {
    var columns: PostgresRandomAccessRow { makeRandomAccess() }
}
