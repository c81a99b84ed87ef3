import Foundation
import HTTPTypes
import PatchbayCore

/// One request as an emulation sees it: the path after its own segment (`/pingdom/api/3.1/…` →
/// `["api", "3.1", …]`), without HTTP, scripts, delays or the record.
struct EmulatedRequest {
    var method: String
    var parts: [String]
    var query: String?
    var body: String
    var headers: HTTPFields
}

/// What the vendors that keep objects remember between requests (incidents, windows, downtimes,
/// message ids). One value, under the sink's lock.
struct VendorState {
    var incidents: [String: [String: JSONValue]] = [:]
    var windows: [Int: [String: JSONValue]] = [:]
    var nextWindowID = 1000
    var pagerDutyWindows: [String: [String: JSONValue]] = [:]
    var nextPagerDutyWindowID = 0
    var downtimes: [String: [String: JSONValue]] = [:]
    var nextDowntimeID = 0
    var nextChatMessageID = 0
    var silences: [String: [String: JSONValue]] = [:]
    var slackMessages: [String: [String: JSONValue]] = [:]
    var discordMessages: [String: JSONValue] = [:]
    var nextSilenceID = 0
}

/// A vendor the sink stands in for, found by the first segment of the path, as the targets are
/// found by their kind in `TargetRegistry`. Adding a kind adds its emulation under `Emulation/`
/// and one line to `Sink.emulations`.
protocol VendorEmulation: SendableMetatype {
    /// The path segment it answers under: `slack` for `/slack/…`.
    static var pathPrefix: String { get }
    /// Listed in the sink's 404 as a vendor (the test endpoints are not).
    static var isVendor: Bool { get }
    /// Remembers objects between requests, so it answers under the sink's lock; the others
    /// answer side by side (a drain benchmark sends thousands a second to one of them).
    static var keepsObjects: Bool { get }
    static func emulate(_ request: EmulatedRequest, state: inout VendorState) -> Sink.Answer
}

extension VendorEmulation {
    static var isVendor: Bool { true }
    static var keepsObjects: Bool { true }
}

extension Sink {
    /// Every path the sink answers, vendors first, in the order the 404 names them.
    static let emulations: [any VendorEmulation.Type] = [
        SlackEmulation.self, SlackWebAPIEmulation.self, TeamsEmulation.self, TeamsConnectorEmulation.self, StatuspageEmulation.self,
        PingdomEmulation.self,
        DiscordEmulation.self, GoogleChatEmulation.self, PagerDutyEmulation.self, DatadogEmulation.self,
        GrafanaEmulation.self, AlertmanagerEmulation.self,
        WebhookReceiver.self, SNSStandIn.self, StatusEndpoint.self, HangEndpoint.self, EndlessEndpoint.self,
    ]

    static let emulationsByPrefix: [String: any VendorEmulation.Type] = Dictionary(
        uniqueKeysWithValues: emulations.map { ($0.pathPrefix, $0) })

    /// The answer for a path no emulation claims, naming the vendors there are.
    static var unknownPath: Answer {
        let vendors = emulations.filter { $0.isVendor }.map { "/" + $0.pathPrefix }
        let list = vendors.dropLast().joined(separator: ", ") + (vendors.count > 1 ? " or " : "") + (vendors.last ?? "")
        return Answer(vendor: "unknown", status: 404, body: #"{"message":"no vendor at this path; use \#(list)"}"#)
    }
}

extension SlackEmulation: VendorEmulation {
    static let pathPrefix = "slack"
    static let keepsObjects = false
    static func emulate(_ request: EmulatedRequest, state: inout VendorState) -> Sink.Answer {
        answer(method: request.method, body: request.body, headers: request.headers)
    }
}

extension TeamsEmulation: VendorEmulation {
    static let pathPrefix = "teams"
    static let keepsObjects = false
    static func emulate(_ request: EmulatedRequest, state: inout VendorState) -> Sink.Answer {
        workflows(method: request.method, body: request.body, headers: request.headers)
    }
}

/// Teams' retired Office 365 connectors (MessageCard), under their own path.
enum TeamsConnectorEmulation: VendorEmulation {
    static let pathPrefix = "teams-connector"
    static let keepsObjects = false
    static func emulate(_ request: EmulatedRequest, state: inout VendorState) -> Sink.Answer {
        TeamsEmulation.connector(method: request.method, body: request.body, headers: request.headers)
    }
}

extension StatuspageEmulation: VendorEmulation {
    static let pathPrefix = "statuspage"
    static func emulate(_ request: EmulatedRequest, state: inout VendorState) -> Sink.Answer {
        answer(method: request.method, parts: request.parts, body: request.body, headers: request.headers, incidents: &state.incidents)
    }
}

extension PingdomEmulation: VendorEmulation {
    static let pathPrefix = "pingdom"
    static func emulate(_ request: EmulatedRequest, state: inout VendorState) -> Sink.Answer {
        answer(
            method: request.method, parts: request.parts, body: request.body, headers: request.headers, windows: &state.windows,
            nextID: &state.nextWindowID)
    }
}

extension DiscordEmulation: VendorEmulation {
    static let pathPrefix = "discord"
    static func emulate(_ request: EmulatedRequest, state: inout VendorState) -> Sink.Answer {
        answer(
            method: request.method, parts: request.parts, query: request.query, body: request.body, headers: request.headers,
            nextID: &state.nextChatMessageID, messages: &state.discordMessages)
    }
}

extension GoogleChatEmulation: VendorEmulation {
    static let pathPrefix = "googlechat"
    static func emulate(_ request: EmulatedRequest, state: inout VendorState) -> Sink.Answer {
        answer(
            method: request.method, parts: request.parts, query: request.query, body: request.body, headers: request.headers,
            nextID: &state.nextChatMessageID)
    }
}

extension PagerDutyEmulation: VendorEmulation {
    static let pathPrefix = "pagerduty"
    static func emulate(_ request: EmulatedRequest, state: inout VendorState) -> Sink.Answer {
        answer(
            method: request.method, parts: request.parts, body: request.body, headers: request.headers,
            windows: &state.pagerDutyWindows, nextID: &state.nextPagerDutyWindowID)
    }
}

extension GrafanaEmulation: VendorEmulation {
    static let pathPrefix = "grafana"
    static func emulate(_ request: EmulatedRequest, state: inout VendorState) -> Sink.Answer {
        answer(request, silences: &state.silences, nextID: &state.nextSilenceID)
    }
}

extension SlackWebAPIEmulation: VendorEmulation {
    static let pathPrefix = "slack-api"
    static func emulate(_ request: EmulatedRequest, state: inout VendorState) -> Sink.Answer {
        answer(request, messages: &state.slackMessages, nextID: &state.nextChatMessageID)
    }
}

extension AlertmanagerEmulation: VendorEmulation {
    static let pathPrefix = "alertmanager"
    static func emulate(_ request: EmulatedRequest, state: inout VendorState) -> Sink.Answer {
        answer(request, silences: &state.silences, nextID: &state.nextSilenceID)
    }
}

extension DatadogEmulation: VendorEmulation {
    static let pathPrefix = "datadog"
    static func emulate(_ request: EmulatedRequest, state: inout VendorState) -> Sink.Answer {
        answer(
            method: request.method, parts: request.parts, body: request.body, headers: request.headers, downtimes: &state.downtimes,
            nextID: &state.nextDowntimeID)
    }
}

// MARK: Test endpoints: not vendors, but paths the tests send to.

/// `/webhook/…`: a generic webhook receiver, 200 to anything.
enum WebhookReceiver: VendorEmulation {
    static let pathPrefix = "webhook"
    static let isVendor = false
    static let keepsObjects = false
    static func emulate(_ request: EmulatedRequest, state: inout VendorState) -> Sink.Answer {
        Sink.Answer(vendor: "webhook", status: 200, body: #"{"received":true}"#)
    }
}

/// `/sns/…`: stands in for AWS: signing certificates (scripted) and subscription confirmations.
enum SNSStandIn: VendorEmulation {
    static let pathPrefix = "sns"
    static let isVendor = false
    static let keepsObjects = false
    static func emulate(_ request: EmulatedRequest, state: inout VendorState) -> Sink.Answer {
        Sink.Answer(vendor: "sns", status: 200, body: "<ConfirmSubscriptionResponse/>", contentType: "text/xml")
    }
}

/// `/status/<code>`: answers with that status, for tests of classification.
enum StatusEndpoint: VendorEmulation {
    static let pathPrefix = "status"
    static let isVendor = false
    static let keepsObjects = false
    static func emulate(_ request: EmulatedRequest, state: inout VendorState) -> Sink.Answer {
        let code = request.parts.first.flatMap { Int($0) } ?? 500
        var headers: [(String, String)] = []
        if (300..<400).contains(code) { headers.append(("Location", "http://127.0.0.1:1/elsewhere")) }
        return Sink.Answer(vendor: "status", status: code, body: #"{"status":\#(code)}"#, headers: headers)
    }
}

/// `/hang?seconds=N`: answers after N seconds (the wait is the sink's; see `Sink.handle`).
enum HangEndpoint: VendorEmulation {
    static let pathPrefix = "hang"
    static let isVendor = false
    static let keepsObjects = false
    static func emulate(_ request: EmulatedRequest, state: inout VendorState) -> Sink.Answer {
        Sink.Answer(vendor: "hang", status: 200, body: #"{"slept":true}"#)
    }
}

/// `/endless`: a 200 whose body never ends, for the transport's read limit.
enum EndlessEndpoint: VendorEmulation {
    static let pathPrefix = "endless"
    static let isVendor = false
    static let keepsObjects = false
    static func emulate(_ request: EmulatedRequest, state: inout VendorState) -> Sink.Answer {
        Sink.Answer(vendor: "endless", status: 200, body: "")
    }
}
