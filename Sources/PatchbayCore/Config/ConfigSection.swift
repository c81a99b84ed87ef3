import Foundation

/// A configuration tree, independent of the file format. Scalars stay strings until a component
/// reads them with the type it expects, so each error can say what was expected where.
public indirect enum ConfigValue: Sendable {
    case null
    case scalar(String)
    case list([ConfigValue])
    case map([(key: String, value: ConfigValue)])

    var kindName: String {
        switch self {
        case .null: "nothing"
        case .scalar: "a single value"
        case .list: "a list"
        case .map: "a mapping"
        }
    }
}

public struct ConfigProblem: Sendable, Hashable, CustomStringConvertible {
    /// Dotted key path, `targets.ops-slack.url`; `routes[0].targets[1]` for list items.
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// Collects every problem found while reading a configuration, so one run of `config check`
/// reports them all.
public final class ConfigDiagnostics {
    public private(set) var problems: [ConfigProblem] = []

    public init() {}

    public func report(_ path: String, _ message: String) {
        problems.append(ConfigProblem(path: path, message: message))
    }
}

/// A part of the configuration that one component reads. Readers report what is wrong and return
/// nil or the default, so reading goes on and every problem is found in one pass. No message
/// quotes the value of a secret.
public struct ConfigSection {
    public let path: String
    public let value: ConfigValue
    public let diagnostics: ConfigDiagnostics

    public init(path: String, value: ConfigValue, diagnostics: ConfigDiagnostics) {
        self.path = path
        self.value = value
        self.diagnostics = diagnostics
    }

    public func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    public func report(_ message: String) { diagnostics.report(path, message) }

    public func report(_ key: String, _ message: String) { diagnostics.report(keyPath(key), message) }

    var entries: [(key: String, value: ConfigValue)] {
        if case .map(let entries) = value { return entries }
        return []
    }

    public var isMap: Bool {
        if case .map = value { return true }
        return false
    }

    public func has(_ key: String) -> Bool {
        guard let found = entries.first(where: { $0.key == key }) else { return false }
        if case .null = found.value { return false }
        return true
    }

    /// The sub-section under `key`, or nil when it is absent. Reports one that is not a mapping.
    public func section(_ key: String, required: Bool = false) -> ConfigSection? {
        guard let child = rawChild(key, required: required) else { return nil }
        guard case .map = child else {
            report(key, "expected a mapping, got \(child.kindName)")
            return nil
        }
        return ConfigSection(path: keyPath(key), value: child, diagnostics: diagnostics)
    }

    /// Named entries of a mapping, in file order (targets, sources).
    public func namedSections() -> [(name: String, section: ConfigSection)] {
        entries.map { ($0.key, ConfigSection(path: keyPath($0.key), value: $0.value, diagnostics: diagnostics)) }
    }

    /// Items of the list under `key`, each with its index in the path.
    public func list(_ key: String, required: Bool = false) -> [ConfigSection]? {
        guard let child = rawChild(key, required: required) else { return nil }
        guard case .list(let items) = child else {
            report(key, "expected a list, got \(child.kindName)")
            return nil
        }
        return items.enumerated().map { index, item in
            ConfigSection(path: "\(keyPath(key))[\(index)]", value: item, diagnostics: diagnostics)
        }
    }

    /// Reports keys this component does not know, which are usually typos.
    public func allowOnly(_ keys: Set<String>) {
        for entry in entries where !keys.contains(entry.key) {
            let known = keys.sorted().joined(separator: ", ")
            report(entry.key, "is not a known key here (known: \(known))")
        }
    }

    public func string(_ key: String, required: Bool = false) -> String? {
        guard let child = rawChild(key, required: required) else { return nil }
        guard case .scalar(let text) = child else {
            report(key, "expected a single value, got \(child.kindName)")
            return nil
        }
        if required, text.isEmpty {
            report(key, "must not be empty")
            return nil
        }
        return text
    }

    /// A credential. Messages about it never quote it.
    public func secret(_ key: String, required: Bool = true, minimumLength: Int = 1) -> Secret? {
        guard let text = string(key, required: required) else { return nil }
        if text.count < minimumLength {
            report(key, "is too short: use at least \(minimumLength) characters")
            return nil
        }
        return Secret(text)
    }

    /// An http(s) URL that is itself a credential (Slack and Teams webhooks).
    public func secretURL(_ key: String, required: Bool = true) -> Secret? {
        guard let text = string(key, required: required) else { return nil }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "https" || scheme == "http", components.host?.isEmpty == false
        else {
            report(key, "expected an http:// or https:// URL (value not shown: it is a secret)")
            return nil
        }
        return Secret(text)
    }

    /// An http(s) URL that is not a secret (an API base URL).
    public func url(_ key: String) -> URL? {
        guard let text = string(key) else { return nil }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http",
            url.host?.isEmpty == false
        else {
            report(key, "expected an http:// or https:// URL, got '\(text)'")
            return nil
        }
        return url
    }

    public func int(_ key: String, default defaultValue: Int, range: ClosedRange<Int>) -> Int {
        guard let text = string(key) else { return defaultValue }
        guard let value = Int(text) else {
            report(key, "expected a whole number, got '\(text)'")
            return defaultValue
        }
        guard range.contains(value) else {
            report(key, "must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
            return defaultValue
        }
        return value
    }

    public func bool(_ key: String, default defaultValue: Bool) -> Bool {
        guard let text = string(key) else { return defaultValue }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            report(key, "expected true or false, got '\(text)'")
            return defaultValue
        }
    }

    /// `250ms`, `5s`, `2m`, `1h`; a bare number is seconds.
    public func duration(_ key: String, default defaultValue: Duration, range: ClosedRange<Duration>? = nil) -> Duration {
        guard let text = string(key) else { return defaultValue }
        guard let value = Self.parseDuration(text) else {
            report(key, "expected a duration like 250ms, 5s, 2m or 1h, got '\(text)'")
            return defaultValue
        }
        if let range, !range.contains(value) {
            report(key, "must be between \(range.lowerBound) and \(range.upperBound), got \(text)")
            return defaultValue
        }
        return value
    }

    public static func parseDuration(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        // Bounded well inside Int64 milliseconds (about 292 million years): a huge number is an
        // error to report, never a trapping conversion.
        func milliseconds(_ number: Double, _ scale: Double) -> Duration? {
            let value = (number * scale * 1000).rounded()
            guard value.isFinite, value >= 0, value <= 1e15 else { return nil }
            return .milliseconds(Int64(value))
        }
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            guard let number = Double(trimmed.dropLast(suffix.count)) else { return nil }
            return milliseconds(number, scale)
        }
        guard let number = Double(trimmed) else { return nil }
        return milliseconds(number, 1)
    }

    /// A list of durations, like `reminders: [24h, 1h]`.
    public func durationList(_ key: String, range: ClosedRange<Duration>? = nil) -> [Duration]? {
        guard let items = list(key) else { return nil }
        return items.compactMap { item in
            guard case .scalar(let text) = item.value, let value = Self.parseDuration(text) else {
                item.report("expected a duration like 90s, 1h or 24h")
                return nil
            }
            if let range, !range.contains(value) {
                item.report("must be between \(range.lowerBound) and \(range.upperBound), got \(text)")
                return nil
            }
            return value
        }
    }

    public func stringList(_ key: String, required: Bool = false) -> [String]? {
        guard let items = list(key, required: required) else { return nil }
        return items.compactMap { item in
            guard case .scalar(let text) = item.value else {
                item.report("expected a single value, got \(item.value.kindName)")
                return nil
            }
            return text
        }
    }

    public func stringMap(_ key: String) -> [String: String]? {
        guard let child = section(key) else { return nil }
        var result: [String: String] = [:]
        for (name, entry) in child.namedSections() {
            guard case .scalar(let text) = entry.value else {
                entry.report("expected a single value, got \(entry.value.kindName)")
                continue
            }
            result[name] = text
        }
        return result
    }

    /// An IANA zone name such as America/Los_Angeles.
    public func timeZone(_ key: String) -> TimeZone? {
        guard let name = string(key) else { return nil }
        guard let zone = ZonedTime.ianaZone(named: name) else {
            report(key, "'\(name)' is not an IANA time zone name like America/Los_Angeles")
            return nil
        }
        return zone
    }

    private func rawChild(_ key: String, required: Bool) -> ConfigValue? {
        guard case .map(let entries) = value else { return nil }
        guard let found = entries.first(where: { $0.key == key }) else {
            if required { report(key, "is required") }
            return nil
        }
        if case .null = found.value {
            if required { report(key, "is required but empty") }
            return nil
        }
        return found.value
    }
}
