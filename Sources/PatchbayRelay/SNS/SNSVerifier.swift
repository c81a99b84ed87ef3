import Crypto
import Foundation
import PatchbayCore
import Synchronization
import X509
import _CryptoExtras

/// Verifies SNS signatures (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA) with the
/// certificate at `SigningCertURL`, which must match AWS's host and file-name pattern (or one the
/// source config trusts instead, as the tests do on loopback). Certificates are fetched once per
/// URL.
///
/// The requests that lead to a fetch are unauthenticated (the signature is checked with what
/// the fetch returns), so fetching cannot be driven from outside (review F17): only URLs of AWS's
/// certificate file form are fetched, fetches of certificates not yet known are rate-limited for
/// the whole process, and failed fetches are remembered apart from the certificates, so forged
/// URLs never push a real certificate out of the cache.
public final class SNSVerifier: Sendable {
    /// AWS's certificate URLs: an SNS regional host and `SimpleNotificationService-<hex>.pem`.
    public static let awsCertificateURLPattern =
        #"^https://sns\.[a-zA-Z0-9\-]{3,}\.amazonaws\.com(\.cn)?/SimpleNotificationService-[0-9a-f]{8,64}\.pem$"#

    /// Certificates kept at most (AWS rotates a handful per region); least recently used go first.
    public static let cacheLimit = 32
    /// Failed fetches remembered at most, in a table of their own; oldest go first.
    public static let failureLimit = 64
    /// A failed fetch is remembered this long, so forged messages cannot make Patchbay fetch again
    /// and again.
    public static let failureMemory: TimeInterval = 60
    /// Fetches of certificates not yet known: this many at once, then one per `fetchInterval`.
    public static let fetchBurst = 5
    public static let fetchInterval: TimeInterval = 10

    private let pattern: NSRegularExpression
    private let transport: any HTTPTransport
    private let clock: @Sendable () -> Date
    /// Where certificate fetches may connect: public addresses only, unless the source allows more.
    public let destinations: DestinationPolicy
    private let cache = Mutex(CertificateCache())
    /// Fetches made, for tests and the metrics of a curious operator.
    public var fetches: Int { cache.withLock { $0.fetches } }
    /// Whether the certificate at `url` is cached (tests).
    func holdsCertificate(at url: String) -> Bool { Self.canonical(url).map { key in cache.withLock { $0.holds(key) } } ?? false }
    let fetchBurst: Int
    let fetchInterval: TimeInterval

    public init(
        certificateURLPattern: String = awsCertificateURLPattern, transport: any HTTPTransport,
        destinations: DestinationPolicy = .publicOnly, clock: @escaping @Sendable () -> Date = Date.init,
        fetchBurst: Int = SNSVerifier.fetchBurst, fetchInterval: TimeInterval = SNSVerifier.fetchInterval
    ) throws {
        pattern = try NSRegularExpression(pattern: certificateURLPattern)
        self.destinations = destinations
        self.transport = transport
        self.clock = clock
        self.fetchBurst = fetchBurst
        self.fetchInterval = fetchInterval
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
            throw RelayRejection(.untrustedCertificate, "SigningCertURL: not an SNS certificate URL this source trusts")
        }
        guard let signature = Data(base64Encoded: message.signature) else { throw .badSignature("Signature: not base64") }
        let key = try await publicKey(at: message.signingCertURL)
        let content = Data(message.stringToSign.utf8)
        let rsa = _RSA.Signing.RSASignature(rawRepresentation: signature)
        let valid: Bool =
            switch message.signatureVersion {
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
            throw RelayRejection(.untrustedSubscribeURL, "SubscribeURL: not an SNS host this source trusts")
        }
        let confirm = OutboundRequest(
            method: "GET", url: Secret(url), displayURL: "sns subscribe url", headers: [], body: Data(),
            destinations: destinations)
        guard case .success(let response) = await transport.send(confirm, timeouts: TransportTimeouts(connect: .seconds(3), total: .seconds(10))),
            (200..<300).contains(response.status)
        else { throw RelayRejection(.confirmationFailed, "could not confirm the subscription; retry later") }
    }

    private func publicKey(at url: String) async throws(RelayRejection) -> _RSA.Signing.PublicKey {
        guard let key = Self.canonical(url) else {
            throw RelayRejection(.untrustedCertificate, "SigningCertURL: not an SNS certificate URL this source trusts")
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
        guard cache.withLock({ $0.takeFetch(now: now, burst: fetchBurst, interval: fetchInterval) }) else {
            // SNS retries a 503 with backoff: a genuine new certificate still arrives, later.
            throw RelayRejection(.certificateFetchLimited, "too many unknown SNS signing certificates at once; retry later")
        }
        let request = OutboundRequest(method: "GET", url: Secret(key), displayURL: key, headers: [], body: Data(), destinations: destinations)
        let result = await transport.send(request, timeouts: TransportTimeouts(connect: .seconds(3), total: .seconds(5)))
        guard case .success(let response) = result, response.status == 200 else {
            // Transient as far as SNS is concerned: 503 makes it retry.
            let rejection = RelayRejection(.certificateUnavailable, "could not fetch the SNS signing certificate; retry later")
            cache.withLock { $0.remember(key, .failed(rejection), now: now, limit: Self.failureLimit) }
            throw rejection
        }
        let pem = String(decoding: response.body, as: UTF8.self)
        guard let certificate = try? Certificate(pemEncoded: pem), let publicKey = _RSA.Signing.PublicKey(certificate.publicKey) else {
            let rejection = RelayRejection(.untrustedCertificate, "SigningCertURL: not an RSA certificate")
            cache.withLock { $0.remember(key, .failed(rejection), now: now, limit: Self.failureLimit) }
            throw rejection
        }
        cache.withLock { $0.remember(key, .key(publicKey), now: now, limit: Self.cacheLimit) }
        return publicKey
    }
}

/// Certificates by canonical URL, least recently used first out; failed fetches in a table of
/// their own, oldest first out, each forgotten after `SNSVerifier.failureMemory`.
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

    private var keys: [String: _RSA.Signing.PublicKey] = [:]
    /// Certificate URLs from least to most recently used.
    private var order: [String] = []
    private var failures: [String: (rejection: RelayRejection, at: Date)] = [:]
    private(set) var fetches = 0
    /// The fetch budget's theoretical arrival time (GCRA).
    private var nextFetch = Date.distantPast

    var count: Int { keys.count }
    var failureCount: Int { failures.count }
    func holds(_ key: String) -> Bool { keys[key] != nil }

    mutating func lookup(_ key: String, now: Date) -> Lookup {
        if let publicKey = keys[key] {
            touch(key)
            return .key(publicKey)
        }
        guard let failure = failures[key] else { return .missing }
        guard now.timeIntervalSince(failure.at) < SNSVerifier.failureMemory else {
            failures[key] = nil
            return .missing
        }
        return .failed(failure.rejection)
    }

    /// Takes a fetch from the budget: `burst` at once, then one per `interval`.
    mutating func takeFetch(now: Date, burst: Int, interval: TimeInterval) -> Bool {
        let arrival = max(nextFetch, now)
        guard arrival.addingTimeInterval(-interval * Double(max(burst - 1, 0))) <= now else { return false }
        nextFetch = arrival.addingTimeInterval(interval)
        return true
    }

    mutating func remember(_ key: String, _ entry: Entry, now: Date, limit: Int) {
        fetches += 1
        switch entry {
        case .key(let publicKey):
            failures[key] = nil
            keys[key] = publicKey
            touch(key)
            while order.count > limit { keys[order.removeFirst()] = nil }
        case .failed(let rejection):
            failures[key] = (rejection, now)
            if failures.count > limit, let oldest = failures.min(by: { $0.value.at < $1.value.at })?.key { failures[oldest] = nil }
        }
    }

    private mutating func touch(_ key: String) {
        order.removeAll { $0 == key }
        order.append(key)
    }
}
