import Foundation
import PatchbayCore
import PatchbayTargets
import Testing

@testable import PatchbayServer

@Suite("Configuration")
struct ConfigurationTests {
    static let canary = "canary-9f2c1b7e-secret-value"

    func problems(_ yaml: String, environment: [String: String] = [:]) -> [String] {
        do {
            _ = try PatchbayConfiguration.parse(yaml: yaml, environment: environment)
            return []
        } catch let invalid as PatchbayConfiguration.Invalid {
            return invalid.problems.map(\.description)
        } catch {
            return ["unexpected: \(error)"]
        }
    }

    @Test func theExampleFileIsValid() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let configuration = try PatchbayConfiguration.load(path: root.appendingPathComponent("examples/patchbay.yaml").path, environment: [:])
        #expect(
            configuration.targetNames == [
                "ops-slack", "ops-teams", "status", "uptime", "ops-chat", "ops-discord", "changes-mail", "audit-hook",
                "pager", "monitors", "alerts", "grafana", "icinga",
            ])
        // The example shows every kind there is.
        #expect(Set(configuration.targets.values.map(\.kind)) == Set(TargetRegistry.kinds))
        #expect(configuration.server.port == 8080)
        #expect(configuration.routes.routes.first?.timezone?.identifier == "America/Los_Angeles")
    }

    @Test func aLiveRouteAndItsTemplatesAreReadAndLaneNamesReserved() throws {
        let yaml = """
            server: {tokens: ["test-token-0123456789abcdef"]}
            targets:
              app: {kind: slack, token: xoxb-live-0123456789, channel: C0123456789, templates: {live: {text: "{{live.completed}} of {{live.total}}"}}}
              chat: {kind: discord, url: "https://discord.com/api/webhooks/1/t"}
            routes:
              - targets: [app, chat]
                chat: {mode: live}
            """
        let configuration = try PatchbayConfiguration.parse(yaml: yaml, environment: [:])
        #expect(configuration.routes.routes.first?.chat.mode == .live)
        #expect(configuration.policies["app"]?.pacing == SlackTarget.webAPIPacing, "the Web API is paced by its tier")
        let event = PatchEvent(
            type: .completed, app: "A", environment: "P", instance: Instance(id: "i-1"),
            window: MaintenanceWindow(start: Date(), end: Date().addingTimeInterval(60)))
        #expect(configuration.routes.plans(for: event, targets: configuration.targets).map(\.lane.storedName) == ["app/live", "chat/live"])
        let reserved = problems(yaml.replacingOccurrences(of: "  chat: {kind", with: "  chat/live: {kind"))
        #expect(reserved.contains { $0.contains("chat/live") && $0.contains("live lane") }, "\(reserved)")
        let unknown = problems(yaml.replacingOccurrences(of: "live.completed", with: "live.nope"))
        #expect(unknown.contains { $0.contains("targets.app.templates.live.text") }, "\(unknown)")
        let mode = problems(yaml.replacingOccurrences(of: "mode: live", with: "mode: edited"))
        #expect(mode.contains { $0.contains("per-instance or per-maintenance or live") }, "\(mode)")
    }

    @Test func environmentVariablesAreSubstituted() throws {
        let yaml = """
            server: {tokens: ["${TOKEN}"]}
            targets: {ops: {kind: slack, url: "${HOOK}"}}
            routes: [{targets: [ops]}]
            """
        let configuration = try PatchbayConfiguration.parse(
            yaml: yaml, environment: ["TOKEN": Self.canary, "HOOK": "https://hooks.example.invalid/\(Self.canary)"])
        #expect(configuration.server.isAuthorized("Bearer \(Self.canary)"))
        #expect(configuration.server.isAuthorized("bearer \t \(Self.canary)  "), "scheme is case-insensitive; spaces and tabs around the token")
        #expect(!configuration.server.isAuthorized("Bearer \(Self.canary)x"))
        #expect(!configuration.server.isAuthorized("Bearer "))
        #expect(!configuration.server.isAuthorized("Basic \(Self.canary)"))
        #expect(configuration.redactor.redact("x \(Self.canary) y") == "x <redacted> y")
    }

    @Test func everyProblemIsReportedWithItsKeyPath() {
        let yaml = """
            server:
              listen: localhost
              tokens: ["short", "${MISSING_TOKEN}"]
              maxBodyBytes: lots
            store: {sqlite: ./q.db, colour: blue}
            delivery: {timeout: 30s, lease: 10s}
            targets:
              ops: {kind: slack, url: "not a url \(Self.canary)"}
              pager: {kind: smoke-signal}
            routes:
              - match: {app: App1}
                targets: [ops, nowhere]
                timezone: Pacific Time
            extra: 1
            """
        let found = problems(yaml)
        #expect(
            found == [
                "server.tokens[1]: environment variable MISSING_TOKEN is not set",
                "extra: is not a known key here (known: awsMapping, delivery, routes, schedules, server, sources, store, targets)",
                "server.listen: expected host:port like 127.0.0.1:8080 or 0.0.0.0:8080, got 'localhost'",
                "server.tokens[0]: is too short: use at least 16 random characters (value not shown: it is a secret)",
                "server.tokens[1]: is too short: use at least 16 random characters (value not shown: it is a secret)",
                "server.maxBodyBytes: expected a whole number, got 'lots'",
                "store.colour: is not a known key here (known: busyTimeout, postgres, pruneInterval, retention, sqlite)",
                "delivery.lease: must be longer than delivery.timeout (30.0 seconds), or a slow send could be claimed twice",
                "targets.ops.url: expected an http:// or https:// URL (value not shown: it is a secret)",
                // Every registered kind, in the registry's order (a new kind needs no edit here).
                "targets.pager.kind: 'smoke-signal' is not a target kind; known kinds: \(TargetRegistry.kinds.joined(separator: ", "))",
                "routes[0].targets[1]: 'nowhere' is not a configured target (configured: ops, pager)",
                "routes[0].timezone: 'Pacific Time' is not an IANA time zone name like America/Los_Angeles",
            ])
        #expect(!found.joined().contains(Self.canary), "no problem quotes a secret")
        #expect(
            TargetRegistry.kinds.starts(with: [
                "slack", "teams", "statuspage", "pingdom", "webhook", "email", "googlechat", "discord", "pagerduty", "datadog",
            ]))
    }

    @Test func relaySourcesAreValidatedWithoutQuotingSecrets() {
        let yaml = """
            server: {tokens: ["token-0123456789abcdef"]}
            targets: {ops: {kind: slack, url: "https://hooks.example.invalid/x"}}
            routes: [{targets: [ops]}]
            sources:
              ci: {kind: standard-webhooks, secret: "whsec_\(Self.canary)"}
              gh: {kind: github}
              sns: {kind: sns, topics: []}
              eb: {kind: eventbridge, apiKey: short}
              odd: {kind: carrier-pigeon}
            awsMapping: {windows: {mw-1: {app: A}}}
            """
        let found = problems(yaml)
        #expect(
            found == [
                "sources.ci.secret: expected whsec_ followed by base64 of 24 to 64 random bytes (value not shown: it is a secret)",
                "sources.gh.secret: is required",
                "sources.sns.topics: must list at least one topic ARN",
                "sources.eb.apiKey: is too short: use at least 16 characters",
                "sources.odd.kind: 'carrier-pigeon' is not a source kind; known kinds: standard-webhooks, github, slack, sns, eventbridge, json",
                "awsMapping.windows.mw-1.environment: is required",
            ])
        #expect(!found.joined().contains(Self.canary))
    }

    /// Silence matchers and Icinga filters are read at start, each problem naming its key.
    @Test func brokenMatchersAndFiltersAreProblemsNamingTheirKeys() {
        let yaml = """
            server: {tokens: ["token-0123456789abcdef"]}
            targets:
              alerts: {kind: alertmanager, url: "http://alertmanager.internal:9093"}
              icinga: {kind: icinga2, url: "https://icinga.internal:5665", username: patchbay, password: "icinga-password-1"}
            routes:
              - alertmanager: {target: alerts, matchers: ['app="App1"', 'env=production'], instances: {matcher: 'instance=~".*"'}}
                icinga2: {target: icinga, filter: 'host.name == "x', instances: {filter: 'host.name == "{{host}}"'}}
            """
        let found = problems(yaml)
        #expect(found.contains { $0.hasPrefix("routes[0].alertmanager.matchers[1]: 'env=production'") })
        #expect(found.contains { $0.hasPrefix("routes[0].alertmanager.instances.matcher: every matcher also matches") })
        #expect(found.contains("routes[0].icinga2.filter: has an unclosed double quote"))
        #expect(found.contains { $0.hasPrefix("routes[0].icinga2.instances.filter: unknown placeholder {{host}}") })
        #expect(found.count == 4, "\(found)")
    }

    /// Route-level resources and passthrough come from what each kind declares to the registry.
    @Test func kindsDeclareTheirRouteResourcesAndPassthrough() {
        let yaml = """
            server: {tokens: ["token-0123456789abcdef"]}
            targets:
              ops: {kind: slack, url: "https://hooks.example.invalid/x"}
              uptime: {kind: pingdom, token: "pingdom-token-0123456789"}
              hook: {kind: webhook, url: "https://hooks.example.invalid/y"}
            routes:
              - pingdom: {target: uptime, checks: [123, abc]}
                statuspage: {target: ops, components: [c1]}
              - {}
            sources:
              ci: {kind: json, bearer: "bearer-token-0123456789", passthrough: [hook, ops]}
            """
        let found = problems(yaml)
        #expect(found.contains("routes[0].pingdom.checks[1]: expected a numeric Pingdom check id, got 'abc'"))
        #expect(found.contains("routes[0].statuspage.target: 'ops' is a slack target; statuspage needs a target of kind statuspage"))
        #expect(found.contains("routes[1]: a route needs targets, statuspage, pingdom, pagerduty, datadog, alertmanager, grafana or icinga2"))
        #expect(found.contains("sources.ci.passthrough[1]: 'ops' is a slack target; passthrough sends to webhook targets only"))
        #expect(!found.contains { $0.contains("passthrough[0]") })
    }

    @Test func templatesAreCheckedWithTheirKeyPathAndLine() throws {
        let yaml = """
            server: {tokens: ["token-0123456789abcdef"]}
            targets:
              ops: {kind: slack, url: "https://hooks.example.invalid/x", templates: {title: "{{title}}", text: "ok\\n{{instance.nmae}}"}}
              hook: {kind: webhook, url: "https://hooks.example.invalid/y", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", templates: {title: x}}
              status: {kind: statuspage, page: p, apiKey: "k-0123456789", templates: {text: x}}
            routes:
              - targets: [ops, hook]
                templates: {subject: "{{app}}", body: "{\\"a\\": \\"{{app}}\\"}", text: "{{#instance}}{{name}}"}
            """
        let found = problems(yaml)
        #expect(
            found.contains(
                "targets.ops.templates.text: line 2: unknown variable 'instance.nmae': 'instance' has no 'nmae' (known here: displayName, id, name)"))
        #expect(found.contains("targets.hook.templates.title: a webhook target takes no title template; it takes body"))
        #expect(found.contains { $0.hasPrefix("targets.status.templates: a statuspage target takes no templates; slack (facts, text, title)") })
        #expect(found.contains { $0.hasPrefix("routes[0].templates.subject: no target of this route takes a subject template") })
        #expect(found.contains("routes[0].templates.text: line 1: section {{#instance}} is never closed with {{/instance}}"))

        let valid = try PatchbayConfiguration.parse(
            yaml: """
                server: {tokens: ["token-0123456789abcdef"]}
                targets:
                  ops: {kind: slack, url: "https://hooks.example.invalid/x"}
                routes:
                  - match: {app: App1}
                    targets: [ops]
                    templates: {title: "{{app}} patching"}
                  - targets: [ops]
                """, environment: [:])
        let event = PatchEvent(type: .started, app: "App1", environment: "P", window: MaintenanceWindow(start: Date(), end: Date()))
        #expect(valid.routeTemplates.templates(for: event, target: "ops")?.render("title", ["app": "A"]) == "A patching")
        var other = event
        other.app = "App2"
        #expect(valid.routeTemplates.templates(for: other, target: "ops") == nil)
    }

    @Test func structuralProblems() {
        #expect(problems("") == ["the file is empty"])
        #expect(problems("- a\n- b") == ["the top level must be a mapping with server, store, targets and routes"])
        #expect(problems("server: [unclosed").first?.hasPrefix("the file is not valid YAML") == true)
        #expect(problems("store: {}") == ["server: is required", "targets: is required", "routes: is required"])
    }

    @Test func defaultsAndFallbacks() throws {
        let yaml = """
            server: {tokens: ["${T:-fallback-token-0123456789}"]}
            targets: {ops: {kind: slack, url: "https://hooks.example.invalid/x"}}
            routes: [{targets: [ops]}]
            """
        let configuration = try PatchbayConfiguration.parse(yaml: yaml, environment: [:])
        #expect(configuration.server.isAuthorized("Bearer fallback-token-0123456789"))
        #expect(configuration.server.host == "127.0.0.1" && configuration.server.port == 8080)
        #expect(configuration.store.sqlitePath == "./patchbay.db")
        #expect(configuration.delivery.lease > configuration.delivery.timeouts.total)
    }

    @Test func noticeSettingsAndSchedulesAreReadAndCheckedWithTheirKeyPaths() throws {
        let base = """
            server: {tokens: ["test-token-0123456789abcdef"]}
            targets:
              ops: {kind: slack, url: "http://127.0.0.1:9/slack/x"}
            routes:
              - match: {app: App1}
                targets: [ops]
                reminders: [24h, 90s]
                announceStart: false
                overrunGrace: 5m
                overrunExtend: 1h
            """
        let good = try PatchbayConfiguration.parse(
            yaml: base + """

                schedules:
                  - {app: App1, environment: Production, expression: "cron(0 30 0 ? * FRI#4 *)", timezone: America/Los_Angeles,
                     duration: 45m, announceAhead: 24h, windowId: mw-0123}
                """, environment: [:])
        let notices = try #require(good.routes.routes.first?.notices)
        #expect(notices.reminders == [.seconds(86_400), .seconds(90)])
        #expect(notices.announceStart == false)
        #expect(notices.overrunGrace == .seconds(300) && notices.overrunExtend == .seconds(3600))
        let entry = try #require(good.schedules.entries.first)
        #expect(entry.windowID == "mw-0123" && entry.duration == .seconds(2700))
        #expect(entry.schedule.timeZone.identifier == "America/Los_Angeles")

        let found = problems(
            base.replacingOccurrences(of: "[24h, 90s]", with: "[24h, soon]").replacingOccurrences(of: "overrunExtend: 1h", with: "overrunExtend: 5m")
                + """

                schedules:
                  - {app: App1, environment: Production, expression: "cron(0 2 * * MON *)", windowId: a}
                  - {app: App1, environment: Production, expression: "rate(7 days)", windowId: b}
                  - {app: Other, environment: Production, expression: "cron(0 2 ? * MON *)", windowId: c, offset: 9}
                  - {environment: Production, expression: "at(2026-12-24T22:00:00)", windowId: d}
                """)
        #expect(
            found == [
                "routes[0].reminders[1]: expected a duration like 90s, 1h or 24h",
                "routes[0].overrunExtend: must be longer than overrunGrace (5m), or the extended window would already have ended when the overrun notice goes out",
                "schedules[0].expression: day-of-month: day-of-month and day-of-week can't both be given; use ? in one of them\n  cron(0 2 * * MON *)\n           ^",
                "schedules[1].start: rate() needs a start date to anchor its cadence, like start: 2026-01-06T02:00:00-08:00",
                "schedules[2].offset: must be between 1 and 6, got 9",
                "schedules[2]: no route matches app 'Other' and environment 'Production', so its announcements would go nowhere",
                "schedules[3].app: is required",
            ])
    }

    /// Reproduced: huge durations trapped in `config check`; `perSecond` above 10,000 was refused
    /// with a message that did not say why.
    @Test func hugeNumbersAreReportedNotTrapped() {
        let found = problems(
            """
            server: {tokens: ["test-token-0123456789abcdef"], drainDelay: 1e300s}
            delivery: {timeout: 99999999999999999999h, pollInterval: 1e19, maxPause: 0s}
            targets:
              ops: {kind: slack, url: "http://127.0.0.1:9/slack/x", rate: {perSecond: 20000, burst: 99999999999999999999}}
            routes:
              - {match: {app: App1}, targets: [ops], overrunGrace: 1e30d}
            """)
        #expect(found.contains("server.drainDelay: expected a duration like 250ms, 5s, 2m or 1h, got '1e300s'"))
        #expect(found.contains("delivery.timeout: expected a duration like 250ms, 5s, 2m or 1h, got '99999999999999999999h'"))
        #expect(found.contains("delivery.pollInterval: expected a duration like 250ms, 5s, 2m or 1h, got '1e19'"))
        #expect(found.contains { $0.hasPrefix("delivery.maxPause: must be between") })
        #expect(found.contains("targets.ops.rate.perSecond: expected a number of requests per second above 0 and at most 10000, got '20000'"))
        #expect(found.contains("targets.ops.rate.burst: expected a whole number, got '99999999999999999999'"))
        #expect(found.contains("routes[0].overrunGrace: expected a duration like 250ms, 5s, 2m or 1h, got '1e30d'"))
    }

    /// Every target carries a secret: plain http:// only to loopback or with allowInsecureHTTP.
    @Test func targetsNeedHTTPSBeyondLoopbackAndWebhooksStayPublic() throws {
        func yaml(_ targets: String) -> String {
            """
            server: {tokens: ["test-token-0123456789abcdef"]}
            targets:
            \(targets)
            routes: [{targets: [t]}]
            """
        }
        let plain = problems(yaml("  t: {kind: slack, url: \"http://hooks.example.com/services/\(Self.canary)\"}"))
        #expect(
            plain == [
                "targets.t.url: plain http:// to another host would send this target's secrets unencrypted; use https://, or set allowInsecureHTTP: true (value not shown: it is a secret)"
            ])
        #expect(!plain.joined().contains(Self.canary))
        #expect(problems(yaml("  t: {kind: slack, url: \"http://hooks.example.com/x\", allowInsecureHTTP: true}")).isEmpty)
        #expect(problems(yaml("  t: {kind: slack, url: \"http://127.0.0.1:9090/slack/x\"}")).isEmpty, "loopback is fine: the local sink")
        #expect(
            problems(yaml("  t: {kind: slack, url: \"http://127.attacker.example/slack/x\"}")).count == 1,
            "a name that starts like a loopback address is not one")
        #expect(
            problems(
                yaml(
                    "  t: {kind: pagerduty, token: tok-0123456789abcdef, from: ops@example.com, changeEvents: {routingKey: R0123456789abcdef0123456789abcdef}, eventsURL: \"http://127.attacker.example\"}"
                )
            )
            .contains { $0.hasPrefix("targets.t.eventsURL: plain http://") })
        #expect(problems(yaml("  t: {kind: pingdom, token: tok-0123456789, baseURL: \"http://pingdom.internal/api\"}")).count == 1)

        let webhook = try PatchbayConfiguration.parse(
            yaml: yaml("  t: {kind: webhook, url: \"https://example.com/hook\", secret: \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"}"),
            environment: [:])
        let target = try #require(webhook.targets["t"])
        guard
            case .send(let request) = try target.plan(
                PatchEvent(
                    type: .started, app: "A", environment: "P",
                    window: MaintenanceWindow(start: Date(), end: Date().addingTimeInterval(60))),
                context: RenderContext(displayTimeZone: TimeZone(identifier: "UTC")!, deliveryID: "d", now: Date()))
        else {
            Issue.record("a webhook renders a request")
            return
        }
        #expect(request.destinations == .publicOnly, "webhook targets may not reach private networks unless allowed")
    }
}
