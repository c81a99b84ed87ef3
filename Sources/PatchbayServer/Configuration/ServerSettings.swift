import Foundation
import PatchbayCore

/// The `server:` section.
public struct ServerSettings: Sendable {
    public var host: String
    public var port: Int
    /// Bearer tokens agents present on `POST /v1/events`.
    public var tokens: [Secret]
    public var maxBodyBytes: Int

    public init(host: String = "127.0.0.1", port: Int = 8080, tokens: [Secret], maxBodyBytes: Int = 262_144) {
        self.host = host
        self.port = port
        self.tokens = tokens
        self.maxBodyBytes = maxBodyBytes
    }

    public init(section: ConfigSection?) {
        guard let section else {
            self.init(tokens: [])
            return
        }
        section.allowOnly(["listen", "tokens", "maxBodyBytes"])
        var host = "127.0.0.1"
        var port = 8080
        if let listen = section.string("listen") {
            if let parsed = Self.parseListen(listen) {
                (host, port) = parsed
            } else {
                section.report("listen", "expected host:port like 127.0.0.1:8080 or 0.0.0.0:8080, got '\(listen)'")
            }
        }
        var tokens: [Secret] = []
        if let items = section.list("tokens", required: true) {
            for item in items {
                guard case .scalar(let text) = item.value else {
                    item.report("expected a token string")
                    continue
                }
                if text.count < 16 {
                    item.report("is too short: use at least 16 random characters (value not shown: it is a secret)")
                    continue
                }
                tokens.append(Secret(text))
            }
            if items.isEmpty { section.report("tokens", "must hold at least one token, or no agent could send events") }
        }
        let maxBody = section.int("maxBodyBytes", default: 262_144, range: 1024...(16 * 1024 * 1024))
        self.init(host: host, port: port, tokens: tokens, maxBodyBytes: maxBody)
    }

    /// `127.0.0.1:8080`, `[::1]:8080`, `0.0.0.0:0` (port 0 picks a free port).
    public static func parseListen(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        return (host, port)
    }

    public func isAuthorized(_ authorization: String?) -> Bool {
        guard let authorization, authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " else { return false }
        let presented = String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        // Check every token, without stopping at a match, so timing says nothing about which matched.
        var matched = false
        for token in tokens where token.constantTimeEquals(presented) { matched = true }
        return matched
    }
}
