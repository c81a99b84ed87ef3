import Foundation
import Hummingbird

/// An `application/x-www-form-urlencoded` body: a key may repeat (`ids`).
struct Form: Sendable {
    var pairs: [(String, String)]

    /// Bounded in size here, and in time by the server's read deadline (`RequestReadDeadline`).
    static func read(_ request: Request) async throws -> Form {
        // A form announced larger than any console form is refused before a byte is read.
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBytes {
            throw HTTPError(.contentTooLarge, message: "the form is larger than \(maxBytes / 1024) KiB")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await RequestBody.collect(request, upTo: maxBytes)
        } catch .tooLarge {
            throw HTTPError(.contentTooLarge, message: "the form is larger than \(maxBytes / 1024) KiB")
        } catch .cutShort {
            throw HTTPError(.requestTimeout, message: "the form did not arrive in time")
        }
        let text = String(buffer: buffer)
        var pairs: [(String, String)] = []
        for item in text.split(separator: "&") {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ part: Substring) -> String {
                String(part).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            pairs.append((decode(parts[0]), parts.count > 1 ? decode(parts[1]) : ""))
        }
        return Form(pairs: pairs)
    }

    /// The largest console form: a replay of 200 selected deliveries is about 8 KiB.
    static let maxBytes = 64 * 1024

    func value(_ key: String) -> String? { pairs.first { $0.0 == key }?.1 }
    func values(_ key: String) -> [String] { pairs.filter { $0.0 == key }.map(\.1) }
}
