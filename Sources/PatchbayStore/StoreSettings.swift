import Foundation
import PatchbayCore

/// The `store:` section.
public struct StoreSettings: Sendable {
    /// Relative paths are resolved against the working directory.
    public var sqlitePath: String
    /// How long a writer waits for the database lock (another process, such as the CLI) before failing.
    public var busyTimeout: Duration
    /// How long finished work is kept.
    public var retention: RetentionPolicy
    /// How often `serve` prunes.
    public var pruneInterval: Duration

    public init(sqlitePath: String, busyTimeout: Duration = .seconds(5), retention: RetentionPolicy = RetentionPolicy(),
                pruneInterval: Duration = .seconds(3600)) {
        self.sqlitePath = sqlitePath
        self.busyTimeout = busyTimeout
        self.retention = retention
        self.pruneInterval = pruneInterval
    }

    public init(section: ConfigSection?) {
        guard let section else {
            self.init(sqlitePath: "./patchbay.db")
            return
        }
        section.allowOnly(["sqlite", "busyTimeout", "retention", "pruneInterval"])
        let path = section.string("sqlite") ?? "./patchbay.db"
        if path.isEmpty { section.report("sqlite", "must be a file path") }
        self.init(
            sqlitePath: path,
            busyTimeout: section.duration("busyTimeout", default: .seconds(5), range: .milliseconds(10)...(.seconds(600))),
            retention: RetentionPolicy(section: section.section("retention")),
            pruneInterval: section.duration("pruneInterval", default: .seconds(3600), range: .seconds(60)...(.seconds(7 * 86_400)))
        )
    }
}
