import _CryptoExtras
import Crypto
import Foundation
import PatchbayCore
import Synchronization
import X509

/// Verifies SNS signatures (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA) with the
/// certificate at `SigningCertURL`, which must match AWS's host pattern (or one the source config
/// trusts instead, as the tests do on loopback). Certificates are fetched once per URL.
public final class SNSVerifier: Sendable {
    /// AWS's own validators pin the certificate URL to this.
    public static let awsCertificateURLPattern = #"^https://sns\.[a-zA-Z0-9\-]{3,}\.amazonaws\.com(\.cn)?/[^?#]*\.pem$"#

    private let pattern: NSRegularExpression
    private let transport: any HTTPTransport
    private let cache = Mutex<[String: _RSA.Signing.PublicKey]>([:])

    public init(certificateURLPattern: String = awsCertificateURLPattern, transport: any HTTPTransport) throws {
        pattern = try NSRegularExpression(pattern: certificateURLPattern)
        self.transport = transport
    }

    /// Whether `url` may be fetched: the certificate URL, and the SubscribeURL of a confirmation
    /// (same host rules, any path).
    public func isTrusted(certificateURL url: String) -> Bool {
        pattern.firstMatch(in: url, range: NSRange(url.startIndex..., in: url)) != nil
    }

    /// The SubscribeURL of a confirmation is fetched only on the host that served the (trusted)
    /// signing certificate: the message is signed, but the URL must not point anywhere else.
    public func isTrusted(subscribeURL url: String, certificateURL: String) -> Bool {
        guard isTrusted(certificateURL: certificateURL),
              let subscribe = URLComponents(string: url), let certificate = URLComponents(string: certificateURL)
        else { return false }
        return subscribe.scheme == certificate.scheme && subscribe.host == certificate.host && subscribe.port == certificate.port
    }

    public func verify(_ message: SNSMessage) async throws(RelayRejection) {
        guard isTrusted(certificateURL: message.signingCertURL) else {
            throw RelayRejection(403, "untrusted_certificate", "SigningCertURL: not an SNS certificate URL this source trusts")
        }
        guard let signature = Data(base64Encoded: message.signature) else { throw .badSignature("Signature: not base64") }
        let key = try await publicKey(at: message.signingCertURL)
        let content = Data(message.stringToSign.utf8)
        let rsa = _RSA.Signing.RSASignature(rawRepresentation: signature)
        let valid: Bool = switch message.signatureVersion {
        case "1": key.isValidSignature(rsa, for: Insecure.SHA1.hash(data: content), padding: .insecurePKCS1v1_5)
        case "2": key.isValidSignature(rsa, for: SHA256.hash(data: content), padding: .insecurePKCS1v1_5)
        default: throw RelayRejection.malformed("SignatureVersion: expected 1 or 2, got \(message.signatureVersion)")
        }
        guard valid else { throw .badSignature("Signature: does not match the message and the signing certificate") }
    }

    private func publicKey(at url: String) async throws(RelayRejection) -> _RSA.Signing.PublicKey {
        if let cached = cache.withLock({ $0[url] }) { return cached }
        let request = OutboundRequest(method: "GET", url: Secret(url), displayURL: url, headers: [], body: Data())
        let result = await transport.send(request, timeouts: TransportTimeouts(connect: .seconds(3), total: .seconds(5)))
        guard case .success(let response) = result, response.status == 200 else {
            // Transient as far as SNS is concerned: 503 makes it retry.
            throw RelayRejection(503, "certificate_unavailable", "could not fetch the SNS signing certificate; retry later")
        }
        let pem = String(decoding: response.body, as: UTF8.self)
        guard let certificate = try? Certificate(pemEncoded: pem), let key = _RSA.Signing.PublicKey(certificate.publicKey) else {
            throw RelayRejection(403, "untrusted_certificate", "SigningCertURL: not an RSA certificate")
        }
        cache.withLock { $0[url] = key }
        return key
    }
}
