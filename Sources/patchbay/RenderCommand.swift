import ArgumentParser
import Foundation
import PatchbayCore
import PatchbayServer
import PatchbayTargets

struct Render: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print what each routed target would receive for an event; sends nothing.",
        discussion: """
            Validates the event as POST /v1/events would, finds the routes it matches, and prints each \
            target's request: method, URL (credentials hidden), headers (secrets redacted) and body.
            """
    )

    @Argument(help: ArgumentHelp("Event JSON file; '-' reads standard input.", valueName: "event.json"))
    var file: String

    @OptionGroup var config: ConfigOption

    func run() async throws {
        let configuration = try config.load()
        let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: file)
        guard let data else {
            printError("cannot read event file '\(file)'")
            throw ExitCode(2)
        }
        let routes = configuration.routes
        let validator = EventValidator { app, environment, tags in routes.fallbackZone(app: app, environment: environment, tags: tags) }
        let event: PatchEvent
        do {
            event = try validator.validate(body: data)
        } catch {
            printError("\(file) is not a valid event:")
            for problem in error.problems { FileHandle.standardError.write(Data("  - \(problem)\n".utf8)) }
            throw ExitCode(1)
        }
        let plans = routes.plans(for: event, targets: configuration.targets)
        if plans.isEmpty {
            printLine("No route matches app '\(event.app)', environment '\(event.environment)': nothing would be sent.")
            return
        }
        for plan in plans {
            guard let preview = RequestPreview.describe(plan, of: event, configuration: configuration) else { continue }
            if let wait = plan.summaryWait {
                printLine(
                    "=== \(plan.target) (\(plan.targetKind)) summary, \(Int(wait)) s after the first event of its stage, times shown in \(plan.displayTimeZone); with this event's server alone"
                )
            } else if plan.live == true {
                printLine(
                    "=== \(plan.target) (\(plan.targetKind)) live message, times shown in \(plan.displayTimeZone); posted by the first event of its maintenance, edited by later ones"
                )
            } else {
                printLine("=== \(plan.target) (\(plan.targetKind)), times shown in \(plan.displayTimeZone); as the first event of its maintenance")
            }
            printLine(preview)
            printLine("")
        }
    }
}
