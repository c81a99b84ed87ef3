import Crypto
import Foundation
import PatchbayCore
import Testing

@testable import PatchbayRelay

/// The golden vectors from the reference, byte for byte, and the spec's negative cases.
@Suite("Signature schemes")
struct SignatureTests {
    // Standard Webhooks 1.0 reference vector.
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    static let id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    static let timestamp: Int64 = 1_614_265_330
    static let body = Data(#"{"test": 2432232314}"#.utf8)
    static let signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    static let now = Date(timeIntervalSince1970: TimeInterval(timestamp))
    let key = StandardWebhooks.key(fromSecret: secret)!

    func verify(
        id: String? = id, timestamp: String? = String(timestamp), signatures: String? = signature,
        body: Data = body, now: Date = now
    ) -> StandardWebhooks.Failure? {
        do {
            try StandardWebhooks.verify(id: id, timestamp: timestamp, signatures: signatures, body: body, key: key, now: now)
            return nil
        } catch {
            return error
        }
    }

    @Test func standardWebhooksGoldenVector() {
        #expect(StandardWebhooks.signature(id: Self.id, timestamp: Self.timestamp, body: Self.body, key: key) == Self.signature)
        #expect(verify() == nil)
    }

    @Test func standardWebhooksNegativeCases() {
        #expect(verify(id: nil) == .missingHeader("webhook-id"))
        #expect(verify(timestamp: nil) == .missingHeader("webhook-timestamp"))
        #expect(verify(signatures: nil) == .missingHeader("webhook-signature"))
        #expect(verify(signatures: "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=") == .noMatchingSignature)
        #expect(verify(signatures: "v1,") == .noMatchingSignature)
        #expect(verify(body: Data(#"{"test": 2432232315}"#.utf8)) == .noMatchingSignature)
        #expect(verify(now: Self.now.addingTimeInterval(5 * 60 + 1)) == .tooOld)
        #expect(verify(now: Self.now.addingTimeInterval(-(5 * 60 + 1))) == .tooNew)
        #expect(verify(timestamp: "yesterday") == .invalidTimestamp)
        // Several signatures, one valid: passes (secret rotation).
        #expect(verify(signatures: "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= \(Self.signature)") == nil)
        // Another version with the right bytes is not a v1 signature.
        #expect(verify(signatures: Self.signature.replacingOccurrences(of: "v1,", with: "v2,")) == .noMatchingSignature)
        #expect(StandardWebhooks.key(fromSecret: "") == nil)
        #expect(StandardWebhooks.key(fromSecret: "whsec_") == nil)
    }

    @Test func slackGoldenVector() {
        let body =
            "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
        let content = Data("v0:1531420618:\(body)".utf8)
        let secret = "8f742231b10e8888abcd99yyyzzz85a5"
        let expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        #expect("v0=" + HexHMAC.sha256(content, secret: secret) == expected)
        #expect(HexHMAC.isValid(expected, prefix: "v0=", content: content, secret: secret))
        #expect(!HexHMAC.isValid(expected, prefix: "v0=", content: content + Data("x".utf8), secret: secret))
    }

    @Test func githubGoldenVector() {
        let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        let content = Data("Hello, World!".utf8)
        #expect("sha256=" + HexHMAC.sha256(content, secret: "It's a Secret to Everybody") == expected)
        #expect(HexHMAC.isValid(expected, prefix: "sha256=", content: content, secret: "It's a Secret to Everybody"))
        #expect(!HexHMAC.isValid(expected, prefix: "sha256=", content: content, secret: "It's a Secret to Nobody"))
        #expect(!HexHMAC.isValid("sha1=" + expected.dropFirst(7), prefix: "sha256=", content: content, secret: "It's a Secret to Everybody"))
        #expect(!HexHMAC.isValid("sha256=zz", prefix: "sha256=", content: content, secret: "It's a Secret to Everybody"))
    }

    /// The route only maps a verdict to an answer; the tolerance is the verifier's, on an
    /// injected clock.
    @Test func relayVerifiersCheckTheTimestampOnTheirClockAndNameWhatToDedupeOn() throws {
        let source = RelaySource(name: "ci", kind: .standardWebhooks(key: key), secrets: [])
        func verdict(at now: Date) -> Result<RelayVerifier.Dedupe, RelayRejection> {
            let headers = ["webhook-id": Self.id, "webhook-timestamp": String(Self.timestamp), "webhook-signature": Self.signature]
            do {
                return .success(
                    try RelayVerifier(source: source, clock: { now }).verify(body: Self.body) { name in
                        headers.first { $0.key.lowercased() == name.lowercased() }?.value
                    })
            } catch {
                return .failure(error)
            }
        }
        #expect(try verdict(at: Self.now.addingTimeInterval(299)).get() == .id(Self.id))
        #expect(throws: RelayRejection.self) { try verdict(at: Self.now.addingTimeInterval(301)).get() }
        #expect(throws: RelayRejection.self) { try verdict(at: Self.now.addingTimeInterval(-301)).get() }

        // Slack's timestamp is checked the same way; GitHub dedupes on the signed body.
        let slack = RelaySource(name: "sl", kind: .slack(secret: Secret("slack-secret")), secrets: [])
        let stamp = "1700000000"
        var content = Data("v0:\(stamp):".utf8)
        content.append(Self.body)
        let slackHeaders = ["X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + HexHMAC.sha256(content, secret: "slack-secret")]
        let slackNow = Date(timeIntervalSince1970: 1_700_000_000)
        #expect(try RelayVerifier(source: slack, clock: { slackNow.addingTimeInterval(120) }).verify(body: Self.body) { slackHeaders[$0] } == .body)
        #expect(throws: RelayRejection.self) {
            try RelayVerifier(source: slack, clock: { slackNow.addingTimeInterval(600) }).verify(body: Self.body) { slackHeaders[$0] }
        }
        let github = RelaySource(name: "gh", kind: .github(secret: Secret("gh-secret")), secrets: [])
        let ghHeaders = ["X-Hub-Signature-256": "sha256=" + HexHMAC.sha256(Self.body, secret: "gh-secret"), "X-GitHub-Delivery": "guid-1"]
        #expect(try RelayVerifier(source: github).verify(body: Self.body) { ghHeaders[$0] } == .body)
        #expect(RelayVerifier.idempotencyKey(source: "gh", id: "abc") == "relay:gh:abc")
    }
}
