import Foundation
import Logging
import PostgresNIO
import PatchbayCore

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
        return try await transaction { [self] connection -> MigrationReport in
            // Statements may wait for the lock, never forever.
            try await Self.rows("SET LOCAL lock_timeout = '60s'", on: connection, logger: logger)
            try await Self.rows("SELECT pg_advisory_xact_lock(\(Self.migrationLockKey))", on: connection, logger: logger)
            if let schema = settings.schema {
                // Validated as a plain identifier when the configuration was read.
                try await Self.rows("CREATE SCHEMA IF NOT EXISTS \(unescaped: schema)", on: connection, logger: logger)
                try await Self.rows("SET LOCAL search_path TO \(unescaped: schema)", on: connection, logger: logger)
            }
            try await Self.rows("""
                CREATE TABLE IF NOT EXISTS patchbay_migrations (
                    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now()
                )
                """, on: connection, logger: logger)
            let applied = Set(try await Self.rows("SELECT version FROM patchbay_migrations", on: connection, logger: logger)
                .map { try $0.decode(Int.self) })
            let known = PostgresMigrations.all.map(\.version)
            if let newest = applied.max(), newest > (known.max() ?? 0) {
                throw StoreError.permanent("the database was migrated by a newer Patchbay (schema version \(newest); this binary knows up to \(known.max() ?? 0))")
            }
            var report = MigrationReport(applied: [], current: applied.max() ?? 0)
            for migration in PostgresMigrations.all where !applied.contains(migration.version) {
                for statement in migration.statements {
                    try await Self.rows(PostgresQuery(unsafeSQL: statement), on: connection, logger: logger)
                }
                try await Self.rows("INSERT INTO patchbay_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                                    on: connection, logger: logger)
                report.applied.append("v\(migration.version): \(migration.name)")
                report.current = migration.version
            }
            return report
        }
    }
}
