import Foundation
import PatchbayCore

/// Google Chat incoming webhook (`kind: googlechat`): a `cardsV2` card per event, every message of
/// one maintenance in one thread. The URL is the credential: its `key` and `token` query items
/// authorise the post, and there is no auth header [GC1].
public struct GoogleChatTarget: MessageTarget, TemplatedTarget {
    public static let kind = "googlechat"
    /// Google allows 60 writes a minute per space, shared by every app in it and applying to
    /// incoming webhooks too [GC3]; half of that leaves room for the others.
    public static let defaultPolicy = TargetPolicy(pacing: PacingPolicy(rate: 0.5, burst: 3))
    public static let traits = TargetKindTraits(kind: kind, isChat: true)
    public static let templateKeys: Set<String> = ["title", "text", "facts"]
    public static let templateEscaping = TemplateEscaping(name: "PATCHBAY_GOOGLECHAT", escape: GoogleChatText.escape)

    /// A message may be 32,000 bytes "including contents" [GC2]; keep a margin for what Google
    /// counts besides our body.
    public static let maxPayloadBytes = 31_000
    /// Without it Google ignores the thread key and starts a new thread every time [GC2]; with
    /// it a key that names no thread yet starts one.
    static let replyOption = "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"

    public let name: String
    /// The webhook URL as configured.
    public let url: Secret
    /// `url` with `messageReplyOption`, its key and token kept. A secret of its own, so the
    /// redactor knows the exact text the transport may echo in an error.
    public let requestURL: Secret
    public var templates: MessageTemplates?
    public var kind: String { Self.kind }
    public var secrets: [Secret] { [url, requestURL] }

    public init(name: String, url: Secret) {
        self.name = name
        self.url = url
        self.requestURL = Secret(WebhookQuery.setting("messageReplyOption", to: Self.replyOption, in: url.reveal()))
    }

    /// Reads `targets.<name>`: `{kind: googlechat, url: https://chat.googleapis.com/v1/spaces/<space>/messages?key=…&token=…}`.
    public init?(name: String, section: ConfigSection) {
        section.allowOnly(TargetRegistry.commonKeys.union(["url"]))
        guard let url = section.secretURL("url") else { return nil }
        let query = URLComponents(string: url.reveal())?.queryItems ?? []
        guard ["key", "token"].allSatisfy({ key in query.contains { $0.name == key && $0.value?.isEmpty == false } }) else {
            section.report(
                "url", "expected the webhook URL Google Chat shows for the space, with key= and token= in its query (value not shown: it is a secret)"
            )
            return nil
        }
        self.init(name: name, url: url)
    }

    /// The quota is per space [GC3], and the space is in the path (`/v1/spaces/<space>/messages`):
    /// webhooks into one space share one pace; their key and token differ only in the query.
    public var pacingKey: String {
        var components = URLComponents(string: url.reveal())
        components?.query = nil
        components?.fragment = nil
        let base = components?.string ?? url.reveal()
        return "googlechat:" + Data(base.utf8).sha256Hex.prefix(16)
    }

    /// Every message of a maintenance (each server's, and the summaries) goes to one thread.
    /// The key is derived, not the maintenance key itself: it stays short and printable
    /// (Google allows 4000 characters [GC2]) and does not spell out app and environment names.
    public static func threadKey(for event: PatchEvent) -> String {
        "patchbay-" + Data(event.maintenanceKey.storageValue.utf8).sha256Hex.prefix(32)
    }

    public func render(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> OutboundRequest {
        // Shrink the package list until the whole message fits, then every other part (a long
        // template output): the message goes shortened rather than not at all.
        var budget = 20_000
        var fieldLimit = Int.max
        var body = Data()
        while true {
            var content = MessageText.content(for: event, context: context, markup: GoogleChatText.markup, packageBudget: budget)
            content.apply(MessageTemplates.preferring(context.routeTemplates, over: templates), event: event, context: context)
            if fieldLimit < Int.max { content = content.cut(to: fieldLimit) }
            let message = GoogleChatMessage(content: content, system: event.systemName, threadKey: Self.threadKey(for: event))
            body = try JSONEncoder.encodePayload(message, kind: "Google Chat")
            if body.count <= Self.maxPayloadBytes { break }
            guard fieldLimit > 50 else {
                throw RenderError("the Google Chat message is \(body.count) bytes even with every part cut short; Google Chat takes at most 32,000")
            }
            if budget >= 500 { budget /= 2 } else { fieldLimit = fieldLimit == Int.max ? 4000 : fieldLimit / 2 }
        }
        return OutboundRequest(
            method: "POST", url: requestURL, displayURL: OutboundRequest.displayForm(of: url.reveal()),
            headers: [HTTPHeader("Content-Type", "application/json; charset=utf-8")], body: body
        )
    }
}

/// `spaces.messages.create` body [GC2][GC5]: one card with the title and system in its header, the
/// sentence, then a labelled line per fact; `thread.threadKey` keeps a maintenance together.
struct GoogleChatMessage: Encodable {
    struct Thread: Encodable {
        var threadKey: String
    }

    struct CardWithID: Encodable {
        var cardId: String
        var card: Card
    }

    struct Card: Encodable {
        var header: Header
        var sections: [Section]
    }

    struct Header: Encodable {
        var title: String
        var subtitle: String
    }

    struct Section: Encodable {
        var widgets: [Widget]
    }

    enum Widget: Encodable {
        case textParagraph(text: String)
        case decoratedText(topLabel: String, text: String)

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            switch self {
            case .textParagraph(let text):
                try container.encode(["text": text], forKey: .textParagraph)
            case .decoratedText(let topLabel, let text):
                // Without wrapText a long value (the package list) is cut to one line.
                try container.encode(DecoratedText(topLabel: topLabel, text: text, wrapText: true), forKey: .decoratedText)
            }
        }

        struct DecoratedText: Encodable {
            var topLabel: String
            var text: String
            var wrapText: Bool
        }

        enum Keys: String, CodingKey { case textParagraph, decoratedText }
    }

    var cardsV2: [CardWithID]
    var thread: Thread

    init(content: MessageContent, system: String, threadKey: String) {
        // User newlines are already spaces (GoogleChatText.escape); those left are ours (the
        // package list) or a template author's, and card text breaks lines with <br> [GC4].
        func lines(_ text: String) -> String { text.replacingOccurrences(of: "\n", with: "<br>") }
        func isBlank(_ text: String) -> Bool { text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
        // A widget's text is required [GC5]: a template that rendered nothing leaves its widget out.
        var widgets: [Widget] = isBlank(content.text) ? [] : [.textParagraph(text: lines(content.text))]
        widgets += content.facts.filter { !isBlank($0.value) }.map { Widget.decoratedText(topLabel: $0.title, text: lines($0.value)) }
        if widgets.isEmpty {
            // A card section needs a widget; the plain one-liner is never empty.
            widgets = [.textParagraph(text: GoogleChatText.escape(content.fallback))]
        }
        cardsV2 = [
            CardWithID(
                cardId: "patchbay",
                card: Card(
                    header: Header(title: content.title, subtitle: GoogleChatText.escape(system)),
                    sections: [Section(widgets: widgets)]
                ))
        ]
        thread = Thread(threadKey: threadKey)
    }
}

/// Card text is an HTML subset (b, i, u, s, font, a, br) [GC4]: entities make user text inert.
/// Newlines in user text become spaces, so a value stays on its line.
public enum GoogleChatText {
    @Sendable public static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        var previousWasCarriageReturn = false
        for scalar in text.unicodeScalars {
            defer { previousWasCarriageReturn = scalar == "\r" }
            switch scalar {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "\n" where previousWasCarriageReturn: continue
            case "\n", "\r", "\u{0B}", "\u{0C}", "\u{85}", "\u{2028}", "\u{2029}": result += " "
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    public static let markup = Markup(escape: escape, emphasize: { "<b>\($0)</b>" })
}
