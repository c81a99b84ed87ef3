import Foundation
import Logging
import PatchbayCore
import PostgresNIO

extension PostgresStore {
    /// Any 64-bit number shared by every Patchbay instance of a database; other programs' keys
    /// live in the same space, so it spells "patchbay" rather than being small.
    static let migrationLockKey: Int64 = 0x7061_7463_6862_6179

    public struct MigrationReport: Sendable {
        public var applied: [String]
        public var current: Int
    }

    /// Applies the migrations this binary knows and the database lacks. Instances starting
    /// together serialize on a transaction-level advisory lock, and each reads what is applied only
    /// after taking it, so every migration runs once. Fails on a database migrated by a newer binary.
    @discardableResult
    public func migrate() async throws -> MigrationReport {
        if let schema = settings.schema, schema.range(of: "^[a-z_][a-z0-9_]{0,62}$", options: .regularExpression) == nil {
            throw StoreError.permanent("the schema name must be a lower-case SQL identifier")
        }
        let report = try await transaction { [self] connection -> MigrationReport in
            // Statements may wait for the lock, never forever; none is cut short by the pool's
            // statement timeout (a migration on a large table takes what it takes).
            try await Self.rows("SET LOCAL lock_timeout = '60s'", on: connection, logger: logger)
            try await Self.rows("SET LOCAL statement_timeout = 0", on: connection, logger: logger)
            try await Self.rows("SELECT pg_advisory_xact_lock(\(Self.migrationLockKey))", on: connection, logger: logger)
            if let schema = settings.schema {
                // Validated as a plain identifier when the configuration was read.
                try await Self.rows("CREATE SCHEMA IF NOT EXISTS \(unescaped: schema)", on: connection, logger: logger)
                try await Self.rows("SET LOCAL search_path TO \(unescaped: schema)", on: connection, logger: logger)
            }
            try await Self.rows(
                """
                CREATE TABLE IF NOT EXISTS patchbay_migrations (
                    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now()
                )
                """, on: connection, logger: logger)
            let applied = Set(
                try await Self.rows("SELECT version FROM patchbay_migrations", on: connection, logger: logger)
                    .map { try $0.decode(Int.self) })
            let known = PostgresMigrations.all.map(\.version)
            if let newest = applied.max(), newest > (known.max() ?? 0) {
                throw StoreError.permanent(
                    "the database was migrated by a newer Patchbay (schema version \(newest); this binary knows up to \(known.max() ?? 0))")
            }
            var report = MigrationReport(applied: [], current: applied.max() ?? 0)
            for migration in PostgresMigrations.all where !applied.contains(migration.version) {
                for statement in migration.statements {
                    try await Self.rows(PostgresQuery(unsafeSQL: statement), on: connection, logger: logger)
                }
                try await Self.rows(
                    "INSERT INTO patchbay_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                    on: connection, logger: logger)
                report.applied.append("v\(migration.version): \(migration.name)")
                report.current = migration.version
            }
            return report
        }
        try await ensureConcurrentIndexes(PostgresMigrations.all.flatMap(\.concurrently))
        return report
    }

    /// Builds or drops the migrations' concurrent indexes that are not as they should be, on a
    /// connection of its own with no statement timeout, one instance at a time (a session
    /// advisory lock). Writes are not blocked meanwhile.
    func ensureConcurrentIndexes(_ changes: [PostgresMigrations.IndexChange]) async throws {
        guard !changes.isEmpty else { return }
        let connection = try await connectOwnConnection(statementTimeout: 0)
        do {
            // Tried, never waited for in a statement: a statement waiting for the lock would hold a
            // snapshot that the other instance's CREATE INDEX CONCURRENTLY waits out, and the two
            // would wait for each other.
            while try await Self.rows("SELECT pg_try_advisory_lock(\(Self.migrationLockKey + 1))", on: connection, logger: logger)
                .first?.decode(Bool.self) != true
            {
                try await Task.sleep(for: .milliseconds(500))
            }
            for change in changes {
                switch change {
                case .create(let name, let definition):
                    let valid = try await Self.rows(
                        """
                        SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                        JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE c.relname = \(name) AND n.nspname = current_schema()
                        """, on: connection, logger: logger
                    ).first.map { try $0.decode(Bool.self) }
                    if valid == true { continue }
                    if valid == false {
                        logger.notice("dropping an index a build left unfinished, to build it again", metadata: ["index": "\(name)"])
                        try await Self.rows(PostgresQuery(unsafeSQL: "DROP INDEX CONCURRENTLY IF EXISTS \(name)"), on: connection, logger: logger)
                    }
                    logger.notice("building an index concurrently (writes go on meanwhile)", metadata: ["index": "\(name)"])
                    try await Self.rows(
                        PostgresQuery(unsafeSQL: "CREATE INDEX CONCURRENTLY IF NOT EXISTS \(name) \(definition)"),
                        on: connection, logger: logger)
                case .drop(let name):
                    try await Self.rows(PostgresQuery(unsafeSQL: "DROP INDEX CONCURRENTLY IF EXISTS \(name)"), on: connection, logger: logger)
                }
            }
            _ = try? await Self.rows("SELECT pg_advisory_unlock(\(Self.migrationLockKey + 1))", on: connection, logger: logger)
        } catch {
            try? await connection.close()
            throw Self.storeError(error)
        }
        try? await connection.close()
    }
}
