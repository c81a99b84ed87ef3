import Foundation
import PatchbayCore
import Yams

/// Reads the YAML configuration file into a `ConfigSection` tree, substituting `${ENV_VAR}` in
/// every value. Components then read their own sections and report problems with key paths.
public enum ConfigFile {
    public struct LoadError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Loads `path`. Problems in the file's content (syntax, unset variables) go to `diagnostics`;
    /// only an unreadable file throws.
    public static func load(
        path: String, environment: [String: String] = ProcessInfo.processInfo.environment,
        diagnostics: ConfigDiagnostics
    ) throws -> ConfigSection {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LoadError(description: "cannot read configuration file '\(path)': no such file or not readable")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw LoadError(description: "configuration file '\(path)' is not UTF-8 text")
        }
        return parse(yaml: text, environment: environment, diagnostics: diagnostics)
    }

    public static func parse(yaml: String, environment: [String: String], diagnostics: ConfigDiagnostics) -> ConfigSection {
        let node: Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            diagnostics.report("", "the file is not valid YAML: \(describe(error))")
            return ConfigSection(path: "", value: .map([]), diagnostics: diagnostics)
        } catch {
            diagnostics.report("", "the file is not valid YAML")
            return ConfigSection(path: "", value: .map([]), diagnostics: diagnostics)
        }
        guard let node else {
            diagnostics.report("", "the file is empty")
            return ConfigSection(path: "", value: .map([]), diagnostics: diagnostics)
        }
        let value = convert(node, path: "", environment: environment, diagnostics: diagnostics)
        guard case .map = value else {
            diagnostics.report("", "the top level must be a mapping with server, store, targets and routes")
            return ConfigSection(path: "", value: .map([]), diagnostics: diagnostics)
        }
        return ConfigSection(path: "", value: value, diagnostics: diagnostics)
    }

    /// Error text from the YAML parser, without echoing the document (which may hold secrets).
    private static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            let where_ = "line \(mark.line), column \(mark.column)"
            if let context { return "\(problem) \(context.text) at \(where_)" }
            return "\(problem) at \(where_)"
        case .composer(let context, let problem, let mark, _):
            let where_ = "line \(mark.line), column \(mark.column)"
            if let context { return "\(problem) \(context.text) at \(where_)" }
            return "\(problem) at \(where_)"
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.sorted().joined(separator: ", ")
            return "\(keys) given more than once in one mapping at line \(context.mark.line), column \(context.mark.column)"
        default:
            return "syntax error"
        }
    }

    private static func convert(_ node: Node, path: String, environment: [String: String], diagnostics: ConfigDiagnostics) -> ConfigValue {
        switch node {
        case .scalar(let scalar):
            if scalar.style == .plain, node.null != nil { return .null }
            return .scalar(substitute(scalar.string, path: path, environment: environment, diagnostics: diagnostics))
        case .sequence(let sequence):
            return .list(
                sequence.enumerated().map { index, item in
                    convert(item, path: "\(path)[\(index)]", environment: environment, diagnostics: diagnostics)
                })
        case .mapping(let mapping):
            var entries: [(key: String, value: ConfigValue)] = []
            var seen = Set<String>()
            for (keyNode, valueNode) in mapping {
                guard let key = keyNode.string else {
                    diagnostics.report(path, "mapping keys must be plain text")
                    continue
                }
                let childPath = path.isEmpty ? key : "\(path).\(key)"
                if !seen.insert(key).inserted {
                    diagnostics.report(childPath, "is given more than once")
                    continue
                }
                entries.append((key, convert(valueNode, path: childPath, environment: environment, diagnostics: diagnostics)))
            }
            return .map(entries)
        case .alias:
            diagnostics.report(path, "YAML aliases are not supported; repeat the value")
            return .null
        }
    }

    /// `${NAME}` takes the variable's value; `${NAME:-fallback}` uses the fallback when it is unset
    /// or empty; `$$` is a literal `$`.
    static func substitute(_ text: String, path: String, environment: [String: String], diagnostics: ConfigDiagnostics) -> String {
        guard text.contains("$") else { return text }
        var result = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            guard character == "$" else {
                result.append(character)
                index = text.index(after: index)
                continue
            }
            let next = text.index(after: index)
            if next < text.endIndex, text[next] == "$" {
                result.append("$")
                index = text.index(after: next)
                continue
            }
            guard next < text.endIndex, text[next] == "{", let close = text[next...].firstIndex(of: "}") else {
                result.append(character)
                index = next
                continue
            }
            let expression = String(text[text.index(after: next)..<close])
            let (name, fallback): (String, String?) = {
                if let range = expression.range(of: ":-") {
                    return (String(expression[..<range.lowerBound]), String(expression[range.upperBound...]))
                }
                return (expression, nil)
            }()
            let validName = !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
            if !validName {
                diagnostics.report(path, "'${\(expression)}' is not a valid variable reference; use ${NAME} or ${NAME:-default}")
            } else if let value = environment[name], !value.isEmpty {
                result += value
            } else if let fallback {
                result += fallback
            } else {
                diagnostics.report(path, "environment variable \(name) is not set")
            }
            index = text.index(after: close)
        }
        return result
    }
}
