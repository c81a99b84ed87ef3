import ArgumentParser
import Foundation
import PatchbayCore
import PatchbaySQLite
import PatchbayServer

struct Prune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete finished work older than store.retention (a running server does this every store.pruneInterval).",
        discussion: """
            Removes delivered, expired and superseded deliveries after 30 days and dead ones after 90 (with their \
            attempts), events and their idempotency keys once none of their deliveries is kept and \
            they are older than store.retention.events, maintenances whose window ended longer ago than \
            store.retention.maintenances once none of their deliveries is kept, and old unmapped relayed messages; \
            then checkpoints the WAL. Deletes in small batches, so it can run beside a live server.

              patchbay prune --dry-run --config patchbay.yaml
            """
    )

    @Flag(help: "Count what would be deleted; delete nothing.") var dryRun = false
    @Flag(help: "Print JSON instead of text.") var json = false
    @OptionGroup var config: ConfigOption

    func run() async throws {
        let configuration = try config.load()
        let store = try await openStore(configuration)
        let sqlite = store as? SQLiteStore
        let before = sqlite?.fileSizes()
        let progress = StoreProgressLine(label: "pruning", unit: "rows deleted")
        let report = try await {
            // Ends the progress line before anything else is printed, an error included.
            defer { progress.finish() }
            return try await store.prune(policy: configuration.store.retention, now: Date(), dryRun: dryRun, progress: dryRun ? nil : progress.report)
        }()
        let after = sqlite?.fileSizes()
        await recordAudit(
            AuditRecord(
                AuditActor.commandLine, action: "prune", outcome: .ok, at: Date(), source: AuditActor.host,
                detail: Pruner.detail(report, dryRun: dryRun)), in: store)
        if json {
            printLine(String(decoding: try JSONEncoder.patchbay().encode(report), as: UTF8.self))
            return
        }
        printLine(dryRun ? "Would delete:" : "Deleted:")
        printTable(
            header: ["WHAT", "ROWS"],
            rows: [
                ["deliveries", String(report.deliveries)], ["attempts", String(report.attempts)], ["events", String(report.events)],
                ["maintenances", String(report.maintenances)], ["unmapped relayed messages", String(report.unmapped)],
                ["audit records", String(report.audit)],
            ], indent: "  ")
        if let before, let after {
            printLine(
                "database \(before.database / 1024) KiB, WAL \(before.wal / 1024) KiB"
                    + (dryRun ? "" : " → database \(after.database / 1024) KiB, WAL \(after.wal / 1024) KiB (freed pages are reused)"))
        }
    }
}
