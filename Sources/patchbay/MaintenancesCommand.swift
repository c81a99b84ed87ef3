import ArgumentParser
import Foundation
import PatchbayCore
import PatchbayServer

struct Maintenances: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maintenances",
        abstract: "Inspect maintenances: their window, instances, planned notices, vendor objects and deliveries.",
        subcommands: [List.self, Show.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List maintenances, latest window first.",
            discussion: "Example: patchbay maintenances list --since 7d --config patchbay.yaml"
        )

        @Option(help: ArgumentHelp("Only maintenances whose window ended within this long (or has not ended), e.g. 2h, 7d.", valueName: "duration"))
        var since: String?
        @Option(help: "At most this many (1 to 1000).") var limit: Int = 50
        @Flag(help: "Print JSON (the admin API's GET /v1/maintenances) instead of a table.") var json = false
        @OptionGroup var config: ConfigOption

        func run() async throws {
            let query: MaintenanceQuery
            do {
                query = try MaintenanceQuery(since: since, limit: String(limit), now: Date())
            } catch {
                throw ValidationError("--\(error)")
            }
            let store = try await openStore(try config.load())
            let rows = try await store.maintenances(since: query.since, limit: query.limit).map(MaintenanceView.init)
            if json {
                printLine(String(decoding: try JSONEncoder.patchbay().encode(rows), as: UTF8.self))
                return
            }
            if rows.isEmpty {
                printLine("No maintenances yet.")
                return
            }
            printTable(
                header: ["ID", "APP/ENVIRONMENT", "WINDOW", "STATUS", "INSTANCES", "NOTICES", "DELIVERIES"],
                rows: rows.map { row in
                    [
                        row.id, "\(row.app)/\(row.environment)", "\(row.window.start) – \(row.window.end)", row.status,
                        counts(row.instances), counts(row.notices), counts(row.deliveries),
                    ]
                })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one maintenance, by its mnt_ id or its window id.",
            discussion: "Example: patchbay maintenances show mw-0123 --config patchbay.yaml"
        )

        @Argument(help: "The maintenance's id (mnt_...) or window id.") var key: String
        @Flag(help: "Print JSON (the admin API's GET /v1/maintenances/{id}).") var json = false
        @OptionGroup var config: ConfigOption

        func run() async throws {
            let store = try await openStore(try config.load())
            guard let detail = try await store.maintenance(id: key) else {
                printError("no maintenance \(key) (use its mnt_ id from `patchbay maintenances list`, or its window id)")
                throw ExitCode(1)
            }
            let view = MaintenanceDetailView(detail)
            if json {
                printLine(String(decoding: try JSONEncoder.patchbay().encode(view), as: UTF8.self))
                return
            }
            let m = view.maintenance
            printLine(LogText.escape("Maintenance \(m.id): \(m.app) - \(m.environment), window \(m.windowKey) (\(m.status))"))
            printLine("  window: \(m.window.start) – \(m.window.end) (\(m.window.timezone))")
            printLine("          \(m.window.startUTC) – \(m.window.endUTC) (UTC)")
            printLine("\nInstances:")
            if view.instances.isEmpty { printLine("  none reported") }
            printTable(
                header: ["INSTANCE", "NAME", "STAGE", "PACKAGES", "UPDATED"],
                rows: view.instances.map {
                    [$0.id, $0.name ?? "", $0.stage, String($0.packages), Timestamp.rfc3339($0.updatedAt)]
                }, indent: "  ")
            printLine("\nPlanned notices:")
            if view.notices.isEmpty { printLine("  none") }
            printTable(
                header: ["NOTICE", "DUE", "DUE (UTC)", "STATE", "REASON"],
                rows: view.notices.map {
                    [$0.notice, $0.due, $0.dueUTC, $0.state, $0.reason ?? ""]
                }, indent: "  ")
            printLine("\nVendor objects:")
            if view.vendorObjects.isEmpty { printLine("  none") }
            printTable(
                header: ["TARGET", "OBJECT ID", "STATUS", "WINDOW (UTC)", "LINK"],
                rows: view.vendorObjects.map { object in
                    let window =
                        object.windowStart.map { start in "\(Timestamp.rfc3339(start)) – \(object.windowEnd.map(Timestamp.rfc3339) ?? "")" }
                        ?? object.windowEnd.map { "until \(Timestamp.rfc3339($0))" } ?? ""
                    return [object.target, object.objectID ?? "", object.status ?? "", window, object.link ?? ""]
                }, indent: "  ")
            printLine("\nDeliveries:")
            if view.deliveries.isEmpty { printLine("  none") }
            printTable(
                header: ["ID", "STATE", "TARGET", "EVENT", "ATTEMPTS", "LAST REASON"],
                rows: view.deliveries.map {
                    [$0.id, $0.state, $0.target, $0.eventType, String($0.attempts), $0.lastReason ?? ""]
                }, indent: "  ")
        }
    }
}

/// `completed 3, started 1`
private func counts(_ values: [String: Int]) -> String {
    values.isEmpty ? "-" : values.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
}
