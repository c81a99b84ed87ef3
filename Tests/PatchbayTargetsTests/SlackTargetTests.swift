import Foundation
import PatchbayCore
import PatchbayTestSupport
import Testing

@testable import PatchbayTargets

@Suite("Slack target")
struct SlackTargetTests {
    static let canaryURL = "http://127.0.0.1:9/slack/T0CANARY/B0CANARY/canary-secret-slack-9f8e7d"
    let target = SlackTarget(name: "ops-slack", url: Secret(canaryURL))
    let context = RenderContext(
        displayTimeZone: TimeZone(identifier: "America/Los_Angeles")!, deliveryID: "dlv_test",
        now: Date(timeIntervalSince1970: 1_796_000_000))
    let golden = Golden.directory("PatchbayTargetsTests/Golden/slack")

    @Test(arguments: EventType.allCases)
    func matchesGoldenForEveryExample(_ type: EventType) throws {
        let event = try EventValidator().validate(body: Fixtures.exampleEvent(type))
        let request = try target.render(event, context: context)
        #expect(request.method == "POST")
        #expect(request.url.reveal() == Self.canaryURL)
        #expect(request.headers.contains(HTTPHeader("Content-Type", "application/json; charset=utf-8")))
        let mismatch = try Golden.mismatch(request.body, file: golden.appendingPathComponent("\(type.rawValue).json"))
        #expect(mismatch == nil, "\(mismatch ?? "")")
    }

    @Test(arguments: EventType.allCases)
    func hostileTextMatchesGoldenAndStaysInert(_ type: EventType) throws {
        let request = try target.render(Fixtures.hostileEvent(type), context: context)
        let mismatch = try Golden.mismatch(request.body, file: golden.appendingPathComponent("hostile-\(type.rawValue).json"))
        #expect(mismatch == nil, "\(mismatch ?? "")")

        let json = try JSONDecoder().decode(JSONValue.self, from: request.body)
        guard case .array(let attachments)? = json["attachments"], let attachment = attachments.first else {
            Issue.record("no attachment")
            return
        }
        // Every string Slack parses must be free of raw control characters.
        var strings = [attachment["text"]?.stringValue, attachment["fallback"]?.stringValue]
        if case .array(let fields)? = attachment["fields"] {
            strings += fields.map { $0["value"]?.stringValue }
        }
        for text in strings.compactMap({ $0 }) {
            #expect(!text.contains("<"), "unescaped '<' in \(text.prefix(80))")
            #expect(!text.contains(">"), "unescaped '>' in \(text.prefix(80))")
            #expect(
                !text.replacingOccurrences(of: "&amp;", with: "").replacingOccurrences(of: "&lt;", with: "")
                    .replacingOccurrences(of: "&gt;", with: "").contains("&"))
        }
        #expect(attachment["fallback"]?.stringValue?.contains("&lt;!channel&gt;") == true)
    }

    @Test func longPackageListsAreCutWithACount() throws {
        let request = try target.render(Fixtures.hostileEvent(.completed), context: context)
        let json = try JSONDecoder().decode(JSONValue.self, from: request.body)
        guard case .array(let attachments)? = json["attachments"], case .array(let fields)? = attachments[0]["fields"],
            let packages = fields.last?["value"]?.stringValue
        else {
            Issue.record("no packages field")
            return
        }
        #expect(fields.last?["title"]?.stringValue == "Packages Updated")
        #expect(packages.count <= 3000)
        let lastLine = packages.split(separator: "\n").last.map(String.init) ?? ""
        #expect(lastLine.hasPrefix("… and "))
        let shown = packages.split(separator: "\n").count - 1
        #expect(lastLine == "… and \(2000 - shown) more")
        #expect(attachments[0]["text"]?.stringValue?.contains("2000 packages updated") == true)
    }

    @Test func windowIsShownInTheRouteZoneAndUTC() throws {
        let event = try EventValidator().validate(body: Fixtures.exampleEvent(.scheduled))
        let request = try target.render(event, context: context)
        let body = String(decoding: request.body, as: UTF8.self)
        #expect(body.contains("Fri 2026-12-04 00:30–00:45 PST (2026-12-04 08:30–08:45 UTC)"))
        let utc = try target.render(event, context: RenderContext(displayTimeZone: TimeZone(identifier: "UTC")!, deliveryID: "d", now: Date()))
        #expect(String(decoding: utc.body, as: UTF8.self).contains("\"Fri 2026-12-04 08:30–08:45 UTC\""))
    }

    @Test func leaksNoSecret() throws {
        for type in EventType.allCases {
            let request = try target.render(Fixtures.hostileEvent(type), context: context)
            #expect(!String(decoding: request.body, as: UTF8.self).contains("canary"))
            #expect(!request.displayURL.contains("canary"))
            #expect(!request.headers.contains { $0.value.contains("canary") })
        }
        #expect(!String(describing: target).contains("canary"))
        #expect(!String(reflecting: target).contains("canary"))
    }

    // MARK: Web API (bot token)

    static let bot = SlackTarget(
        name: "ops-bot", token: Secret("xoxb-canary-token-4d3c"), channel: "C0123456789", baseURL: URL(string: "http://127.0.0.1:9/slack-api")!)

    @Test func aBotTokenPostsThroughChatPostMessage() throws {
        let event = try EventValidator().validate(body: Fixtures.exampleEvent(.completed))
        let request = try Self.bot.render(event, context: context)
        #expect(request.url.reveal() == "http://127.0.0.1:9/slack-api/chat.postMessage")
        #expect(request.headers.contains { $0.name == "Authorization" && $0.isSecret && $0.value == "Bearer xoxb-canary-token-4d3c" })
        let body = try JSONValue.parse(request.body)
        #expect(body["channel"]?.stringValue == "C0123456789")
        #expect(body["text"]?.stringValue?.contains("Patching Complete") == true, "a plain text for notifications")
        #expect(!String(decoding: request.body, as: UTF8.self).contains("xoxb-"))
        #expect(Self.bot.secrets.map { $0.reveal() } == ["xoxb-canary-token-4d3c"])
    }

    static func answer(_ body: String, status: Int = 200, headers: [HTTPHeader] = []) -> Result<TransportResponse, TransportFailure> {
        .success(TransportResponse(status: status, headers: headers, body: Data(body.utf8), latency: .zero))
    }

    @Test func webAPIAnswersAreClassifiedByTheirErrorCode() {
        #expect(Self.bot.classify(Self.answer(#"{"ok":true,"channel":"C0123456789","ts":"1.2"}"#)).label == "delivered")
        let limited = Self.bot.classify(Self.answer(#"{"ok":false,"error":"ratelimited"}"#, headers: [HTTPHeader("Retry-After", "30")]))
        guard case .retry(let after, let reason) = limited else {
            Issue.record("ratelimited must wait, got \(limited)")
            return
        }
        #expect(after == .seconds(30) && reason.isRateLimit)
        #expect(Self.bot.classify(Self.answer("", status: 429, headers: [HTTPHeader("Retry-After", "5")])).reason.isRateLimit)
        #expect(Self.bot.classify(Self.answer(#"{"ok":false,"error":"internal_error"}"#)).label == "retry")
        for code in ["invalid_auth", "channel_not_found", "not_in_channel", "msg_too_long", "not_authed", "is_archived"] {
            #expect(Self.bot.classify(Self.answer(#"{"ok":false,"error":"\#(code)"}"#)).label == "permanent", "\(code)")
        }
        #expect(Self.bot.classify(Self.answer("<html>proxy</html>")).label == "permanent")
        #expect(target.classify(Self.answer("ok")).label == "delivered", "a webhook's plain ok is still delivered")
    }

    @Test func configChoosesWebhookOrWebAPIAndNamesWhatIsWrong() {
        func read(_ pairs: [(String, String)]) -> (SlackTarget?, [String]) {
            let diagnostics = ConfigDiagnostics()
            let section = ConfigSection(
                path: "targets.s", value: .map(pairs.map { (key: $0.0, value: ConfigValue.scalar($0.1)) }), diagnostics: diagnostics)
            return (SlackTarget(name: "s", section: section), diagnostics.problems.map(\.path))
        }
        let (bot, none) = read([("token", "xoxb-0123456789"), ("channel", "C0123456789")])
        #expect(none.isEmpty)
        guard case .webAPI(_, let channel, let base)? = bot?.channel else {
            Issue.record("expected the Web API")
            return
        }
        #expect(channel == "C0123456789" && base == SlackTarget.defaultAPIBaseURL)
        #expect(read([("token", "xoxb-0123456789"), ("channel", "#ops")]).1 == ["targets.s.channel"])
        #expect(read([("token", "hunter2-0123456789"), ("channel", "C0123456789")]).1 == ["targets.s.token"])
        #expect(
            read([("url", "https://hooks.slack.com/services/T/B/x"), ("token", "xoxb-0123456789"), ("channel", "C0123456789")]).1 == ["targets.s.url"]
        )
        #expect(read([("token", "xoxb-0123456789")]).1 == ["targets.s.channel"])
    }
}

@Suite("Response classification")
struct ResponseRuleTests {
    @Test(arguments: [
        (200, "delivered"), (202, "delivered"), (204, "delivered"),
        (301, "permanent"), (302, "permanent"), (400, "permanent"), (401, "permanent"), (404, "permanent"), (410, "permanent"),
        (408, "retry"), (420, "retry"), (425, "retry"), (429, "retry"), (500, "retry"), (502, "retry"), (503, "retry"),
    ])
    func statusCodes(_ status: Int, _ expected: String) {
        #expect(ResponseRule.classify(status: status, retryAfter: nil).label == expected)
    }

    @Test func transportFailuresAreRetried() {
        let timeout = ResponseRule.classify(.failure(TransportFailure(kind: .timeout, message: "t", latency: .seconds(1))))
        #expect(timeout == .retry(after: nil, reason: .timeout))
        let refused = ResponseRule.classify(.failure(TransportFailure(kind: .connect, message: "refused", latency: .zero)))
        #expect(refused == .retry(after: nil, reason: .connectionFailed))
    }

    @Test func retryAfterInSecondsOrAsAnHTTPDate() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(RetryAfter.parse("3", now: now) == .seconds(3))
        #expect(RetryAfter.parse("garbage", now: now) == nil)
        #expect(RetryAfter.parse(nil, now: now) == nil)
        let later = now.addingTimeInterval(120)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        #expect(RetryAfter.parse(formatter.string(from: later), now: now) == .seconds(120))
        #expect(ResponseRule.classify(status: 429, retryAfter: "7", now: now) == .retry(after: .seconds(7), reason: .rateLimited))
    }
}
