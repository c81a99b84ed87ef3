import Foundation

/// Short random identifiers with a kind prefix (`evt_`, `dlv_`): readable in a terminal, unique in practice.
public enum Identifier {
    /// 32 symbols, so each takes exactly 5 random bits (no bias); no i, l, o, u to misread.
    private static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)

    /// 20 symbols, 100 random bits. They come from two draws of the system generator: each draw
    /// is a `getrandom` call, and a draw per symbol made it visible in the delivery profile.
    public static func make(_ prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let high: UInt64 = generator.next()
        let low: UInt64 = generator.next()
        var bytes = Array(prefix.utf8)
        bytes.reserveCapacity(bytes.count + 21)
        bytes.append(UInt8(ascii: "_"))
        for index in 0..<20 {
            let bits = index < 12 ? high >> UInt64(5 * index) : low >> UInt64(5 * (index - 12))
            bytes.append(alphabet[Int(bits & 31)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
