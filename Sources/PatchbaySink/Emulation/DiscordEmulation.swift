import Foundation
import HTTPTypes
import PatchbayCore

/// Discord execute-webhook under `/discord/api/webhooks/<id>/<token>` (or `/discord/api/v10/…`),
/// with Discord's error shapes: a plain `{"message", "code"}`, or code 50035 "Invalid Form Body"
/// with the offending field under `errors` [DC1][DC2]. A post with `?wait=true` is answered 200
/// with the message object and its id; without it, 204 and no body, as Discord does. A message
/// may be edited by the webhook that sent it: `PATCH …/webhooks/<id>/<token>/messages/<message id>`
/// (`IncomingWebhookUpdateRequestPartial`: the same fields, all optional; query `thread_id` and
/// `with_components` only), answered 200 with the message; any other message is 404 "Unknown
/// Message" (code 10008).
///
/// Types, enums and the limits the text checks below do not cover are from
/// vendor-specs/discord/openapi.json: `paths./webhooks/{webhook_id}/{webhook_token}.post`
/// (query `wait`, `thread_id`, `with_components`; requestBody) and
/// `#/components/schemas/IncomingWebhookRequestPartial`, `RichEmbed`, `RichEmbedField`,
/// `RichEmbedFooter`, `RichEmbedAuthor`, `RichEmbedImage`, `RichEmbedThumbnail`,
/// `MessageAllowedMentionsRequest`, `AllowedMentionTypes`, `SnowflakeType`. The requestBody also
/// takes form and multipart bodies; the sink reads JSON only, and a body sent without a JSON
/// Content-Type is read as no message at all.
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

    /// `RichEmbedImage` and `RichEmbedThumbnail` (the same members).
    static let embedImage: Shape = .members([
        "url": .nullable(.text(max: 2048, format: .uri)),
        "width": .nullable(.anyInteger),
        "height": .nullable(.anyInteger),
        "placeholder": .nullable(.text(max: 64)),
        "placeholder_version": .nullable(.integer(min: 0, max: 2_147_483_647)),
        "is_animated": .nullable(.boolean),
        "description": .nullable(.text(max: 4096)),
    ])

    /// `RichEmbed`. The lengths of title, description, footer text, author name and field texts
    /// are checked by `limitProblem`, which trims first as Discord does.
    static let embed: Shape = .members([
        "type": .nullable(.text(max: 152_133)),
        "url": .nullable(.text(max: 2048, format: .uri)),
        "title": .nullable(.plainText),
        // An integer, 0...0xFFFFFF.
        "color": .nullable(.integer(min: 0, max: 16_777_215)),
        "timestamp": .nullable(.text(format: .dateTime)),
        "description": .nullable(.plainText),
        "author": .nullable(
            .members([
                "name": .nullable(.plainText),
                "url": .nullable(.text(max: 2048, format: .uri)),
                "icon_url": .nullable(.text(max: 2048, format: .uri)),
            ])),
        "image": .nullable(embedImage),
        "thumbnail": .nullable(embedImage),
        "footer": .nullable(
            .members([
                "text": .nullable(.plainText),
                "icon_url": .nullable(.text(max: 2048, format: .uri)),
            ])),
        // `RichEmbedField`: name and value required.
        "fields": .nullable(
            .list(
                .members(
                    ["name": .plainText, "value": .plainText, "inline": .nullable(.boolean)],
                    required: ["name", "value"]))),
        "provider": .nullable(.anyObject),
        "video": .nullable(.anyObject),
    ])

    /// `IncomingWebhookRequestPartial`. `content` length and the number of embeds are checked by
    /// `limitProblem`; components, attachments and polls are checked for their type only.
    static let message: Shape = .members([
        "content": .nullable(.plainText),
        "embeds": .nullable(.list(embed)),
        "allowed_mentions": .nullable(
            .members([
                "parse": .nullable(.list(.nullable(.oneOf(["users", "roles", "everyone"])), max: 1521)),
                "users": .nullable(.list(.nullable(.text(format: .snowflake)), max: 100)),
                "roles": .nullable(.list(.nullable(.text(format: .snowflake)), max: 100)),
                "replied_user": .nullable(.boolean),
            ])),
        "components": .nullable(.list(.anyObject, max: 40)),
        "attachments": .nullable(.list(.anyObject, max: 10)),
        "poll": .nullable(.anyObject),
        "tts": .nullable(.boolean),
        "flags": .nullable(.anyInteger),
        "username": .nullable(.text(min: 1, max: 80)),
        "avatar_url": .nullable(.text(max: 2048, format: .uri)),
        "thread_name": .nullable(.text(min: 0, max: 100)),
        "applied_tags": .nullable(.list(.text(format: .snowflake), max: 5)),
    ])

    static func answer(
        method: String, parts: [String], query: String? = nil, body: String, headers: HTTPFields = HTTPFields(),
        nextID: inout Int
    ) -> Sink.Answer {
        var messages: [String: JSONValue] = [:]
        return answer(method: method, parts: parts, query: query, body: body, headers: headers, nextID: &nextID, messages: &messages)
    }

    static func answer(
        method: String, parts: [String], query: String? = nil, body: String, headers: HTTPFields = HTTPFields(),
        nextID: inout Int, messages: inout [String: JSONValue]
    ) -> Sink.Answer {
        func error(_ status: Int, _ message: String, code: Int) -> Sink.Answer {
            .init(vendor: "discord", status: status, body: json(.object(["message": .string(message), "code": .number(Double(code))])))
        }
        // `api/webhooks/<id>/<token>`, optionally with a version segment after `api`.
        var rest = parts
        guard rest.first == "api" else { return error(404, "404: Not Found", code: 0) }
        rest.removeFirst()
        if let version = rest.first, version.hasPrefix("v"), Int(version.dropFirst()) != nil { rest.removeFirst() }
        guard rest.count == 3 || rest.count == 5, rest[0] == "webhooks", !rest[1].isEmpty, rest[1].allSatisfy(\.isASCIIDigit),
            !rest[2].isEmpty
        else {
            return error(404, "Unknown Webhook", code: 10015)
        }
        let webhookID = rest[1]
        // A message is the webhook's own: another token cannot see it.
        var editing: String?
        if rest.count == 5 {
            guard rest[3] == "messages", !rest[4].isEmpty, rest[4].allSatisfy(\.isASCIIDigit) else { return error(404, "404: Not Found", code: 0) }
            guard method == "PATCH" else { return error(405, "405: Method Not Allowed", code: 0) }
            let key = "\(webhookID)/\(rest[2])/\(rest[4])"
            guard messages[key] != nil else { return error(404, "Unknown Message", code: 10008) }
            editing = key
        } else {
            guard method == "POST" else { return error(405, "405: Method Not Allowed", code: 0) }
        }
        let queryFields = SpecCheck.queryFields(query)
        if editing != nil, let name = queryFields.keys.sorted().first(where: { !["thread_id", "with_components"].contains($0) }) {
            return .init(
                vendor: "discord", status: 400,
                body: json(invalidFormBody(SpecProblem(path: [.key(name)], code: .unknownField, message: "Unknown query parameter."))))
        }
        if let problem = queryProblem(queryFields) {
            return .init(vendor: "discord", status: 400, body: json(invalidFormBody(problem)))
        }
        guard SpecCheck.isJSON(headers) else { return error(400, "Cannot send an empty message", code: 50006) }
        guard let parsed = try? JSONValue.parse(Data(body.utf8)), case .object(let message) = parsed else {
            return error(400, "The request body contains invalid JSON.", code: 50109)
        }
        if let problem = SpecCheck.problem(parsed, Self.message) ?? mentionsProblem(message["allowed_mentions"]) {
            return .init(vendor: "discord", status: 400, body: json(invalidFormBody(problem)))
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
        let hasPoll = message["poll"].map { $0 != .null } ?? false
        guard editing != nil || !trimmed(content).isEmpty || !embeds.isEmpty || hasComponents || hasPoll else {
            return error(400, "Cannot send an empty message", code: 50006)
        }
        if let problem = limitProblem(content: content, embeds: embeds) {
            return .init(
                vendor: "discord", status: 400,
                body: json(
                    .object([
                        "code": .number(50035), "message": .string("Invalid Form Body"), "errors": problem,
                    ])))
        }
        // Every embed a webhook sends is a rich one [DC1].
        let stored = embeds.map { embed -> JSONValue in
            guard case .object(var fields) = embed else { return embed }
            fields["type"] = .string("rich")
            return .object(fields)
        }
        if let editing, case .object(var message)? = messages[editing] {
            // Only the fields the edit names change.
            if parsed["content"] != nil { message["content"] = .string(content) }
            if parsed["embeds"] != nil { message["embeds"] = .array(stored) }
            message["edited_timestamp"] = .string(Timestamp.rfc3339(Date()))
            messages[editing] = .object(message)
            return .init(vendor: "discord", status: 200, body: json(.object(message)))
        }
        nextID += 1
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
        if messages.count < 100_000 { messages["\(webhookID)/\(rest[2])/\(nextID)"] = answer }
        // Without `wait` Discord answers 204 and no message, and a failure to save goes unseen [DC1].
        let wait = queryFields["wait"].map { ["true", "1"].contains($0.lowercased()) } ?? false
        guard wait else { return .init(vendor: "discord", status: 204, body: "") }
        return .init(vendor: "discord", status: 200, body: json(answer))
    }

    /// The first limit the message breaks, as Discord nests it in `errors`
    /// (`{"embeds": {"0": {"title": {"_errors": [...]}}}}`), or nil. Lengths are counted in code
    /// points after trimming whitespace at the ends, as Discord does [DC2].
    static func limitProblem(content: String, embeds: [JSONValue]) -> JSONValue? {
        func tooLong(_ limit: Int) -> JSONValue {
            .object([
                "_errors": .array([
                    .object([
                        "code": .string("BASE_TYPE_MAX_LENGTH"), "message": .string("Must be \(limit) or fewer in length."),
                    ])
                ])
            ])
        }
        func required() -> JSONValue {
            .object([
                "_errors": .array([
                    .object([
                        "code": .string("BASE_TYPE_REQUIRED"), "message": .string("This field is required"),
                    ])
                ])
            ])
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
            return .object([
                "embeds": .object([
                    "_errors": .array([
                        .object([
                            "code": .string("MAX_EMBED_SIZE_EXCEEDED"), "message": .string("Embed size exceeds maximum size of \(maxEmbedTotal)"),
                        ])
                    ])
                ])
            ])
        }
        return nil
    }

    /// `wait` and `with_components` are booleans, `thread_id` a snowflake (the operation's
    /// `parameters`).
    static func queryProblem(_ query: [String: String]) -> SpecProblem? {
        for name in ["wait", "with_components"] {
            if let value = query[name], !["true", "false", "1", "0"].contains(value.lowercased()) {
                return SpecProblem(path: [.key(name)], code: .type, message: "Must be either true or false.")
            }
        }
        if let thread = query["thread_id"], !SpecCheck.matches(thread, .snowflake) {
            return SpecProblem(path: [.key("thread_id")], code: .format, message: "Value \"\(thread)\" is not snowflake.")
        }
        return nil
    }

    /// `parse` and explicit `users` / `roles` lists are mutually exclusive ([DC2],
    /// allowed-mentions object; from the docs, not the spec).
    static func mentionsProblem(_ mentions: JSONValue?) -> SpecProblem? {
        guard case .array(let parse)? = mentions?["parse"] else { return nil }
        for kind in ["users", "roles"] {
            guard parse.contains(.string(kind)), case .array(let listed)? = mentions?[kind], !listed.isEmpty else { continue }
            return SpecProblem(
                path: [.key("allowed_mentions"), .key(kind)], code: .enumeration,
                message: "parse:[\"\(kind)\"] and \(kind): [ids] are mutually exclusive.")
        }
        return nil
    }

    /// `{"code": 50035, "message": "Invalid Form Body", "errors": {"embeds": {"0": {"color": {"_errors": [...]}}}}}`,
    /// nested along the problem's path as Discord nests it [DC2]. BASE_TYPE_REQUIRED and
    /// BASE_TYPE_MAX_LENGTH are Discord's codes; the others are named in its style, not from a capture.
    static func invalidFormBody(_ problem: SpecProblem) -> JSONValue {
        let code =
            switch problem.code {
            case .required: "BASE_TYPE_REQUIRED"
            case .tooLong, .tooMany: "BASE_TYPE_MAX_LENGTH"
            case .tooShort, .tooFew: "BASE_TYPE_MIN_LENGTH"
            case .enumeration: "BASE_TYPE_CHOICES"
            case .range: "NUMBER_TYPE_OUT_OF_RANGE"
            case .format: "BASE_TYPE_INVALID_FORMAT"
            case .type, .unknownField: "BASE_TYPE_BAD_TYPE"
            }
        var nested: JSONValue = .object([
            "_errors": .array([
                .object([
                    "code": .string(code), "message": .string(problem.message),
                ])
            ])
        ])
        for item in problem.path.reversed() { nested = .object([item.text: nested]) }
        return .object(["code": .number(50035), "message": .string("Invalid Form Body"), "errors": nested])
    }

    /// Whitespace as Discord trims it: a zero-width space (U+200B) is not whitespace there, and is
    /// the usual way to send a field that looks empty (Foundation's set on Linux counts it).
    static let discordWhitespace: CharacterSet = {
        var set = CharacterSet.whitespacesAndNewlines
        set.remove(charactersIn: "\u{200B}\u{200C}\u{200D}\u{FEFF}")
        return set
    }()

    static func trimmed(_ text: String) -> String { text.trimmingCharacters(in: discordWhitespace) }

    static func length(_ text: String) -> Int { trimmed(text).unicodeScalars.count }

    static func json(_ value: JSONValue) -> String {
        (try? String(decoding: JSONEncoder.patchbay().encode(value), as: UTF8.self)) ?? "{}"
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
