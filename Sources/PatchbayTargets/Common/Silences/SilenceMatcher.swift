import Foundation
import PatchbayCore

/// One matcher of an Alertmanager API v2 silence, as a route writes it: `app="App1"`,
/// `env!="staging"`, `instance=~"web-1(:[0-9]+)?"`, `job!~"blackbox.*"`. Values may hold
/// placeholders (`{{instance.name}}`, `{{instance.id}}`, `{{app}}`, `{{environment}}`) that are
/// filled from the event, escaped for the matcher's language: regex characters are escaped in a
/// regex matcher, so a server named `web-1.example.com` matches only itself.
public struct SilenceMatcher: Sendable, Hashable {
    public var name: String
    public var value: String
    public var isRegex: Bool
    public var isEqual: Bool

    public static let placeholders = ["instance.name", "instance.id", "app", "environment"]

    /// Reads `name="value"` (the operator one of `=`, `!=`, `=~`, `!~`; the value double-quoted,
    /// with `\"` and `\\` escapes, as Alertmanager's own matcher syntax). Throws why not.
    public static func parse(_ text: String) throws(RenderError) -> SilenceMatcher {
        let text = text.trimmingCharacters(in: .whitespaces)
        let nameEnd = text.firstIndex { !($0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_")) } ?? text.endIndex
        let name = String(text[..<nameEnd])
        guard let first = name.first, !first.isNumber else {
            throw RenderError("expected a label name first, like app=\"App1\" (letters, digits and _, not starting with a digit)")
        }
        var rest = text[nameEnd...].drop { $0 == " " }
        let operators: [(String, Bool, Bool)] = [("=~", true, true), ("!~", true, false), ("!=", false, false), ("=", false, true)]
        guard let (op, isRegex, isEqual) = operators.first(where: { rest.hasPrefix($0.0) }) else {
            throw RenderError("expected =, !=, =~ or !~ after the label name \(name)")
        }
        rest = rest.dropFirst(op.count).drop { $0 == " " }
        guard rest.first == "\"", rest.count >= 2, rest.last == "\"" else {
            throw RenderError("the value must be in double quotes, like \(name)\(op)\"App1\"")
        }
        var value = ""
        var escaped = false
        for character in rest.dropFirst().dropLast() {
            if escaped {
                value.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "\"" {
                throw RenderError("a double quote inside the value must be escaped as \\\"")
            } else {
                value.append(character)
            }
        }
        if escaped { throw RenderError("the value ends in a lone backslash") }
        let matcher = SilenceMatcher(name: name, value: value, isRegex: isRegex, isEqual: isEqual)
        if let problem = matcher.placeholderProblem { throw RenderError(problem) }
        if isRegex, (try? NSRegularExpression(pattern: "^(?:\(matcher.filled(with: [:])))$")) == nil {
            throw RenderError("'\(value)' is not a regular expression Alertmanager can use")
        }
        return matcher
    }

    /// nil when every `{{...}}` in the value is a known placeholder.
    var placeholderProblem: String? {
        var rest = Substring(value)
        while let open = rest.range(of: "{{") {
            guard let close = rest[open.upperBound...].range(of: "}}") else { return "an unclosed {{ in '\(value)'" }
            let key = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            if !Self.placeholders.contains(key) {
                return "unknown placeholder {{\(key)}}; use \(Self.placeholders.map { "{{\($0)}}" }.joined(separator: ", "))"
            }
            rest = rest[close.upperBound...]
        }
        return nil
    }

    /// The value with its placeholders replaced by `values` (a missing one by a sample name),
    /// each escaped for the matcher's language.
    func filled(with values: [String: String]) -> String {
        var result = ""
        var rest = Substring(value)
        while let open = rest.range(of: "{{"), let close = rest[open.upperBound...].range(of: "}}") {
            result += rest[..<open.lowerBound]
            let key = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            let raw = values[key] ?? "web-1.example.com"
            result += isRegex ? Self.regexQuoted(raw) : raw
            rest = rest[close.upperBound...]
        }
        return result + rest
    }

    /// The matcher for one event: placeholders filled and escaped.
    public func resolved(for event: PatchEvent) -> SilenceMatcher {
        var values = ["app": event.app, "environment": event.environment]
        if let instance = event.instance {
            values["instance.id"] = instance.id
            values["instance.name"] = instance.name ?? instance.id
        }
        var copy = self
        copy.value = filled(with: values)
        return copy
    }

    /// Whether the matcher matches a missing label (the empty string): a silence made only of
    /// such matchers would quiet every alert, and Alertmanager refuses it (400).
    public var matchesEmpty: Bool {
        let matches: Bool
        if isRegex {
            let pattern = "^(?:\(filled(with: [:])))$"
            matches = (try? NSRegularExpression(pattern: pattern))?.firstMatch(in: "", range: NSRange(location: 0, length: 0)) != nil
        } else {
            matches = filled(with: [:]).isEmpty
        }
        return matches == isEqual
    }

    /// Go's `regexp.QuoteMeta`: every character with a meaning in RE2 escaped.
    static func regexQuoted(_ text: String) -> String {
        var result = ""
        for character in text {
            if "\\.+*?()|[]{}^$".contains(character) { result.append("\\") }
            result.append(character)
        }
        return result
    }

    /// `app="App1"`, for the lookup's `filter` parameter (the value escaped as Alertmanager parses it).
    public var text: String {
        let op = isRegex ? (isEqual ? "=~" : "!~") : (isEqual ? "=" : "!=")
        let quoted = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return "\(name)\(op)\"\(quoted)\""
    }

    /// Problems of a route's matchers, by key, for load time: each parses, and the set as a
    /// whole does not match every alert.
    static func problems(_ texts: [(key: String, text: String)], setKey: String) -> [(key: String, problem: String)] {
        var problems: [(key: String, problem: String)] = []
        var parsed: [SilenceMatcher] = []
        for (key, text) in texts {
            do throws(RenderError) {
                parsed.append(try parse(text))
            } catch {
                problems.append((key, "'\(text)': \(error.description)"))
            }
        }
        if problems.isEmpty, !parsed.isEmpty, parsed.allSatisfy(\.matchesEmpty) {
            problems.append(
                (
                    setKey,
                    "every matcher also matches alerts without the label (an empty value), so the silence would quiet every alert; Alertmanager refuses it"
                ))
        }
        return problems
    }
}

extension SilenceMatcher: Encodable {
    enum CodingKeys: String, CodingKey { case name, value, isRegex, isEqual }
}
