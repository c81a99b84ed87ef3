import Foundation
import PatchbayCore
import PatchbayTestSupport
import Testing

@testable import PatchbaySink

/// The sink refuses what the vendor refuses: for each emulation, requests that break a rule of the
/// vendor's own API description (vendor-specs/, cited in Sources/PatchbaySink) get the vendor's
/// error status, and requests shaped like Patchbay's (its golden files) pass.
@Suite("Sink emulations follow the vendors' API descriptions")
struct SinkEmulationSpecTests {
    let sink: Sink

    init() throws {
        sink = try Sink()
    }

    static let jsonHeaders = ["Content-Type": "application/json; charset=utf-8"]

    /// One request and what it must get: a status, and a fragment of the answer's body.
    struct Case {
        var name: String
        var answer: Sink.Answer
        var status: Int
        var fragment: String?

        init(_ name: String, _ answer: Sink.Answer, _ status: Int, _ fragment: String? = nil) {
            self.name = name
            self.answer = answer
            self.status = status
            self.fragment = fragment
        }
    }

    func check(_ cases: [Case]) {
        for item in cases {
            #expect(item.answer.status == item.status, "\(item.name): \(item.answer.status) \(item.answer.body)")
            if let fragment = item.fragment {
                #expect(item.answer.body.contains(fragment), "\(item.name): '\(fragment)' not in \(item.answer.body)")
            }
        }
    }

    /// `body` with `old` replaced by `new`; records an issue when `old` is not there, so a changed
    /// fixture cannot turn a refusal test into a test of the valid body.
    func replacing(_ body: String, _ old: String, _ new: String) -> String {
        #expect(body.contains(old), "fixture lacks \(old)")
        return body.replacingOccurrences(of: old, with: new)
    }

    func post(_ path: String, _ body: String, headers: [String: String] = SinkEmulationSpecTests.jsonHeaders, query: String? = nil) -> Sink.Answer {
        sink.emulate("POST", path, query: query, body: body, headers: headers)
    }

    static func unix(_ seconds: Double) -> Int { Int(Date().timeIntervalSince1970 + seconds) }
    static func rfc3339(_ seconds: Double) -> String { Timestamp.rfc3339(Date(timeIntervalSince1970: Double(unix(seconds)))) }

    // MARK: Slack Web API

    @Test func slackWebAPIPostsAndUpdatesAsStrictlyAsSlack() throws {
        let bot = ["Content-Type": "application/json; charset=utf-8", "Authorization": "Bearer xoxb-1-test"]
        let body = #"{"channel":"C0123456789","text":"Patching Complete","attachments":[{"fallback":"x","title":"t","text":"y"}]}"#
        let posted = post("/slack-api/chat.postMessage", body, headers: bot)
        #expect(posted.status == 200 && posted.body.contains(#""ok":true"#), "\(posted.body)")
        let ts = try #require(try JSONValue.parse(Data(posted.body.utf8))["ts"]?.stringValue)
        check([
            Case("no token", post("/slack-api/chat.postMessage", body), 200, "not_authed"),
            Case(
                "a token that is not a bot's",
                post("/slack-api/chat.postMessage", body, headers: bot.merging(["Authorization": "Bearer xoxa-2"]) { $1 }), 200, "invalid_auth"),
            Case(
                "no channel", post("/slack-api/chat.postMessage", replacing(body, #""channel":"C0123456789","#, ""), headers: bot), 200,
                "channel_not_found"),
            Case(
                "not in the channel", post("/slack-api/chat.postMessage", replacing(body, "C0123456789", "C0NOTINCHAN"), headers: bot), 200,
                "not_in_channel"),
            Case("no text", post("/slack-api/chat.postMessage", #"{"channel":"C0123456789"}"#, headers: bot), 200, "no_text"),
            Case(
                "attachments that are not a list",
                post("/slack-api/chat.postMessage", replacing(body, #"[{"fallback":"x","title":"t","text":"y"}]"#, #""x""#), headers: bot), 200,
                "invalid_arguments"),
            Case(
                "an update of an unknown message", post("/slack-api/chat.update", #"{"channel":"C0123456789","ts":"1.2","text":"x"}"#, headers: bot),
                200, "message_not_found"),
            Case(
                "an update of the posted message",
                post("/slack-api/chat.update", #"{"channel":"C0123456789","ts":"\#(ts)","text":"x"}"#, headers: bot), 200, #""ok":true"#),
            Case(
                "an update answers the message, as the spec requires",
                post("/slack-api/chat.update", #"{"channel":"C0123456789","ts":"\#(ts)","text":"z"}"#, headers: bot), 200, #""message":{"#),
            Case(
                "a reply under the posted message",
                post(
                    "/slack-api/chat.postMessage",
                    replacing(body, #""text":"Patching"#, #""thread_ts":"\#(ts)","reply_broadcast":true,"text":"Patching"#), headers: bot),
                200, #""thread_ts":"\#(ts)""#),
            Case(
                "a reply under no message",
                post("/slack-api/chat.postMessage", replacing(body, #""text":"Patching"#, #""thread_ts":"9.9","text":"Patching"#), headers: bot), 200,
                "thread_not_found"),
            Case(
                "reply_broadcast not a boolean",
                post(
                    "/slack-api/chat.postMessage",
                    replacing(body, #""text":"Patching"#, #""thread_ts":"\#(ts)","reply_broadcast":"yes","text":"Patching"#),
                    headers: bot), 200, "invalid_arguments"),
        ])
    }

    // MARK: Silences

    @Test func silenceAPIsKeepAlertmanagersRules() throws {
        let grafana = "/grafana/api/alertmanager/grafana/api/v2"
        let auth = SinkEmulationSpecTests.jsonHeaders.merging(["Authorization": "Bearer glsa_test"]) { $1 }
        let start = Self.rfc3339(3600)
        let end = Self.rfc3339(7200)
        let silence =
            #"{"matchers":[{"name":"app","value":"App1","isRegex":false}],"startsAt":"\#(start)","endsAt":"\#(end)","createdBy":"Patchbay","comment":"c"}"#
        let created = post("\(grafana)/silences", silence, headers: auth)
        #expect(created.status == 202, "\(created.body)")
        let id = try #require(try JSONValue.parse(Data(created.body.utf8))["silenceID"]?.stringValue)
        let same = replacing(silence, #"{"matchers""#, #"{"id":"\#(id)","matchers""#)
        let inPlace = post("\(grafana)/silences", same, headers: auth)
        #expect(inPlace.body.contains(id), "a pending silence with the same matchers is updated in place: \(inPlace.body)")
        let changed = post("\(grafana)/silences", replacing(same, #""value":"App1""#, #""value":"App2""#), headers: auth)
        #expect(changed.status == 202 && !changed.body.contains(id), "changed matchers answer a new id: \(changed.body)")
        check([
            Case("no authorization", post("\(grafana)/silences", silence), 401),
            Case("an end in the past", post("\(grafana)/silences", replacing(silence, end, Self.rfc3339(-60)), headers: auth), 400, "past"),
            Case(
                "matchers that match everything",
                post("\(grafana)/silences", replacing(silence, #""value":"App1","isRegex":false"#, #""value":".*","isRegex":true"#), headers: auth),
                400, "empty string"),
            Case("an unknown id", post("\(grafana)/silences", replacing(silence, #"{"matchers""#, #"{"id":"nope","matchers""#), headers: auth), 404),
            Case("Grafana: delete of an unknown id", sink.emulate("DELETE", "\(grafana)/silence/nope", headers: auth), 404),
            Case("Alertmanager 0.25: delete of an unknown id", sink.emulate("DELETE", "/alertmanager/api/v2/silence/nope"), 500, "silence not found"),
            Case("Alertmanager: a create without authorization", post("/alertmanager/api/v2/silences", silence), 200, "silenceID"),
        ])
    }

    // MARK: Slack

    static let slackBody = #"""
        {"attachments":[{"color":"#2EB67D","fallback":"Patching Complete: App1 - Production / web-1","title":"Patching Complete",
         "text":"Patching of *web-1* (App1 - Production) is complete.","mrkdwn_in":["text"],"ts":1796373667,
         "fields":[{"short":true,"title":"App Name","value":"App1 - Production"}]}]}
        """#

    @Test func slackWebhook() {
        let path = "/slack/T0/B0/x"
        check([
            Case("valid", post(path, Self.slackBody), 200, "ok"),
            Case(
                "a form with payload=",
                post(
                    path, "payload=" + (Self.slackBody.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""),
                    headers: ["Content-Type": "application/x-www-form-urlencoded"]), 200, "ok"),
            Case("text not a string", post(path, #"{"text":5}"#), 400, "invalid_payload"),
            Case("mrkdwn_in outside its enum", post(path, replacing(Self.slackBody, #"["text"]"#, #"["title"]"#)), 400, "invalid_payload"),
            Case("short not a boolean", post(path, replacing(Self.slackBody, #""short":true"#, #""short":"yes""#)), 400, "invalid_payload"),
            Case("attachments not an array", post(path, #"{"attachments":{"text":"x"}}"#), 400, "invalid_payload"),
            Case("a block without type", post(path, #"{"text":"x","blocks":[{"text":"y"}]}"#), 400, "invalid_blocks"),
            Case("a body that is not its Content-Type", post(path, Self.slackBody, headers: ["Content-Type": "text/plain"]), 400, "invalid_payload"),
            Case("nothing to show", post(path, #"{"username":"x"}"#), 400, "no_text"),
            Case("GET", sink.emulate("GET", path), 405, "invalid_method"),
        ])
    }

    // MARK: Teams

    static let adaptive = #"""
        {"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","content":{
          "$schema":"http://adaptivecards.io/schemas/adaptive-card.json","type":"AdaptiveCard","version":"1.4",
          "msteams":{"width":"Full"},
          "body":[
            {"type":"TextBlock","text":"Patching Complete","wrap":true,"weight":"Bolder","size":"Medium","color":"Good"},
            {"type":"TextBlock","text":"Patching of **web-1** is complete.","wrap":true},
            {"type":"FactSet","facts":[{"title":"App Name","value":"App1 - Production"},{"title":"Window","value":"02:00–04:00 UTC"}]}
          ]}}]}
        """#

    @Test func teamsWorkflows() {
        let path = "/teams/workflow/x"
        check([
            Case("valid, msteams width Full", post(path, Self.adaptive), 202),
            Case("version 1.5 with rtl", post(path, replacing(Self.adaptive, #""version":"1.4","#, #""version":"1.5","rtl":false,"#)), 202),
            Case("rtl in a 1.4 card", post(path, replacing(Self.adaptive, #""version":"1.4","#, #""version":"1.4","rtl":false,"#)), 400, "rtl"),
            Case("attachments missing", post(path, #"{"type":"message"}"#), 400, "attachments must be an array."),
            Case(
                "unknown TextBlock member", post(path, replacing(Self.adaptive, #""wrap":true,"weight""#, #""colour":"Good","wrap":true,"weight""#)),
                400, "colour"),
            Case("weight outside FontWeight", post(path, replacing(Self.adaptive, #""Bolder""#, #""Heavy""#)), 400, "weight"),
            Case("color outside Colors", post(path, replacing(Self.adaptive, #""Good""#, #""Green""#)), 400, "color"),
            Case("wrap not a boolean", post(path, replacing(Self.adaptive, #""wrap":true,"weight""#, #""wrap":"true","weight""#)), 400, "wrap"),
            Case("a fact without value", post(path, replacing(Self.adaptive, #","value":"02:00–04:00 UTC""#, "")), 400, "value"),
            Case("an unknown element", post(path, replacing(Self.adaptive, #""type":"FactSet""#, #""type":"FactList""#)), 400, "FactList"),
            Case("TextBlock without text", post(path, replacing(Self.adaptive, #""text":"Patching of **web-1** is complete.","#, "")), 400, "text"),
            Case("no version", post(path, replacing(Self.adaptive, #""version":"1.4","#, "")), 400, "version is required"),
            Case("unknown card member", post(path, replacing(Self.adaptive, #""version":"1.4","#, #""version":"1.4","title":"x","#)), 400, "title"),
            Case("msteams width not Full", post(path, replacing(Self.adaptive, #""width":"Full""#, #""width":"Wide""#)), 400, "msteams.width"),
            Case(
                "not an Adaptive Card",
                post(path, replacing(Self.adaptive, "application/vnd.microsoft.card.adaptive", "application/vnd.microsoft.card.hero")),
                400, "contentType"),
            Case("over 28 KB", post(path, replacing(Self.adaptive, "02:00–04:00 UTC", String(repeating: "x", count: 29 * 1024))), 413),
            Case("Content-Type not JSON", post(path, Self.adaptive, headers: ["Content-Type": "text/plain"]), 400, "Content-Type"),
            Case("GET", sink.emulate("GET", path), 405),
        ])
    }

    static let messageCard = #"""
        {"@type":"MessageCard","@context":"http://schema.org/extensions","themeColor":"E01E5A","summary":"Patching Failed: App1",
         "sections":[{"activityTitle":"Patching Failed","activitySubtitle":"App1 - Production","text":"yum exited with status 1",
                      "markdown":true,"facts":[{"name":"App Name","value":"App1 - Production"}]}]}
        """#

    @Test func teamsConnector() {
        let path = "/teams-connector/x"
        check([
            Case("valid", post(path, Self.messageCard), 200, "1"),
            Case("a simple text card", post(path, #"{"text":"hello"}"#), 200, "1"),
            Case("@type not MessageCard", post(path, replacing(Self.messageCard, #""MessageCard""#, #""AdaptiveCard""#)), 400, "Bad payload"),
            Case(
                "a fact value not a string", post(path, replacing(Self.messageCard, #""value":"App1 - Production""#, #""value":7"#)), 400,
                "Bad payload"),
            Case("sections not an array", post(path, #"{"summary":"x","sections":{"text":"y"}}"#), 400, "Bad payload"),
            Case("no summary or text", post(path, #"{"title":"x"}"#), 400, "Summary or Text is required."),
            Case("over 28 KB", post(path, replacing(Self.messageCard, "yum exited with status 1", String(repeating: "x", count: 29 * 1024))), 413),
        ])
    }

    // MARK: Statuspage

    static let statuspageHeaders = ["Authorization": "OAuth sp-key-0123456789", "Content-Type": "application/json"]

    static var incident: String {
        #"""
        {"incident":{"name":"Scheduled Maintenance for App1 - Production","status":"scheduled","impact_override":"maintenance",
          "scheduled_for":"\#(rfc3339(3600))","scheduled_until":"\#(rfc3339(5400))","scheduled_auto_in_progress":true,
          "scheduled_auto_completed":true,"component_ids":["cmp1","cmp2"],"components":{"cmp1":"under_maintenance","cmp2":"under_maintenance"},
          "body":"Patching of App1 - Production is scheduled."}}
        """#
    }

    func statuspage(
        _ method: String, _ body: String, at path: String = "/statuspage/v1/pages/pg1/incidents",
        headers: [String: String] = SinkEmulationSpecTests.statuspageHeaders
    ) -> Sink.Answer {
        sink.emulate(method, path, body: body, headers: headers)
    }

    @Test func statuspageIncidents() throws {
        let created = statuspage("POST", Self.incident)
        #expect(created.status == 201, "\(created.body)")
        let id = try #require(try JSONValue.parse(Data(created.body.utf8))["id"]?.stringValue)
        let incidentPath = "/statuspage/v1/pages/pg1/incidents/\(id)"
        let body = Self.incident
        check([
            Case(
                "PATCH to in_progress",
                statuspage(
                    "PATCH", #"{"incident":{"status":"in_progress","components":{"cmp1":"under_maintenance"},"body":"Begun."}}"#,
                    at: incidentPath), 200),
            Case(
                "status outside its enum", statuspage("POST", replacing(body, #""status":"scheduled""#, #""status":"planned""#)), 422,
                "incident.status"),
            Case("impact_override outside its enum", statuspage("POST", replacing(body, #""maintenance","#, #""severe","#)), 422, "impact_override"),
            Case(
                "a component status outside its enum", statuspage("POST", replacing(body, #""cmp2":"under_maintenance""#, #""cmp2":"down""#)),
                422, "incident.components.cmp2"),
            Case(
                "scheduled_for not a date-time", statuspage("POST", replacing(body, #""scheduled_for":""#, #""scheduled_for":"tomorrow","x":""#)),
                422, "scheduled_for"),
            Case(
                "a boolean as a string",
                statuspage("POST", replacing(body, #""scheduled_auto_completed":true"#, #""scheduled_auto_completed":"yes""#)),
                400, "scheduled_auto_completed"),
            Case("component_ids not strings", statuspage("POST", replacing(body, #"["cmp1","cmp2"]"#, "[1,2]")), 400, "component_ids"),
            Case(
                "name over 255 characters",
                statuspage(
                    "POST",
                    replacing(
                        body, "Scheduled Maintenance for App1 - Production",
                        String(repeating: "n", count: 256))), 422, "name"),
            Case(
                "name missing", statuspage("POST", replacing(body, #""name":"Scheduled Maintenance for App1 - Production","#, "")),
                422, "Name can't be blank"),
            Case(
                "metadata with a scalar value", statuspage("POST", replacing(body, #""body":"#, #""metadata":{"key":"value"},"body":"#)),
                400, "metadata.key"),
            Case(
                "body over 25,000 characters",
                statuspage("PATCH", #"{"incident":{"body":"\#(String(repeating: "b", count: 25_001))"}}"#, at: incidentPath),
                422, "incident.body"),
            Case("no Content-Type", statuspage("POST", body, headers: ["Authorization": "OAuth sp-key-0123456789"]), 400, "incident is missing"),
            Case(
                "a form body",
                statuspage(
                    "POST", "incident[name]=x",
                    headers: ["Authorization": "OAuth sp-key-0123456789", "Content-Type": "application/x-www-form-urlencoded"]), 415),
            Case("no OAuth key", statuspage("POST", body, headers: ["Content-Type": "application/json", "Authorization": "Bearer x"]), 401),
        ])
    }

    // MARK: Pingdom

    static let pingdomHeaders = ["Authorization": "Bearer pd-token-0123456789", "Content-Type": "application/json"]

    func pingdom(
        _ method: String, _ body: String, at path: String = "/pingdom/api/3.1/maintenance",
        headers: [String: String] = SinkEmulationSpecTests.pingdomHeaders
    ) -> Sink.Answer {
        sink.emulate(method, path, body: body, headers: headers)
    }

    static func window(from: Double, to: Double, uptimeids: String = #""101,102""#) -> String {
        #"{"description":"Scheduled Maintenance for App1 - Production (mw-0123)","from":\#(unix(from)),"to":\#(unix(to)),"uptimeids":\#(uptimeids)}"#
    }

    @Test func pingdomWindows() throws {
        let created = pingdom("POST", Self.window(from: 600, to: 1500))
        #expect(created.status == 200, "\(created.body)")
        guard case .number(let number)? = try JSONValue.parse(Data(created.body.utf8))["maintenance"]?["id"] else {
            Issue.record("no maintenance id in \(created.body)")
            return
        }
        let windowPath = "/pingdom/api/3.1/maintenance/\(Int(number))"
        let basic = "Basic " + Data("pd-token-0123456789:".utf8).base64EncodedString()
        check([
            Case("uptimeids as an array", pingdom("POST", Self.window(from: 600, to: 1500, uptimeids: "[101,102]")), 200),
            Case("from 1 (now)", pingdom("POST", #"{"description":"d","from":1,"to":\#(Self.unix(900))}"#), 200),
            Case(
                "URL-encoded parameters",
                pingdom(
                    "POST", "description=d&from=\(Self.unix(600))&to=\(Self.unix(900))&uptimeids=101,102",
                    headers: ["Authorization": "Bearer t0k3n", "Content-Type": "application/x-www-form-urlencoded"]), 200),
            Case(
                "Basic auth with the token",
                pingdom(
                    "POST", Self.window(from: 600, to: 900),
                    headers: ["Authorization": basic, "Content-Type": "application/json"]), 200),
            Case("PUT only `to`", pingdom("PUT", #"{"to":\#(Self.unix(3600))}"#, at: windowPath), 200),
            Case("uptimeids not integers", pingdom("POST", Self.window(from: 600, to: 900, uptimeids: #""web-1""#)), 400, "uptimeids"),
            Case("uptimeids as strings in an array", pingdom("POST", Self.window(from: 600, to: 900, uptimeids: #"["101"]"#)), 400, "uptimeids"),
            Case(
                "recurrencetype outside its enum",
                pingdom("POST", #"{"description":"d","from":\#(Self.unix(600)),"to":\#(Self.unix(900)),"recurrencetype":"year"}"#),
                400, "recurrencetype"),
            Case("from not an integer", pingdom("POST", #"{"description":"d","from":"soon","to":\#(Self.unix(900))}"#), 400, "from"),
            Case("description missing", pingdom("POST", #"{"from":\#(Self.unix(600)),"to":\#(Self.unix(900))}"#), 400, "description"),
            Case("from in the past", pingdom("POST", Self.window(from: -600, to: 900)), 400, "future"),
            Case(
                "PUT with a past `from` (extending a started window)",
                pingdom(
                    "PUT", #"{"from":\#(Self.unix(-600)),"to":\#(Self.unix(3600))}"#,
                    at: windowPath), 400, "future"),
            Case("PUT with `to` before `from`", pingdom("PUT", #"{"to":\#(Self.unix(300))}"#, at: windowPath), 400, "after"),
            Case(
                "a body that is neither JSON nor a form",
                pingdom(
                    "POST", Self.window(from: 600, to: 900),
                    headers: ["Authorization": "Bearer t0k3n", "Content-Type": "text/plain"]), 400),
            Case("no token", pingdom("POST", Self.window(from: 600, to: 900), headers: ["Content-Type": "application/json"]), 401),
        ])
    }

    // MARK: Discord

    static let discordPath = "/discord/api/webhooks/123456789/token-abc"
    static let discordBody = #"""
        {"allowed_mentions":{"parse":[]},"embeds":[{"color":3061373,"title":"Patching Complete",
          "description":"Patching of **web\\-1** (App1 \\- Production) is complete.","timestamp":"2026-12-04T08:41:07Z",
          "fields":[{"inline":true,"name":"App Name","value":"App1 \\- Production"}]}]}
        """#

    func discordErrors(_ answer: Sink.Answer) -> JSONValue? { (try? JSONValue.parse(Data(answer.body.utf8)))?["errors"] }

    @Test func discordWebhook() {
        let path = Self.discordPath
        let body = Self.discordBody
        let color = post(path, replacing(body, "3061373", ##""#2ECC71""##))
        #expect(discordErrors(color)?["embeds"]?["0"]?["color"] != nil, "errors nest along the path: \(color.body)")
        check([
            Case("valid", post(path, body, query: "wait=true"), 200, #""webhook_id":"123456789""#),
            Case("without wait: 204 and no message, as Discord does", post(path, body), 204),
            Case("wait=true and a thread", post(path, body, query: "wait=true&thread_id=42"), 200),
            Case("color as a hex string", color, 400, "50035"),
            Case("color above 0xFFFFFF", post(path, replacing(body, "3061373", "16777216")), 400, "50035"),
            Case("parse outside AllowedMentionTypes", post(path, replacing(body, #""parse":[]"#, #""parse":["all"]"#)), 400, "BASE_TYPE_CHOICES"),
            Case(
                "parse and users together", post(path, replacing(body, #""parse":[]"#, #""parse":["users"],"users":["42"]"#)), 400,
                "mutually exclusive"),
            Case("a field without value", post(path, replacing(body, #","value":"App1 \\- Production""#, "")), 400, "BASE_TYPE_REQUIRED"),
            Case("inline not a boolean", post(path, replacing(body, #""inline":true"#, #""inline":"yes""#)), 400, "inline"),
            Case("timestamp not a date-time", post(path, replacing(body, "2026-12-04T08:41:07Z", "yesterday")), 400, "timestamp"),
            Case("an empty username", post(path, replacing(body, #""embeds""#, #""username":"","embeds""#)), 400, "username"),
            Case("embeds not an array", post(path, #"{"embeds":{"title":"x"}}"#), 400, "embeds"),
            Case("wait not a boolean", post(path, body, query: "wait=maybe"), 400, "wait"),
            Case("no JSON Content-Type", post(path, body, headers: [:]), 400, "50006"),
            Case("empty", post(path, #"{"content":"  "}"#), 400, "50006"),
        ])
    }

    @Test func discordWebhookMessagesAreEditedByTheirOwnWebhookOnly() throws {
        let path = Self.discordPath
        let posted = post(path, Self.discordBody, query: "wait=true")
        let id = try #require(try JSONValue.parse(Data(posted.body.utf8))["id"]?.stringValue)
        func patch(_ messagePath: String, _ body: String, query: String? = nil) -> Sink.Answer {
            sink.emulate("PATCH", messagePath, query: query, body: body, headers: Self.jsonHeaders)
        }
        let edit = #"{"embeds":[{"title":"Patching App1 - Production","description":"28 of 30 servers completed"}]}"#
        check([
            Case("an edit of the webhook's message", patch("\(path)/messages/\(id)", edit), 200, "28 of 30 servers completed"),
            Case("an edit keeps the message's id", patch("\(path)/messages/\(id)", edit), 200, #""id":"\#(id)""#),
            Case("an edit in a thread", patch("\(path)/messages/\(id)", edit, query: "thread_id=42"), 200),
            Case("an unknown message", patch("\(path)/messages/99999999", edit), 404, "10008"),
            Case("another webhook token's message", patch("/discord/api/webhooks/123456789/other-token/messages/\(id)", edit), 404, "10008"),
            Case("wait is not a PATCH parameter", patch("\(path)/messages/\(id)", edit, query: "wait=true"), 400, "wait"),
            Case("an edit over Discord's limits", patch("\(path)/messages/\(id)", #"{"embeds":{"title":"x"}}"#), 400, "embeds"),
            Case("a POST to a message", post("\(path)/messages/\(id)", edit), 405),
        ])
    }

    // MARK: Google Chat

    static let chatPath = "/googlechat/v1/spaces/AAAA1234/messages"
    static let chatQuery = "key=k-123&token=t-456&messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
    static let chatBody = #"""
        {"cardsV2":[{"cardId":"patchbay","card":{"header":{"title":"Patching Complete","subtitle":"App1 - Production"},
          "sections":[{"widgets":[{"textParagraph":{"text":"Patching of <b>web-1</b> is complete."}},
                                  {"decoratedText":{"topLabel":"App Name","text":"App1 - Production","wrapText":true}}]}]}}],
         "thread":{"threadKey":"patchbay-b4b224eef64bfc95bba691909de1fe07"}}
        """#

    @Test func googleChat() {
        let path = Self.chatPath
        let body = Self.chatBody
        func send(
            _ text: String, query: String? = SinkEmulationSpecTests.chatQuery, headers: [String: String] = SinkEmulationSpecTests.jsonHeaders
        ) -> Sink.Answer {
            post(path, text, headers: headers, query: query)
        }
        check([
            Case("valid", send(body), 200, "/threads/t"),
            Case("proto names", send(replacing(replacing(body, "cardsV2", "cards_v2"), "threadKey", "thread_key")), 200),
            Case("a text message", send(#"{"text":"hi"}"#, query: nil), 200),
            Case("an unknown top-level name", send(replacing(body, #""thread""#, #""threads""#)), 400, #"Unknown name \"threads\""#),
            Case("an unknown widget member", send(replacing(body, "topLabel", "label")), 400, #"Unknown name \"label\""#),
            Case("an unknown card member", send(replacing(body, #""header":"#, #""title":"x","header":"#)), 400, "Unknown name"),
            Case("a header without title", send(replacing(body, #""title":"Patching Complete","#, "")), 400, "title"),
            Case("a decoratedText without text", send(replacing(body, #""text":"App1 - Production","#, "")), 400, "text"),
            Case(
                "a section without widgets", send(#"{"cardsV2":[{"cardId":"c","card":{"header":{"title":"t"},"sections":[{"widgets":[]}]}}]}"#), 400,
                "widgets"),
            Case("displayStyle outside its enum", send(replacing(body, #""header":"#, #""displayStyle":"FULL","header":"#)), 400, "displayStyle"),
            Case("wrapText not a boolean", send(replacing(body, #""wrapText":true"#, #""wrapText":"yes""#)), 400, "wrapText"),
            Case(
                "a threadKey over 4000 characters",
                send(replacing(body, "patchbay-b4b224eef64bfc95bba691909de1fe07", String(repeating: "k", count: 4001))),
                400, "threadKey"),
            Case(
                "two cards without cardId", send(#"{"cardsV2":[{"card":{"header":{"title":"a"}}},{"card":{"header":{"title":"b"}}}]}"#), 400, "cardId"
            ),
            Case("messageReplyOption outside its enum", send(body, query: "key=k&token=t&messageReplyOption=REPLY"), 400, "message_reply_option"),
            Case("text not a string", send(#"{"text":5}"#), 400, "message.text"),
            Case("a body that is not JSON to Google", send(body, headers: ["Content-Type": "text/plain"]), 400, "INVALID_ARGUMENT"),
        ])
    }

    // MARK: PagerDuty

    static let pagerDutyHeaders = [
        "Authorization": "Token token=pd-0123456789", "Accept": "application/vnd.pagerduty+json;version=2",
        "Content-Type": "application/json", "From": "ops@example.com",
    ]

    static var maintenanceWindow: String {
        #"""
        {"maintenance_window":{"type":"maintenance_window","start_time":"\#(rfc3339(600))","end_time":"\#(rfc3339(1800))",
          "description":"Scheduled Maintenance for App1 - Production (mw-0123)",
          "services":[{"id":"PIJ90N7","type":"service_reference"},{"id":"PX1Y2Z3","type":"service_reference"}]}}
        """#
    }

    func pagerDuty(
        _ method: String, _ body: String, at path: String = "/pagerduty/maintenance_windows",
        headers: [String: String] = SinkEmulationSpecTests.pagerDutyHeaders
    ) -> Sink.Answer {
        sink.emulate(method, path, body: body, headers: headers)
    }

    func without(_ name: String, _ headers: [String: String] = SinkEmulationSpecTests.pagerDutyHeaders) -> [String: String] {
        headers.filter { $0.key != name }
    }

    @Test func pagerDutyMaintenanceWindows() throws {
        let created = pagerDuty("POST", Self.maintenanceWindow)
        #expect(created.status == 201, "\(created.body)")
        let id = try #require(try JSONValue.parse(Data(created.body.utf8))["maintenance_window"]?["id"]?.stringValue)
        let windowPath = "/pagerduty/maintenance_windows/\(id)"
        let body = Self.maintenanceWindow
        var version1 = Self.pagerDutyHeaders
        version1["Accept"] = "application/vnd.pagerduty+json;version=1"
        var notAnEmail = Self.pagerDutyHeaders
        notAnEmail["From"] = "ops"
        check([
            Case("PUT", pagerDuty("PUT", body, at: windowPath), 200),
            Case("no Accept", pagerDuty("POST", body, headers: without("Accept")), 400, "Accept"),
            Case("Accept for version 1", pagerDuty("POST", body, headers: version1), 400, "version 2"),
            Case("no Content-Type", pagerDuty("POST", body, headers: without("Content-Type")), 400, "Content-Type"),
            Case("DELETE without Content-Type", pagerDuty("DELETE", "", at: windowPath, headers: without("Content-Type")), 400, "Content-Type"),
            Case("no From on POST", pagerDuty("POST", body, headers: without("From")), 400, "From"),
            Case("From not an e-mail", pagerDuty("POST", body, headers: notAnEmail), 400, "From"),
            Case("a service without id", pagerDuty("POST", replacing(body, #""id":"PIJ90N7","#, "")), 400, "id"),
            Case(
                "a service of another type",
                pagerDuty("POST", replacing(body, #""PX1Y2Z3","type":"service_reference""#, #""PX1Y2Z3","type":"service""#)),
                400, "type"),
            Case(
                "description not a string", pagerDuty("POST", replacing(body, #""Scheduled Maintenance for App1 - Production (mw-0123)""#, "42")),
                400, "description"),
            Case(
                "start_time not a date-time", pagerDuty("POST", replacing(body, #""start_time":""#, #""start_time":"soon","x":""#)), 400, "start_time"
            ),
            Case("type missing", pagerDuty("POST", replacing(body, #""type":"maintenance_window","#, "")), 400, "type"),
            Case("no token", pagerDuty("POST", body, headers: without("Authorization")), 401),
            Case("DELETE", pagerDuty("DELETE", "", at: windowPath), 204),
        ])
    }

    static var changeEvent: String {
        #"""
        {"routing_key":"canarypd0123456789abcdef01234567","links":[],
         "payload":{"summary":"Patching Complete: web-1 (App1 - Production)","source":"web-1","timestamp":"\#(rfc3339(0))",
                    "custom_details":{"app":"App1","packages":["openssl-3.0.8"]}}}
        """#
    }

    @Test func pagerDutyChangeEvents() {
        let path = "/pagerduty/v2/change/enqueue"
        let body = Self.changeEvent
        let json = ["Content-Type": "application/json"]
        check([
            Case("valid", post(path, body, headers: json), 202, "success"),
            Case("a link without href", post(path, replacing(body, #""links":[]"#, #""links":[{"text":"x"}]"#), headers: json), 400, "href"),
            Case("an image without src", post(path, replacing(body, #""links":[]"#, #""images":[{"alt":"x"}]"#), headers: json), 400, "src"),
            Case(
                "timestamp not a date-time", post(path, replacing(body, #""timestamp":""#, #""timestamp":"now","x":""#), headers: json), 400,
                "timestamp"),
            Case(
                "custom_details not an object", post(path, replacing(body, #"{"app":"App1","packages":["openssl-3.0.8"]}"#, #""x""#), headers: json),
                400, "custom_details"),
            Case("source not a string", post(path, replacing(body, #""source":"web-1""#, #""source":1"#), headers: json), 400, "source"),
            Case("no Content-Type", post(path, body, headers: [:]), 400, "Content-Type"),
            Case(
                "over 512 KB", post(path, replacing(body, #""app":"App1""#, #""app":"\#(String(repeating: "a", count: 512_001))""#), headers: json),
                400, "larger"),
            Case(
                "summary missing", post(path, replacing(body, #""summary":"Patching Complete: web-1 (App1 - Production)","#, ""), headers: json), 400),
        ])
    }

    // MARK: Datadog

    static let datadogHeaders = [
        "DD-API-KEY": "dd-api-0123456789", "DD-APPLICATION-KEY": "dd-app-0123456789",
        "Accept": "application/json", "Content-Type": "application/json",
    ]

    static var downtime: String {
        #"""
        {"data":{"type":"downtime","attributes":{"display_timezone":"America/Los_Angeles",
          "message":"Scheduled Maintenance for App1 - Production (mw-0123), by Patchbay",
          "monitor_identifier":{"monitor_tags":["patching","os:linux"]},"mute_first_recovery_notification":true,
          "schedule":{"start":"\#(rfc3339(600))","end":"\#(rfc3339(1800))"},"scope":"env:production AND service:app1"}}}
        """#
    }

    func datadog(
        _ method: String, _ body: String, at path: String = "/datadog/api/v2/downtime",
        headers: [String: String] = SinkEmulationSpecTests.datadogHeaders
    ) -> Sink.Answer {
        sink.emulate(method, path, body: body, headers: headers)
    }

    @Test func datadogDowntimes() throws {
        let created = datadog("POST", Self.downtime)
        #expect(created.status == 200, "\(created.body)")
        let id = try #require(try JSONValue.parse(Data(created.body.utf8))["data"]?["id"]?.stringValue)
        let body = Self.downtime
        let start = Self.rfc3339(600)
        let zeroOffset = String(start.dropLast()) + "+00:00"
        check([
            Case(
                "PATCH the schedule",
                datadog(
                    "PATCH", #"{"data":{"id":"\#(id)","type":"downtime","attributes":{"schedule":{"end":"\#(Self.rfc3339(3600))"}}}}"#,
                    at: "/datadog/api/v2/downtime/\(id)"), 200),
            Case("a +00:00 offset", datadog("POST", replacing(body, start, zeroOffset)), 200),
            Case(
                "notify_end_states and types from their enums",
                datadog(
                    "POST",
                    replacing(
                        body, #""scope":"#,
                        #""notify_end_states":["alert","no data","warn"],"notify_end_types":["canceled","expired"],"scope":"#)), 200),
            Case(
                "notify_end_states outside its enum", datadog("POST", replacing(body, #""scope":"#, #""notify_end_states":["critical"],"scope":"#)),
                400, "notify_end_states"),
            Case(
                "notify_end_types outside its enum", datadog("POST", replacing(body, #""scope":"#, #""notify_end_types":["cancelled"],"scope":"#)),
                400, "notify_end_types"),
            Case(
                "mute_first_recovery_notification not a boolean",
                datadog(
                    "POST",
                    replacing(
                        body, #""mute_first_recovery_notification":true"#,
                        #""mute_first_recovery_notification":"yes""#)),
                400, "mute_first_recovery_notification"),
            Case(
                "message not a string",
                datadog("POST", replacing(body, #""Scheduled Maintenance for App1 - Production (mw-0123), by Patchbay""#, "7")),
                400, "message"),
            Case(
                "a one-time schedule with a timezone", datadog("POST", replacing(body, #""schedule":{"#, #""schedule":{"timezone":"UTC","#)),
                400, "schedule.timezone"),
            Case(
                "a start with a non-zero offset", datadog("POST", replacing(body, start, String(start.dropLast()) + "+02:00")), 400, "schedule.start"),
            Case(
                "monitor_id and monitor_tags together", datadog("POST", replacing(body, #"{"monitor_tags""#, #"{"monitor_id":1,"monitor_tags""#)),
                400, "exactly one"),
            Case(
                "no Content-Type", datadog("POST", body, headers: SinkEmulationSpecTests.datadogHeaders.filter { $0.key != "Content-Type" }),
                400, "Content-Type"),
            Case(
                "PATCH of another type",
                datadog(
                    "PATCH", #"{"data":{"id":"\#(id)","type":"downtimes","attributes":{}}}"#,
                    at: "/datadog/api/v2/downtime/\(id)"), 400, "data.type"),
            Case("no keys", datadog("POST", body, headers: ["Content-Type": "application/json"]), 403),
        ])
    }

    // MARK: Patchbay's own requests

    /// Every golden request of the chat targets and Statuspage passes its emulation. (Pingdom,
    /// PagerDuty and Datadog goldens carry fixed dates that the vendors' "only future" rules
    /// refuse once they have passed; their shapes are covered above with dates from now.)
    @Test func patchbayGoldenRequestsPass() throws {
        let golden = Golden.directory("PatchbayTargetsTests/Golden")
        let paths = [
            "slack": "/slack/T0/B0/x", "discord": Self.discordPath, "googlechat": Self.chatPath,
            "teams-adaptive": "/teams/workflow/x", "teams-messagecard": "/teams-connector/x", "statuspage": "/statuspage/v1/pages/pg1/incidents",
        ]
        var checked = 0
        var files: [(kind: String, url: URL)] = []
        for kind in paths.keys.sorted() {
            let directory = golden.appendingPathComponent(kind)
            for url in try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil) where url.pathExtension == "json" {
                files.append((kind, url))
            }
        }
        let notices = golden.appendingPathComponent("notices")
        for url in try FileManager.default.contentsOfDirectory(at: notices, includingPropertiesForKeys: nil) where url.pathExtension == "json" {
            if let kind = paths.keys.sorted(by: { $0.count > $1.count }).first(where: { url.lastPathComponent.hasPrefix($0 + "-") }) {
                files.append((kind, url))
            }
        }
        for (kind, url) in files.sorted(by: { $0.url.path < $1.url.path }) {
            let document = try JSONValue.parse(Data(contentsOf: url))
            guard let path = paths[kind] else { continue }
            // Chat goldens hold the body alone; the others the whole request.
            let isRequest = document["method"] != nil
            if document["skip"] != nil || document["refuse"] != nil { continue }
            let body = isRequest ? document["body"] : document
            var headers = Self.jsonHeaders
            if isRequest, case .object(let sent)? = document["headers"] {
                headers = [:]
                for (name, value) in sent { headers[name] = value.stringValue }
                if headers["Authorization"] != nil { headers["Authorization"] = "OAuth sp-key-0123456789" }
            }
            let method = document["method"]?.stringValue ?? "POST"
            var target = path
            if kind == "statuspage", method != "POST" {
                // Updates go to an incident that exists.
                let created = statuspage("POST", Self.incident)
                let id = (try? JSONValue.parse(Data(created.body.utf8)))?["id"]?.stringValue ?? "missing"
                target = path + "/" + id
            }
            let query = kind == "googlechat" ? Self.chatQuery : nil
            let answer = sink.emulate(method, target, query: query, body: body.map(SpecCheck.json) ?? "", headers: headers)
            #expect((200..<300).contains(answer.status), "\(kind)/\(url.lastPathComponent): \(answer.status) \(answer.body)")
            checked += 1
        }
        #expect(checked >= 80, "golden files found: \(checked)")
    }

    // MARK: The shape checker

    @Test func shapesReportWhereAndWhy() {
        let shape: Shape = .onlyMembers([
            "a": .list(.members(["b": .integer(min: 0, max: 9)], required: ["b"])),
            "c": .nullable(.oneOf(["x", "Y"], ignoringCase: true)),
        ])
        func problem(_ text: String, _ dialect: SpecCheck.Dialect = .openAPI) -> SpecProblem? {
            SpecCheck.problem((try? JSONValue.parse(Data(text.utf8))) ?? .null, shape, dialect: dialect)
        }
        #expect(problem(#"{"a":[{"b":1}],"c":"y"}"#) == nil)
        #expect(problem(#"{"c":null}"#) == nil)
        #expect(problem(#"{"a":[{"b":1},{"b":1.5}]}"#)?.location == "a[1].b")
        #expect(problem(#"{"a":[{"b":10}]}"#)?.code == .range)
        #expect(problem(#"{"a":[{}]}"#)?.code == .required)
        #expect(problem(#"{"c":"z"}"#)?.code == .enumeration)
        #expect(problem(#"{"d":1}"#)?.code == .unknownField)
        #expect(problem(#"{"a":null}"#)?.code == .type)
        #expect(problem(#"{"a":null}"#, .protoJSON) == nil, "null is 'not set' to Google's parser")
        #expect(SpecCheck.camelCase("cards_v2") == "cardsV2" && SpecCheck.camelCase("thread_key") == "threadKey")
        #expect(SpecCheck.matches("101, 102", .commaSeparatedIntegers) && !SpecCheck.matches("101,x", .commaSeparatedIntegers))
        #expect(SpecCheck.matches("0", .snowflake) && !SpecCheck.matches("012", .snowflake))
    }

    /// Each registered emulation answers under its own path segment, and a path no emulation
    /// claims gets a 404 naming every vendor.
    @Test func everyEmulationIsFoundByItsPathAndOthersAre404() {
        #expect(Set(Sink.emulations.map { $0.pathPrefix }).count == Sink.emulations.count, "one emulation per path segment")
        for emulation in Sink.emulations {
            let answer = sink.emulate("POST", "/\(emulation.pathPrefix)/x", body: "{}", headers: Self.jsonHeaders)
            #expect(answer.vendor != "unknown", "/\(emulation.pathPrefix) is answered by its emulation")
        }
        let unknown = sink.emulate("POST", "/nowhere/x", body: "{}")
        #expect(unknown.status == 404 && unknown.vendor == "unknown")
        // The 404 names every vendor the registry has, in its order, and none of the test endpoints;
        // computed, so a new vendor's emulation needs no edit here.
        let vendors = Sink.emulations.filter { $0.isVendor }.map { "/" + $0.pathPrefix }
        #expect(unknown.body.contains("use " + vendors.dropLast().joined(separator: ", ") + " or " + (vendors.last ?? "")))
        for vendor in ["/slack", "/teams", "/teams-connector", "/statuspage", "/pingdom", "/discord", "/googlechat", "/pagerduty", "/datadog"] {
            #expect(vendors.contains(vendor), "\(vendor) is a vendor the sink stands in for")
        }
        for endpoint in Sink.emulations where !endpoint.isVendor {
            #expect(!unknown.body.contains("/" + endpoint.pathPrefix + ","), "/\(endpoint.pathPrefix) is a test endpoint, not a vendor")
        }
    }
}
