import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import PatchbayCore
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

    init(configuration: PatchbayConfiguration, parts: ApplicationParts, clock: @escaping @Sendable () -> Date = Date.init) {
        self.configuration = configuration
        store = parts.store
        maintenances = parts.store
        metrics = parts.metrics
        transport = parts.transport
        wake = parts.wake
        keys = ConsoleKeys(settings: configuration.server)
        self.clock = clock
    }

    var settings: ServerSettings { configuration.server }

    func register(on router: Router<PatchbayRequestContext>) {
        router.get("/console/assets/console.css") { _, _ in asset(ConsoleAssets.css, type: "text/css; charset=utf-8") }
        router.get("/console/assets/console.js") { _, _ in asset(ConsoleAssets.javascript, type: "text/javascript; charset=utf-8") }
        router.get("/console/sign-in") { request, _ in signInPage(request: request, error: nil, status: .ok) }
        router.post("/console/sign-in") { request, context in
            try await signIn(request, source: ClientAddress.of(request, peer: context.remoteAddress, trustedProxies: settings.trustedProxies))
        }
        router.post("/console/sign-out") { request, _ in try await signOut(request) }
        router.get("/console") { request, _ in try await page(request) { session in try await maintenancesPage(session) } }
        router.get("/console/maintenances/:id") { request, context in
            let id = try context.parameters.require("id")
            return try await page(request) { session in try await maintenancePage(session, id: id, request: request) }
        }
        router.get("/console/deliveries") { request, _ in try await page(request) { session in try await deliveriesPage(session, request: request) } }
        router.get("/console/deliveries/:id") { request, context in
            let id = try context.parameters.require("id")
            return try await page(request) { session in try await deliveryPage(session, id: id, request: request) }
        }
        router.post("/console/deliveries/replay") { request, _ in
            let form = try await Form.read(request)
            let session = try await requireSession(request, form: form, change: true)
            return try await replay(session, form: form)
        }
        router.get("/console/targets") { request, _ in try await page(request) { session in try await targetsPage(session) } }
        router.post("/console/targets/:name/test") { request, context in
            let name = try context.parameters.require("name")
            let form = try await Form.read(request)
            let session = try await requireSession(request, form: form, change: true)
            return try await testMessage(session, target: name, confirmed: form.value("confirm") == "1")
        }
    }

    // MARK: Sessions

    /// The request's session, if its cookie is intact, unexpired, the token that signed in is
    /// still one of its role's, and it was not signed out (the store keeps sign-outs, so a copied
    /// cookie is refused on every instance: review F15).
    func session(of request: Request) async throws -> ConsoleSession? {
        guard let session = keys.session(from: request.cookies[ConsoleSession.cookieName]?.value, now: clock()) else { return nil }
        let tokens = session.role == .admin ? settings.adminTokens : settings.viewerTokens
        guard tokens.contains(where: { ConsoleKeys.constantTimeEqual(keys.fingerprint(of: $0), session.tokenFingerprint) }) else { return nil }
        guard try await !store.isSessionRevoked(session.id) else { return nil }
        return session
    }

    /// Ends the session on every instance and clears its cookie. A session that is still valid
    /// needs its CSRF token (no forged cross-site sign-out); one that is not has nothing to end,
    /// and its cookie is cleared all the same.
    func signOut(_ request: Request) async throws -> Response {
        let form = try await Form.read(request)
        if let session = try await session(of: request) {
            guard keys.checkCSRF(form.value("csrf"), for: session.id) else {
                throw HTTPError(.forbidden, message: "signing out needs the form's CSRF token; use the Sign out button")
            }
            try await store.revokeSession(session.id, expires: session.expires, at: clock())
        }
        var response = Response.redirect(to: "/console/sign-in", type: .normal)
        response.setCookie(sessionCookie(value: "", maxAge: 0))
        return response
    }

    /// A form post needs a live session and the CSRF token of that session; changing anything
    /// needs an admin. Anything else is 403, never a redirect that a forged form could follow.
    func requireSession(_ request: Request, form: Form, change: Bool = false) async throws -> ConsoleSession {
        guard let session = try await session(of: request), keys.checkCSRF(form.value("csrf"), for: session.id) else {
            throw HTTPError(.forbidden, message: "the console form is missing a valid session or CSRF token; sign in again")
        }
        if change && !session.role.canChange {
            throw HTTPError(.forbidden, message: "viewers cannot replay or send; sign in with an admin token")
        }
        return session
    }

    func sessionCookie(value: String, maxAge: Int) -> Cookie {
        Cookie(
            name: ConsoleSession.cookieName, value: value, maxAge: maxAge, path: "/console", secure: settings.behindTLS, httpOnly: true,
            sameSite: .strict)
    }

    func signIn(_ request: Request, source: String) async throws -> Response {
        let form = try await Form.read(request)
        // The sign-in form's CSRF token is bound to a nonce cookie set with the form.
        guard let nonce = request.cookies[ConsoleSession.signInCSRFCookie]?.value, keys.checkCSRF(form.value("csrf"), for: "sign-in:" + nonce) else {
            return signInPage(request: request, error: "The form expired; please sign in again.", status: .forbidden)
        }
        if signInFailures.pausedUntil(key: source, policy: Self.signInPolicy, now: clock()) != nil {
            // Checked before the token, so a guess beyond the pace learns nothing.
            var response = signInPage(
                request: request, error: "Too many sign-in attempts; wait a few seconds and try again.", status: .tooManyRequests)
            response.headers[.retryAfter] = "2"
            return response
        }
        let token = form.value("token") ?? ""
        let role: ConsoleSession.Role? =
            ServerSettings.matches(token: token, tokens: settings.adminTokens)
            ? .admin
            : ServerSettings.matches(token: token, tokens: settings.viewerTokens) ? .viewer : nil
        guard let role, !token.isEmpty else {
            _ = signInFailures.reserve(key: source, policy: Self.signInPolicy, now: clock(), maxWait: .zero)
            return signInPage(request: request, error: "That is not an admin or viewer token of this server.", status: .unauthorized)
        }
        let ttl = settings.consoleSessionTTL
        let session = ConsoleSession(
            role: role, expires: clock().addingTimeInterval(ttl.seconds), id: ConsoleKeys.randomID(),
            tokenFingerprint: keys.fingerprint(of: Secret(token)))
        var response = Response.redirect(to: "/console", type: .normal)
        response.setCookie(sessionCookie(value: keys.cookieValue(for: session), maxAge: Int(ttl.seconds)))
        return response
    }

    func signInPage(request: Request, error: String?, status: HTTPResponse.Status) -> Response {
        let nonce = ConsoleKeys.randomID()
        let hours = Int(settings.consoleSessionTTL.seconds / 3600)
        var values: [String: Any] = [
            "csrf": keys.csrfToken(for: "sign-in:" + nonce),
            "ttl": hours >= 1 ? "\(hours) h" : "\(Int(settings.consoleSessionTTL.seconds / 60)) min",
        ]
        if let error { values["error"] = error }
        var response = render("sign-in", title: "Sign in", values: values, session: nil, status: status)
        response.setCookie(
            Cookie(
                name: ConsoleSession.signInCSRFCookie, value: nonce, maxAge: 3600, path: "/console/sign-in",
                secure: settings.behindTLS, httpOnly: true, sameSite: .strict))
        return response
    }

    /// A page for a signed-in operator; without a session, the sign-in form.
    func page(_ request: Request, _ build: (ConsoleSession) async throws -> Response) async throws -> Response {
        guard let session = try await session(of: request) else { return Response.redirect(to: "/console/sign-in", type: .normal) }
        return try await build(session)
    }

    // MARK: Rendering

    func render(
        _ name: String, title: String, values: [String: Any], session: ConsoleSession?, status: HTTPResponse.Status = .ok,
        flash: String? = nil, refresh: Int? = nil
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
        }
        if let flash { layout["flash"] = flash }
        if let refresh { layout["refresh"] = refresh }
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

    // MARK: Pages

    func maintenancesPage(_ session: ConsoleSession) async throws -> Response {
        let now = clock()
        let days = 14
        let summaries = try await maintenances.maintenances(since: now.addingTimeInterval(-Double(days) * 86_400), limit: 100)
        var groups: [(String, [[String: Any]])] = [("Running", []), ("Upcoming", []), ("Recent", [])]
        for (index, summary) in summaries.enumerated() {
            // Per-target states need each maintenance's detail: read for the first 30 only, so a
            // page that refreshes every 30 s stays cheap; the rest show their counts.
            let detail = index < Self.detailedMaintenances ? try await maintenances.maintenance(id: summary.id, page: .overview) : nil
            let row = ConsoleViews.maintenanceRow(summary, detail: detail, kinds: configuration.targets.mapValues(\.kind))
            let index = summary.status == .cancelled || summary.window.end < now ? 2 : summary.window.start > now ? 1 : 0
            groups[index].1.append(row)
        }
        let shown = groups.filter { !$0.1.isEmpty }.map { ["name": $0.0, "count": $0.1.count, "rows": $0.1] as [String: Any] }
        return render("maintenances", title: "Maintenances", values: ["groups": shown, "days": days], session: session, refresh: 30)
    }

    /// One page of the maintenance's servers (`?servers=N`) and deliveries (`?deliveries=N`),
    /// 1-based: a maintenance of a thousand servers renders as fast as one of ten (review F3).
    func maintenancePage(_ session: ConsoleSession, id: String, request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        func number(_ name: String) -> Int { query.get(name).flatMap(Int.init).map { min(max($0, 1), MaintenanceDetail.Page.lastPage + 1) } ?? 1 }
        let (deliveryPage, serverPage) = (number("deliveries"), number("servers"))
        guard
            let detail = try await maintenances.maintenance(
                id: id, page: MaintenanceDetail.Page(deliveries: deliveryPage - 1, servers: serverPage - 1))
        else {
            return message(session, heading: "Not found", text: "No maintenance \(id).", status: .notFound)
        }
        var values = ConsoleViews.maintenanceRow(detail.summary, detail: detail, kinds: configuration.targets.mapValues(\.kind))
        let zone = TimeZone(identifier: detail.summary.displayTimeZone) ?? TimeZone(identifier: "UTC")!
        values["status"] = detail.summary.status.rawValue
        values["timeline"] = ConsoleViews.timeline(detail, now: clock())
        values["instances"] = detail.instances.map { row -> [String: Any] in
            [
                "name": row.name.map { "\($0) (\(row.id))" } ?? row.id, "stage": row.stage, "packages": row.packages,
                "updated": Timestamp.rfc3339(row.updatedAt),
            ]
        }
        values["vendorObjects"] = detail.vendorObjects.filter { !DigestLane.split($0.target).isDigest }.map { object -> [String: Any] in
            var entry: [String: Any] = ["target": object.target, "status": object.status ?? "unknown"]
            if let id = object.objectID { entry["objectID"] = id }
            if let link = object.link { entry["link"] = link }
            return entry
        }
        values["notices"] = detail.notices.map { notice -> [String: Any] in
            var entry: [String: Any] = [
                "notice": notice.label, "due": Timestamp.rfc3339(notice.dueAt, in: zone), "dueUTC": Timestamp.rfc3339(notice.dueAt),
                "state": notice.state.rawValue,
            ]
            if let reason = notice.reason { entry["reason"] = reason }
            return entry
        }
        values["deliveries"] = detail.deliveries.map(ConsoleViews.deliveryRow)
        func link(deliveries: Int, servers: Int) -> String {
            "/console/maintenances/\(detail.summary.id)?servers=\(servers)&deliveries=\(deliveries)"
        }
        let perServers = MaintenanceDetail.Page.serversPerPage
        let perDeliveries = MaintenanceDetail.Page.deliveriesPerPage
        values["serversShown"] =
            "\(detail.instances.isEmpty ? 0 : (serverPage - 1) * perServers + 1)–\((serverPage - 1) * perServers + detail.instances.count) of \(detail.instanceCount)"
        values["deliveriesShown"] =
            "\(detail.deliveries.isEmpty ? 0 : (deliveryPage - 1) * perDeliveries + 1)–\((deliveryPage - 1) * perDeliveries + detail.deliveries.count) of \(detail.deliveryCount)"
        if serverPage > 1 { values["previousServers"] = link(deliveries: deliveryPage, servers: serverPage - 1) }
        if serverPage * perServers < detail.instanceCount, serverPage <= MaintenanceDetail.Page.lastPage {
            values["nextServers"] = link(deliveries: deliveryPage, servers: serverPage + 1)
        }
        if deliveryPage > 1 { values["previousDeliveries"] = link(deliveries: deliveryPage - 1, servers: serverPage) }
        if deliveryPage * perDeliveries < detail.deliveryCount, deliveryPage <= MaintenanceDetail.Page.lastPage {
            values["nextDeliveries"] = link(deliveries: deliveryPage + 1, servers: serverPage)
        }
        return render("maintenance", title: detail.summary.app + " - " + detail.summary.environment, values: values, session: session, refresh: 30)
    }

    static let pageSize = 50
    static let detailedMaintenances = 30

    func deliveriesPage(_ session: ConsoleSession, request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        func parameter(_ name: String) -> String? { query.get(name).flatMap { $0.isEmpty ? nil : $0 } }
        let pageNumber = parameter("page").flatMap(Int.init).map { min(max($0, 1), 200) } ?? 1
        var filter: DeliveryFilter
        do throws(QueryProblem) {
            filter = try DeliveryQuery.filter(
                state: parameter("state"), target: parameter("target"), app: parameter("app"),
                since: parameter("since"), limit: nil, now: clock())
        } catch {
            return message(session, heading: "Bad filter", text: error.description, status: .badRequest)
        }
        // One page and one row to tell whether another follows; no payloads (review F3).
        filter.limit = Self.pageSize + 1
        filter.offset = (pageNumber - 1) * Self.pageSize
        let rows = try await store.list(filter)
        let pageRows = Array(rows.prefix(Self.pageSize))
        func link(_ page: Int) -> String {
            var items = [URLQueryItem(name: "page", value: String(page))]
            for name in ["state", "target", "app", "since"] {
                if let value = parameter(name) { items.append(URLQueryItem(name: name, value: value)) }
            }
            var components = URLComponents()
            components.path = "/console/deliveries"
            components.queryItems = items
            return components.string ?? "/console/deliveries"
        }
        var values: [String: Any] = [
            "deliveries": pageRows.map(ConsoleViews.deliveryRow),
            "states": DeliveryState.allCases.map { ["value": $0.rawValue, "selected": $0 == filter.state] as [String: Any] },
            "target": parameter("target") ?? "", "app": parameter("app") ?? "", "since": parameter("since") ?? "",
        ]
        if pageNumber > 1 { values["previous"] = link(pageNumber - 1) }
        if rows.count > Self.pageSize, pageNumber < 200 { values["next"] = link(pageNumber + 1) }
        let replayed = parameter("replayed").flatMap(Int.init)
        return render(
            "deliveries", title: "Deliveries", values: values, session: session,
            flash: replayed.map { "\($0) \($0 == 1 ? "delivery" : "deliveries") replayed" })
    }

    func deliveryPage(_ session: ConsoleSession, id: String, request: Request) async throws -> Response {
        guard let detail = try await store.detail(id: id) else {
            return message(session, heading: "Not found", text: "No delivery \(id).", status: .notFound)
        }
        var values = ConsoleViews.deliveryRow(detail.summary)
        values["targetKind"] = detail.summary.targetKind
        values["eventID"] = detail.summary.eventID
        values["created"] = Timestamp.rfc3339(detail.summary.createdAt)
        values["request"] = await RequestPreview.describe(detail, configuration: configuration, store: store, now: clock())
        values["attempts"] = detail.attempts.map { attempt -> [String: Any] in
            [
                "number": attempt.number, "started": Timestamp.rfc3339(attempt.startedAt), "outcome": attempt.outcome,
                "status": attempt.statusCode.map(String.init) ?? "-", "latency": String(format: "%.0f ms", attempt.latencyMilliseconds),
                "detail": configuration.redactor.redact(attempt.reason + (attempt.responseExcerpt.map { ": " + String($0.prefix(200)) } ?? "")),
            ]
        }
        if detail.summary.eventType != RelayedMessage.eventType,
            let found = try await maintenances.maintenance(
                id: detail.event.window.id ?? Timestamp.rfc3339(detail.event.window.start), page: .overview)
        {
            values["maintenanceID"] = found.summary.id
        }
        let replayed = request.uri.queryParameters.get("replayed") != nil
        return render(
            "delivery", title: "Delivery \(id)", values: values, session: session, flash: replayed ? "Delivery replayed: it is queued again" : nil)
    }

    /// Without `confirm`, a dry-run preview of what would be sent; with it, the replay.
    func replay(_ session: ConsoleSession, form: Form) async throws -> Response {
        let ids = Array(Set(form.values("ids").filter { !$0.isEmpty && $0.count <= 64 })).sorted().prefix(200)
        guard !ids.isEmpty else {
            return message(session, heading: "Nothing selected", text: "Select at least one delivery to replay.", status: .badRequest)
        }
        if form.value("confirm") == "1" {
            var replayed = 0
            for id in ids where try await store.replay(id: id, at: clock(), dryRun: false) == .replayed { replayed += 1 }
            if replayed > 0 { wake.notify() }
            let target = ids.count == 1 ? "/console/deliveries/\(ids[0])?replayed=1" : "/console/deliveries?replayed=\(replayed)"
            return Response.redirect(to: target, type: .normal)
        }
        var items: [[String: Any]] = []
        var replayable = false
        for id in ids {
            let result = try await store.replay(id: id, at: clock(), dryRun: true)
            let verdict: String
            switch result {
            case .wouldReplay:
                verdict = "would be queued again"
                replayable = true
            case .alreadyQueued(let state): verdict = "already \(state): left alone"
            case .notFound: verdict = "not found"
            case .replayed: verdict = "replayed"
            }
            var item: [String: Any] = ["id": id, "verdict": verdict, "target": "?", "request": ""]
            if let detail = try await store.detail(id: id) {
                item["target"] = detail.summary.target
                item["request"] = await RequestPreview.describe(detail, configuration: configuration, store: store, now: clock())
            }
            items.append(item)
        }
        return render(
            "replay-preview", title: "Replay",
            values: [
                "items": items, "count": ids.count, "noun": ids.count == 1 ? "delivery" : "deliveries",
                "replayable": replayable,
            ], session: session)
    }

    /// The last hour per target, counted by the store (review F3: it listed up to 10,000 rows
    /// with their payloads on every refresh).
    func targetsPage(_ session: ConsoleSession) async throws -> Response {
        let now = clock()
        let since = now.addingTimeInterval(-3600)
        let counts = try await store.countsByTarget(since: since)
        var rows: [[String: Any]] = []
        for name in configuration.targetNames {
            guard let target = configuration.targets[name] else { continue }
            let lanes = [name, DigestLane.target(for: name)]
            let states = lanes.compactMap { counts[$0] }.reduce(into: [String: Int]()) { $0.merge($1, uniquingKeysWith: +) }
            let delivered = states[DeliveryState.delivered.rawValue] ?? 0
            let dead = states[DeliveryState.dead.rawValue] ?? 0
            let total = states.values.reduce(0, +)
            let finished = delivered + dead
            var row: [String: Any] = [
                "name": name, "kind": target.kind, "testable": TargetRegistry.traits(of: target.kind)?.keepsMaintenanceObject != true,
                "rate": finished == 0 ? "no finished deliveries" : String(format: "%.0f%% delivered", 100 * Double(delivered) / Double(finished)),
                "counts": "\(delivered) delivered, \(dead) dead, \(total - finished) waiting",
                "pacing": ConsoleViews.pacing(configuration.policies[name]?.pacing),
                "paused": metrics.pausedUntil(name).flatMap { $0 > now ? Timestamp.rfc3339($0) : nil } ?? "—",
            ]
            if total > delivered, let failing = try await store.lastFailure(targets: lanes, since: since) {
                row["lastError"] = failing.lastReason
                row["lastErrorAt"] = Timestamp.rfc3339(failing.updatedAt)
            }
            rows.append(row)
        }
        return render("targets", title: "Targets", values: ["targets": rows], session: session, refresh: 30)
    }

    /// A sample event rendered for the target; after the confirmation, sent straight through the
    /// transport (not queued), with the answer shown.
    func testMessage(_ session: ConsoleSession, target name: String, confirmed: Bool) async throws -> Response {
        guard let target = configuration.targets[name] else {
            return message(session, heading: "Not found", text: "No target \(name).", status: .notFound)
        }
        // A sample sent to Statuspage or Pingdom would open a real public incident or window
        // that nothing closes: test messages are for message kinds only.
        if TargetRegistry.traits(of: target.kind)?.keepsMaintenanceObject == true {
            return message(
                session, heading: "No test message",
                text:
                    "A \(target.kind) target keeps one vendor object per maintenance; a test would create a real one. Test it with a real maintenance in a staging page instead.",
                status: .conflict)
        }
        let event = ConsoleViews.sampleEvent(now: clock())
        let context = RenderContext(
            displayTimeZone: TimeZone(identifier: "UTC")!, deliveryID: "dlv_console_test_" + ConsoleKeys.randomID().prefix(8),
            now: clock(), maintenance: .empty)
        let rendered = RequestPreview.describe(
            { () throws(RenderError) in try target.plan(event, context: context) }, redactor: configuration.redactor)
        var values: [String: Any] = ["name": name, "eventType": event.type.rawValue, "system": event.systemName, "request": rendered]
        if confirmed {
            guard let transport else {
                return message(session, heading: "Cannot send", text: "This server has no outbound transport.", status: .serviceUnavailable)
            }
            let step: DeliveryStep
            do { step = try target.plan(event, context: context) } catch {
                return message(
                    session, heading: "Cannot render", text: configuration.redactor.redact(error.description), status: .unprocessableContent)
            }
            guard case .send(let request) = step else {
                values["result"] = "Nothing to send for a sample event to this target."
                return render("test-preview", title: "Test message", values: values, session: session)
            }
            let result = await transport.send(request, timeouts: configuration.delivery.timeouts)
            values["result"] =
                switch result {
                case .success(let response): "Sent: the vendor answered \(response.status) (\(target.classify(result).label))."
                case .failure(let failure): "Not sent: \(configuration.redactor.redact(failure.message))"
                }
        }
        return render("test-preview", title: "Test message", values: values, session: session)
    }
}

/// An `application/x-www-form-urlencoded` body: a key may repeat (`ids`).
struct Form: Sendable {
    var pairs: [(String, String)]

    /// Bounded in size here, and in time by the server's read deadline (`RequestReadDeadline`).
    static func read(_ request: Request) async throws -> Form {
        // A form announced larger than any console form is refused before a byte is read.
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBytes {
            throw HTTPError(.contentTooLarge, message: "the form is larger than \(maxBytes / 1024) KiB")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await RequestBody.collect(request, upTo: maxBytes)
        } catch .tooLarge {
            throw HTTPError(.contentTooLarge, message: "the form is larger than \(maxBytes / 1024) KiB")
        } catch .cutShort {
            throw HTTPError(.requestTimeout, message: "the form did not arrive in time")
        }
        let text = String(buffer: buffer)
        var pairs: [(String, String)] = []
        for item in text.split(separator: "&") {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ part: Substring) -> String {
                String(part).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            pairs.append((decode(parts[0]), parts.count > 1 ? decode(parts[1]) : ""))
        }
        return Form(pairs: pairs)
    }

    /// The largest console form: a replay of 200 selected deliveries is about 8 KiB.
    static let maxBytes = 64 * 1024

    func value(_ key: String) -> String? { pairs.first { $0.0 == key }?.1 }
    func values(_ key: String) -> [String] { pairs.filter { $0.0 == key }.map(\.1) }
}
