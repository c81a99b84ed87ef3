import Foundation
import HTTPTypes
import PatchbayCore

/// PagerDuty under `/pagerduty`: REST API v2 maintenance windows (`maintenance_windows[/<id>]`)
/// with its error shape and rate-limit headers [PD1][PD4], and Events API v2 change events
/// (`v2/change/enqueue`) [PE2]. Facts are from `shared/reference/channels.md` §1–2.
///
/// Wrong methods and unknown paths answer 404, never 405: the target reads a 405 as "the window
/// had already ended", which only DELETE of an ended window answers here.
///
/// Rules from vendor-specs/pagerduty/rest-openapiv3.json: paths `/maintenance_windows` (post) and
/// `/maintenance_windows/{id}` (put, delete), whose `parameters` require the headers
/// `#/components/parameters/header_Accept`, `header_Content-Type` (enum application/json) and, on
/// POST, `from_header` (format email); `security: api_key` ("Token token=<API_KEY>"); bodies
/// `{"maintenance_window": #/components/schemas/MaintenanceWindow}` (required). And from
/// vendor-specs/pagerduty/events-v2-openapiv3.json: `paths./change/enqueue.post` (requestBody
/// application/json; `payload` and `routing_key` required) with `#/components/schemas/
/// ChangeEventPayload`, `Links`, `Images`. The REST spec marks reference `id`/`type` read-only
/// while requiring them (SOURCES.md): they are required here, and read-only members of the window
/// (`id`, `summary`, `self`, `html_url`, `sequence_number`, `teams`, `created_by`) are ignored, not refused.
enum PagerDutyEmulation {
    static let vendor = "pagerduty"
    /// [PD4]: 960 requests a minute per key; the numbers are a plausible steady state.
    static let limitHeaders = [("ratelimit-limit", "960"), ("ratelimit-remaining", "959"), ("ratelimit-reset", "60")]
    static let fromHeader = HTTPField.Name("From")
    /// `header_Accept`: required; its default `application/vnd.pagerduty+json;version=2` pins the version.
    static let acceptV2 = "application/vnd.pagerduty+json;version=2"

    /// `MaintenanceWindow` (allOf `Tag/allOf/0` and its own members): `required: [start_time,
    /// end_time, services, type]`, `type` enum maintenance_window; `services` items
    /// `ServiceReference` (= `Reference`, required `type` and `id`, `type` enum service_reference).
    static let windowShape: Shape = .members(
        [
            "type": .oneOf(["maintenance_window"]),
            "start_time": .text(format: .dateTime),
            "end_time": .text(format: .dateTime),
            "description": .plainText,
            "services": .list(.members(["id": .plainText, "type": .oneOf(["service_reference"])], required: ["type", "id"])),
            "created_by": .anyObject,
            "teams": .list(.anyObject),
            "sequence_number": .anyInteger,
            "id": .plainText,
            "summary": .nullable(.plainText),
            "self": .nullable(.plainText),
            "html_url": .nullable(.plainText),
        ], required: ["start_time", "end_time", "services", "type"])

    /// The change event body: `payload` (`ChangeEventPayload`, `summary` required) and
    /// `routing_key` required; `links` items need `href`, `images` items `src`.
    static let changeEventShape: Shape = .members(
        [
            "routing_key": .plainText,
            "payload": .members(
                [
                    "summary": .plainText,
                    "timestamp": .text(format: .dateTime),
                    "source": .plainText,
                    "custom_details": .anyObject,
                ], required: ["summary"]),
            "links": .list(.members(["href": .plainText, "text": .plainText], required: ["href"])),
            "images": .list(.members(["src": .plainText, "href": .plainText, "alt": .plainText], required: ["src"])),
        ], required: ["payload", "routing_key"])
    static let tokenPrefix = "Token token="
    /// `payload.summary` is at most 1024 characters [PE1].
    static let maxSummary = 1024
    /// "Size ≤ 512 KB per payload" [PE3] (channels.md §2; 512,000 as Alertmanager counts it, the
    /// lower of the two readings).
    static let maxEventBytes = 512_000

    static func answer(
        method: String, parts: [String], body: String, headers: HTTPFields,
        windows: inout [String: [String: JSONValue]], nextID: inout Int
    ) -> Sink.Answer {
        if parts == ["v2", "change", "enqueue"] {
            return changeEvent(method: method, body: body, headers: headers)
        }
        guard parts.first == "maintenance_windows", parts.count <= 2 else { return restError(404, code: 2100, "Not Found") }
        // Exactly `Token token=<key>`, or 401 [PD2].
        guard let auth = headers[.authorization], auth.hasPrefix(tokenPrefix), auth.count > tokenPrefix.count else {
            return restError(401, code: 2006, "Invalid Credentials")
        }
        let now = Date()
        let known = (method == "POST" && parts.count == 1) || ((method == "PUT" || method == "DELETE") && parts.count == 2)
        if known, let problem = headerProblem(headers) {
            return restError(400, code: 2001, "Invalid Input Provided", errors: [problem])
        }
        switch (method, parts.count) {
        case ("POST", 1):
            // The spec marks From required on POST only [PD1], as an e-mail address.
            guard let from = fromHeader.flatMap({ headers[$0] }), !from.isEmpty else {
                return restError(400, code: 2001, "Invalid Input Provided", errors: ["From header is required"])
            }
            guard SpecCheck.matches(from, .email) else {
                return restError(400, code: 2001, "Invalid Input Provided", errors: ["From header must be the e-mail address of a user"])
            }
            let (parsed, problem) = window(in: body, now: now)
            guard var window = parsed else { return restError(400, code: 2001, "Invalid Input Provided", errors: [problem ?? "Invalid input"]) }
            nextID += 1
            let id = windowID(nextID)
            window["id"] = .string(id)
            window["self"] = .string("https://api.pagerduty.com/maintenance_windows/\(id)")
            window["summary"] = window["description"] ?? .string(id)
            windows[id] = window
            return ok(201, .object(["maintenance_window": .object(window)]))
        case ("PUT", 2):
            let id = parts[1]
            guard let existing = windows[id] else { return restError(404, code: 2100, "Not Found") }
            let (parsed, problem) = window(in: body, now: now)
            guard let changes = parsed else { return restError(400, code: 2001, "Invalid Input Provided", errors: [problem ?? "Invalid input"]) }
            var window = existing
            for (key, value) in changes { window[key] = value }
            window["id"] = .string(id)
            windows[id] = window
            return ok(200, .object(["maintenance_window": .object(window)]))
        case ("DELETE", 2):
            let id = parts[1]
            guard var window = windows[id] else { return restError(404, code: 2100, "Not Found") }
            let start = window["start_time"]?.stringValue.flatMap(Timestamp.parseRFC3339) ?? now
            let end = window["end_time"]?.stringValue.flatMap(Timestamp.parseRFC3339) ?? now
            if end <= now {
                // A finished window cannot be deleted [PD1]. The wording is ours: no capture of
                // PagerDuty's 405 body was found.
                return restError(405, code: nil, "The maintenance window has already ended and cannot be deleted")
            }
            if start <= now {
                // A running window is ended at once and stays on record [PD1].
                window["end_time"] = .string(Timestamp.rfc3339(now))
                windows[id] = window
            } else {
                windows.removeValue(forKey: id)
            }
            return Sink.Answer(vendor: vendor, status: 204, body: "", headers: limitHeaders)
        default:
            return restError(404, code: 2100, "Not Found")
        }
    }

    /// The `maintenance_window` of a create or update body, with the spec's rules applied: type,
    /// start, end and services required; end after start and in the future; a past start becomes
    /// now [PD1]. Returns the stored fields, or why the body is refused.
    static func window(in body: String, now: Date) -> (window: [String: JSONValue]?, problem: String?) {
        guard let json = try? JSONDecoder().decode(JSONValue.self, from: Data(body.utf8)) else { return (nil, "Invalid JSON") }
        guard case .object(var window)? = json["maintenance_window"] else { return (nil, "maintenance_window is required") }
        if let problem = SpecCheck.problem(.object(window), windowShape, at: [.key("maintenance_window")]) {
            return (nil, problem.description)
        }
        guard window["type"]?.stringValue == "maintenance_window" else { return (nil, "Type must be maintenance_window") }
        guard let startText = window["start_time"]?.stringValue else { return (nil, "Start Time is required") }
        guard let endText = window["end_time"]?.stringValue else { return (nil, "End Time is required") }
        guard let start = Timestamp.parseRFC3339(startText) else { return (nil, "Start Time must be an ISO 8601 date-time") }
        guard let end = Timestamp.parseRFC3339(endText) else { return (nil, "End Time must be an ISO 8601 date-time") }
        guard case .array(let services)? = window["services"], !services.isEmpty else { return (nil, "Services must not be empty") }
        for service in services {
            guard let id = service["id"]?.stringValue, !id.isEmpty, service["type"]?.stringValue == "service_reference" else {
                return (nil, "Services must be service references with an id")
            }
        }
        guard end > start else { return (nil, "End Time must be after Start Time") }
        guard end > now else { return (nil, "End Time must be in the future") }
        if start < now { window["start_time"] = .string(Timestamp.rfc3339(now)) }
        return (window, nil)
    }

    /// `header_Content-Type` (enum application/json) and `header_Accept` (required) are
    /// parameters of every maintenance-window operation, DELETE included. An Accept that names
    /// PagerDuty's media type must name version 2.
    static func headerProblem(_ headers: HTTPFields) -> String? {
        guard SpecCheck.isJSON(headers) else { return "Content-Type header must be application/json" }
        guard let accept = headers[.accept], !accept.trimmingCharacters(in: .whitespaces).isEmpty else {
            return "Accept header is required (\(acceptV2))"
        }
        let compact = accept.lowercased().filter { $0 != " " }
        if compact.contains("application/vnd.pagerduty+json"), !compact.contains(acceptV2) {
            return "Accept header must ask for version 2 (\(acceptV2))"
        }
        return nil
    }

    /// `PW` and five characters, like PagerDuty's `PW98YIO`.
    static func windowID(_ number: Int) -> String {
        let digits = String(max(0, number) % (36 * 36 * 36 * 36 * 36), radix: 36, uppercase: true)
        return "PW" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits
    }

    /// 202 with `{status, message}`; 400 with `{status, message, errors}` for a missing routing
    /// key or summary, or a summary over 1024 characters [PE2][PE6].
    static func changeEvent(method: String, body: String, headers: HTTPFields = HTTPFields()) -> Sink.Answer {
        func invalid(_ error: String) -> Sink.Answer {
            Sink.Answer(
                vendor: vendor, status: 400,
                body: encode(
                    .object([
                        "status": .string("invalid event"), "message": .string("Event object is invalid"), "errors": .array([.string(error)]),
                    ])))
        }
        guard method == "POST" else {
            return Sink.Answer(vendor: vendor, status: 404, body: encode(.object(["status": .string("not found"), "message": .string("Not Found")])))
        }
        // The requestBody is application/json only.
        guard SpecCheck.isJSON(headers) else { return invalid("Content-Type must be application/json") }
        guard body.utf8.count <= maxEventBytes else { return invalid("Event object is larger than \(maxEventBytes) bytes") }
        guard let json = try? JSONDecoder().decode(JSONValue.self, from: Data(body.utf8)), case .object = json else {
            return invalid("Invalid JSON")
        }
        guard let key = json["routing_key"]?.stringValue, !key.isEmpty else { return invalid("'routing_key' is missing or blank") }
        guard case .object? = json["payload"] else { return invalid("'payload' is missing") }
        if let problem = SpecCheck.problem(json, changeEventShape) { return invalid("'\(problem.location)' \(problem.message)") }
        guard let summary = json["payload"]?["summary"]?.stringValue, !summary.isEmpty else {
            return invalid("'payload.summary' is missing or blank")
        }
        guard summary.unicodeScalars.count <= maxSummary else { return invalid("'payload.summary' must be at most \(maxSummary) characters") }
        return Sink.Answer(
            vendor: vendor, status: 202,
            body: encode(
                .object([
                    "status": .string("success"), "message": .string("Change event processed"),
                ])))
    }

    /// `{"error":{"code":n,"message":"...","errors":[...]}}` [PD1], with the rate-limit headers.
    static func restError(_ status: Int, code: Int?, _ message: String, errors: [String] = []) -> Sink.Answer {
        var fields: [String: JSONValue] = ["message": .string(message)]
        if let code { fields["code"] = .number(Double(code)) }
        if !errors.isEmpty { fields["errors"] = .array(errors.map(JSONValue.string)) }
        return Sink.Answer(vendor: vendor, status: status, body: encode(.object(["error": .object(fields)])), headers: limitHeaders)
    }

    static func ok(_ status: Int, _ json: JSONValue) -> Sink.Answer {
        Sink.Answer(vendor: vendor, status: status, body: encode(json), headers: limitHeaders)
    }

    static func encode(_ value: JSONValue) -> String {
        (try? String(decoding: JSONEncoder.patchbay().encode(value), as: UTF8.self)) ?? "{}"
    }
}
