import Foundation
import PatchbayCore

/// The `store:` section: `sqlite: PATH` (the default, one server per file) or
/// `postgres: {url: …, poolSize: 8}` (several instances sharing one database).
public struct StoreSettings: Sendable {
    /// `store.postgres`, as written; checked and turned into a connection by the store factory.
    public struct PostgresOptions: Sendable {
        /// `postgres://user[:password]@host:5432/db?sslmode=…`; a secret, since it may hold the password.
        public var url: Secret
        /// Used when the URL has none (write it `${PATCHBAY_PG_PASSWORD}`).
        public var password: Secret?
        public var poolSize: Int
        /// A schema other than `public`.
        public var schema: String?

        public init(url: Secret, password: Secret? = nil, poolSize: Int = 16, schema: String? = nil) {
            self.url = url
            self.password = password
            self.poolSize = poolSize
            self.schema = schema
        }
    }

    /// Relative paths are resolved against the working directory.
    public var sqlitePath: String
    /// Set when the queue lives in PostgreSQL; `sqlitePath` is then unused.
    public var postgres: PostgresOptions?
    /// How long a writer waits for the database lock (another process, such as the CLI) before failing.
    public var busyTimeout: Duration
    /// How long finished work is kept.
    public var retention: RetentionPolicy
    /// How often `serve` prunes.
    public var pruneInterval: Duration

    public init(
        sqlitePath: String, postgres: PostgresOptions? = nil, busyTimeout: Duration = .seconds(5),
        retention: RetentionPolicy = RetentionPolicy(), pruneInterval: Duration = .seconds(3600)
    ) {
        self.sqlitePath = sqlitePath
        self.postgres = postgres
        self.busyTimeout = busyTimeout
        self.retention = retention
        self.pruneInterval = pruneInterval
    }

    public init(section: ConfigSection?) {
        guard let section else {
            self.init(sqlitePath: "./patchbay.db")
            return
        }
        section.allowOnly(["sqlite", "postgres", "busyTimeout", "retention", "pruneInterval"])
        let path = section.string("sqlite") ?? "./patchbay.db"
        if path.isEmpty { section.report("sqlite", "must be a file path") }
        var postgres: PostgresOptions?
        if let pg = section.section("postgres") {
            if section.has("sqlite") { section.report("choose one of sqlite and postgres") }
            pg.allowOnly(["url", "password", "poolSize", "schema"])
            let schema = pg.string("schema")
            if let schema, schema.range(of: "^[a-z_][a-z0-9_]{0,62}$", options: .regularExpression) == nil {
                pg.report("schema", "expected a lower-case SQL identifier (letters, digits, underscores), got '\(schema)'")
            }
            if let url = pg.secret("url") {
                postgres = PostgresOptions(
                    url: url, password: pg.secret("password", required: false),
                    poolSize: pg.int("poolSize", default: 16, range: 2...200), schema: schema)
            }
        }
        self.init(
            sqlitePath: path,
            postgres: postgres,
            busyTimeout: section.duration("busyTimeout", default: .seconds(5), range: .milliseconds(10)...(.seconds(600))),
            retention: RetentionPolicy(section: section.section("retention")),
            pruneInterval: section.duration("pruneInterval", default: .seconds(3600), range: .seconds(60)...(.seconds(7 * 86_400)))
        )
    }
}
