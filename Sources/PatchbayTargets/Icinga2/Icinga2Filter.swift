import Foundation
import PatchbayCore

/// A route's Icinga 2 filter (`host.vars.app == "App1"`, `host.name == "{{instance.name}}"`).
/// Placeholders become filter variables (`filter_vars`): `"{{instance.name}}"` (quotes
/// included) or `{{instance.name}}` is replaced by `patchbay_instance_name`, whose value travels
/// beside the filter, so a server name is data to Icinga, never part of the expression.
public struct Icinga2Filter: Sendable, Hashable {
    public var text: String

    static let placeholders = [
        "instance.name": "patchbay_instance_name", "instance.id": "patchbay_instance_id", "app": "patchbay_app",
        "environment": "patchbay_environment",
    ]

    public init(_ text: String) throws(RenderError) {
        if let problem = Self.problem(text) { throw RenderError(problem) }
        self.text = text
    }

    /// nil for a filter Patchbay can send, else why not. Icinga itself parses it; here: not
    /// empty, quotes and brackets balanced, only known placeholders.
    public static func problem(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return "must not be empty" }
        if trimmed.count > 2000 { return "is longer than 2000 characters" }
        var depth = 0
        var inString = false
        var escaped = false
        for character in trimmed {
            if inString {
                if escaped { escaped = false } else if character == "\\" { escaped = true } else if character == "\"" { inString = false }
                continue
            }
            switch character {
            case "\"": inString = true
            case "(": depth += 1
            case ")":
                depth -= 1
                if depth < 0 { return "has a ) without its (" }
            default: break
            }
        }
        if inString { return "has an unclosed double quote" }
        if depth != 0 { return "has a ( without its )" }
        // A placeholder becomes a filter variable: it may be a whole quoted value or stand
        // bare, never part of a longer string ("{{instance.name}}.example.com" would match nothing).
        let quotedWhole = trimmed.replacingOccurrences(of: #""\{\{\s*[a-z.]+\s*\}\}""#, with: "v", options: .regularExpression)
        var quoted = false
        var previous: Character = " "
        for character in quotedWhole {
            if character == "\"", previous != "\\" { quoted.toggle() }
            if quoted, previous == "{", character == "{" {
                return "a placeholder inside a quoted string must be the whole value, like host.name == \"{{instance.name}}\""
            }
            previous = character
        }
        var rest = Substring(trimmed)
        while let open = rest.range(of: "{{") {
            guard let close = rest[open.upperBound...].range(of: "}}") else { return "has an unclosed {{" }
            let key = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            if placeholders[key] == nil {
                return "unknown placeholder {{\(key)}}; use \(placeholders.keys.sorted().map { "{{\($0)}}" }.joined(separator: ", "))"
            }
            rest = rest[close.upperBound...]
        }
        return nil
    }

    /// The filter with placeholders as variables, and the variables' values for `event`.
    public func bound(to event: PatchEvent) -> (filter: String, variables: [String: String]) {
        var values = ["patchbay_app": event.app, "patchbay_environment": event.environment]
        if let instance = event.instance {
            values["patchbay_instance_id"] = instance.id
            values["patchbay_instance_name"] = instance.name ?? instance.id
        }
        var result = ""
        var variables: [String: String] = [:]
        var rest = Substring(text)
        while let open = rest.range(of: "{{"), let close = rest[open.upperBound...].range(of: "}}") {
            var before = rest[..<open.lowerBound]
            var after = rest[close.upperBound...]
            // "{{x}}" becomes the bare variable: the quotes would make it a literal string.
            if before.hasSuffix("\""), after.hasPrefix("\"") {
                before = before.dropLast()
                after = after.dropFirst()
            }
            let key = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            let variable = Self.placeholders[key] ?? "patchbay_unknown"
            result += before + variable
            variables[variable] = values[variable] ?? ""
            rest = after
        }
        return (result + rest, variables)
    }
}
