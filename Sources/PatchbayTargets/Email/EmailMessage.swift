import Foundation
import PatchbayCore

/// One RFC 5322 message: headers, then a multipart/alternative body with a plain-text and an
/// HTML part built from the same `MessageContent`. Both parts are base64, so no line is longer
/// than 76 characters and no user text can end the message early; non-ASCII or unusual header
/// text is RFC 2047 encoded.
struct EmailMessage {
    var text: String

    /// HTML escaping and `<strong>` emphasis, for the HTML part.
    static let htmlMarkup = Markup(escape: TemplateEscaping.html.escape, emphasize: { "<strong>\($0)</strong>" })
    /// Plain text as it is, for the text part.
    static let plainMarkup = Markup(escape: { $0 }, emphasize: { $0 })

    init(
        event: PatchEvent, context: RenderContext, target: String, from: MailAddress, to: [MailAddress], cc: [MailAddress],
        templates: MessageTemplates?
    ) {
        let plain = MessageText.content(for: event, context: context, markup: Self.plainMarkup, packageBudget: 20_000)
        let html = MessageText.content(for: event, context: context, markup: Self.htmlMarkup, packageBudget: 20_000)
        var subject = "\(plain.title): \(event.instance.map { "\($0.name ?? $0.id) (\(event.systemName))" } ?? event.systemName)"
        var htmlBody = Self.htmlBody(html)
        var textBody = Self.textBody(plain)
        if let templates {
            let values = TemplateValues.values(for: event, context: context)
            if let rendered = templates.render("subject", values), !rendered.isEmpty { subject = rendered }
            if let rendered = templates.render("body", values) {
                htmlBody = rendered
                textBody = Self.plainText(fromHTML: rendered)
            }
        }
        let thread = Self.threadID(of: event, target: target, domain: from.domain)
        let isFirst = context.followUp?.objectID == nil
        let boundary = "patchbay-" + Data(context.deliveryID.utf8).sha256Hex.prefix(24)
        var headers = [
            "Date: \(Self.date(context.now))",
            "From: \(Self.header(from))",
            "To: \(Self.addressList(to))",
        ]
        if !cc.isEmpty { headers.append("Cc: \(Self.addressList(cc))") }
        headers.append("Subject: \(Self.encodedWord(subject))")
        // Stable per delivery: a retried send carries the same id, so the receiver can tell.
        headers.append("Message-ID: \(isFirst ? thread : "<\(context.deliveryID).\(thread.dropFirst())")")
        if !isFirst {
            headers.append("In-Reply-To: \(thread)")
            headers.append("References: \(thread)")
        }
        headers += [
            "X-Patchbay-Delivery: \(context.deliveryID)",
            "MIME-Version: 1.0",
            "Content-Type: multipart/alternative; boundary=\"\(boundary)\"",
        ]
        let document =
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>\(TemplateEscaping.html.escape(subject))</title></head>\n<body>\n\(htmlBody)\n</body></html>\n"
        var lines = headers + [""]
        lines += Self.part(boundary: boundary, type: "text/plain", content: textBody)
        lines += Self.part(boundary: boundary, type: "text/html", content: document)
        lines.append("--\(boundary)--")
        text = lines.joined(separator: "\r\n") + "\r\n"
    }

    /// The id of a maintenance's first message to one target: the same for every delivery of
    /// the maintenance there, and another for another target (their messages differ).
    static func threadID(of event: PatchEvent, target: String, domain: String) -> String {
        "<maintenance.\(Data((event.maintenanceKey.storageValue + "\u{1F}" + target).utf8).sha256Hex.prefix(32))@\(domain)>"
    }

    static func part(boundary: String, type: String, content: String) -> [String] {
        let encoded = Data(content.utf8).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        return ["--\(boundary)", "Content-Type: \(type); charset=utf-8", "Content-Transfer-Encoding: base64", "", encoded]
    }

    static func htmlBody(_ content: MessageContent) -> String {
        let rows = content.facts.map {
            "<tr><th align=\"left\">\(TemplateEscaping.html.escape($0.title))</th><td>\($0.value.replacingOccurrences(of: "\n", with: "<br>"))</td></tr>"
        }
        return
            "<h2 style=\"color:#\(content.color)\">\(TemplateEscaping.html.escape(content.title))</h2>\n<p>\(content.text)</p>\n<table>\n\(rows.joined(separator: "\n"))\n</table>"
    }

    static func textBody(_ content: MessageContent) -> String {
        ([content.title, "", content.text, ""] + content.facts.map { "\($0.title): \($0.value.replacingOccurrences(of: "\n", with: "\n  "))" })
            .joined(separator: "\n") + "\n"
    }

    /// The text part of a templated body: its tags dropped, its entities read back.
    static func plainText(fromHTML html: String) -> String {
        var text = html.replacingOccurrences(of: "<br>", with: "\n").replacingOccurrences(of: "</p>", with: "\n")
        text = text.replacingOccurrences(of: "<[^>]*>", with: "", options: .regularExpression)
        for (entity, character) in [("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#39;", "'"), ("&amp;", "&")] {
            text = text.replacingOccurrences(of: entity, with: character)
        }
        return text
    }

    /// Addresses separated by `,` and folded onto lines of their own, so a long list never makes a
    /// line longer than RFC 5322's 998 characters.
    static func addressList(_ addresses: [MailAddress]) -> String {
        addresses.map(header).joined(separator: ",\r\n ")
    }

    /// `Patch Bot <patchbay@example.com>`; a name with RFC 5322 specials (`Ops, Team`) is
    /// quoted, one that is not plain ASCII is encoded.
    static func header(_ address: MailAddress) -> String {
        guard let name = address.name else { return address.address }
        let plain = name.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7F }
        guard plain else { return "\(encodedWord(name)) <\(address.address)>" }
        let atoms = name.allSatisfy { $0.isLetter || $0.isNumber || $0 == " " || "!#$%&'*+-/=?^_`{|}~".contains($0) }
        if atoms { return "\(name) <\(address.address)>" }
        let quoted = name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return "\"\(quoted)\" <\(address.address)>"
    }

    /// Printable ASCII stays as it is; anything else (non-ASCII, control characters, a line
    /// break someone slipped in) becomes RFC 2047 base64 words of at most 75 characters.
    static func encodedWord(_ text: String) -> String {
        let flat = String(text.map { $0.isNewline ? " " : $0 })
        if flat.count <= 900, flat.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7F }) { return flat }
        // 45 bytes of UTF-8 per word keep each `=?UTF-8?B?...?=` within 75 characters; a word
        // never splits a character.
        var words: [String] = []
        var chunk = Data()
        for character in flat {
            let bytes = Data(String(character).utf8)
            if chunk.count + bytes.count > 45 {
                words.append("=?UTF-8?B?\(chunk.base64EncodedString())?=")
                chunk = Data()
            }
            chunk.append(bytes)
        }
        if !chunk.isEmpty { words.append("=?UTF-8?B?\(chunk.base64EncodedString())?=") }
        return words.joined(separator: "\r\n ")
    }

    static func date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }
}
