import Crypto
import Foundation
import PatchbayCore

/// A signed-in operator. The cookie holds the role, an expiry and a random id, signed with the
/// server key (HMAC-SHA256): nothing a browser could forge, and no token in it or in any URL.
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
    /// removed from the configuration or moved to the other role.
    var tokenFingerprint: String

    static let cookieName = "pb_session"
    static let signInCSRFCookie = "pb_signin"
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

    /// `admin.1800000000.<id>.<token fingerprint>.<signature>`, base64url signature.
    func cookieValue(for session: ConsoleSession) -> String {
        let payload = "\(session.role.rawValue).\(Int64(session.expires.timeIntervalSince1970)).\(session.id).\(session.tokenFingerprint)"
        return payload + "." + sign(payload)
    }

    func fingerprint(of token: Secret) -> String { String(sign("token:" + token.reveal()).prefix(22)) }

    /// The session a cookie carries, if it is ours, unexpired and intact.
    func session(from cookie: String?, now: Date) -> ConsoleSession? {
        guard let cookie, cookie.utf8.count <= 512 else { return nil }
        let parts = cookie.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5, let role = ConsoleSession.Role(rawValue: parts[0]), let seconds = Int64(parts[1]) else { return nil }
        let payload = parts[0...3].joined(separator: ".")
        guard Self.constantTimeEqual(sign(payload), parts[4]) else { return nil }
        let expires = Date(timeIntervalSince1970: TimeInterval(seconds))
        guard expires > now else { return nil }
        return ConsoleSession(role: role, expires: expires, id: parts[2], tokenFingerprint: parts[3])
    }

    /// The CSRF token of a session (or of a sign-in form's nonce): every form carries it.
    func csrfToken(for id: String) -> String { sign("csrf:" + id) }

    func checkCSRF(_ presented: String?, for id: String) -> Bool {
        guard let presented else { return false }
        return Self.constantTimeEqual(csrfToken(for: id), presented)
    }

    private func sign(_ text: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: key)
        return Data(mac).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
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
