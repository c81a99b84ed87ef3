import Foundation
import HTTPTypes
import PatchbayCore

/// Datadog downtimes API v2 under `/datadog/api/v2/downtime[/<id>]`: POST schedules (200, not
/// 201), PATCH moves (200), DELETE cancels (204); `{"errors":[...]}` bodies and X-RateLimit
/// headers as documented (channels.md section 3, [DD1]-[DD7]).
///
/// Rules from vendor-specs/datadog/openapi-v2.yaml: paths `/api/v2/downtime` (post) and
/// `/api/v2/downtime/{downtime_id}` (patch, delete), requestBody `application/json`, security
/// `apiKeyAuth` + `appKeyAuth`; bodies `#/components/schemas/DowntimeCreateRequest` and
/// `DowntimeUpdateRequest` with the `Downtime*` schemas they refer to.
enum DatadogEmulation {
    static let apiKeyField = HTTPField.Name("DD-API-KEY")!
    static let applicationKeyField = HTTPField.Name("DD-APPLICATION-KEY")!

    /// Generous values, so a client that honours them never pauses against the sink; a test that
    /// wants a pause scripts its own answer.
    static let limitHeaders = [
        ("X-RateLimit-Limit", "1000"), ("X-RateLimit-Period", "60"), ("X-RateLimit-Remaining", "999"),
        ("X-RateLimit-Reset", "60"), ("X-RateLimit-Name", "downtime"),
    ]

    /// `DowntimeCreateRequestAttributes` / `DowntimeUpdateRequestAttributes` members other than
    /// `scope`, `monitor_identifier` and `schedule`, which `scopeProblem`, `identifierProblem` and
    /// `scheduleProblem` check: `DowntimeDisplayTimezone` and `DowntimeMessage` (nullable
    /// strings), `DowntimeMuteFirstRecoveryNotification`, `DowntimeNotifyEndStates` (items
    /// `DowntimeNotifyEndStateTypes`), `DowntimeNotifyEndTypes` (items `DowntimeNotifyEndStateActions`).
    static let attributeShape: Shape = .members([
        "display_timezone": .nullable(.plainText),
        "message": .nullable(.plainText),
        "mute_first_recovery_notification": .boolean,
        "notify_end_states": .list(.oneOf(["alert", "no data", "warn"])),
        "notify_end_types": .list(.oneOf(["canceled", "expired"])),
        "scope": .plainText,
        "monitor_identifier": .anyObject,
        "schedule": .anyObject,
    ])

    static func answer(
        method: String, parts: [String], body: String, headers: HTTPFields,
        downtimes: inout [String: [String: JSONValue]], nextID: inout Int
    ) -> Sink.Answer {
        func errors(_ status: Int, _ message: String) -> Sink.Answer {
            .init(vendor: "datadog", status: status, body: encode(.object(["errors": .array([.string(message)])])), headers: limitHeaders)
        }
        func ok(_ id: String, _ attributes: [String: JSONValue]) -> Sink.Answer {
            let data: JSONValue = .object(["id": .string(id), "type": .string("downtime"), "attributes": .object(attributes)])
            return .init(vendor: "datadog", status: 200, body: encode(.object(["data": data])), headers: limitHeaders)
        }
        guard (3...4).contains(parts.count), parts[0] == "api", parts[1] == "v2", parts[2] == "downtime" else {
            return errors(404, "Not found")
        }
        guard let apiKey = headers[apiKeyField], !apiKey.isEmpty,
            let applicationKey = headers[applicationKeyField], !applicationKey.isEmpty
        else {
            return errors(403, "Forbidden")
        }
        // The requestBody of POST and PATCH is application/json only.
        if method == "POST" || method == "PATCH", !SpecCheck.isJSON(headers) {
            return errors(400, "Content-Type must be application/json")
        }
        let json = try? JSONValue.parse(Data(body.utf8))
        let data = json?["data"]
        let attributes: [String: JSONValue]? = {
            if case .object(let fields)? = data?["attributes"] { return fields }
            return nil
        }()
        let now = Date()
        switch (method, parts.count) {
        case ("POST", 3):
            guard let attributes else { return errors(400, "Invalid JSON: data.attributes is required") }
            guard data?["type"]?.stringValue == "downtime" else { return errors(400, "data.type must be downtime") }
            if let problem = SpecCheck.problem(.object(attributes), attributeShape, at: [.key("data"), .key("attributes")]) {
                return errors(400, problem.description)
            }
            if let problem = scopeProblem(attributes["scope"]) ?? identifierProblem(attributes["monitor_identifier"]) {
                return errors(400, problem)
            }
            guard let schedule = attributes["schedule"] else { return errors(400, "schedule is required") }
            if let problem = scheduleProblem(schedule) { return errors(400, problem) }
            nextID += 1
            let id = uuid(nextID)
            var downtime = attributes
            downtime["status"] = .string(status(of: schedule, now: now))
            downtime["created"] = .string(Timestamp.rfc3339(now))
            downtime["modified"] = .string(Timestamp.rfc3339(now))
            downtimes[id] = downtime
            return ok(id, downtime)
        case ("PATCH", 4):
            let id = parts[3]
            guard var downtime = downtimes[id] else { return errors(404, "Downtime not found") }
            // The id travels in the body as well as the path, and both must agree [DD4].
            guard data?["id"]?.stringValue == id else { return errors(400, "data.id must match the downtime id in the path") }
            guard let attributes else { return errors(400, "Invalid JSON: data.attributes is required") }
            // DowntimeUpdateRequestData: `required: [id, type, attributes]`, type `DowntimeResourceType`.
            guard data?["type"]?.stringValue == "downtime" else { return errors(400, "data.type must be downtime") }
            if let problem = SpecCheck.problem(.object(attributes), attributeShape, at: [.key("data"), .key("attributes")]) {
                return errors(400, problem.description)
            }
            if let scope = attributes["scope"], let problem = scopeProblem(scope) { return errors(400, problem) }
            if let identifier = attributes["monitor_identifier"], let problem = identifierProblem(identifier) { return errors(400, problem) }
            if let schedule = attributes["schedule"], let problem = scheduleProblem(schedule) { return errors(400, problem) }
            for (key, value) in attributes { downtime[key] = value }
            downtime["status"] = .string(status(of: downtime["schedule"] ?? .null, now: now))
            downtime["modified"] = .string(Timestamp.rfc3339(now))
            downtimes[id] = downtime
            return ok(id, downtime)
        case ("DELETE", 4):
            guard downtimes.removeValue(forKey: parts[3]) != nil else { return errors(404, "Downtime not found") }
            return .init(vendor: "datadog", status: 204, body: "", contentType: "text/plain", headers: limitHeaders)
        default:
            return errors(405, "Method Not Allowed")
        }
    }

    static func scopeProblem(_ scope: JSONValue?) -> String? {
        guard let text = scope?.stringValue, !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            return "scope is required: a Datadog search query like env:prod"
        }
        return nil
    }

    /// `{"monitor_id": <int>}` or `{"monitor_tags": [...]}` with at least one tag, not both [DD4].
    static func identifierProblem(_ identifier: JSONValue?) -> String? {
        guard case .object(let fields)? = identifier else { return "monitor_identifier is required" }
        switch (fields["monitor_id"], fields["monitor_tags"]) {
        case (.number(let id)?, nil):
            return Int64(exactly: id) == nil ? "monitor_identifier.monitor_id must be an integer" : nil
        case (nil, .array(let tags)?):
            guard !tags.isEmpty else { return "monitor_identifier.monitor_tags must contain at least one tag" }
            guard tags.allSatisfy({ ($0.stringValue?.isEmpty ?? true) == false }) else {
                return "monitor_identifier.monitor_tags must be non-empty strings"
            }
            return nil
        default:
            return "monitor_identifier must have exactly one of monitor_id or monitor_tags"
        }
    }

    /// One-time schedules: ISO 8601 with a zero UTC offset [DD4]. A missing start means now, as
    /// in the API; a missing end would mute for ever, which the sink refuses on purpose so a
    /// Patchbay that forgot the end shows up in tests.
    ///
    /// `DowntimeScheduleOneTimeCreateUpdateRequest` is `additionalProperties: false` with nullable
    /// `start` and `end` ("Must include a UTC offset of zero"); `Z` and `+00:00` both say so.
    static func scheduleProblem(_ schedule: JSONValue) -> String? {
        guard case .object(let fields) = schedule else { return "schedule must be an object" }
        if fields["recurrences"] != nil { return "the sink emulates one-time schedules only" }
        for key in fields.keys.sorted() where key != "start" && key != "end" {
            return "schedule.\(key) is not a member of a one-time schedule (start, end)"
        }
        var start: Date?
        if let value = fields["start"], value != .null {
            guard let text = value.stringValue, hasZeroOffset(text), let date = Timestamp.parseRFC3339(text) else {
                return "schedule.start must be an ISO 8601 date-time with a zero UTC offset (ending in Z)"
            }
            start = date
        }
        guard let value = fields["end"], value != .null else {
            return "schedule.end is required by the sink (an endless downtime is never meant)"
        }
        guard let text = value.stringValue, hasZeroOffset(text), let end = Timestamp.parseRFC3339(text) else {
            return "schedule.end must be an ISO 8601 date-time with a zero UTC offset (ending in Z)"
        }
        if let start, end <= start { return "schedule.end must be after schedule.start" }
        return nil
    }

    static func hasZeroOffset(_ text: String) -> Bool {
        text.hasSuffix("Z") || text.hasSuffix("z") || text.hasSuffix("+00:00") || text.hasSuffix("-00:00")
    }

    /// `scheduled`, `active` or `ended`, as `data.attributes.status` reports it [DD2][DD4].
    static func status(of schedule: JSONValue, now: Date) -> String {
        let start = (schedule["start"]?.stringValue).flatMap(Timestamp.parseRFC3339) ?? now
        let end = (schedule["end"]?.stringValue).flatMap(Timestamp.parseRFC3339)
        if let end, end <= now { return "ended" }
        return start > now ? "scheduled" : "active"
    }

    /// A UUID-shaped id, like the API's, numbered so tests can predict it.
    static func uuid(_ number: Int) -> String {
        let digits = String(number.magnitude)
        return "00000000-0000-4000-8000-" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits
    }

    private static func encode(_ value: JSONValue) -> String {
        (try? String(decoding: JSONEncoder.patchbay().encode(value), as: UTF8.self)) ?? "{}"
    }
}
