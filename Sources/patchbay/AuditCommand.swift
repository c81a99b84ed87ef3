import ArgumentParser
import Foundation
import PatchbayCore
import PatchbayServer

/// `patchbay audit list`: who signed in, replayed, sent a test message or pruned, newest first.
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The audit trail: operators' sign-ins, replays, test sends and prunes.",
        subcommands: [AuditList.self]
    )
}

struct AuditList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the audit trail, newest first.",
        discussion: """
              patchbay audit list --since 30d --config patchbay.yaml
              patchbay audit list --action replay --json --config patchbay.yaml
            """
    )

    @Option(help: "Only what happened within this long (30m, 2h, 7d).") var since = "7d"
    @Option(help: "Only this action: sign-in, sign-out, replay, test-send, prune.") var action: String?
    @Option(help: "At most this many records (1 to 1000).") var limit = "100"
    @Flag(help: "Print JSON instead of a table.") var json = false
    @OptionGroup var config: ConfigOption

    func run() async throws {
        let filter: AuditFilter
        do throws(QueryProblem) {
            filter = try AuditQuery.filter(since: since, action: action, limit: limit, now: Date())
        } catch {
            printError("--\(error.parameter): \(error.message)")
            throw ExitCode(2)
        }
        let store = try await openStore(try config.load())
        let records = try await store.auditTrail(filter)
        if json {
            printLine(String(decoding: try JSONEncoder.patchbay().encode(records), as: UTF8.self))
            return
        }
        if records.isEmpty {
            printLine("Nothing recorded since \(Timestamp.rfc3339(filter.since ?? Date())).")
            return
        }
        printTable(
            header: ["TIME (UTC)", "WHO", "ID", "HOW", "ACTION", "OUTCOME", "FROM", "DETAIL"],
            rows: records.map { record in
                [
                    Timestamp.rfc3339(record.at), record.actor, record.actorID ?? "-", record.method, record.action, record.outcome.rawValue,
                    record.source ?? "-",
                    String(record.detail.prefix(120)),
                ]
            })
    }
}

/// Records a command-line action; a record that cannot be written is said on stderr, never fatal.
func recordAudit(_ record: AuditRecord, in store: any AuditStore) async {
    do {
        try await store.recordAudit(record)
    } catch {
        printError("warning: the audit trail could not record this \(record.action): \(type(of: error))")
    }
}

extension AuditActor {
    /// Whoever runs the command line: the login behind `sudo`, else the user.
    static var commandLine: AuditActor {
        let environment = ProcessInfo.processInfo.environment
        let login = environment["SUDO_USER"] ?? environment["USER"] ?? environment["LOGNAME"] ?? "unknown"
        return AuditActor(name: "\(login)@\(host)", method: "cli", id: login)
    }

    static var host: String { ProcessInfo.processInfo.hostName }
}
