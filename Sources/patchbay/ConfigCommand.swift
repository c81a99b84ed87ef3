import ArgumentParser
import Foundation
import PatchbayServer

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
                """
        )

        @OptionGroup var config: ConfigOption

        func run() async throws {
            let configuration = try config.load()
            let targets = configuration.targetNames.map { "\($0) (\(configuration.targets[$0]?.kind ?? "?"))" }
            let routes = configuration.routes.routes.count
            printLine("\(config.path): OK")
            printLine("  listen: \(configuration.server.host):\(configuration.server.port), \(configuration.server.tokens.count) token(s)")
            printLine("  store: \(configuration.postgres?.redactedURL ?? "sqlite:" + configuration.store.sqlitePath)")
            printLine("  targets: \(targets.joined(separator: ", "))")
            printLine("  routes: \(routes)")
        }
    }
}
