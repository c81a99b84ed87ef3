import Foundation
import PatchbayCore
import Testing

@testable import PatchbayRelay

@Suite("JSON source mapping")
struct JSONFieldMappingTests {
    func mapping(_ yaml: [(String, String)], types: [String: String] = [:]) -> JSONFieldMapping? {
        let diagnostics = ConfigDiagnostics()
        let section = ConfigSection(path: "sources.t.map", value: .map(yaml.map { ($0.0, ConfigValue.scalar($0.1)) }), diagnostics: diagnostics)
        return JSONFieldMapping(section: section, types: types)
    }

    @Test func fieldPathsLiteralsAndTypeNames() throws {
        let map = try #require(
            mapping(
                [
                    ("type", "state"), ("app", "service.name"), ("environment", "=Production"), ("instance.id", "hosts.0"),
                    ("window.start", "change.from"), ("window.end", "change.to"), ("window.id", "change.id"),
                ], types: ["done": "patch.completed"]))
        let body = try JSONDecoder().decode(
            JSONValue.self,
            from: Data(
                """
                {"state":"done","service":{"name":"Billing"},"hosts":["web-7","web-8"],
                 "change":{"id":"CHG-42","from":"2026-12-04T08:30:00Z","to":"2026-12-04T09:00:00Z"}}
                """.utf8))
        guard case .success(let json) = map.apply(to: body) else {
            Issue.record("mapping failed")
            return
        }
        let event = try EventValidator().validate(json: json)
        #expect(event.type == .completed)
        #expect(event.systemName == "Billing - Production")
        #expect(event.instance?.id == "web-7")
        #expect(event.window.id == "CHG-42")
    }

    @Test func aMissingPathIsNamed() throws {
        let map = try #require(mapping([("type", "state"), ("app", "svc"), ("environment", "=P"), ("window.start", "a"), ("window.end", "b")]))
        let result = map.apply(to: .object(["state": .string("x")]))
        #expect(result == .failure(RelayRejection(.unmappable, "svc: not in the body (needed for app)")))
    }

    @Test func requiredFieldsMustBeMapped() {
        let diagnostics = ConfigDiagnostics()
        let section = ConfigSection(path: "sources.t.map", value: .map([("type", .scalar("state"))]), diagnostics: diagnostics)
        #expect(JSONFieldMapping(section: section, types: [:]) == nil)
        #expect(diagnostics.problems.map(\.description).first == "sources.t.map.app: is required: give the field path (or =literal) it comes from")
    }
}
