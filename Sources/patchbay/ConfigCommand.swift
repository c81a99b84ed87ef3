import ArgumentParser
import Foundation
import PatchbayCore
import PatchbayServer
import PatchbayTargets

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Work with the configuration file.",
        subcommands: [Check.self]
    )

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a configuration file and print every problem.",
            discussion: """
                Reads the file as `serve` would, with ${VAR} references taken from this environment. \
                Exits 0 when it is valid, 1 with one line per problem (key path and what is wrong) when not. \
                Secret values are never printed.

                Templates (targets.<name>.templates, routes[].templates) are checked as the file is read: \
                unknown names and syntax errors are reported with the template's key path and line. Then \
                every target with templates renders each example event of --examples, so a webhook body \
                that is not JSON for some event is caught here instead of on patch night.
                """
        )

        @OptionGroup var config: ConfigOption

        @Option(
            help: ArgumentHelp(
                "Folder of example events every template is rendered against (default: Schemas/examples when it exists here).",
                valueName: "dir"))
        var examples: String?

        func run() async throws {
            let configuration = try config.load()
            let targets = configuration.targetNames.map { "\($0) (\(configuration.targets[$0]?.kind ?? "?"))" }
            let routes = configuration.routes.routes.count
            printLine("\(config.path): OK")
            printLine("  listen: \(configuration.server.host):\(configuration.server.port), \(configuration.server.tokens.count) token(s)")
            printLine("  store: \(configuration.postgres?.redactedURL ?? "sqlite:" + configuration.store.sqlitePath)")
            printLine("  targets: \(targets.joined(separator: ", "))")
            printLine("  routes: \(routes)")
            try renderTemplates(configuration)
        }

        /// Renders every example event through every target whose wording is templated.
        func renderTemplates(_ configuration: PatchbayConfiguration) throws {
            let templated = configuration.targetNames.filter { name in
                (configuration.targets[name]?.unwrapped as? any TemplatedTarget)?.templates != nil
                    || configuration.routes.routes.contains { $0.templates != nil && $0.targets.contains { $0.name == name } }
            }
            guard !templated.isEmpty else { return }
            let folder = examples ?? (FileManager.default.fileExists(atPath: "Schemas/examples") ? "Schemas/examples" : nil)
            guard let folder else {
                printLine("  templates: \(templated.count) target(s); no Schemas/examples here to render them against (use --examples DIR)")
                return
            }
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
            guard !files.isEmpty else {
                printError("no example events (*.json) in '\(folder)'")
                throw ExitCode(1)
            }
            var problems: [String] = []
            var rendered = 0
            for file in files {
                let path = (folder as NSString).appendingPathComponent(file)
                guard let data = FileManager.default.contents(atPath: path), let event = try? EventValidator().validate(body: data) else {
                    problems.append("\(path): not a valid event")
                    continue
                }
                for name in templated {
                    guard let target = configuration.targets[name] else { continue }
                    let context = RenderContext(
                        displayTimeZone: TimeZone(identifier: "UTC")!, deliveryID: "dlv_check", now: Date(),
                        routeTemplates: configuration.routeTemplates.templates(for: event, target: name))
                    do throws(RenderError) {
                        _ = try target.plan(event, context: context)
                        rendered += 1
                    } catch {
                        problems.append("targets.\(name): rendering \(file): \(error)")
                    }
                }
            }
            for problem in problems { printLine(problem) }
            guard problems.isEmpty else { throw ExitCode(1) }
            printLine("  templates: \(templated.count) target(s), \(rendered) renderings of \(files.count) example events from \(folder)")
        }
    }
}
