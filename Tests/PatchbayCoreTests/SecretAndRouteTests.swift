import Foundation
import Testing

@testable import PatchbayCore

@Suite("Secrets")
struct SecretTests {
    @Test func secretsRedactThemselvesEverywhere() {
        let secret = Secret("canary-value-123456")
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "<redacted>")
        var dumped = ""
        dump(secret, to: &dumped)
        #expect(!dumped.contains("canary"))
        #expect(secret.reveal() == "canary-value-123456")
    }

    @Test func constantTimeComparison() {
        let secret = Secret("token-abcdefghijklmnop")
        #expect(secret.constantTimeEquals("token-abcdefghijklmnop"))
        #expect(!secret.constantTimeEquals("token-abcdefghijklmnoq"))
        #expect(!secret.constantTimeEquals(""))
    }

    /// Plain http:// and the example tokens are allowed to loopback only: a literal, never a
    /// name that merely starts like one.
    @Test func loopbackIsALiteralAddressOrLocalhost() {
        for host in ["localhost", "LOCALHOST", "::1", "[::1]", "127.0.0.1", "127.1.2.3", "127.255.255.255"] {
            #expect(LoopbackHost.matches(host), "\(host)")
        }
        for host in [
            "127.example.com", "127.0.0.1.example.com", "127.0.0.256", "128.0.0.1", "127.+0.0.1", "127..0.1", "0.0.0.0", "", "localhost.example.com",
        ] {
            #expect(!LoopbackHost.matches(host), "\(host)")
        }
    }

    @Test func redactorRemovesURLsTheirPathsAndEncodings() {
        let url = Secret("https://hooks.slack.com/services/T000/B000/XXXXSECRET")
        let redactor = Redactor(secrets: [url, Secret("api-key-0987654321")])
        #expect(redactor.redact("posting to https://hooks.slack.com/services/T000/B000/XXXXSECRET failed") == "posting to <redacted> failed")
        #expect(redactor.redact("path /services/T000/B000/XXXXSECRET echoed") == "path <redacted> echoed")
        #expect(redactor.redact("key=api-key-0987654321") == "key=<redacted>")
        #expect(redactor.redact("nothing here") == "nothing here")
        // Its needles are the secrets: describing the redactor must not reveal them.
        var dumped = ""
        dump(redactor, to: &dumped)
        #expect(!"\(redactor)".contains("XXXXSECRET") && !String(reflecting: redactor).contains("XXXXSECRET") && !dumped.contains("XXXXSECRET"))
    }
}

@Suite("Routes")
struct RouteTests {
    let window = MaintenanceWindow(start: Date(timeIntervalSince1970: 0), end: Date(timeIntervalSince1970: 60))

    @Test func omittedKeysMatchAnything() {
        let table = RouteTable(routes: [
            Route(
                match: RouteMatch(app: "App1", environment: "Production"), targets: ["ops-slack"],
                timezone: TimeZone(identifier: "America/Los_Angeles")),
            Route(match: RouteMatch(environment: "Production"), targets: ["ops-slack", "all-prod"]),
            Route(match: RouteMatch(tags: ["team": "web"]), targets: ["web-team"]),
        ])
        let event = PatchEvent(type: .started, app: "App1", environment: "Production", window: window, tags: ["team": "web"])
        let plans = table.plans(for: event) { _ in "slack" }
        #expect(plans.map(\.target) == ["ops-slack", "all-prod", "web-team"])
        #expect(plans[0].displayTimeZone == "America/Los_Angeles")
        #expect(plans[1].displayTimeZone == "UTC")

        let other = PatchEvent(type: .started, app: "App2", environment: "Staging", window: window)
        #expect(table.plans(for: other) { _ in "slack" }.isEmpty)
        #expect(table.fallbackZone(app: "App1", environment: "Production", tags: [:])?.identifier == "America/Los_Angeles")
        #expect(table.fallbackZone(app: "App2", environment: "Production", tags: [:]) == nil)
    }
}
