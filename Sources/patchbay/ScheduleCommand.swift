import ArgumentParser
import Foundation
import PatchbayCore
import PatchbayServer

struct ScheduleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Evaluate AWS maintenance-window schedule expressions, and show the configured schedules.",
        subcommands: [Next.self, List.self]
    )

    struct Next: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the next occurrences of a cron(), rate() or at() expression, in its zone and in UTC.",
            discussion: """
                The grammar is that of AWS Systems Manager maintenance windows: cron() with six fields \
                (minutes hours day-of-month month day-of-week year) and an optional leading seconds \
                field; rate(N minute|minutes|hour|hours|day|days); at(yyyy-MM-ddTHH:mm:ss).

                A wall time skipped by a daylight-saving change runs at the first instant after the gap; \
                a wall time that happens twice runs once, at the earlier instant.

                  patchbay schedule next 'cron(0 30 0 ? * FRI#4 *)' --timezone America/Los_Angeles --count 5
                """
        )

        @Argument(help: "The expression, quoted: 'cron(0 30 0 ? * FRI#4 *)'.") var expression: String
        @Option(help: "IANA zone the expression is evaluated in.") var timezone: String = "UTC"
        @Option(help: "How many occurrences (1 to 100).") var count: Int = 5
        @Option(help: "Days to wait after each cron time (1 to 6), like ScheduleOffset.") var offset: Int?
        @Option(help: ArgumentHelp("Start from this RFC 3339 instant instead of now; it also anchors rate().", valueName: "date-time"))
        var after: String?
        @Flag(help: "Print a JSON list of {\"local\", \"utc\"}.") var json = false

        func validate() throws {
            guard (1...100).contains(count) else { throw ValidationError("--count: expected a whole number from 1 to 100") }
            guard ZonedTime.ianaZone(named: timezone) != nil else {
                throw ValidationError("--timezone: '\(timezone)' is not an IANA time zone name like America/Los_Angeles")
            }
            if let after, Timestamp.parseRFC3339(after) == nil {
                throw ValidationError("--after: expected an RFC 3339 date-time with an offset, got '\(after)'")
            }
        }

        func run() async throws {
            let zone = ZonedTime.ianaZone(named: timezone)!
            let start = after.flatMap(Timestamp.parseRFC3339) ?? Date()
            let schedule: Schedule
            do {
                schedule = try Schedule(expression: try ScheduleExpression.parse(expression), timeZone: zone, offsetDays: offset)
            } catch {
                printError(error.description)
                throw ExitCode(1)
            }
            let occurrences = schedule.occurrences(after: start, count: count, anchor: start)
            if json {
                let rows = occurrences.map { ["local": Timestamp.rfc3339($0, in: zone), "utc": Timestamp.rfc3339($0)] }
                printLine(String(decoding: try JSONEncoder.patchbay().encode(rows), as: UTF8.self))
                return
            }
            if occurrences.isEmpty { printLine("No occurrence after \(Timestamp.rfc3339(start)).") }
            printTable(
                header: ["#", "LOCAL (\(zone.identifier))", "UTC"],
                rows: occurrences.enumerated().map { index, date in
                    [String(index + 1), Timestamp.rfc3339(date, in: zone), Timestamp.rfc3339(date)]
                })
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show each configured schedule's next occurrence and whether it has been announced.",
            discussion: "Example: patchbay schedule list --config patchbay.yaml"
        )

        @Flag(help: "Print JSON instead of a table.") var json = false
        @OptionGroup var config: ConfigOption

        struct Row: Encodable {
            var app: String
            var environment: String
            var windowId: String
            var expression: String
            var timezone: String
            var next: String?
            var nextUTC: String?
            var announceAt: String?
            var announced: Bool
            var eventId: String?
        }

        func run() async throws {
            let configuration = try config.load()
            let store = try await openStore(configuration)
            let now = Date()
            var rows: [Row] = []
            for entry in configuration.schedules.entries {
                let zone = entry.schedule.timeZone
                // The occurrence announced and still ahead, else the next one.
                var start = entry.schedule.next(after: now)
                var eventID: String?
                if let upcoming = start {
                    eventID = try await store.eventID(idempotencyKey: entry.announcementKey(startingAt: upcoming))
                }
                if eventID == nil, let current = entry.schedule.latest(atOrBefore: now),
                    now.timeIntervalSince(current) < entry.duration.seconds,
                    let id = try await store.eventID(idempotencyKey: entry.announcementKey(startingAt: current))
                {
                    (start, eventID) = (current, id)
                }
                rows.append(
                    Row(
                        app: entry.app, environment: entry.environment, windowId: entry.windowID, expression: entry.expression,
                        timezone: zone.identifier, next: start.map { Timestamp.rfc3339($0, in: zone) }, nextUTC: start.map(Timestamp.rfc3339),
                        announceAt: start.map { Timestamp.rfc3339($0.addingTimeInterval(-entry.announceAhead.seconds), in: zone) },
                        announced: eventID != nil, eventId: eventID))
            }
            if json {
                printLine(String(decoding: try JSONEncoder.patchbay().encode(rows), as: UTF8.self))
                return
            }
            if rows.isEmpty {
                printLine("No schedules: add a `schedules:` list to the configuration.")
                return
            }
            printTable(
                header: ["APP/ENVIRONMENT", "WINDOW ID", "EXPRESSION", "NEXT", "NEXT (UTC)", "ANNOUNCE AT", "ANNOUNCED"],
                rows: rows.map {
                    [
                        "\($0.app)/\($0.environment)", $0.windowId, $0.expression, $0.next ?? "none", $0.nextUTC ?? "", $0.announceAt ?? "",
                        $0.announced ? "yes (\($0.eventId ?? ""))" : "no",
                    ]
                })
        }
    }
}
