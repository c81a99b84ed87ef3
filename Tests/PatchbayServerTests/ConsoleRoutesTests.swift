import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import PatchbayCore
import PatchbaySQLite
import PatchbayTestSupport
import Testing

@testable import PatchbayServer

/// The console's routes: every page for both roles, sign-in, CSRF, roles and expiry.
@Suite("Web console routes")
struct ConsoleRoutesTests {
    static let admin = "admin-token-0123456789abcdef"
    static let viewer = "viewer-token-0123456789abcdef"
    static let agent = "agent-token-0123456789abcdef"
    static let yaml = """
        server:
          listen: 127.0.0.1:0
          tokens: ["\(agent)"]
          adminTokens: ["\(admin)"]
          viewerTokens: ["\(viewer)"]
          consoleKey: "console-key-0123456789abcdef0123456789"
        targets:
          ops: {kind: slack, url: "http://127.0.0.1:9/slack/T/B/secret-hook-path"}
        routes:
          - targets: [ops]
        """

    struct Fixture {
        let client: any TestClientProtocol
        let store: SQLiteStore
        let keys: ConsoleKeys
        let deliveryID: String
        let maintenanceID: String

        func cookie(_ role: ConsoleSession.Role, expires: Date = Date().addingTimeInterval(3600), id: String = "sess", token: String? = nil) -> String
        {
            let token = token ?? (role == .admin ? ConsoleRoutesTests.admin : ConsoleRoutesTests.viewer)
            return "\(ConsoleSession.cookieName)="
                + keys.cookieValue(
                    for: ConsoleSession(
                        role: role, expires: expires, id: id,
                        tokenFingerprint: keys.fingerprint(of: Secret(token))))
        }

        func csrf(_ id: String = "sess") -> String { keys.csrfToken(for: id) }

        func get(_ uri: String, cookie: String?) async throws -> (status: Int, headers: HTTPFields, body: String) {
            var headers: HTTPFields = [:]
            if let cookie { headers[.cookie] = cookie }
            return try await client.execute(uri: uri, method: .get, headers: headers) { response in
                (Int(response.status.code), response.headers, String(buffer: response.body))
            }
        }

        func post(_ uri: String, form: String, cookie: String?) async throws -> (status: Int, headers: HTTPFields, body: String) {
            var headers: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
            if let cookie { headers[.cookie] = cookie }
            return try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: form)) { response in
                (Int(response.status.code), response.headers, String(buffer: response.body))
            }
        }
    }

    /// A store with one maintenance of three servers, one of whose deliveries is dead.
    func withConsole(
        _ yaml: String = yaml, clock: @escaping @Sendable () -> Date = Date.init, _ test: @Sendable (Fixture) async throws -> Void
    ) async throws {
        let directory = try TemporaryDirectory("console")
        defer { directory.remove() }
        let configuration = try PatchbayConfiguration.parse(yaml: yaml, environment: [:])
        let store = try SQLiteStore(settings: StoreSettings(sqlitePath: directory.path("q.db")), logger: Logger(label: "test"))
        var parts = ApplicationParts(store: store)
        parts.clock = clock
        let app = Application(router: buildRouter(configuration: configuration, parts: parts))
        try await app.test(.router) { client in
            for index in 1...3 {
                let body =
                    #"{"type":"patch.completed","app":"App1","environment":"Production","instance":{"id":"i-\#(index)","name":"web-\#(index)"},"window":{"id":"mw-console","start":"2026-12-04T08:30:00Z","end":"2026-12-04T09:00:00Z"}}"#
                try await client.execute(
                    uri: "/v1/events", method: .post, headers: [.authorization: "Bearer \(Self.agent)", .contentType: "application/json"],
                    body: ByteBuffer(string: body)
                ) { #expect($0.status == .accepted) }
            }
            let claims = try await store.claimDue(now: Date(), limit: 1, lease: .seconds(30))
            let claim = try #require(claims.first)
            _ = try await store.complete(
                claim,
                attempt: AttemptRecord(
                    deliveryID: claim.id, number: 1, startedAt: Date(), latencyMilliseconds: 5,
                    statusCode: 500, outcome: "permanent", reason: "client_error", responseExcerpt: "nope"),
                transition: .dead, followUp: nil, at: Date())
            let maintenance = try #require(try await store.maintenances(since: nil, limit: 10).first)
            try await test(
                Fixture(
                    client: client, store: store, keys: ConsoleKeys(settings: configuration.server), deliveryID: claim.id,
                    maintenanceID: maintenance.id))
        }
    }

    @Test func signInSetsAStrictHttpOnlySessionAndRefusesOtherTokens() async throws {
        // The clock stands still, so the pace's allowance does not refill while a loaded machine
        // sends the burst (in a full parallel run the last try once came after the pause ended).
        let now = Date()
        try await withConsole(clock: { now }) { console in
            let form = try await console.get("/console/sign-in", cookie: nil)
            #expect(form.status == 200)
            #expect(form.body.contains("id=\"token\"") && form.body.contains("type=\"password\""))
            let nonceCookie = try #require(form.headers[values: .setCookie].first { $0.hasPrefix(ConsoleSession.signInCSRFCookie) })
            let nonce = String(nonceCookie.split(separator: ";")[0])
            let csrf = try #require(form.body.components(separatedBy: "name=\"csrf\" value=\"").dropFirst().first?.split(separator: "\"").first)

            let signedIn = try await console.post("/console/sign-in", form: "csrf=\(csrf)&token=\(Self.admin)", cookie: nonce)
            #expect(signedIn.status == 303)
            #expect(signedIn.headers[.location] == "/console")
            let session = try #require(signedIn.headers[values: .setCookie].first { $0.hasPrefix(ConsoleSession.cookieName) })
            #expect(session.contains("HttpOnly") && session.contains("SameSite=Strict") && session.contains("Path=/console"))
            #expect(!session.contains(Self.admin), "the cookie holds no token")

            let wrong = try await console.post("/console/sign-in", form: "csrf=\(csrf)&token=agent-token-0123456789abcdef", cookie: nonce)
            #expect(wrong.status == 401, "an agent token is not a console token")
            #expect(wrong.body.contains("class=\"error\""))
            let forged = try await console.post("/console/sign-in", form: "csrf=forged&token=\(Self.admin)", cookie: nonce)
            #expect(forged.status == 403)
            // Guessing is paced: after a burst of failures, attempts from that source are refused
            // before the token is looked at, the right one included.
            var statuses: [Int] = []
            for _ in 0..<12 {
                statuses.append(try await console.post("/console/sign-in", form: "csrf=\(csrf)&token=wrong-\(Self.admin)", cookie: nonce).status)
            }
            #expect(statuses.contains(429), "\(statuses)")
            #expect(try await console.post("/console/sign-in", form: "csrf=\(csrf)&token=\(Self.admin)", cookie: nonce).status == 429)
        }
    }

    /// A named token signs in under its name: the header shows it, the audit trail records it,
    /// and a refused token is recorded as refused, never with the token.
    @Test func aNamedTokensSignInIsNamedInTheHeaderAndAudited() async throws {
        let yaml = Self.yaml.replacingOccurrences(
            of: "adminTokens: [\"\(Self.admin)\"]", with: "adminTokens: [{name: ops-oncall, token: \"\(Self.admin)\"}]")
        try await withConsole(yaml) { console in
            let form = try await console.get("/console/sign-in", cookie: nil)
            let nonce = String(
                try #require(form.headers[values: .setCookie].first { $0.hasPrefix(ConsoleSession.signInCSRFCookie) }).split(separator: ";")[0])
            let csrf = try #require(form.body.components(separatedBy: "name=\"csrf\" value=\"").dropFirst().first?.split(separator: "\"").first)
            #expect(try await console.post("/console/sign-in", form: "csrf=\(csrf)&token=wrong-\(Self.admin)", cookie: nonce).status == 401)
            let signedIn = try await console.post("/console/sign-in", form: "csrf=\(csrf)&token=\(Self.admin)", cookie: nonce)
            let session = String(
                try #require(signedIn.headers[values: .setCookie].first { $0.hasPrefix(ConsoleSession.cookieName) }).split(separator: ";")[0])
            let page = try await console.get("/console", cookie: session)
            #expect(page.body.contains("<span id=\"signed-in-as\">token ops-oncall</span>"), "the header names the token")
            let trail = try await console.store.auditTrail(AuditFilter(action: "sign-in"))
            #expect(trail.map(\.outcome) == [.ok, .refused])
            #expect(trail.first?.actor == "token ops-oncall" && trail.first?.actorID == "ops-oncall" && trail.first?.method == "token")
            #expect(!trail.map(\.detail).joined().contains(Self.admin) && !trail.map(\.actor).joined().contains(Self.admin))
        }
    }

    @Test func replaysAreAuditedAndOnlyAdminsReadTheTrail() async throws {
        try await withConsole { console in
            let form = "ids=\(console.deliveryID)&confirm=1&csrf=\(console.csrf())"
            #expect(try await console.post("/console/deliveries/replay", form: form, cookie: console.cookie(.admin)).status == 303)
            let page = try await console.get("/console/audit?since=1d&action=replay", cookie: console.cookie(.admin))
            #expect(page.status == 200 && page.body.contains("data-action=\"replay\"") && page.body.contains(console.deliveryID))
            #expect(page.body.contains("id=\"nav-audit\""))
            #expect(try await console.get("/console/audit", cookie: console.cookie(.viewer)).status == 403)
            #expect(!(try await console.get("/console", cookie: console.cookie(.viewer))).body.contains("nav-audit"))
            let record = try #require(try await console.store.auditTrail(AuditFilter(action: "replay")).first)
            #expect(record.method == "token" && record.outcome == .ok && record.detail.contains("1 queued again"))
        }
    }

    /// With `server.oidc`, the sign-in page links to the provider; the start sends the browser
    /// there with PKCE (S256), `state` and `nonce`, holding them in a sealed `SameSite=Lax` cookie
    /// scoped to the flow; a callback without that cookie, or with another state, is refused
    /// with a page that says why. (The whole flow, through a real provider: scripts/oidc-test.py.)
    @Test func theProviderSignInStartsWithPKCEAndRefusesACallbackItDidNotStart() async throws {
        let yaml = Self.yaml.replacingOccurrences(
            of: "\ntargets:",
            with: """

                  oidc:
                    issuer: https://login.example.test/realms/ops
                    clientID: patchbay
                    clientSecret: oidc-secret-0123456789
                    redirectURL: https://pb.example.test/console/oidc/callback
                    roles: {admin: {claim: groups, values: [ops-admins]}}
                targets:
                """)
        let directory = try TemporaryDirectory("console-oidc")
        defer { directory.remove() }
        let configuration = try PatchbayConfiguration.parse(yaml: yaml, environment: [:])
        let store = try SQLiteStore(settings: StoreSettings(sqlitePath: directory.path("q.db")), logger: Logger(label: "test"))
        var parts = ApplicationParts(store: store)
        parts.transport = DiscoveryOnly()
        let app = Application(router: buildRouter(configuration: configuration, parts: parts))
        try await app.test(.router) { client in
            let signIn = try await client.execute(uri: "/console/sign-in", method: .get) { String(buffer: $0.body) }
            #expect(signIn.contains("id=\"oidc-sign-in\"") && signIn.contains("href=\"/console/oidc/start\""))
            let (location, cookie) = try await client.execute(uri: "/console/oidc/start", method: .get) { response in
                (response.headers[.location] ?? "", response.headers[values: .setCookie].first { $0.hasPrefix("pb_oidc=") } ?? "")
            }
            let items = URLComponents(string: location)?.queryItems ?? []
            #expect(location.hasPrefix("https://login.example.test/realms/ops/protocol/openid-connect/auth?"))
            #expect(items.contains { $0.name == "code_challenge_method" && $0.value == "S256" } && items.contains { $0.name == "nonce" })
            let state = try #require(items.first { $0.name == "state" }?.value)
            #expect(cookie.contains("SameSite=Lax") && cookie.contains("HttpOnly") && cookie.contains("Path=/console/oidc"))
            #expect(!cookie.contains(state), "the flow cookie is sealed: its state cannot be read from it")
            let flow = String(cookie.split(separator: ";")[0])
            let noCookie = try await client.execute(uri: "/console/oidc/callback?code=c&state=\(state)", method: .get) {
                ($0.status, String(buffer: $0.body))
            }
            #expect(noCookie.0 == .badRequest && noCookie.1.contains("(state)"))
            let otherState = try await client.execute(
                uri: "/console/oidc/callback?code=c&state=tampered", method: .get, headers: [.cookie: flow]
            ) { ($0.status, String(buffer: $0.body), $0.headers[values: .setCookie]) }
            #expect(otherState.0 == .badRequest && otherState.1.contains("(state)"))
            #expect(!otherState.2.contains { $0.hasPrefix(ConsoleSession.cookieName + "=") && !$0.hasPrefix(ConsoleSession.cookieName + "=;") })
            let declined = try await client.execute(
                uri: "/console/oidc/callback?error=access_denied&state=\(state)", method: .get, headers: [.cookie: flow]
            ) { ($0.status, String(buffer: $0.body)) }
            #expect(declined.0 == .unauthorized && declined.1.contains("access_denied"))
            let refusals = try await store.auditTrail(AuditFilter(action: "sign-in"))
            #expect(refusals.count == 3 && refusals.allSatisfy { $0.outcome == .refused && $0.method == "oidc" })
        }
    }

    /// Answers the discovery document only: enough for the sign-in's start.
    struct DiscoveryOnly: HTTPTransport {
        func send(_ request: OutboundRequest, timeouts: TransportTimeouts) async -> Result<TransportResponse, TransportFailure> {
            let issuer = "https://login.example.test/realms/ops"
            let body = """
                {"issuer":"\(issuer)","authorization_endpoint":"\(issuer)/protocol/openid-connect/auth",
                 "token_endpoint":"\(issuer)/protocol/openid-connect/token","jwks_uri":"\(issuer)/protocol/openid-connect/certs"}
                """
            return .success(TransportResponse(status: 200, headers: [], body: Data(body.utf8), latency: .zero))
        }
    }

    /// A maintenance's page holds one page of its servers and deliveries, with links to the
    /// others (review F3: it loaded and drew every one of them, each delivery with its payload).
    /// The live message (`chat: {mode: live}`) is listed with its state and link, and a
    /// superseded edit can be filtered for.
    @Test func aLiveMessageIsShownWithItsStateAndLink() async throws {
        try await withConsole { console in
            let event = PatchEvent(
                type: .completed, app: "App1", environment: "Production",
                window: MaintenanceWindow(
                    id: "mw-console", start: Timestamp.parseRFC3339("2026-12-04T08:30:00Z")!, end: Timestamp.parseRFC3339("2026-12-04T09:00:00Z")!))
            _ = try await console.store.accept(
                EventSubmission(
                    eventID: Identifier.make("evt"), idempotencyKey: nil, bodyDigest: "live", event: event, receivedAt: Date(),
                    deliveries: [DeliveryPlan(target: "ops", targetKind: "slack", displayTimeZone: "UTC", live: true)]))
            let claim = try #require(try await console.store.claimDue(now: Date(), limit: 10, lease: .seconds(30)).first { $0.target == "ops/live" })
            let state = FollowUpState(
                objectID: "1700000000.000100", status: "completed with failures", link: "https://slack.com/app_redirect?channel=C0123456789")
            _ = try await console.store.complete(
                claim,
                attempt: AttemptRecord(
                    deliveryID: claim.id, number: 1, startedAt: Date(), latencyMilliseconds: 0, statusCode: nil, outcome: "superseded",
                    reason: "superseded", responseExcerpt: nil),
                transition: .superseded, followUp: state, at: Date())
            let cookie = console.cookie(.viewer)
            let page = try await console.get("/console/maintenances/\(console.maintenanceID)", cookie: cookie)
            #expect(page.body.contains("ops · live message") && page.body.contains("completed with failures"), "\(page.body)")
            #expect(page.body.contains("https://slack.com/app_redirect?channel=C0123456789"))
            let superseded = try await console.get("/console/deliveries?state=superseded", cookie: cookie)
            #expect(superseded.status == 200 && superseded.body.contains(claim.id) && superseded.body.contains("state-superseded"))
        }
    }

    @Test func aLargeMaintenancesPageIsPaged() async throws {
        try await withConsole { console in
            for index in 4...130 {
                let body =
                    #"{"type":"patch.completed","app":"App1","environment":"Production","instance":{"id":"i-\#(index)","name":"web-\#(index)"},"window":{"id":"mw-console","start":"2026-12-04T08:30:00Z","end":"2026-12-04T09:00:00Z"}}"#
                try await console.client.execute(
                    uri: "/v1/events", method: .post,
                    headers: [.authorization: "Bearer \(Self.agent)", .contentType: "application/json"],
                    body: ByteBuffer(string: body)
                ) { #expect($0.status == .accepted) }
            }
            let cookie = console.cookie(.viewer)
            let first = try await console.get("/console/maintenances/\(console.maintenanceID)", cookie: cookie)
            #expect(first.status == 200)
            #expect(first.body.contains("1–100 of 130"), "one page of servers")
            #expect(first.body.contains("1–50 of 130"), "one page of deliveries")
            #expect(first.body.components(separatedBy: "class=\"delivery\"").count - 1 == 50)
            #expect(first.body.contains("id=\"next-servers\"") && first.body.contains("id=\"older-deliveries\""))
            let second = try await console.get("/console/maintenances/\(console.maintenanceID)?servers=2&deliveries=3", cookie: cookie)
            #expect(second.body.contains("101–130 of 130") && second.body.contains("101–130 of 130"))
            #expect(!second.body.contains("id=\"next-servers\"") && second.body.contains("id=\"previous-servers\""))
            #expect(second.body.contains("web-130") && !second.body.contains("web-99 "))
            // Far past the end, or nonsense: an empty page, never an error or an unbounded read.
            #expect(try await console.get("/console/maintenances/\(console.maintenanceID)?servers=99999&deliveries=-4", cookie: cookie).status == 200)
        }
    }

    @Test(arguments: [ConsoleSession.Role.admin, .viewer])
    func everyPageRendersForBothRolesWithAStrictPolicy(_ role: ConsoleSession.Role) async throws {
        try await withConsole { console in
            let cookie = console.cookie(role)
            let pages = [
                "/console", "/console/maintenances/\(console.maintenanceID)", "/console/deliveries", "/console/deliveries?state=dead",
                "/console/deliveries/\(console.deliveryID)", "/console/targets",
            ]
            for uri in pages {
                let page = try await console.get(uri, cookie: cookie)
                #expect(page.status == 200, "\(uri)")
                #expect(page.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true, "\(uri)")
                #expect(page.body.contains("id=\"sign-out\""), "\(uri)")
                #expect(!page.body.contains("secret-hook-path"), "no target secret on \(uri)")
                #expect(!page.body.contains("http://") || !page.body.contains("<script src=\"http"), "no external assets on \(uri)")
                #expect(
                    page.body.contains("<button id=\"preview-replay\"") == (role == .admin && uri.hasSuffix(console.deliveryID))
                        || !uri.hasSuffix(console.deliveryID))
            }
            let maintenances = try await console.get("/console", cookie: cookie).body
            #expect(maintenances.contains("data-window=\"mw-console\""))
            #expect(maintenances.contains("<title>2 of 3 completed") || maintenances.contains("<title>3 of 3 completed"))
            #expect(maintenances.contains("class=\"dead-mark\""))
            let dead = try await console.get("/console/deliveries?state=dead", cookie: cookie).body
            #expect(dead.contains("class=\"select-delivery\"") == (role == .admin), "only admins may select deliveries to replay")
            let targets = try await console.get("/console/targets", cookie: cookie).body
            #expect(targets.contains("class=\"test-message") == (role == .admin))
            #expect(targets.contains("1/s, burst 3"))
        }
    }

    @Test func replayNeedsAnAdminSessionAndItsCSRFToken() async throws {
        try await withConsole { console in
            let form = "ids=\(console.deliveryID)&confirm=1"
            #expect(try await console.post("/console/deliveries/replay", form: form, cookie: nil).status == 403)
            #expect(try await console.post("/console/deliveries/replay", form: form, cookie: console.cookie(.admin)).status == 403, "no CSRF token")
            #expect(
                try await console.post("/console/deliveries/replay", form: form + "&csrf=\(console.csrf("other"))", cookie: console.cookie(.admin))
                    .status == 403,
                "another session's token")
            #expect(
                try await console.post("/console/deliveries/replay", form: form + "&csrf=\(console.csrf())", cookie: console.cookie(.viewer)).status
                    == 403,
                "viewers cannot replay")
            #expect(try await console.store.detail(id: console.deliveryID)?.summary.state == "dead")

            let preview = try await console.post(
                "/console/deliveries/replay", form: "ids=\(console.deliveryID)&csrf=\(console.csrf())", cookie: console.cookie(.admin))
            #expect(preview.status == 200)
            #expect(preview.body.contains("would be queued again") && preview.body.contains("id=\"confirm-replay\""))
            #expect(try await console.store.detail(id: console.deliveryID)?.summary.state == "dead", "a preview changes nothing")

            let done = try await console.post("/console/deliveries/replay", form: form + "&csrf=\(console.csrf())", cookie: console.cookie(.admin))
            #expect(done.status == 303)
            #expect(done.headers[.location] == "/console/deliveries/\(console.deliveryID)?replayed=1")
            #expect(try await console.store.detail(id: console.deliveryID)?.summary.state == "pending")
        }
    }

    @Test func aTestMessageIsPreviewedForAdminsOnly() async throws {
        try await withConsole { console in
            let preview = try await console.post("/console/targets/ops/test", form: "csrf=\(console.csrf())", cookie: console.cookie(.admin))
            #expect(preview.status == 200)
            #expect(preview.body.contains("id=\"confirm-test\"") && preview.body.contains("test-server"))
            #expect(!preview.body.contains("secret-hook-path"), "the preview hides the webhook URL")
            let viewer = try await console.post(
                "/console/targets/ops/test", form: "csrf=\(console.csrf())&confirm=1", cookie: console.cookie(.viewer))
            #expect(viewer.status == 403)
            let unknown = try await console.post("/console/targets/nope/test", form: "csrf=\(console.csrf())", cookie: console.cookie(.admin))
            #expect(unknown.status == 404)
        }
    }

    @Test func anExpiredOrForgedSessionGoesBackToSignIn() async throws {
        try await withConsole { console in
            let expired = console.cookie(.admin, expires: Date().addingTimeInterval(-1))
            let page = try await console.get("/console", cookie: expired)
            #expect(page.status == 303)
            #expect(page.headers[.location] == "/console/sign-in")
            let signOut = try await console.post("/console/sign-out", form: "", cookie: expired)
            #expect(
                signOut.status == 303 && signOut.headers[values: .setCookie].contains { $0.hasPrefix("\(ConsoleSession.cookieName)=;") },
                "signing out clears even an expired session")
            let tampered = console.cookie(.viewer).replacingOccurrences(of: "viewer.", with: "admin.")
            #expect(try await console.get("/console", cookie: tampered).status == 303, "a role edited in the cookie breaks its signature")
            let removed = console.cookie(.admin, token: "a-token-no-longer-configured-0123")
            #expect(try await console.get("/console", cookie: removed).status == 303, "a session ends with its token")
            let demoted = console.cookie(.admin, token: Self.viewer)
            #expect(try await console.get("/console", cookie: demoted).status == 303, "a viewer token never makes an admin session")
            #expect(try await console.get("/console", cookie: nil).headers[.location] == "/console/sign-in")
        }
    }

    /// Every page and form is behind the console's session middleware: no route of the group
    /// answers without a session, a form needs its session's CSRF token, and changing needs an
    /// admin. Listed route by route, so a page added outside the group fails here.
    @Test func everyPageAndFormIsBehindTheSession() async throws {
        try await withConsole { console in
            let pages = [
                "/console", "/console/maintenances/\(console.maintenanceID)", "/console/deliveries",
                "/console/deliveries/\(console.deliveryID)", "/console/targets",
            ]
            for page in pages {
                let answer = try await console.get(page, cookie: nil)
                #expect(answer.status == 303 && answer.headers[.location] == "/console/sign-in", "\(page) without a session")
                #expect(try await console.get(page, cookie: console.cookie(.viewer)).status == 200, "\(page) for a viewer")
            }
            let forms = [("/console/deliveries/replay", "ids=\(console.deliveryID)"), ("/console/targets/ops/test", "confirm=0")]
            for (path, fields) in forms {
                #expect(try await console.post(path, form: fields, cookie: nil).status == 403, "\(path) without a session")
                #expect(try await console.post(path, form: fields, cookie: console.cookie(.admin)).status == 403, "\(path) without CSRF")
                let viewer = try await console.post(path, form: "csrf=\(console.csrf())&\(fields)", cookie: console.cookie(.viewer))
                #expect(viewer.status == 403 && viewer.body.contains("viewers cannot"), "\(path) for a viewer")
                let admin = try await console.post(path, form: "csrf=\(console.csrf())&\(fields)", cookie: console.cookie(.admin))
                #expect(admin.status != 403, "\(path) for an admin with its CSRF token")
                let large = String(repeating: "a", count: 70 * 1024)
                #expect(try await console.post(path, form: "csrf=\(large)", cookie: nil).status == 413, "\(path): a large form is refused as such")
            }
        }
    }

    @Test func theConsoleIsOffWithoutAdminOrViewerTokens() async throws {
        let yaml = Self.yaml.replacingOccurrences(of: "  adminTokens: [\"\(Self.admin)\"]\n", with: "")
            .replacingOccurrences(of: "  viewerTokens: [\"\(Self.viewer)\"]\n", with: "")
        try await withConsole(yaml) { console in
            let status = try await console.get("/console/sign-in", cookie: nil).status
            #expect(status == 404)
        }
    }
}
