import Foundation
import HTTPTypes
import Hummingbird
import PatchbayCore
import PatchbayOIDC

/// Signing in through the identity provider (`server.oidc`): the authorization code flow with
/// PKCE, `state` and `nonce`.
///
/// The start sets a sealed, single-use flow cookie (state, nonce, PKCE verifier) and sends the
/// browser to the provider. The provider's redirect back is a cross-site navigation, so that
/// cookie is `SameSite=Lax` (a `Strict` one would not come back) and scoped to `/console/oidc`;
/// and the callback answers with a page that moves on to the console itself (a redirect would
/// still be cross-site, and the `Strict` session cookie would not be sent with it).
extension ConsoleRoutes {
    static let flowCookie = "pb_oidc"
    static let flowLifetime: TimeInterval = 600
    /// The least an ID token must still be valid for to start a session.
    static let shortestSession: TimeInterval = 10

    /// What the flow cookie carries, sealed.
    struct OIDCFlow: Codable {
        var state: String
        var nonce: String
        var verifier: String
        var created: Double
    }

    func oidcStart(_ request: Request, source: String) async throws -> Response {
        guard let oidc else {
            return signInPage(request: request, error: "Signing in with an identity provider is not configured here.", status: .notFound)
        }
        let flow = OIDCFlow(
            state: PKCE.randomToken(), nonce: PKCE.randomToken(), verifier: PKCE.randomToken(), created: clock().timeIntervalSince1970)
        let url: String
        do throws(OIDCFailure) {
            url = try await oidc.authorizationURL(state: flow.state, nonce: flow.nonce, verifier: flow.verifier)
        } catch {
            return signInPage(request: request, error: error.pageText, status: .serviceUnavailable)
        }
        guard let sealed = keys.seal(try JSONEncoder().encode(flow)) else {
            return signInPage(request: request, error: "The sign-in could not be started.", status: .internalServerError)
        }
        var response = Response.redirect(to: url, type: .found)
        response.setCookie(flowCookie(value: sealed, maxAge: Int(Self.flowLifetime)))
        return response
    }

    func oidcCallback(_ request: Request, source: String) async throws -> Response {
        guard let oidc else {
            return signInPage(request: request, error: "Signing in with an identity provider is not configured here.", status: .notFound)
        }
        func refuse(_ failure: OIDCFailure, status: HTTPResponse.Status, actor: AuditActor? = nil) async -> Response {
            _ = signInFailures.reserve(key: source, policy: Self.signInPolicy, now: clock(), maxWait: .zero)
            await audit.record(
                actor ?? AuditActor(name: "unknown user", method: "oidc"), "sign-in", .refused, source: source, detail: "refused: \(failure.code)")
            var response = signInPage(request: request, error: failure.pageText, status: status)
            response.setCookie(flowCookie(value: "", maxAge: 0))
            return response
        }
        if signInFailures.pausedUntil(key: source, policy: Self.signInPolicy, now: clock()) != nil {
            var response = signInPage(
                request: request, error: "Too many sign-in attempts; wait a few seconds and try again.", status: .tooManyRequests)
            response.headers[.retryAfter] = "2"
            return response
        }
        let query = request.uri.queryParameters
        // The flow cookie is single use: cleared whatever happens next.
        guard let sealed = request.cookies[Self.flowCookie]?.value, let data = keys.open(sealed),
            let flow = try? JSONDecoder().decode(OIDCFlow.self, from: data),
            clock().timeIntervalSince1970 - flow.created < Self.flowLifetime,
            let state = query["state"].map(String.init), ConsoleKeys.constantTimeEqual(state, flow.state)
        else {
            return await refuse(.state, status: .badRequest)
        }
        // Single use on every instance, even with the cookie copied: the flow is remembered as
        // finished (beside signed-out sessions) until it would have expired anyway.
        let finished = "oidc-flow:" + flow.state
        guard try await store.revokeSession(finished, expires: Date(timeIntervalSince1970: flow.created + Self.flowLifetime), at: clock())
        else { return await refuse(.state, status: .badRequest) }
        if let error = query["error"].map(String.init) {
            return await refuse(.providerError(OIDCProvider.errorCode(error)), status: .unauthorized)
        }
        guard let code = query["code"].map(String.init), !code.isEmpty, code.utf8.count <= 4096 else {
            return await refuse(.providerError("no code"), status: .badRequest)
        }
        let identity: VerifiedIdentity
        do throws(OIDCFailure) {
            identity = try await oidc.signIn(code: code, verifier: flow.verifier, nonce: flow.nonce)
        } catch {
            return await refuse(error, status: .unauthorized)
        }
        let actor = AuditActor(name: identity.displayName, method: "oidc", id: identity.subject)
        guard let rule = RoleRule.role(for: identity.claims, rules: oidc.settings.roles), let role = ConsoleSession.Role(rawValue: rule.rawValue)
        else {
            return await refuse(.noRole(name: identity.displayName), status: .forbidden, actor: actor)
        }
        // The session ends with the ID token: a user the provider no longer admits (removed from
        // the group) is out when the provider next issues one.
        let expires = min(clock().addingTimeInterval(settings.consoleSessionTTL.seconds), identity.expires)
        // A token that lapses within the clock skew would make a session dead on arrival.
        guard expires.timeIntervalSince(clock()) >= Self.shortestSession else { return await refuse(.expired, status: .unauthorized, actor: actor) }
        let session = ConsoleSession(
            role: role, expires: expires, id: ConsoleKeys.randomID(), tokenFingerprint: ConsoleSession.oidcFingerprint(subject: identity.subject),
            name: identity.displayName)
        await audit.record(
            actor, "sign-in", .ok, source: source,
            detail: "role \(role.rawValue), through \(oidc.settings.issuer) until \(Timestamp.rfc3339(expires))")
        var response = render(
            "signed-in", title: "Signed in", values: ["name": identity.displayName, "role": role.rawValue], session: nil,
            refreshTo: "/console")
        response.setCookie(sessionCookie(value: keys.cookieValue(for: session), maxAge: max(1, Int(expires.timeIntervalSince(clock())))))
        response.setCookie(flowCookie(value: "", maxAge: 0))
        return response
    }

    func flowCookie(value: String, maxAge: Int) -> Cookie {
        Cookie(
            name: Self.flowCookie, value: value, maxAge: maxAge, path: "/console/oidc", secure: secureCookies, httpOnly: true,
            sameSite: .lax)
    }

    /// Cookies are `Secure` behind TLS, and whenever the provider sends people back over https.
    var secureCookies: Bool {
        settings.behindTLS || settings.oidc?.redirectURL.lowercased().hasPrefix("https://") == true
    }
}
