import Crypto
import Foundation
import PatchbayCore

/// A generic HTTP endpoint (`kind: webhook`): POSTs the event as JSON, signed with Standard
/// Webhooks headers. `webhook-id` is the delivery id, so it stays the same across retries and
/// replays and the receiver can dedupe on it; the timestamp and signature are made fresh for each
/// attempt, so a retry hours later is not refused as stale.
public struct WebhookTarget: MessageTarget, TemplatedTarget {
    public static let kind = "webhook"
    public static let defaultPolicy = TargetPolicy(pacing: PacingPolicy(rate: 10, burst: 10))
    public static let traits = TargetKindTraits(kind: kind, acceptsPassthrough: true)
    /// The whole JSON body; values are escaped as JSON string content.
    public static let templateKeys: Set<String> = ["body"]
    public static let templateEscaping = TemplateEscaping.json

    public let name: String
    public let url: Secret
    /// `whsec_` + base64 of 24 to 64 random bytes.
    public let secret: Secret
    /// Whether the URL may resolve to a loopback, private or link-local address. Off by default:
    /// a webhook URL is the one target an operator might take from someone else.
    public let allowPrivateNetworks: Bool
    public var templates: MessageTemplates?
    public var kind: String { Self.kind }
    public var secrets: [Secret] { [url, secret] }

    /// Worked out once: parsing the URL and decoding the key per request showed in the profile.
    private let displayURL: String
    private let signingKey: SymmetricKey?

    public init(name: String, url: Secret, secret: Secret, allowPrivateNetworks: Bool = false) {
        self.name = name
        self.url = url
        self.secret = secret
        self.allowPrivateNetworks = allowPrivateNetworks
        displayURL = OutboundRequest.displayForm(of: url.reveal())
        signingKey = StandardWebhooks.key(fromSecret: secret.reveal())
    }

    /// Reads `targets.<name>`: `{kind: webhook, url: ..., secret: whsec_...}`.
    public init?(name: String, section: ConfigSection) {
        section.allowOnly(TargetRegistry.commonKeys.union(["url", "secret", "allowPrivateNetworks"]))
        let allowPrivate = section.bool("allowPrivateNetworks", default: false)
        let url = section.secretURL("url")
        let secret = section.secret("secret")
        if let secret {
            let bytes = StandardWebhooks.key(fromSecret: secret.reveal()).map { $0.bitCount / 8 } ?? 0
            if !secret.reveal().hasPrefix("whsec_") || !(24...64).contains(bytes) {
                section.report("secret", "expected whsec_ followed by base64 of 24 to 64 random bytes (value not shown: it is a secret)")
                return nil
            }
        }
        guard let url, let secret else { return nil }
        self.init(name: name, url: url, secret: secret, allowPrivateNetworks: allowPrivate)
    }

    public func render(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> OutboundRequest {
        if let body = (MessageTemplates.preferring(context.routeTemplates, over: templates))?.render(
            "body", TemplateValues.values(for: event, context: context))
        {
            let data = Data(body.utf8)
            if let problem = Self.jsonProblem(body) { throw RenderError("the body template \(problem)") }
            return try signed(data, contentType: "application/json", context: context)
        }
        let body: Data
        if let stored = context.encodedEvent { body = stored } else { body = try JSONEncoder.encodePayload(event, kind: "webhook") }
        return try signed(body, contentType: "application/json", context: context)
    }

    /// Why a rendered body is not a JSON document, or nil when it is one.
    public static func jsonProblem(_ body: String) -> String? {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8), options: [.fragmentsAllowed])) == nil
            ? "did not produce valid JSON" : nil
    }

    public static func problem(rendering key: String, as text: String) -> String? { jsonProblem(text) }

    /// The relayed body, byte for byte, with its content type, signed the same way.
    public func relay(_ message: RelayedMessage, context: RenderContext) throws(RenderError) -> DeliveryStep {
        .send(try signed(message.body, contentType: message.contentType, context: context))
    }

    private func signed(_ body: Data, contentType: String, context: RenderContext) throws(RenderError) -> OutboundRequest {
        guard let key = signingKey else { throw RenderError("the webhook secret is not valid base64") }
        let timestamp = Int64(context.now.timeIntervalSince1970)
        return OutboundRequest(
            method: "POST", url: url, displayURL: displayURL,
            headers: [
                HTTPHeader("Content-Type", contentType),
                HTTPHeader("webhook-id", context.deliveryID),
                HTTPHeader("webhook-timestamp", String(timestamp)),
                // Shown as <redacted> in previews: a fresh signature would let whoever reads it
                // send the receiver a request it accepts for the next few minutes.
                HTTPHeader(
                    "webhook-signature", StandardWebhooks.signature(id: context.deliveryID, timestamp: timestamp, body: body, key: key),
                    isSecret: true),
            ],
            body: body,
            destinations: allowPrivateNetworks ? .any : .publicOnly
        )
    }
}
