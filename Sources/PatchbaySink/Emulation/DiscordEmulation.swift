import Foundation
import PatchbayCore

/// Discord execute-webhook under `/discord/api/webhooks/<id>/<token>` (or `/discord/api/v10/…`),
/// with Discord's error shapes: a plain `{"message", "code"}`, or code 50035 "Invalid Form Body"
/// with the offending field under `errors` [DC1][DC2]. A post is answered as with `?wait=true`:
/// 200 and the message object with its id.
enum DiscordEmulation {
    /// Embed limits [DC1][DC2].
    static let maxContent = 2000
    static let maxEmbeds = 10
    static let maxTitle = 256
    static let maxDescription = 4096
    static let maxFields = 25
    static let maxFieldName = 256
    static let maxFieldValue = 1024
    static let maxFooter = 2048
    static let maxAuthorName = 256
    static let maxEmbedTotal = 6000

    static func answer(method: String, parts: [String], body: String, nextID: inout Int) -> Sink.Answer {
        func error(_ status: Int, _ message: String, code: Int) -> Sink.Answer {
            .init(vendor: "discord", status: status, body: json(.object(["message": .string(message), "code": .number(Double(code))])))
        }
        // `api/webhooks/<id>/<token>`, optionally with a version segment after `api`.
        var rest = parts
        guard rest.first == "api" else { return error(404, "404: Not Found", code: 0) }
        rest.removeFirst()
        if let version = rest.first, version.hasPrefix("v"), Int(version.dropFirst()) != nil { rest.removeFirst() }
        guard rest.count == 3, rest[0] == "webhooks", !rest[1].isEmpty, rest[1].allSatisfy(\.isASCIIDigit), !rest[2].isEmpty else {
            return error(404, "Unknown Webhook", code: 10015)
        }
        let webhookID = rest[1]
        guard method == "POST" else { return error(405, "405: Method Not Allowed", code: 0) }
        guard let parsed = try? JSONValue.parse(Data(body.utf8)), case .object(let message) = parsed else {
            return error(400, "The request body contains invalid JSON.", code: 50109)
        }
        let content = message["content"]?.stringValue ?? ""
        let embeds: [JSONValue] = {
            if case .array(let items)? = message["embeds"] { return items }
            return []
        }()
        let hasComponents: Bool = {
            if case .array(let items)? = message["components"] { return !items.isEmpty }
            return false
        }()
        guard !trimmed(content).isEmpty || !embeds.isEmpty || hasComponents || message["poll"] != nil else {
            return error(400, "Cannot send an empty message", code: 50006)
        }
        if let problem = limitProblem(content: content, embeds: embeds) {
            return .init(vendor: "discord", status: 400, body: json(.object([
                "code": .number(50035), "message": .string("Invalid Form Body"), "errors": problem,
            ])))
        }
        nextID += 1
        // Every embed a webhook sends is a rich one [DC1].
        let stored = embeds.map { embed -> JSONValue in
            guard case .object(var fields) = embed else { return embed }
            fields["type"] = .string("rich")
            return .object(fields)
        }
        let answer: JSONValue = .object([
            "id": .string(String(nextID)),
            "type": .number(0),
            "channel_id": .string("1" + String(webhookID.reversed())),
            "webhook_id": .string(webhookID),
            "content": .string(content),
            "embeds": .array(stored),
            "mentions": .array([]),
            "mention_everyone": .bool(false),
            "attachments": .array([]),
            "tts": .bool(false),
            "pinned": .bool(false),
            "flags": .number(0),
            "timestamp": .string(Timestamp.rfc3339(Date())),
        ])
        return .init(vendor: "discord", status: 200, body: json(answer))
    }

    /// The first limit the message breaks, as Discord nests it in `errors`
    /// (`{"embeds": {"0": {"title": {"_errors": [...]}}}}`), or nil. Lengths are counted in code
    /// points after trimming whitespace at the ends, as Discord does [DC2].
    static func limitProblem(content: String, embeds: [JSONValue]) -> JSONValue? {
        func tooLong(_ limit: Int) -> JSONValue {
            .object(["_errors": .array([.object([
                "code": .string("BASE_TYPE_MAX_LENGTH"), "message": .string("Must be \(limit) or fewer in length."),
            ])])])
        }
        func required() -> JSONValue {
            .object(["_errors": .array([.object([
                "code": .string("BASE_TYPE_REQUIRED"), "message": .string("This field is required"),
            ])])])
        }
        if length(content) > maxContent { return .object(["content": tooLong(maxContent)]) }
        if embeds.count > maxEmbeds { return .object(["embeds": tooLong(maxEmbeds)]) }
        var total = 0
        for (index, embed) in embeds.enumerated() {
            func at(_ path: [String], _ error: JSONValue) -> JSONValue {
                var nested = error
                for key in path.reversed() { nested = .object([key: nested]) }
                return .object(["embeds": .object([String(index): nested])])
            }
            let title = embed["title"]?.stringValue ?? ""
            let description = embed["description"]?.stringValue ?? ""
            let footer = embed["footer"]?["text"]?.stringValue ?? ""
            let author = embed["author"]?["name"]?.stringValue ?? ""
            if length(title) > maxTitle { return at(["title"], tooLong(maxTitle)) }
            if length(description) > maxDescription { return at(["description"], tooLong(maxDescription)) }
            if length(footer) > maxFooter { return at(["footer", "text"], tooLong(maxFooter)) }
            if length(author) > maxAuthorName { return at(["author", "name"], tooLong(maxAuthorName)) }
            total += length(title) + length(description) + length(footer) + length(author)
            guard case .array(let fields)? = embed["fields"] else { continue }
            if fields.count > maxFields { return at(["fields"], tooLong(maxFields)) }
            for (fieldIndex, field) in fields.enumerated() {
                let name = field["name"]?.stringValue ?? ""
                let value = field["value"]?.stringValue ?? ""
                if trimmed(name).isEmpty { return at(["fields", String(fieldIndex), "name"], required()) }
                if trimmed(value).isEmpty { return at(["fields", String(fieldIndex), "value"], required()) }
                if length(name) > maxFieldName { return at(["fields", String(fieldIndex), "name"], tooLong(maxFieldName)) }
                if length(value) > maxFieldValue { return at(["fields", String(fieldIndex), "value"], tooLong(maxFieldValue)) }
                total += length(name) + length(value)
            }
        }
        if total > maxEmbedTotal {
            return .object(["embeds": .object(["_errors": .array([.object([
                "code": .string("MAX_EMBED_SIZE_EXCEEDED"), "message": .string("Embed size exceeds maximum size of \(maxEmbedTotal)"),
            ])])])])
        }
        return nil
    }

    static func trimmed(_ text: String) -> String { text.trimmingCharacters(in: .whitespacesAndNewlines) }

    static func length(_ text: String) -> Int { trimmed(text).unicodeScalars.count }

    static func json(_ value: JSONValue) -> String {
        (try? String(decoding: JSONEncoder.patchbay().encode(value), as: UTF8.self)) ?? "{}"
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
