import Foundation

public struct HTTPHeader: Sendable, Hashable {
    public var name: String
    public var value: String
    /// Authorization and API-key headers: shown as `<redacted>` anywhere but on the wire.
    public var isSecret: Bool

    public init(_ name: String, _ value: String, isSecret: Bool = false) {
        self.name = name
        self.value = value
        self.isSecret = isSecret
    }
}

/// What a renderer produces and the transport sends. The URL is a `Secret` because for webhook
/// targets (Slack, Teams) the URL is the credential.
public struct OutboundRequest: Sendable {
    public var method: String
    public var url: Secret
    /// A form of the URL that is safe to print: host and the first path segment at most.
    public var displayURL: String
    public var headers: [HTTPHeader]
    public var body: Data
    /// Where the transport may connect, checked on the resolved address.
    public var destinations: DestinationPolicy
    /// For `smtp://` and `smtps://` URLs: the envelope. `body` is then the whole RFC 5322
    /// message (headers, blank line, body), uploaded as is; `method` and `headers` are ignored.
    public var mail: MailEnvelope?
    /// Which of the target's vendor objects the request acts on, for the target's own reading of
    /// the answer (`FollowUpState.objects` key); nil for the maintenance's own object.
    public var object: String?
    /// PEM file of the certificate authorities to trust instead of the system's (a private CA).
    public var caFile: String?
    /// Further URLs that serve the same API (an HA cluster's other members), tried in order
    /// when no connection to the URL before could be made; never after a request reached one.
    public var fallbackURLs: [Secret]

    public init(
        method: String, url: Secret, displayURL: String, headers: [HTTPHeader], body: Data,
        destinations: DestinationPolicy = .any, mail: MailEnvelope? = nil, object: String? = nil, caFile: String? = nil,
        fallbackURLs: [Secret] = []
    ) {
        self.object = object
        self.caFile = caFile
        self.fallbackURLs = fallbackURLs
        self.destinations = destinations
        self.mail = mail
        self.method = method
        self.url = url
        self.displayURL = displayURL
        self.headers = headers
        self.body = body
    }

    /// `https://hooks.slack.com/services/T0/B0/XX` → `https://hooks.slack.com/…`
    public static func displayForm(of url: String) -> String {
        guard let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host else {
            return "<url>"
        }
        let port = components.port.map { ":\($0)" } ?? ""
        return "\(scheme)://\(host)\(port)/…"
    }
}

/// An SMTP envelope: who the message is from and to whom the server delivers it, and how.
public struct MailEnvelope: Sendable, Hashable {
    /// `MAIL FROM`: a bare address, no display name.
    public var from: String
    /// `RCPT TO`: every To and Cc address.
    public var recipients: [String]
    /// Require STARTTLS on `smtp://` (the default); false only with the target's `allowInsecure: true`.
    public var requireTLS: Bool
    public var username: Secret?
    public var password: Secret?

    public init(from: String, recipients: [String], requireTLS: Bool = true, username: Secret? = nil, password: Secret? = nil) {
        self.from = from
        self.recipients = recipients
        self.requireTLS = requireTLS
        self.username = username
        self.password = password
    }
}

public struct TransportTimeouts: Sendable, Hashable {
    public var connect: Duration
    public var total: Duration

    public init(connect: Duration = .seconds(5), total: Duration = .seconds(15)) {
        self.connect = connect
        self.total = total
    }
}

public struct TransportResponse: Sendable {
    public var status: Int
    public var headers: [HTTPHeader]
    /// The start of the body, capped by the transport.
    public var body: Data
    public var latency: Duration

    public init(status: Int, headers: [HTTPHeader], body: Data, latency: Duration) {
        self.status = status
        self.headers = headers
        self.body = body
        self.latency = latency
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// An expected failure to get any HTTP response: the outcome classifier decides what it means.
public struct TransportFailure: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case connect
        case timeout
        case tls
        /// The destination resolved to an address the request may not reach (`DestinationPolicy`).
        case refused
        case other
    }

    public var kind: Kind
    /// Already redacted by the transport.
    public var message: String
    public var latency: Duration

    public init(kind: Kind, message: String, latency: Duration) {
        self.kind = kind
        self.message = message
        self.latency = latency
    }

    public var description: String { "\(kind.rawValue): \(message)" }
}

public protocol HTTPTransport: Sendable {
    func send(_ request: OutboundRequest, timeouts: TransportTimeouts) async -> Result<TransportResponse, TransportFailure>
}

/// Which addresses an outbound request may reach. URLs that come from senders or that an
/// attacker could influence (webhook targets, SNS certificate and SubscribeURL fetches) are held
/// to public addresses, so Patchbay cannot be turned against the network it runs in.
public enum DestinationPolicy: Sendable, Hashable {
    case any
    /// No loopback, private (RFC 1918, unique-local), link-local (169.254.169.254, the cloud
    /// metadata service), carrier-grade NAT, multicast or reserved addresses.
    case publicOnly

    public func allows(ipv4 address: UInt32) -> Bool {
        guard self == .publicOnly else { return true }
        let a = address >> 24
        let b = (address >> 16) & 0xFF
        switch a {
        case 0, 10, 127: return false
        case 100 where (64...127).contains(b): return false
        case 169 where b == 254: return false
        case 172 where (16...31).contains(b): return false
        case 192 where b == 168: return false
        case 192 where b == 0 && (address >> 8) & 0xFF == 0: return false
        case 198 where b == 18 || b == 19: return false
        case 224...255: return false
        default: return true
        }
    }

    /// IPv6, with the forms that wrap an IPv4 address held to the IPv4 rules: a private IPv4
    /// address must not be reachable through a translator or a tunnel either.
    public func allows(ipv6 bytes: [UInt8]) -> Bool {
        guard self == .publicOnly else { return true }
        guard bytes.count == 16 else { return false }
        func ipv4(at index: Int) -> UInt32 {
            UInt32(bytes[index]) << 24 | UInt32(bytes[index + 1]) << 16 | UInt32(bytes[index + 2]) << 8 | UInt32(bytes[index + 3])
        }
        func zeros(_ range: Range<Int>) -> Bool { bytes[range].allSatisfy { $0 == 0 } }
        if zeros(0..<10), bytes[10] == 0xFF, bytes[11] == 0xFF {
            return allows(ipv4: ipv4(at: 12))  // ::ffff:a.b.c.d, IPv4-mapped
        }
        if zeros(0..<12) { return false }  // ::, ::1 and ::a.b.c.d (IPv4-compatible, deprecated)
        if bytes[0..<4] == [0x00, 0x64, 0xFF, 0x9B] {
            if zeros(4..<12) { return allows(ipv4: ipv4(at: 12)) }  // 64:ff9b::/96, NAT64 (RFC 6052)
            if bytes[4] == 0, bytes[5] == 1 { return false }  // 64:ff9b:1::/48, local-use NAT64 (RFC 8215)
        }
        if bytes[0] == 0x20, bytes[1] == 0x02 { return allows(ipv4: ipv4(at: 2)) }  // 2002::/16, 6to4 (RFC 3056)
        if bytes[0] == 0x20, bytes[1] == 0x01, bytes[2] == 0, bytes[3] == 0 { return false }  // 2001::/32, Teredo (RFC 4380)
        if bytes[0] == 0x01, zeros(1..<8) { return false }  // 100::/64, discard-only (RFC 6666)
        if bytes[0] & 0xFE == 0xFC { return false }  // fc00::/7 unique local
        if bytes[0] == 0xFE, bytes[1] & 0xC0 == 0x80 { return false }  // fe80::/10 link local
        if bytes[0] == 0xFE, bytes[1] & 0xC0 == 0xC0 { return false }  // fec0::/10 site local (deprecated, still routed in places)
        if bytes[0] == 0xFF { return false }  // multicast
        return true
    }
}
