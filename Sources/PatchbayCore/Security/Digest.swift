import Crypto
import Foundation

extension Data {
    /// Lower-case hex SHA-256, as stored for idempotency checks.
    public var sha256Hex: String {
        SHA256.hash(data: self).map { String(format: "%02x", $0) }.joined()
    }
}
