import Foundation
import HTTPTypes
import PatchbayCore

/// Slack's Web API under `/slack-api/<method>` (a target's `baseURL: http://127.0.0.1:9090/slack-api`
/// stands for `https://slack.com/api`): `chat.postMessage` and `chat.update`, as strict as Slack.
///
/// Rules (slackapi/slack-api-specs `web-api/slack_web_openapi_v2.json`, the methods' pages): both
/// methods are POSTs with `Authorization: Bearer xox…` (else `not_authed`; a token that does not
/// start with `xoxb-` or `xoxp-` is `invalid_auth`); `channel` is required (`channel_not_found`);
/// a message needs `text`, `attachments` or `blocks` (`no_text`); the attachment and block shapes
/// are the webhook's. Every answer is HTTP 200 with `ok`, the refusals `{"ok": false, "error":
/// code}`. `chat.postMessage` answers `channel` and a new `ts`; `chat.update` needs the `ts` of a
/// message in that channel (`message_not_found`) and answers them again with the `text` and
/// `message` the spec requires of a success. A reply names its parent in `thread_ts`, which must
/// be a message of that channel (Slack would post an orphan; the sink refuses, so a test sees a
/// wrong id) with `reply_broadcast` a boolean. A channel named `C0NOTINCHAN` answers
/// `not_in_channel`, for tests.
enum SlackWebAPIEmulation {
    static func answer(_ request: EmulatedRequest, messages: inout [String: [String: JSONValue]], nextID: inout Int) -> Sink.Answer {
        func reply(_ fields: [String: JSONValue]) -> Sink.Answer {
            .init(vendor: "slack-api", status: 200, body: encode(.object(fields)))
        }
        func refuse(_ code: String) -> Sink.Answer { reply(["ok": .bool(false), "error": .string(code)]) }
        guard request.parts.count == 1, let method = request.parts.first, ["chat.postMessage", "chat.update"].contains(method) else {
            return refuse("unknown_method")
        }
        guard request.method == "POST" else { return refuse("invalid_request_method") }
        guard let authorization = request.headers[.authorization], authorization.hasPrefix("Bearer xox") else { return refuse("not_authed") }
        guard authorization.hasPrefix("Bearer xoxb-") || authorization.hasPrefix("Bearer xoxp-") else { return refuse("invalid_auth") }
        guard SpecCheck.isJSON(request.headers) else { return refuse("invalid_arguments") }
        guard case .object(var message)? = try? JSONValue.parse(Data(request.body.utf8)) else { return refuse("invalid_json") }
        guard let channel = message["channel"]?.stringValue, !channel.isEmpty else { return refuse("channel_not_found") }
        if channel == "C0NOTINCHAN" { return refuse("not_in_channel") }
        message["channel"] = nil
        let ts = message["ts"]?.stringValue
        message["ts"] = nil
        let threadTS = message["thread_ts"]
        message["thread_ts"] = nil
        if let broadcast = message["reply_broadcast"] {
            guard case .bool = broadcast, threadTS != nil else { return refuse("invalid_arguments") }
            message["reply_broadcast"] = nil
        }
        if let threadTS {
            guard method == "chat.postMessage", let parent = threadTS.stringValue, messages["\(channel)/\(parent)"] != nil else {
                return refuse(method == "chat.postMessage" ? "thread_not_found" : "invalid_arguments")
            }
        }
        if let problem = SpecCheck.problem(.object(message), SlackEmulation.message) {
            return refuse(problem.path.first.map { $0 == .key("blocks") } == true ? "invalid_blocks" : "invalid_arguments")
        }
        guard message["text"] != nil || message["attachments"] != nil || message["blocks"] != nil else { return refuse("no_text") }
        if let text = message["text"]?.stringValue, text.count > 40_000 { return refuse("msg_too_long") }
        switch method {
        case "chat.postMessage":
            nextID += 1
            let newTS = String(format: "1700000000.%06d", nextID)
            if messages.count < 100_000 { messages["\(channel)/\(newTS)"] = message }
            if let threadTS { message["thread_ts"] = threadTS }
            return reply(["ok": .bool(true), "channel": .string(channel), "ts": .string(newTS), "message": .object(message)])
        default:
            guard let ts, messages["\(channel)/\(ts)"] != nil else { return refuse("message_not_found") }
            messages["\(channel)/\(ts)"] = message
            return reply([
                "ok": .bool(true), "channel": .string(channel), "ts": .string(ts), "text": message["text"] ?? .string(""),
                "message": .object(message),
            ])
        }
    }

    private static func encode(_ value: JSONValue) -> String {
        (try? String(decoding: JSONEncoder().encode(value), as: UTF8.self)) ?? "{}"
    }
}
