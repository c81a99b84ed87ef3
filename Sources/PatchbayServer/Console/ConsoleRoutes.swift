import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Mustache
import PatchbayCore
import PatchbayOIDC
import PatchbayTargets

/// The web console under `/console`, on when `server.adminTokens` or `server.viewerTokens` are
/// set: maintenances at a glance, deliveries with replay, targets with a test message. Pages are
/// rendered on the server from `ConsoleTemplates` with the same store queries as the admin API.
/// Admins may replay and send; viewers only look. Every form carries a CSRF token bound to the
/// session; a missing or expired session sends a page to the sign-in form and a form post to 403.
struct ConsoleRoutes: Sendable {
    let configuration: PatchbayConfiguration
    /// Deliveries, sessions, and the dispatcher's maintenance reads for the request previews.
    let store: any OperatorStore & DispatchStore
    let maintenances: any MaintenanceStore
    let metrics: PatchbayMetrics
    let transport: (any HTTPTransport)?
    let wake: WakeSignal
    let keys: ConsoleKeys
    let clock: @Sendable () -> Date
    /// Failed sign-ins are paced per client address (10 at once, then one a second): guessing gets
    /// slow for the guesser alone, and an operator who mistypes a few times, or who signs in from
    /// another address during a guessing flood, is not locked out (review F2). The table is
    /// bounded (`Pacer.maxKeys`).
    let signInFailures = Pacer(maxKeys: 10_000)
    static let signInPolicy = PacingPolicy(rate: 1, burst: 10)
    /// Who signed in, replayed, sent a test message.
    let audit: AuditTrail
    let auditStore: any AuditStore
    /// The identity provider (`server.oidc`), when configured.
    let oidc: OIDCProvider?

    init(configuration: PatchbayConfiguration, parts: ApplicationParts, clock: @escaping @Sendable () -> Date = Date.init) {
        self.configuration = configuration
        store = parts.store
        maintenances = parts.store
        metrics = parts.metrics
        transport = parts.transport
        wake = parts.wake
        keys = ConsoleKeys(settings: configuration.server)
        self.clock = clock
        auditStore = parts.store
        audit = AuditTrail(store: parts.store, metrics: parts.metrics, logger: Logger(label: "patchbay.audit"), clock: clock)
        oidc = configuration.server.oidc.flatMap { settings in
            parts.transport.map { OIDCProvider(settings: settings, transport: $0, clock: clock, logger: Logger(label: "patchbay.oidc")) }
        }
    }

    func source(of request: Request, context: PatchbayRequestContext) -> String {
        ClientAddress.of(request, peer: context.remoteAddress, trustedProxies: settings.trustedProxies)
    }

    var settings: ServerSettings { configuration.server }

    func register(on router: Router<PatchbayRequestContext>) {
        // Open to anyone: the assets and signing in and out (sign-out checks its own session).
        router.get("/console/assets/console.css") { _, _ in asset(ConsoleAssets.css, type: "text/css; charset=utf-8") }
        router.get("/console/assets/console.js") { _, _ in asset(ConsoleAssets.javascript, type: "text/javascript; charset=utf-8") }
        router.get("/console/sign-in") { request, _ in signInPage(request: request, error: nil, status: .ok) }
        router.post("/console/sign-in") { request, context in
            try await signIn(request, source: ClientAddress.of(request, peer: context.remoteAddress, trustedProxies: settings.trustedProxies))
        }
        router.post("/console/sign-out") { request, context in try await signOut(request, source: source(of: request, context: context)) }
        router.get("/console/oidc/start") { request, context in try await oidcStart(request, source: source(of: request, context: context)) }
        router.get("/console/oidc/callback") { request, context in
            try await oidcCallback(request, source: source(of: request, context: context))
        }

        // Every page and form: a live session (and, for a form, its CSRF token) first.
        let signedIn = router.group("/console").add(middleware: ConsoleSessionMiddleware(console: self))
        signedIn.get { _, context in try await maintenancesPage(context.consoleRequest().session) }
        signedIn.get("maintenances/:id") { request, context in
            try await maintenancePage(context.consoleRequest().session, id: context.parameters.require("id"), request: request)
        }
        signedIn.get("deliveries") { request, context in try await deliveriesPage(context.consoleRequest().session, request: request) }
        signedIn.get("deliveries/:id") { request, context in
            try await deliveryPage(context.consoleRequest().session, id: context.parameters.require("id"), request: request)
        }
        signedIn.get("targets") { _, context in try await targetsPage(context.consoleRequest().session) }

        // Changing anything needs an admin.
        let admin = signedIn.group().add(middleware: ConsoleAdminMiddleware())
        admin.post("deliveries/replay") { request, context in
            let console = try context.consoleRequest()
            return try await replay(console.session, form: console.form ?? Form(pairs: []), source: source(of: request, context: context))
        }
        admin.post("targets/:name/test") { request, context in
            let console = try context.consoleRequest()
            return try await testMessage(
                console.session, target: context.parameters.require("name"),
                confirmed: console.form?.value("confirm") == "1", source: source(of: request, context: context))
        }
        admin.get("audit") { request, context in try await auditPage(context.consoleRequest().session, request: request) }
    }

    static let pageSize = 50
    static let detailedMaintenances = 30

    // MARK: Rendering

    func render(
        _ name: String, title: String, values: [String: Any], session: ConsoleSession?, status: HTTPResponse.Status = .ok,
        flash: String? = nil, refresh: Int? = nil, refreshTo: String? = nil
    ) -> Response {
        var values = values
        if let session {
            values["csrf"] = keys.csrfToken(for: session.id)
            values["canChange"] = session.role.canChange
        }
        let body = ConsoleTemplates.library.render(values, withTemplate: name) ?? ""
        var layout: [String: Any] = ["title": title, "body": body]
        if let session {
            layout["signedIn"] = true
            layout["csrf"] = keys.csrfToken(for: session.id)
            layout["role"] = session.role.rawValue
            layout["signedInAs"] = session.signedInAs
            if session.role == .admin { layout["isAdmin"] = true }
        }
        if let flash { layout["flash"] = flash }
        if let refresh { layout["refresh"] = refresh }
        if let refreshTo { layout["refreshTo"] = refreshTo }
        let html = ConsoleTemplates.library.render(layout, withTemplate: "layout") ?? ""
        return Response(status: status, headers: Self.headers(type: "text/html; charset=utf-8"), body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func headers(type: String) -> HTTPFields {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.contentSecurityPolicy] = ConsoleAssets.contentSecurityPolicy
        headers[.cacheControl] = "no-store"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        return headers
    }

    func asset(_ text: String, type: String) -> Response {
        var headers = Self.headers(type: type)
        headers[.cacheControl] = "max-age=300"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    func message(_ session: ConsoleSession?, heading: String, text: String, status: HTTPResponse.Status) -> Response {
        render("message", title: heading, values: ["heading": heading, "text": text], session: session, status: status)
    }
}
