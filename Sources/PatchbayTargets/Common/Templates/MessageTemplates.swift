import Foundation
import Mustache
import PatchbayCore

/// How a channel makes text inert: Slack's `&<>` entities, Teams Markdown backslashes, JSON
/// string escaping for webhook bodies, HTML for e-mail. Each is registered with Mustache as a
/// content type, so every `{{value}}` is escaped for the channel it goes to, whatever the
/// template author writes.
public struct TemplateEscaping: Sendable {
    /// The Mustache content type name (`PATCHBAY_SLACK`).
    public var name: String
    public var escape: @Sendable (String) -> String

    public init(name: String, escape: @escaping @Sendable (String) -> String) {
        self.name = name
        self.escape = escape
    }

    private struct ContentType: MustacheContentType {
        let escape: @Sendable (String) -> String
        func escapeText(_ text: String) -> String { escape(text) }
    }

    /// Registers the content type (idempotent: the same name always carries the same escaper)
    /// and returns the line that selects it, put before the author's text.
    public func pragma() -> String {
        MustacheContentTypes.register(ContentType(escape: escape), named: name)
        return "{{%CONTENT_TYPE:\(name)}}\n"
    }

    /// JSON string content: for templates that write a whole JSON body, `"{{text}}"` stays one string.
    public static let json = TemplateEscaping(name: "PATCHBAY_JSON") { text in
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case "\u{2028}", "\u{2029}": result += String(format: "\\u%04X", scalar.value)
            default:
                if scalar.value < 0x20 {
                    result += String(format: "\\u%04X", scalar.value)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result
    }

    /// A mail header's text: one line, whatever the value holds (RFC 2047 encoding comes later).
    public static let headerLine = TemplateEscaping(name: "PATCHBAY_HEADER") { replacing(lineBreaks, in: $0) }
    static let lineBreaks: [Unicode.Scalar: String] = [
        "\n": " ", "\r": " ", "\t": " ", "\u{0B}": " ", "\u{0C}": " ",
        "\u{85}": " ", "\u{2028}": " ", "\u{2029}": " ",
    ]

    /// HTML text and attribute values. By Unicode scalar, not Character: `"` followed by a
    /// combining mark is one Character that is not `"`, and would otherwise end an attribute.
    public static let html = TemplateEscaping(name: "PATCHBAY_HTML") { replacing(htmlEntities, in: $0) }
    static let htmlEntities: [Unicode.Scalar: String] = ["&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;"]

    /// `text` with each scalar found in `table` replaced, the others kept. Working by Unicode
    /// scalar is what makes an escaper hold against combining marks.
    public static func replacing(_ table: [Unicode.Scalar: String], in text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            if let replacement = table[scalar] { result += replacement } else { result.unicodeScalars.append(scalar) }
        }
        return result
    }
}

/// A target kind whose wording can be replaced with templates (`targets.<name>.templates`, or a
/// route's `templates`, which wins).
public protocol TemplatedTarget: RegisteredTarget {
    /// The template keys this kind takes: `title`, `text`, `facts` for chat; `body` for webhooks.
    static var templateKeys: Set<String> { get }
    static var templateEscaping: TemplateEscaping { get }
    /// The escaping of one key; `templateEscaping` unless a kind's keys differ (an e-mail subject).
    static func templateEscaping(for key: String) -> TemplateEscaping
    /// The target's own templates, set by the registry from `targets.<name>.templates`.
    var templates: MessageTemplates? { get set }
    /// Why the rendered text of template `key` would not do (a webhook body that is not JSON), or nil.
    static func problem(rendering key: String, as text: String) -> String?
}

extension TemplatedTarget {
    public static func problem(rendering key: String, as text: String) -> String? { nil }
    public static func templateEscaping(for key: String) -> TemplateEscaping { templateEscaping }
}

extension TemplatedTarget {
    /// Templates may name the maintenance's counts and links, so a templated target reads them.
    public var usesMaintenanceState: Bool { templates != nil }
}

/// A `templates:` section compiled for one kind: parsed, its names checked, its content type set.
public struct MessageTemplates: Sendable {
    public struct Fact: Sendable {
        var title: MustacheTemplate
        var value: MustacheTemplate
    }

    var texts: [String: MustacheTemplate]
    var facts: [Fact]?
    /// Where it was written, for messages.
    public var keyPath: String
    /// The live message's own wording (`templates.live`).
    public var live: MessageTemplates? {
        get { nested.first }
        set { nested = newValue.map { [$0] } ?? [] }
    }
    /// `live`'s storage: an array, as a struct cannot hold itself.
    private var nested: [MessageTemplates] = []

    init(texts: [String: MustacheTemplate], facts: [Fact]?, keyPath: String, live: MessageTemplates? = nil) {
        self.texts = texts
        self.facts = facts
        self.keyPath = keyPath
        self.live = live
    }

    public var keys: Set<String> { Set(texts.keys).union(facts == nil ? [] : ["facts"]) }

    /// Key by key, the route's template where it has one, else the target's.
    public static func preferring(_ route: MessageTemplates?, over target: MessageTemplates?) -> MessageTemplates? {
        guard let route else { return target }
        guard let target else { return route }
        return MessageTemplates(
            texts: target.texts.merging(route.texts) { _, fromRoute in fromRoute },
            facts: route.facts ?? target.facts, keyPath: route.keyPath, live: preferring(route.live, over: target.live))
    }

    /// The rendered text of `key`, or nil when this set has no such template.
    public func render(_ key: String, _ values: [String: Any]) -> String? {
        texts[key]?.render(values)
    }

    /// The rendered fact list, or nil to keep the default facts.
    public func renderFacts(_ values: [String: Any]) -> [(title: String, value: String)]? {
        facts?.map { (title: $0.title.render(values), value: $0.value.render(values)) }
    }

    /// Compiles the keys of `sources` that `keys` allows. Unknown names, syntax errors and escapes
    /// of the channel's escaping are reported as `<key path>: line N: ...`; nil when any was found.
    /// `checkRender` renders each template against sample contexts and reports what it returns
    /// (a webhook body that is not JSON).
    public static func compile(
        _ sources: TemplateSources, keys: Set<String>, escaping: TemplateEscaping, diagnostics: ConfigDiagnostics,
        checkRender: ((String, String) -> String?)? = nil
    ) -> MessageTemplates? {
        compile(sources, keys: keys, escaping: { _ in escaping }, diagnostics: diagnostics, checkRender: checkRender)
    }

    /// The same, with an escaping per key (an e-mail's subject is a header, its body HTML).
    public static func compile(
        _ sources: TemplateSources, keys: Set<String>, escaping: (String) -> TemplateEscaping, diagnostics: ConfigDiagnostics,
        checkRender: ((String, String) -> String?)? = nil
    ) -> MessageTemplates? {
        var valid = true
        func parse(_ text: String, keyPath: String, key: String) -> MustacheTemplate? {
            let pragma = escaping(key).pragma()
            let problems = TemplateCheck.problems(in: text)
            for problem in problems { diagnostics.report(keyPath, problem.description) }
            guard problems.isEmpty else { return nil }
            do {
                return try MustacheTemplate(string: pragma + text)
            } catch let error as MustacheTemplate.ParserError {
                // The pragma line is ours: the author's lines start at 2.
                diagnostics.report(keyPath, "line \(max(1, error.context.lineNumber - 1)): Mustache syntax error: \(error.error)")
            } catch {
                diagnostics.report(keyPath, "Mustache syntax error: \(error)")
            }
            return nil
        }
        var texts: [String: MustacheTemplate] = [:]
        for (key, text) in sources.texts.sorted(by: { $0.key < $1.key }) where keys.contains(key) {
            guard let template = parse(text, keyPath: sources.keyPath(of: key), key: key) else {
                valid = false
                continue
            }
            texts[key] = template
            for (label, values) in samples() {
                if let problem = checkRender?(key, template.render(values)) {
                    diagnostics.report(sources.keyPath(of: key), "rendered for \(label), \(problem)")
                    valid = false
                    break
                }
            }
        }
        var facts: [Fact]?
        if let sourceFacts = sources.facts, keys.contains("facts") {
            facts = []
            for (index, fact) in sourceFacts.enumerated() {
                let path = sources.keyPath(of: "facts[\(index)]")
                guard let title = parse(fact.title, keyPath: path + ".title", key: "facts"),
                    let value = parse(fact.value, keyPath: path + ".value", key: "facts")
                else {
                    valid = false
                    continue
                }
                facts?.append(Fact(title: title, value: value))
            }
        }
        var live: MessageTemplates?
        if let nested = sources.live {
            live = compile(nested, keys: keys, escaping: escaping, diagnostics: diagnostics, checkRender: checkRender)
            if live == nil { valid = false }
        }
        guard valid else { return nil }
        return MessageTemplates(texts: texts, facts: facts, keyPath: sources.keyPath, live: live)
    }

    /// The contexts a template is tried against when it is compiled: the fullest one, and a sparse
    /// maintenance-level notice (no instance, no packages, no maintenance state).
    static func samples() -> [(String, [String: Any])] {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let sparse = PatchEvent(
            type: .reminder, app: "a", environment: "e",
            window: MaintenanceWindow(start: start, end: start.addingTimeInterval(60)), notice: .reminder)
        let context = RenderContext(displayTimeZone: TimeZone(identifier: "UTC")!, deliveryID: "d", now: start)
        return [
            ("the fullest sample event", TemplateValues.vocabulary()),
            ("a reminder with no instance", TemplateValues.values(for: sparse, context: context)),
        ]
    }
}

extension MessageContent {
    /// The default wording with the parts `templates` replaces rendered from the event.
    mutating func apply(_ templates: MessageTemplates?, event: PatchEvent, context: RenderContext) {
        guard let templates else { return }
        let values = TemplateValues.values(for: event, context: context)
        // The fallback (notification text) keeps the default wording: it is escaped later, as plain text.
        if let title = templates.render("title", values), !title.isEmpty { self.title = title }
        if let text = templates.render("text", values) { self.text = text }
        if let facts = templates.renderFacts(values) { self.facts = facts }
    }
}
