import Foundation
import PatchbayCore

/// The `store:` section.
public struct StoreSettings: Sendable {
    /// Relative paths are resolved against the working directory.
    public var sqlitePath: String
    /// How long a writer waits for the database lock (another process, such as the CLI) before failing.
    public var busyTimeout: Duration

    public init(sqlitePath: String, busyTimeout: Duration = .seconds(5)) {
        self.sqlitePath = sqlitePath
        self.busyTimeout = busyTimeout
    }

    public init(section: ConfigSection?) {
        guard let section else {
            self.init(sqlitePath: "./patchbay.db")
            return
        }
        section.allowOnly(["sqlite", "busyTimeout"])
        let path = section.string("sqlite") ?? "./patchbay.db"
        if path.isEmpty { section.report("sqlite", "must be a file path") }
        self.init(
            sqlitePath: path,
            busyTimeout: section.duration("busyTimeout", default: .seconds(5), range: .milliseconds(10)...(.seconds(600)))
        )
    }
}
