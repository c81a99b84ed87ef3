import Foundation
import PatchbayCore

/// The Workflows webhook envelope around an Adaptive Card: the stock "post to a channel" flow
/// iterates `attachments`, so the card must sit there.
struct AdaptiveCardMessage: Encodable {
    struct Attachment: Encodable {
        var contentType = "application/vnd.microsoft.card.adaptive"
        var content: Card
    }

    struct Card: Encodable {
        var schema = "http://adaptivecards.io/schemas/adaptive-card.json"
        var type = "AdaptiveCard"
        var version = "1.4"
        var msteams = ["width": "Full"]
        var body: [Element]

        enum CodingKeys: String, CodingKey {
            case schema = "$schema"
            case type, version, msteams, body
        }
    }

    struct Fact: Encodable {
        var title: String
        var value: String
    }

    enum Element: Encodable {
        case textBlock(text: String, weight: String?, size: String?, color: String?)
        case factSet([Fact])

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            switch self {
            case .textBlock(let text, let weight, let size, let color):
                try container.encode("TextBlock", forKey: .type)
                try container.encode(text, forKey: .text)
                try container.encode(true, forKey: .wrap)
                try container.encodeIfPresent(weight, forKey: .weight)
                try container.encodeIfPresent(size, forKey: .size)
                try container.encodeIfPresent(color, forKey: .color)
            case .factSet(let facts):
                try container.encode("FactSet", forKey: .type)
                try container.encode(facts, forKey: .facts)
            }
        }

        enum Keys: String, CodingKey { case type, text, wrap, weight, size, color, facts }
    }

    var type = "message"
    var attachments: [Attachment]

    init(content: MessageContent) {
        let color: String =
            switch content.color {
            case MessageText.color(for: .completed): "Good"
            case MessageText.color(for: .failed): "Attention"
            case MessageText.color(for: .cancelled): "Default"
            default: "Warning"
            }
        attachments = [
            Attachment(
                content: Card(body: [
                    .textBlock(text: content.title, weight: "Bolder", size: "Medium", color: color),
                    .textBlock(text: content.text, weight: nil, size: nil, color: nil),
                    .factSet(content.facts.map { Fact(title: $0.title, value: $0.value.replacingOccurrences(of: "\n", with: "\n\n")) }),
                ]))
        ]
    }
}

/// The legacy Office 365 connector card.
struct MessageCard: Encodable {
    struct Section: Encodable {
        var activityTitle: String
        var activitySubtitle: String
        var text: String
        var facts: [Fact]
        var markdown = true
    }

    struct Fact: Encodable {
        var name: String
        var value: String
    }

    var type = "MessageCard"
    var context = "http://schema.org/extensions"
    var themeColor: String
    var summary: String
    var sections: [Section]

    enum CodingKeys: String, CodingKey {
        case type = "@type"
        case context = "@context"
        case themeColor, summary, sections
    }

    init(content: MessageContent, system: String) {
        themeColor = content.color
        summary = content.fallback
        sections = [
            Section(
                activityTitle: content.title,
                activitySubtitle: TeamsMarkdown.escape(system),
                text: content.text,
                facts: content.facts.map { Fact(name: $0.title, value: $0.value.replacingOccurrences(of: "\n", with: "  \n")) }
            )
        ]
    }
}
