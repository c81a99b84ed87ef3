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

    public init(method: String, url: Secret, displayURL: String, headers: [HTTPHeader], body: Data) {
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
