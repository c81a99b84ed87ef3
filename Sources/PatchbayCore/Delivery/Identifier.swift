import Foundation

/// Short random identifiers with a kind prefix (`evt_`, `dlv_`): readable in a terminal, unique in practice.
public enum Identifier {
    private static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz")

    public static func make(_ prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let body = (0..<20).map { _ in alphabet[Int(generator.next(upperBound: UInt32(alphabet.count)))] }
        return prefix + "_" + String(body)
    }
}
