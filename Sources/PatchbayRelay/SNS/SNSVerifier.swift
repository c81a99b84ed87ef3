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

    /// Certificates kept at most (AWS rotates a handful per region); least recently used go first.
    public static let cacheLimit = 32
    /// A failed fetch is remembered this long, so forged messages cannot make Patchbay fetch again
    /// and again.
    public static let failureMemory: TimeInterval = 60

    private let pattern: NSRegularExpression
    private let transport: any HTTPTransport
    private let clock: @Sendable () -> Date
    /// Where certificate fetches may connect: public addresses only, unless the source allows more.
    public let destinations: DestinationPolicy
    private let cache = Mutex(CertificateCache())
    /// Fetches made, for tests and the metrics of a curious operator.
    public var fetches: Int { cache.withLock { $0.fetches } }

    public init(certificateURLPattern: String = awsCertificateURLPattern, transport: any HTTPTransport,
                destinations: DestinationPolicy = .publicOnly, clock: @escaping @Sendable () -> Date = Date.init) throws {
        pattern = try NSRegularExpression(pattern: certificateURLPattern)
        self.destinations = destinations
        self.transport = transport
        self.clock = clock
    }

    /// Whether `url` may be fetched: the certificate URL, and the SubscribeURL of a confirmation
    /// (same host rules, any path). Dot segments and percent-escapes are refused, so one
    /// certificate has one URL (`…/x/../cert.pem` variants would each be fetched and cached).
    public func isTrusted(certificateURL url: String) -> Bool {
        guard Self.canonical(url) != nil else { return false }
        return pattern.firstMatch(in: url, range: NSRange(url.startIndex..., in: url)) != nil
    }

    /// `https://host[:port]/path` with the host lower-cased; nil for URLs with user info, a query,
    /// a fragment, percent-escapes or dot segments.
    static func canonical(_ url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(), let host = components.host?.lowercased(),
              components.user == nil, components.password == nil, components.query == nil, components.fragment == nil,
              !components.percentEncodedPath.contains("%")
        else { return nil }
        let segments = components.path.split(separator: "/", omittingEmptySubsequences: false)
        guard !segments.contains("."), !segments.contains("..") else { return nil }
        return "\(scheme)://\(host)\(components.port.map { ":\($0)" } ?? "")\(components.path)"
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

    /// Confirms a verified `SubscriptionConfirmation` by fetching its SubscribeURL, only on the
    /// host that served the signing certificate, under the same destination policy.
    public func confirmSubscription(_ message: SNSMessage) async throws(RelayRejection) {
        guard let url = message.subscribeURL, isTrusted(subscribeURL: url, certificateURL: message.signingCertURL) else {
            throw RelayRejection(403, "untrusted_subscribe_url", "SubscribeURL: not an SNS host this source trusts")
        }
        let confirm = OutboundRequest(method: "GET", url: Secret(url), displayURL: "sns subscribe url", headers: [], body: Data(),
                                      destinations: destinations)
        guard case .success(let response) = await transport.send(confirm, timeouts: TransportTimeouts(connect: .seconds(3), total: .seconds(10))),
              (200..<300).contains(response.status)
        else { throw RelayRejection(503, "confirmation_failed", "could not confirm the subscription; retry later") }
    }

    private func publicKey(at url: String) async throws(RelayRejection) -> _RSA.Signing.PublicKey {
        guard let key = Self.canonical(url) else {
            throw RelayRejection(403, "untrusted_certificate", "SigningCertURL: not an SNS certificate URL this source trusts")
        }
        let now = clock()
        switch cache.withLock({ $0.lookup(key, now: now) }) {
        case .key(let cached):
            return cached
        case .failed(let rejection):
            throw rejection
        case .missing:
            break
        }
        let request = OutboundRequest(method: "GET", url: Secret(key), displayURL: key, headers: [], body: Data(), destinations: destinations)
        let result = await transport.send(request, timeouts: TransportTimeouts(connect: .seconds(3), total: .seconds(5)))
        guard case .success(let response) = result, response.status == 200 else {
            // Transient as far as SNS is concerned: 503 makes it retry.
            let rejection = RelayRejection(503, "certificate_unavailable", "could not fetch the SNS signing certificate; retry later")
            cache.withLock { $0.remember(key, .failed(rejection), now: now, limit: Self.cacheLimit) }
            throw rejection
        }
        let pem = String(decoding: response.body, as: UTF8.self)
        guard let certificate = try? Certificate(pemEncoded: pem), let publicKey = _RSA.Signing.PublicKey(certificate.publicKey) else {
            let rejection = RelayRejection(403, "untrusted_certificate", "SigningCertURL: not an RSA certificate")
            cache.withLock { $0.remember(key, .failed(rejection), now: now, limit: Self.cacheLimit) }
            throw rejection
        }
        cache.withLock { $0.remember(key, .key(publicKey), now: now, limit: Self.cacheLimit) }
        return publicKey
    }
}

/// Certificates by canonical URL, least recently used first out; failures expire.
struct CertificateCache {
    enum Entry {
        case key(_RSA.Signing.PublicKey)
        case failed(RelayRejection)
    }

    enum Lookup {
        case key(_RSA.Signing.PublicKey)
        case failed(RelayRejection)
        case missing
    }

    private var entries: [String: (entry: Entry, storedAt: Date)] = [:]
    /// Keys from least to most recently used.
    private var order: [String] = []
    private(set) var fetches = 0

    var count: Int { entries.count }

    mutating func lookup(_ key: String, now: Date) -> Lookup {
        guard let found = entries[key] else { return .missing }
        switch found.entry {
        case .key(let publicKey):
            touch(key)
            return .key(publicKey)
        case .failed(let rejection):
            guard now.timeIntervalSince(found.storedAt) < SNSVerifier.failureMemory else {
                entries[key] = nil
                order.removeAll { $0 == key }
                return .missing
            }
            return .failed(rejection)
        }
    }

    mutating func remember(_ key: String, _ entry: Entry, now: Date, limit: Int) {
        fetches += 1
        entries[key] = (entry, now)
        touch(key)
        while order.count > limit {
            entries[order.removeFirst()] = nil
        }
    }

    private mutating func touch(_ key: String) {
        order.removeAll { $0 == key }
        order.append(key)
    }
}
