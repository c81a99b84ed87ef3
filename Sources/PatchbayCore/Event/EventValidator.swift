import Foundation

/// One broken rule in a request body, named by its field path: `window.start: expected an RFC 3339 date-time`.
public struct FieldProblem: Sendable, Hashable, Codable, CustomStringConvertible {
    public var field: String
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field): \(message)" }
}

public struct EventValidationError: Error, Sendable, CustomStringConvertible {
    public var problems: [FieldProblem]
    public var description: String { problems.map(\.description).joined(separator: "; ") }
}

/// Checks a request body against the event rules (the same ones `Schemas/patch-event.schema.json`
/// states) and produces a `PatchEvent` with window times resolved to UTC.
public struct EventValidator: Sendable {
    public static let maxNameLength = 200
    public static let maxPackages = 10_000
    public static let maxPackageLength = 500

    static let allowedFields: Set<String> = [
        "id", "type", "app", "environment", "instance", "window", "packages", "occurredAt", "tags", "details",
    ]

    /// Supplies the zone for a local window time when the event names none: the zone of the first
    /// route that matches the event.
    public typealias ZoneFallback = @Sendable (_ app: String, _ environment: String, _ tags: [String: String]) -> TimeZone?

    let zoneFallback: ZoneFallback

    public init(zoneFallback: @escaping ZoneFallback = { _, _, _ in nil }) {
        self.zoneFallback = zoneFallback
    }

    public func validate(body: Data) throws(EventValidationError) -> PatchEvent {
        let json: JSONValue
        do {
            json = try JSONValue.parse(body)
        } catch {
            throw EventValidationError(problems: [FieldProblem(field: "body", message: "is not valid JSON")])
        }
        return try validate(json: json)
    }

    public func validate(json: JSONValue) throws(EventValidationError) -> PatchEvent {
        var problems: [FieldProblem] = []
        guard case .object(let fields) = json else {
            throw EventValidationError(problems: [FieldProblem(field: "body", message: "expected a JSON object, got \(json.typeName)")])
        }
        for key in fields.keys.sorted() where !Self.allowedFields.contains(key) {
            problems.append(FieldProblem(field: key, message: "is not a known field"))
        }

        let id = optionalString(fields["id"], field: "id", maxLength: Self.maxNameLength, identity: true, &problems)
        var type: EventType?
        if let raw = requiredString(fields["type"], field: "type", maxLength: 64, &problems) {
            type = EventType(rawValue: raw)
            if type == nil {
                let allowed = EventType.allCases.map(\.rawValue).joined(separator: ", ")
                problems.append(FieldProblem(field: "type", message: "must be one of \(allowed)"))
            }
        }
        let app = requiredString(fields["app"], field: "app", maxLength: Self.maxNameLength, identity: true, &problems)
        let environment = requiredString(fields["environment"], field: "environment", maxLength: Self.maxNameLength, identity: true, &problems)

        var instance: Instance?
        if let value = fields["instance"], value != .null {
            if case .object(let members) = value {
                for key in members.keys.sorted() where key != "id" && key != "name" {
                    problems.append(FieldProblem(field: "instance.\(key)", message: "is not a known field"))
                }
                let instanceID = requiredString(members["id"], field: "instance.id", maxLength: Self.maxNameLength, identity: true, &problems)
                let name = optionalString(members["name"], field: "instance.name", maxLength: Self.maxNameLength, identity: true, &problems)
                if let instanceID { instance = Instance(id: instanceID, name: name) }
            } else {
                problems.append(FieldProblem(field: "instance", message: "expected an object, got \(value.typeName)"))
            }
        }

        var tags: [String: String] = [:]
        if let value = fields["tags"], value != .null {
            if case .object(let members) = value {
                for (key, tagValue) in members {
                    if let text = tagValue.stringValue {
                        tags[key] = text
                    } else {
                        problems.append(FieldProblem(field: "tags.\(key)", message: "expected a string, got \(tagValue.typeName)"))
                    }
                }
            } else {
                problems.append(FieldProblem(field: "tags", message: "expected an object of strings, got \(value.typeName)"))
            }
        }

        var packages: [String] = []
        if let value = fields["packages"], value != .null {
            if case .array(let items) = value {
                if items.count > Self.maxPackages {
                    problems.append(FieldProblem(field: "packages", message: "has \(items.count) entries; at most \(Self.maxPackages) are allowed"))
                }
                for (index, item) in items.prefix(Self.maxPackages).enumerated() {
                    if let text = item.stringValue, !text.isEmpty, text.count <= Self.maxPackageLength {
                        packages.append(text)
                    } else if let text = item.stringValue {
                        let rule = text.isEmpty ? "must not be empty" : "is longer than \(Self.maxPackageLength) characters"
                        problems.append(FieldProblem(field: "packages[\(index)]", message: rule))
                    } else {
                        problems.append(FieldProblem(field: "packages[\(index)]", message: "expected a string, got \(item.typeName)"))
                    }
                }
            } else {
                problems.append(FieldProblem(field: "packages", message: "expected an array of strings, got \(value.typeName)"))
            }
        }

        var occurredAt: Date?
        if let value = fields["occurredAt"], value != .null {
            if let text = value.stringValue, let date = Timestamp.parseRFC3339(text) {
                if Timestamp.supportedRange.contains(date) {
                    occurredAt = date
                } else {
                    problems.append(FieldProblem(field: "occurredAt", message: Self.outOfRange))
                }
            } else {
                problems.append(
                    FieldProblem(field: "occurredAt", message: "expected an RFC 3339 date-time with an offset, like 2026-12-04T08:41:07Z"))
            }
        }

        var details: [String: JSONValue] = [:]
        if let value = fields["details"], value != .null {
            if case .object(let members) = value {
                details = members
            } else {
                problems.append(FieldProblem(field: "details", message: "expected an object, got \(value.typeName)"))
            }
        }

        let window = validateWindow(fields["window"], app: app, environment: environment, tags: tags, &problems)

        guard problems.isEmpty, let type, let app, let environment, let window else {
            throw EventValidationError(problems: problems)
        }
        return PatchEvent(
            id: id, type: type, app: app, environment: environment, instance: instance, window: window,
            packages: packages, occurredAt: occurredAt, tags: tags, details: details)
    }

    private func validateWindow(
        _ value: JSONValue?, app: String?, environment: String?, tags: [String: String], _ problems: inout [FieldProblem]
    ) -> MaintenanceWindow? {
        guard let value, value != .null else {
            problems.append(FieldProblem(field: "window", message: "is required"))
            return nil
        }
        guard case .object(let members) = value else {
            problems.append(FieldProblem(field: "window", message: "expected an object, got \(value.typeName)"))
            return nil
        }
        for key in members.keys.sorted() where !["id", "start", "end", "timezone"].contains(key) {
            problems.append(FieldProblem(field: "window.\(key)", message: "is not a known field"))
        }
        let windowID = optionalString(members["id"], field: "window.id", maxLength: Self.maxNameLength, identity: true, &problems)
        var zone: TimeZone?
        let zoneName = optionalString(members["timezone"], field: "window.timezone", maxLength: 64, &problems)
        if let zoneName {
            zone = ZonedTime.ianaZone(named: zoneName)
            if zone == nil {
                problems.append(FieldProblem(field: "window.timezone", message: "is not an IANA time zone name like America/Los_Angeles"))
            }
        }
        let fallbackZone: TimeZone? = {
            if let zone { return zone }
            guard zoneName == nil, let app, let environment else { return nil }
            return zoneFallback(app, environment, tags)
        }()
        let start = resolveTime(members["start"], field: "window.start", zone: fallbackZone, zoneGiven: zoneName != nil, &problems)
        let end = resolveTime(members["end"], field: "window.end", zone: fallbackZone, zoneGiven: zoneName != nil, &problems)
        guard let start, let end else { return nil }
        // Checked after the zone is applied: 9999-12-31T23:30:00-01:00 is in year 10000 in UTC.
        for (field, instant) in [("window.start", start), ("window.end", end)] where !Timestamp.supportedRange.contains(instant) {
            problems.append(FieldProblem(field: field, message: Self.outOfRange))
        }
        guard Timestamp.supportedRange.contains(start), Timestamp.supportedRange.contains(end) else { return nil }
        guard end > start else {
            problems.append(FieldProblem(field: "window.end", message: "must be after window.start"))
            return nil
        }
        return MaintenanceWindow(id: windowID, start: start, end: end, timezone: zoneName ?? fallbackZone?.identifier)
    }

    private func resolveTime(
        _ value: JSONValue?, field: String, zone: TimeZone?, zoneGiven: Bool, _ problems: inout [FieldProblem]
    ) -> Date? {
        guard let value, value != .null else {
            problems.append(FieldProblem(field: field, message: "is required"))
            return nil
        }
        guard let text = value.stringValue else {
            problems.append(FieldProblem(field: field, message: "expected an RFC 3339 date-time, got \(value.typeName)"))
            return nil
        }
        if let instant = Timestamp.parseRFC3339(text) { return instant }
        guard let local = LocalDateTime.parse(text) else {
            problems.append(
                FieldProblem(
                    field: field,
                    message:
                        "expected an RFC 3339 date-time (2026-12-04T00:30:00-08:00) or a local date-time (2026-12-04T00:30:00) with window.timezone"))
            return nil
        }
        guard let zone else {
            if !zoneGiven {
                problems.append(
                    FieldProblem(
                        field: field,
                        message: "has no UTC offset and neither window.timezone nor a matching route's timezone says which zone it is in"))
            }
            return nil
        }
        switch ZonedTime.resolve(local, in: zone) {
        case .instant(let date):
            return date
        case .nonexistent:
            problems.append(
                FieldProblem(
                    field: field, message: "\(local) does not exist in \(zone.identifier): the clocks skip it when daylight saving time begins"))
            return nil
        }
    }

    static let outOfRange = "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z once converted to UTC"

    private func requiredString(
        _ value: JSONValue?, field: String, maxLength: Int, identity: Bool = false,
        _ problems: inout [FieldProblem]
    ) -> String? {
        guard let value, value != .null else {
            problems.append(FieldProblem(field: field, message: "is required"))
            return nil
        }
        return checkedString(value, field: field, maxLength: maxLength, identity: identity, &problems)
    }

    private func optionalString(
        _ value: JSONValue?, field: String, maxLength: Int, identity: Bool = false,
        _ problems: inout [FieldProblem]
    ) -> String? {
        guard let value, value != .null else { return nil }
        return checkedString(value, field: field, maxLength: maxLength, identity: identity, &problems)
    }

    /// C0 and C1 control characters except tab: CR, LF and ESC in a name would forge log lines and
    /// drive an operator's terminal through `deliveries list`.
    static func isForbiddenInNames(_ scalar: Unicode.Scalar) -> Bool {
        (scalar.value < 0x20 && scalar != "\t") || (0x7F...0x9F).contains(scalar.value)
    }

    private func checkedString(
        _ value: JSONValue, field: String, maxLength: Int, identity: Bool,
        _ problems: inout [FieldProblem]
    ) -> String? {
        guard let text = value.stringValue else {
            problems.append(FieldProblem(field: field, message: "expected a string, got \(value.typeName)"))
            return nil
        }
        // Character.isWhitespace, not Foundation's trimming (which showed in the intake profile).
        if text.allSatisfy(\.isWhitespace) {
            problems.append(FieldProblem(field: field, message: "must not be empty"))
            return nil
        }
        if text.count > maxLength {
            problems.append(FieldProblem(field: field, message: "is longer than \(maxLength) characters"))
            return nil
        }
        if identity, let bad = text.unicodeScalars.first(where: Self.isForbiddenInNames) {
            problems.append(FieldProblem(field: field, message: "must not contain control characters (found U+\(String(format: "%04X", bad.value)))"))
            return nil
        }
        if text.unicodeScalars.contains(where: { $0 == "\u{1F}" || $0 == "\u{0}" }) {
            problems.append(FieldProblem(field: field, message: "must not contain control characters U+0000 or U+001F"))
            return nil
        }
        return text
    }
}
