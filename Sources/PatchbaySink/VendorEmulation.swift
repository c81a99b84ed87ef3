import Foundation
import HTTPTypes
import PatchbayCore

/// Slack answers 200 `ok` as plain text, and 400 `invalid_payload` / `no_text` for bodies it cannot use.
enum SlackEmulation {
    static func answer(method: String, body: String) -> Sink.Answer {
        guard method == "POST" else { return .init(vendor: "slack", status: 405, body: "invalid_method", contentType: "text/plain") }
        guard let json = try? JSONDecoder().decode(JSONValue.self, from: Data(body.utf8)), case .object = json else {
            return .init(vendor: "slack", status: 400, body: "invalid_payload", contentType: "text/plain")
        }
        guard json["text"] != nil || json["attachments"] != nil || json["blocks"] != nil else {
            return .init(vendor: "slack", status: 400, body: "no_text", contentType: "text/plain")
        }
        return .init(vendor: "slack", status: 200, body: "ok", contentType: "text/plain")
    }
}

/// Teams Workflows answers 202 with no body; the legacy connector answers 200 `1`.
enum TeamsEmulation {
    static func workflows(method: String, body: String) -> Sink.Answer {
        guard method == "POST" else { return .init(vendor: "teams", status: 405, body: "") }
        guard let json = try? JSONDecoder().decode(JSONValue.self, from: Data(body.utf8)), case .array? = json["attachments"] else {
            return .init(vendor: "teams", status: 400, body: #"{"error":{"code":"InvalidRequestContent","message":"The request content is not valid: attachments must be an array."}}"#)
        }
        return .init(vendor: "teams", status: 202, body: "", contentType: "text/plain")
    }

    static func connector(method: String, body: String) -> Sink.Answer {
        guard method == "POST" else { return .init(vendor: "teams", status: 405, body: "") }
        guard let json = try? JSONDecoder().decode(JSONValue.self, from: Data(body.utf8)) else {
            return .init(vendor: "teams", status: 400, body: "Bad payload received by generic incoming webhook.", contentType: "text/plain")
        }
        guard json["summary"] != nil || json["text"] != nil else {
            return .init(vendor: "teams", status: 400, body: "Summary or Text is required.", contentType: "text/plain")
        }
        return .init(vendor: "teams", status: 200, body: "1", contentType: "text/plain")
    }
}

/// Statuspage incidents under `/statuspage/v1/pages/<page>/incidents`, with its ErrorEntity shape.
enum StatuspageEmulation {
    static func answer(method: String, parts: [String], body: String, headers: HTTPFields,
                       incidents: inout [String: [String: JSONValue]]) -> Sink.Answer {
        func error(_ status: Int, _ message: String) -> Sink.Answer {
            .init(vendor: "statuspage", status: status, body: encode(.object(["message": .string(message)])))
        }
        guard parts.count >= 4, parts[0] == "v1", parts[1] == "pages", parts[3] == "incidents" else {
            return error(404, "Not found")
        }
        guard let auth = headers[.authorization], auth.hasPrefix("OAuth "), auth.count > 6 else {
            return error(401, "Could not authenticate")
        }
        let page = parts[2]
        let incidentFields: [String: JSONValue]? = {
            guard let json = try? JSONDecoder().decode(JSONValue.self, from: Data(body.utf8)), case .object(let fields)? = json["incident"] else { return nil }
            return fields
        }()
        switch (method, parts.count) {
        case ("POST", 4):
            guard let fields = incidentFields else { return error(400, "incident is missing") }
            guard let name = fields["name"]?.stringValue, !name.isEmpty else { return error(422, "Name can't be blank") }
            let id = "sp" + String(incidents.count + 1) + "x" + String(page.prefix(4))
            var incident = fields
            incident["id"] = .string(id)
            incident["page_id"] = .string(page)
            incident["name"] = .string(name)
            incident["shortlink"] = .string("https://stspg.io/\(id)")
            incident["status"] = fields["status"] ?? .string("investigating")
            incidents[id] = incident
            return .init(vendor: "statuspage", status: 201, body: encode(.object(incident)))
        case ("PATCH", 5), ("PUT", 5):
            guard var incident = incidents[parts[4]] else { return error(404, "Incident not found") }
            guard let fields = incidentFields else { return error(400, "incident is missing") }
            for (key, value) in fields { incident[key] = value }
            incidents[parts[4]] = incident
            return .init(vendor: "statuspage", status: 200, body: encode(.object(incident)))
        case ("DELETE", 5):
            guard let incident = incidents.removeValue(forKey: parts[4]) else { return error(404, "Incident not found") }
            return .init(vendor: "statuspage", status: 200, body: encode(.object(incident)))
        default:
            return error(405, "Method not allowed")
        }
    }
}

/// Pingdom 3.1 maintenance windows under `/pingdom/api/3.1/maintenance`, with its error shape and
/// rate-limit headers.
enum PingdomEmulation {
    static let limitHeaders = [("Req-Limit-Short", "Remaining: 394 Time until reset: 3589"),
                               ("Req-Limit-Long", "Remaining: 71994 Time until reset: 2591989")]

    static func answer(method: String, parts: [String], body: String, headers: HTTPFields,
                       windows: inout [Int: [String: JSONValue]], nextID: inout Int) -> Sink.Answer {
        func error(_ status: Int, _ description: String, _ message: String) -> Sink.Answer {
            .init(vendor: "pingdom", status: status, body: encode(.object(["error": .object([
                "statuscode": .number(Double(status)), "statusdesc": .string(description), "errormessage": .string(message),
            ])])), headers: limitHeaders)
        }
        func ok(_ json: JSONValue) -> Sink.Answer {
            .init(vendor: "pingdom", status: 200, body: encode(json), headers: limitHeaders)
        }
        guard parts.count >= 3, parts[0] == "api", parts[1] == "3.1", parts[2] == "maintenance" else {
            return error(404, "Not Found", "Unknown resource")
        }
        guard let auth = headers[.authorization], auth.hasPrefix("Bearer "), auth.count > 7 else {
            return error(401, "Unauthorized", "Invalid or missing token")
        }
        let fields: [String: JSONValue] = {
            if let json = try? JSONDecoder().decode(JSONValue.self, from: Data(body.utf8)), case .object(let fields) = json { return fields }
            return [:]
        }()
        let now = Date().timeIntervalSince1970
        switch (method, parts.count) {
        case ("POST", 3):
            for required in ["description", "from", "to"] where fields[required] == nil {
                return error(400, "Bad Request", "Missing required parameter: \(required)")
            }
            guard case .number(let from)? = fields["from"], case .number(let to)? = fields["to"] else {
                return error(400, "Bad Request", "from and to must be UNIX timestamps")
            }
            guard to > from else { return error(400, "Bad Request", "to must be after from") }
            nextID += 1
            var window = fields
            window["id"] = .number(Double(nextID))
            windows[nextID] = window
            return ok(.object(["maintenance": .object(["id": .number(Double(nextID))])]))
        case ("PUT", 4):
            guard let id = Int(parts[3]), var window = windows[id] else { return error(404, "Not Found", "Maintenance window not found") }
            for (key, value) in fields { window[key] = value }
            windows[id] = window
            return ok(.object(["message": .string("Maintenance window successfully modified!")]))
        case ("DELETE", 4):
            guard let id = Int(parts[3]), let window = windows[id] else { return error(404, "Not Found", "Maintenance window not found") }
            if case .number(let from)? = window["from"], from <= now {
                return error(403, "Forbidden", "Only future maintenance windows can be deleted")
            }
            windows.removeValue(forKey: id)
            return ok(.object(["message": .string("Maintenance window successfully deleted!")]))
        default:
            return error(405, "Method Not Allowed", "Method not allowed")
        }
    }
}

private func encode(_ value: JSONValue) -> String {
    (try? String(decoding: JSONEncoder.patchbay().encode(value), as: UTF8.self)) ?? "{}"
}
