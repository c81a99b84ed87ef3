import Foundation
import PatchbayCore

/// Microsoft Teams (`kind: teams`). Office 365 connectors were retired in 2026, so the default
/// `format: adaptive` posts an Adaptive Card in the Workflows envelope (answered 202);
/// `format: messagecard` posts the legacy MessageCard for endpoints that still take it (answered
/// 200 `1`). The URL is the credential. Messages stay under Teams' 28 KB limit.
public struct TeamsTarget: MessageTarget, TemplatedTarget {
    public static let kind = "teams"
    /// Teams throttles a webhook past 4 requests a second.
    public static let defaultPolicy = TargetPolicy(pacing: PacingPolicy(rate: 4, burst: 4))
    public static let traits = TargetKindTraits(kind: kind, isChat: true)
    public static let templateKeys: Set<String> = ["title", "text", "facts"]
    public static let templateEscaping = TemplateEscaping(name: "PATCHBAY_TEAMS", escape: TeamsMarkdown.escape)

    public enum Format: String, Sendable, CaseIterable {
        case adaptive
        case messagecard
    }

    /// Teams refuses messages over 28 KB; keep a margin for the envelope Teams adds.
    public static let maxPayloadBytes = 27 * 1024

    public let name: String
    public let url: Secret
    public let format: Format
    public var templates: MessageTemplates?
    public var kind: String { Self.kind }
    public var secrets: [Secret] { [url] }

    public init(name: String, url: Secret, format: Format = .adaptive) {
        self.name = name
        self.url = url
        self.format = format
    }

    /// Reads `targets.<name>`: `{kind: teams, url: ..., format: adaptive|messagecard}`.
    public init?(name: String, section: ConfigSection) {
        section.allowOnly(TargetRegistry.commonKeys.union(["url", "format"]))
        let url = section.secretURL("url")
        var format = Format.adaptive
        if let text = section.string("format") {
            if let parsed = Format(rawValue: text) {
                format = parsed
            } else {
                section.report("format", "must be adaptive or messagecard, got '\(text)'")
                return nil
            }
        }
        guard let url else { return nil }
        self.init(name: name, url: url, format: format)
    }

    public func render(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> OutboundRequest {
        // Shrink the package list until the whole message fits, then every other part: a card
        // over Teams' size is refused, and the failure notices are the ones with long texts.
        var budget = 20_000
        var fieldLimit = Int.max
        var body = Data()
        while true {
            var content = MessageText.content(for: event, context: context, markup: TeamsMarkdown.markup, packageBudget: budget)
            content.apply(MessageTemplates.preferring(context.routeTemplates, over: templates), event: event, context: context)
            if fieldLimit < Int.max { content = content.cut(to: fieldLimit) }
            body =
                switch format {
                case .adaptive: try JSONEncoder.encodePayload(AdaptiveCardMessage(content: content), kind: "Teams")
                case .messagecard: try JSONEncoder.encodePayload(MessageCard(content: content, system: event.systemName), kind: "Teams")
                }
            if body.count <= Self.maxPayloadBytes || fieldLimit <= 50 { break }
            if budget >= 500 { budget /= 2 } else { fieldLimit = fieldLimit == Int.max ? 4000 : fieldLimit / 2 }
        }
        return OutboundRequest(
            method: "POST", url: url, displayURL: OutboundRequest.displayForm(of: url.reveal()),
            headers: [HTTPHeader("Content-Type", "application/json; charset=utf-8")], body: body
        )
    }

    /// Teams connectors report throttling inside a 200: "Microsoft Teams endpoint returned HTTP error 429".
    public func classify(_ result: Result<TransportResponse, TransportFailure>) -> DeliveryOutcome {
        if case .success(let response) = result, (200..<300).contains(response.status) {
            let text = String(decoding: response.body.prefix(2048), as: UTF8.self)
            if let range = text.range(of: "HTTP error "), let code = Int(text[range.upperBound...].prefix(3)) {
                return ResponseRule.classify(status: code, retryAfter: response.header("Retry-After"))
            }
        }
        return ResponseRule.classify(result)
    }
}

/// Teams Markdown: backslash-escape what would format, and keep user text on one line so it
/// cannot start a heading or a list.
public enum TeamsMarkdown {
    /// Parentheses and `!` matter only after `]`, which is escaped, so they stay readable.
    static let special: Set<Unicode.Scalar> = ["\\", "*", "_", "`", "[", "]", "#", "<", ">", "~", "|"]

    /// By Unicode scalar: a `*` followed by a combining mark is one Character that is not `*`.
    @Sendable public static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        var previousWasCR = false
        for scalar in text.unicodeScalars {
            defer { previousWasCR = scalar == "\r" }
            if scalar == "\n" || scalar == "\r" {
                if !(scalar == "\n" && previousWasCR) { result.append(" ") }
            } else {
                if special.contains(scalar) { result.append("\\") }
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    public static let markup = Markup(escape: escape, emphasize: { "**\($0)**" })
}
