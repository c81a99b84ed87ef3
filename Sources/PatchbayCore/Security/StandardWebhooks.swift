import Crypto
import Foundation

/// Standard Webhooks 1.0 symmetric signatures: `v1,` + base64(HMAC-SHA256(key, "id.timestamp.body")),
/// with `whsec_`-prefixed base64 secrets and space-separated signatures for rotation.
public enum StandardWebhooks {
    public static let tolerance: TimeInterval = 5 * 60

    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        case missingHeader(String)
        case invalidTimestamp
        case tooOld
        case tooNew
        case noMatchingSignature

        public var description: String {
            switch self {
            case .missingHeader(let name): "\(name): header is missing"
            case .invalidTimestamp: "webhook-timestamp: expected integer UNIX seconds"
            case .tooOld: "webhook-timestamp: older than the 5-minute tolerance"
            case .tooNew: "webhook-timestamp: more than 5 minutes in the future"
            case .noMatchingSignature: "webhook-signature: no v1 signature matches"
            }
        }
    }

    /// The HMAC key of a `whsec_...` secret (the base64 after the prefix; a bare base64 is taken too).
    /// Nil for an empty or undecodable secret.
    public static func key(fromSecret secret: String) -> SymmetricKey? {
        let encoded = secret.hasPrefix("whsec_") ? String(secret.dropFirst(6)) : secret
        guard !encoded.isEmpty, let bytes = Data(base64Encoded: encoded), !bytes.isEmpty else { return nil }
        return SymmetricKey(data: bytes)
    }

    public static func signature(id: String, timestamp: Int64, body: Data, key: SymmetricKey) -> String {
        var content = Data("\(id).\(timestamp).".utf8)
        content.append(body)
        let mac = HMAC<SHA256>.authenticationCode(for: content, using: key)
        return "v1," + Data(mac).base64EncodedString()
    }

    public static func verify(
        id: String?, timestamp: String?, signatures: String?, body: Data, key: SymmetricKey,
        now: Date
    ) throws(Failure) {
        guard let id, !id.isEmpty else { throw .missingHeader("webhook-id") }
        guard let timestamp, !timestamp.isEmpty else { throw .missingHeader("webhook-timestamp") }
        guard let signatures, !signatures.isEmpty else { throw .missingHeader("webhook-signature") }
        guard let seconds = Int64(timestamp) else { throw .invalidTimestamp }
        let age = now.timeIntervalSince1970 - Double(seconds)
        if age > tolerance { throw .tooOld }
        if age < -tolerance { throw .tooNew }
        var content = Data("\(id).\(timestamp).".utf8)
        content.append(body)
        for candidate in signatures.split(separator: " ") {
            // Only v1 signatures count; `v2,` and the like are skipped, as the reference libraries do.
            guard candidate.hasPrefix("v1,"), let mac = Data(base64Encoded: String(candidate.dropFirst(3))) else { continue }
            if HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: content, using: key) { return }
        }
        throw .noMatchingSignature
    }
}

/// `sha256=<hex>` (GitHub) and `v0=<hex>` (Slack) style HMAC-SHA256 signatures.
public enum HexHMAC {
    public static func sha256(_ content: Data, secret: String) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: content, using: SymmetricKey(data: Data(secret.utf8)))).hexString
    }

    /// Compares `presented` (hex, after its prefix) with the HMAC of `content`, in constant time.
    public static func isValid(_ presented: String, prefix: String, content: Data, secret: String) -> Bool {
        guard presented.hasPrefix(prefix), let mac = Data(hex: String(presented.dropFirst(prefix.count))) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: content, using: SymmetricKey(data: Data(secret.utf8)))
    }
}

extension Data {
    init?(hex: String) {
        guard hex.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hex.count / 2)
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        self.init(bytes)
    }
}
