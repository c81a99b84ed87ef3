import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import PatchbayCore
import PatchbayTargets

/// Signing in and out, and the session a request carries.
extension ConsoleRoutes {
    /// The request's session, if its cookie is intact, unexpired, the token that signed in is
    /// still one of its role's, and it was not signed out (the store keeps sign-outs, so a copied
    /// cookie is refused on every instance: review F15).
    func session(of request: Request) async throws -> ConsoleSession? {
        guard let session = keys.session(from: request.cookies[ConsoleSession.cookieName]?.value, now: clock()) else { return nil }
        if session.isOIDC {
            // Signed in through the identity provider: valid while it is still configured; the
            // session ends with the ID token (`VerifiedIdentity.expires`).
            guard settings.oidc != nil else { return nil }
        } else {
            let tokens = session.role == .admin ? settings.adminTokens : settings.viewerTokens
            guard tokens.contains(where: { ConsoleKeys.constantTimeEqual(keys.fingerprint(of: $0), session.tokenFingerprint) }) else {
                return nil
            }
        }
        guard try await !store.isSessionRevoked(session.id) else { return nil }
        return session
    }

    /// Ends the session on every instance and clears its cookie. A session that is still valid
    /// needs its CSRF token (no forged cross-site sign-out); one that is not has nothing to end,
    /// and its cookie is cleared all the same.
    func signOut(_ request: Request, source: String) async throws -> Response {
        let form = try await Form.read(request)
        if let session = try await session(of: request) {
            guard keys.checkCSRF(form.value("csrf"), for: session.id) else {
                throw HTTPError(.forbidden, message: "signing out needs the form's CSRF token; use the Sign out button")
            }
            try await store.revokeSession(session.id, expires: session.expires, at: clock())
            await audit.record(session.actor, "sign-out", .ok, source: source, detail: "role \(session.role.rawValue)")
        }
        var response = Response.redirect(to: "/console/sign-in", type: .normal)
        response.setCookie(sessionCookie(value: "", maxAge: 0))
        return response
    }

    func sessionCookie(value: String, maxAge: Int) -> Cookie {
        Cookie(
            name: ConsoleSession.cookieName, value: value, maxAge: maxAge, path: "/console", secure: secureCookies, httpOnly: true,
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
        let admin = ServerSettings.matchIndex(token: token, tokens: settings.adminTokens)
        let viewer = ServerSettings.matchIndex(token: token, tokens: settings.viewerTokens)
        var match: (ConsoleSession.Role, String)?
        if let admin {
            match = (.admin, settings.name(ofToken: admin, in: settings.adminTokenNames, list: "adminTokens"))
        } else if let viewer {
            match = (.viewer, settings.name(ofToken: viewer, in: settings.viewerTokenNames, list: "viewerTokens"))
        }
        guard let (role, name) = match, !token.isEmpty else {
            _ = signInFailures.reserve(key: source, policy: Self.signInPolicy, now: clock(), maxWait: .zero)
            await audit.record(
                AuditActor(name: "unknown token", method: "token"), "sign-in", .refused, source: source, detail: "not a token of this server")
            return signInPage(request: request, error: "That is not an admin or viewer token of this server.", status: .unauthorized)
        }
        let ttl = settings.consoleSessionTTL
        let session = ConsoleSession(
            role: role, expires: clock().addingTimeInterval(ttl.seconds), id: ConsoleKeys.randomID(),
            tokenFingerprint: keys.fingerprint(of: Secret(token)), name: name)
        await audit.record(session.actor, "sign-in", .ok, source: source, detail: "role \(role.rawValue), with a token")
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
        if settings.oidc != nil { values["oidc"] = true }
        if !settings.adminTokens.isEmpty || !settings.viewerTokens.isEmpty { values["tokens"] = true }
        var response = render("sign-in", title: "Sign in", values: values, session: nil, status: status)
        response.setCookie(
            Cookie(
                name: ConsoleSession.signInCSRFCookie, value: nonce, maxAge: 3600, path: "/console/sign-in",
                secure: settings.behindTLS, httpOnly: true, sameSite: .strict))
        return response
    }
}
