import Crypto
import Foundation
import PatchbayCore

/// A configured sender under `sources:`, reached at `POST /v1/relay/<name>`.
public struct RelaySource: Sendable {
    public enum Kind: Sendable {
        /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
        case standardWebhooks(key: SymmetricKey)
        /// GitHub: `X-Hub-Signature-256`, deduped on `X-GitHub-Delivery`.
        case github(secret: Secret)
        /// Slack request signing: `X-Slack-Signature` over `v0:timestamp:body`.
        case slack(secret: Secret)
        /// AWS SNS HTTP(S) subscription; only these topics are accepted.
        case sns(topics: [String], certificateURLPattern: String)
        /// An EventBridge API destination, authenticated by a header its connection sets.
        case eventbridge(header: String, key: Secret)
        /// Any other JSON sender, by bearer token or HMAC header, mapped by field paths.
        case json(auth: JSONAuth, mapping: JSONFieldMapping?)
    }

    public enum JSONAuth: Sendable {
        case bearer(Secret)
        /// Hex HMAC-SHA256 of the body in `header`, with or without a `sha256=` prefix.
        case hmac(header: String, secret: Secret)
    }

    public static let kinds = ["standard-webhooks", "github", "slack", "sns", "eventbridge", "json"]

    public let name: String
    public let kind: Kind
    public let secrets: [Secret]
    /// Webhook targets that get the verified body unchanged, instead of a mapped event.
    public var passthrough: [String] = []
    /// This source's body limit (`maxBodyBytes`), under `server.maxRelayBytes`.
    public var maxBodyBytes: Int?
    /// SNS: whether the certificate and SubscribeURL fetches may reach loopback or private
    /// addresses (tests, a local stand-in). Off by default.
    public var allowPrivateNetworks = false

    public init(name: String, kind: Kind, secrets: [Secret], passthrough: [String] = []) {
        self.name = name
        self.kind = kind
        self.secrets = secrets
        self.passthrough = passthrough
    }

    /// Reads `sources.<name>`.
    public init?(name: String, section: ConfigSection) {
        self.init(parsing: name, section: section)
        passthrough = section.stringList("passthrough") ?? []
        if section.has("allowPrivateNetworks") { allowPrivateNetworks = section.bool("allowPrivateNetworks", default: false) }
        if section.has("maxBodyBytes") {
            maxBodyBytes = section.int("maxBodyBytes", default: 1024 * 1024, range: 1024...(16 * 1024 * 1024))
        }
    }

    private init?(parsing name: String, section: ConfigSection) {
        guard section.isMap else {
            section.report("expected a mapping with a kind, like {kind: github, secret: ...}")
            return nil
        }
        guard let kind = section.string("kind", required: true) else { return nil }
        switch kind {
        case "standard-webhooks":
            section.allowOnly(["kind", "passthrough", "maxBodyBytes", "secret"])
            guard let secret = section.secret("secret") else { return nil }
            guard let key = StandardWebhooks.key(fromSecret: secret.reveal()), (24...64).contains(key.bitCount / 8) else {
                section.report("secret", "expected whsec_ followed by base64 of 24 to 64 random bytes (value not shown: it is a secret)")
                return nil
            }
            self.init(name: name, kind: .standardWebhooks(key: key), secrets: [secret])
        case "github", "slack":
            section.allowOnly(["kind", "passthrough", "maxBodyBytes", "secret"])
            guard let secret = section.secret("secret", minimumLength: 8) else { return nil }
            self.init(name: name, kind: kind == "github" ? .github(secret: secret) : .slack(secret: secret), secrets: [secret])
        case "sns":
            section.allowOnly(["kind", "passthrough", "maxBodyBytes", "topics", "certificateURLPattern", "allowPrivateNetworks"])
            let topics = section.stringList("topics", required: true) ?? []
            if topics.isEmpty, section.has("topics") { section.report("topics", "must list at least one topic ARN") }
            let pattern = section.string("certificateURLPattern") ?? SNSVerifier.awsCertificateURLPattern
            if (try? NSRegularExpression(pattern: pattern)) == nil {
                section.report("certificateURLPattern", "is not a valid regular expression")
                return nil
            }
            guard !topics.isEmpty else { return nil }
            self.init(name: name, kind: .sns(topics: topics, certificateURLPattern: pattern), secrets: [])
        case "eventbridge":
            section.allowOnly(["kind", "passthrough", "maxBodyBytes", "apiKeyHeader", "apiKey"])
            let header = section.string("apiKeyHeader") ?? "Authorization"
            guard let key = section.secret("apiKey", minimumLength: 16) else { return nil }
            self.init(name: name, kind: .eventbridge(header: header, key: key), secrets: [key])
        case "json":
            section.allowOnly(["kind", "passthrough", "maxBodyBytes", "bearer", "hmacHeader", "secret", "map", "types"])
            let auth: JSONAuth
            if let token = section.secret("bearer", required: false, minimumLength: 16) {
                auth = .bearer(token)
            } else if let header = section.string("hmacHeader"), let secret = section.secret("secret", minimumLength: 8) {
                auth = .hmac(header: header, secret: secret)
            } else {
                if !section.has("bearer") && !section.has("hmacHeader") {
                    section.report("a json source needs bearer, or hmacHeader with secret")
                }
                return nil
            }
            let mapping = section.section("map").map { JSONFieldMapping(section: $0, types: section.stringMap("types") ?? [:]) } ?? nil
            let secrets: [Secret] =
                switch auth {
                case .bearer(let token): [token]
                case .hmac(_, let secret): [secret]
                }
            self.init(name: name, kind: .json(auth: auth, mapping: mapping), secrets: secrets)
        default:
            section.report("kind", "'\(kind)' is not a source kind; known kinds: \(Self.kinds.joined(separator: ", "))")
            return nil
        }
    }
}

/// Builds a Patchbay event from any JSON body with dotted field paths:
/// ```yaml
/// map: {type: state, app: service.name, environment: "=Production", instance.id: host,
///       window.start: window.from, window.end: window.to, window.id: change}
/// types: {running: patch.started, done: patch.completed}
/// ```
/// A value starting with `=` is a literal. `types` translates the sender's words for the type.
public struct JSONFieldMapping: Sendable {
    public static let fields = [
        "type", "app", "environment", "instance.id", "instance.name", "window.id", "window.start",
        "window.end", "window.timezone", "packages", "occurredAt",
    ]
    public var paths: [String: String]
    public var types: [String: String]

    public init?(section: ConfigSection, types: [String: String]) {
        section.allowOnly(Set(Self.fields))
        var paths: [String: String] = [:]
        for field in Self.fields {
            if let path = section.string(field) { paths[field] = path }
        }
        for required in ["type", "app", "environment", "window.start", "window.end"] where paths[required] == nil {
            section.report(required, "is required: give the field path (or =literal) it comes from")
        }
        guard ["type", "app", "environment", "window.start", "window.end"].allSatisfy({ paths[$0] != nil }) else { return nil }
        self.paths = paths
        self.types = types
    }

    /// The event body, or a message naming the path that was missing.
    public func apply(to body: JSONValue) -> Result<JSONValue, RelayRejection> {
        var event: [String: JSONValue] = [:]
        var instance: [String: JSONValue] = [:]
        var window: [String: JSONValue] = [:]
        for field in Self.fields {
            guard let path = paths[field] else { continue }
            let value: JSONValue
            if path.hasPrefix("=") {
                value = .string(String(path.dropFirst()))
            } else {
                guard let found = Self.lookup(path, in: body) else {
                    return .failure(RelayRejection(.unmappable, "\(path): not in the body (needed for \(field))"))
                }
                value = found
            }
            switch field {
            case "type":
                let raw = value.stringValue ?? ""
                event["type"] = .string(types[raw] ?? raw)
            case "instance.id", "instance.name": instance[String(field.dropFirst(9))] = value
            case "window.id", "window.start", "window.end", "window.timezone": window[String(field.dropFirst(7))] = value
            default: event[field] = value
            }
        }
        if !instance.isEmpty { event["instance"] = .object(instance) }
        event["window"] = .object(window)
        return .success(.object(event))
    }

    static func lookup(_ path: String, in value: JSONValue) -> JSONValue? {
        var current: JSONValue? = value
        for part in path.split(separator: ".") {
            if case .array(let items)? = current, let index = Int(part) {
                current = index < items.count ? items[index] : nil
            } else {
                current = current?[String(part)]
            }
        }
        if case .null? = current { return nil }
        return current
    }
}
