import Foundation
import PatchbayCore
import PatchbayTestSupport
import Testing

@testable import PatchbayTargets

@Suite("Discord target")
struct DiscordTargetTests {
    static let canaryURL = "http://127.0.0.1:9/discord/api/webhooks/112233445566/canary-secret-discord-5c1a"
    let target = DiscordTarget(name: "ops-discord", url: Secret(canaryURL))
    let context = RenderContext(
        displayTimeZone: TimeZone(identifier: "America/Los_Angeles")!, deliveryID: "dlv_test",
        now: Date(timeIntervalSince1970: 1_796_000_000))
    let golden = Golden.directory("PatchbayTargetsTests/Golden/discord")

    /// The one embed of a rendered body.
    static func embed(_ body: Data) throws -> JSONValue {
        let json = try JSONDecoder().decode(JSONValue.self, from: body)
        return try #require(json["embeds"]?.first)
    }

    /// Every text of an embed Discord renders: title, description, field names and values.
    static func texts(_ embed: JSONValue) -> [String] {
        var texts = [embed["title"]?.stringValue, embed["description"]?.stringValue]
        if case .array(let fields)? = embed["fields"] {
            texts += fields.flatMap { [$0["name"]?.stringValue, $0["value"]?.stringValue] }
        }
        return texts.compactMap { $0 }
    }

    /// The characters of `set` in `text` that no backslash escapes.
    static func unescaped(_ set: Set<Character>, in text: String) -> [Character] {
        var found: [Character] = []
        var escaped = false
        for character in text {
            if escaped {
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if set.contains(character) {
                found.append(character)
            }
        }
        return found
    }

    /// Whether every `@` is followed by the zero-width space that breaks a mention.
    static func mentionsBroken(_ text: String) -> Bool {
        let scalars = Array(text.unicodeScalars)
        return scalars.indices.allSatisfy { scalars[$0] != "@" || ($0 + 1 < scalars.count && scalars[$0 + 1] == "\u{200B}") }
    }

    // MARK: Goldens

    @Test(arguments: EventType.allCases)
    func matchesGoldenForEveryExample(_ type: EventType) throws {
        let event = try EventValidator().validate(body: Fixtures.exampleEvent(type))
        let request = try target.render(event, context: context)
        #expect(request.method == "POST")
        #expect(request.url.reveal() == Self.canaryURL + "?wait=true")
        #expect(request.headers.contains(HTTPHeader("Content-Type", "application/json; charset=utf-8")))
        let mismatch = try Golden.mismatch(request.body, file: golden.appendingPathComponent("\(type.rawValue).json"))
        #expect(mismatch == nil, "\(mismatch ?? "")")
        // Nothing in an ordinary message is near a limit: the texts go out whole.
        let content = MessageText.content(
            for: event, context: context, markup: DiscordMarkdown.markup,
            packageBudget: DiscordPayload.packageFieldBudget)
        let embed = try Self.embed(request.body)
        #expect(embed["description"]?.stringValue == content.text)
        #expect(embed["title"]?.stringValue == content.title)
    }

    @Test(arguments: EventType.allCases)
    func hostileTextMatchesGoldenAndStaysInert(_ type: EventType) throws {
        let request = try target.render(Fixtures.hostileEvent(type), context: context)
        let mismatch = try Golden.mismatch(request.body, file: golden.appendingPathComponent("hostile-\(type.rawValue).json"))
        #expect(mismatch == nil, "\(mismatch ?? "")")

        let json = try JSONDecoder().decode(JSONValue.self, from: request.body)
        #expect(json["allowed_mentions"]?["parse"] == .array([]))
        let embed = try Self.embed(request.body)
        for text in Self.texts(embed) {
            #expect(Self.mentionsBroken(text), "a mention survives in \(text.prefix(120))")
        }
        let description = try #require(embed["description"]?.stringValue)
        // User text stays on one line (a line start could begin a heading or a quote).
        #expect(!description.contains("\n") && embed["title"]?.stringValue?.contains("\n") == false)
        // Only our own emphasis (`**`) is bare; everything from the sender is escaped.
        #expect(Self.unescaped(["_", "`", "[", "]", "~", "|", "#", "<", ">"], in: description).isEmpty, "\(description.prefix(200))")
        #expect(description.contains(#"App "1" \<!channel\> & \<@\#u{200B}U0123\> \- Prod uction :fire: 🚀"#))
        guard case .array(let fields)? = embed["fields"] else {
            Issue.record("no fields")
            return
        }
        for field in fields {
            let value = field["value"]?.stringValue ?? ""
            #expect(Self.unescaped(["*", "_", "`", "[", "]", "~", "|", "#", "<", ">"], in: value).isEmpty, "\(value.prefix(200))")
        }
        if type == .completed {
            let packages = fields.last?["value"]?.stringValue ?? ""
            #expect(fields.last?["name"]?.stringValue == "Packages Updated")
            #expect(packages.contains(##"\*bold\* \_italic\_ \`code\` \[link\]\(https://example.invalid\) \# heading"##))
            #expect(packages.utf16.count <= DiscordLimits.maxFieldValue)
            #expect(packages.split(separator: "\n").last?.hasPrefix("… and ") == true)
        }
        if type == .failed {
            #expect(description.contains(#"line one line "two" \<!here\> & \</script\>"#))
        }
    }

    @Test(arguments: EventType.allCases)
    func customTemplateWithHostileTextMatchesGoldenAndStaysInert(_ type: EventType) throws {
        var templated = target
        templated.templates = try TemplateTests.compiled(TemplateTests.chatSources, kind: DiscordTarget.self)
        let request = try templated.render(TemplateTests.event(type), context: TemplateTests.context())
        let mismatch = try Golden.mismatch(request.body, file: golden.appendingPathComponent("template-hostile-\(type.rawValue).json"))
        #expect(mismatch == nil, "\(mismatch ?? "")")
        let embed = try Self.embed(request.body)
        for text in Self.texts(embed) {
            #expect(Self.mentionsBroken(text), "a mention survives in \(text.prefix(120))")
            #expect(Self.unescaped(["*", "_", "`", "[", "]", "|", "<", ">"], in: text).isEmpty, "\(text.prefix(200))")
        }
        let description = try #require(embed["description"]?.stringValue)
        #expect(description.contains(#"failed: db\-2 \<!here\> \*x\* & "q""#))
        guard case .array(let fields)? = embed["fields"] else {
            Issue.record("no fields")
            return
        }
        #expect(fields.map { $0["name"]?.stringValue } == ["Server", "Team", "Window (UTC)"])
        #expect(fields[1]["value"]?.stringValue == #"\<!subteam^S1\> \*ops\* \`x\` \[a\]\(b\) & "c""#)
    }

    // MARK: Markup

    @Test func escapeMakesMarkdownAndMentionsInert() {
        let hostile = "@everyone @here <@123> **x** [a](https://e) # h > q `c` ||s|| ~~t~~ _i_ a\\b - l\r\nnext\nlast"
        let expected =
            ##"@\##u{200B}everyone @\##u{200B}here \<@\##u{200B}123\> \*\*x\*\* \[a\]\(https://e\) \# h \> q \`c\` \|\|s\|\| \~\~t\~\~ \_i\_ a\\b \- l next last"##
        #expect(DiscordMarkdown.escape(hostile) == expected)
        // A combining mark makes `*́` one Character, but Discord still sees the asterisk.
        #expect(DiscordMarkdown.escape("*\u{301}x*\u{301}") == "\\*\u{301}x\\*\u{301}")
        #expect(DiscordMarkdown.markup.emphasize("web\\-1") == "**web\\-1**")
        #expect(DiscordTarget.templateEscaping.name == "PATCHBAY_DISCORD")
    }

    @Test func mentionsInNamesNeverPing() throws {
        let start = Timestamp.parseRFC3339("2026-12-04T08:30:00Z")!
        let event = PatchEvent(
            type: .failed, app: "@everyone", environment: "@here",
            instance: Instance(id: "i-1", name: "<@123456789> <@&42> <#7>"),
            window: MaintenanceWindow(start: start, end: start.addingTimeInterval(900)),
            details: ["reason": .string("ping @everyone\n# and @here")])
        let request = try target.render(event, context: context)
        let json = try JSONDecoder().decode(JSONValue.self, from: request.body)
        #expect(json["allowed_mentions"] == .object(["parse": .array([])]))
        let embed = try Self.embed(request.body)
        for text in Self.texts(embed) {
            #expect(!text.contains("@everyone") && !text.contains("@here"), "\(text)")
            #expect(Self.mentionsBroken(text), "\(text)")
            #expect(Self.unescaped(["<", ">", "#"], in: text).isEmpty, "\(text)")
        }
        #expect(embed["description"]?.stringValue?.contains(##"\<@\##u{200B}123456789\> \<@\##u{200B}&42\> \<\#7\>"##) == true)
    }

    @Test(arguments: EventType.allCases)
    func colourIsTheIntegerOfTheHexColour(_ type: EventType) throws {
        let event = try EventValidator().validate(body: Fixtures.exampleEvent(type))
        let embed = try Self.embed(try target.render(event, context: context).body)
        let expected = try #require(Int(MessageText.color(for: event), radix: 16))
        #expect(embed["color"] == .number(Double(expected)))
        if type == .completed { #expect(embed["color"] == .number(3_061_373)) }  // 0x2EB67D
        if type == .failed { #expect(embed["color"] == .number(14_687_834)) }  // 0xE01E5A
    }

    @Test func timestampIsWhenTheEventHappened() throws {
        let event = try EventValidator().validate(body: Fixtures.exampleEvent(.completed))
        let embed = try Self.embed(try target.render(event, context: context).body)
        #expect(embed["timestamp"]?.stringValue == "2026-12-04T08:41:07Z")
        var undated = event
        undated.occurredAt = nil
        #expect(try Self.embed(try target.render(undated, context: context).body)["timestamp"] == nil)
    }

    @Test func appNameAndInstanceNameAreInlineFields() throws {
        let event = try EventValidator().validate(body: Fixtures.exampleEvent(.started))
        let embed = try Self.embed(try target.render(event, context: context).body)
        guard case .array(let fields)? = embed["fields"] else {
            Issue.record("no fields")
            return
        }
        for field in fields {
            let inline = ["App Name", "Instance Name"].contains(field["name"]?.stringValue ?? "")
            #expect(field["inline"] == .bool(inline), "\(field)")
        }
    }

    // MARK: Limits

    @Test func everyLimitHoldsWhateverTheContent() throws {
        let family = "👩‍👩‍👧"  // one Character, eight UTF-16 units
        let content = MessageContent(
            title: String(repeating: "T", count: 1000),
            color: "2EB67D",
            text: String(repeating: family, count: 1000),
            fallback: "f",
            facts: (0..<30).map { (title: "Name \($0) " + String(repeating: "n", count: 300), value: String(repeating: "v", count: 2000)) }
        )
        let embed = try #require(DiscordPayload(content: content, occurredAt: nil).embeds.first)
        #expect(embed.title.utf16.count <= DiscordLimits.maxTitle)
        #expect(embed.title.hasSuffix("…"))
        #expect((embed.description ?? "").utf16.count <= DiscordLimits.maxDescription)
        #expect(embed.fields.count == DiscordLimits.maxFields)
        for field in embed.fields {
            #expect(!field.name.isEmpty && field.name.utf16.count <= DiscordLimits.maxFieldName)
            #expect(!field.value.isEmpty && field.value.utf16.count <= DiscordLimits.maxFieldValue)
        }
        let total =
            embed.title.utf16.count + (embed.description ?? "").utf16.count
            + embed.fields.reduce(0) { $0 + $1.name.utf16.count + $1.value.utf16.count }
        #expect(total <= DiscordLimits.maxTotal)

        // A long description is cut between Characters: the emoji family is whole or gone.
        let emoji = MessageContent(title: "t", color: "2EB67D", text: String(repeating: family, count: 1000), fallback: "f", facts: [])
        let cut = try #require(DiscordPayload(content: emoji, occurredAt: nil).embeds.first?.description)
        #expect(cut.utf16.count <= DiscordLimits.maxDescription)
        #expect(cut.hasSuffix("…") && cut.dropLast().allSatisfy { String($0) == family })
        #expect(cut.count == 4095 / 8 + 1)
    }

    @Test func truncationNeverSplitsACharacter() {
        let family = "👩‍👩‍👧"
        #expect(DiscordLimits.truncated("short", to: 10) == "short")
        #expect(DiscordLimits.truncated(String(repeating: family, count: 3), to: 20) == family + family + "…")
        #expect(DiscordLimits.truncated(String(repeating: family, count: 3), to: 8) == "…")
        #expect(DiscordLimits.truncated("e\u{301}e\u{301}e\u{301}", to: 4) == "e\u{301}…")
        #expect(DiscordLimits.truncated("anything", to: 0) == "")
    }

    @Test func emptyTemplateValuesStillMakeAValidField() {
        let content = MessageContent(
            title: "Patching Complete", color: "2EB67D", text: "  ", fallback: "f",
            facts: [(title: "Team", value: ""), (title: " ", value: "x")])
        let embed = DiscordPayload(content: content, occurredAt: nil).embeds[0]
        #expect(embed.description == nil)
        #expect(embed.fields.map(\.value) == [DiscordLimits.emptyField, "x"])
        #expect(embed.fields.map(\.name) == ["Team", DiscordLimits.emptyField])
    }

    // MARK: Classification

    static func response(_ status: Int, _ body: String, headers: [HTTPHeader] = []) -> Result<TransportResponse, TransportFailure> {
        .success(TransportResponse(status: status, headers: headers, body: Data(body.utf8), latency: .zero))
    }

    @Test func rateLimitWaitsWhatTheBodySays() {
        let limited = #"{"message": "You are being rate limited.", "retry_after": 1.5, "global": false}"#
        #expect(target.classify(Self.response(429, limited)) == .retry(after: .milliseconds(1500), reason: .rateLimited))
        // The body's fraction wins over the header's whole seconds.
        #expect(
            target.classify(Self.response(429, #"{"retry_after": 0.25}"#, headers: [HTTPHeader("Retry-After", "1")]))
                == .retry(after: .milliseconds(250), reason: .rateLimited))
        // Without a usable body, the header decides, as for any vendor.
        #expect(
            target.classify(Self.response(429, "", headers: [HTTPHeader("Retry-After", "3")])) == .retry(after: .seconds(3), reason: .rateLimited))
        #expect(target.classify(Self.response(429, "<html>slow down</html>")) == .retry(after: nil, reason: .rateLimited))
    }

    @Test(arguments: [
        #"{"retry_after": 1e300}"#, #"{"retry_after": -2}"#, #"{"retry_after": 99999999999999999999999}"#,
        #"{"retry_after": 1e400}"#, #"{"retry_after": "1.5"}"#, #"{"retry_after": null}"#, #"{"retry_after": 86400.5}"#,
        #"{"retry_after": 1.5"#,
    ])
    func outlandishRetryAfterDoesNotTrap(_ body: String) {
        #expect(target.classify(Self.response(429, body)) == .retry(after: nil, reason: .rateLimited))
        #expect(
            target.classify(Self.response(429, body, headers: [HTTPHeader("Retry-After", "5")])) == .retry(after: .seconds(5), reason: .rateLimited))
    }

    @Test func durationsAreRangeChecked() {
        #expect(DiscordTarget.duration(seconds: .nan) == nil)
        #expect(DiscordTarget.duration(seconds: .infinity) == nil)
        #expect(DiscordTarget.duration(seconds: -0.001) == nil)
        #expect(DiscordTarget.duration(seconds: 0) == .zero)
        #expect(DiscordTarget.duration(seconds: 86_400) == .seconds(86_400))
        #expect(DiscordTarget.duration(seconds: 0.0004) == .milliseconds(1))
    }

    @Test func otherAnswersFollowTheSharedRule() {
        #expect(target.classify(Self.response(200, #"{"id": "1"}"#)) == .delivered(reason: .delivered))
        #expect(target.classify(Self.response(204, "")) == .delivered(reason: .delivered))
        // A deleted webhook: stop using it.
        #expect(target.classify(Self.response(404, #"{"message": "Unknown Webhook", "code": 10015}"#)) == .permanent(reason: .clientError))
        #expect(target.classify(Self.response(400, #"{"message": "Invalid Form Body", "code": 50035}"#)).label == "permanent")
        #expect(target.classify(Self.response(502, "")).label == "retry")
        #expect(
            target.classify(.failure(TransportFailure(kind: .timeout, message: "t", latency: .seconds(1)))) == .retry(after: nil, reason: .timeout))
    }

    @Test func anEmptiedBucketPausesTheWebhook() {
        func answer(_ remaining: String, _ resetAfter: String) -> TransportResponse {
            TransportResponse(
                status: 200, headers: [HTTPHeader("X-RateLimit-Remaining", remaining), HTTPHeader("X-RateLimit-Reset-After", resetAfter)],
                body: Data(), latency: .zero)
        }
        #expect(target.pause(after: answer("0", "0.731")) == .milliseconds(731))
        #expect(target.pause(after: answer("3", "0.731")) == nil)
        #expect(target.pause(after: answer("0", "1e308")) == nil)
        #expect(target.pause(after: answer("0", "soon")) == nil)
        #expect(target.pause(after: TransportResponse(status: 200, headers: [], body: Data(), latency: .zero)) == nil)
    }

    // MARK: URL, config, pacing, secrets

    @Test func theURLAsksDiscordToWaitAndKeepsItsQuery() {
        func requestURL(_ url: String) -> String { DiscordTarget(name: "d", url: Secret(url)).requestURL.reveal() }
        let base = "http://127.0.0.1:9/discord/api/webhooks/1/tok"
        #expect(requestURL(base) == base + "?wait=true")
        #expect(requestURL(base + "?thread_id=42") == base + "?thread_id=42&wait=true")
        #expect(requestURL(base + "?wait=true") == base + "?wait=true")
        let replaced = requestURL(base + "?wait=false&thread_id=42")
        #expect(replaced.contains("wait=true") && !replaced.contains("wait=false") && replaced.contains("thread_id=42"))
    }

    @Test func readsItsConfigSection() {
        func parse(_ url: String) -> (DiscordTarget?, [ConfigProblem]) {
            let diagnostics = ConfigDiagnostics()
            let section = ConfigSection(
                path: "targets.d", value: .map([("kind", .scalar("discord")), ("url", .scalar(url))]), diagnostics: diagnostics)
            return (DiscordTarget(name: "d", section: section), diagnostics.problems)
        }
        let (parsed, problems) = parse(Self.canaryURL)
        #expect(parsed?.url.reveal() == Self.canaryURL && problems.isEmpty)
        #expect(parse("https://discord.com/api/v10/webhooks/1/abc").0 != nil)
        let (refused, complaints) = parse("http://127.0.0.1:9/discord/canary-not-a-webhook")
        #expect(refused == nil)
        #expect(complaints.map(\.path) == ["targets.d.url"])
        #expect(complaints.allSatisfy { !$0.message.contains("canary") })
    }

    @Test func pacingFollowsTheWebhookNotTheTargetName() {
        #expect(DiscordTarget.defaultPolicy.pacing == PacingPolicy(rate: 0.5, burst: 2))
        #expect(DiscordTarget.traits.isChat && DiscordTarget.traits.kind == "discord")
        let same = DiscordTarget(name: "other", url: Secret(Self.canaryURL + "?thread_id=9"))
        let another = DiscordTarget(name: "ops-discord", url: Secret("http://127.0.0.1:9/discord/api/webhooks/998877/another-token"))
        #expect(target.pacingKey == same.pacingKey)
        #expect(target.pacingKey != another.pacingKey)
        #expect(target.pacingKey.hasPrefix("discord:") && !target.pacingKey.contains("canary"))
    }

    @Test func leaksNoSecret() throws {
        for type in EventType.allCases {
            let request = try target.render(Fixtures.hostileEvent(type), context: context)
            #expect(!String(decoding: request.body, as: UTF8.self).contains("canary"))
            #expect(request.displayURL == "http://127.0.0.1:9/…")
            #expect(!request.headers.contains { $0.value.contains("canary") })
        }
        #expect(!String(describing: target).contains("canary"))
        #expect(!String(reflecting: target).contains("canary"))
        // The transport may echo the URL it was sent to, `?wait=true` and all.
        let redactor = Redactor(secrets: target.secrets)
        #expect(!redactor.redact("could not reach \(target.requestURL.reveal())").contains("canary"))
    }
}
