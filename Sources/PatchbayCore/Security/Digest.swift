import Crypto
import Foundation

extension Data {
    /// Lower-case hex SHA-256, as stored for idempotency checks.
    public var sha256Hex: String {
        SHA256.hash(data: self).hexString
    }
}

extension Sequence<UInt8> {
    /// Lower-case hex, without `String(format:)` (which costs a format parse per byte).
    var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        for byte in self {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
