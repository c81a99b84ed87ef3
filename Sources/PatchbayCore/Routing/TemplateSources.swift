import Foundation

/// The Mustache text of a `templates:` section, as written, before any kind compiles it: Core
/// only reads and keeps it (it knows no template engine and no kind), so routes can carry their
/// own wording. `PatchbayTargets` compiles and checks it for each target it applies to.
/// ```yaml
/// templates:
///   title: "{{title}}: {{system}}"
///   text: "{{instance.name}} finished with {{packages.count}} updates"
///   facts: [{title: Owner, value: "{{tags.owner}}"}]
/// ```
public struct TemplateSources: Sendable, Hashable {
    public struct Fact: Sendable, Hashable {
        public var title: String
        public var value: String

        public init(title: String, value: String) {
            self.title = title
            self.value = value
        }
    }

    /// Every key any kind's templates may use; each kind takes a subset (its traits say which).
    public static let knownKeys: Set<String> = ["title", "text", "facts", "subject", "body"]

    /// Single-text templates by key: `title`, `text`, `subject`, `body`.
    public var texts: [String: String]
    /// The fact list of chat messages, replacing the default facts when present.
    public var facts: [Fact]?
    /// Where it was written (`targets.ops.templates`, `routes[0].templates`), for error messages.
    public var keyPath: String
    /// The wording of a live message (`templates.live`, `chat: {mode: live}`), with the same keys.
    public var live: TemplateSources? {
        get { nested.first }
        set { nested = newValue.map { [$0] } ?? [] }
    }
    /// `live`'s storage: an array, as a struct cannot hold itself.
    private var nested: [TemplateSources] = []

    /// Every key given, the live message's included.
    public var givenKeys: Set<String> {
        Set(texts.keys).union(facts == nil ? [] : ["facts"]).union(live?.givenKeys ?? [])
    }

    public init(texts: [String: String], facts: [Fact]? = nil, keyPath: String, live: TemplateSources? = nil) {
        self.texts = texts
        self.facts = facts
        self.keyPath = keyPath
        self.live = live
    }

    /// Reads `templates:` (nil when absent), reporting unknown keys and non-text values.
    public init?(section parent: ConfigSection, key: String = "templates") {
        guard parent.has(key) else { return nil }
        guard let section = parent.section(key), section.isMap else {
            parent.report(key, "expected a mapping of template keys (\(Self.knownKeys.sorted().joined(separator: ", "))) to Mustache text")
            return nil
        }
        let nested = key == "live"
        section.allowOnly(nested ? Self.knownKeys : Self.knownKeys.union(["live"]))
        var texts: [String: String] = [:]
        for name in Self.knownKeys where name != "facts" {
            if let text = section.string(name) { texts[name] = text }
        }
        var facts: [Fact]?
        if section.has("facts") {
            facts = []
            for entry in section.list("facts") ?? [] {
                entry.allowOnly(["title", "value"])
                guard let title = entry.string("title", required: true), let value = entry.string("value", required: true) else { continue }
                facts?.append(Fact(title: title, value: value))
            }
        }
        let live = nested ? nil : TemplateSources(section: section, key: "live")
        if texts.isEmpty, facts == nil, live == nil {
            section.report("names no template; use \(Self.knownKeys.sorted().joined(separator: ", ")), or leave templates out")
            return nil
        }
        self.init(texts: texts, facts: facts, keyPath: section.path, live: live)
    }

    /// The key path of one template, for messages: `routes[0].templates.facts[1].value`.
    public func keyPath(of key: String) -> String { "\(keyPath).\(key)" }
}
