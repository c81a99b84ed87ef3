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
        let plans = routes.plans(for: event, kindOf: { configuration.targets[$0]?.kind }, isChat: { TargetRegistry.traits(of: $0)?.isChat == true })
        if plans.isEmpty {
            printLine("No route matches app '\(event.app)', environment '\(event.environment)': nothing would be sent.")
            return
        }
        let redactor = configuration.redactor
        for plan in plans {
            let (name, isDigest) = DigestLane.split(plan.target)
            guard let target = configuration.targets[name] else { continue }
            let zone = TimeZone(identifier: plan.displayTimeZone) ?? TimeZone(identifier: "UTC")!
            // A summary counts the maintenance's servers; here the event's server is the only one known.
            let snapshot = event.instance.map {
                MaintenanceSnapshot(instances: [.init(instance: $0, lastType: event.type, packages: event.packages)])
            }
            if isDigest {
                printLine(
                    "=== \(name) (\(plan.targetKind)) summary, \(Int(plan.digestWait ?? 0)) s after the first event of its stage, times shown in \(plan.displayTimeZone); with this event's server alone"
                )
            } else {
                printLine("=== \(name) (\(plan.targetKind)), times shown in \(plan.displayTimeZone); as the first event of its maintenance")
            }
            let context = RenderContext(
                displayTimeZone: zone, deliveryID: "dlv_render", now: Date(), maintenance: isDigest ? snapshot ?? .empty : .empty,
                resources: plan.resources, routeTemplates: configuration.routeTemplates.templates(for: event, target: name),
                isDigest: isDigest)
            printStep({ () throws(RenderError) in try target.plan(event, context: context) }, redactor: redactor)
            printLine("")
        }
    }
}
