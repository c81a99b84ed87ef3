import Crypto
import Foundation
import PatchbayCore
import PatchbayOIDC

/// A signed-in operator. The cookie holds the role, an expiry, a random id, who signed in and
/// how, signed with the server key (HMAC-SHA256): nothing a browser could forge, and no token in
/// it or in any URL.
struct ConsoleSession: Sendable, Equatable {
    enum Role: String, Sendable {
        case admin
        case viewer

        var canChange: Bool { self == .admin }
    }

    var role: Role
    var expires: Date
    var id: String
    /// Which token signed in (a keyed hash, not the token): a session ends when its token is
    /// removed from the configuration or moved to the other role. For a sign-in through the
    /// identity provider, `oidc_` and the provider's subject (base64url).
    var tokenFingerprint: String
    /// Who signed in, as the header and the audit trail show it: the provider's display name,
    /// or the token's configured name.
    var name: String = ""

    static let cookieName = "pb_session"
    static let signInCSRFCookie = "pb_signin"
    static let oidcPrefix = "oidc_"

    /// A session of the identity provider's, not of a token.
    var isOIDC: Bool { tokenFingerprint.hasPrefix(Self.oidcPrefix) }

    /// The provider's subject of an OIDC session.
    var subject: String? {
        guard isOIDC, let data = Base64URL.decode(tokenFingerprint.dropFirst(Self.oidcPrefix.count)) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    static func oidcFingerprint(subject: String) -> String { oidcPrefix + Base64URL.encode(Data(subject.utf8)) }

    /// Who acted, for the audit trail.
    var actor: AuditActor {
        isOIDC
            ? AuditActor(name: name.isEmpty ? (subject ?? "unknown") : name, method: "oidc", id: subject)
            : AuditActor(name: "token \(name.isEmpty ? role.rawValue : name)", method: "token", id: name.isEmpty ? nil : name)
    }

    /// What the page header says: "Alice Admin (admin)", "token ci-pipeline (viewer)".
    var signedInAs: String { actor.name }
}

/// Signs and checks session cookies and the CSRF tokens derived from them.
struct ConsoleKeys: Sendable {
    private let key: SymmetricKey

    init(settings: ServerSettings) {
        if let configured = settings.consoleKey {
            key = SymmetricKey(data: SHA256.hash(data: Data(configured.reveal().utf8)))
        } else {
            key = SymmetricKey(size: .bits256)
        }
    }

    /// `admin.1800000000.<id>.<token fingerprint>.<name, base64url>.<signature>`, base64url signature.
    func cookieValue(for session: ConsoleSession) -> String {
        let payload =
            "\(session.role.rawValue).\(Int64(session.expires.timeIntervalSince1970)).\(session.id).\(session.tokenFingerprint)."
            + Base64URL.encode(Data(session.name.utf8))
        return payload + "." + sign(payload)
    }

    func fingerprint(of token: Secret) -> String { String(sign("token:" + token.reveal()).prefix(22)) }

    /// The session a cookie carries, if it is ours, unexpired and intact.
    func session(from cookie: String?, now: Date) -> ConsoleSession? {
        guard let cookie, cookie.utf8.count <= 1536 else { return nil }
        let parts = cookie.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 6, let role = ConsoleSession.Role(rawValue: parts[0]), let seconds = Int64(parts[1]) else { return nil }
        let payload = parts[0...4].joined(separator: ".")
        guard Self.constantTimeEqual(sign(payload), parts[5]) else { return nil }
        let expires = Date(timeIntervalSince1970: TimeInterval(seconds))
        guard expires > now, let name = Base64URL.decode(Substring(parts[4])) else { return nil }
        return ConsoleSession(
            role: role, expires: expires, id: parts[2], tokenFingerprint: parts[3], name: String(decoding: name, as: UTF8.self))
    }

    /// `value` sealed (AES-GCM, with a key derived from the console key): the sign-in flow's
    /// state, nonce and PKCE verifier travel in a cookie nobody can read or alter.
    func seal(_ value: Data) -> String? {
        guard let box = try? AES.GCM.seal(value, using: flowKey), let combined = box.combined else { return nil }
        return Base64URL.encode(combined)
    }

    func open(_ sealed: String?) -> Data? {
        guard let sealed, sealed.utf8.count <= 4096, let data = Base64URL.decode(Substring(sealed)),
            let box = try? AES.GCM.SealedBox(combined: data)
        else { return nil }
        return try? AES.GCM.open(box, using: flowKey)
    }

    private var flowKey: SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: key, info: Data("patchbay-oidc-flow".utf8), outputByteCount: 32)
    }

    /// The CSRF token of a session (or of a sign-in form's nonce): every form carries it.
    func csrfToken(for id: String) -> String { sign("csrf:" + id) }

    func checkCSRF(_ presented: String?, for id: String) -> Bool {
        guard let presented else { return false }
        return Self.constantTimeEqual(csrfToken(for: id), presented)
    }

    private func sign(_ text: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: key)
        return Base64URL.encode(Data(mac))
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let left = Array(a.utf8)
        let right = Array(b.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }

    static func randomID() -> String {
        (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }
}
