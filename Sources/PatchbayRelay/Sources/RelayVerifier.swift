import Foundation
import PatchbayCore

/// Checks that a relayed request comes from its configured sender, over the raw bytes and before
/// anything is parsed, and says what to deduplicate it on. One verifier per source; the clock
/// is injected so the timestamp tolerance is tested without sleeping. SNS is verified by
/// `SNSVerifier` (its certificate must be fetched).
public struct RelayVerifier: Sendable {
    /// How far a signed timestamp may be from now (Standard Webhooks and Slack both use 5 minutes).
    public static let tolerance: TimeInterval = 300

    public let source: RelaySource
    let clock: @Sendable () -> Date

    public init(source: RelaySource, clock: @escaping @Sendable () -> Date = Date.init) {
        self.source = source
        self.clock = clock
    }

    /// What a verified request is deduplicated on.
    public enum Dedupe: Sendable, Equatable {
        /// An id the signature covers (`webhook-id`).
        case id(String)
        /// The body's SHA-256: for senders whose ids are not signed (GitHub's `X-GitHub-Delivery`
        /// is not, so a captured request replayed with a new GUID would otherwise queue again).
        case body
        /// The sender's id inside the JSON body (EventBridge's `id`), read after parsing.
        case eventID
        /// Verified by `SNSVerifier`; deduplicated on its `MessageId`.
        case sns
    }

    /// The checks that need no body: header-only credentials (an EventBridge API key, a bearer
    /// token), signature headers present, signed timestamps fresh. Run before the body is read,
    /// so an unauthenticated sender cannot make Patchbay buffer a body.
    public func verifyHeaders(_ header: (String) -> String?) throws(RelayRejection) {
        switch source.kind {
        case .standardWebhooks:
            for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] where (header(name) ?? "").isEmpty {
                throw RelayRejection.badSignature("\(name): header is missing")
            }
            guard let seconds = Int64(header("webhook-timestamp") ?? "") else {
                throw RelayRejection.badSignature(StandardWebhooks.Failure.invalidTimestamp.description)
            }
            let age = clock().timeIntervalSince1970 - Double(seconds)
            if age > Self.tolerance { throw RelayRejection.badSignature(StandardWebhooks.Failure.tooOld.description) }
            if age < -Self.tolerance { throw RelayRejection.badSignature(StandardWebhooks.Failure.tooNew.description) }
        case .github:
            guard header("X-Hub-Signature-256") != nil else { throw RelayRejection.badSignature("X-Hub-Signature-256: header is missing") }
        case .slack:
            guard let timestamp = header("X-Slack-Request-Timestamp"), let seconds = Double(timestamp), seconds.isFinite,
                abs(clock().timeIntervalSince1970 - seconds) <= Self.tolerance
            else { throw RelayRejection.badSignature("X-Slack-Request-Timestamp: missing or more than 5 minutes off") }
        case .sns:
            break
        case .eventbridge(let headerName, let key):
            guard let presented = header(headerName), key.constantTimeEquals(presented) else {
                throw RelayRejection(.unauthorized, "\(headerName): missing or wrong API key")
            }
        case .json(let auth, _):
            if case .bearer(let token) = auth {
                guard let authorization = header("Authorization"), authorization.count > 7, authorization.prefix(7).lowercased() == "bearer ",
                    token.constantTimeEquals(String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces))
                else { throw RelayRejection(.unauthorized, "Authorization: missing or wrong bearer token") }
            }
        }
    }

    /// Everything: the header checks, then the signature over the body, and what to dedupe on.
    /// - Parameter header: the request's header value by name (case-insensitive), or nil.
    public func verify(body: Data, header: (String) -> String?) throws(RelayRejection) -> Dedupe {
        try verifyHeaders(header)
        switch source.kind {
        case .standardWebhooks(let key):
            do {
                try StandardWebhooks.verify(
                    id: header("webhook-id"), timestamp: header("webhook-timestamp"),
                    signatures: header("webhook-signature"), body: body, key: key, now: clock())
            } catch {
                throw RelayRejection.badSignature(error.description)
            }
            return .id(header("webhook-id") ?? "")
        case .github(let secret):
            guard let signature = header("X-Hub-Signature-256"),
                HexHMAC.isValid(signature, prefix: "sha256=", content: body, secret: secret.reveal())
            else { throw RelayRejection.badSignature("X-Hub-Signature-256: missing or does not match the body") }
            guard let delivery = header("X-GitHub-Delivery"), !delivery.isEmpty else {
                throw RelayRejection.malformed("X-GitHub-Delivery: header is missing")
            }
            return .body
        case .slack(let secret):
            var content = Data("v0:\(header("X-Slack-Request-Timestamp") ?? ""):".utf8)
            content.append(body)
            guard let signature = header("X-Slack-Signature"), HexHMAC.isValid(signature, prefix: "v0=", content: content, secret: secret.reveal())
            else {
                throw RelayRejection.badSignature("X-Slack-Signature: missing or does not match the body")
            }
            return .body
        case .sns:
            return .sns
        case .eventbridge:
            return .eventID
        case .json(let auth, _):
            if case .hmac(let headerName, let secret) = auth {
                let presented = header(headerName) ?? ""
                let prefix = presented.hasPrefix("sha256=") ? "sha256=" : ""
                guard HexHMAC.isValid(presented, prefix: prefix, content: body, secret: secret.reveal()) else {
                    throw RelayRejection.badSignature("\(headerName): missing or does not match the body")
                }
            }
            return .body
        }
    }

    /// The idempotency key a relayed message is stored under: in the `relay:` namespace, apart
    /// from agents' `Idempotency-Key`s, so no agent key can turn a real message into a conflict.
    public static func idempotencyKey(source: String, id: String) -> String {
        "relay:\(source):\(id)"
    }
}
