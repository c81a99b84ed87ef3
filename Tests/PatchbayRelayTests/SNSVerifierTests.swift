import Crypto
import Foundation
import PatchbayCore
import PatchbayTestSupport
import Testing
import X509
import _CryptoExtras

@testable import PatchbayRelay

/// Serves the test certificate: a fake transport, for the unit tests of the verifier's logic.
struct CertificateServer: HTTPTransport {
    let pem: String
    let fetches = Counter()

    final class Counter: @unchecked Sendable {
        var value = 0
    }

    func send(_ request: OutboundRequest, timeouts: TransportTimeouts) async -> Result<TransportResponse, TransportFailure> {
        fetches.value += 1
        return .success(TransportResponse(status: 200, headers: [], body: Data(pem.utf8), latency: .zero))
    }
}

@Suite("SNS signatures")
struct SNSVerifierTests {
    static let topic = "arn:aws:sns:us-east-1:123456789012:patching"
    static let certURL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-bb750dd426d95ee9390147a5624348ee.pem"

    func message(_ fields: [String: String]) throws -> SNSMessage {
        try SNSMessage(json: .object(fields.mapValues(JSONValue.string)))
    }

    @Test(arguments: ["1", "2"])
    func validSignaturesVerify(_ version: String) async throws {
        let signer = try TestSNSSigner()
        let server = CertificateServer(pem: signer.certificatePEM)
        let verifier = try SNSVerifier(transport: server)
        let fields = try signer.notification(message: #"{"status":"Success"}"#, topic: Self.topic, certURL: Self.certURL, version: version)
        try await verifier.verify(try message(fields))
        // Without a Subject the string to sign changes; still valid.
        try await verifier.verify(
            try message(try signer.notification(message: "m", topic: Self.topic, certURL: Self.certURL, version: version, subject: nil)))
        #expect(server.fetches.value == 1, "the certificate is fetched once and cached")
    }

    @Test func tamperedMessagesForeignHostsAndOtherKeysAreRefused() async throws {
        let signer = try TestSNSSigner()
        let verifier = try SNSVerifier(transport: CertificateServer(pem: signer.certificatePEM))
        var fields = try signer.notification(message: #"{"status":"Success"}"#, topic: Self.topic, certURL: Self.certURL)
        fields["Message"] = #"{"status":"Failed"}"#
        await #expect(throws: RelayRejection.badSignature("Signature: does not match the message and the signing certificate")) {
            try await verifier.verify(try message(fields))
        }
        for foreign in [
            "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem", "http://sns.us-east-1.amazonaws.com/cert.pem",
            "https://evil.example/sns.us-east-1.amazonaws.com/cert.pem", "https://sns.us-east-1.amazonaws.com/cert.txt",
        ] {
            let forged = try signer.notification(message: "m", topic: Self.topic, certURL: foreign)
            await #expect(throws: RelayRejection(.untrustedCertificate, "SigningCertURL: not an SNS certificate URL this source trusts")) {
                try await verifier.verify(try message(forged))
            }
        }
        // Signed by another key than the certificate's.
        let impostor = try TestSNSSigner()
        let forged = try impostor.notification(message: "m", topic: Self.topic, certURL: Self.certURL)
        await #expect(throws: RelayRejection.self) { try await verifier.verify(try message(forged)) }
    }

    @Test func subscribeURLsMustStayOnTheCertificateHost() throws {
        let verifier = try SNSVerifier(transport: CertificateServer(pem: ""))
        #expect(
            verifier.isTrusted(subscribeURL: "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=t", certificateURL: Self.certURL))
        #expect(!verifier.isTrusted(subscribeURL: "https://169.254.169.254/latest/meta-data/", certificateURL: Self.certURL))
        #expect(!verifier.isTrusted(subscribeURL: "http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription", certificateURL: Self.certURL))
        #expect(!verifier.isTrusted(subscribeURL: "https://sns.us-east-1.amazonaws.com/", certificateURL: "https://evil.example/x.pem"))
    }

    @Test func stringToSignFollowsTheDocumentedOrder() throws {
        let fields = [
            "Type": "Notification", "MessageId": "id1", "TopicArn": "arn", "Subject": "S", "Message": "M",
            "Timestamp": "T", "SignatureVersion": "1", "Signature": "x", "SigningCertURL": "u",
        ]
        #expect(try message(fields).stringToSign == "Message\nM\nMessageId\nid1\nSubject\nS\nTimestamp\nT\nTopicArn\narn\nType\nNotification\n")
        var confirmation = fields
        confirmation["Type"] = "SubscriptionConfirmation"
        confirmation["SubscribeURL"] = "https://sns/confirm"
        confirmation["Token"] = "tok"
        #expect(
            try message(confirmation).stringToSign
                == "Message\nM\nMessageId\nid1\nSubscribeURL\nhttps://sns/confirm\nTimestamp\nT\nToken\ntok\nTopicArn\narn\nType\nSubscriptionConfirmation\n"
        )
    }

    /// Found by reading: the cache was keyed by the raw URL before the signature was checked, so
    /// `…/x/../cert.pem` variants each cost a fetch and a cache entry, and failures were not
    /// remembered. Now: canonical URLs only, a bounded LRU, failures remembered for a minute.
    @Test func theCertificateCacheIsBoundedCanonicalAndRemembersFailures() async throws {
        let signer = try TestSNSSigner()
        let server = CertificateServer(pem: signer.certificatePEM)
        let pattern = #"^https://sns\.us-east-1\.amazonaws\.com/.*\.pem$"#
        let verifier = try SNSVerifier(certificateURLPattern: pattern, transport: server, fetchBurst: 1000)
        for variant in [
            "https://sns.us-east-1.amazonaws.com/x/../SimpleNotificationService-test.pem",
            "https://sns.us-east-1.amazonaws.com/./SimpleNotificationService-test.pem",
            "https://sns.us-east-1.amazonaws.com/%2E%2E/SimpleNotificationService-test.pem",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem?x=1",
        ] {
            let fields = try signer.notification(message: "{}", topic: Self.topic, certURL: variant)
            await #expect(throws: RelayRejection.self) { try await verifier.verify(try message(fields)) }
        }
        #expect(server.fetches.value == 0, "variants are refused before any fetch")

        // Many distinct (forged) certificate URLs: the cache stays bounded.
        for index in 0..<(SNSVerifier.cacheLimit + 20) {
            let fields = try signer.notification(message: "{}", topic: Self.topic, certURL: "https://sns.us-east-1.amazonaws.com/c\(index).pem")
            try await verifier.verify(try message(fields))
        }
        #expect(server.fetches.value == SNSVerifier.cacheLimit + 20)
        let fields = try signer.notification(message: "{}", topic: Self.topic, certURL: "https://sns.us-east-1.amazonaws.com/c0.pem")
        try await verifier.verify(try message(fields))
        #expect(server.fetches.value == SNSVerifier.cacheLimit + 21, "the oldest entry was evicted and is fetched again")

        // A failed fetch is remembered: no second fetch within a minute; tried again after it.
        let failing = FailingServer()
        let clock = TestClock()
        let strict = try SNSVerifier(certificateURLPattern: pattern, transport: failing, clock: { clock.now })
        let failed = try signer.notification(message: "{}", topic: Self.topic, certURL: Self.certURL)
        for _ in 0..<5 {
            await #expect(throws: RelayRejection.self) { try await strict.verify(try message(failed)) }
        }
        #expect(failing.fetches.value == 1)
        clock.now = clock.now.addingTimeInterval(SNSVerifier.failureMemory + 1)
        await #expect(throws: RelayRejection.self) { try await strict.verify(try message(failed)) }
        #expect(failing.fetches.value == 2)
    }
}

extension SNSVerifierTests {
    /// Certificate fetches cannot be driven from outside (review F17): forged messages on a
    /// configured topic, each naming a new certificate URL on an SNS host, cost a handful of
    /// fetches at most, and the genuine certificate stays cached throughout.
    @Test func forgedCertificateURLsCannotDriveFetchesOrFlushTheCache() async throws {
        let signer = try TestSNSSigner()
        let server = CertificateServer(pem: signer.certificatePEM)
        let clock = TestClock()
        let verifier = try SNSVerifier(transport: server, clock: { clock.now })
        let genuine = try signer.notification(message: "{}", topic: Self.topic, certURL: Self.certURL)
        try await verifier.verify(try message(genuine))
        #expect(server.fetches.value == 1)
        // Not AWS's file form: refused before any fetch.
        for path in ["x1.pem", "cert.pem", "SimpleNotificationService-zz.pem", "SimpleNotificationService-0123456789abcdef.pem.txt"] {
            let forged = try signer.notification(message: "{}", topic: Self.topic, certURL: "https://sns.us-east-1.amazonaws.com/\(path)")
            await #expect(throws: RelayRejection.self) { try await verifier.verify(try message(forged)) }
        }
        #expect(server.fetches.value == 1, "no fetch for a URL that is not a certificate's")
        // Forty forged URLs of the right form: the fetch budget lets a few through, then 503s.
        var limited = 0
        for index in 0..<40 {
            let url = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-\(String(format: "%032x", index + 1)).pem"
            let forged = try signer.notification(message: "{}", topic: Self.topic, certURL: url)
            do {
                try await verifier.verify(try message(forged))
            } catch let rejection as RelayRejection {
                if rejection.code == .certificateFetchLimited { limited += 1 }
            } catch {
                Issue.record("\(error)")
            }
        }
        // The genuine fetch took one of the burst.
        #expect(server.fetches.value == SNSVerifier.fetchBurst, "\(server.fetches.value) fetches")
        #expect(limited == 40 - (SNSVerifier.fetchBurst - 1))
        #expect(verifier.holdsCertificate(at: Self.certURL), "the genuine certificate was not pushed out")
        try await verifier.verify(try message(genuine))
        #expect(server.fetches.value == SNSVerifier.fetchBurst, "and is not fetched again")
        // The budget refills: one more fetch after the interval.
        clock.now = clock.now.addingTimeInterval(SNSVerifier.fetchInterval)
        let later = try signer.notification(
            message: "{}", topic: Self.topic,
            certURL: "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-\(String(repeating: "e", count: 32)).pem")
        try await verifier.verify(try message(later))
        #expect(server.fetches.value == SNSVerifier.fetchBurst + 1)
    }
}

final class TestClock: @unchecked Sendable {
    var now = Date(timeIntervalSince1970: 1_800_000_000)
}

/// A certificate host that is down.
struct FailingServer: HTTPTransport {
    let fetches = CertificateServer.Counter()

    func send(_ request: OutboundRequest, timeouts: TransportTimeouts) async -> Result<TransportResponse, TransportFailure> {
        fetches.value += 1
        return .success(TransportResponse(status: 503, headers: [], body: Data(), latency: .zero))
    }
}
