import Foundation
import JWTKit
import PatchbayCore

/// Who an ID token says signed in, once every check passed.
public struct VerifiedIdentity: Sendable, Hashable {
    /// The provider's stable id for the user (`sub`).
    public var subject: String
    /// What the console shows: the first of `nameClaims` the token has, without control
    /// characters, at most 64 characters.
    public var displayName: String
    /// Every claim, for the role mapping.
    public var claims: JSONValue
    /// The token's `exp`: a console session lasts no longer, so a user removed from the group
    /// loses access when the provider next issues a token.
    public var expires: Date
}

/// Checks an ID token (OpenID Connect Core §3.1.3.7): a signature by one of the provider's
/// published keys (RS256 or ES256 only, the key chosen by `kid` and of the algorithm's type, so
/// neither `none`, a shared-secret HMAC nor another key can stand in), then `iss`, `aud` (and
/// `azp` with several audiences), `exp` and `iat` with `clockSkew`, `nonce` and `sub`. The
/// signature is jwt-kit's; the claims are checked here, against this server's clock.
public enum IDTokenVerifier {
    /// The header's `alg` and `kid`, read before anything is trusted.
    public static func header(of token: String) throws(OIDCFailure) -> (alg: String, kid: String?) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard token.utf8.count <= 16_384, parts.count == 3, let data = Base64URL.decode(parts[0]),
            let header = try? JSONValue.parse(data), let alg = header["alg"]?.stringValue
        else { throw .malformed }
        return (alg, header["kid"]?.stringValue)
    }

    /// The published key that may have signed a token with this header: the one with its `kid`
    /// (with no `kid`, the only key there is), of the algorithm's key type and curve, and whose
    /// own `alg`, when it names one, is the header's.
    public static func key(for header: (alg: String, kid: String?), in keys: [JWK]) throws(OIDCFailure) -> JWK {
        guard OIDCSettings.algorithms.contains(header.alg) else { throw .algorithm(String(header.alg.prefix(16))) }
        let candidates = header.kid.map { kid in keys.filter { $0.keyIdentifier?.string == kid } } ?? (keys.count == 1 ? keys : [])
        guard let key = candidates.first else { throw .unknownKey }
        let typeFits =
            header.alg == "RS256" ? key.keyType == .rsa : (key.keyType == .ecdsa && key.curve == .ecdsa(.p256))
        guard typeFits, key.algorithm == nil || key.algorithm?.rawValue == header.alg else { throw .unknownKey }
        return key
    }

    public static func verify(
        _ token: String, keys: [JWK], issuer: String, clientID: String, nonce: String, nameClaims: [String], now: Date,
        clockSkew: Duration
    ) async throws(OIDCFailure) -> VerifiedIdentity {
        let header = try header(of: token)
        let key = try key(for: header, in: keys)
        let claims: JSONValue
        do {
            // A collection of this one key: jwt-kit falls back to a default key for an unknown
            // `kid`, and this leaves it no other.
            let collection = JWTKeyCollection()
            try await collection.add(jwk: key, isDefault: true)
            claims = try await collection.verify(token, as: RawClaims.self).json
        } catch {
            throw .badSignature
        }
        let skew = clockSkew.seconds
        guard case .string(let tokenIssuer)? = claims["iss"], trimmed(tokenIssuer) == trimmed(issuer) else { throw .issuer }
        switch claims["aud"] {
        case .string(let audience)? where audience == clientID:
            break
        case .array(let audiences)? where audiences.contains(.string(clientID)):
            // Issued to several parties: the one it was issued for is named by `azp`.
            if audiences.count > 1, claims["azp"]?.stringValue != clientID { throw .audience }
        default:
            throw .audience
        }
        guard case .number(let exp)? = claims["exp"], exp.isFinite else { throw .malformed }
        guard exp + skew > now.timeIntervalSince1970 else { throw .expired }
        guard case .number(let iat)? = claims["iat"], iat.isFinite else { throw .malformed }
        guard iat - skew <= now.timeIntervalSince1970 else { throw .issuedInTheFuture }
        guard let presented = claims["nonce"]?.stringValue, Secret(nonce).constantTimeEquals(presented) else { throw .nonce }
        guard let subject = claims["sub"]?.stringValue, !subject.isEmpty, subject.utf8.count <= 255 else { throw .malformed }
        let name = (nameClaims.map { claims[$0]?.stringValue ?? "" } + [subject]).lazy.map(displayName).first { !$0.isEmpty } ?? "unknown user"
        return VerifiedIdentity(
            subject: subject, displayName: name, claims: claims, expires: Date(timeIntervalSince1970: min(exp, 4_102_444_800)))
    }

    /// At most 64 characters, no control or format characters (a name cannot break a log line or
    /// turn text around).
    static func displayName(_ text: String) -> String {
        let kept = text.unicodeScalars.filter { !CharacterSet.controlCharacters.contains($0) && $0.properties.generalCategory != .format }
        return String(String(String.UnicodeScalarView(kept)).prefix(64))
    }

    static func trimmed(_ issuer: String) -> String { issuer.hasSuffix("/") ? String(issuer.dropLast()) : issuer }
}

/// Every claim of a verified token, whatever its shape: the checks above read them.
struct RawClaims: JWTPayload {
    var json: JSONValue

    init(json: JSONValue) { self.json = json }
    init(from decoder: any Decoder) throws { json = try JSONValue(from: decoder) }
    func encode(to encoder: any Encoder) throws { try json.encode(to: encoder) }
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
