import Foundation
import JWTKit
import Logging
import PatchbayCore

/// The provider's discovery document (`/.well-known/openid-configuration`), as far as the
/// console uses it.
public struct ProviderMetadata: Sendable, Decodable {
    public var issuer: String
    public var authorizationEndpoint: String
    public var tokenEndpoint: String
    public var jwksURI: String
    public var tokenEndpointAuthMethods: [String]?

    enum CodingKeys: String, CodingKey {
        case issuer
        case authorizationEndpoint = "authorization_endpoint"
        case tokenEndpoint = "token_endpoint"
        case jwksURI = "jwks_uri"
        case tokenEndpointAuthMethods = "token_endpoint_auth_methods_supported"
    }
}

/// The console's side of one OpenID Connect provider: the sign-in link, and a sign-in
/// completed from the code the provider sends back. Discovery is read once a day; the keys are
/// cached (an hour) and fetched again at once, at most every 10 seconds, when a token names a key
/// the cache does not hold (the provider rotated its keys); a failed fetch keeps the keys it had.
/// Every request goes through the transport (libcurl).
public actor OIDCProvider {
    public nonisolated let settings: OIDCSettings
    let transport: any HTTPTransport
    let clock: @Sendable () -> Date
    let logger: Logger
    private var metadata: (value: ProviderMetadata, fetched: Date)?
    private var keys: (value: [JWK], fetched: Date)?
    private var lastKeyFetch: Date?
    private var discoveryFailure: (failure: OIDCFailure, at: Date)?

    static let metadataLifetime: TimeInterval = 86_400
    static let keysLifetime: TimeInterval = 3600
    static let refetchSpacing: TimeInterval = 10
    /// How long keys are used while every fetch fails.
    static let staleKeysLimit: TimeInterval = 86_400
    /// How long a failed discovery is answered from memory: a sign-in page reloaded while the
    /// provider is down does not start a fetch each time.
    static let failureMemory: TimeInterval = 10
    static let timeouts = TransportTimeouts(connect: .seconds(5), total: .seconds(10))
    /// The most keys a key set may publish that are read.
    static let maxKeys = 50

    public init(settings: OIDCSettings, transport: any HTTPTransport, clock: @escaping @Sendable () -> Date = Date.init, logger: Logger) {
        self.settings = settings
        self.transport = transport
        self.clock = clock
        self.logger = logger
    }

    /// Where the browser goes to sign in: the provider's authorization endpoint with the code
    /// flow's parameters, `state`, `nonce` and the PKCE challenge (S256).
    public func authorizationURL(state: String, nonce: String, verifier: String) async throws(OIDCFailure) -> String {
        let metadata = try await discovery()
        guard var components = URLComponents(string: metadata.authorizationEndpoint) else { throw .provider("its sign-in address is not a URL") }
        var items = components.queryItems ?? []
        items += [
            URLQueryItem(name: "response_type", value: "code"), URLQueryItem(name: "client_id", value: settings.clientID),
            URLQueryItem(name: "redirect_uri", value: settings.redirectURL),
            URLQueryItem(name: "scope", value: settings.scopes.joined(separator: " ")), URLQueryItem(name: "state", value: state),
            URLQueryItem(name: "nonce", value: nonce), URLQueryItem(name: "code_challenge", value: PKCE.challenge(for: verifier)),
            URLQueryItem(name: "code_challenge_method", value: "S256"),
        ]
        components.queryItems = items
        // `+` is a space in a query; a scope list must not arrive as literal plus signs.
        components.percentEncodedQuery = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        guard let url = components.string else { throw .provider("its sign-in address is not a URL") }
        return url
    }

    /// Exchanges the code for tokens and checks the ID token; the identity it names, or why not.
    public func signIn(code: String, verifier: String, nonce: String) async throws(OIDCFailure) -> VerifiedIdentity {
        let metadata = try await discovery()
        let token = try await exchange(code: code, verifier: verifier, metadata: metadata)
        let header = try IDTokenVerifier.header(of: token)
        var keys = try await keySet(metadata: metadata, forceFor: nil)
        if (try? IDTokenVerifier.key(for: header, in: keys)) == nil, OIDCSettings.algorithms.contains(header.alg) {
            // A key this cache does not know: the provider may have rotated.
            keys = try await keySet(metadata: metadata, forceFor: header.kid)
        }
        return try await IDTokenVerifier.verify(
            token, keys: keys, issuer: metadata.issuer, clientID: settings.clientID, nonce: nonce, nameClaims: settings.nameClaims,
            now: clock(), clockSkew: settings.clockSkew)
    }

    func discovery() async throws(OIDCFailure) -> ProviderMetadata {
        if let metadata, clock().timeIntervalSince(metadata.fetched) < Self.metadataLifetime { return metadata.value }
        if let discoveryFailure, clock().timeIntervalSince(discoveryFailure.at) < Self.failureMemory { throw discoveryFailure.failure }
        let body: Data
        do throws(OIDCFailure) {
            body = try await get(settings.issuer + "/.well-known/openid-configuration", what: "discovery")
        } catch {
            discoveryFailure = (error, clock())
            throw error
        }
        guard let found = try? JSONDecoder().decode(ProviderMetadata.self, from: body) else {
            throw .provider("its discovery document lacks the endpoints of the code flow")
        }
        // The document must be the configured issuer's own (no mix-up with another provider).
        guard IDTokenVerifier.trimmed(found.issuer) == IDTokenVerifier.trimmed(settings.issuer) else {
            throw .provider("its discovery document names another issuer")
        }
        for endpoint in [found.authorizationEndpoint, found.tokenEndpoint, found.jwksURI] where OIDCSettings.urlProblem(endpoint) != nil {
            throw .provider("its discovery document names an endpoint that is not https")
        }
        metadata = (found, clock())
        return found
    }

    /// The provider's signing keys, from the cache while it is fresh; `forceFor` fetches again
    /// (for a token naming that unknown key) unless a fetch happened within `refetchSpacing`.
    func keySet(metadata: ProviderMetadata, forceFor kid: String?) async throws(OIDCFailure) -> [JWK] {
        let now = clock()
        if let keys {
            let fresh = now.timeIntervalSince(keys.fetched) < Self.keysLifetime
            let recentlyFetched = lastKeyFetch.map { now.timeIntervalSince($0) < Self.refetchSpacing } ?? false
            if (fresh && kid == nil && keys.value.isEmpty == false) || recentlyFetched { return keys.value }
        }
        lastKeyFetch = now
        do throws(OIDCFailure) {
            let body = try await get(metadata.jwksURI, what: "keys")
            let read = Self.keys(in: body)
            guard !read.isEmpty else { throw OIDCFailure.provider("it publishes no RS256 or ES256 signing key") }
            keys = (read, now)
            return read
        } catch {
            // Keep signing people in with the keys it had while the key set cannot be read, for a
            // day: a key the provider withdrew is not trusted for ever.
            if let keys, now.timeIntervalSince(keys.fetched) < Self.staleKeysLimit { return keys.value }
            throw error
        }
    }

    /// Each key on its own: one key of a kind jwt-kit cannot read (`oct`, an encryption key)
    /// must not make the whole set unreadable. Signing keys with a `kid`, RSA or EC only.
    static func keys(in body: Data) -> [JWK] {
        guard case .array(let entries)? = (try? JSONValue.parse(body))?["keys"] else { return [] }
        var keys: [JWK] = []
        for entry in entries.prefix(maxKeys) {
            guard entry["use"]?.stringValue ?? "sig" == "sig", entry["kid"]?.stringValue != nil,
                ["RSA", "EC"].contains(entry["kty"]?.stringValue ?? ""),
                let data = try? JSONEncoder().encode(entry), let key = try? JSONDecoder().decode(JWK.self, from: data)
            else { continue }
            keys.append(key)
        }
        return keys
    }

    /// The authorization code for the ID token: client_secret_basic, or client_secret_post when
    /// that is all the provider takes. A refusal is named by its OAuth error code only.
    func exchange(code: String, verifier: String, metadata: ProviderMetadata) async throws(OIDCFailure) -> String {
        var form = [
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", settings.redirectURL), ("code_verifier", verifier),
        ]
        var headers = [HTTPHeader("Content-Type", "application/x-www-form-urlencoded"), HTTPHeader("Accept", "application/json")]
        let methods = metadata.tokenEndpointAuthMethods ?? ["client_secret_basic"]
        if methods.contains("client_secret_basic") || !methods.contains("client_secret_post") {
            let pair = Self.formEncode(settings.clientID) + ":" + Self.formEncode(settings.clientSecret.reveal())
            headers.append(HTTPHeader("Authorization", "Basic " + Data(pair.utf8).base64EncodedString(), isSecret: true))
        } else {
            form += [("client_id", settings.clientID), ("client_secret", settings.clientSecret.reveal())]
        }
        let body = form.map { "\($0.0)=\(Self.formEncode($0.1))" }.joined(separator: "&")
        let request = OutboundRequest(
            method: "POST", url: Secret(metadata.tokenEndpoint), displayURL: OutboundRequest.displayForm(of: metadata.tokenEndpoint),
            headers: headers, body: Data(body.utf8), caFile: settings.caFile)
        switch await transport.send(request, timeouts: Self.timeouts) {
        case .failure(let failure):
            throw .provider("its token endpoint could not be reached (\(failure.kind.rawValue))")
        case .success(let response):
            let answer = try? JSONValue.parse(response.body)
            guard response.status == 200, let token = answer?["id_token"]?.stringValue else {
                let code = answer?["error"]?.stringValue.map(Self.errorCode) ?? "HTTP \(response.status)"
                throw .provider("its token endpoint refused the code (\(code))")
            }
            return token
        }
    }

    func get(_ url: String, what: String) async throws(OIDCFailure) -> Data {
        let request = OutboundRequest(
            method: "GET", url: Secret(url), displayURL: OutboundRequest.displayForm(of: url), headers: [HTTPHeader("Accept", "application/json")],
            body: Data(), caFile: settings.caFile)
        switch await transport.send(request, timeouts: Self.timeouts) {
        case .failure(let failure):
            logger.warning("the identity provider could not be reached", metadata: ["fetch": "\(what)", "error.kind": "\(failure.kind.rawValue)"])
            throw .provider("its \(what) could not be fetched (\(failure.kind.rawValue))")
        case .success(let response) where response.status == 200:
            return response.body
        case .success(let response):
            throw .provider("its \(what) answered HTTP \(response.status)")
        }
    }

    /// An OAuth error code as the page may show it: its own characters only (RFC 6749 §5.2).
    public static func errorCode(_ code: String) -> String {
        String(code.unicodeScalars.filter { $0.isASCII && ($0.properties.isAlphabetic || $0 == "_" || $0 == "-") }.prefix(40).map(Character.init))
    }

    /// `application/x-www-form-urlencoded` of one value.
    static func formEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }
}
