import Foundation
import PatchbayCore

/// Google Chat incoming webhook under `/googlechat/v1/spaces/<space>/messages`, with Google's error
/// shape `{"error": {"code", "message", "status"}}`. A post is answered 200 with the message's
/// `name` and `thread.name` beside what was sent [GC2]; messages with the same `thread.threadKey`
/// land in the same thread. The query (key, token, messageReplyOption) does not reach the emulation.
enum GoogleChatEmulation {
    /// [GC2]
    static let maxMessageBytes = 32_000

    static func answer(method: String, parts: [String], body: String, nextID: inout Int) -> Sink.Answer {
        func error(_ status: Int, _ message: String, _ code: String) -> Sink.Answer {
            .init(vendor: "googlechat", status: status, body: json(.object(["error": .object([
                "code": .number(Double(status)), "message": .string(message), "status": .string(code),
            ])])))
        }
        guard parts.count == 4, parts[0] == "v1", parts[1] == "spaces", !parts[2].isEmpty, parts[3] == "messages" else {
            return error(404, "Requested entity was not found.", "NOT_FOUND")
        }
        let space = parts[2]
        guard method == "POST" else { return error(405, "Method not allowed: messages take POST.", "INVALID_ARGUMENT") }
        guard let parsed = try? JSONValue.parse(Data(body.utf8)), case .object(var message) = parsed else {
            return error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT")
        }
        let hasText = !(message["text"]?.stringValue ?? "").isEmpty
        let hasCards: Bool = {
            if case .array(let cards)? = message["cardsV2"] { return !cards.isEmpty }
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
        if let key = message["thread"]?["threadKey"]?.stringValue, !key.isEmpty {
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

    static func json(_ value: JSONValue) -> String {
        (try? String(decoding: JSONEncoder.patchbay().encode(value), as: UTF8.self)) ?? "{}"
    }
}
