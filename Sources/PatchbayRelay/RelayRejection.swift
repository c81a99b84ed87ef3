import Foundation

/// Why a relayed request is refused, and the HTTP status that tells its sender what to do: 4xx
/// for requests that will never be accepted, 5xx for transient trouble the sender must retry
/// (SNS drops a message answered with 4xx).
public struct RelayRejection: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable codes for clients and the `patchbay_relay_rejected_total` metric, each with the one
    /// status it is answered with.
    public enum Code: String, Sendable, CaseIterable {
        case malformed
        case badSignature = "bad_signature"
        case unauthorized
        case unknownSource = "unknown_source"
        case unexpectedTopic = "unexpected_topic"
        case untrustedCertificate = "untrusted_certificate"
        case untrustedSubscribeURL = "untrusted_subscribe_url"
        case bodyTimeout = "body_timeout"
        case bodyTooLarge = "body_too_large"
        case unmappable
        case misconfigured
        case confirmationFailed = "confirmation_failed"
        case certificateFetchLimited = "certificate_fetch_limited"
        case certificateUnavailable = "certificate_unavailable"

        /// 4xx: the request will never be accepted; 5xx: transient trouble the sender retries.
        public var status: Int {
            switch self {
            case .malformed: 400
            case .badSignature: 401
            case .unauthorized: 401
            case .unknownSource: 404
            case .unexpectedTopic: 403
            case .untrustedCertificate: 403
            case .untrustedSubscribeURL: 403
            case .bodyTimeout: 408
            case .bodyTooLarge: 413
            case .unmappable: 422
            case .misconfigured: 503
            case .confirmationFailed: 503
            case .certificateFetchLimited: 503
            case .certificateUnavailable: 503
            }
        }
    }

    public var code: Code
    public var message: String
    public var status: Int { code.status }

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(status) \(code.rawValue): \(message)" }

    public static func badSignature(_ message: String) -> RelayRejection { RelayRejection(.badSignature, message) }
    public static func malformed(_ message: String) -> RelayRejection { RelayRejection(.malformed, message) }
}
