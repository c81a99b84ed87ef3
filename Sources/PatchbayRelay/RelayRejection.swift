import Foundation

/// Why a relayed request is refused, and the HTTP status that tells its sender what to do: 4xx
/// for requests that will never be accepted, 5xx for transient trouble the sender must retry
/// (SNS drops a message answered with 4xx).
public struct RelayRejection: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    /// Stable code for clients and the `patchbay_relay_rejected_total` metric.
    public var code: String
    public var message: String

    public init(_ status: Int, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var description: String { "\(status) \(code): \(message)" }

    public static func badSignature(_ message: String) -> RelayRejection { RelayRejection(401, "bad_signature", message) }
    public static func malformed(_ message: String) -> RelayRejection { RelayRejection(400, "malformed", message) }
}
