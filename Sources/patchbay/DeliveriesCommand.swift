import ArgumentParser
import Foundation
import Logging
import PatchbayCore
import PatchbaySQLite
import PatchbayServer
import PatchbayTargets

/// Opens the store named in the configuration, as the server does; SQLite's WAL and busy timeout,
/// or PostgreSQL's own concurrency, let this run beside live servers. A command is one short
/// process: PostgreSQL's connection pool runs in the background until the process exits.
func openStore(_ configuration: PatchbayConfiguration) async throws -> any PatchbayStore {
    do {
        let opened = try OpenedStore.open(configuration, logger: Logger(label: "patchbay.cli"))
        try await opened.start()
        return opened.store
    } catch {
        printError("\(error)")
        throw ExitCode(1)
    }
}

struct FilterOptions: ParsableArguments {
    @Option(help: "Only deliveries in this state: pending, in_flight, delivered, dead, expired, superseded.")
    var state: String?
    @Option(help: "Only deliveries to this target.")
    var target: String?
    @Option(help: "Only deliveries of events from this app.")
    var app: String?
    @Option(help: ArgumentHelp("Only deliveries updated within this long, e.g. 30m, 2h, 7d.", valueName: "duration"))
    var since: String?
    @Option(help: "At most this many, newest first.")
    var limit: Int = 100

    func filter() throws -> DeliveryFilter {
        do {
            return try DeliveryQuery.filter(state: state, target: target, app: app, since: since, limit: String(limit), now: Date())
        } catch {
            throw ValidationError("--\(error)")
        }
    }
}

struct Deliveries: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect deliveries in the queue (works whether or not the server runs).",
        subcommands: [List.self, Show.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List deliveries, newest first.",
            discussion: "Example: patchbay deliveries list --state dead --since 24h --config patchbay.yaml"
        )

        @OptionGroup var filter: FilterOptions
        @Flag(help: "Print JSON instead of a table.") var json = false
        @OptionGroup var config: ConfigOption

        func run() async throws {
            let store = try await openStore(try config.load())
            let rows = try await store.list(try filter.filter())
            if json {
                printLine(String(decoding: try JSONEncoder.patchbay().encode(rows), as: UTF8.self))
                return
            }
            if rows.isEmpty {
                printLine("No deliveries match.")
                return
            }
            let header = ["ID", "STATE", "TARGET", "EVENT", "APP/ENVIRONMENT", "SENDER", "ATTEMPTS", "UPDATED", "LAST REASON"]
            let table = rows.map { row in
                [
                    row.id, row.state, row.target, row.eventType, "\(row.app)/\(row.environment)", row.sender ?? "patchbay",
                    String(row.attempts), Timestamp.rfc3339(row.updatedAt), row.lastReason ?? "",
                ]
            }
            printTable(header: header, rows: table)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one delivery: its event, the request it renders to now, and every attempt (secrets redacted)."
        )

        @Argument(help: "Delivery id (dlv_...).") var id: String
        @OptionGroup var config: ConfigOption

        func run() async throws {
            let configuration = try config.load()
            let store = try await openStore(configuration)
            guard let detail = try await store.detail(id: id) else {
                printError("no delivery \(id)")
                throw ExitCode(1)
            }
            let redactor = configuration.redactor
            let summary = detail.summary
            printLine("Delivery \(summary.id): \(summary.state), \(summary.attempts) attempt(s)")
            printLine("  target:  \(summary.target) (\(summary.targetKind))")
            printLine("  event:   \(summary.eventID) \(summary.eventType) \(summary.app)/\(summary.environment)")
            printLine("  sent by: \(summary.sender ?? "patchbay (a notice it planned)")")
            printLine("  created: \(Timestamp.rfc3339(summary.createdAt))  updated: \(Timestamp.rfc3339(summary.updatedAt))")
            if let next = summary.nextAttemptAt { printLine("  next attempt: \(Timestamp.rfc3339(next))") }
            printLine("\nEvent:")
            printLine(prettyJSON(try JSONEncoder.patchbay().encode(detail.event)))
            printLine("\nRequest it renders to with the current configuration:")
            printLine(await RequestPreview.describe(detail, configuration: configuration, store: store))
            printLine("\nAttempts:")
            if detail.attempts.isEmpty { printLine("  none yet") }
            printTable(
                header: ["#", "STARTED", "STATUS", "LATENCY", "OUTCOME", "REASON", "RESPONSE"],
                rows: detail.attempts.map { attempt in
                    [
                        String(attempt.number), Timestamp.rfc3339(attempt.startedAt), attempt.statusCode.map(String.init) ?? "-",
                        String(format: "%.0fms", attempt.latencyMilliseconds), attempt.outcome, attempt.reason,
                        redactor.redact((attempt.responseExcerpt ?? "").replacingOccurrences(of: "\n", with: " ").prefix(80).description),
                    ]
                }, indent: "  ")
        }
    }
}

struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Queue deliveries again: by id, or every one matching --state and filters.",
        discussion: """
            A replayed delivery is rendered with the current configuration (fix a webhook URL, then \
            replay), gets a fresh retry budget, and keeps its history with the replay recorded in it. \
            Replaying a delivery that is already pending or in flight does nothing, so running a \
            replay twice never queues twice. A running server picks replays up within its poll interval.

              patchbay replay dlv_0123abcd --config patchbay.yaml
              patchbay replay --state dead --since 24h --target ops-slack --dry-run --config patchbay.yaml
            """
    )

    @Argument(help: "Delivery ids to replay.") var ids: [String] = []
    @OptionGroup var filter: FilterOptions
    @Flag(help: "Say what would be replayed; change nothing.") var dryRun = false
    @OptionGroup var config: ConfigOption

    func validate() throws {
        if ids.isEmpty, filter.state == nil {
            throw ValidationError("name delivery ids, or choose them with --state (for example --state dead)")
        }
        if !ids.isEmpty, filter.state != nil || filter.target != nil || filter.app != nil || filter.since != nil {
            throw ValidationError("give either delivery ids or filters (--state, --target, --app, --since), not both")
        }
    }

    func run() async throws {
        let store = try await openStore(try config.load())
        let chosen = ids.isEmpty ? try await store.list(try filter.filter()).map(\.id) : ids
        if chosen.isEmpty {
            printLine("No deliveries match; nothing to replay.")
            return
        }
        let progress = ProgressBar(total: chosen.count, label: dryRun ? "checking" : "replaying")
        var tally: [String: Int] = [:]
        for id in chosen {
            let result = try await store.replay(id: id, at: Date(), dryRun: dryRun)
            let word: String =
                switch result {
                case .replayed: "replayed"
                case .wouldReplay: "would replay"
                case .alreadyQueued(let state): "already queued (\(state)): left alone"
                case .notFound: "not found"
                }
            tally[word.components(separatedBy: " (").first!, default: 0] += 1
            if chosen.count <= 20 || !progress.isInteractive { printLine("\(id)  \(word)") }
            progress.advance()
        }
        progress.finish()
        await recordAudit(
            AuditRecord(
                AuditActor.commandLine, action: "replay", outcome: .ok, at: Date(), source: AuditActor.host,
                detail: AuditTrail.replayDetail(chosen, dryRun: dryRun, replayed: tally["replayed", default: 0])), in: store)
        printLine(
            (dryRun ? "Dry run, nothing changed: " : "") + tally.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", "))
        if tally["not found", default: 0] > 0 { throw ExitCode(1) }
    }
}

func printTable(header: [String], rows: [[String]], indent: String = "") {
    // Cells hold names from outside: control characters are shown escaped, never sent to the terminal.
    let rows = rows.map { $0.map(LogText.escape) }
    var widths = header.map(\.count)
    for row in rows {
        for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
    }
    func line(_ cells: [String]) -> String {
        indent
            + cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
    }
    printLine(line(header))
    for row in rows { printLine(line(row)) }
}

/// Prints what a target would do with an event: the request (secrets redacted), or why nothing
/// would be sent.
func printStep(_ step: () throws(RenderError) -> DeliveryStep, redactor: Redactor) {
    printLine(RequestPreview.describe(step, redactor: redactor))
}

func prettyJSON(_ body: Data) -> String { RequestPreview.prettyJSON(body) }
