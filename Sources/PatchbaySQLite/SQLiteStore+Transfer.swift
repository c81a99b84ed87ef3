import Foundation
import GRDB
import PatchbayCore

/// Reading a whole SQLite queue out (`patchbay migrate --from sqlite:PATH`), and the schema
/// history `patchbay migrate` reports.
extension SQLiteStore {
    /// Every row that makes the queue, read in one read transaction: a consistent snapshot even
    /// if a writer were still at work (the command refuses while a server holds the file).
    public func exportForTransfer() async throws -> StoreTransfer {
        try await pool.read { db -> StoreTransfer in
            func date(_ row: Row, _ column: String) -> Date {
                Date(timeIntervalSince1970: row[column] as Double)
            }
            func optionalDate(_ row: Row, _ column: String) -> Date? {
                (row[column] as Double?).map(Date.init(timeIntervalSince1970:))
            }
            var transfer = StoreTransfer()
            transfer.events = try Row.fetchAll(db, sql: "SELECT * FROM events ORDER BY seq").map { (row: Row) -> StoreTransfer.EventRow in
                StoreTransfer.EventRow(
                    seq: row["seq"], id: row["id"], idempotencyKey: row["idempotency_key"], bodySHA256: row["body_sha256"],
                    type: row["type"], app: row["app"], environment: row["environment"], maintenanceKey: row["maintenance_key"],
                    payload: row["payload"], deliveryCount: row["delivery_count"], receivedAt: date(row, "received_at"),
                    sender: row["sender"]
                )
            }
            transfer.deliveries = try Row.fetchAll(db, sql: "SELECT * FROM deliveries ORDER BY seq").map { (row: Row) -> StoreTransfer.DeliveryRow in
                let seq: Int64 = row["seq"]
                let eventSeq: Int64 = row["event_seq"]
                let state: String = row["state"]
                let attempts: Int = row["attempts"]
                let leaseToken: String? = row["lease_token"]
                let lastReason: String? = row["last_reason"]
                let resources: String = row["resources"]
                let throttles: Int = row["throttles"]
                let replays: Int = row["replays"]
                return StoreTransfer.DeliveryRow(
                    seq: seq, id: row["id"], eventSeq: eventSeq, target: row["target"], targetKind: row["target_kind"],
                    maintenanceKey: row["maintenance_key"], displayTimeZone: row["display_timezone"], state: state,
                    attempts: attempts, nextAttemptAt: date(row, "next_attempt_at"), leaseToken: leaseToken,
                    createdAt: date(row, "created_at"), updatedAt: date(row, "updated_at"), lastReason: lastReason,
                    resources: resources, throttles: throttles, replays: replays, replayedAt: optionalDate(row, "replayed_at")
                )
            }
            transfer.attempts = try Row.fetchAll(db, sql: "SELECT * FROM attempts ORDER BY id").map { (row: Row) -> StoreTransfer.AttemptRow in
                StoreTransfer.AttemptRow(
                    deliveryID: row["delivery_id"], number: row["number"], startedAt: date(row, "started_at"),
                    latencyMilliseconds: row["latency_ms"], statusCode: row["status_code"], outcome: row["outcome"],
                    reason: row["reason"], responseExcerpt: row["response_excerpt"]
                )
            }
            // rowid: the order instances first reported, which snapshots list them in.
            transfer.maintenanceInstances = try Row.fetchAll(db, sql: "SELECT * FROM maintenance_instances ORDER BY rowid").map {
                (row: Row) -> StoreTransfer.InstanceRow in
                StoreTransfer.InstanceRow(
                    maintenanceKey: row["maintenance_key"], instanceID: row["instance_id"], instanceName: row["instance_name"],
                    lastType: row["last_type"], stageRank: row["stage_rank"], packages: row["packages"], updatedAt: date(row, "updated_at")
                )
            }
            transfer.followUps = try Row.fetchAll(db, sql: "SELECT * FROM followups ORDER BY rowid").map { (row: Row) -> StoreTransfer.FollowUpRow in
                StoreTransfer.FollowUpRow(
                    maintenanceKey: row["maintenance_key"], target: row["target"], state: row["state"],
                    updatedAt: date(row, "updated_at"))
            }
            transfer.maintenances = try Row.fetchAll(db, sql: "SELECT * FROM maintenances ORDER BY rowid").map {
                (row: Row) -> StoreTransfer.MaintenanceRow in
                StoreTransfer.MaintenanceRow(
                    maintenanceKey: row["maintenance_key"], id: row["id"], app: row["app"], environment: row["environment"],
                    windowKey: row["window_key"], windowID: row["window_id"], windowStart: date(row, "window_start"),
                    windowEnd: date(row, "window_end"), windowTimeZone: row["window_timezone"], status: row["status"],
                    displayTimeZone: row["display_timezone"], tags: row["tags"], createdAt: date(row, "created_at"),
                    updatedAt: date(row, "updated_at")
                )
            }
            transfer.plannedNotices = try Row.fetchAll(db, sql: "SELECT * FROM planned_notices ORDER BY seq").map {
                (row: Row) -> StoreTransfer.NoticeRow in
                StoreTransfer.NoticeRow(
                    id: row["id"], maintenanceKey: row["maintenance_key"], kind: row["kind"], leadSeconds: row["lead_seconds"],
                    dueAt: date(row, "due_at"), state: row["state"], reason: row["reason"], eventID: row["event_id"],
                    updatedAt: date(row, "updated_at")
                )
            }
            transfer.unmapped = try Row.fetchAll(db, sql: "SELECT * FROM relay_unmapped ORDER BY id").map { (row: Row) -> StoreTransfer.UnmappedRow in
                StoreTransfer.UnmappedRow(
                    source: row["source"], dedupeID: row["dedupe_id"], reason: row["reason"], body: row["body"],
                    receivedAt: date(row, "received_at"))
            }
            transfer.audit = try Row.fetchAll(db, sql: "SELECT * FROM audit_log ORDER BY seq").map { (row: Row) -> AuditRecord in
                AuditRecord(
                    id: row["id"], at: date(row, "at"), actor: row["actor"], method: row["method"], actorID: row["actor_id"],
                    action: row["action"], outcome: AuditRecord.Outcome(rawValue: row["outcome"]) ?? .failed, source: row["source"],
                    detail: row["detail"])
            }
            return transfer
        }
    }

    /// The schema migrations applied to this store's file, oldest first (opening the store
    /// applies every one this binary knows).
    public func appliedMigrations() async throws -> [String] {
        try await pool.read { db in try Migrations.migrator.appliedMigrations(db) }
    }

    /// The migrations applied to the file at `path`, read without changing it; nil when the file
    /// does not exist or cannot be read that way. Lets `patchbay migrate` tell what opening the
    /// store then applied.
    public static func appliedMigrations(atPath path: String) -> [String]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.label = "patchbay.migrations"
        guard let queue = try? DatabaseQueue(path: path, configuration: configuration) else { return nil }
        return try? queue.read { db in try Migrations.migrator.appliedMigrations(db) }
    }

    /// Every migration this binary knows, oldest first.
    public static var knownMigrations: [String] { Migrations.migrator.migrations }

    /// Takes the server lock of the store at `path` (`<path>.lock`, the one `lockForServing`
    /// takes) without waiting, so that no server uses the file while it is read and none starts
    /// meanwhile. Held until `releaseServerLock` or the process exits. Throws `OpenError` when a
    /// `patchbay serve` holds it.
    public static func takeServerLock(path: String) throws -> Int32 {
        let lockPath = path + ".lock"
        var descriptor = open(lockPath, O_RDONLY | O_CLOEXEC)
        if descriptor < 0, errno == ENOENT {
            // No server ever ran on this file here: a fresh lock file, as serve would make it.
            descriptor = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        }
        guard descriptor >= 0 else {
            throw OpenError(description: "cannot open the server lock '\(lockPath)': \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw OpenError(description: "a patchbay serve is still using \(path) (its lock '\(lockPath)' is held): stop it first")
        }
        return descriptor
    }

    /// Gives back a lock taken by `takeServerLock`.
    public static func releaseServerLock(_ descriptor: Int32) {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
