import Foundation
import Testing

@testable import PatchbayCore

@Suite("Event validation")
struct EventValidatorTests {
    static let examplesDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Schemas/examples")

    let validator = EventValidator()

    enum Fixtures {
        static func example(_ type: EventType) throws -> Data {
            try Data(contentsOf: examplesDirectory.appendingPathComponent("\(type.rawValue).json"))
        }
    }

    private func problems(_ json: String, validator: EventValidator = EventValidator()) -> [String] {
        do {
            _ = try validator.validate(body: Data(json.utf8))
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    private let valid = """
        {"type":"patch.started","app":"App1","environment":"Production","instance":{"id":"i-1","name":"web-1"},
         "window":{"start":"2026-12-04T00:30:00-08:00","end":"2026-12-04T00:45:00-08:00"}}
        """

    @Test(arguments: EventType.allCases)
    func everyExampleIsValid(_ type: EventType) throws {
        let data = try Data(contentsOf: Self.examplesDirectory.appendingPathComponent("\(type.rawValue).json"))
        let event = try validator.validate(body: data)
        #expect(event.type == type)
        #expect(event.app == "App1")
        #expect(Timestamp.rfc3339(event.window.start) == "2026-12-04T08:30:00Z")
        #expect(event.maintenanceKey.description == "App1/Production/mw-0123")
    }

    @Test func minimalEventResolvesOffsets() throws {
        let event = try validator.validate(body: Data(valid.utf8))
        #expect(event.instance == Instance(id: "i-1", name: "web-1"))
        #expect(Timestamp.rfc3339(event.window.end) == "2026-12-04T08:45:00Z")
        #expect(event.maintenanceKey.window == "2026-12-04T08:30:00Z")
    }

    @Test func malformedJSON() {
        #expect(problems("{\"type\": ") == ["body: is not valid JSON"])
        #expect(problems("[1,2]") == ["body: expected a JSON object, got an array"])
    }

    @Test func missingFieldsAreAllNamed() {
        #expect(
            problems("{}") == [
                "type: is required", "app: is required", "environment: is required", "window: is required",
            ])
        #expect(
            problems(#"{"type":"patch.started","app":"A","environment":"P","window":{}}"#) == [
                "window.start: is required", "window.end: is required",
            ])
    }

    @Test func wrongTypes() {
        let body =
            #"{"type":1,"app":["A"],"environment":"P","instance":"web-1","packages":"openssl","window":{"start":5,"end":"2026-12-04T00:45:00Z"}}"#
        #expect(
            problems(body) == [
                "type: expected a string, got a number",
                "app: expected a string, got an array",
                "instance: expected an object, got a string",
                "packages: expected an array of strings, got a string",
                "window.start: expected an RFC 3339 date-time, got a number",
            ])
    }

    @Test func unknownTypeListsTheAllowedOnes() {
        let body = valid.replacingOccurrences(of: "patch.started", with: "patch.exploded")
        #expect(
            problems(body) == [
                "type: must be one of patch.scheduled, patch.reminder, patch.started, patch.completed, patch.failed, patch.cancelled"
            ])
    }

    @Test func unknownFieldsAreTypos() {
        let body = valid.replacingOccurrences(of: "\"app\"", with: "\"ap\":\"x\",\"app\"")
        #expect(problems(body) == ["ap: is not a known field"])
    }

    @Test func windowRules() {
        #expect(problems(valid.replacingOccurrences(of: "00:45:00-08:00", with: "00:15:00-08:00")) == ["window.end: must be after window.start"])
        #expect(
            problems(valid.replacingOccurrences(of: "2026-12-04T00:30:00-08:00", with: "tomorrow")).first?.hasPrefix(
                "window.start: expected an RFC 3339 date-time") == true)
        let local = valid.replacingOccurrences(of: "-08:00", with: "")
        #expect(
            problems(local) == [
                "window.start: has no UTC offset and neither window.timezone nor a matching route's timezone says which zone it is in",
                "window.end: has no UTC offset and neither window.timezone nor a matching route's timezone says which zone it is in",
            ])
        let badZone = local.replacingOccurrences(of: "\"end\"", with: "\"timezone\":\"PST\",\"end\"")
        #expect(problems(badZone) == ["window.timezone: is not an IANA time zone name like America/Los_Angeles"])
    }

    @Test func localTimesUseTheRouteZoneWhenTheEventHasNone() throws {
        let local = valid.replacingOccurrences(of: "-08:00", with: "")
        let routed = EventValidator { app, _, _ in app == "App1" ? TimeZone(identifier: "America/Los_Angeles") : nil }
        let event = try routed.validate(body: Data(local.utf8))
        #expect(Timestamp.rfc3339(event.window.start) == "2026-12-04T08:30:00Z")
        #expect(event.window.timezone == "America/Los_Angeles")
    }

    @Test func springForwardTimeIsRefusedWithAReason() {
        let body =
            #"{"type":"patch.scheduled","app":"A","environment":"P","window":{"start":"2026-03-08T02:30:00","end":"2026-03-08T03:30:00","timezone":"America/Los_Angeles"}}"#
        #expect(
            problems(body) == [
                "window.start: 2026-03-08T02:30:00 does not exist in America/Los_Angeles: the clocks skip it when daylight saving time begins"
            ])
    }

    @Test func limits() {
        let longName = String(repeating: "x", count: 201)
        #expect(problems(valid.replacingOccurrences(of: "\"App1\"", with: "\"\(longName)\"")) == ["app: is longer than 200 characters"])
        #expect(problems(valid.replacingOccurrences(of: "\"App1\"", with: "\"  \"")) == ["app: must not be empty"])
        let packages = valid.replacingOccurrences(of: "\"app\"", with: "\"packages\":[\"ok\", 3, \"\"],\"app\"")
        #expect(problems(packages) == ["packages[1]: expected a string, got a number", "packages[2]: must not be empty"])
    }

    @Test func parsingKeepsEveryJSONType() throws {
        let parsed = try JSONValue.parse(Data(#"{"t":true,"f":false,"one":1,"zero":0,"x":1.5,"s":"1","n":null,"a":[true,1,"a"],"o":{"k":"v"}}"#.utf8))
        #expect(
            parsed
                == .object([
                    "t": .bool(true), "f": .bool(false), "one": .number(1), "zero": .number(0), "x": .number(1.5), "s": .string("1"),
                    "n": .null, "a": .array([.bool(true), .number(1), .string("a")]), "o": .object(["k": .string("v")]),
                ]))
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(Data("{".utf8)) }
        // The same tree as the Codable decoder gives.
        let body = try Fixtures.example(.completed)
        #expect(try JSONValue.parse(body) == JSONDecoder().decode(JSONValue.self, from: body))
    }

    @Test func hostileTextIsKeptVerbatim() throws {
        let body =
            #"{"type":"patch.failed","app":"App \"1\" <!channel> & co","environment":"Prod\tuction 🚀","window":{"start":"2026-12-04T00:30:00Z","end":"2026-12-04T00:45:00Z"}}"#
        let event = try validator.validate(body: Data(body.utf8))
        #expect(event.app == "App \"1\" <!channel> & co")
        #expect(event.environment == "Prod\tuction 🚀", "a tab is the one control character names may hold")
    }

    /// CR, LF, ESC and C1 controls in names would forge log lines and drive operators' terminals.
    @Test(arguments: [
        ("app", #"web\r\nFAKE log line"#), ("environment", #"prod\u001b[2J"#), ("instance.name", #"web\u0085"#),
        ("instance.id", #"i-1\n"#), ("window.id", #"mw\u0007"#),
    ])
    func controlCharactersInNamesAreRefused(_ field: String, _ value: String) throws {
        var fields = [#""type":"patch.started""#, #""app":"App1""#, #""environment":"Production""#]
        var instance = [#""id":"i-1""#]
        var window = [#""start":"2026-12-04T00:30:00Z""#, #""end":"2026-12-04T00:45:00Z""#]
        switch field {
        case "app", "environment": fields[field == "app" ? 1 : 2] = #""\#(field)":"\#(value)""#
        case "instance.name": instance.append(#""name":"\#(value)""#)
        case "instance.id": instance[0] = #""id":"\#(value)""#
        default: window.append(#""id":"\#(value)""#)
        }
        fields.append(#""instance":{\#(instance.joined(separator: ","))}"#)
        fields.append(#""window":{\#(window.joined(separator: ","))}"#)
        let body = "{" + fields.joined(separator: ",") + "}"
        #expect(throws: EventValidationError.self) { try validator.validate(body: Data(body.utf8)) }
        do {
            _ = try validator.validate(body: Data(body.utf8))
        } catch {
            #expect(error.problems.map(\.field) == [field])
            #expect(error.problems.first?.message.hasPrefix("must not contain control characters") == true)
        }
    }

    /// 9999-12-31T23:30:00-01:00 is in year 10000 in UTC: it could never be read back or sent.
    @Test(arguments: [("window.end", "9999-12-31T23:30:00-01:00"), ("window.start", "0001-01-01T00:30:00+01:00")])
    func instantsOutsideYears1To9999AreRefused(_ field: String, _ value: String) throws {
        let start = field == "window.start" ? value : "2026-12-04T00:30:00Z"
        let end = field == "window.end" ? value : "2026-12-04T00:45:00Z"
        let body = #"{"type":"patch.started","app":"App1","environment":"Production","window":{"start":"\#(start)","end":"\#(end)"}}"#
        do {
            _ = try validator.validate(body: Data(body.utf8))
            Issue.record("\(value) was accepted")
        } catch {
            #expect(error.problems.map(\.field) == [field])
            #expect(error.problems.first?.message.contains("between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z") == true)
        }
        let late =
            #"{"type":"patch.started","app":"A","environment":"P","occurredAt":"9999-12-31T23:59:59-05:00","window":{"start":"2026-12-04T00:30:00Z","end":"2026-12-04T00:45:00Z"}}"#
        #expect(throws: EventValidationError.self) { try validator.validate(body: Data(late.utf8)) }
    }
}
