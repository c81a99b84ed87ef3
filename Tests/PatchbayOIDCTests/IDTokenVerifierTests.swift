import Crypto
import CryptoExtras
import Foundation
import JWTKit
import Logging
import PatchbayCore
import Synchronization
import Testing

@testable import PatchbayOIDC

/// jwt-kit's RSA key (its `Insecure.RSA`, which two imported modules declare an `Insecure` for).
typealias RSAPrivateKey = JWTKit.Insecure.RSA.PrivateKey

/// The ID token checks, one refusal per claim, with tokens signed by jwt-kit for keys made here,
/// and the provider's key cache (rotation, a failed fetch) against a scripted transport.
@Suite("OpenID Connect: ID tokens, keys, roles")
struct IDTokenVerifierTests {
    static let issuer = "https://login.example.test/realms/ops"
    static let now = Date(timeIntervalSince1970: 1_900_000_000)
    static let rsa = try! RSAPrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
    static let ec = ES256PrivateKey()
    /// Another key, published nowhere, signing with a published key's id.
    static let foreign = try! RSAPrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))

    static func jwk(rsa key: RSAPrivateKey, kid: String) throws -> JSONValue {
        let (n, e) = try key.publicKey.getKeyPrimitives()
        return .object([
            "kty": .string("RSA"), "kid": .string(kid), "use": .string("sig"), "alg": .string("RS256"),
            "n": .string(Base64URL.encode(n)), "e": .string(Base64URL.encode(e)),
        ])
    }

    static func jwk(ec key: ES256PrivateKey, kid: String) -> JSONValue {
        let parameters = key.publicKey.parameters!
        return .object([
            "kty": .string("EC"), "kid": .string(kid), "use": .string("sig"), "alg": .string("ES256"), "crv": .string("P-256"),
            "x": .string(parameters.x), "y": .string(parameters.y),
        ])
    }

    static func keySet(_ entries: [JSONValue]) throws -> Data { try JSONEncoder().encode(JSONValue.object(["keys": .array(entries)])) }

    static func published() throws -> [JWK] {
        OIDCProvider.keys(in: try keySet([try jwk(rsa: rsa, kid: "rsa-1"), jwk(ec: ec, kid: "ec-1")]))
    }

    static func claims(_ changes: [String: JSONValue] = [:]) -> [String: JSONValue] {
        var claims: [String: JSONValue] = [
            "iss": .string(issuer), "sub": .string("alice"), "aud": .string("patchbay"), "nonce": .string("n-1"),
            "iat": .number(now.timeIntervalSince1970 - 10), "exp": .number(now.timeIntervalSince1970 + 300),
            "name": .string("Alice Admin"), "groups": .array([.string("ops-admins")]),
        ]
        for (key, value) in changes { claims[key] = value }
        return claims
    }

    static func sign(_ claims: [String: JSONValue], kid: String = "rsa-1", key: RSAPrivateKey = rsa) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(rsa: key, digestAlgorithm: .sha256, kid: JWKIdentifier(string: kid))
        return try await keys.sign(RawClaims(json: .object(claims)), kid: JWKIdentifier(string: kid))
    }

    static func signEC(_ claims: [String: JSONValue], kid: String = "ec-1") async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: ec, kid: JWKIdentifier(string: kid))
        return try await keys.sign(RawClaims(json: .object(claims)), kid: JWKIdentifier(string: kid))
    }

    static func verify(_ token: String, nonce: String = "n-1", keys: [JWK]? = nil) async throws(OIDCFailure) -> VerifiedIdentity {
        try await IDTokenVerifier.verify(
            token, keys: (try? keys ?? published()) ?? [], issuer: issuer, clientID: "patchbay", nonce: nonce,
            nameClaims: ["name", "sub"], now: now, clockSkew: .seconds(60))
    }

    static func refusal(_ token: String, nonce: String = "n-1") async -> OIDCFailure? {
        do {
            _ = try await verify(token, nonce: nonce)
            return nil
        } catch {
            return error
        }
    }

    @Test func rs256AndES256TokensOfThePublishedKeysAreAccepted() async throws {
        let alice = try await Self.verify(try await Self.sign(Self.claims()))
        #expect(alice.subject == "alice" && alice.displayName == "Alice Admin")
        #expect(alice.expires == Self.now.addingTimeInterval(300))
        let bob = try await Self.verify(try await Self.signEC(Self.claims(["sub": .string("bob"), "name": .string("Bob\u{202E} Viewer\n")])))
        #expect(bob.subject == "bob" && bob.displayName == "Bob Viewer", "control and format characters are dropped")
    }

    @Test func eachWrongClaimIsRefusedWithItsReason() async throws {
        #expect(await Self.refusal(try await Self.sign(Self.claims(["aud": .string("someone-else")]))) == .audience)
        #expect(
            await Self.refusal(try await Self.sign(Self.claims(["aud": .array([.string("patchbay"), .string("other")])]))) == .audience,
            "several audiences need azp")
        #expect(
            await Self.refusal(
                try await Self.sign(Self.claims(["aud": .array([.string("patchbay"), .string("other")]), "azp": .string("patchbay")]))) == nil)
        #expect(await Self.refusal(try await Self.sign(Self.claims(["iss": .string("https://evil.example.test")]))) == .issuer)
        #expect(await Self.refusal(try await Self.sign(Self.claims(["exp": .number(Self.now.timeIntervalSince1970 - 61)]))) == .expired)
        #expect(
            await Self.refusal(try await Self.sign(Self.claims(["exp": .number(Self.now.timeIntervalSince1970 - 30)]))) == nil,
            "within the clock skew")
        #expect(
            await Self.refusal(try await Self.sign(Self.claims(["iat": .number(Self.now.timeIntervalSince1970 + 600)]))) == .issuedInTheFuture)
        #expect(await Self.refusal(try await Self.sign(Self.claims()), nonce: "n-other") == .nonce)
        #expect(await Self.refusal(try await Self.sign(Self.claims(["nonce": .null]))) == .nonce)
        #expect(await Self.refusal(try await Self.sign(Self.claims(["sub": .string("")]))) == .malformed)
    }

    @Test func aTokenSignedByAnotherKeyWithAPublishedKidIsRefused() async throws {
        #expect(await Self.refusal(try await Self.sign(Self.claims(), kid: "rsa-1", key: Self.foreign)) == .badSignature)
        #expect(await Self.refusal(try await Self.sign(Self.claims(), kid: "rsa-9")) == .unknownKey, "an unknown kid falls back to nothing")
        // An RS256 header naming the EC key: the key's type decides, not the header.
        let mixed = try await Self.sign(Self.claims(), kid: "ec-1")
        #expect(await Self.refusal(mixed) == .unknownKey)
    }

    @Test func noneAndSharedSecretAlgorithmsAreRefused() async throws {
        let body = Base64URL.encode(try JSONEncoder().encode(JSONValue.object(Self.claims())))
        for alg in ["none", "HS256", "RS512"] {
            let header = Base64URL.encode(Data(#"{"alg":"\#(alg)","kid":"rsa-1"}"#.utf8))
            #expect(await Self.refusal("\(header).\(body).") == .algorithm(alg), "\(alg)")
        }
        #expect(await Self.refusal("not-a-token") == .malformed)
    }

    @Test func keysOfOtherKindsAreSkippedOneByOne() throws {
        let set = try Self.keySet([
            .object(["kty": .string("oct"), "kid": .string("hmac"), "k": .string("c2VjcmV0")]),
            .object(["kty": .string("RSA"), "kid": .string("enc"), "use": .string("enc"), "n": .string("AQAB"), "e": .string("AQAB")]),
            .object(["kty": .string("RSA"), "n": .string("AQAB"), "e": .string("AQAB")]),
            try Self.jwk(rsa: Self.rsa, kid: "rsa-1"),
        ])
        #expect(OIDCProvider.keys(in: set).map { $0.keyIdentifier?.string } == ["rsa-1"])
    }

    @Test func pkceIsRFC7636() {
        // RFC 7636 Appendix B.
        #expect(PKCE.challenge(for: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        #expect(PKCE.randomToken().count == 43 && PKCE.randomToken() != PKCE.randomToken())
    }

    @Test func theFirstMatchingRoleWinsAndNoMatchIsNoRole() {
        let rules = [
            RoleRule(role: .admin, claim: "groups", values: ["ops-admins"]), RoleRule(role: .viewer, claim: "groups", values: ["ops", "sre"]),
            RoleRule(role: .viewer, claim: "realm_access.roles", values: ["patchbay-viewer"]),
        ]
        func role(_ claims: JSONValue) -> RoleRule.Role? { RoleRule.role(for: claims, rules: rules) }
        #expect(role(.object(["groups": .array([.string("sre"), .string("ops-admins")])])) == .admin)
        #expect(role(.object(["groups": .string("ops")])) == .viewer)
        #expect(role(.object(["realm_access": .object(["roles": .array([.string("patchbay-viewer")])])])) == .viewer)
        #expect(role(.object(["groups": .array([.string("marketing")])])) == nil)
        #expect(role(.object([:])) == nil)
        // An address the user typed in grants nothing until the provider verified it.
        let byEmail = [RoleRule(role: .admin, claim: "email", values: ["alice@example.com"])]
        #expect(RoleRule.role(for: .object(["email": .string("alice@example.com")]), rules: byEmail) == nil)
        #expect(RoleRule.role(for: .object(["email": .string("alice@example.com"), "email_verified": .bool(false)]), rules: byEmail) == nil)
        #expect(RoleRule.role(for: .object(["email": .string("alice@example.com"), "email_verified": .bool(true)]), rules: byEmail) == .admin)
    }

    @Test func onlyLoopbackMayBePlainHTTPAndNamesAreCleanedBeforeTheyAreChosen() async throws {
        #expect(OIDCSettings.urlProblem("http://127.0.0.1:8080/x") == nil && OIDCSettings.urlProblem("http://localhost:1") == nil)
        #expect(OIDCSettings.urlProblem("http://127.evil.example/") != nil && OIDCSettings.urlProblem("http://10.0.0.1/") != nil)
        let blank = try await Self.verify(try await Self.sign(Self.claims(["name": .string("\u{202E}\u{200B}\n")])))
        #expect(blank.displayName == "alice", "a name of control and format characters only falls back to the subject")
    }

    // MARK: The provider's keys

    /// Answers the discovery, key set and token requests; counts key fetches.
    final class ScriptedProvider: HTTPTransport {
        let keys = Mutex<Data>(Data())
        let keyFetches = Mutex(0)
        let keysFail = Mutex(false)
        let idToken = Mutex("")
        let tokenRequests = Mutex<[OutboundRequest]>([])

        func send(_ request: OutboundRequest, timeouts: TransportTimeouts) async -> Result<TransportResponse, TransportFailure> {
            let url = request.url.reveal()
            func ok(_ body: Data) -> Result<TransportResponse, TransportFailure> {
                .success(TransportResponse(status: 200, headers: [], body: body, latency: .zero))
            }
            if url.hasSuffix("/.well-known/openid-configuration") {
                let document: JSONValue = .object([
                    "issuer": .string(IDTokenVerifierTests.issuer), "authorization_endpoint": .string(IDTokenVerifierTests.issuer + "/auth"),
                    "token_endpoint": .string(IDTokenVerifierTests.issuer + "/token"), "jwks_uri": .string(IDTokenVerifierTests.issuer + "/certs"),
                ])
                return ok(try! JSONEncoder().encode(document))
            }
            if url.hasSuffix("/certs") {
                keyFetches.withLock { $0 += 1 }
                if keysFail.withLock({ $0 }) { return .failure(TransportFailure(kind: .connect, message: "refused", latency: .zero)) }
                return ok(keys.withLock { $0 })
            }
            tokenRequests.withLock { $0.append(request) }
            return ok(Data(#"{"id_token":"\#(idToken.withLock { $0 })","token_type":"Bearer"}"#.utf8))
        }
    }

    static func provider(_ transport: ScriptedProvider, clock: @escaping @Sendable () -> Date = { IDTokenVerifierTests.now }) -> OIDCProvider {
        OIDCProvider(
            settings: OIDCSettings(
                issuer: issuer, clientID: "patchbay", clientSecret: Secret("client-secret-1"),
                redirectURL: "https://pb.example.test/console/oidc/callback",
                roles: [RoleRule(role: .admin, claim: "groups", values: ["ops-admins"])]),
            transport: transport, clock: clock, logger: .init(label: "test"))
    }

    @Test func aRotatedKeyIsFetchedAgainAtMostEveryTenSeconds() async throws {
        let transport = ScriptedProvider()
        transport.keys.withLock { $0 = try! Self.keySet([try! Self.jwk(rsa: Self.rsa, kid: "rsa-1")]) }
        let clock = Mutex(Self.now)
        let provider = Self.provider(transport, clock: { clock.withLock { $0 } })
        let first = try await Self.sign(Self.claims())
        transport.idToken.withLock { $0 = first }
        #expect(try await provider.signIn(code: "c", verifier: "v", nonce: "n-1").subject == "alice")
        #expect(transport.keyFetches.withLock { $0 } == 1)
        // The provider rotates: a token naming the new key.
        let rotated = try RSAPrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
        transport.keys.withLock { $0 = try! Self.keySet([try! Self.jwk(rsa: rotated, kid: "rsa-2")]) }
        let second = try await Self.sign(Self.claims(), kid: "rsa-2", key: rotated)
        transport.idToken.withLock { $0 = second }
        // Within 10 s of the last fetch the keys are not fetched again (a flood of bad kids
        // cannot make Patchbay hammer the provider).
        await #expect(throws: OIDCFailure.unknownKey) { try await provider.signIn(code: "c", verifier: "v", nonce: "n-1") }
        #expect(transport.keyFetches.withLock { $0 } == 1)
        clock.withLock { $0 = Self.now.addingTimeInterval(11) }
        #expect(try await provider.signIn(code: "c", verifier: "v", nonce: "n-1").subject == "alice", "the rotated key is fetched")
        #expect(transport.keyFetches.withLock { $0 } == 2)
        // The token request authenticates the client, the secret in a header marked secret.
        let token = try #require(transport.tokenRequests.withLock { $0.first })
        #expect(token.headers.contains { $0.name == "Authorization" && $0.isSecret && $0.value.hasPrefix("Basic ") })
        #expect(String(decoding: token.body, as: UTF8.self).contains("code_verifier=v"))
    }

    @Test func aFailedKeyFetchKeepsSigningInWithTheKeysItHad() async throws {
        let transport = ScriptedProvider()
        transport.keys.withLock { $0 = try! Self.keySet([try! Self.jwk(rsa: Self.rsa, kid: "rsa-1")]) }
        let token = try await Self.sign(Self.claims())
        transport.idToken.withLock { $0 = token }
        let clock = Mutex(Self.now)
        let provider = Self.provider(transport, clock: { clock.withLock { $0 } })
        _ = try await provider.signIn(code: "c", verifier: "v", nonce: "n-1")
        clock.withLock { $0 = Self.now.addingTimeInterval(7200) }
        transport.keysFail.withLock { $0 = true }
        let fresh = try await Self.sign(
            Self.claims(["iat": .number(Self.now.timeIntervalSince1970 + 7190), "exp": .number(Self.now.timeIntervalSince1970 + 7500)]))
        transport.idToken.withLock { $0 = fresh }
        #expect(try await provider.signIn(code: "c", verifier: "v", nonce: "n-1").subject == "alice")
    }

    @Test func theAuthorizationURLCarriesTheFlowsParameters() async throws {
        let url = try await Self.provider(ScriptedProvider()).authorizationURL(state: "s-1", nonce: "n-1", verifier: "v-1")
        let items = URLComponents(string: url)?.queryItems ?? []
        func item(_ name: String) -> String? { items.first { $0.name == name }?.value }
        #expect(url.hasPrefix(Self.issuer + "/auth?"))
        #expect(item("response_type") == "code" && item("client_id") == "patchbay" && item("state") == "s-1" && item("nonce") == "n-1")
        #expect(item("code_challenge") == PKCE.challenge(for: "v-1") && item("code_challenge_method") == "S256")
        #expect(item("scope") == "openid profile email" && item("redirect_uri") == "https://pb.example.test/console/oidc/callback")
    }
}
