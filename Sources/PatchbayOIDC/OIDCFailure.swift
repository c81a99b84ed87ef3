import Foundation

/// Why a sign-in through the identity provider was refused. `pageText` is what the sign-in
/// page says; `code` is what the log and the audit trail record. Neither ever holds a token,
/// a code, a state, a nonce or anything the provider sent verbatim.
public enum OIDCFailure: Error, Sendable, Equatable {
    /// The provider could not be reached or answered something unusable (discovery, keys, token).
    case provider(String)
    /// The sign-in link was altered, used twice or is too old (`state` and the flow cookie).
    case state
    /// The provider answered the sign-in with an error code (the user declined, `login_required`).
    case providerError(String)
    case badSignature
    case unknownKey
    case algorithm(String)
    case issuer
    case audience
    case expired
    case issuedInTheFuture
    case nonce
    case malformed
    /// Signed in as `name`, but in none of the groups the console admits.
    case noRole(name: String)

    public var code: String {
        switch self {
        case .provider: "provider_unavailable"
        case .state: "state"
        case .providerError: "provider_error"
        case .badSignature: "bad_signature"
        case .unknownKey: "unknown_key"
        case .algorithm: "algorithm"
        case .issuer: "issuer"
        case .audience: "audience"
        case .expired: "expired"
        case .issuedInTheFuture: "issued_in_the_future"
        case .nonce: "nonce"
        case .malformed: "malformed"
        case .noRole: "no_role"
        }
    }

    public var pageText: String {
        switch self {
        case .provider(let why): "The identity provider could not complete the sign-in: \(why). Try again, or sign in with a token."
        case .state: "This sign-in link was altered, already used or is too old (state). Start again."
        case .providerError(let code): "The identity provider refused the sign-in (\(code))."
        case .badSignature: "The identity token's signature does not match the provider's keys; it was not issued by your provider."
        case .unknownKey: "The identity token was signed with a key the provider does not publish."
        case .algorithm(let alg): "The identity token uses a signature algorithm this console does not accept (\(alg)); use RS256 or ES256."
        case .issuer: "The identity token was issued by another provider (issuer)."
        case .audience: "The identity token was issued to another application (audience)."
        case .expired: "The identity token has expired; check that this server's and the provider's clocks agree."
        case .issuedInTheFuture: "The identity token was issued in the future; check that this server's and the provider's clocks agree."
        case .nonce: "The identity token does not belong to this sign-in (nonce)."
        case .malformed: "The identity provider sent an identity token that cannot be read."
        case .noRole(let name): "Signed in as \(name), but in none of the groups this console admits. Ask an administrator for access."
        }
    }
}
