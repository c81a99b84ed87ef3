import Foundation

/// Finds what Mustache itself forgives: a misspelt name renders as "" there, so a typo would only
/// show as a blank in the channel on patch night. This walks the tags of a template and resolves
/// every name against `TemplateValues.vocabulary()` the way Mustache would (innermost section
/// first, then outwards), and refuses what would bypass the channel's escaping: `{{{x}}}`,
/// `{{& x}}`, pragmas, partials and delimiter changes.
public enum TemplateCheck {
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// Maps whose keys are the user's own (tag names, target names): any name is accepted inside.
    static let openMaps: Set<String> = ["tags", "links"]
    /// Mustache's own functions: `{{count(packages.all)}}`, and inside a list `{{^last()}}, {{/last()}}`.
    static let transforms: Set<String> = [
        "empty", "capitalized", "lowercased", "uppercased", "reversed", "count", "first", "last",
        "sorted", "equalzero", "plusone", "minusone", "even", "odd", "enumerated",
    ]
    static let sequenceFunctions: Set<String> = ["first", "last", "index", "even", "odd"]

    /// A frame of the section stack: what names resolve against.
    private enum Frame {
        case map([String: Any], open: Bool, inList: Bool)
        /// A list of plain values (`{{.}}` only), or a Bool section, which pushes nothing.
        case leaf(inList: Bool)

        var inList: Bool {
            switch self {
            case .map(_, _, let inList), .leaf(let inList): inList
            }
        }
    }

    public static func problems(in template: String, vocabulary: [String: Any] = TemplateValues.vocabulary()) -> [Problem] {
        var problems: [Problem] = []
        var stack: [Frame] = [.map(vocabulary, open: false, inList: false)]
        var sections: [String] = []
        var cursor = template.startIndex
        var line = 1
        while let open = template.range(of: "{{", range: cursor..<template.endIndex) {
            line += template[cursor..<open.lowerBound].filter(\.isNewline).count
            let tagLine = line
            let triple = template[open.upperBound...].hasPrefix("{")
            let closer = triple ? "}}}" : "}}"
            guard let close = template.range(of: closer, range: open.upperBound..<template.endIndex) else {
                problems.append(Problem(line: tagLine, message: "a tag opened with {{ is never closed"))
                break
            }
            let inner = template[open.upperBound..<close.lowerBound]
            line += inner.filter(\.isNewline).count
            cursor = close.upperBound
            if triple {
                problems.append(
                    Problem(
                        line: tagLine,
                        message:
                            "{{{...}}} would skip the channel's escaping; use {{\(inner.dropFirst().trimmingCharacters(in: .whitespaces))}}: values are escaped for the channel"
                    ))
                continue
            }
            let sigil = inner.first
            let body = String(inner.dropFirst(sigil.map { "#^/!&>=%$<".contains($0) } == true ? 1 : 0)).trimmingCharacters(
                in: .whitespacesAndNewlines)
            switch sigil {
            case "!":
                continue
            case "&":
                problems.append(
                    Problem(
                        line: tagLine, message: "{{& \(body)}} would skip the channel's escaping; use {{\(body)}}: values are escaped for the channel"
                    ))
            case ">", "<", "$":
                problems.append(Problem(line: tagLine, message: "partials and blocks are not supported in Patchbay templates"))
            case "=":
                problems.append(Problem(line: tagLine, message: "changing the delimiters is not supported in Patchbay templates"))
            case "%":
                problems.append(Problem(line: tagLine, message: "pragmas are not supported: the content type is set by the channel"))
            case "#", "^":
                let resolved = resolve(body, in: stack, line: tagLine, problems: &problems)
                sections.append(body)
                if sigil == "^" {
                    stack.append(.leaf(inList: false))
                } else {
                    stack.append(frame(for: resolved, name: body))
                }
            case "/":
                guard let last = sections.popLast() else {
                    problems.append(Problem(line: tagLine, message: "{{/\(body)}} closes a section that was never opened"))
                    continue
                }
                if last != body {
                    problems.append(Problem(line: tagLine, message: "{{/\(body)}} closes {{#\(last)}}; close sections in the order they were opened"))
                }
                stack.removeLast()
            default:
                _ = resolve(body, in: stack, line: tagLine, problems: &problems)
            }
        }
        if let open = sections.last {
            problems.append(Problem(line: line, message: "section {{#\(open)}} is never closed with {{/\(open)}}"))
        }
        return problems
    }

    /// What a section pushes: a map's keys, a list element's, or nothing.
    private static func frame(for value: Any?, name: String) -> Frame {
        switch value {
        case let map as [String: Any]:
            return .map(map, open: openMaps.contains(name.split(separator: ".").last.map(String.init) ?? name), inList: false)
        case let list as [Any]:
            if let element = list.first as? [String: Any] { return .map(element, open: false, inList: true) }
            return .leaf(inList: true)
        default:
            return .leaf(inList: false)
        }
    }

    /// The vocabulary value `name` resolves to (nil when unknown, reported), transforms unwrapped.
    private static func resolve(_ name: String, in stack: [Frame], line: Int, problems: inout [Problem]) -> Any? {
        if name.isEmpty {
            problems.append(Problem(line: line, message: "empty tag {{}}"))
            return nil
        }
        // `fn(arg)` and nested `f(g(arg))`: check each function, then resolve the argument.
        if let paren = name.firstIndex(of: "("), name.hasSuffix(")") {
            let function = String(name[..<paren])
            let argument = String(name[name.index(after: paren)..<name.index(before: name.endIndex)])
            if argument.isEmpty {
                if !sequenceFunctions.contains(function) || !stack.contains(where: \.inList) {
                    problems.append(
                        Problem(line: line, message: "'\(function)()' is only known inside a list section (first, last, index, even, odd)"))
                }
                return true
            }
            if !transforms.contains(function) {
                problems.append(
                    Problem(line: line, message: "unknown function '\(function)'; Mustache knows \(transforms.sorted().joined(separator: ", "))"))
            }
            return resolve(argument, in: stack, line: line, problems: &problems)
        }
        if name == "." { return "." }
        // `{{.name}}` looks in the innermost section only.
        if name.hasPrefix("."), let innermost = stack.last {
            return resolve(String(name.dropFirst()), in: [innermost], line: line, problems: &problems)
        }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if parts.contains(where: \.isEmpty) {
            problems.append(Problem(line: line, message: "'\(name)' is not a valid name"))
            return nil
        }
        for frame in stack.reversed() {
            guard case .map(let map, let open, _) = frame else { continue }
            if open { return "" }
            guard let first = map[parts[0]] else { continue }
            var value: Any = first
            var path = parts[0]
            for part in parts.dropFirst() {
                if openMaps.contains(path) { return "" }
                guard let child = (value as? [String: Any])?[part] else {
                    problems.append(Problem(line: line, message: "unknown variable '\(name)': '\(path)' has no '\(part)'\(known(in: value))"))
                    return nil
                }
                value = child
                path += ".\(part)"
            }
            return value
        }
        problems.append(Problem(line: line, message: "unknown variable '\(name)'\(known(in: innermostMap(stack)))"))
        return nil
    }

    private static func innermostMap(_ stack: [Frame]) -> Any? {
        for frame in stack.reversed() { if case .map(let map, _, _) = frame { return map } }
        return nil
    }

    private static func known(in value: Any?) -> String {
        let keys = ((value as? [String: Any])?.keys).map(Array.init) ?? []
        return keys.isEmpty ? "" : " (known here: \(keys.sorted().joined(separator: ", ")))"
    }
}
