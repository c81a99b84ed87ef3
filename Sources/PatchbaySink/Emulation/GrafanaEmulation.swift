import Foundation
import HTTPTypes
import PatchbayCore

/// Grafana Alerting's silences under `/grafana/api/alertmanager/grafana/api/v2/…`: Grafana serves
/// Alertmanager's v2 silence API for its own alert manager there (Grafana is not packaged for
/// Debian, so the sink stands in; Alertmanager itself is tested for real). The rules are
/// Alertmanager's (`silence/silence.go` v0.25, `api/v2/api.go`), with Grafana's answers:
///
/// - `POST …/silences` needs matchers (each with `name`, `value`, `isRegex`), `startsAt`, `endsAt`,
///   `createdBy` and `comment`; an end in the past, an end before the start, or matchers that all
///   match the empty string are 400. It answers **202** `{"silenceID": …}`.
/// - A POST with an `id` updates that silence in place only when the matchers are the same and
///   either it is active and keeps its start, or it is pending and the new start is not past;
///   otherwise the old one is expired and a new id answered. An unknown id is 404.
/// - `DELETE …/silence/{id}` expires it (200, also when already expired); unknown: 404.
/// - `GET …/silences?filter=app="App1"` lists the silences holding a matcher exactly like each filter.
/// - Requests without `Authorization` are 401.
enum GrafanaEmulation {
    static let apiPrefix = ["api", "alertmanager", "grafana", "api", "v2"]

    static func answer(_ request: EmulatedRequest, silences: inout [String: [String: JSONValue]], nextID: inout Int) -> Sink.Answer {
        SilenceEmulation.grafana.answer(request, silences: &silences, nextID: &nextID)
    }
}

/// Alertmanager's own API v2 under `/alertmanager/api/v2/…`, for the demo (the tests run Debian's
/// Alertmanager itself): the same silence rules as Grafana's, no authentication (Alertmanager
/// has none), 200 to a create, and 0.25's 500 "silence not found" to a DELETE of an unknown id.
enum AlertmanagerEmulation {
    static func answer(_ request: EmulatedRequest, silences: inout [String: [String: JSONValue]], nextID: inout Int) -> Sink.Answer {
        SilenceEmulation.alertmanager.answer(request, silences: &silences, nextID: &nextID)
    }
}

/// The v2 silence API both emulations answer, with each product's own status codes.
struct SilenceEmulation {
    var vendor: String
    var apiPrefix: [String]
    var requiresAuthorization: Bool
    var createdStatus: Int
    var unknownDeleteStatus: Int

    static let grafana = SilenceEmulation(
        vendor: "grafana", apiPrefix: GrafanaEmulation.apiPrefix, requiresAuthorization: true, createdStatus: 202, unknownDeleteStatus: 404)
    static let alertmanager = SilenceEmulation(
        vendor: "alertmanager", apiPrefix: ["api", "v2"], requiresAuthorization: false, createdStatus: 200, unknownDeleteStatus: 500)

    func answer(_ request: EmulatedRequest, silences: inout [String: [String: JSONValue]], nextID: inout Int) -> Sink.Answer {
        let vendor = vendor
        func message(_ status: Int, _ text: String) -> Sink.Answer {
            .init(vendor: vendor, status: status, body: Self.encode(.object(["message": .string(text)])))
        }
        guard request.parts.count > apiPrefix.count, Array(request.parts.prefix(apiPrefix.count)) == apiPrefix else {
            return message(404, "Not found")
        }
        if requiresAuthorization {
            guard let authorization = request.headers[.authorization], authorization.hasPrefix("Bearer ") || authorization.hasPrefix("Basic ")
            else {
                return message(401, "Unauthorized")
            }
        }
        let rest = Array(request.parts.dropFirst(apiPrefix.count))
        let now = Date()
        switch (request.method, rest.count, rest.first) {
        case ("GET", 1, "silences"):
            var filters: [[String: JSONValue]] = []
            for item in URLComponents(string: "/?" + (request.query ?? ""))?.queryItems ?? [] where item.name == "filter" {
                guard let matcher = Self.parseMatcher(item.value ?? "") else { return message(400, "bad matcher format: \(item.value ?? "")") }
                filters.append(matcher)
            }
            let listed = silences.values.filter { silence in
                let matchers = silence["matchers"].flatMap { value -> [JSONValue]? in if case .array(let items) = value { items } else { nil } } ?? []
                return filters.allSatisfy { filter in
                    matchers.contains { matcher in
                        filter.allSatisfy { key, value in (matcher[key] ?? (key == "isEqual" ? .bool(true) : .null)) == value }
                    }
                }
            }.sorted { ($0["id"]?.stringValue ?? "") < ($1["id"]?.stringValue ?? "") }
            return .init(vendor: vendor, status: 200, body: Self.encode(.array(listed.map { Self.withStatus($0, now: now) })))
        case ("GET", 2, "silence"):
            guard let silence = silences[rest[1]] else { return message(404, "silence not found") }
            return .init(vendor: vendor, status: 200, body: Self.encode(Self.withStatus(silence, now: now)))
        case ("DELETE", 2, "silence"):
            guard var silence = silences[rest[1]] else { return message(unknownDeleteStatus, "silence not found") }
            if Self.state(of: silence, now: now) != "expired" {
                silence["endsAt"] = .string(Timestamp.rfc3339(now))
                if (Self.date(silence["startsAt"]) ?? now) > now {
                    silence["startsAt"] = .string(Timestamp.rfc3339(now))
                }
                silences[rest[1]] = silence
            }
            return .init(vendor: vendor, status: 200, body: "")
        case ("POST", 1, "silences"):
            guard SpecCheck.isJSON(request.headers) else { return message(400, "Content-Type must be application/json") }
            guard case .object(var silence)? = try? JSONValue.parse(Data(request.body.utf8)) else { return message(400, "invalid JSON") }
            if let problem = Self.problem(in: silence, now: now) { return message(400, problem) }
            let submittedStart = Self.date(silence["startsAt"]) ?? now
            if submittedStart < now { silence["startsAt"] = .string(Timestamp.rfc3339(now)) }
            if let id = silence["id"]?.stringValue, !id.isEmpty {
                guard var old = silences[id] else { return message(404, "silence not found") }
                let oldState = Self.state(of: old, now: now)
                let sameMatchers = old["matchers"] == silence["matchers"]
                let oldStart = Self.date(old["startsAt"]).map { Int($0.timeIntervalSince1970) }
                let inPlace =
                    sameMatchers
                    && ((oldState == "active" && oldStart == Int(submittedStart.timeIntervalSince1970))
                        || (oldState == "pending" && submittedStart >= now))
                if inPlace {
                    if oldState == "active" { silence["startsAt"] = old["startsAt"] }
                    silence["updatedAt"] = .string(Timestamp.rfc3339(now))
                    silences[id] = silence
                    return .init(vendor: vendor, status: createdStatus, body: Self.encode(.object(["silenceID": .string(id)])))
                }
                if oldState != "expired" {
                    old["endsAt"] = .string(Timestamp.rfc3339(now))
                    silences[id] = old
                }
            }
            nextID += 1
            let id = String(format: "%08x-0000-4000-8000-%012x", nextID, nextID)
            silence["id"] = .string(id)
            silence["updatedAt"] = .string(Timestamp.rfc3339(now))
            silences[id] = silence
            return .init(vendor: vendor, status: createdStatus, body: Self.encode(.object(["silenceID": .string(id)])))
        default:
            return message(405, "Method Not Allowed")
        }
    }

    static func problem(in silence: [String: JSONValue], now: Date) -> String? {
        guard case .array(let matchers)? = silence["matchers"], !matchers.isEmpty else { return "matchers: at least one matcher is required" }
        var allMatchEmpty = true
        for (index, matcher) in matchers.enumerated() {
            guard let name = matcher["name"]?.stringValue, !name.isEmpty, let value = matcher["value"]?.stringValue,
                case .bool(let isRegex)? = matcher["isRegex"]
            else { return "matchers[\(index)]: name, value and isRegex are required" }
            var isEqual = true
            if case .bool(let equal)? = matcher["isEqual"] { isEqual = equal }
            let matchesEmpty: Bool
            if isRegex {
                guard let regex = try? NSRegularExpression(pattern: "^(?:\(value))$") else { return "matchers[\(index)]: invalid regular expression" }
                matchesEmpty = regex.firstMatch(in: "", range: NSRange(location: 0, length: 0)) != nil
            } else {
                matchesEmpty = value.isEmpty
            }
            if matchesEmpty != isEqual { allMatchEmpty = false }
        }
        if allMatchEmpty { return "silence: at least one matcher must not match the empty string" }
        guard let start = date(silence["startsAt"]), let end = date(silence["endsAt"]) else {
            return "startsAt and endsAt are required RFC 3339 times"
        }
        guard silence["createdBy"]?.stringValue?.isEmpty == false else { return "createdBy is required" }
        guard silence["comment"]?.stringValue?.isEmpty == false else { return "comment is required" }
        if end < now { return "silence: end time can't be in the past" }
        if end <= start { return "silence: start time must be before end time" }
        return nil
    }

    static func parseMatcher(_ text: String) -> [String: JSONValue]? {
        guard let regex = try? NSRegularExpression(pattern: #"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$"#),
            let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
            let name = Range(match.range(at: 1), in: text), let op = Range(match.range(at: 2), in: text),
            let value = Range(match.range(at: 3), in: text)
        else { return nil }
        let unescaped = text[value].replacingOccurrences(of: "\\\"", with: "\"").replacingOccurrences(of: "\\\\", with: "\\")
        let symbol = String(text[op])
        return [
            "name": .string(String(text[name])), "value": .string(unescaped), "isRegex": .bool(symbol.contains("~")),
            "isEqual": .bool(!symbol.hasPrefix("!")),
        ]
    }

    private static func encode(_ value: JSONValue) -> String {
        (try? String(decoding: JSONEncoder().encode(value), as: UTF8.self)) ?? "{}"
    }

    static func date(_ value: JSONValue?) -> Date? { value?.stringValue.flatMap(Timestamp.parseRFC3339) }

    static func state(of silence: [String: JSONValue], now: Date) -> String {
        if let end = date(silence["endsAt"]), end <= now { return "expired" }
        if let start = date(silence["startsAt"]), start > now { return "pending" }
        return "active"
    }

    static func withStatus(_ silence: [String: JSONValue], now: Date) -> JSONValue {
        var copy = silence
        copy["status"] = .object(["state": .string(state(of: silence, now: now))])
        return .object(copy)
    }
}
