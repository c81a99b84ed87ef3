import Foundation
import PatchbayCore
import PatchbayOIDC

/// The `server:` section.
public struct ServerSettings: Sendable {
    public var host: String
    public var port: Int
    /// Bearer tokens agents present on `POST /v1/events`.
    public var tokens: [Secret]
    public var maxBodyBytes: Int
    /// Bearer tokens for the delivery admin API; none turns it off.
    public var adminTokens: [Secret]
    /// How long intake answers 503 at shutdown before the listener closes.
    public var drainDelay: Duration
    /// Largest relayed body (`POST /v1/relay/...`).
    public var maxRelayBytes: Int = 1024 * 1024
    /// A connection that sends nothing (not even the rest of its headers) this long is closed.
    public var idleTimeout: Duration = .seconds(30)
    /// A request body must arrive within this long, or the request is answered 408.
    public var readTimeout: Duration = .seconds(30)
    /// Connections open at once; more wait in the listen backlog.
    public var maxConnections: Int = 1024
    /// Optional pacing of `POST /v1/events` per token: beyond it, 429 with `Retry-After`.
    public var rateLimit: PacingPolicy?
    /// Read-only console tokens: they see every page but cannot replay or send.
    public var viewerTokens: [Secret] = []
    /// Signs console sessions; several instances behind one address need the same key. When
    /// absent, a random key per process (sessions end at a restart).
    public var consoleKey: Secret?
    /// How long a console session lasts.
    public var consoleSessionTTL: Duration = .seconds(8 * 3600)
    /// The server is reached over TLS through a proxy: session cookies are marked `Secure`.
    public var behindTLS = false
    /// Proxies whose `X-Forwarded-For` names the client (addresses or CIDR blocks): sign-in
    /// attempts are paced per client behind them, not per proxy.
    public var trustedProxies: [IPRange] = []
    /// The names of `tokens`, `adminTokens` and `viewerTokens`, in the same order: given as
    /// `{name: ci-pipeline, token: ...}`, or the token's place in its list (`tokens[0]`). Events
    /// record the name that sent them, the audit trail the name that acted.
    public var tokenNames: [String] = []
    public var adminTokenNames: [String] = []
    public var viewerTokenNames: [String] = []
    /// Signing in to the console with an OpenID Connect provider (`server.oidc`).
    public var oidc: OIDCSettings?

    /// The console is on when anyone may sign in to it.
    public var consoleEnabled: Bool { !adminTokens.isEmpty || !viewerTokens.isEmpty || oidc != nil }

    /// The configured name of `tokens[index]`.
    public func name(ofToken index: Int, in names: [String], list: String) -> String {
        index < names.count ? names[index] : "\(list)[\(index)]"
    }

    public init(
        host: String = "127.0.0.1", port: Int = 8080, tokens: [Secret], maxBodyBytes: Int = 262_144,
        adminTokens: [Secret] = [], drainDelay: Duration = .seconds(1)
    ) {
        self.host = host
        self.port = port
        self.tokens = tokens
        self.maxBodyBytes = maxBodyBytes
        self.adminTokens = adminTokens
        self.drainDelay = drainDelay
        tokenNames = tokens.indices.map { "tokens[\($0)]" }
        adminTokenNames = adminTokens.indices.map { "adminTokens[\($0)]" }
    }

    public init(section: ConfigSection?) {
        guard let section else {
            self.init(tokens: [])
            return
        }
        section.allowOnly([
            "listen", "tokens", "adminTokens", "maxBodyBytes", "maxRelayBytes", "drainDelay", "idleTimeout", "readTimeout",
            "maxConnections", "rateLimit", "viewerTokens", "consoleKey", "consoleSessionTTL", "behindTLS",
            "trustedProxies", "oidc",
        ])
        var host = "127.0.0.1"
        var port = 8080
        if let listen = section.string("listen") {
            if let parsed = Self.parseListen(listen) {
                (host, port) = parsed
            } else {
                section.report("listen", "expected host:port like 127.0.0.1:8080 or 0.0.0.0:8080, got '\(listen)'")
            }
        }
        let (tokens, tokenNames) = Self.tokens(section, "tokens", required: true)
        if section.list("tokens")?.isEmpty == true {
            section.report("tokens", "must hold at least one token, or no agent could send events")
        }
        let maxBody = section.int("maxBodyBytes", default: 262_144, range: 1024...(16 * 1024 * 1024))
        self.init(
            host: host, port: port, tokens: tokens, maxBodyBytes: maxBody,
            adminTokens: [],
            drainDelay: section.duration("drainDelay", default: .seconds(1), range: .zero...(.seconds(60))))
        self.tokenNames = tokenNames
        (adminTokens, adminTokenNames) = Self.tokens(section, "adminTokens", required: false)
        maxRelayBytes = section.int("maxRelayBytes", default: 1024 * 1024, range: 1024...(16 * 1024 * 1024))
        idleTimeout = section.duration("idleTimeout", default: .seconds(30), range: .seconds(1)...(.seconds(3600)))
        readTimeout = section.duration("readTimeout", default: .seconds(30), range: .seconds(1)...(.seconds(3600)))
        maxConnections = section.int("maxConnections", default: 1024, range: 1...100_000)
        if let rate = section.section("rateLimit") {
            rateLimit = PacingPolicy(section: rate, defaults: PacingPolicy(rate: 100, burst: 100))
        }
        (viewerTokens, viewerTokenNames) = Self.tokens(section, "viewerTokens", required: false)
        var seen: Set<String> = []
        for (list, names) in [("tokens", tokenNames), ("adminTokens", adminTokenNames), ("viewerTokens", viewerTokenNames)] {
            for name in names where !seen.insert(name).inserted {
                section.report(list, "the token name '\(name)' is used twice; each token needs a name of its own")
            }
        }
        if let oidcSection = section.section("oidc") { oidc = OIDCSettings(section: oidcSection) }
        consoleKey = section.secret("consoleKey", required: false, minimumLength: 32)
        consoleSessionTTL = section.duration("consoleSessionTTL", default: consoleSessionTTL, range: .seconds(60)...(.seconds(7 * 86_400)))
        behindTLS = section.bool("behindTLS", default: false)
        for item in section.list("trustedProxies", required: false) ?? [] {
            guard case .scalar(let text) = item.value, let range = IPRange(text) else {
                item.report("expected an IP address or a CIDR block like 10.0.0.0/8 or fd00::/8")
                continue
            }
            trustedProxies.append(range)
        }
    }

    /// A list of tokens, each a string or `{name: ci-pipeline, token: ...}`, with their names.
    private static func tokens(_ section: ConfigSection, _ key: String, required: Bool) -> ([Secret], [String]) {
        var tokens: [Secret] = []
        var names: [String] = []
        for (index, item) in (section.list(key, required: required) ?? []).enumerated() {
            var name = "\(key)[\(index)]"
            let text: String
            switch item.value {
            case .scalar(let value):
                text = value
            case .map:
                item.allowOnly(["name", "token"])
                guard let given = item.string("name", required: true), let value = item.string("token", required: true) else { continue }
                guard given.count <= 64, given.first?.isLetter == true || given.first?.isNumber == true,
                    given.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
                else {
                    item.report(
                        "name", "use letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit), got '\(given.prefix(64))'")
                    continue
                }
                name = given
                text = value
            default:
                item.report("expected a token string, or {name: ci-pipeline, token: ...}")
                continue
            }
            if text.count < 16 {
                item.report("is too short: use at least 16 random characters (value not shown: it is a secret)")
                continue
            }
            tokens.append(Secret(text))
            names.append(name)
        }
        return (tokens, names)
    }

    /// `127.0.0.1:8080`, `[::1]:8080`, `0.0.0.0:0` (port 0 picks a free port).
    public static func parseListen(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        return (host, port)
    }

    /// Tokens printed in the README and the example configuration: anyone can read them.
    public static let exampleTokens = ["dev-token-0123456789abcdef", "dev-admin-token-0123456789abcdef"]

    /// A problem with serving these tokens on `host`, or nil: an example token is refused unless
    /// the server listens on loopback only (the demo).
    public func exampleTokenProblem() -> String? {
        let public_ = (tokens + adminTokens + viewerTokens).contains { token in Self.exampleTokens.contains { token.constantTimeEquals($0) } }
        guard public_, !LoopbackHost.matches(host) else { return nil }
        return "server.tokens: a token is the example from the README, which anyone can read; set PATCHBAY_TOKEN to a random value "
            + "(openssl rand -hex 24) before listening on \(host)"
    }

    public func isAuthorized(_ authorization: String?) -> Bool {
        Self.matches(authorization, tokens: tokens)
    }

    /// Which of `server.tokens` the `Authorization` header carries (its place in the list), or
    /// nil: the sender's identity for the rate limit, whatever the header's spelling.
    public func matchedToken(_ authorization: String?) -> Int? {
        guard let presented = Self.bearerToken(authorization) else { return nil }
        var matched: Int?
        for (index, token) in tokens.enumerated() where token.constantTimeEquals(presented) { matched = index }
        return matched
    }

    /// A presented token (the console's sign-in form) against each token, in constant time.
    static func matches(token presented: String, tokens: [Secret]) -> Bool {
        matchIndex(token: presented, tokens: tokens) != nil
    }

    /// Which of `tokens` a presented token is, checking each in constant time.
    static func matchIndex(token presented: String, tokens: [Secret]) -> Int? {
        var matched: Int?
        for (index, token) in tokens.enumerated() where token.constantTimeEquals(presented) { matched = index }
        return matched
    }

    /// The name of the admin token an `Authorization` header carries, or nil.
    public func adminTokenName(_ authorization: String?) -> String? {
        guard let presented = Self.bearerToken(authorization), let index = Self.matchIndex(token: presented, tokens: adminTokens) else {
            return nil
        }
        return name(ofToken: index, in: adminTokenNames, list: "adminTokens")
    }

    /// The token of `Bearer <token>`: any case of the scheme, spaces and tabs around the token
    /// (header values hold no line breaks), trimmed by hand: Foundation's trimming showed in the
    /// intake profile.
    static func bearerToken(_ authorization: String?) -> String? {
        guard let authorization, authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " else { return nil }
        var token = authorization.dropFirst(7)
        while let first = token.first, first == " " || first == "\t" { token.removeFirst() }
        while let last = token.last, last == " " || last == "\t" { token.removeLast() }
        return token.isEmpty ? nil : String(token)
    }

    /// `Bearer <token>` against each token, in constant time.
    static func matches(_ authorization: String?, tokens: [Secret]) -> Bool {
        guard let presented = bearerToken(authorization) else { return false }
        // Check every token, without stopping at a match, so timing says nothing about which matched.
        var matched = false
        for token in tokens where token.constantTimeEquals(presented) { matched = true }
        return matched
    }
}
