import PatchbayCore
import Testing

@testable import PatchbayConfig

@Suite("Configuration file")
struct ConfigFileTests {
    func substitute(_ text: String, _ environment: [String: String]) -> (String, [String]) {
        let diagnostics = ConfigDiagnostics()
        let result = ConfigFile.substitute(text, path: "a.b", environment: environment, diagnostics: diagnostics)
        return (result, diagnostics.problems.map(\.description))
    }

    @Test func environmentSubstitution() {
        #expect(substitute("${A}", ["A": "1"]) == ("1", []))
        #expect(substitute("x-${A}-${B}-y", ["A": "1", "B": "2"]) == ("x-1-2-y", []))
        #expect(substitute("${A:-fallback}", [:]) == ("fallback", []))
        #expect(substitute("${A:-fallback}", ["A": ""]) == ("fallback", []))
        #expect(substitute("${A:-}", [:]) == ("", []))
        #expect(substitute("cost: $$5 and $HOME", [:]) == ("cost: $5 and $HOME", []))
        #expect(substitute("${MISSING}", [:]) == ("", ["a.b: environment variable MISSING is not set"]))
        #expect(substitute("${no spaces}", [:]).1 == ["a.b: '${no spaces}' is not a valid variable reference; use ${NAME} or ${NAME:-default}"])
    }

    @Test func substitutedValuesAreNotReparsedAsYAML() {
        let diagnostics = ConfigDiagnostics()
        let root = ConfigFile.parse(yaml: "key: \"${V}\"\nlist: [\"${V}\"]", environment: ["V": "a: [b, {c"], diagnostics: diagnostics)
        #expect(diagnostics.problems.isEmpty)
        #expect(root.string("key") == "a: [b, {c")
        #expect(root.stringList("list") == ["a: [b, {c"])
    }

    @Test func yamlErrorsSayWhereWithoutEchoingTheFile() {
        let diagnostics = ConfigDiagnostics()
        _ = ConfigFile.parse(yaml: "server:\n  tokens: [\"secret-value-123\"\n", environment: [:], diagnostics: diagnostics)
        let message = diagnostics.problems.first?.description ?? ""
        #expect(message.hasPrefix("the file is not valid YAML"))
        #expect(message.contains("line "))
        #expect(!message.contains("secret-value-123"))
    }

    @Test func duplicateKeysAreReported() {
        let diagnostics = ConfigDiagnostics()
        _ = ConfigFile.parse(yaml: "a: 1\na: 2\n", environment: [:], diagnostics: diagnostics)
        #expect(diagnostics.problems.map(\.description).first?.contains("a given more than once in one mapping") == true)
    }

    @Test func nullsCountAsAbsent() {
        let diagnostics = ConfigDiagnostics()
        let root = ConfigFile.parse(yaml: "a: 1\nb: ~\nc: null\n", environment: [:], diagnostics: diagnostics)
        #expect(root.string("a") == "1")
        #expect(root.has("b") == false)
        #expect(root.string("c", required: true) == nil)
        #expect(diagnostics.problems.map(\.description) == ["c: is required but empty"])
    }

    @Test func sectionReadersNameTheKeyPath() {
        let diagnostics = ConfigDiagnostics()
        let root = ConfigFile.parse(yaml: "d: {t: 5 parsecs, n: -3, ok: 250ms, b: maybe}", environment: [:], diagnostics: diagnostics)
        let section = root.section("d")!
        #expect(section.duration("ok", default: .seconds(1)) == .milliseconds(250))
        #expect(section.duration("t", default: .seconds(1)) == .seconds(1))
        #expect(section.int("n", default: 1, range: 0...10) == 1)
        #expect(section.bool("b", default: true) == true)
        #expect(
            diagnostics.problems.map(\.description) == [
                "d.t: expected a duration like 250ms, 5s, 2m or 1h, got '5 parsecs'",
                "d.n: must be between 0 and 10, got -3",
                "d.b: expected true or false, got 'maybe'",
            ])
    }
}
