import Foundation
import GRDB
import PatchbayCore

/// Maintenances and planned notices on SQLite. Planning runs inside the intake transaction
/// (`accept`); firing runs in the scheduler's own transaction, one batch at a time.
extension SQLiteStore: MaintenanceStore {
    // MARK: Reading and writing rows

    static func maintenanceRecord(_ db: Database, key: String) throws -> MaintenanceRecord? {
        guard let row = try Row.fetchOne(cached: db, sql: "SELECT * FROM maintenances WHERE maintenance_key = ?", arguments: [key]) else {
            return nil
        }
        return record(row)
    }

    static func record(_ row: Row) -> MaintenanceRecord {
        let key = MaintenanceKey(app: row["app"], environment: row["environment"], window: row["window_key"])
        let window = MaintenanceWindow(
            id: row["window_id"], start: Date(timeIntervalSince1970: row["window_start"]),
            end: Date(timeIntervalSince1970: row["window_end"]), timezone: row["window_timezone"])
        let tagsJSON: String = row["tags"]
        let tags = StoredJSON.decodeTags(tagsJSON)
        return MaintenanceRecord(
            key: key, window: window, status: MaintenanceRecord.Status(rawValue: row["status"]) ?? .active,
            displayTimeZone: row["display_timezone"], tags: tags,
            createdAt: Date(timeIntervalSince1970: row["created_at"]), updatedAt: Date(timeIntervalSince1970: row["updated_at"]))
    }

    static func applyChange(_ db: Database, _ change: MaintenancePlanner.Change, now: Date) throws {
        let record = change.record
        let key = record.key.storageValue
        let seconds = now.timeIntervalSince1970
        if change.recordChanged {
            let tags = StoredJSON.encode(record.tags)
            try db.executeCached(
                sql: """
                    INSERT INTO maintenances (maintenance_key, id, app, environment, window_key, window_id, window_start, window_end,
                                              window_timezone, status, display_timezone, tags, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (maintenance_key) DO UPDATE SET
                        window_start = excluded.window_start, window_end = excluded.window_end,
                        window_timezone = excluded.window_timezone, status = excluded.status, updated_at = excluded.updated_at
                    """,
                arguments: [
                    key, record.id, record.key.app, record.key.environment, record.key.window, record.window.id,
                    record.window.start.timeIntervalSince1970, record.window.end.timeIntervalSince1970, record.window.timezone,
                    record.status.rawValue, record.displayTimeZone, tags, record.createdAt.timeIntervalSince1970, seconds,
                ])
        }
        if let reason = change.dropPlanned {
            try db.executeCached(
                sql: """
                    UPDATE planned_notices SET state = 'dropped', reason = ?, updated_at = ? WHERE maintenance_key = ? AND state = 'planned'
                    """, arguments: [reason, seconds, key])
        }
        for notice in change.notices {
            try db.executeCached(
                sql: """
                    INSERT INTO planned_notices (id, maintenance_key, kind, lead_seconds, due_at, state, reason, event_id, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    notice.id, key, notice.kind.rawValue, notice.leadSeconds, notice.dueAt.timeIntervalSince1970,
                    notice.state.rawValue, notice.reason, notice.eventID, notice.updatedAt.timeIntervalSince1970,
                ])
        }
    }

    static func notice(_ row: Row) -> PlannedNotice? {
        guard let kind = NoticeKind(rawValue: row["kind"]), let state = NoticeState(rawValue: row["state"]) else { return nil }
        return PlannedNotice(
            id: row["id"], kind: kind, leadSeconds: row["lead_seconds"], dueAt: Date(timeIntervalSince1970: row["due_at"]),
            state: state, reason: row["reason"], eventID: row["event_id"], updatedAt: Date(timeIntervalSince1970: row["updated_at"]))
    }

    /// Where the maintenance's instances stand, as deep as `depth` says (see
    /// `MaintenanceSnapshot.Depth`).
    static func snapshot(_ db: Database, key: String, depth: MaintenanceSnapshot.Depth = .everyInstance) throws -> MaintenanceSnapshot {
        func report(_ row: Row) -> MaintenanceSnapshot.InstanceReport? {
            guard let type = EventType(rawValue: row["last_type"]) else { return nil }
            return .init(instance: Instance(id: row["instance_id"], name: row["instance_name"]), lastType: type)
        }
        guard depth != .everyInstance else {
            return MaintenanceSnapshot(
                instances: try Row.fetchAll(
                    cached: db,
                    sql: """
                        SELECT instance_id, instance_name, last_type FROM maintenance_instances WHERE maintenance_key = ? ORDER BY rowid
                        """, arguments: [key]
                ).compactMap(report))
        }
        // Counts and the first servers of each stage from the (maintenance, stage) index: a send
        // of a maintenance of a thousand servers reads about what one of ten does.
        var counts: [EventType: Int] = [:]
        for row in try Row.fetchAll(
            cached: db,
            sql: """
                SELECT last_type, COUNT(*) AS n FROM maintenance_instances INDEXED BY maintenance_instances_stage
                WHERE maintenance_key = ? GROUP BY last_type
                """, arguments: [key])
        {
            if let type = EventType(rawValue: row["last_type"]) { counts[type] = row["n"] }
        }
        var named: [(position: Int64, report: MaintenanceSnapshot.InstanceReport)] = []
        for stage in counts.keys {
            for row in try Row.fetchAll(
                cached: db,
                sql: """
                    SELECT rowid AS position, instance_id, instance_name, last_type FROM maintenance_instances INDEXED BY maintenance_instances_stage
                    WHERE maintenance_key = ? AND last_type = ? ORDER BY rowid LIMIT ?
                    """, arguments: [key, stage.rawValue, MaintenanceSnapshot.namesPerStage])
            {
                if let report = report(row) { named.append((row["position"], report)) }
            }
        }
        var snapshot = MaintenanceSnapshot(instances: named.sorted { $0.position < $1.position }.map(\.report), stageCounts: counts)
        if depth == .withPackages, snapshot.unfinishedCount == 0 {
            // Server by server until the list is full: a fleet updates the same packages, so the
            // first list or two usually fill it. The rows are found by the index and read one at
            // a time: ordering the lists themselves read every one of them (100 MB at 1,000 x 2,000).
            var seen = Set<String>()
            var packages: [String] = []
            let positions = try Int64.fetchAll(
                db,
                sql: """
                    SELECT rowid FROM maintenance_instances INDEXED BY maintenance_instances_stage WHERE maintenance_key = ? ORDER BY rowid
                    """, arguments: [key])
            let listAt = try db.cachedStatement(sql: "SELECT packages FROM maintenance_instances WHERE rowid = ?")
            scan: for position in positions {
                let list = try String.fetchOne(listAt, arguments: [position])
                for package in StoredJSON.decodeList(list) where seen.insert(package).inserted {
                    guard packages.count < MaintenanceSnapshot.packageLimit else {
                        snapshot.morePackages = true
                        break scan
                    }
                    packages.append(package)
                }
            }
            snapshot.packagesUpdated = packages
        }
        return snapshot
    }

    // MARK: Firing

    public func fireDueNotices(now: Date, limit: Int, decide: @escaping @Sendable (DueNotice) -> NoticeFiring) async throws -> [FiredNotice] {
        let encoder = JSONEncoder.patchbay()
        return try await committer.write { db -> [FiredNotice] in
            let seconds = now.timeIntervalSince1970
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT n.*, m.maintenance_key AS mkey FROM planned_notices n JOIN maintenances m ON m.maintenance_key = n.maintenance_key
                    WHERE n.state = 'planned' AND n.due_at <= ? ORDER BY n.due_at, n.seq LIMIT ?
                    """, arguments: [seconds, limit])
            var fired: [FiredNotice] = []
            for row in rows {
                let key: String = row["mkey"]
                guard let notice = Self.notice(row), let record = try Self.maintenanceRecord(db, key: key) else { continue }
                let due = DueNotice(notice: notice, record: record, snapshot: try Self.snapshot(db, key: key))
                switch decide(due) {
                case .skip(let reason):
                    try db.execute(
                        sql: "UPDATE planned_notices SET state = 'skipped', reason = ?, updated_at = ? WHERE id = ?",
                        arguments: [reason, seconds, notice.id])
                    fired.append(FiredNotice(notice: notice, maintenance: record.key, eventID: nil, deliveries: 0))
                case .send(let event, let plans):
                    let eventID = Identifier.make("evt")
                    let data = try encoder.encode(event)
                    // The notice id is the idempotency key: a notice can only ever become one event.
                    try Self.insertEvent(
                        db, id: eventID, idempotencyKey: "notice:\(notice.id)", digest: data.sha256Hex, event: event,
                        payload: String(decoding: data, as: UTF8.self), deliveries: plans, receivedAt: now)
                    try db.execute(
                        sql: """
                            UPDATE planned_notices SET state = 'sent', event_id = ?, reason = ?, updated_at = ? WHERE id = ?
                            """, arguments: [eventID, plans.isEmpty ? "no target of the route takes this notice" : nil, seconds, notice.id])
                    fired.append(FiredNotice(notice: notice, maintenance: record.key, eventID: eventID, deliveries: plans.count))
                }
            }
            return fired
        }
    }

    public func nextNoticeDue() async throws -> Date? {
        try await pool.read { db in
            try Double.fetchOne(db, sql: "SELECT MIN(due_at) FROM planned_notices WHERE state = 'planned'").map(Date.init(timeIntervalSince1970:))
        }
    }

    // MARK: Operators' view

    public func maintenances(since: Date?, limit: Int) async throws -> [MaintenanceSummary] {
        try await pool.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM maintenances WHERE window_end >= ? ORDER BY window_start DESC, created_at DESC LIMIT ?
                    """, arguments: [since?.timeIntervalSince1970 ?? -Double.greatestFiniteMagnitude, limit])
            return try rows.map { try Self.maintenanceSummary(db, Self.record($0)) }
        }
    }

    static func maintenanceSummary(_ db: Database, _ record: MaintenanceRecord) throws -> MaintenanceSummary {
        let key = record.key.storageValue
        func counts(_ sql: String) throws -> [String: Int] {
            var result: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: sql, arguments: [key]) { result[row["k"]] = row["n"] }
            return result
        }
        let instances = try counts("SELECT last_type AS k, COUNT(*) AS n FROM maintenance_instances WHERE maintenance_key = ? GROUP BY last_type")
        return MaintenanceSummary(
            id: record.id, app: record.key.app, environment: record.key.environment, windowKey: record.key.window, window: record.window,
            status: record.status, displayTimeZone: record.displayTimeZone,
            instances: Dictionary(uniqueKeysWithValues: instances.map { (String($0.key.dropFirst("patch.".count)), $0.value) }),
            notices: try counts("SELECT state AS k, COUNT(*) AS n FROM planned_notices WHERE maintenance_key = ? GROUP BY state"),
            deliveries: try counts("SELECT state AS k, COUNT(*) AS n FROM deliveries WHERE maintenance_key = ? GROUP BY state"),
            createdAt: record.createdAt, updatedAt: record.updatedAt
        )
    }

    public func maintenance(id: String, page: MaintenanceDetail.Page) async throws -> MaintenanceDetail? {
        try await pool.read { db -> MaintenanceDetail? in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT * FROM maintenances WHERE id = ? OR window_key = ? OR window_key LIKE ? ESCAPE '\\'
                        ORDER BY (id = ?) DESC, (window_key = ?) DESC, window_start DESC LIMIT 1
                        """, arguments: [id, id, Self.likePrefix(id) + "@%", id, id])
            else { return nil }
            let record = Self.record(row)
            let key = record.key.storageValue
            // One page of servers; the package lists are counted by SQLite, not decoded here.
            let instances =
                try page.servers.map { server in
                    try Row.fetchAll(
                        db,
                        sql: """
                            SELECT instance_id, instance_name, last_type, json_array_length(packages) AS packages, updated_at FROM (
                                SELECT instance_id, instance_name, last_type, packages, updated_at, rowid AS position FROM maintenance_instances
                                WHERE maintenance_key = ? ORDER BY rowid LIMIT ? OFFSET ?
                            ) ORDER BY position
                            """, arguments: [key, MaintenanceDetail.Page.serversPerPage, server * MaintenanceDetail.Page.serversPerPage]
                    ).map { row in
                        MaintenanceDetail.InstanceRow(
                            id: row["instance_id"], name: row["instance_name"], stage: row["last_type"],
                            packages: row["packages"] ?? 0, updatedAt: Date(timeIntervalSince1970: row["updated_at"]))
                    }
                } ?? []
            let notices = try Row.fetchAll(
                db, sql: "SELECT * FROM planned_notices WHERE maintenance_key = ? ORDER BY due_at, seq",
                arguments: [key]
            ).compactMap(Self.notice)
            let decoder = JSONDecoder.patchbay()
            let vendorObjects = try Row.fetchAll(
                db, sql: "SELECT target, state FROM followups WHERE maintenance_key = ? ORDER BY target",
                arguments: [key]
            ).flatMap { row -> [MaintenanceDetail.VendorObject] in
                let json: String = row["state"]
                guard let state = try? decoder.decode(FollowUpState.self, from: Data(json.utf8)) else { return [] }
                return MaintenanceDetail.VendorObject.all(target: row["target"], state: state)
            }
            let deliveries =
                try page.deliveries.map { number in
                    try Row.fetchAll(
                        db,
                        sql: """
                            SELECT \(Self.summaryColumns) FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.maintenance_key = ?
                            ORDER BY d.seq DESC LIMIT ? OFFSET ?
                            """, arguments: [key, MaintenanceDetail.Page.deliveriesPerPage, number * MaintenanceDetail.Page.deliveriesPerPage]
                    ).map(Self.summary)
                } ?? []
            var byTarget: [String: [String: Int]] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT target, state, COUNT(*) AS n FROM deliveries WHERE maintenance_key = ? GROUP BY target, state
                    """, arguments: [key])
            {
                byTarget[row["target"], default: [:]][row["state"]] = row["n"]
            }
            return MaintenanceDetail(
                summary: try Self.maintenanceSummary(db, record), instances: instances, notices: notices,
                vendorObjects: vendorObjects, deliveries: deliveries, deliveriesByTarget: byTarget, page: page)
        }
    }

    /// `text` for a LIKE pattern, its wildcards escaped with a backslash.
    static func likePrefix(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
    }

    public func eventID(idempotencyKey: String) async throws -> String? {
        try await pool.read { db in
            try String.fetchOne(db, sql: "SELECT id FROM events WHERE idempotency_key = ?", arguments: [idempotencyKey])
        }
    }
}
