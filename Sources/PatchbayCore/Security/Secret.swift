import Crypto
import Foundation

/// A webhook URL, API key or token. Its description, debug description and mirror are redacted, so
/// interpolating it into a log line or an error message cannot leak it; `reveal()` is the one way
/// out, used only where the value goes on the wire.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private let value: String

    public init(_ value: String) {
        self.value = value
    }

    public func reveal() -> String { value }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: [:]) }
    public var isEmpty: Bool { value.isEmpty }

    /// Compares in time independent of where the values differ: both sides are hashed first, so
    /// neither the length nor the first differing byte of the secret shows in the timing.
    public func constantTimeEquals(_ candidate: String) -> Bool {
        let left = SHA256.hash(data: Data(value.utf8))
        let right = SHA256.hash(data: Data(candidate.utf8))
        var difference: UInt8 = 0
        for (a, b) in zip(left, right) { difference |= a ^ b }
        return difference == 0
    }
}

/// Removes every configured secret from text that may reach a log, the database or a terminal:
/// response excerpts, transport error messages.
public struct Redactor: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public static let placeholder = "<redacted>"
    private let needles: [String]

    public init(secrets: [Secret]) {
        var needles = Set<String>()
        for secret in secrets {
            let value = secret.reveal()
            // Very short values would redact ordinary words; config validation refuses them anyway.
            guard value.count >= 6 else { continue }
            needles.insert(value)
            if let encoded = value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) {
                needles.insert(encoded)
            }
            // The path of a webhook URL is the secret part: redact it on its own too.
            if let components = URLComponents(string: value), components.path.count >= 8 {
                needles.insert(components.path)
            }
        }
        // Longest first, so a URL is replaced whole before its path is.
        self.needles = needles.sorted { $0.count > $1.count }
    }

    // Its needles are the secrets themselves: it must never describe them.
    public var description: String { "Redactor(\(needles.count) secrets)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [:]) }

    public func redact(_ text: String) -> String {
        var result = text
        for needle in needles where result.contains(needle) {
            result = result.replacingOccurrences(of: needle, with: Self.placeholder)
        }
        return result
    }
}
