import ArgumentParser
import Foundation
import PatchbayCore

struct Unmapped: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List relayed lifecycle events that mapped to no app and environment.",
        discussion: """
            A relayed AWS event whose maintenance window or document has no awsMapping entry is kept \
            rather than dropped. Add the missing entry to awsMapping, and the next events from that \
            window or document will be delivered.
            """
    )

    @Option(help: "At most this many, newest first.") var limit: Int = 20
    @Flag(help: "Print JSON instead of text.") var json = false
    @OptionGroup var config: ConfigOption

    func run() async throws {
        let store = try await openStore(try config.load())
        let messages = try await store.unmapped(limit: max(1, limit))
        if json {
            printLine(String(decoding: try JSONEncoder.patchbay().encode(messages), as: UTF8.self))
            return
        }
        if messages.isEmpty {
            printLine("No unmapped relayed messages.")
            return
        }
        for message in messages {
            printLine("\(Timestamp.rfc3339(message.receivedAt))  source \(message.source): \(message.reason)")
            printLine("  " + message.body.replacingOccurrences(of: "\n", with: " ").prefix(300))
        }
    }
}
