import Foundation
import PatchbayCore
import PatchbayTestSupport
import Testing

@testable import PatchbayTargets

/// `caFile` on any kind: every request the target makes, later links included, trusts that file;
/// a path that holds no certificate is a config problem naming the key.
@Suite("caFile on any target")
struct CATrustingTargetTests {
    static func section(_ caFile: String, diagnostics: ConfigDiagnostics) -> ConfigSection {
        ConfigSection(
            path: "targets.hook",
            value: .map([
                (key: "kind", value: .scalar("webhook")), (key: "url", value: .scalar("https://hooks.example.com/in")),
                (key: "secret", value: .scalar("whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")),
                (key: "caFile", value: .scalar(caFile)),
            ]), diagnostics: diagnostics)
    }

    @Test func everyRequestOfATargetWithCAFileTrustsIt() throws {
        let directory = try TemporaryDirectory("cafile")
        defer { directory.remove() }
        let path = directory.path("ca.crt")
        try "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".write(toFile: path, atomically: true, encoding: .utf8)
        let diagnostics = ConfigDiagnostics()
        let target = try #require(TargetRegistry.target(named: "hook", section: Self.section(path, diagnostics: diagnostics))?.target)
        #expect(diagnostics.problems.isEmpty)
        #expect(target.kind == "webhook" && target.unwrapped is WebhookTarget)
        let event = try EventValidator().validate(body: Fixtures.exampleEvent(.started))
        let step = try target.plan(event, context: RenderContext(displayTimeZone: TimeZone(identifier: "UTC")!, deliveryID: "dlv_1", now: Date()))
        #expect(step.firstRequest?.caFile == path)
        let wrapped = CATrustingTarget(base: target.unwrapped, caFile: path)
        let chained = wrapped.trusting(.then(try #require(step.firstRequest), next: { _ in step }))
        guard case .then(let first, let next) = chained else {
            Issue.record("expected a chain")
            return
        }
        #expect(first.caFile == path && next(TransportResponse(status: 200, headers: [], body: Data(), latency: .zero))?.firstRequest?.caFile == path)
    }

    @Test func aCAFileWithoutACertificateIsAProblemNamingTheKey() throws {
        let diagnostics = ConfigDiagnostics()
        #expect(TargetRegistry.target(named: "hook", section: Self.section("/etc/hostname", diagnostics: diagnostics)) == nil)
        #expect(diagnostics.problems.map(\.path) == ["targets.hook.caFile"])
        let relative = ConfigDiagnostics()
        _ = TargetRegistry.target(named: "hook", section: Self.section("ca.crt", diagnostics: relative))
        #expect(relative.problems.first?.message.contains("absolute path") == true)
    }
}
