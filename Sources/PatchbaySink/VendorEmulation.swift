import Foundation
import HTTPTypes
import PatchbayCore

/// Slack answers 200 `ok` as plain text, and 400 `invalid_payload` / `no_text` for bodies it cannot use.
///
/// Slack publishes no machine-readable description of incoming webhooks (vendor-specs/SOURCES.md,
/// "Vendors with no machine-readable description"), so these rules come from its docs, not a spec:
/// error strings from api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks
/// (`invalid_payload`: the body does not match its Content-Type or cannot be understood), field
/// types from api.slack.com/reference/messaging/attachments, the 50-block limit from docs.slack.dev
/// (targets.md §1.2, §1.6). Unknown fields are ignored, as Slack ignores them.
enum SlackEmulation {
    /// Block Kit: every block names its `type`.
    static let block: Shape = .members(["type": .plainText], required: ["type"])

    /// api.slack.com/reference/messaging/attachments: the field list, `fields[{title,value,short}]`,
    /// `mrkdwn_in` ⊂ pretext/text/fields, `ts` (an integer in Slack's example, a string in
    /// @slack/types: both taken).
    static let attachment: Shape = .members([
        "fallback": .plainText, "color": .plainText, "pretext": .plainText,
        "author_name": .plainText, "author_link": .plainText, "author_icon": .plainText,
        "title": .plainText, "title_link": .plainText, "text": .plainText,
        "image_url": .plainText, "thumb_url": .plainText, "footer": .plainText, "footer_icon": .plainText,
        "fields": .list(.members(["title": .plainText, "value": .plainText, "short": .boolean])),
        "mrkdwn_in": .list(.oneOf(["pretext", "text", "fields"])),
        "ts": .anyOf([.number, .plainText]),
        "blocks": .list(block),
    ])

    static let message: Shape = .members([
        "text": .plainText,
        "attachments": .list(attachment),
        "blocks": .list(block, max: 50),
        "mrkdwn": .boolean,
        "thread_ts": .plainText,
    ])

    static func answer(method: String, body: String, headers: HTTPFields = HTTPFields()) -> Sink.Answer {
        func refuse(_ code: String) -> Sink.Answer { .init(vendor: "slack", status: 400, body: code, contentType: "text/plain") }
        guard method == "POST" else { return .init(vendor: "slack", status: 405, body: "invalid_method", contentType: "text/plain") }
        // JSON, or a form whose `payload` field holds the JSON; any other Content-Type does not
        // match the body. A missing one is read as JSON.
        let type = SpecCheck.mediaType(headers)
        let text: String
        if type == nil || type == "application/json" {
            text = body
        } else if type == SpecCheck.formType, let payload = SpecCheck.formFields(body)["payload"] {
            text = payload
        } else {
            return refuse("invalid_payload")
        }
        guard let json = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)), case .object = json else {
            return refuse("invalid_payload")
        }
        if let problem = SpecCheck.problem(json, message) {
            let inBlocks = problem.path.first.map { $0 == .key("blocks") } ?? false
            return refuse(inBlocks ? "invalid_blocks" : "invalid_payload")
        }
        guard json["text"] != nil || json["attachments"] != nil || json["blocks"] != nil else {
            return refuse("no_text")
        }
        return .init(vendor: "slack", status: 200, body: "ok", contentType: "text/plain")
    }
}

/// Teams Workflows answers 202 with no body; the legacy connector answers 200 `1`.
///
/// The Workflows envelope and the MessageCard have no published schema (SOURCES.md): their rules
/// come from msteams-docs connectors-using.md / add-incoming-webhook.md and the message-card
/// reference (targets.md §2). The Adaptive Card inside the envelope is checked against
/// vendor-specs/teams-adaptive/adaptive-card-1.4.0.json (1.5.0 for cards of version 1.5).
///
/// One deliberate difference: a real Workflows webhook answers 202 to any body and the card
/// fails later, in the flow's run history (targets.md §2.3). The sink refuses at once with 400, so
/// a card Teams would not show fails the test that sent it.
enum TeamsEmulation {
    /// "The message size limit is 28 KB. When the size exceeds 28 KB, you receive an error."
    /// (add-incoming-webhook.md; targets.md §2.1, §2.3).
    static let maxBytes = 28 * 1024
    static let adaptiveContentType = "application/vnd.microsoft.card.adaptive"

    static func workflows(method: String, body: String, headers: HTTPFields = HTTPFields()) -> Sink.Answer {
        func invalid(_ message: String) -> Sink.Answer {
            .init(
                vendor: "teams", status: 400,
                body: SpecCheck.json(
                    .object([
                        "error": .object([
                            "code": .string("InvalidRequestContent"), "message": .string("The request content is not valid: \(message)"),
                        ])
                    ])))
        }
        guard method == "POST" else { return .init(vendor: "teams", status: 405, body: "") }
        guard body.utf8.count <= maxBytes else {
            return .init(
                vendor: "teams", status: 413,
                body: SpecCheck.json(
                    .object([
                        "error": .object([
                            "code": .string("RequestEntityTooLarge"),
                            "message": .string("The message is \(body.utf8.count) bytes; Teams takes at most \(maxBytes)."),
                        ])
                    ])))
        }
        // The docs post with `Content-Type: application/json`; another type does not match the body.
        if let type = SpecCheck.mediaType(headers), type != "application/json" {
            return invalid("the Content-Type must be application/json, got \(type).")
        }
        guard let json = try? JSONDecoder().decode(JSONValue.self, from: Data(body.utf8)), case .array(let attachments)? = json["attachments"] else {
            return invalid("attachments must be an array.")
        }
        for (index, attachment) in attachments.enumerated() {
            if let problem = attachmentProblem(attachment, index: index) { return invalid(problem) }
        }
        return .init(vendor: "teams", status: 202, body: "", contentType: "text/plain")
    }

    /// `{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": {card}}`
    /// (connectors-using.md, "Send Adaptive Cards using an Incoming Webhook"; Workflows webhooks
    /// take Adaptive Cards only).
    static func attachmentProblem(_ attachment: JSONValue, index: Int) -> String? {
        let at = "attachments[\(index)]"
        guard case .object(let fields) = attachment else { return "\(at) must be an object." }
        guard let contentType = fields["contentType"]?.stringValue else { return "\(at).contentType is required." }
        guard contentType == adaptiveContentType else {
            return "\(at).contentType must be \(adaptiveContentType), got '\(contentType)'."
        }
        if let url = fields["contentUrl"], url != .null, url.stringValue == nil { return "\(at).contentUrl must be a string or null." }
        guard let content = fields["content"] else { return "\(at).content is required." }
        if let problem = cardProblem(content) { return "\(at).content: \(problem)." }
        return nil
    }

    /// The card against the Adaptive Card schema of its version: `#/definitions/AdaptiveCard`,
    /// `additionalProperties: false`. `msteams` is a documented Teams extension that this schema
    /// rejects (SOURCES.md, "Known differences"; cards-format.md `"msteams": {"width": "Full"}`):
    /// it is checked by hand and removed first, as strict validators do.
    static func cardProblem(_ card: JSONValue) -> String? {
        guard case .object(var fields) = card else { return "must be an Adaptive Card object, got \(card.typeName)" }
        if let msteams = fields.removeValue(forKey: "msteams") {
            guard case .object(let options) = msteams else { return "msteams must be an object" }
            if let width = options["width"], width.stringValue?.lowercased() != "full" { return "msteams.width must be Full" }
        }
        // "Version is not required for cards within an `Action.ShowCard`. However, it *is* required
        // for the top-level card." (#/definitions/AdaptiveCard/properties/version)
        guard let version = fields["version"] else { return "version is required" }
        guard let number = version.stringValue else { return "version must be a string, got \(version.typeName)" }
        let shape = (Double(number) ?? 0) >= 1.5 ? card15 : card14
        return SpecCheck.problem(.object(fields), shape).map(\.description)
    }

    static let card14 = cardShape(version15: false)
    static let card15 = cardShape(version15: true)

    /// adaptive-card-1.4.0.json / adaptive-card-1.5.0.json `#/definitions/...`: the card, and the
    /// two elements Patchbay sends (TextBlock, FactSet with Fact) member by member; the other
    /// element kinds (`ImplementationsOf.Element`) and actions are checked for being objects only.
    /// The enums (`Colors`, `FontSize`, ...) take any capitalisation, as their `pattern` alternative does.
    static func cardShape(version15: Bool) -> Shape {
        func anyCase(_ values: [String]) -> Shape { .oneOf(values, ignoringCase: true) }
        // Extendable.Element, Extendable.ToggleableItem, Extendable.Item: members every element has.
        let common: [String: Shape] = [
            "fallback": .anyOf([.anyObject, anyCase(["drop"])]),
            "height": anyCase(["auto", "stretch"]),
            "separator": .boolean,
            "spacing": anyCase(["default", "none", "small", "medium", "large", "extraLarge", "padding"]),
            "id": .plainText,
            "isVisible": .boolean,
            "requires": .map(.plainText),
        ]
        // TextBlock: additionalProperties false, required text.
        var textBlock = common.merging([
            "type": .oneOf(["TextBlock"]),
            "text": .plainText,
            "color": anyCase(["default", "dark", "light", "accent", "good", "warning", "attention"]),
            "fontType": anyCase(["default", "monospace"]),
            "horizontalAlignment": anyCase(["left", "center", "right"]),
            "isSubtle": .boolean,
            "maxLines": .number,
            "size": anyCase(["default", "small", "medium", "large", "extraLarge"]),
            "weight": anyCase(["default", "lighter", "bolder"]),
            "wrap": .boolean,
        ]) { _, new in new }
        if version15 { textBlock["style"] = .nullable(anyCase(["default", "heading"])) }
        // Fact: additionalProperties false, required title and value. FactSet: required facts.
        let fact: Shape = .onlyMembers(["type": .oneOf(["Fact"]), "title": .plainText, "value": .plainText], required: ["title", "value"])
        let factSet = common.merging(["type": .oneOf(["FactSet"]), "facts": .list(fact)]) { _, new in new }
        var elements: [String: Shape] = [
            "TextBlock": .onlyMembers(textBlock, required: ["text"]),
            "FactSet": .onlyMembers(factSet, required: ["facts"]),
        ]
        var others = [
            "ActionSet", "ColumnSet", "Container", "Image", "ImageSet", "Input.ChoiceSet", "Input.Date",
            "Input.Number", "Input.Text", "Input.Time", "Input.Toggle", "Media", "RichTextBlock",
        ]
        if version15 { others.append("Table") }
        for name in others { elements[name] = .anyObject }
        var card: [String: Shape] = [
            "type": .oneOf(["AdaptiveCard"]),
            "version": .plainText,
            "refresh": .anyObject,
            "authentication": .anyObject,
            "body": .list(.tagged(by: "type", elements)),
            "actions": .list(.anyObject),
            "selectAction": .anyObject,
            "fallbackText": .plainText,
            "backgroundImage": .anyOf([.anyObject, .plainText]),
            "minHeight": .plainText,
            "speak": .plainText,
            "lang": .plainText,
            "verticalContentAlignment": anyCase(["top", "center", "bottom"]),
            "$schema": .text(format: .uri),
        ]
        if version15 { card["rtl"] = .nullable(.boolean) }
        return .onlyMembers(card)
    }

    /// The MessageCard (learn.microsoft.com/outlook/actionable-messages/message-card-reference):
    /// `@type` must be MessageCard, `@context` http://schema.org/extensions, sections and facts as
    /// listed there. Simple `{"text": ...}` bodies stay accepted.
    static let messageCard: Shape = .members([
        "@type": .oneOf(["MessageCard"]),
        "@context": .oneOf(["http://schema.org/extensions"]),
        "summary": .plainText,
        "title": .plainText,
        "text": .plainText,
        "themeColor": .plainText,
        "sections": .list(
            .members([
                "title": .plainText, "startGroup": .boolean, "activityImage": .plainText, "activityTitle": .plainText,
                "activitySubtitle": .plainText, "activityText": .plainText, "heroImage": .anyObject, "text": .plainText,
                "markdown": .boolean, "facts": .list(.members(["name": .plainText, "value": .plainText])),
                "images": .list(.anyObject), "potentialAction": .list(.anyObject),
            ])),
        "potentialAction": .list(.anyObject),
    ])

    static func connector(method: String, body: String, headers: HTTPFields = HTTPFields()) -> Sink.Answer {
        func bad() -> Sink.Answer {
            .init(vendor: "teams", status: 400, body: "Bad payload received by generic incoming webhook.", contentType: "text/plain")
        }
        guard method == "POST" else { return .init(vendor: "teams", status: 405, body: "") }
        guard body.utf8.count <= maxBytes else {
            // Connectors may also put this inside a 200 (targets.md §2.1); the sink uses the status.
            return .init(vendor: "teams", status: 413, body: "Microsoft Teams endpoint returned HTTP error 413", contentType: "text/plain")
        }
        if let type = SpecCheck.mediaType(headers), type != "application/json" { return bad() }
        guard let json = try? JSONDecoder().decode(JSONValue.self, from: Data(body.utf8)) else { return bad() }
        if SpecCheck.problem(json, messageCard) != nil { return bad() }
        guard json["summary"] != nil || json["text"] != nil else {
            return .init(vendor: "teams", status: 400, body: "Summary or Text is required.", contentType: "text/plain")
        }
        return .init(vendor: "teams", status: 200, body: "1", contentType: "text/plain")
    }
}

/// Statuspage incidents under `/statuspage/v1/pages/<page>/incidents`, with its ErrorEntity shape.
///
/// Rules from vendor-specs/statuspage/statuspage-openapi3.voxgig.json: paths
/// `/pages/{page_id}/incidents` (post) and `/pages/{page_id}/incidents/{incident_id}` (patch, put,
/// delete); bodies `#/components/schemas/postPagesPageIdIncidents`, `patchPagesPageIdIncidents`
/// and `putPagesPageIdIncidents`; `security: api_key` (the Authorization header, `OAuth <key>` in
/// its description). Their requestBody is `application/json` only; Statuspage's docs also take
/// form-encoded bodies, which the sink does not emulate (it answers 415 to them).
enum StatuspageEmulation {
    /// The `incident` members, the same in the three bodies. `components` is a map from component
    /// id to status: the spec writes it as one property named by a random example id (SOURCES.md,
    /// freshness checks). Unknown members are ignored (no `additionalProperties: false`).
    static let incidentMembers: [String: Shape] = [
        // "There is a maximum limit of 255 characters."
        "name": .text(max: 255),
        "status": .oneOf(["investigating", "identified", "monitoring", "resolved", "scheduled", "in_progress", "verifying", "completed"]),
        "impact_override": .oneOf(["none", "maintenance", "minor", "major", "critical"]),
        "scheduled_for": .text(format: .dateTime),
        "scheduled_until": .text(format: .dateTime),
        "scheduled_remind_prior": .boolean,
        "auto_transition_to_maintenance_state": .boolean,
        "auto_transition_to_operational_state": .boolean,
        "scheduled_auto_in_progress": .boolean,
        "scheduled_auto_completed": .boolean,
        "auto_transition_deliver_notifications_at_start": .boolean,
        "auto_transition_deliver_notifications_at_end": .boolean,
        // "DEFAULT: NULL" in its description.
        "reminder_intervals": .nullable(.plainText),
        // "All top-level values in the object must also be objects."
        "metadata": .map(.anyObject),
        "deliver_notifications": .boolean,
        "auto_tweet_at_beginning": .boolean,
        "auto_tweet_on_completion": .boolean,
        "auto_tweet_on_creation": .boolean,
        "auto_tweet_one_hour_before": .boolean,
        "backfill_date": .plainText,
        "backfilled": .boolean,
        // "There is a maximum limit of 25000 characters"
        "body": .text(max: 25_000),
        "components": .map(.oneOf(["operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage", ""])),
        "component_ids": .list(.plainText),
        "scheduled_auto_transition": .boolean,
    ]
    /// postPagesPageIdIncidents: `required: [name]`.
    static let createIncident: Shape = .members(incidentMembers, required: ["name"])
    /// patchPagesPageIdIncidents, putPagesPageIdIncidents.
    static let updateIncident: Shape = .members(incidentMembers)

    static func answer(
        method: String, parts: [String], body: String, headers: HTTPFields,
        incidents: inout [String: [String: JSONValue]]
    ) -> Sink.Answer {
        func error(_ status: Int, _ message: String) -> Sink.Answer {
            .init(vendor: "statuspage", status: status, body: SpecCheck.json(.object(["message": .string(message)])))
        }
        guard parts.count >= 4, parts[0] == "v1", parts[1] == "pages", parts[3] == "incidents" else {
            return error(404, "Not found")
        }
        guard let auth = headers[.authorization], auth.hasPrefix("OAuth "), auth.count > 6 else {
            return error(401, "Could not authenticate")
        }
        let page = parts[2]
        /// The `incident` object of the body once it fits `shape`, or the answer refusing it: 400
        /// for a body that is not there or has the wrong types, 422 (Unprocessable entity) for
        /// values outside the spec's enums, lengths and formats, as Rails validations answer.
        func incidentBody(_ shape: Shape) -> (fields: [String: JSONValue]?, refusal: Sink.Answer?) {
            guard SpecCheck.isJSON(headers) else {
                if SpecCheck.mediaType(headers) == SpecCheck.formType {
                    return (nil, error(415, "The sink emulates JSON bodies only (Content-Type: application/json)"))
                }
                // Without a JSON Content-Type the body is not read as parameters.
                return (nil, error(400, "incident is missing"))
            }
            guard let json = try? JSONDecoder().decode(JSONValue.self, from: Data(body.utf8)), case .object(let fields)? = json["incident"] else {
                return (nil, error(400, "incident is missing"))
            }
            if let problem = SpecCheck.problem(.object(fields), shape, at: [.key("incident")]) {
                switch problem.code {
                case .required where problem.field == "name": return (nil, error(422, "Name can't be blank"))
                case .type, .required, .unknownField: return (nil, error(400, problem.description))
                default: return (nil, error(422, problem.description))
                }
            }
            return (fields, nil)
        }
        switch (method, parts.count) {
        case ("POST", 4):
            let (parsed, refusal) = incidentBody(createIncident)
            if let refusal { return refusal }
            guard let fields = parsed else { return error(400, "incident is missing") }
            guard let name = fields["name"]?.stringValue, !name.isEmpty else { return error(422, "Name can't be blank") }
            let id = "sp" + String(incidents.count + 1) + "x" + String(page.prefix(4))
            var incident = fields
            incident["id"] = .string(id)
            incident["page_id"] = .string(page)
            incident["name"] = .string(name)
            incident["shortlink"] = .string("https://stspg.io/\(id)")
            incident["status"] = fields["status"] ?? .string("investigating")
            incidents[id] = incident
            return .init(vendor: "statuspage", status: 201, body: SpecCheck.json(.object(incident)))
        case ("PATCH", 5), ("PUT", 5):
            guard var incident = incidents[parts[4]] else { return error(404, "Incident not found") }
            let (parsed, refusal) = incidentBody(updateIncident)
            if let refusal { return refusal }
            guard let fields = parsed else { return error(400, "incident is missing") }
            for (key, value) in fields { incident[key] = value }
            incidents[parts[4]] = incident
            return .init(vendor: "statuspage", status: 200, body: SpecCheck.json(.object(incident)))
        case ("DELETE", 5):
            guard let incident = incidents.removeValue(forKey: parts[4]) else { return error(404, "Incident not found") }
            return .init(vendor: "statuspage", status: 200, body: SpecCheck.json(.object(incident)))
        default:
            return error(405, "Method not allowed")
        }
    }
}

/// Pingdom 3.1 maintenance windows under `/pingdom/api/3.1/maintenance`, with its error shape and
/// rate-limit headers.
///
/// Rules from vendor-specs/pingdom/API_3.1.yaml: paths `/maintenance` (post) and
/// `/maintenance/{id}` (put, delete); bodies `#/components/schemas/maintenance_post` and
/// `maintenance_id_put` (requestBody `application/json` or `application/x-www-form-urlencoded`);
/// authentication and parameter encoding from its `info.description` (Bearer, or Basic with the
/// token as user name). That file is a third-party copy that "is not matching the actual API in
/// some cases" (SOURCES.md). Query-string parameters on POST/PUT, which Pingdom also takes, are
/// not emulated.
enum PingdomEmulation {
    static let limitHeaders = [
        ("Req-Limit-Short", "Remaining: 394 Time until reset: 3589"),
        ("Req-Limit-Long", "Remaining: 71994 Time until reset: 2591989"),
    ]

    /// The members of maintenance_post and maintenance_id_put. `uptimeids` and `tmsids` are typed
    /// as arrays of integers but described as "Comma separated Integers", and real clients send
    /// the string (SOURCES.md, known differences): both forms are taken.
    static let windowMembers: [String: Shape] = [
        "description": .plainText,
        "from": .anyInteger,
        "to": .anyInteger,
        "recurrencetype": .oneOf(["none", "day", "week", "month"]),
        "repeatevery": .anyInteger,
        "effectiveto": .anyInteger,
        "uptimeids": .anyOf([.list(.anyInteger), .text(format: .commaSeparatedIntegers)]),
        "tmsids": .anyOf([.list(.anyInteger), .text(format: .commaSeparatedIntegers)]),
    ]
    /// maintenance_post: `required: [description, from, to]`.
    static let createWindow: Shape = .members(windowMembers, required: ["description", "from", "to"])
    /// maintenance_id_put: nothing required.
    static let updateWindow: Shape = .members(windowMembers)
    /// `from`, `to`, `effectiveto`: "Only future allowed. Use 1 for the current timestamp." The
    /// sink allows this much clock difference between client and server; the figure is ours.
    static let clockSkew: Double = 5
    static let timeFields = ["from", "to", "effectiveto"]
    static let integerFields: Set<String> = ["from", "to", "effectiveto", "repeatevery"]

    static func answer(
        method: String, parts: [String], body: String, headers: HTTPFields,
        windows: inout [Int: [String: JSONValue]], nextID: inout Int
    ) -> Sink.Answer {
        func error(_ status: Int, _ description: String, _ message: String) -> Sink.Answer {
            .init(
                vendor: "pingdom", status: status,
                body: SpecCheck.json(
                    .object([
                        "error": .object([
                            "statuscode": .number(Double(status)), "statusdesc": .string(description), "errormessage": .string(message),
                        ])
                    ])), headers: limitHeaders)
        }
        func ok(_ json: JSONValue) -> Sink.Answer {
            .init(vendor: "pingdom", status: 200, body: SpecCheck.json(json), headers: limitHeaders)
        }
        guard parts.count >= 3, parts[0] == "api", parts[1] == "3.1", parts[2] == "maintenance" else {
            return error(404, "Not Found", "Unknown resource")
        }
        guard let auth = headers[.authorization], authorized(auth) else {
            return error(401, "Unauthorized", "Invalid or missing token")
        }
        // "POST, PUT and DELETE requests should provide their parameters as a JSON ... Remember to
        // add the proper content type header"; URL-encoded parameters are still supported.
        var fields: [String: JSONValue] = [:]
        if !body.isEmpty {
            if SpecCheck.isJSON(headers) {
                if let json = try? JSONDecoder().decode(JSONValue.self, from: Data(body.utf8)), case .object(let object) = json {
                    fields = object
                }
            } else if SpecCheck.mediaType(headers) == SpecCheck.formType {
                fields = formParameters(body)
            } else {
                return error(400, "Bad Request", "Parameters must be JSON (Content-Type: application/json) or URL-encoded")
            }
        }
        let now = Date().timeIntervalSince1970
        /// A time parameter as UNIX seconds, `1` meaning now.
        func moment(_ value: JSONValue?) -> Double? {
            guard case .number(let seconds)? = value else { return nil }
            return seconds == 1 ? now.rounded(.down) : seconds
        }
        func pastProblem() -> String? {
            for name in timeFields {
                if let seconds = moment(fields[name]), seconds < now - clockSkew {
                    return "\(name) must be in the future (only future allowed; use 1 for the current timestamp)"
                }
            }
            return nil
        }
        /// The parameters as stored: `1` replaced by the time it stands for.
        func resolved() -> [String: JSONValue] {
            var stored = fields
            for name in timeFields {
                if let seconds = moment(fields[name]) { stored[name] = .number(seconds) }
            }
            return stored
        }
        switch (method, parts.count) {
        case ("POST", 3):
            for required in ["description", "from", "to"] where fields[required] == nil {
                return error(400, "Bad Request", "Missing required parameter: \(required)")
            }
            if let problem = SpecCheck.problem(.object(fields), createWindow) {
                return error(400, "Bad Request", "Invalid parameter: \(problem.description)")
            }
            if let problem = pastProblem() { return error(400, "Bad Request", problem) }
            var window = resolved()
            guard case .number(let from)? = window["from"], case .number(let to)? = window["to"] else {
                return error(400, "Bad Request", "from and to must be UNIX timestamps")
            }
            guard to > from else { return error(400, "Bad Request", "to must be after from") }
            nextID += 1
            window["id"] = .number(Double(nextID))
            windows[nextID] = window
            return ok(.object(["maintenance": .object(["id": .number(Double(nextID))])]))
        case ("PUT", 4):
            guard let id = Int(parts[3]), var window = windows[id] else { return error(404, "Not Found", "Maintenance window not found") }
            if let problem = SpecCheck.problem(.object(fields), updateWindow) {
                return error(400, "Bad Request", "Invalid parameter: \(problem.description)")
            }
            // A `from` in the past is refused even when it is the window's own start: a PUT that
            // extends a started window should send only `to` (SOURCES.md, known differences).
            if let problem = pastProblem() { return error(400, "Bad Request", problem) }
            for (key, value) in resolved() { window[key] = value }
            if case .number(let from)? = window["from"], case .number(let to)? = window["to"], to <= from {
                return error(400, "Bad Request", "to must be after from")
            }
            windows[id] = window
            return ok(.object(["message": .string("Maintenance window successfully modified!")]))
        case ("DELETE", 4):
            guard let id = Int(parts[3]), let window = windows[id] else { return error(404, "Not Found", "Maintenance window not found") }
            // "Note that only future maintenance window can be deleted."
            if case .number(let from)? = window["from"], from <= now {
                return error(403, "Forbidden", "Only future maintenance windows can be deleted")
            }
            windows.removeValue(forKey: id)
            return ok(.object(["message": .string("Maintenance window successfully deleted!")]))
        default:
            return error(405, "Method Not Allowed", "Method not allowed")
        }
    }

    /// `Bearer <token>`, or `Basic` with the token as user name and an empty password
    /// (API_3.1.yaml `info.description`, "Authentication", "Basic Auth").
    static func authorized(_ header: String) -> Bool {
        if header.hasPrefix("Bearer ") { return header.count > 7 }
        guard header.hasPrefix("Basic "),
            let data = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
            let credentials = String(data: data, encoding: .utf8),
            let colon = credentials.firstIndex(of: ":")
        else { return false }
        return colon != credentials.startIndex
    }

    /// URL-encoded parameters as JSON values: the integer parameters as numbers when they read as
    /// integers, everything else (`uptimeids=1,2` included) as strings.
    static func formParameters(_ body: String) -> [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        for (name, value) in SpecCheck.formFields(body) {
            if integerFields.contains(name), let number = Int64(value) {
                fields[name] = .number(Double(number))
            } else {
                fields[name] = .string(value)
            }
        }
        return fields
    }
}
