import ArgumentParser
import Foundation
import Logging
import PatchbayCore
import PatchbayCurl

struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "POST one event to a running Patchbay, from a file or from flags.",
        discussion: """
            For scripts and agents: prints the server's answer and exits 0 only when the event was \
            accepted (202). The token comes from --token or the PATCHBAY_TOKEN environment variable; \
            prefer the variable, since command lines are visible to other users.

            From a file:   patchbay send Schemas/examples/patch.completed.json
            From flags:    patchbay send --type patch.started --app App1 --environment Production \\
                             --instance-id i-0abc123 --window-start 2026-12-04T00:30:00 \\
                             --window-end 2026-12-04T00:45:00 --timezone America/Los_Angeles
            An example:    patchbay send --example completed
                           (the README's example event, in a window around now: it works on any date)
            """
    )

    @Argument(help: ArgumentHelp("Event JSON file; '-' reads standard input. Leave out to build the event from flags.", valueName: "event.json"))
    var file: String?

    @Option(
        help: ArgumentHelp(
            """
            Send the README's example event of this type (scheduled, reminder, started, completed, failed, cancelled) \
            for App1 - Production, in a window that began 10 to 20 minutes ago and lasts 40 minutes, \
            with a window id that stays the same until the next ten-minute mark of the clock: several types \
            sent in a row make one maintenance (unless a ten-minute mark falls between them).
            """, valueName: "type"))
    var example: String?

    @Option(help: "Patchbay base URL.")
    var url: String = "http://127.0.0.1:8080"

    @Option(help: ArgumentHelp("Bearer token (default: $PATCHBAY_TOKEN).", valueName: "token"))
    var token: String?

    @Option(help: "Idempotency-Key header: resending with the same key never queues twice.")
    var idempotencyKey: String?

    @Option(help: "Event type: patch.scheduled, patch.reminder, patch.started, patch.completed, patch.failed, patch.cancelled.")
    var type: String?
    @Option var app: String?
    @Option var environment: String?
    @Option(help: "Instance id, e.g. i-0abc123.") var instanceId: String?
    @Option(help: "Instance display name, e.g. web-1.") var instanceName: String?
    @Option(help: "Maintenance window id; events with the same id belong to one maintenance.") var windowId: String?
    @Option(help: "Window start: RFC 3339 with offset, or a local time with --timezone.") var windowStart: String?
    @Option(help: "Window end, same forms as --window-start.") var windowEnd: String?
    @Option(help: "IANA time zone of local window times, e.g. America/Los_Angeles.") var timezone: String?
    @Option(name: .customLong("package"), help: "An updated package (repeatable).") var packages: [String] = []
    @Option(help: "Failure reason, for patch.failed.") var reason: String?

    @Option(help: ArgumentHelp("Seconds to wait for the server.", valueName: "seconds"))
    var timeout: Int = 30

    func validate() throws {
        if let example {
            let eventFlags: [(String, Bool)] = [
                ("--type", type != nil), ("--app", app != nil), ("--environment", environment != nil),
                ("--instance-id", instanceId != nil), ("--instance-name", instanceName != nil), ("--window-id", windowId != nil),
                ("--window-start", windowStart != nil), ("--window-end", windowEnd != nil), ("--timezone", timezone != nil),
                ("--package", !packages.isEmpty), ("--reason", reason != nil),
            ]
            let ignored = eventFlags.filter(\.1).map(\.0)
            guard file == nil, ignored.isEmpty else {
                throw ValidationError(
                    "--example: give either an example, an event file, or flags"
                        + (ignored.isEmpty ? "" : " (\(ignored.joined(separator: ", ")) would be ignored)"))
            }
            guard Self.eventType(example) != nil else {
                throw ValidationError(
                    "--example: expected one of \(EventType.allCases.map { $0.rawValue.replacingOccurrences(of: "patch.", with: "") }.joined(separator: ", ")), got '\(example)'"
                )
            }
        } else if file == nil {
            var missing: [String] = []
            if type == nil { missing.append("--type") }
            if app == nil { missing.append("--app") }
            if environment == nil { missing.append("--environment") }
            if windowStart == nil { missing.append("--window-start") }
            if windowEnd == nil { missing.append("--window-end") }
            if !missing.isEmpty {
                throw ValidationError("give an event file, or build the event with flags; missing: \(missing.joined(separator: ", "))")
            }
        }
        guard let parsed = URL(string: url), let scheme = parsed.scheme, ["http", "https"].contains(scheme), parsed.host != nil else {
            throw ValidationError("--url: expected an http(s) URL like http://127.0.0.1:8080, got '\(url)'")
        }
    }

    func run() async throws {
        guard let token = token ?? ProcessInfo.processInfo.environment["PATCHBAY_TOKEN"], !token.isEmpty else {
            printError("no token: set PATCHBAY_TOKEN or pass --token")
            throw ExitCode(2)
        }
        let body = try eventBody()
        var headers = [HTTPHeader("Content-Type", "application/json"), HTTPHeader("Authorization", "Bearer \(token)", isSecret: true)]
        if let idempotencyKey { headers.append(HTTPHeader("Idempotency-Key", idempotencyKey)) }
        let endpoint = url.hasSuffix("/") ? url + "v1/events" : url + "/v1/events"
        let request = OutboundRequest(method: "POST", url: Secret(endpoint), displayURL: endpoint, headers: headers, body: body)
        let transport = CurlTransport(redactor: Redactor(secrets: [Secret(token)]), logger: Logger(label: "patchbay.send"))
        defer { transport.shutdown() }
        let result = await transport.send(request, timeouts: TransportTimeouts(connect: .seconds(5), total: .seconds(timeout)))
        switch result {
        case .success(let response):
            let text = String(decoding: response.body, as: UTF8.self)
            printLine("\(response.status) \(text)")
            if response.status != 202 { throw ExitCode(1) }
        case .failure(let failure):
            printError("could not reach \(endpoint): \(failure.message)")
            throw ExitCode(1)
        }
    }

    static func eventType(_ text: String) -> EventType? {
        EventType(rawValue: text.hasPrefix("patch.") ? text : "patch." + text)
    }

    /// The README's example event (Schemas/examples) of `type`, in a window around `now`: it began
    /// at the last ten-minute mark before the last one and lasts 40 minutes, so on any date it is
    /// under way (a Pingdom window can still be opened for it) and names the same maintenance for
    /// ten minutes.
    static func example(_ type: EventType, now: Date) -> JSONValue {
        let start = Date(timeIntervalSince1970: (now.timeIntervalSince1970 / 600).rounded(.down) * 600 - 600)
        let end = start.addingTimeInterval(2400)
        let compact = Timestamp.rfc3339(start).replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
        var event: [String: JSONValue] = [
            "type": .string(type.rawValue), "app": .string("App1"), "environment": .string("Production"),
            "window": .object([
                "id": .string("mw-example-" + compact), "start": .string(Timestamp.rfc3339(start)),
                "end": .string(Timestamp.rfc3339(end)), "timezone": .string("America/Los_Angeles"),
            ]),
            "occurredAt": .string(Timestamp.rfc3339(now)),
        ]
        switch type {
        case .started, .completed, .failed:
            event["instance"] = .object(["id": .string("i-0abc123"), "name": .string("web-1")])
        case .scheduled, .reminder, .cancelled:
            break
        }
        switch type {
        case .completed:
            event["packages"] = .array(
                [
                    "openssl-3.0.8-1.amzn2023.0.14.x86_64", "kernel-6.1.115-126.197.amzn2023.x86_64",
                    "curl-8.5.0-1.amzn2023.0.4.x86_64",
                ].map(JSONValue.string))
        case .failed:
            event["details"] = .object(["reason": .string("yum exited with status 1: cannot download repomd.xml")])
        case .cancelled:
            event["details"] = .object(["reason": .string("change freeze")])
        case .scheduled, .reminder, .started:
            break
        }
        return .object(event)
    }

    private func eventBody() throws -> Data {
        if let example, let type = Self.eventType(example) {
            return try JSONEncoder.patchbay().encode(Self.example(type, now: Date()))
        }
        if let file {
            let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: file)
            guard let data else {
                printError("cannot read event file '\(file)'")
                throw ExitCode(2)
            }
            return data
        }
        var window: [String: JSONValue] = ["start": .string(windowStart!), "end": .string(windowEnd!)]
        if let windowId { window["id"] = .string(windowId) }
        if let timezone { window["timezone"] = .string(timezone) }
        var event: [String: JSONValue] = [
            "type": .string(type!), "app": .string(app!), "environment": .string(environment!), "window": .object(window),
            "occurredAt": .string(Timestamp.rfc3339(Date())),
        ]
        if let instanceId {
            var instance: [String: JSONValue] = ["id": .string(instanceId)]
            if let instanceName { instance["name"] = .string(instanceName) }
            event["instance"] = .object(instance)
        }
        if !packages.isEmpty { event["packages"] = .array(packages.map(JSONValue.string)) }
        if let reason { event["details"] = .object(["reason": .string(reason)]) }
        return try JSONEncoder.patchbay().encode(JSONValue.object(event))
    }
}
