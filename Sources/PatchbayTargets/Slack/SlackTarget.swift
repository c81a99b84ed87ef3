import Foundation
import PatchbayCore

/// Slack incoming webhook (`kind: slack`). The URL is the credential; Slack answers 200 `ok` and
/// returns no message id, so every lifecycle step is a new message.
public struct SlackTarget: MessageTarget, TemplatedTarget {
    public static let kind = "slack"
    /// "1 per second, short bursts allowed" (Slack's rate-limit table for incoming webhooks).
    public static let defaultPolicy = TargetPolicy(pacing: PacingPolicy(rate: 1, burst: 3))
    public static let traits = TargetKindTraits(kind: kind, isChat: true)
    public static let templateKeys: Set<String> = ["title", "text", "facts"]
    public static let templateEscaping = TemplateEscaping(name: "PATCHBAY_SLACK", escape: SlackEscaping.escape)

    public let name: String
    public let url: Secret
    public var templates: MessageTemplates?
    public var kind: String { Self.kind }
    public var secrets: [Secret] { [url] }

    public init(name: String, url: Secret) {
        self.name = name
        self.url = url
    }

    /// Reads `targets.<name>`: `{kind: slack, url: ...}`.
    public init?(name: String, section: ConfigSection) {
        section.allowOnly(TargetRegistry.commonKeys.union(["url"]))
        guard let url = section.secretURL("url") else { return nil }
        self.init(name: name, url: url)
    }

    public func render(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> OutboundRequest {
        let payload = SlackPayload(event: event, context: context, templates: MessageTemplates.preferring(context.routeTemplates, over: templates))
        let body = try JSONEncoder.encodePayload(payload, kind: "Slack")
        return OutboundRequest(
            method: "POST", url: url, displayURL: OutboundRequest.displayForm(of: url.reveal()),
            headers: [HTTPHeader("Content-Type", "application/json; charset=utf-8")],
            body: body
        )
    }
}

/// The message body teams send today: one legacy attachment with title, text, colour and fields.
struct SlackPayload: Encodable, Equatable {
    struct Field: Encodable, Equatable {
        var title: String
        var value: String
        var short: Bool
    }

    struct Attachment: Encodable, Equatable {
        var fallback: String
        var color: String
        var title: String
        var text: String
        var fields: [Field]
        var mrkdwn_in: [String]
        var ts: Int?
    }

    var attachments: [Attachment]

    /// Field values Slack shows in full; longer package lists are cut with "… and N more".
    static let packageFieldBudget = 2900

    init(event: PatchEvent, context: RenderContext, templates: MessageTemplates? = nil) {
        var content = MessageText.content(for: event, context: context, markup: SlackEscaping.markup, packageBudget: Self.packageFieldBudget)
        content.apply(templates, event: event, context: context)
        attachments = [
            Attachment(
                fallback: SlackEscaping.escape(content.fallback),
                color: "#" + content.color,
                title: content.title,
                text: content.text,
                fields: content.facts.map { Field(title: $0.title, value: $0.value, short: content.shortFactTitles.contains($0.title)) },
                mrkdwn_in: ["text"],
                ts: event.occurredAt.map { Int($0.timeIntervalSince1970) }
            )
        ]
    }
}

/// Slack treats `&`, `<` and `>` as control characters (links, `<!channel>` mentions); converting
/// them to entities, `&` first, makes any text inert. Slack decodes only these three.
public enum SlackEscaping {
    /// By Unicode scalar: a `<` followed by a combining mark is one Character that is not `<`.
    @Sendable public static func escape(_ text: String) -> String {
        TemplateEscaping.replacing(entities, in: text)
    }

    static let entities: [Unicode.Scalar: String] = ["&": "&amp;", "<": "&lt;", ">": "&gt;"]

    public static let markup = Markup(escape: escape, emphasize: { "*\($0)*" })
}
