import Foundation
import PatchbayCore

/// `server.oidc`: signing in to the console with an OpenID Connect provider (authorization code
/// flow with PKCE, `state` and `nonce`), beside token sign-in.
///
/// ```yaml
/// server:
///   oidc:
///     issuer: https://login.example.com/realms/ops
///     clientID: patchbay
///     clientSecret: ${OIDC_CLIENT_SECRET}
///     redirectURL: https://patchbay.example.com/console/oidc/callback
///     scopes: [openid, profile, email, groups]
///     roles:                       # first match wins; no match → refused
///       admin: {claim: groups, values: [ops-admins]}
///       viewer: {claim: groups, values: [ops, sre]}
/// ```
public struct OIDCSettings: Sendable {
    public var issuer: String
    public var clientID: String
    public var clientSecret: Secret
    public var redirectURL: String
    public var scopes: [String]
    public var roles: [RoleRule]
    /// Claims tried in turn for the name the console shows.
    public var nameClaims: [String]
    /// How far the provider's clock may be from ours, for `exp` and `iat`.
    public var clockSkew: Duration
    /// A PEM file of certificate authorities for a provider behind a private CA.
    public var caFile: String?

    /// The path the provider sends the browser back to; `redirectURL` must end in it.
    public static let callbackPath = "/console/oidc/callback"
    /// Signature algorithms an ID token may use: never `none`, never a shared-secret HMAC.
    public static let algorithms: Set<String> = ["RS256", "ES256"]

    public init(
        issuer: String, clientID: String, clientSecret: Secret, redirectURL: String, scopes: [String] = ["openid", "profile", "email"],
        roles: [RoleRule], nameClaims: [String] = ["name", "preferred_username", "email", "sub"], clockSkew: Duration = .seconds(60),
        caFile: String? = nil
    ) {
        self.issuer = issuer
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.redirectURL = redirectURL
        self.scopes = scopes
        self.roles = roles
        self.nameClaims = nameClaims
        self.clockSkew = clockSkew
        self.caFile = caFile
    }

    /// Reads `server.oidc`, reporting each problem with its key.
    public init?(section: ConfigSection) {
        section.allowOnly(["issuer", "clientID", "clientSecret", "redirectURL", "scopes", "roles", "nameClaims", "clockSkew", "caFile"])
        let issuer = section.string("issuer", required: true)
        if let issuer, let problem = Self.urlProblem(issuer) { section.report("issuer", problem) }
        let clientID = section.string("clientID", required: true)
        let clientSecret = section.secret("clientSecret", minimumLength: 8)
        let redirectURL = section.string("redirectURL", required: true)
        if let redirectURL {
            if let problem = Self.urlProblem(redirectURL) {
                section.report("redirectURL", problem)
            } else if URLComponents(string: redirectURL)?.path != Self.callbackPath {
                section.report("redirectURL", "must end in \(Self.callbackPath), the console's callback (register the same URL at the provider)")
            }
        }
        let scopes = section.stringList("scopes") ?? ["openid", "profile", "email"]
        if !scopes.contains("openid") { section.report("scopes", "must include openid") }
        var roles: [RoleRule] = []
        if let rolesSection = section.section("roles", required: true) {
            for (name, entry) in rolesSection.namedSections() {
                guard let role = RoleRule.Role(rawValue: name) else {
                    rolesSection.report(name, "is not a console role; use admin or viewer")
                    continue
                }
                entry.allowOnly(["claim", "values"])
                guard let claim = entry.string("claim", required: true), let values = entry.stringList("values"), !values.isEmpty else {
                    if entry.stringList("values")?.isEmpty != false { entry.report("values", "must list at least one claim value") }
                    continue
                }
                roles.append(RoleRule(role: role, claim: claim, values: values))
            }
            if roles.isEmpty && rolesSection.namedSections().isEmpty { rolesSection.report("must map at least one role (admin or viewer)") }
        }
        let nameClaims = section.stringList("nameClaims") ?? ["name", "preferred_username", "email", "sub"]
        let skew = section.duration("clockSkew", default: .seconds(60), range: .zero...(.seconds(300)))
        let caFile = section.string("caFile")
        guard let issuer, Self.urlProblem(issuer) == nil, let clientID, let clientSecret, let redirectURL, Self.urlProblem(redirectURL) == nil,
            scopes.contains("openid"), !roles.isEmpty
        else { return nil }
        self.init(
            issuer: issuer.hasSuffix("/") ? String(issuer.dropLast()) : issuer, clientID: clientID, clientSecret: clientSecret,
            redirectURL: redirectURL, scopes: scopes, roles: roles, nameClaims: nameClaims, clockSkew: skew, caFile: caFile)
    }

    /// https, or plain http to loopback only (a test provider); no user, password or fragment.
    static func urlProblem(_ text: String) -> String? {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(), let host = components.host,
            !host.isEmpty
        else { return "expected an absolute URL, got '\(text)'" }
        if components.user != nil || components.password != nil || components.fragment != nil {
            return "may not carry a user, password or fragment"
        }
        if scheme == "https" { return nil }
        if scheme == "http", LoopbackHost.matches(host) { return nil }
        return "must be https:// (plain http:// only to this machine's loopback, for tests)"
    }
}

/// One `roles:` entry: the role a user gets when `claim` (a string or a list of strings; a
/// dotted path such as `realm_access.roles` reaches into objects) holds one of `values`.
public struct RoleRule: Sendable, Hashable {
    public enum Role: String, Sendable, Hashable {
        case admin
        case viewer
    }

    public var role: Role
    public var claim: String
    public var values: [String]

    public init(role: Role, claim: String, values: [String]) {
        self.role = role
        self.claim = claim
        self.values = values
    }

    /// The first rule that matches, in the order the configuration gives them.
    public static func role(for claims: JSONValue, rules: [RoleRule]) -> Role? {
        for rule in rules where rule.matches(claims) { return rule.role }
        return nil
    }

    func matches(_ claims: JSONValue) -> Bool {
        // An address the user may have typed in themselves grants nothing until the provider
        // has verified it (the "nOAuth" mix-up).
        if claim == "email" {
            guard claims["email_verified"] == .bool(true) || claims["email_verified"] == .string("true") else { return false }
        }
        var value: JSONValue? = claims
        for key in claim.split(separator: ".") { value = value?[String(key)] }
        switch value {
        case .string(let text)?: return values.contains(text)
        case .array(let items)?: return items.contains { item in item.stringValue.map(values.contains) == true }
        default: return false
        }
    }
}
