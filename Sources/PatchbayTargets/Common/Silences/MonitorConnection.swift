import Foundation
import PatchbayCore

/// The keys a target that talks to a monitoring API shares: where (`url`, or `urls` for an HA
/// cluster) and how to sign in (`token`, or `username` and `password`). Whom to trust is `caFile`,
/// which every kind takes (`CATrustingTarget`).
public struct MonitorConnection: Sendable {
    public var urls: [URL]
    public var headers: [HTTPHeader]
    public var secrets: [Secret]

    public static let keys: Set<String> = ["url", "urls", "token", "username", "password"]

    /// Reads the keys from `section`, reporting problems; nil when one is wrong.
    /// `basicAuthRequired`: the API takes only a user and password (Icinga 2).
    public init?(section: ConfigSection, basicAuthRequired: Bool = false) {
        var urls: [URL] = []
        var valid = true
        if let url = section.url("url") {
            if let problem = Self.problem(url) {
                section.report("url", problem)
                valid = false
            }
            urls.append(url)
        }
        if let texts = section.stringList("urls") {
            if section.string("url") != nil { section.report("urls", "give url or urls, not both") }
            for (index, text) in texts.enumerated() {
                guard let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host?.isEmpty == false else {
                    section.diagnostics.report("\(section.keyPath("urls"))[\(index)]", "expected an http:// or https:// URL, got '\(text)'")
                    valid = false
                    continue
                }
                if let problem = Self.problem(url) {
                    section.diagnostics.report("\(section.keyPath("urls"))[\(index)]", problem)
                    valid = false
                }
                urls.append(url)
            }
        }
        if urls.isEmpty, valid {
            section.report("url", "is required (or urls: [...] for the members of a cluster)")
            valid = false
        }
        var headers: [HTTPHeader] = []
        var secrets: [Secret] = []
        let token = basicAuthRequired ? nil : section.secret("token", required: false, minimumLength: 8)
        let username = section.string("username", required: basicAuthRequired)
        let password = section.secret("password", required: basicAuthRequired || username != nil)
        if basicAuthRequired, section.string("token") != nil { section.report("token", "is not taken here; use username and password") }
        if let token {
            if username != nil { section.report("token", "give token, or username and password, not both") }
            headers.append(HTTPHeader("Authorization", "Bearer \(token.reveal())", isSecret: true))
            secrets.append(token)
        } else if let username, let password {
            let basic = Data("\(username):\(password.reveal())".utf8).base64EncodedString()
            headers.append(HTTPHeader("Authorization", "Basic \(basic)", isSecret: true))
            secrets += [password, Secret(basic)]
        } else if password != nil {
            section.report("username", "is required with password")
            valid = false
        }
        if basicAuthRequired, username == nil || password == nil { valid = false }
        guard valid, !urls.isEmpty else { return nil }
        self.urls = urls
        self.headers = headers
        self.secrets = secrets
    }

    /// A base URL carries no credentials or query: they would reach links and logs. The
    /// message does not repeat the URL, which may hold a password.
    static func problem(_ url: URL) -> String? {
        let components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        if components?.user != nil || components?.password != nil { return "must not hold a user or password; use username and password" }
        if components?.query != nil || components?.fragment != nil { return "must be a base URL, without ?query or #fragment" }
        return nil
    }
}
