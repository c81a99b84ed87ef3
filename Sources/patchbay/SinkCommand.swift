import ArgumentParser
import Foundation
import Hummingbird
import Logging
import PatchbayServer
import PatchbaySink
import ServiceLifecycle

struct Sink: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a local stand-in for the vendors: chat webhooks, Statuspage, Pingdom, PagerDuty and Datadog.",
        discussion: """
            Answers like each vendor on one port, chosen by path: /slack/..., /teams/... (Workflows), \
            /teams-connector/... (legacy MessageCard), /statuspage/v1/pages/<page>/incidents, \
            /pingdom/api/3.1/maintenance, /discord/api/webhooks/<id>/<token>, \
            /googlechat/v1/spaces/<space>/messages, /pagerduty/maintenance_windows and \
            /pagerduty/v2/change/enqueue, /datadog/api/v2/downtime. (E-mail needs an SMTP server; the \
            sink speaks HTTP only.) Prints a one-line summary of every request; with --record, \
            appends each request as a JSON line (credentials reduced to their scheme).
            """
    )

    @Option(help: ArgumentHelp("Address to listen on (port 0 picks a free port).", valueName: "host:port"))
    var listen: String = "127.0.0.1:9090"

    @Option(help: ArgumentHelp("Append every request to this file as a JSON line.", valueName: "file"))
    var record: String?

    @Option(help: ArgumentHelp("Answer every vendor request after this many milliseconds (0-10000).", valueName: "ms"))
    var delayMs: Int = 0

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if ServerSettings.parseListen(listen) == nil {
            throw ValidationError("--listen: expected host:port like 127.0.0.1:9090, got '\(listen)'")
        }
        if !(0...10_000).contains(delayMs) {
            throw ValidationError("--delay-ms: expected 0 to 10000, got \(delayMs)")
        }
    }

    func run() async throws {
        let logger = logging.bootstrap()
        let (host, port) = ServerSettings.parseListen(listen)!
        let sink: PatchbaySink.Sink
        do {
            sink = try PatchbaySink.Sink(recordPath: record, answerDelay: .milliseconds(delayMs), printSummary: { printLine($0) })
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        let app = buildSinkApplication(sink: sink, host: host, port: port, logger: logger) { port in
            printLine("sink listening on http://\(host):\(port)")
        }
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
