import Foundation
import PatchbayCore

/// Slack (`kind: slack`), through an incoming webhook (`url`, the credential; Slack answers 200
/// `ok` and returns no message id) or through the Web API with a bot token (`token` and `channel`:
/// `chat.postMessage`, which answers the message's `ts`). Every lifecycle step is a new message.
///
/// The Web API answers 200 even when it refuses: `{"ok": false, "error": "channel_not_found"}`.
/// `classify` reads the code (api.slack.com/web#errors, the methods' error lists): `ratelimited`
/// (and a 429) waits for Retry-After; Slack's own transient errors are retried; every other code
/// (`invalid_auth`, `channel_not_found`, `not_in_channel`, `msg_too_long`, …) is permanent, and the
/// attempt's detail names it.
///
/// Through the Web API it can keep a live message per maintenance (`chat: {mode: live}`):
/// `chat.postMessage` once, `chat.update` after, replies in the message's thread (`thread_ts`).
public struct SlackTarget: MessageTarget, TemplatedTarget {
    public static let kind = "slack"
    /// "1 per second, short bursts allowed": Slack's limit for incoming webhooks, and for
    /// `chat.postMessage` per channel (its "special" tier).
    public static let defaultPolicy = TargetPolicy(pacing: PacingPolicy(rate: 1, burst: 3))
    public static let traits = TargetKindTraits(kind: kind, isChat: true)
    public static let templateKeys: Set<String> = ["title", "text", "facts"]
    public static let templateEscaping = TemplateEscaping(name: "PATCHBAY_SLACK", escape: SlackEscaping.escape)
    public static let defaultAPIBaseURL = URL(string: "https://slack.com/api")!

    /// How messages reach Slack.
    public enum Channel: Sendable {
        case webhook(url: Secret)
        /// A bot token (`xoxb-…`) posting to a channel id through `baseURL/chat.postMessage`.
        case webAPI(token: Secret, channel: String, baseURL: URL)
    }

    public let name: String
    public let channel: Channel
    public var templates: MessageTemplates?
    public var kind: String { Self.kind }
    public var secrets: [Secret] {
        switch channel {
        case .webhook(let url): [url]
        case .webAPI(let token, _, _): [token]
        }
    }

    public init(name: String, url: Secret) {
        self.name = name
        self.channel = .webhook(url: url)
    }

    public init(name: String, token: Secret, channel: String, baseURL: URL = defaultAPIBaseURL) {
        self.name = name
        self.channel = .webAPI(token: token, channel: channel, baseURL: baseURL)
    }

    /// Reads `targets.<name>`: `{kind: slack, url: ...}` or `{kind: slack, token: xoxb-..., channel: C0123456789}`.
    public init?(name: String, section: ConfigSection) {
        section.allowOnly(TargetRegistry.commonKeys.union(["url", "token", "channel", "baseURL"]))
        if section.string("token") == nil && section.string("channel") == nil && section.string("baseURL") == nil {
            guard let url = section.secretURL("url") else { return nil }
            self.init(name: name, url: url)
            return
        }
        if section.string("url") != nil { section.report("url", "give url (an incoming webhook) or token and channel (the Web API), not both") }
        let token = section.secret("token", minimumLength: 10)
        if let token, !token.reveal().hasPrefix("xox") {
            section.report("token", "expected a Slack token (a bot token starts with xoxb-; value not shown)")
        }
        let channel = section.string("channel", required: true)
        if let channel, let problem = Self.channelProblem(channel) { section.report("channel", problem) }
        let baseURL = section.url("baseURL") ?? Self.defaultAPIBaseURL
        guard let token, token.reveal().hasPrefix("xox"), let channel, Self.channelProblem(channel) == nil, section.string("url") == nil else {
            return nil
        }
        self.init(name: name, token: token, channel: channel, baseURL: baseURL)
    }

    /// A channel id (`C0123456789`; `G…` private, `D…` a direct message) as the Web API wants it.
    static func channelProblem(_ channel: String) -> String? {
        let valid =
            channel.count >= 9 && channel.count <= 24 && channel.first.map { "CGD".contains($0) } == true
            && channel.allSatisfy { $0.isASCII && ($0.isUppercase || $0.isNumber) }
        return valid ? nil : "expected a channel id like C0123456789 (Slack: channel details → About), got '\(channel)'"
    }

    /// Messages to one channel through one token share a budget (`chat.postMessage`: about one
    /// per second per channel, api.slack.com/apis/rate-limits).
    public var pacingKey: String {
        switch channel {
        case .webhook: "\(kind):\(name)"
        case .webAPI(let token, let channel, _): "slack:" + Data("\(token.reveal())\n\(channel)".utf8).sha256Hex.prefix(16)
        }
    }

    /// The Web API at 50 a minute, short bursts allowed: a live message's `chat.update` is Tier 3
    /// ("50+ per minute", per method, app and workspace). Two live targets on one token share that
    /// tier at Slack; a 429 then pauses them (Retry-After). Webhooks keep the kind's 1/s.
    public var defaultPacing: PacingPolicy? {
        if case .webAPI = channel { return Self.webAPIPacing }
        return nil
    }

    public static let webAPIPacing = PacingPolicy(rate: 50.0 / 60.0, burst: 3)

    public var editsMessagesInPlace: Bool {
        if case .webAPI = channel { return true }
        return false
    }

    public func planLive(_ event: PatchEvent, context: RenderContext, send: LiveSend) throws(RenderError) -> DeliveryStep {
        guard case .webAPI(_, let channel, _) = channel else {
            return .refuse(reason: "a Slack incoming webhook cannot edit its messages; a live message needs token and channel (the Web API)")
        }
        let live = LiveMessage(event: event, context: context)
        var content = live.content(zone: context.displayTimeZone, markup: SlackEscaping.markup, budget: SlackPayload.packageFieldBudget)
        content.apply(MessageTemplates.preferring(context.routeTemplates, over: templates)?.live, event: event, context: context)
        let attachments = SlackPayload(content: content, occurredAt: nil).attachments
        let text = attachments.first?.fallback ?? ""
        let post = try webAPI("chat.postMessage", SlackWebAPIMessage(channel: channel, text: text, attachments: attachments))
        // The edit and the reply name the message once it is known: built (and checked) now with
        // a stand-in `ts`, which `with` replaces.
        let editBody = SlackWebAPIMessage(channel: channel, text: text, attachments: attachments, ts: "0")
        let edit = try webAPI("chat.update", editBody)
        var reply: (@Sendable (String) -> OutboundRequest)?
        if send.role == .reply {
            var own = context
            own.live = nil
            let replyAttachments = SlackPayload(
                event: event, context: own, templates: MessageTemplates.preferring(context.routeTemplates, over: templates)
            ).attachments
            // Failures and overruns also reach the channel; a reschedule stays in the thread.
            let broadcast = event.type == .failed || event.notice == .overrun
            let body = SlackWebAPIMessage(
                channel: channel, text: replyAttachments.first?.fallback ?? "", attachments: replyAttachments, thread_ts: "0",
                reply_broadcast: broadcast)
            let replyRequest = try webAPI("chat.postMessage", body)
            reply = { ts in Self.with(replyRequest, body: body, ts: nil, threadTS: ts) }
        }
        return LiveStep(
            post: post, edit: { ts in Self.with(edit, body: editBody, ts: ts, threadTS: nil) }, reply: reply,
            postedID: Self.postedTS, isLost: Self.isLost
        ).step(held: context.followUp?.objectID, send: send)
    }

    /// `request` with its body's `ts` or `thread_ts` set to the message's (known only once posted).
    static func with(_ request: OutboundRequest, body: SlackWebAPIMessage, ts: String?, threadTS: String?) -> OutboundRequest {
        var body = body
        if ts != nil { body.ts = ts }
        if threadTS != nil { body.thread_ts = threadTS }
        var request = request
        request.body = (try? JSONEncoder.patchbay().encode(body)) ?? request.body
        return request
    }

    /// The `ts` of a posted message, when it looks like one (`1700000000.000100`): it goes into
    /// later request bodies.
    static func postedTS(_ response: TransportResponse) -> String? {
        guard let answer = try? JSONValue.parse(response.body), let ts = answer["ts"]?.stringValue, ts.count <= 32,
            !ts.isEmpty, ts.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") })
        else { return nil }
        return ts
    }

    /// `chat.update` found no such message (deleted in the channel): a new live message is posted.
    static func isLost(_ response: TransportResponse) -> Bool {
        (try? JSONValue.parse(response.body))?["error"]?.stringValue == "message_not_found"
    }

    public func followUp(after response: TransportResponse, to request: OutboundRequest, event: PatchEvent, context: RenderContext) -> FollowUpState?
    {
        guard context.live != nil, case .webAPI(_, let channel, _) = channel else { return summaryFollowUp(event: event, context: context) }
        return LiveStep.followUp(
            after: response, to: request, held: context.followUp, state: LiveMessage(event: event, context: context).state.rawValue,
            postedID: Self.postedTS, isLost: Self.isLost,
            // Opens the channel in the user's workspace (api.slack.com/reference/deep-linking).
            link: { _ in "https://slack.com/app_redirect?channel=\(channel)" })
    }

    /// A Web API call with the bot token.
    private func webAPI(_ method: String, _ message: SlackWebAPIMessage) throws(RenderError) -> OutboundRequest {
        guard case .webAPI(let token, _, let baseURL) = channel else { throw RenderError("not a Web API target") }
        let url = baseURL.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/" + method
        return OutboundRequest(
            method: "POST", url: Secret(url), displayURL: OutboundRequest.displayForm(of: url),
            headers: [
                HTTPHeader("Authorization", "Bearer \(token.reveal())", isSecret: true),
                HTTPHeader("Content-Type", "application/json; charset=utf-8"),
            ],
            body: try JSONEncoder.encodePayload(message, kind: "Slack"))
    }

    public func render(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> OutboundRequest {
        let payload = SlackPayload(event: event, context: context, templates: MessageTemplates.preferring(context.routeTemplates, over: templates))
        switch channel {
        case .webhook(let url):
            return OutboundRequest(
                method: "POST", url: url, displayURL: OutboundRequest.displayForm(of: url.reveal()),
                headers: [HTTPHeader("Content-Type", "application/json; charset=utf-8")],
                body: try JSONEncoder.encodePayload(payload, kind: "Slack"))
        case .webAPI(_, let channel, _):
            let message = SlackWebAPIMessage(channel: channel, text: payload.attachments.first?.fallback ?? "", attachments: payload.attachments)
            return try webAPI("chat.postMessage", message)
        }
    }

    public func classify(_ result: Result<TransportResponse, TransportFailure>) -> DeliveryOutcome {
        guard case .webAPI = channel, case .success(let response) = result, response.status == 200 else { return ResponseRule.classify(result) }
        return SlackWebAPI.classify(response)
    }

    /// An edit of a live message that is gone is not a failure: the step posts a new one.
    public func classify(_ result: Result<TransportResponse, TransportFailure>, for request: OutboundRequest) -> DeliveryOutcome {
        if LiveStep.Link(request) == .edit, case .success(let response) = result, response.status == 200, Self.isLost(response) {
            return .delivered(reason: ResponseRule.Reason.nothingToSend)
        }
        return classify(result)
    }
}

/// A `chat.postMessage` or `chat.update` body: the channel, a plain `text` (what notifications
/// and screen readers show; Slack warns when a message with attachments has none) and the
/// attachment; `ts` names the message an update edits, `thread_ts` the one a reply goes under.
struct SlackWebAPIMessage: Encodable {
    var channel: String
    var text: String
    var attachments: [SlackPayload.Attachment]
    var ts: String? = nil
    var thread_ts: String? = nil
    var reply_broadcast: Bool? = nil
}

/// What a Web API answer means. Slack answers 200 with `ok: false` and an error code.
public enum SlackWebAPI {
    /// Slack's own transient failures (api.slack.com/web#errors): worth trying again.
    static let transient: Set<String> = ["internal_error", "fatal_error", "service_unavailable", "request_timeout"]

    public static func classify(_ response: TransportResponse) -> DeliveryOutcome {
        guard let answer = try? JSONValue.parse(response.body), case .bool(let ok)? = answer["ok"] else {
            // A 200 that is not a Web API answer (a proxy's page): not delivered, and not worth
            // repeating until someone looks.
            return .permanent(reason: ResponseRule.Reason.clientError)
        }
        if ok { return .delivered(reason: ResponseRule.Reason.delivered) }
        let code = answer["error"]?.stringValue ?? ""
        if code == "ratelimited" || code == "rate_limited" {
            return .retry(after: RetryAfter.parse(response.header("Retry-After"), now: Date()), reason: ResponseRule.Reason.rateLimited)
        }
        if transient.contains(code) { return .retry(after: nil, reason: ResponseRule.Reason.serverError) }
        return .permanent(reason: ResponseRule.Reason.clientError)
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
        self.init(content: content, occurredAt: event.occurredAt)
    }

    init(content: MessageContent, occurredAt: Date?) {
        attachments = [
            Attachment(
                fallback: SlackEscaping.escape(content.fallback),
                color: "#" + content.color,
                title: content.title,
                text: content.text,
                fields: content.facts.map { Field(title: $0.title, value: $0.value, short: content.shortFactTitles.contains($0.title)) },
                mrkdwn_in: ["text"],
                ts: occurredAt.map { Int($0.timeIntervalSince1970) }
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
