import Foundation
import HTTPTypes
import PatchbayCore

/// Google Chat incoming webhook under `/googlechat/v1/spaces/<space>/messages`, with Google's error
/// shape `{"error": {"code", "message", "status"}}`. A post is answered 200 with the message's
/// `name` and `thread.name` beside what was sent [GC2]; messages with the same `thread.threadKey`
/// land in the same thread. Of the query, only `messageReplyOption` is checked (key and token are
/// the webhook's credential and are not checked).
///
/// The body is checked against vendor-specs/googlechat/chat.v1.discovery.json (revision 20240709):
/// `resources.spaces.resources.messages.methods.create` (POST, query `messageReplyOption`,
/// request `Message`) and `schemas.Message`, `CardWithId`, `GoogleAppsCardV1Card`,
/// `GoogleAppsCardV1CardHeader`, `GoogleAppsCardV1Section`, `GoogleAppsCardV1Widget`,
/// `GoogleAppsCardV1TextParagraph`, `GoogleAppsCardV1DecoratedText`, `Thread`. Google's JSON parser
/// refuses names a schema does not have ("Invalid JSON payload received. Unknown name ...") and
/// takes proto names (`thread_key`) as well as JSON ones (SOURCES.md, freshness checks), so every
/// object here is closed; members of schemas Patchbay never sends are checked for being objects only.
enum GoogleChatEmulation {
    /// [GC2]
    static let maxMessageBytes = 32_000

    /// `GoogleAppsCardV1CardHeader`: `title` "Required."
    static let cardHeader: Shape = .onlyMembers(
        [
            "imageAltText": .plainText,
            "imageType": .oneOf(["SQUARE", "CIRCLE"]),
            "imageUrl": .plainText,
            "subtitle": .plainText,
            "title": .text(min: 1),
        ], required: ["title"])

    /// `GoogleAppsCardV1DecoratedText`: `text` "Required. The primary text."
    static let decoratedText: Shape = .onlyMembers(
        [
            "bottomLabel": .plainText,
            "button": .anyObject,
            "endIcon": .anyObject,
            "icon": .anyObject,
            "onClick": .anyObject,
            "startIcon": .anyObject,
            "switchControl": .anyObject,
            "text": .text(min: 1),
            "topLabel": .plainText,
            "wrapText": .boolean,
        ], required: ["text"])

    /// `GoogleAppsCardV1Widget`, with `GoogleAppsCardV1TextParagraph`.
    static let widget: Shape = .onlyMembers([
        "buttonList": .anyObject,
        "columns": .anyObject,
        "dateTimePicker": .anyObject,
        "decoratedText": decoratedText,
        "divider": .anyObject,
        "grid": .anyObject,
        "horizontalAlignment": .oneOf(["HORIZONTAL_ALIGNMENT_UNSPECIFIED", "START", "CENTER", "END"]),
        "image": .anyObject,
        "selectionInput": .anyObject,
        "textInput": .anyObject,
        "textParagraph": .onlyMembers(["text": .plainText]),
    ])

    /// `GoogleAppsCardV1Section`: widgets "Must contain at least one widget."
    static let section: Shape = .onlyMembers(
        [
            "collapsible": .boolean,
            "header": .plainText,
            "uncollapsibleWidgetsCount": .anyInteger,
            "widgets": .list(widget, min: 1),
        ], required: ["widgets"])

    /// `GoogleAppsCardV1Card`.
    static let card: Shape = .onlyMembers([
        "cardActions": .list(.anyObject),
        "displayStyle": .oneOf(["DISPLAY_STYLE_UNSPECIFIED", "PEEK", "REPLACE"]),
        "fixedFooter": .anyObject,
        "header": cardHeader,
        "name": .plainText,
        "peekCardHeader": cardHeader,
        "sectionDividerStyle": .oneOf(["DIVIDER_STYLE_UNSPECIFIED", "SOLID_DIVIDER", "NO_DIVIDER"]),
        "sections": .list(section),
    ])

    /// `Message`, with `CardWithId` and `Thread` (`threadKey` "Supports up to 4000 characters.").
    /// Output-only members are taken and ignored, as Google ignores them.
    static let message: Shape = .onlyMembers([
        "accessoryWidgets": .list(.anyObject),
        "actionResponse": .anyObject,
        "annotations": .list(.anyObject),
        "argumentText": .plainText,
        "attachedGifs": .list(.anyObject),
        "attachment": .list(.anyObject),
        "cards": .list(.anyObject),
        "cardsV2": .list(.onlyMembers(["card": card, "cardId": .plainText])),
        "clientAssignedMessageId": .plainText,
        "createTime": .plainText,
        "deleteTime": .plainText,
        "deletionMetadata": .anyObject,
        "emojiReactionSummaries": .list(.anyObject),
        "fallbackText": .plainText,
        "formattedText": .plainText,
        "lastUpdateTime": .plainText,
        "matchedUrl": .anyObject,
        "name": .plainText,
        "privateMessageViewer": .anyObject,
        "quotedMessageMetadata": .anyObject,
        "sender": .anyObject,
        "slashCommand": .anyObject,
        "space": .anyObject,
        "text": .plainText,
        "thread": .onlyMembers(["name": .plainText, "threadKey": .text(max: 4000)]),
        "threadReply": .boolean,
    ])

    /// `parameters.messageReplyOption.enum` of spaces.messages.create.
    static let replyOptions = ["MESSAGE_REPLY_OPTION_UNSPECIFIED", "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD", "REPLY_MESSAGE_OR_FAIL"]

    static func answer(
        method: String, parts: [String], query: String? = nil, body: String, headers: HTTPFields = HTTPFields(),
        nextID: inout Int
    ) -> Sink.Answer {
        func error(_ status: Int, _ message: String, _ code: String) -> Sink.Answer {
            .init(
                vendor: "googlechat", status: status,
                body: json(
                    .object([
                        "error": .object([
                            "code": .number(Double(status)), "message": .string(message), "status": .string(code),
                        ])
                    ])))
        }
        guard parts.count == 4, parts[0] == "v1", parts[1] == "spaces", !parts[2].isEmpty, parts[3] == "messages" else {
            return error(404, "Requested entity was not found.", "NOT_FOUND")
        }
        let space = parts[2]
        guard method == "POST" else { return error(405, "Method not allowed: messages take POST.", "INVALID_ARGUMENT") }
        if let option = SpecCheck.queryFields(query)["messageReplyOption"], !replyOptions.contains(option) {
            return error(
                400,
                "Invalid value at 'message_reply_option' (type.googleapis.com/google.chat.v1.CreateMessageRequest.MessageReplyOption), \"\(option)\"",
                "INVALID_ARGUMENT")
        }
        // A body of another declared type is not JSON to Google's parser; a missing type is read as JSON.
        if let type = SpecCheck.mediaType(headers), type != "application/json" {
            return error(400, "Invalid JSON payload received. Content-Type \(type) is not application/json.", "INVALID_ARGUMENT")
        }
        guard let parsed = try? JSONValue.parse(Data(body.utf8)), case .object(var message) = parsed else {
            return error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT")
        }
        if let problem = SpecCheck.problem(parsed, Self.message, dialect: .protoJSON) ?? cardIDProblem(message["cardsV2"] ?? message["cards_v2"]) {
            return error(400, describe(problem), "INVALID_ARGUMENT")
        }
        let hasText = !(message["text"]?.stringValue ?? "").isEmpty
        let hasCards: Bool = {
            if case .array(let cards)? = message["cardsV2"] ?? message["cards_v2"] { return !cards.isEmpty }
            return false
        }()
        guard hasText || hasCards else {
            return error(400, "Message cannot be empty. Discarded message has neither text nor cardsV2.", "INVALID_ARGUMENT")
        }
        guard body.utf8.count <= maxMessageBytes else {
            return error(400, "Message too large: \(body.utf8.count) bytes; the limit is \(maxMessageBytes).", "INVALID_ARGUMENT")
        }
        nextID += 1
        // A thread key maps to one thread of the space; without one each message starts its own.
        let threadID: String
        if let key = (message["thread"]?["threadKey"] ?? message["thread"]?["thread_key"])?.stringValue, !key.isEmpty {
            threadID = "t" + Data("\(space)/\(key)".utf8).sha256Hex.prefix(11)
        } else {
            threadID = "m\(nextID)"
        }
        message["name"] = .string("spaces/\(space)/messages/\(nextID)")
        message["thread"] = .object(["name": .string("spaces/\(space)/threads/\(threadID)")])
        message["space"] = .object(["name": .string("spaces/\(space)")])
        message["createTime"] = .string(Timestamp.rfc3339(Date()))
        return .init(vendor: "googlechat", status: 200, body: json(.object(message)))
    }

    /// `CardWithId.cardId`: "Required if the message contains multiple cards."
    static func cardIDProblem(_ cards: JSONValue?) -> SpecProblem? {
        guard case .array(let items)? = cards, items.count > 1 else { return nil }
        for (index, item) in items.enumerated() {
            let id = item["cardId"] ?? item["card_id"]
            if (id?.stringValue ?? "").isEmpty {
                return SpecProblem(
                    path: [.key("cardsV2"), .index(index), .key("cardId")], code: .required,
                    message: "is required when a message has more than one card")
            }
        }
        return nil
    }

    /// Google's wording: `Invalid JSON payload received. Unknown name "foo" at 'message.cardsV2[0]':
    /// Cannot find field.`, `Invalid value at 'message.text' (TYPE_STRING), ...`.
    static func describe(_ problem: SpecProblem) -> String {
        func at(_ path: [PathItem]) -> String {
            let location = SpecProblem(path: path, code: problem.code, message: "").location
            return location.isEmpty ? "message" : "message." + location
        }
        switch problem.code {
        case .unknownField:
            return "Invalid JSON payload received. Unknown name \"\(problem.field)\" at '\(at(Array(problem.path.dropLast())))': Cannot find field."
        case .type, .enumeration:
            return "Invalid value at '\(at(problem.path))': \(problem.message)"
        default:
            return "\(at(problem.path)) \(problem.message)"
        }
    }

    static func json(_ value: JSONValue) -> String {
        (try? String(decoding: JSONEncoder.patchbay().encode(value), as: UTF8.self)) ?? "{}"
    }
}
