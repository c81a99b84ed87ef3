import ArgumentParser
import Foundation
import Logging
import PatchbayCore
import PatchbayPostgres
import PatchbaySQLite
import PatchbayServer

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bring the store's schema up to date, or copy a SQLite queue into PostgreSQL.",
        discussion: """
            Without --from: applies the schema migrations the configured store lacks and says which. \
            Servers do this when they start; on PostgreSQL it takes an advisory lock, so it is safe \
            while instances run. A SQLite file is migrated as soon as it is opened.

            With --from sqlite:PATH: copies the whole SQLite queue at PATH (events with their \
            idempotency keys, deliveries in every state, attempts, maintenances, their instances, \
            vendor ids and planned notices, unmapped relayed messages) into the configured store, \
            which must be PostgreSQL. The copy is one transaction: all of it or nothing. It refuses, \
            writing nothing, when the PostgreSQL store already holds any event, so nothing is ever \
            mixed or copied twice. Deliveries in flight are copied as pending, due at once. Stop the \
            server using the SQLite file first: the copy refuses while its lock (PATH.lock) is held.

              patchbay migrate --config patchbay.yaml
              patchbay migrate --from sqlite:./patchbay.db --dry-run --config patchbay-postgres.yaml
              patchbay migrate --from sqlite:./patchbay.db --config patchbay-postgres.yaml
            """
    )

    @Option(
        help: ArgumentHelp(
            "Copy the SQLite queue at this path into the configured PostgreSQL store (empty of events).",
            valueName: "sqlite:path"))
    var from: String?
    @Flag(help: "With --from: count what would be copied; write nothing.") var dryRun = false
    @OptionGroup var config: ConfigOption

    /// The path of `--from sqlite:PATH`.
    var sourcePath: String? {
        guard let from, from.hasPrefix("sqlite:") else { return nil }
        return String(from.dropFirst("sqlite:".count))
    }

    func validate() throws {
        if let from, sourcePath?.isEmpty ?? true {
            throw ValidationError("--from: expected sqlite:PATH, got '\(from)'")
        }
        if dryRun, from == nil {
            throw ValidationError("--dry-run goes with --from")
        }
    }

    func run() async throws {
        let configuration = try config.load()
        let logger = Logger(label: "patchbay.cli")
        if let sourcePath {
            try await copy(from: sourcePath, configuration: configuration, logger: logger)
        } else {
            try await migrateSchema(configuration: configuration, logger: logger)
        }
    }

    // MARK: Schema

    func migrateSchema(configuration: PatchbayConfiguration, logger: Logger) async throws {
        let sqlitePath = configuration.store.sqlitePath
        let sqliteExisted = configuration.postgres == nil && FileManager.default.fileExists(atPath: sqlitePath)
        let sqliteBefore = sqliteExisted ? SQLiteStore.appliedMigrations(atPath: sqlitePath) : nil
        let opened: OpenedStore
        do {
            opened = try OpenedStore.open(configuration, logger: logger)
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        switch opened.backend {
        case .sqlite(let store):
            let applied: [String]
            do {
                applied = try await store.appliedMigrations()
            } catch {
                printError("cannot read the schema history of \(opened.location): \(error)")
                throw ExitCode(1)
            }
            let fresh = applied.filter { !(sqliteBefore ?? []).contains($0) }
            if !sqliteExisted {
                printLine("Created SQLite store \(store.path) (\(applied.count) migrations; latest: \(applied.last ?? "none")).")
            } else if sqliteBefore == nil || fresh.isEmpty {
                // Either nothing was applied, or the file could not be read before opening it.
                printLine("SQLite store \(store.path) is up to date (\(applied.count) migrations; latest: \(applied.last ?? "none")).")
            } else {
                printLine("Applied to SQLite store \(store.path):")
                for name in fresh { printLine("  \(name)") }
                printLine("Up to date (\(applied.count) migrations).")
            }
        case .postgres(let store):
            let report: PostgresStore.MigrationReport
            do {
                report = try await store.withRunningClient { try await store.migrate() }
            } catch {
                printError("cannot migrate the PostgreSQL store \(opened.location): \(error)")
                throw ExitCode(1)
            }
            if report.applied.isEmpty {
                printLine("PostgreSQL store \(opened.location) is up to date (schema version \(report.current)).")
            } else {
                printLine("Applied to PostgreSQL store \(opened.location):")
                for name in report.applied { printLine("  \(name)") }
                printLine("Up to date (schema version \(report.current)).")
            }
        }
    }

    // MARK: Copy

    func copy(from path: String, configuration: PatchbayConfiguration, logger: Logger) async throws {
        guard configuration.postgres != nil else {
            printError("--from copies into a PostgreSQL store, but \(config.path) configures SQLite (store.sqlite); set store.postgres")
            throw ExitCode(1)
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            printError("no SQLite store at \(path)")
            throw ExitCode(1)
        }
        // Held until the copy is done: no server uses the file while it is read, and none starts.
        // A dry run reads beside a running server (a consistent snapshot) and only warns.
        var lock: Int32?
        do {
            lock = try SQLiteStore.takeServerLock(path: path)
        } catch {
            if !dryRun {
                printError("\(error)")
                throw ExitCode(1)
            }
            printLine("note: \(error); the copy will refuse until it stops.")
        }
        defer { if let lock { SQLiteStore.releaseServerLock(lock) } }

        let transfer: StoreTransfer
        do {
            let source = try SQLiteStore(settings: StoreSettings(sqlitePath: path), logger: logger)
            transfer = try await source.exportForTransfer()
        } catch {
            printError("cannot read the SQLite store \(path): \(error)")
            throw ExitCode(1)
        }

        let opened: OpenedStore
        do {
            opened = try OpenedStore.open(configuration, logger: logger)
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        guard case .postgres(let store) = opened.backend else {
            printError("--from copies into a PostgreSQL store; \(opened.location) is not one")
            throw ExitCode(1)
        }

        if dryRun {
            printLine("Would copy from sqlite:\(path) into \(opened.location):")
            printCounts(transfer.counts)
            // Read only: a schema not created yet counts as empty.
            do {
                if try await store.withRunningClient({ try await store.holdsQueueRows() }) {
                    printLine("The PostgreSQL store already holds events: the copy would refuse and write nothing.")
                }
            } catch {
                printError("cannot read the PostgreSQL store \(opened.location): \(error)")
                throw ExitCode(1)
            }
            return
        }

        let counts: TransferCounts
        do {
            counts = try await store.withRunningClient { () async throws -> TransferCounts in
                do {
                    try await store.migrate()
                } catch {
                    throw CopyFailure(description: "cannot prepare the PostgreSQL store: \(error)")
                }
                let progress = StoreProgressLine(label: "copying", unit: "rows")
                defer { progress.finish() }
                return try await store.importTransfer(transfer, now: Date(), progress: progress.report)
            }
        } catch {
            printError("nothing was copied: \(error)")
            throw ExitCode(1)
        }
        printLine("Copied sqlite:\(path) into \(opened.location):")
        printCounts(counts)
        printLine(
            """
            Point every server at PostgreSQL now (store.postgres) and keep \(path) as a backup; \
            do not start a server on it again: what it accepted would not be in PostgreSQL.
            """)
    }

    struct CopyFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// Rows per table; never row contents.
    func printCounts(_ counts: TransferCounts) {
        printTable(header: ["TABLE", "ROWS"], rows: counts.tables.map { [$0.table, String($0.rows)] }, indent: "  ")
        if counts.requeued > 0 {
            printLine(
                "  \(counts.requeued) deliver\(counts.requeued == 1 ? "y" : "ies") in flight \(dryRun ? "would be" : "were") queued again as pending, due at once."
            )
        }
    }
}
