import Foundation
import GRDB
import Logging
import PatchbayCore
import Synchronization

/// The embedded durable queue: SQLite in WAL mode with `synchronous=FULL`, so a committed event
/// survives `kill -9` and power loss. Writes go through one group committer; reads (CLI, admin)
/// run concurrently from the WAL.
public final class SQLiteStore: Sendable {
    public struct OpenError: Error, CustomStringConvertible {
        public var description: String
    }

    let pool: DatabasePool
    private let serverLock = Mutex<Int32?>(nil)
    /// The database file.
    public let path: String
    let committer: GroupCommitter
    let logger: Logger

    public init(settings: StoreSettings, logger: Logger) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(settings.busyTimeout.seconds)
        configuration.label = "patchbay"
        let path = settings.sqlitePath
        self.path = path
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if !FileManager.default.fileExists(atPath: directory) {
            throw OpenError(description: "cannot open the store at '\(path)': directory '\(directory)' does not exist")
        }
        // The queue holds events and vendor ids: readable by this user only. SQLite gives the
        // -wal and -shm files the database file's permissions.
        Self.restrictPermissions(path: path, logger: logger)
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            // GRDB chooses synchronous=NORMAL when it switches the pool to WAL, which can lose the
            // last commits on power loss. A 202 promises the event is on disk, so FULL it is; the
            // pool's single writer connection keeps this for its lifetime.
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            try Migrations.migrator.migrate(pool)
        } catch let error as DatabaseError {
            throw OpenError(description: "cannot open the store at '\(path)': \(error.message ?? "SQLite error \(error.resultCode)")")
        }
        committer = GroupCommitter(writer: pool)
        self.logger = logger
    }

    /// Creates the database file 0600, or tightens an existing one that others could read.
    static func restrictPermissions(path: String, logger: Logger) {
        let manager = FileManager.default
        if !manager.fileExists(atPath: path) {
            manager.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
            return
        }
        for file in [path, path + "-wal", path + "-shm"] where manager.fileExists(atPath: file) {
            guard let mode = (try? manager.attributesOfItem(atPath: file))?[.posixPermissions] as? Int, mode & 0o077 != 0 else { continue }
            do {
                try manager.setAttributes([.posixPermissions: mode & 0o700], ofItemAtPath: file)
                logger.notice("store file was readable by other users; made it private", metadata: ["file": "\(file)"])
            } catch {
                logger.warning("store file is readable by other users and could not be made private", metadata: ["file": "\(file)"])
            }
        }
    }

    /// Takes the file's server lock (`<db>.lock`, held until the process exits): one server per
    /// SQLite file, so a second `serve` fails instead of releasing the first one's live leases.
    public func lockForServing() throws {
        let lockPath = path + ".lock"
        let descriptor = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw OpenError(description: "cannot open the server lock '\(lockPath)': \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw OpenError(description: "another patchbay serve is using '\(path)' (its lock '\(lockPath)' is held): one server per SQLite file")
        }
        // Deliberately never closed: the lock goes with the process, also on kill -9.
        serverLock.withLock { $0 = descriptor }
    }

    public func checkWritable() async throws {
        // A TEMP table lives in memory and stayed writable with a full disk: write a real row.
        let now = Date().timeIntervalSince1970
        try await committer.write { db in
            // 8 KiB of filler needs pages of its own: with no room left this fails as an event
            // would. Cleared at once, so the pages go back to the free list for the next probe.
            try db.execute(
                sql: "INSERT OR REPLACE INTO readiness_probe (id, checked_at, filler) VALUES (1, ?, zeroblob(8192))",
                arguments: [now])
            try db.execute(sql: "UPDATE readiness_probe SET filler = NULL WHERE id = 1")
        }
    }
}
