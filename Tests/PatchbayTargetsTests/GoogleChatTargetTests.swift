import Foundation
import PatchbayCore
import PatchbayTestSupport
import Testing

@testable import PatchbayTargets

@Suite("Google Chat target")
struct GoogleChatTargetTests {
    static let canaryURL = "http://127.0.0.1:9/googlechat/v1/spaces/AAQAcanary/messages?key=canary-key-4e1f&token=canary-token-77b2%3D"
    let target = GoogleChatTarget(name: "ops-chat", url: Secret(canaryURL))
    let context = RenderContext(
        displayTimeZone: TimeZone(identifier: "America/Los_Angeles")!, deliveryID: "dlv_test",
        now: Date(timeIntervalSince1970: 1_796_000_000))
    let golden = Golden.directory("PatchbayTargetsTests/Golden/googlechat")

    static func card(_ body: Data) throws -> JSONValue {
        let json = try JSONDecoder().decode(JSONValue.self, from: body)
        return try #require(json["cardsV2"]?.first?["card"])
    }

    /// The texts of the card's widgets: the sentence, then every fact's label and value.
    static func widgetTexts(_ card: JSONValue) -> [String] {
        guard case .array(let sections)? = card["sections"], case .array(let widgets)? = sections.first?["widgets"] else { return [] }
        return widgets.flatMap { widget -> [String] in
            if let text = widget["textParagraph"]?["text"]?.stringValue { return [text] }
            return [widget["decoratedText"]?["topLabel"]?.stringValue, widget["decoratedText"]?["text"]?.stringValue].compactMap { $0 }
        }
    }

    /// Text with our own markup (`<b>`, `</b>`, `<br>`) and the four entities taken out: what is
    /// left must hold no markup character at all.
    static func bare(_ text: String) -> String {
        var text = text
        for own in ["<b>", "</b>", "<br>", "&amp;", "&lt;", "&gt;", "&quot;"] {
            text = text.replacingOccurrences(of: own, with: "")
        }
        return text
    }

    static func threadKey(_ body: Data) throws -> String? {
        try JSONDecoder().decode(JSONValue.self, from: body)["thread"]?["threadKey"]?.stringValue
    }

    // MARK: Goldens

    @Test(arguments: EventType.allCases)
    func matchesGoldenForEveryExample(_ type: EventType) throws {
        let event = try EventValidator().validate(body: Fixtures.exampleEvent(type))
        let request = try target.render(event, context: context)
        #expect(request.method == "POST")
        #expect(request.url.reveal() == Self.canaryURL + "&messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD")
        #expect(request.headers == [HTTPHeader("Content-Type", "application/json; charset=utf-8")])
        let mismatch = try Golden.mismatch(request.body, file: golden.appendingPathComponent("\(type.rawValue).json"))
        #expect(mismatch == nil, "\(mismatch ?? "")")
        let card = try Self.card(request.body)
        #expect(card["header"]?["title"]?.stringValue == MessageText.title(for: event))
        #expect(card["header"]?["subtitle"]?.stringValue == "App1 - Production")
    }

    @Test(arguments: EventType.allCases)
    func hostileTextMatchesGoldenAndStaysInert(_ type: EventType) throws {
        let event = Fixtures.hostileEvent(type)
        let request = try target.render(event, context: context)
        let mismatch = try Golden.mismatch(request.body, file: golden.appendingPathComponent("hostile-\(type.rawValue).json"))
        #expect(mismatch == nil, "\(mismatch ?? "")")
        let card = try Self.card(request.body)
        let subtitle = try #require(card["header"]?["subtitle"]?.stringValue)
        for text in Self.widgetTexts(card) + [subtitle] {
            let bare = Self.bare(text)
            #expect(
                !bare.contains("<") && !bare.contains(">") && !bare.contains("&") && !bare.contains("\""), "unescaped HTML in \(text.prefix(160))")
        }
        #expect(subtitle == "App &quot;1&quot; &lt;!channel&gt; &amp; &lt;@U0123&gt; - Prod uction :fire: 🚀")
        let sentence = try #require(Self.widgetTexts(card).first)
        #expect(sentence.contains("App &quot;1&quot; &lt;!channel&gt; &amp; &lt;@U0123&gt; - Prod uction :fire: 🚀"))
        if type == .failed {
            #expect(sentence.contains("line one line &quot;two&quot; &lt;!here&gt; &amp; &lt;/script&gt;"))
        }
        if event.instance != nil {
            #expect(sentence.contains("<b>web-1 &lt;https://evil.invalid|click me&gt; *now*</b>"))
        }
    }

    @Test(arguments: EventType.allCases)
    func customTemplateWithHostileTextMatchesGoldenAndStaysInert(_ type: EventType) throws {
        var templated = target
        templated.templates = try TemplateTests.compiled(TemplateTests.chatSources, kind: GoogleChatTarget.self)
        let request = try templated.render(TemplateTests.event(type), context: TemplateTests.context())
        let mismatch = try Golden.mismatch(request.body, file: golden.appendingPathComponent("template-hostile-\(type.rawValue).json"))
        #expect(mismatch == nil, "\(mismatch ?? "")")
        let card = try Self.card(request.body)
        for text in Self.widgetTexts(card) + [card["header"]?["title"]?.stringValue ?? ""] {
            let bare = Self.bare(text)
            #expect(
                !bare.contains("<") && !bare.contains(">") && !bare.contains("&") && !bare.contains("\""), "unescaped HTML in \(text.prefix(160))")
        }
        let texts = Self.widgetTexts(card)
        #expect(texts.first?.contains("failed: db-2 &lt;!here&gt; *x* &amp; &quot;q&quot;") == true)
        #expect(texts.contains("&lt;!subteam^S1&gt; *ops* `x` [a](b) &amp; &quot;c&quot;"))
        // The template's own line break becomes a card line break.
        #expect(texts.first?.contains("<br>Progress: 1 of 3 done") == true)
    }

    // MARK: Markup

    @Test func escapeUsesHTMLEntities() {
        #expect(GoogleChatText.escape("<b>a & \"b\"</b>\r\nnext\nlast") == "&lt;b&gt;a &amp; &quot;b&quot;&lt;/b&gt; next last")
        #expect(GoogleChatText.escape("&amp;") == "&amp;amp;")
        #expect(GoogleChatText.escape("plain 'text' *x*") == "plain 'text' *x*")
        #expect(GoogleChatText.markup.emphasize("web-1") == "<b>web-1</b>")
        #expect(GoogleChatTarget.templateEscaping.name == "PATCHBAY_GOOGLECHAT")
    }

    @Test func factsAreDecoratedTextsThatWrap() throws {
        let event = try EventValidator().validate(body: Fixtures.exampleEvent(.completed))
        let card = try Self.card(try target.render(event, context: context).body)
        guard case .array(let sections)? = card["sections"], case .array(let widgets)? = sections.first?["widgets"] else {
            Issue.record("no widgets")
            return
        }
        #expect(sections.count == 1)
        #expect(widgets.first?["textParagraph"]?["text"]?.stringValue?.hasPrefix("Patching of <b>web-1</b>") == true)
        let labels = widgets.dropFirst().map { $0["decoratedText"]?["topLabel"]?.stringValue }
        #expect(labels == ["App Name", "Instance Name", "Window", "Packages Updated"])
        #expect(widgets.dropFirst().allSatisfy { $0["decoratedText"]?["wrapText"] == .bool(true) })
        // Our package list breaks lines the way card text does.
        #expect(
            widgets.last?["decoratedText"]?["text"]?.stringValue
                == "openssl-3.0.8-1.amzn2023.0.14.x86_64<br>kernel-6.1.115-126.197.amzn2023.x86_64<br>curl-8.5.0-1.amzn2023.0.4.x86_64")
    }

    // MARK: Threads

    @Test func messagesOfOneMaintenanceShareAThread() throws {
        let started = try EventValidator().validate(body: Fixtures.exampleEvent(.started))
        var completed = try EventValidator().validate(body: Fixtures.exampleEvent(.completed))
        completed.instance = Instance(id: "i-other", name: "web-2")
        let first = try #require(try Self.threadKey(target.render(started, context: context).body))
        let second = try #require(try Self.threadKey(target.render(completed, context: context).body))
        #expect(first == second)
        #expect(first == GoogleChatTarget.threadKey(for: started))
        #expect(first.hasPrefix("patchbay-") && first.count == 9 + 32)
        #expect(first.dropFirst(9).allSatisfy { $0.isHexDigit && !$0.isUppercase })
        // A summary of the maintenance lands in the same thread.
        var digest = context
        digest.isSummary = true
        digest.maintenance = MaintenanceSnapshot(instances: [.init(instance: Instance(id: "i-0abc123"), lastType: .completed)])
        #expect(try Self.threadKey(target.render(completed, context: digest).body) == first)

        var otherWindow = completed
        otherWindow.window.id = "mw-9999"
        #expect(try Self.threadKey(target.render(otherWindow, context: context).body) != first)
        var otherApp = completed
        otherApp.app = "App2"
        #expect(GoogleChatTarget.threadKey(for: otherApp) != first)
    }

    @Test func theKeyDoesNotSpellOutTheMaintenance() {
        let event = Fixtures.hostileEvent(.started)
        let key = GoogleChatTarget.threadKey(for: event)
        #expect(!key.contains("App") && key.unicodeScalars.allSatisfy { $0.isASCII })
        #expect(key == "patchbay-" + Data(event.maintenanceKey.storageValue.utf8).sha256Hex.prefix(32))
    }

    // MARK: URL and size

    @Test func theURLKeepsKeyAndTokenAndAsksForThreadReplies() throws {
        let request = try target.render(Fixtures.hostileEvent(.started), context: context)
        let components = try #require(URLComponents(string: request.url.reveal()))
        let items = components.queryItems ?? []
        #expect(items.first { $0.name == "key" }?.value == "canary-key-4e1f")
        #expect(items.first { $0.name == "token" }?.value == "canary-token-77b2=")
        #expect(items.first { $0.name == "messageReplyOption" }?.value == "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD")
        #expect(components.path == "/googlechat/v1/spaces/AAQAcanary/messages")
        // The configured URL is kept byte for byte (its token's %3D is not re-encoded).
        #expect(request.url.reveal().hasPrefix(Self.canaryURL))
        // A URL that already says how to reply is corrected, not given the option twice.
        let already = GoogleChatTarget(
            name: "g", url: Secret("https://chat.googleapis.com/v1/spaces/S/messages?key=k&token=t&messageReplyOption=REPLY_MESSAGE_OR_FAIL"))
        let fixed = try #require(URLComponents(string: already.requestURL.reveal())?.queryItems)
        #expect(fixed.filter { $0.name == "messageReplyOption" }.map(\.value) == ["REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"])
        #expect(fixed.contains(URLQueryItem(name: "key", value: "k")) && fixed.contains(URLQueryItem(name: "token", value: "t")))
    }

    @Test func longPackageListsShrinkUntilTheMessageFits() throws {
        let request = try target.render(Fixtures.hostileEvent(.completed), context: context)
        #expect(request.body.count <= GoogleChatTarget.maxPayloadBytes)
        #expect(request.body.count <= 32_000)
        let texts = Self.widgetTexts(try Self.card(request.body))
        let packages = try #require(texts.last)
        #expect(packages.hasPrefix("evil &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;!channel&gt;<br>"))
        #expect(packages.components(separatedBy: "<br>").last?.hasPrefix("… and ") == true)
        #expect(texts.first?.contains("2000 packages updated") == true)
    }

    // MARK: Config, pacing, secrets

    @Test func readsItsConfigSection() {
        func parse(_ url: String) -> (GoogleChatTarget?, [ConfigProblem]) {
            let diagnostics = ConfigDiagnostics()
            let section = ConfigSection(
                path: "targets.g", value: .map([("kind", .scalar("googlechat")), ("url", .scalar(url))]), diagnostics: diagnostics)
            return (GoogleChatTarget(name: "g", section: section), diagnostics.problems)
        }
        let (parsed, problems) = parse(Self.canaryURL)
        #expect(parsed?.url.reveal() == Self.canaryURL && problems.isEmpty)
        let (refused, complaints) = parse("http://127.0.0.1:9/googlechat/v1/spaces/S/messages?key=canary-only-a-key")
        #expect(refused == nil)
        #expect(complaints.map(\.path) == ["targets.g.url"])
        #expect(complaints.allSatisfy { !$0.message.contains("canary") })
    }

    @Test func pacingIsPerSpace() {
        #expect(GoogleChatTarget.defaultPolicy.pacing == PacingPolicy(rate: 0.5, burst: 3))
        #expect(GoogleChatTarget.traits.isChat && GoogleChatTarget.traits.kind == "googlechat")
        let sameSpace = GoogleChatTarget(name: "other", url: Secret("http://127.0.0.1:9/googlechat/v1/spaces/AAQAcanary/messages?key=k2&token=t2"))
        let otherSpace = GoogleChatTarget(name: "ops-chat", url: Secret("http://127.0.0.1:9/googlechat/v1/spaces/BBBB/messages?key=k&token=t"))
        #expect(target.pacingKey == sameSpace.pacingKey)
        #expect(target.pacingKey != otherSpace.pacingKey)
        #expect(!target.pacingKey.contains("canary"))
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
        let redactor = Redactor(secrets: target.secrets)
        #expect(!redactor.redact("could not reach \(target.requestURL.reveal())").contains("canary"))
    }
}
