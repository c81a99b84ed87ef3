import Foundation
import NIOSSL
import PatchbayCore
import PostgresNIO

/// `store: {postgres: {url: "postgres://user@host:5432/db?sslmode=require", poolSize: 8}}`.
/// The password comes from the URL (write it as `${PATCHBAY_PG_PASSWORD}` in the file) or from
/// `password:`; it is a `Secret`, never printed.
public struct PostgresSettings: Sendable {
    public enum SSLMode: String, Sendable, CaseIterable {
        /// Plain TCP (loopback, a private network).
        case disable
        /// TLS when the server offers it, plain otherwise (libpq's default).
        case prefer
        /// TLS, certificate not checked.
        case require
        /// TLS with the certificate checked against the trusted roots and the host name.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var username: String
    public var password: Secret?
    public var database: String
    public var sslMode: SSLMode
    public var poolSize: Int
    /// A schema other than `public` (search_path); tests use one each.
    public var schema: String?
    /// How long a request waits for a pooled connection before failing as transient (intake
    /// answers 503 with Retry-After).
    public var acquireTimeout: Duration = .seconds(5)
    /// A pooled connection's statements are cancelled by the server after this long, so a stuck
    /// query never holds a connection. Migrations and index builds run without it.
    public var statementTimeout: Duration = .seconds(30)

    public init(
        host: String, port: Int = 5432, username: String, password: Secret? = nil, database: String,
        sslMode: SSLMode = .prefer, poolSize: Int = 16, schema: String? = nil
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.sslMode = sslMode
        self.poolSize = poolSize
        self.schema = schema
    }

    public struct URLError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Parses `postgres://user[:password]@host[:port]/database[?sslmode=…]`. Errors never repeat
    /// the URL (it may hold a password).
    public init(url text: String, poolSize: Int = 16, schema: String? = nil) throws {
        guard let components = URLComponents(string: text), let scheme = components.scheme,
            ["postgres", "postgresql"].contains(scheme.lowercased())
        else {
            throw URLError(description: "expected postgres://user@host:5432/database")
        }
        guard let host = components.host, !host.isEmpty else { throw URLError(description: "the URL names no host") }
        guard let user = components.user, !user.isEmpty else { throw URLError(description: "the URL names no user (postgres://USER@host/db)") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else { throw URLError(description: "the URL names no database (postgres://user@host:5432/DATABASE)") }
        let port = components.port ?? 5432
        guard (1...65_535).contains(port) else { throw URLError(description: "the port must be 1-65535") }
        var mode = SSLMode.prefer
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                let value = item.value ?? ""
                if value == "allow" {
                    mode = .prefer
                    continue
                }
                if value == "verify-ca" {
                    mode = .verifyFull
                    continue
                }
                guard let parsed = SSLMode(rawValue: value) else {
                    throw URLError(description: "sslmode must be one of disable, prefer, require, verify-full; got '\(value)'")
                }
                mode = parsed
            case "application_name", "connect_timeout":
                continue
            default:
                throw URLError(description: "unsupported URL parameter '\(item.name)' (only sslmode is read)")
            }
        }
        self.init(
            host: host, port: port, username: user.removingPercentEncoding ?? user,
            password: components.password.map { Secret($0.removingPercentEncoding ?? $0) },
            database: database.removingPercentEncoding ?? database, sslMode: mode, poolSize: poolSize, schema: schema)
    }

    /// Where the store is, for logs and `--help` output: never the password.
    public var redactedURL: String {
        "postgres://\(username)@\(host):\(port)/\(database)" + (sslMode == .prefer ? "" : "?sslmode=\(sslMode.rawValue)")
            + (schema.map { " (schema \($0))" } ?? "")
    }

    /// Set on every connection: the application name, the schema, a statement timeout (ms; 0
    /// for none, as migrations need).
    func startupParameters(statementTimeout: Int) -> [(String, String)] {
        var startup = [("application_name", "patchbay"), ("statement_timeout", String(statementTimeout))]
        if let schema { startup.append(("search_path", schema)) }
        return startup
    }

    /// The same TLS choice for a connection of its own (the heartbeat's), outside the pool.
    func connectionTLS() throws -> PostgresConnection.Configuration.TLS {
        switch sslMode {
        case .disable: return .disable
        case .prefer: return .prefer(try NIOSSLContext(configuration: Self.unverified()))
        case .require: return .require(try NIOSSLContext(configuration: Self.unverified()))
        case .verifyFull: return .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
    }

    private static func unverified() -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        return configuration
    }

    func tls() throws -> PostgresClient.Configuration.TLS {
        switch sslMode {
        case .disable:
            return .disable
        case .prefer:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            return .prefer(configuration)
        case .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            return .require(configuration)
        case .verifyFull:
            return .require(.makeClientConfiguration())
        }
    }
}
