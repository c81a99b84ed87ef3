import Foundation
import Logging
import PatchbayCore
import PatchbayPostgres
import PatchbaySQLite
import ServiceLifecycle

/// The queue `store:` names, opened one way for `serve` and every CLI command: SQLite (one server
/// per file) or PostgreSQL (several instances sharing one database).
public struct OpenedStore: Sendable {
    public enum Backend: Sendable {
        case sqlite(SQLiteStore)
        case postgres(PostgresStore)
    }

    public let backend: Backend
    /// Where the queue is, for logs and messages (never a password).
    public let location: String

    /// Every role; `serve` and the CLI hand each part the role it uses.
    public var store: any PatchbayStore {
        switch backend {
        case .sqlite(let store): store
        case .postgres(let store): store
        }
    }

    public struct OpenError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Opens the store; for PostgreSQL nothing connects until `run` runs.
    public static func open(_ configuration: PatchbayConfiguration, logger: Logger) throws -> OpenedStore {
        if let postgres = configuration.postgres {
            do {
                return OpenedStore(backend: .postgres(try PostgresStore(settings: postgres, logger: logger)), location: postgres.redactedURL)
            } catch {
                throw OpenError(description: "cannot use the PostgreSQL store \(postgres.redactedURL): \(error)")
            }
        }
        let store = try SQLiteStore(settings: configuration.store, logger: logger)
        return OpenedStore(backend: .sqlite(store), location: "sqlite:\(configuration.store.sqlitePath)")
    }

    /// Runs `body` with the store usable: for PostgreSQL the connection pool runs meanwhile and
    /// the schema is migrated first (under an advisory lock, so instances starting together apply
    /// each migration once). SQLite migrates when it opens.
    public func run<T>(_ body: (OpenedStore) async throws -> T) async throws -> T {
        switch backend {
        case .sqlite:
            return try await body(self)
        case .postgres(let store):
            return try await store.withRunningClient {
                do {
                    try await store.migrate()
                } catch {
                    throw OpenError(description: "cannot prepare the PostgreSQL store \(location): \(error)")
                }
                return try await body(self)
            }
        }
    }

    /// For one-shot commands: PostgreSQL's pool starts running in the background (until the
    /// process exits) and the schema is migrated. Long-running callers use `run` instead.
    public func start() async throws {
        guard case .postgres(let store) = backend else { return }
        await store.startClientInBackground()
        do {
            try await store.migrate()
        } catch {
            throw OpenError(description: "cannot prepare the PostgreSQL store \(location): \(error)")
        }
    }

    /// `serve` only: takes this process's place. SQLite: the file's server lock, then every lease
    /// left by a process that died is released (one server per file). PostgreSQL: joins the
    /// cluster's heartbeat table; a dead instance's leases are released by the survivors.
    public func prepareForServing(logger: Logger) async throws {
        switch backend {
        case .sqlite(let store):
            try store.lockForServing()
            let released = try await store.releaseLeasesOfPreviousProcess(at: Date())
            if released > 0 {
                logger.notice(
                    "released deliveries leased by a previous process that stopped without finishing them",
                    metadata: ["deliveries": "\(released)"])
            }
        case .postgres(let store):
            try await store.joinCluster(version: PatchbayVersion.current)
            logger.notice("joined the cluster", metadata: ["instance": "\(store.instanceID)"])
        }
    }

    /// The clock every part of `serve` reads: this process's for SQLite (one server per file);
    /// for PostgreSQL this process's moved onto the database's (`PostgresStore.clusterNow`), so
    /// instances whose clocks disagree still agree on due times, leases and notices.
    public var clock: @Sendable () -> Date {
        switch backend {
        case .sqlite: Date.init
        case .postgres(let store): { store.clusterNow() }
        }
    }

    /// The vendor budgets the dispatcher paces by: in memory for SQLite; shared by the cluster for
    /// PostgreSQL, so a rate or a `Retry-After` holds for every instance.
    public func pacingBudget() -> any PacingBudget {
        switch backend {
        case .sqlite: Pacer()
        case .postgres(let store): SharedPacingBudget(store: store, local: Pacer())
        }
    }

    /// Services `serve` runs besides the dispatcher: for PostgreSQL the heartbeat, the release of
    /// silent instances' leases and the LISTEN wake-ups.
    public func clusterServices(wake: WakeSignal, logger: Logger) -> [any Service] {
        switch backend {
        case .sqlite: []
        case .postgres(let store): [ClusterMembership(store: store, onWork: { wake.notify() }, logger: logger)]
        }
    }
}
