import ArgumentParser
import PatchbayCore

@main
struct Patchbay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "patchbay",
        abstract: "Durable fan-out of patch-maintenance events to Slack, Teams, Statuspage and Pingdom.",
        discussion: """
            Agents POST patch lifecycle events to a running `patchbay serve`; Patchbay commits each \
            one to its queue before answering 202, then delivers it to every routed target with retries.
            """,
        version: "patchbay \(PatchbayVersion.current)",
        subcommands: [
            Serve.self, Sink.self, Send.self, Render.self, Deliveries.self, Replay.self, Maintenances.self, ScheduleCommand.self,
            Unmapped.self, Prune.self, Audit.self, Migrate.self, ConfigCommand.self,
        ]
    )
}
