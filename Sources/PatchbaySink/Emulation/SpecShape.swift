import Foundation
import HTTPTypes
import PatchbayCore

/// A small subset of JSON Schema, enough to write down what a vendor's own API description says
/// about a request body (types, required members, enums, lengths, closed objects) beside the
/// citation of that description. The descriptions themselves stay in
/// `shared/reference/vendor-specs/` and are not copied into the project (SOURCES.md there); every
/// shape in an emulation names the file and the schema it was read from.
indirect enum Shape: Sendable {
    /// Anything, JSON null included.
    case anything
    case string(TextRule)
    /// A JSON number without a fractional part, within the bounds.
    case integer(min: Double?, max: Double?)
    case number
    case boolean
    case array(of: Shape, min: Int?, max: Int?)
    case object(ObjectRule)
    /// The shape, or JSON null (OpenAPI `nullable: true`, JSON Schema `type: [..., "null"]`).
    case nullable(Shape)
    /// JSON Schema `anyOf`: the value fits when one of the shapes fits.
    case anyOf([Shape])
    /// An object whose member `by` names its shape (Adaptive Card elements by `type`): an unknown
    /// name is refused as the schema's `anyOf` of implementations refuses it.
    case tagged(by: String, [String: Shape])
}

struct TextRule: Sendable {
    var minLength: Int? = nil
    /// Counted in Unicode code points, as JSON Schema counts `maxLength`.
    var maxLength: Int? = nil
    var values: [String]? = nil
    /// Adaptive Card enums also accept any capitalisation (their `pattern` alternative).
    var ignoringCase: Bool = false
    var format: TextFormat? = nil
}

enum TextFormat: Sendable {
    /// RFC 3339 with an offset (OpenAPI `format: date-time`).
    case dateTime
    /// An absolute URI with a scheme (`format: uri`).
    case uri
    /// `local@domain` (`format: email`).
    case email
    /// Discord's `SnowflakeType`: `^(0|[1-9][0-9]*)$`.
    case snowflake
    /// `1234,5678`: integers separated by commas (Pingdom's prose form of `uptimeids`).
    case commaSeparatedIntegers

    var name: String {
        switch self {
        case .dateTime: "an RFC 3339 date-time with an offset"
        case .uri: "an absolute URI"
        case .email: "an e-mail address"
        case .snowflake: "a snowflake (decimal digits)"
        case .commaSeparatedIntegers: "comma separated integers"
        }
    }
}

struct ObjectRule: Sendable {
    var properties: [String: Shape]
    var required: [String]
    var others: OtherMembers
}

/// What an object does with members its schema does not name.
indirect enum OtherMembers: Sendable {
    /// Ignored (OpenAPI's default: `additionalProperties` left out).
    case allowed
    /// Refused (`additionalProperties: false`, or Google's parser: "Unknown name").
    case refused
    /// Each must have this shape (`additionalProperties: {schema}`, maps).
    case each(Shape)
}

extension Shape {
    static var plainText: Shape { .string(TextRule()) }
    static func text(min: Int? = nil, max: Int? = nil, format: TextFormat? = nil) -> Shape {
        .string(TextRule(minLength: min, maxLength: max, format: format))
    }
    static func oneOf(_ values: [String], ignoringCase: Bool = false) -> Shape {
        .string(TextRule(values: values, ignoringCase: ignoringCase))
    }
    static var anyInteger: Shape { .integer(min: nil, max: nil) }
    static func list(_ item: Shape, min: Int? = nil, max: Int? = nil) -> Shape { .array(of: item, min: min, max: max) }
    /// An object that refuses members it does not name.
    static func onlyMembers(_ properties: [String: Shape], required: [String] = []) -> Shape {
        .object(ObjectRule(properties: properties, required: required, others: .refused))
    }
    /// An object that ignores members it does not name.
    static func members(_ properties: [String: Shape], required: [String] = []) -> Shape {
        .object(ObjectRule(properties: properties, required: required, others: .allowed))
    }
    /// An object used as a map: every member has the shape `value`.
    static func map(_ value: Shape) -> Shape {
        .object(ObjectRule(properties: [:], required: [], others: .each(value)))
    }
    /// Any JSON object; its members are not checked.
    static var anyObject: Shape { .members([:]) }
}

/// One step of the way to a refused value: a member name or an array index.
enum PathItem: Sendable, Equatable {
    case key(String)
    case index(Int)

    var text: String {
        switch self {
        case .key(let name): name
        case .index(let index): String(index)
        }
    }
}

/// Why a body does not fit its shape, and where.
struct SpecProblem: Sendable, Equatable, CustomStringConvertible {
    enum Code: Sendable, Equatable {
        case required, type, enumeration, unknownField, tooLong, tooShort, tooMany, tooFew, range, format
    }

    var path: [PathItem]
    var code: Code
    var message: String

    /// `incident.components.cmp1`, `attachments[0].fields[1].title`.
    var location: String {
        var text = ""
        for item in path {
            switch item {
            case .key(let name): text += text.isEmpty ? name : "." + name
            case .index(let index): text += "[\(index)]"
            }
        }
        return text
    }

    var description: String { location.isEmpty ? message : "\(location) \(message)" }

    /// The member's name (the last key of the path), or "".
    var field: String {
        for item in path.reversed() {
            if case .key(let name) = item { return name }
        }
        return ""
    }
}

enum SpecCheck {
    /// How a vendor reads JSON. Google's protobuf JSON parser treats null as "not set" and takes
    /// the proto field names (`cards_v2`) as well as the JSON ones (`cardsV2`) (SOURCES.md,
    /// freshness note on Google Chat).
    enum Dialect: Sendable {
        case openAPI
        case protoJSON
    }

    /// The first place `value` does not fit `shape` (members in name order), or nil.
    static func problem(_ value: JSONValue, _ shape: Shape, at path: [PathItem] = [], dialect: Dialect = .openAPI) -> SpecProblem? {
        func fail(_ code: SpecProblem.Code, _ message: String) -> SpecProblem {
            SpecProblem(path: path, code: code, message: message)
        }
        switch shape {
        case .anything:
            return nil
        case .nullable(let inner):
            if case .null = value { return nil }
            return problem(value, inner, at: path, dialect: dialect)
        case .anyOf(let shapes):
            var first: SpecProblem?
            for candidate in shapes {
                guard let found = problem(value, candidate, at: path, dialect: dialect) else { return nil }
                if first == nil { first = found }
            }
            return first ?? fail(.type, "matches none of the allowed forms")
        default:
            break
        }
        if dialect == .protoJSON, case .null = value { return nil }
        switch shape {
        case .anything, .nullable, .anyOf:
            return nil
        case .string(let rule):
            guard case .string(let text) = value else { return fail(.type, "must be a string, got \(value.typeName)") }
            return textProblem(text, rule, at: path)
        case .integer(let min, let max):
            guard case .number(let number) = value, number.isFinite, number.rounded() == number else {
                return fail(.type, "must be an integer, got \(value.typeName)")
            }
            if let min, number < min { return fail(.range, "must be at least \(Int64(min))") }
            if let max, number > max { return fail(.range, "must be at most \(Int64(max))") }
            return nil
        case .number:
            guard case .number = value else { return fail(.type, "must be a number, got \(value.typeName)") }
            return nil
        case .boolean:
            guard case .bool = value else { return fail(.type, "must be a boolean, got \(value.typeName)") }
            return nil
        case .array(let item, let min, let max):
            guard case .array(let items) = value else { return fail(.type, "must be an array, got \(value.typeName)") }
            if let min, items.count < min { return fail(.tooFew, "must have at least \(min) item\(min == 1 ? "" : "s")") }
            if let max, items.count > max { return fail(.tooMany, "must have at most \(max) items, got \(items.count)") }
            for (index, element) in items.enumerated() {
                if let found = problem(element, item, at: path + [.index(index)], dialect: dialect) { return found }
            }
            return nil
        case .object(let rule):
            guard case .object(let members) = value else { return fail(.type, "must be an object, got \(value.typeName)") }
            // Member name as sent → the name the schema uses.
            var canonical: [String: String] = [:]
            var present: Set<String> = []
            for (key, member) in members {
                let name = dialect == .protoJSON ? camelCase(key) : key
                canonical[key] = name
                if dialect == .protoJSON, case .null = member { continue }
                present.insert(name)
            }
            for name in rule.required where !present.contains(name) {
                return SpecProblem(path: path + [.key(name)], code: .required, message: "is required")
            }
            for key in members.keys.sorted() {
                guard let member = members[key] else { continue }
                let name = canonical[key] ?? key
                if let memberShape = rule.properties[name] {
                    if let found = problem(member, memberShape, at: path + [.key(key)], dialect: dialect) { return found }
                    continue
                }
                switch rule.others {
                case .allowed:
                    continue
                case .refused:
                    return SpecProblem(path: path + [.key(key)], code: .unknownField, message: "is not a known field")
                case .each(let memberShape):
                    if let found = problem(member, memberShape, at: path + [.key(key)], dialect: dialect) { return found }
                }
            }
            return nil
        case .tagged(let key, let table):
            guard case .object(let members) = value else { return fail(.type, "must be an object, got \(value.typeName)") }
            guard let member = members[key] else {
                return SpecProblem(path: path + [.key(key)], code: .required, message: "is required")
            }
            guard let tag = member.stringValue else {
                return SpecProblem(path: path + [.key(key)], code: .type, message: "must be a string, got \(member.typeName)")
            }
            guard let tagShape = table[tag] else {
                return SpecProblem(
                    path: path + [.key(key)], code: .enumeration,
                    message: "'\(tag)' is not one of \(table.keys.sorted().joined(separator: ", "))")
            }
            return problem(value, tagShape, at: path, dialect: dialect)
        }
    }

    static func textProblem(_ text: String, _ rule: TextRule, at path: [PathItem]) -> SpecProblem? {
        if let values = rule.values {
            let fits =
                rule.ignoringCase
                ? values.contains { $0.lowercased() == text.lowercased() }
                : values.contains(text)
            if !fits {
                let listed = values.map { "'\($0)'" }.joined(separator: ", ")
                return SpecProblem(path: path, code: .enumeration, message: "must be one of \(listed), got '\(text)'")
            }
        }
        let length = text.unicodeScalars.count
        if let min = rule.minLength, length < min {
            return SpecProblem(path: path, code: .tooShort, message: "must be at least \(min) character\(min == 1 ? "" : "s") long")
        }
        if let max = rule.maxLength, length > max {
            return SpecProblem(path: path, code: .tooLong, message: "must be at most \(max) characters, got \(length)")
        }
        if let format = rule.format, !matches(text, format) {
            return SpecProblem(path: path, code: .format, message: "must be \(format.name)")
        }
        return nil
    }

    static func matches(_ text: String, _ format: TextFormat) -> Bool {
        switch format {
        case .dateTime:
            return Timestamp.parseRFC3339(text) != nil
        case .uri:
            guard let scheme = URLComponents(string: text)?.scheme else { return false }
            return !scheme.isEmpty
        case .email:
            let parts = text.split(separator: "@", omittingEmptySubsequences: false)
            return parts.count == 2 && !parts[0].isEmpty && !parts[1].isEmpty
                && !text.unicodeScalars.contains { CharacterSet.whitespacesAndNewlines.contains($0) }
        case .snowflake:
            guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return false }
            return text == "0" || !text.hasPrefix("0")
        case .commaSeparatedIntegers:
            let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            return !parts.isEmpty && parts.allSatisfy { Int64($0.trimmingCharacters(in: .whitespaces)) != nil }
        }
    }

    /// `cards_v2` → `cardsV2`, `thread_key` → `threadKey`; names without `_` are unchanged.
    static func camelCase(_ name: String) -> String {
        guard name.contains("_") else { return name }
        let parts = name.split(separator: "_", omittingEmptySubsequences: true)
        guard let first = parts.first else { return name }
        var result = String(first)
        for part in parts.dropFirst() {
            result += String(part.prefix(1)).uppercased() + String(part.dropFirst())
        }
        return result
    }

    // MARK: Headers, forms, queries

    /// The media type of `Content-Type` without parameters, lower-cased (`application/json` from
    /// `application/json; charset=utf-8`), or nil when the header is missing or empty.
    static func mediaType(_ headers: HTTPFields) -> String? {
        guard let value = headers[.contentType] else { return nil }
        let type =
            value.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first
            .map { String($0).trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return type.isEmpty ? nil : type
    }

    static func isJSON(_ headers: HTTPFields) -> Bool { mediaType(headers) == "application/json" }

    static let formType = "application/x-www-form-urlencoded"

    /// `a=1&b=x+y%21` → `["a": "1", "b": "x y!"]` (URL-encoded forms and query strings).
    static func formFields(_ text: String) -> [String: String] {
        func decode(_ part: Substring) -> String {
            let spaced = part.replacingOccurrences(of: "+", with: " ")
            return spaced.removingPercentEncoding ?? spaced
        }
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let first = parts.first else { continue }
            let name = decode(first)
            guard !name.isEmpty else { continue }
            fields[name] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }

    static func queryFields(_ query: String?) -> [String: String] {
        guard let query, !query.isEmpty else { return [:] }
        return formFields(query)
    }

    static func json(_ value: JSONValue) -> String {
        (try? String(decoding: JSONEncoder.patchbay().encode(value), as: UTF8.self)) ?? "{}"
    }
}
