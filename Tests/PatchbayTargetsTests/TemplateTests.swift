import Foundation
import PatchbayCore
import PatchbayTestSupport
import Testing

@testable import PatchbayTargets

/// Custom wording: a template per kind, rendered with hostile text in every field. Golden files
/// pin the output, and each channel's escaping is checked to hold whatever the values hold.
extension JSONValue {
    /// The first element of an array value.
    var first: JSONValue? {
        if case .array(let elements) = self { return elements.first }
        return nil
    }
}

@Suite("Templates")
struct TemplateTests {
    static let chatSources = TemplateSources(
        texts: [
            "title": "{{title}} for {{system}}",
            "text": """
            {{#instance}}{{name}} ({{id}}){{/instance}}{{^instance}}all servers{{/instance}}: {{stage}} in {{window.text}}\
            {{#reason}} because {{reason}}{{/reason}}.\
            {{#packages.any}} {{packages.count}} packages: {{#packages.first}}{{.}}{{^last()}}, {{/last()}}{{/packages.first}}\
            {{#packages.hasMore}} and {{packages.more}} more{{/packages.hasMore}}{{/packages.any}}
            Progress: {{maintenance.completed}} of {{maintenance.instances}} done\
            {{#maintenance.anyFailed}}, failed: {{#maintenance.failedNames}}{{.}}{{^last()}}, {{/last()}}{{/maintenance.failedNames}}{{/maintenance.anyFailed}}\
            {{#links.status}} (status page {{links.status}}){{/links.status}}
            """,
        ],
        facts: [
            .init(title: "Server", value: "{{instance.displayName}}"),
            .init(title: "Team", value: "{{tags.team}}"),
            .init(title: "Window (UTC)", value: "{{window.start}} to {{window.end}}"),
        ],
        keyPath: "targets.x.templates")

    static let webhookSources = TemplateSources(
        texts: [
            "body": """
            {"text": "{{title}}: {{system}}", "instance": "{{instance.name}}", "reason": "{{reason}}", "team": "{{tags.team}}",
             "packages": {{packages.count}}, "first": [{{#packages.first}}"{{.}}"{{^last()}}, {{/last()}}{{/packages.first}}],
             "failed": [{{#maintenance.failedNames}}"{{.}}"{{^last()}}, {{/last()}}{{/maintenance.failedNames}}]}
            """
        ],
        keyPath: "targets.hook.templates")

    static let zone = TimeZone(identifier: "America/Los_Angeles")!
    static let hostileName = "db-2 <!here> *x* & \"q\""

    static func context() -> RenderContext {
        let snapshot = MaintenanceSnapshot(
            instances: [
                .init(instance: Instance(id: "i-1", name: "web-1"), lastType: .completed),
                .init(instance: Instance(id: "i-2", name: hostileName), lastType: .failed),
                .init(instance: Instance(id: "i-3"), lastType: .started),
            ], links: ["status": "https://stspg.io/abc?x=<1>&y=\"2\""])
        return RenderContext(
            displayTimeZone: zone, deliveryID: "dlv_template", now: Date(timeIntervalSince1970: 1_796_000_000),
            maintenance: snapshot)
    }

    static func event(_ type: EventType) -> PatchEvent {
        var event = Fixtures.hostileEvent(type)
        event.tags = ["team": "<!subteam^S1> *ops* `x` [a](b) & \"c\""]
        return event
    }

    static func compiled(_ sources: TemplateSources, kind: any RegisteredTarget.Type) throws -> MessageTemplates {
        let diagnostics = ConfigDiagnostics()
        let templates = TargetRegistry.compileTemplates(sources, for: kind, diagnostics: diagnostics, reportUnusedKeys: true)
        #expect(diagnostics.problems.isEmpty, "\(diagnostics.problems)")
        return try #require(templates)
    }

    @Test(arguments: EventType.allCases)
    func slackTemplatesEscapeEveryValue(_ type: EventType) throws {
        var target = SlackTarget(name: "ops", url: Secret("http://127.0.0.1:9/slack/T/B/x"))
        target.templates = try Self.compiled(Self.chatSources, kind: SlackTarget.self)
        let request = try target.render(Self.event(type), context: Self.context())
        let mismatch = try Golden.mismatch(
            request.body, file: Golden.directory("PatchbayTargetsTests/Golden/templates/slack/hostile-\(type.rawValue).json"))
        #expect(mismatch == nil, "\(mismatch ?? "")")
        let attachment = try JSONDecoder().decode(JSONValue.self, from: request.body)["attachments"]?.first
        var strings = [attachment?["title"]?.stringValue, attachment?["text"]?.stringValue]
        if case .array(let fields)? = attachment?["fields"] { strings += fields.map { $0["value"]?.stringValue } }
        for text in strings.compactMap({ $0 }) {
            #expect(!text.contains("<") && !text.contains(">"), "unescaped angle bracket in \(text.prefix(120))")
            let bare = text.replacingOccurrences(of: "&amp;", with: "").replacingOccurrences(of: "&lt;", with: "").replacingOccurrences(
                of: "&gt;", with: "")
            #expect(!bare.contains("&"), "unescaped & in \(text.prefix(120))")
        }
        let text = attachment?["text"]?.stringValue ?? ""
        #expect(text.contains("Progress: 1 of 3 done, failed: db-2 &lt;!here&gt; *x* &amp; \"q\""))
        #expect(text.contains("(status page https://stspg.io/abc?x=&lt;1&gt;&amp;y=\"2\")"))
        if type == .completed { #expect(text.contains("2000 packages: evil &lt;script&gt;") && text.contains(" and 1990 more")) }
    }

    @Test(arguments: [TeamsTarget.Format.adaptive, .messagecard], EventType.allCases)
    func teamsTemplatesEscapeMarkdown(_ format: TeamsTarget.Format, _ type: EventType) throws {
        var target = TeamsTarget(name: "ops", url: Secret("http://127.0.0.1:9/teams/x"), format: format)
        target.templates = try Self.compiled(Self.chatSources, kind: TeamsTarget.self)
        let request = try target.render(Self.event(type), context: Self.context())
        let file = Golden.directory("PatchbayTargetsTests/Golden/templates/teams-\(format.rawValue)/hostile-\(type.rawValue).json")
        let mismatch = try Golden.mismatch(request.body, file: file)
        #expect(mismatch == nil, "\(mismatch ?? "")")
        let body = String(decoding: request.body, as: UTF8.self)
        // Hostile values arrive backslash-escaped: no bare Markdown from a value survives.
        #expect(body.contains(#"db-2 \\<!here\\> \\*x\\* & \"q\""#), "failed instance not escaped for Markdown")
        #expect(body.contains(#"\\<!subteam^S1\\> \\*ops\\* \\`x\\` \\[a\\](b)"#), "tag not escaped for Markdown")
        #expect(!body.contains("<!here>") && !body.contains("*ops*"))
    }

    @Test(arguments: EventType.allCases)
    func webhookBodyTemplatesStayJSONWhateverTheValues(_ type: EventType) throws {
        var target = WebhookTarget(
            name: "hook", url: Secret("https://hooks.example.invalid/x"),
            secret: Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        target.templates = try Self.compiled(Self.webhookSources, kind: WebhookTarget.self)
        let event = Self.event(type)
        let request = try target.render(event, context: Self.context())
        let mismatch = try Golden.mismatch(
            request.body, file: Golden.directory("PatchbayTargetsTests/Golden/templates/webhook/hostile-\(type.rawValue).json"))
        #expect(mismatch == nil, "\(mismatch ?? "")")
        // The escaping is right exactly when every value decodes back to what the event held.
        let json = try JSONDecoder().decode(JSONValue.self, from: request.body)
        #expect(json["text"]?.stringValue == "\(MessageText.title(for: event)): \(event.systemName)")
        #expect(json["instance"]?.stringValue == (event.instance?.name ?? ""))
        #expect(json["reason"]?.stringValue == (MessageText.failureReason(event) ?? ""))
        #expect(json["team"]?.stringValue == event.tags["team"])
        #expect(json["failed"] == .array([.string(Self.hostileName)]))
        let first = Array(event.packages.prefix(TemplateValues.packagesShown)).map { JSONValue.string($0) }
        #expect(json["first"] == .array(first))
        #expect(request.headers.contains { $0.name == "webhook-signature" })
    }

    /// Without a body template, a webhook sends the event as the store holds it (the claim's
    /// encoded event), the same bytes encoding it would make; a body template still wins.
    @Test func aWebhookSendsTheStoredEventBytesUnlessATemplateSaysOtherwise() throws {
        var target = WebhookTarget(
            name: "hook", url: Secret("https://hooks.example.invalid/x"),
            secret: Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        let event = Self.event(.completed)
        var context = Self.context()
        let encoded = try target.render(event, context: context).body
        #expect(encoded == (try JSONEncoder.patchbay().encode(event)))
        context.encodedEvent = Data(#"{"stored":"as accepted"}"#.utf8)
        let stored = try target.render(event, context: context)
        #expect(stored.body == context.encodedEvent)
        #expect(stored.headers.contains { $0.name == "webhook-signature" }, "the stored bytes are what is signed")
        target.templates = try Self.compiled(Self.webhookSources, kind: WebhookTarget.self)
        #expect(try target.render(event, context: context).body != context.encodedEvent)
    }

    @Test func defaultWordingIsUntouchedWithoutTemplates() throws {
        let plain = SlackTarget(name: "ops", url: Secret("http://127.0.0.1:9/slack/T/B/x"))
        var templated = plain
        templated.templates = try Self.compiled(TemplateSources(texts: ["title": "Custom"], keyPath: "t"), kind: SlackTarget.self)
        let event = Self.event(.started)
        let before = try JSONDecoder().decode(JSONValue.self, from: plain.render(event, context: Self.context()).body)
        let after = try JSONDecoder().decode(JSONValue.self, from: templated.render(event, context: Self.context()).body)
        #expect(after["attachments"]?.first?["title"]?.stringValue == "Custom")
        #expect(after["attachments"]?.first?["text"] == before["attachments"]?.first?["text"])
        #expect(after["attachments"]?.first?["fields"] == before["attachments"]?.first?["fields"])
    }

    @Test func routeTemplatesWinOverTheTargetsOwn() throws {
        var target = SlackTarget(name: "ops", url: Secret("http://127.0.0.1:9/slack/T/B/x"))
        target.templates = try Self.compiled(TemplateSources(texts: ["title": "Target's"], keyPath: "t"), kind: SlackTarget.self)
        var context = Self.context()
        context.routeTemplates = try Self.compiled(TemplateSources(texts: ["title": "Route's"], keyPath: "r"), kind: SlackTarget.self)
        let body = try JSONDecoder().decode(JSONValue.self, from: target.render(Self.event(.started), context: context).body)
        #expect(body["attachments"]?.first?["title"]?.stringValue == "Route's")
        // Key by key: the target's text stays where the route has none.
        target.templates = try Self.compiled(
            TemplateSources(texts: ["title": "Target's", "text": "Target text"], keyPath: "t"), kind: SlackTarget.self)
        let merged = try JSONDecoder().decode(JSONValue.self, from: target.render(Self.event(.started), context: context).body)
        #expect(merged["attachments"]?.first?["title"]?.stringValue == "Route's")
        #expect(merged["attachments"]?.first?["text"]?.stringValue == "Target text")
    }

    /// A special character followed by a combining mark is one Character but still the special
    /// scalar to the channel: it must be escaped all the same.
    @Test func escapingWorksByScalarNotCharacter() {
        let quote = "\"\u{301} onmouseover=x"
        #expect(TemplateEscaping.html.escape(quote).hasPrefix("&quot;\u{301}"))
        #expect(SlackEscaping.escape("<\u{301}!channel>") == "&lt;\u{301}!channel&gt;")
        #expect(TeamsMarkdown.escape("*\u{301}bold*") == "\\*\u{301}bold\\*")
        #expect(TeamsMarkdown.escape("a\r\nb\nc") == "a b c")
    }

    @Test func unknownNamesAreFoundWithTheirLine() {
        let problems = TemplateCheck.problems(
            in: "{{title}}\n{{instnce.name}}\n{{#packages.first}}{{.}}{{name}}{{/packages.first}}\n{{instance.nmae}}")
        #expect(problems.map(\.line) == [2, 3, 4])
        #expect(problems[0].message.hasPrefix("unknown variable 'instnce.name'"))
        #expect(problems[2].message.hasPrefix("unknown variable 'instance.nmae': 'instance' has no 'nmae' (known here: displayName, id, name)"))
    }

    @Test func namesResolveThroughSectionsAsMustacheDoes() {
        let template = """
            {{#instance}}{{name}} {{system}}{{/instance}}{{#maintenance}}{{completed}}{{#failedNames}}{{.}}{{^last()}},{{/last()}}{{/failedNames}}{{/maintenance}}
            {{#packages.any
            }}{{packages.count}}{{/packages.any}}{{#instance}}{{.name}}{{/instance}}
            {{#tagList}}{{key}}={{value}}{{/tagList}}{{tags.anything}}{{links.my-status}}{{count(packages.all)}}{{#previousWindow}}{{text}}{{/previousWindow}}
            """
        #expect(TemplateCheck.problems(in: template) == [])
    }

    @Test func whatWouldSkipTheEscapingIsRefused() {
        let problems = TemplateCheck.problems(in: "{{{app}}} {{& app}} {{%CONTENT_TYPE:TEXT}} {{> partial}} {{=<% %>=}} {{last()}} {{shout(app)}}")
        #expect(problems.count == 7, "\(problems)")
        #expect(problems[0].message.contains("would skip the channel's escaping"))
        #expect(problems[5].message.contains("only known inside a list section"))
        #expect(problems[6].message.hasPrefix("unknown function 'shout'"))
    }

    @Test func syntaxErrorsNameTheKeyPathAndLine() {
        let diagnostics = ConfigDiagnostics()
        let sources = TemplateSources(texts: ["text": "ok\n{{#instance}}\n{{name}}"], keyPath: "routes[0].templates")
        #expect(TargetRegistry.compileTemplates(sources, for: SlackTarget.self, diagnostics: diagnostics, reportUnusedKeys: true) == nil)
        #expect(
            diagnostics.problems.map(\.description) == ["routes[0].templates.text: line 3: section {{#instance}} is never closed with {{/instance}}"])
    }

    @Test func aWebhookBodyThatIsNotJSONIsRefusedWhenCompiled() {
        let diagnostics = ConfigDiagnostics()
        let sources = TemplateSources(texts: ["body": "{\"count\": {{packages.count}}, \"name\": {{app}}}"], keyPath: "targets.hook.templates")
        #expect(TargetRegistry.compileTemplates(sources, for: WebhookTarget.self, diagnostics: diagnostics, reportUnusedKeys: true) == nil)
        #expect(
            diagnostics.problems.map(\.description) == [
                "targets.hook.templates.body: rendered for the fullest sample event, did not produce valid JSON"
            ])
    }
}
