import Foundation
import PatchbayCore

/// Discord channel webhook (`kind: discord`): one embed per event. The URL is the credential
/// (`https://discord.com/api/webhooks/{id}/{token}` [DC1]). Discord answers 204 with no body by
/// default, and a message that fails to save is then silently lost; `?wait=true` makes it answer
/// 200 with the message, or an error [DC1], so the request URL always carries it.
///
/// A webhook may edit the messages it sent (`PATCH …/messages/{id}` [DC1]), so it can keep a live
/// message per maintenance (`chat: {mode: live}`); a reply is a message of its own.
public struct DiscordTarget: MessageTarget, TemplatedTarget {
    public static let kind = "discord"
    /// Discord publishes no per-webhook figure ("don't hard-code", [DC3]); staff once said 5 per
    /// 2 s per webhook and 30 per minute per channel [DC4]. One request per 2 s stays under both.
    public static let defaultPolicy = TargetPolicy(pacing: PacingPolicy(rate: 0.5, burst: 2))
    public static let traits = TargetKindTraits(kind: kind, isChat: true)
    public static let templateKeys: Set<String> = ["title", "text", "facts"]
    public static let templateEscaping = TemplateEscaping(name: "PATCHBAY_DISCORD", escape: DiscordMarkdown.escape)

    public let name: String
    /// The webhook URL as configured.
    public let url: Secret
    /// The URL requests go to: `url` with `wait=true`. Held as a secret of its own, so the
    /// redactor knows the exact text the transport may echo in an error.
    public let requestURL: Secret
    public var templates: MessageTemplates?
    public var kind: String { Self.kind }
    public var secrets: [Secret] { [url, requestURL] }

    public init(name: String, url: Secret) {
        self.name = name
        self.url = url
        self.requestURL = Secret(WebhookQuery.setting("wait", to: "true", in: url.reveal()))
    }

    /// Reads `targets.<name>`: `{kind: discord, url: https://discord.com/api/webhooks/<id>/<token>}`.
    public init?(name: String, section: ConfigSection) {
        section.allowOnly(TargetRegistry.commonKeys.union(["url"]))
        guard let url = section.secretURL("url") else { return nil }
        guard Self.isWebhookPath(url.reveal()) else {
            section.report("url", "expected a Discord webhook URL ending in /webhooks/<id>/<token> (value not shown: it is a secret)")
            return nil
        }
        self.init(name: name, url: url)
    }

    /// `…/webhooks/<id>/<token>`, under `/api/` or `/api/v10/` [DC1][DC5], or behind a path prefix (the local sink).
    static func isWebhookPath(_ url: String) -> Bool {
        guard let path = URLComponents(string: url)?.path else { return false }
        let segments = path.split(separator: "/")
        guard let index = segments.lastIndex(of: "webhooks") else { return false }
        return segments.count - index == 3
    }

    /// Webhooks sharing a URL share Discord's bucket [DC3], so they share one pace, whatever the
    /// targets are called. The query (`thread_id`, `wait`) does not change the bucket.
    public var pacingKey: String {
        var components = URLComponents(string: url.reveal())
        components?.query = nil
        components?.fragment = nil
        let base = components?.string ?? url.reveal()
        return "discord:" + Data(base.utf8).sha256Hex.prefix(16)
    }

    public var editsMessagesInPlace: Bool { true }

    public func planLive(_ event: PatchEvent, context: RenderContext, send: LiveSend) throws(RenderError) -> DeliveryStep {
        var content = LiveMessage(event: event, context: context).content(
            zone: context.displayTimeZone, markup: DiscordMarkdown.markup, budget: DiscordPayload.packageFieldBudget)
        content.apply(MessageTemplates.preferring(context.routeTemplates, over: templates)?.live, event: event, context: context)
        let post = try post(content, occurredAt: nil)
        let body = post.body
        var reply: (@Sendable (String) -> OutboundRequest)?
        if send.role == .reply {
            var own = context
            own.live = nil
            let message = try render(event, context: own)
            reply = { _ in message }
        }
        let url = url
        return LiveStep(
            post: post,
            edit: { id in
                let edit = Self.messageURL(url.reveal(), id: id)
                return OutboundRequest(
                    method: "PATCH", url: Secret(edit), displayURL: OutboundRequest.displayForm(of: edit),
                    headers: [HTTPHeader("Content-Type", "application/json; charset=utf-8")], body: body)
            },
            reply: reply, postedID: Self.postedID, isLost: Self.isLost
        ).step(held: context.followUp?.objectID, send: send)
    }

    /// `…/webhooks/{id}/{token}/messages/{message id}`, keeping only the query a PATCH takes
    /// (`thread_id`, for a webhook posting into a thread [DC1]).
    static func messageURL(_ webhook: String, id: String) -> String {
        guard var components = URLComponents(string: webhook) else { return webhook + "/messages/" + id }
        while components.percentEncodedPath.hasSuffix("/") { components.percentEncodedPath.removeLast() }
        components.percentEncodedPath += "/messages/" + id
        let kept = (components.percentEncodedQueryItems ?? []).filter { $0.name == "thread_id" }
        components.percentEncodedQueryItems = kept.isEmpty ? nil : kept
        components.fragment = nil
        return components.string ?? webhook + "/messages/" + id
    }

    /// The id of a posted message, when it is a snowflake (it goes into later request paths).
    static func postedID(_ response: TransportResponse) -> String? {
        guard let answer = try? JSONValue.parse(response.body), let id = answer["id"]?.stringValue, (1...20).contains(id.count),
            id.allSatisfy({ $0.isASCII && $0.isNumber })
        else { return nil }
        return id
    }

    /// A PATCH answered 404 "Unknown Message" (code 10008 [DC2]): the message was deleted.
    static func isLost(_ response: TransportResponse) -> Bool {
        guard response.status == 404, let answer = try? JSONValue.parse(response.body), case .number(let code)? = answer["code"] else {
            return false
        }
        return code == 10008
    }

    public func followUp(after response: TransportResponse, to request: OutboundRequest, event: PatchEvent, context: RenderContext) -> FollowUpState?
    {
        guard context.live != nil else { return summaryFollowUp(event: event, context: context) }
        // A webhook's answer carries no guild id, so there is no link to the message to keep.
        return LiveStep.followUp(
            after: response, to: request, held: context.followUp, state: LiveMessage(event: event, context: context).state.rawValue,
            postedID: Self.postedID, isLost: Self.isLost, link: { _ in nil })
    }

    /// On a live message's edit: a deleted message (10008) is posted anew; "too many edits to a
    /// message older than an hour" (30046 [DC2]) waits and tries again.
    public func classify(_ result: Result<TransportResponse, TransportFailure>, for request: OutboundRequest) -> DeliveryOutcome {
        if LiveStep.Link(request) == .edit, case .success(let response) = result {
            if Self.isLost(response) { return .delivered(reason: ResponseRule.Reason.nothingToSend) }
            if response.status == 400, let answer = try? JSONValue.parse(response.body), case .number(30046)? = answer["code"] {
                return .retry(after: .seconds(60), reason: ResponseRule.Reason.clientError)
            }
        }
        return classify(result)
    }

    public func render(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> OutboundRequest {
        var content = MessageText.content(
            for: event, context: context, markup: DiscordMarkdown.markup, packageBudget: DiscordPayload.packageFieldBudget)
        content.apply(MessageTemplates.preferring(context.routeTemplates, over: templates), event: event, context: context)
        return try post(content, occurredAt: event.occurredAt)
    }

    /// `content` as one embed, executed through the webhook (with `?wait=true`).
    func post(_ content: MessageContent, occurredAt: Date?) throws(RenderError) -> OutboundRequest {
        OutboundRequest(
            method: "POST", url: requestURL, displayURL: OutboundRequest.displayForm(of: url.reveal()),
            headers: [HTTPHeader("Content-Type", "application/json; charset=utf-8")],
            body: try JSONEncoder.encodePayload(DiscordPayload(content: content, occurredAt: occurredAt), kind: "Discord"))
    }

    /// Discord's 429 carries the exact wait in its JSON body as fractional seconds
    /// (`{"retry_after": 1.5}`), finer than the whole-second `Retry-After` header [DC3]; the body
    /// wins when it holds a sane number. A 404 means the webhook was deleted: Discord asks
    /// clients to stop using it [DC3], which the shared rule already makes permanent.
    public func classify(_ result: Result<TransportResponse, TransportFailure>) -> DeliveryOutcome {
        if case .success(let response) = result {
            if response.status == 429, let wait = Self.retryAfter(inBody: response.body) {
                return .retry(after: wait, reason: ResponseRule.Reason.rateLimited)
            }
            if response.status == 404 {
                return .permanent(reason: ResponseRule.Reason.clientError)
            }
        }
        return ResponseRule.classify(result)
    }

    /// `retry_after` from a 429 body, when it is a number of seconds in 0...86400. Anything else
    /// (missing, a string, negative, 1e300, a body cut short) is nil, so the header decides.
    static func retryAfter(inBody body: Data) -> Duration? {
        guard let json = try? JSONValue.parse(body), case .number(let seconds)? = json["retry_after"] else { return nil }
        return Self.duration(seconds: seconds)
    }

    /// Whole milliseconds, rounded up so a retry never comes early; nil outside 0...86400 s,
    /// where the conversion to an integer could trap.
    static func duration(seconds: Double) -> Duration? {
        guard seconds.isFinite, (0...86_400).contains(seconds) else { return nil }
        return .milliseconds(Int((seconds * 1000).rounded(.up)))
    }

    /// A success that used up the bucket says when it refills: `X-RateLimit-Remaining: 0` with
    /// `X-RateLimit-Reset-After` in fractional seconds [DC3]. Waiting that long avoids the 429.
    public func pause(after response: TransportResponse) -> Duration? {
        guard let remaining = response.header("X-RateLimit-Remaining").flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }),
            remaining <= 0,
            let resetAfter = response.header("X-RateLimit-Reset-After").flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) })
        else { return nil }
        return Self.duration(seconds: resetAfter)
    }
}

/// The execute-webhook body [DC1]: one rich embed, and `allowed_mentions` with an empty `parse`
/// list so nothing in it can ping anyone (webhooks parse user mentions by default [DC2]).
struct DiscordPayload: Encodable, Equatable {
    struct Field: Encodable, Equatable {
        var name: String
        var value: String
        var inline: Bool
    }

    struct Embed: Encodable, Equatable {
        var title: String
        var description: String?
        /// An integer, not a hex string [DC1][DC2].
        var color: Int
        var fields: [Field]
        /// ISO 8601 [DC1].
        var timestamp: String?
    }

    struct AllowedMentions: Encodable, Equatable {
        var parse: [String] = []
    }

    var embeds: [Embed]
    var allowedMentions = AllowedMentions()

    enum CodingKeys: String, CodingKey {
        case embeds
        case allowedMentions = "allowed_mentions"
    }

    /// A field value holds 1024 characters [DC2]; the package list leaves room for its
    /// "… and N more" line within that.
    static let packageFieldBudget = 1000

    init(content: MessageContent, occurredAt: Date?) {
        let color = Int(content.color, radix: 16).map { min(max($0, 0), 0xFFFFFF) } ?? 0
        var embed = Embed(
            title: content.title,
            description: content.text,
            color: color,
            fields: content.facts.map { Field(name: $0.title, value: $0.value, inline: content.shortFactTitles.contains($0.title)) },
            timestamp: occurredAt.map { Timestamp.rfc3339($0) }
        )
        DiscordLimits.fit(&embed)
        embeds = [embed]
    }
}

/// Discord refuses (400) an embed over its limits [DC1][DC2]: title 256, description 4096, 25
/// fields, field name 256 and value 1024, and 6000 for those texts together, counted after
/// trimming whitespace at the ends. Templates and long names can exceed them, so every text is
/// cut to fit rather than have the whole message refused.
///
/// Cuts fall between Characters, never inside one, so an emoji or an accented letter is never
/// split. Lengths are measured in UTF-16 code units: a Character is at least as many of those as
/// it has code points, so a text that fits by this count fits however Discord counts (Python
/// code points, or JavaScript's UTF-16). A cut text ends with "…".
enum DiscordLimits {
    static let maxTitle = 256
    static let maxDescription = 4096
    static let maxFields = 25
    static let maxFieldName = 256
    static let maxFieldValue = 1024
    static let maxTotal = 6000
    /// Discord requires a field's name and value to be non-empty; a zero-width space is the usual
    /// stand-in for a template that rendered nothing.
    static let emptyField = "\u{200B}"

    static func length(_ text: String) -> Int { text.utf16.count }

    /// `text` cut to at most `limit` UTF-16 units, on a Character boundary, ending in "…" when cut.
    static func truncated(_ text: String, to limit: Int) -> String {
        guard length(text) > limit else { return text }
        guard limit > 0 else { return "" }
        var result = ""
        var used = 0
        // Leave one unit for the ellipsis (U+2026 is a single UTF-16 unit).
        for character in text {
            let size = character.utf16.count
            if used + size > limit - 1 { break }
            result.append(character)
            used += size
        }
        return result + "…"
    }

    static func fit(_ embed: inout DiscordPayload.Embed) {
        func trimmed(_ text: String) -> String { text.trimmingCharacters(in: .whitespacesAndNewlines) }
        embed.title = truncated(trimmed(embed.title), to: maxTitle)
        if let text = embed.description.map(trimmed) {
            let cut = truncated(text, to: maxDescription)
            embed.description = cut.isEmpty ? nil : cut
        }
        embed.fields = embed.fields.prefix(maxFields).map { field in
            var field = field
            let name = truncated(trimmed(field.name), to: maxFieldName)
            let value = truncated(trimmed(field.value), to: maxFieldValue)
            field.name = name.isEmpty ? emptyField : name
            field.value = value.isEmpty ? emptyField : value
            return field
        }
        // Over the total: take from the field values, last first (the package list is the last
        // and longest), then the field names; the sentence goes last, before only the title.
        func excess() -> Int {
            let sum =
                length(embed.title) + length(embed.description ?? "")
                + embed.fields.reduce(0) { $0 + length($1.name) + length($1.value) }
            return sum - maxTotal
        }
        for index in embed.fields.indices.reversed() where excess() > 0 {
            let value = embed.fields[index].value
            embed.fields[index].value = truncated(value, to: max(1, length(value) - excess()))
        }
        for index in embed.fields.indices.reversed() where excess() > 0 {
            let name = embed.fields[index].name
            embed.fields[index].name = truncated(name, to: max(1, length(name) - excess()))
        }
        if excess() > 0, let text = embed.description {
            let cut = truncated(text, to: max(0, length(text) - excess()))
            embed.description = cut.isEmpty ? nil : cut
        }
        if excess() > 0 {
            embed.title = truncated(embed.title, to: max(1, length(embed.title) - excess()))
        }
    }
}

/// Discord Markdown: backslash-escape every character that formats, keep user text on one line
/// (a line start could begin a heading, list or quote), and break `@` mentions.
public enum DiscordMarkdown {
    /// The Markdown specials, plus `<`: `<@id>`, `<#channel>`, `<t:…>` and `<:emoji:id>` are
    /// Discord's mention and timestamp syntax. Discord un-escapes a backslash before any ASCII
    /// punctuation, so the escapes never show.
    static let special: Set<Unicode.Scalar> = ["\\", "*", "_", "~", "`", "|", ">", "#", "[", "]", "(", ")", "-", "<"]

    /// Zero-width space: `@​everyone` no longer matches a mention, and reads the same.
    static let mentionBreaker: Unicode.Scalar = "\u{200B}"

    /// Works on Unicode scalars, not Characters: a `*` followed by a combining mark is one
    /// Character, but Discord's parser still sees the `*`.
    @Sendable public static func escape(_ text: String) -> String {
        var result = String.UnicodeScalarView()
        var previousWasCarriageReturn = false
        for scalar in text.unicodeScalars {
            defer { previousWasCarriageReturn = scalar == "\r" }
            switch scalar {
            case "\n" where previousWasCarriageReturn:
                continue
            case "\n", "\r", "\u{0B}", "\u{0C}", "\u{85}", "\u{2028}", "\u{2029}":
                result.append(" ")
            case "@":
                result.append(scalar)
                result.append(mentionBreaker)
            default:
                if special.contains(scalar) { result.append("\\") }
                result.append(scalar)
            }
        }
        return String(result)
    }

    public static let markup = Markup(escape: escape, emphasize: { "**\($0)**" })
}

/// Adds a query item to a webhook URL whose path and query are the credential.
enum WebhookQuery {
    /// `url` with `name=value`. When absent it is appended to the text as is, so the configured
    /// URL stays a prefix of the result (its key and token untouched, not re-encoded); when
    /// present with another value, that value is replaced. `name` and `value` are our own
    /// constants and need no encoding.
    static func setting(_ name: String, to value: String, in url: String) -> String {
        guard var components = URLComponents(string: url) else { return url }
        var items = components.percentEncodedQueryItems ?? []
        if let index = items.firstIndex(where: { $0.name == name }) {
            guard items[index].value != value else { return url }
            items[index].value = value
            components.percentEncodedQueryItems = items
            return components.string ?? url
        }
        if components.fragment == nil {
            let separator: String
            if components.percentEncodedQuery == nil {
                separator = "?"
            } else if url.hasSuffix("?") || url.hasSuffix("&") {
                separator = ""
            } else {
                separator = "&"
            }
            return url + separator + name + "=" + value
        }
        items.append(URLQueryItem(name: name, value: value))
        components.percentEncodedQueryItems = items
        return components.string ?? url
    }
}
