import Foundation
import Logging
import PatchbayCore
import PostgresNIO

/// Maintenances and planned notices on PostgreSQL: the rows planning writes (inside the intake
/// transaction, under the maintenance's lock), firing due notices once per cluster, and what
/// operators read.
extension PostgresStore: MaintenanceStore {
    // MARK: The maintenance clock, once per cluster

    public func fireDueNotices(now: Date, limit: Int, decide: @escaping @Sendable (DueNotice) -> NoticeFiring) async throws -> [FiredNotice] {
        let encoder = JSONEncoder.patchbay()
        return try await transaction { [self] connection -> [FiredNotice] in
            // SKIP LOCKED: instances firing at the same tick take disjoint notices; the notice id as
            // idempotency key is the backstop, so a notice can only ever become one event. Due by
            // the caller's clock and by the database's: an instance whose clock runs ahead never
            // fires a notice early.
            let rows = try await Self.rows(
                """
                SELECT n.* FROM planned_notices n
                WHERE n.state = 'planned' AND n.due_at <= \(now) AND n.due_at <= statement_timestamp()
                ORDER BY n.due_at, n.seq LIMIT \(limit)
                FOR UPDATE SKIP LOCKED
                """, on: connection, logger: logger)
            var due: [(key: String, notice: PlannedNotice)] = []
            for row in rows {
                let columns = row.columns
                guard let notice = try Self.notice(columns) else { continue }
                due.append((try columns.value("maintenance_key"), notice))
            }
            // Maintenance locks in key order, so two instances' batches never wait in a circle.
            due.sort { ($0.key, $0.notice.dueAt) < ($1.key, $1.notice.dueAt) }
            var fired: [FiredNotice] = []
            for (key, notice) in due {
                try await Self.lock("maintenance:" + key, on: connection, logger: logger)
                guard let record = try await Self.maintenanceRecord(on: connection, logger: logger, key: key) else { continue }
                let dueNotice = DueNotice(notice: notice, record: record, snapshot: try await Self.snapshot(on: connection, logger: logger, key: key))
                switch decide(dueNotice) {
                case .skip(let reason):
                    try await Self.rows(
                        "UPDATE planned_notices SET state = 'skipped', reason = \(reason), updated_at = \(now) WHERE id = \(notice.id)",
                        on: connection, logger: logger)
                    fired.append(FiredNotice(notice: notice, maintenance: record.key, eventID: nil, deliveries: 0))
                case .send(let event, let plans):
                    let eventID = Identifier.make("evt")
                    let data = try encoder.encode(event)
                    try await insertEvent(
                        on: connection, id: eventID, idempotencyKey: "notice:\(notice.id)", digest: data.sha256Hex, event: event,
                        payload: String(decoding: data, as: UTF8.self), deliveries: plans, receivedAt: now)
                    let reason: String? = plans.isEmpty ? "no target of the route takes this notice" : nil
                    try await Self.rows(
                        """
                        UPDATE planned_notices SET state = 'sent', event_id = \(eventID), reason = \(reason), updated_at = \(now) WHERE id = \(notice.id)
                        """, on: connection, logger: logger)
                    fired.append(FiredNotice(notice: notice, maintenance: record.key, eventID: eventID, deliveries: plans.count))
                }
            }
            return fired
        }
    }

    // MARK: Reading and writing rows

    static func maintenanceRecord(on connection: PostgresConnection, logger: Logger, key: String) async throws -> MaintenanceRecord? {
        guard let row = try await Self.rows("SELECT * FROM maintenances WHERE maintenance_key = \(key)", on: connection, logger: logger).first else {
            return nil
        }
        return try Self.record(row.columns)
    }

    static func record(_ row: PostgresRandomAccessRow) throws -> MaintenanceRecord {
        let key = MaintenanceKey(
            app: try row.value("app", as: String.self), environment: try row.value("environment", as: String.self),
            window: try row.value("window_key", as: String.self))
        let window = MaintenanceWindow(
            id: try row.value("window_id", as: String?.self), start: try row.value("window_start", as: Date.self),
            end: try row.value("window_end", as: Date.self), timezone: try row.value("window_timezone", as: String?.self))
        let tagsJSON = try row.value("tags", as: String.self)
        let tags = StoredJSON.decodeTags(tagsJSON)
        let status = MaintenanceRecord.Status(rawValue: try row.value("status", as: String.self)) ?? .active
        return MaintenanceRecord(
            key: key, window: window, status: status, displayTimeZone: try row.value("display_timezone", as: String.self),
            tags: tags, createdAt: try row.value("created_at", as: Date.self), updatedAt: try row.value("updated_at", as: Date.self))
    }

    /// Writes what `MaintenancePlanner.apply` decided. The caller holds the maintenance's lock, so
    /// the record read before planning is still the stored one.
    static func applyChange(on connection: PostgresConnection, logger: Logger, _ change: MaintenancePlanner.Change, now: Date) async throws {
        let record = change.record
        let key = record.key.storageValue
        if change.recordChanged {
            let tags = StoredJSON.encode(record.tags)
            try await Self.rows(
                """
                INSERT INTO maintenances (maintenance_key, id, app, environment, window_key, window_id, window_start, window_end,
                                          window_timezone, status, display_timezone, tags, created_at, updated_at)
                VALUES (\(key), \(record.id), \(record.key.app), \(record.key.environment), \(record.key.window), \(record.window.id),
                        \(record.window.start), \(record.window.end), \(record.window.timezone), \(record.status.rawValue),
                        \(record.displayTimeZone), \(tags), \(record.createdAt), \(now))
                ON CONFLICT (maintenance_key) DO UPDATE SET
                    window_start = EXCLUDED.window_start, window_end = EXCLUDED.window_end,
                    window_timezone = EXCLUDED.window_timezone, status = EXCLUDED.status, updated_at = EXCLUDED.updated_at
                """, on: connection, logger: logger)
        }
        if let reason = change.dropPlanned {
            try await Self.rows(
                """
                UPDATE planned_notices SET state = 'dropped', reason = \(reason), updated_at = \(now)
                WHERE maintenance_key = \(key) AND state = 'planned'
                """, on: connection, logger: logger)
        }
        for notice in change.notices {
            try await Self.rows(
                """
                INSERT INTO planned_notices (id, maintenance_key, kind, lead_seconds, due_at, state, reason, event_id, updated_at)
                VALUES (\(notice.id), \(key), \(notice.kind.rawValue), \(notice.leadSeconds), \(notice.dueAt),
                        \(notice.state.rawValue), \(notice.reason), \(notice.eventID), \(notice.updatedAt))
                """, on: connection, logger: logger)
        }
    }

    /// A `planned_notices` row; nil when its kind or state is not one this version knows.
    static func notice(_ row: PostgresRandomAccessRow) throws -> PlannedNotice? {
        guard let kind = NoticeKind(rawValue: try row.value("kind", as: String.self)),
            let state = NoticeState(rawValue: try row.value("state", as: String.self))
        else { return nil }
        return PlannedNotice(
            id: try row.value("id", as: String.self), kind: kind, leadSeconds: try row.value("lead_seconds", as: Int?.self),
            dueAt: try row.value("due_at", as: Date.self), state: state, reason: try row.value("reason", as: String?.self),
            eventID: try row.value("event_id", as: String?.self), updatedAt: try row.value("updated_at", as: Date.self))
    }

    /// Where the maintenance's instances stand, in the order they first reported (reported_seq is
    /// taken by the first insert and kept by later updates, like SQLite's rowid).
    /// Where the maintenance's instances stand, as deep as `depth` says (see
    /// `MaintenanceSnapshot.Depth`), in the order they first reported (reported_seq is taken by
    /// the first insert and kept by later updates, like SQLite's rowid).
    static func snapshot(
        on connection: PostgresConnection, logger: Logger, key: String,
        depth: MaintenanceSnapshot.Depth = .everyInstance
    ) async throws -> MaintenanceSnapshot {
        guard depth != .everyInstance else {
            let reports = try await Self.rows(
                """
                SELECT instance_id, instance_name, last_type FROM maintenance_instances
                WHERE maintenance_key = \(key) ORDER BY reported_seq
                """, on: connection, logger: logger
            ).compactMap { row -> MaintenanceSnapshot.InstanceReport? in
                let (id, name, stage) = try row.decode((String, String?, String).self)
                guard let type = EventType(rawValue: stage) else { return nil }
                return MaintenanceSnapshot.InstanceReport(instance: Instance(id: id, name: name), lastType: type)
            }
            return MaintenanceSnapshot(instances: reports)
        }
        // Counts and the first names of each stage in one round trip, both from the
        // (maintenance, stage, order) index: a send of a maintenance of a thousand servers reads
        // about what one of ten does.
        var counts: [EventType: Int] = [:]
        var named: [MaintenanceSnapshot.InstanceReport] = []
        for row in try await Self.rows(
            """
            SELECT stages.last_type, stages.n, first.instance_id, first.instance_name
            FROM (SELECT last_type, COUNT(*) AS n FROM maintenance_instances WHERE maintenance_key = \(key) GROUP BY last_type) stages
            CROSS JOIN LATERAL (
                SELECT instance_id, instance_name, reported_seq FROM maintenance_instances m
                WHERE m.maintenance_key = \(key) AND m.last_type = stages.last_type
                ORDER BY m.reported_seq LIMIT \(MaintenanceSnapshot.namesPerStage)
            ) first
            ORDER BY first.reported_seq
            """, on: connection, logger: logger)
        {
            let (stage, count, id, name) = try row.decode((String, Int64, String, String?).self)
            guard let type = EventType(rawValue: stage) else { continue }
            counts[type] = Int(count)
            named.append(MaintenanceSnapshot.InstanceReport(instance: Instance(id: id, name: name), lastType: type))
        }
        var snapshot = MaintenanceSnapshot(instances: named, stageCounts: counts)
        if depth == .withPackages, snapshot.unfinishedCount == 0 {
            // A few servers' lists at a time until the list is full: a fleet updates the same
            // packages, so the first list or two usually fill it. Each page starts after the last
            // server read (not at an offset, which rescans the rows before it and shifts when a
            // server reports in between), and is chosen before any list is read.
            var seen = Set<String>()
            var packages: [String] = []
            var after = Int64.min
            var batch = 1
            scan: while true {
                let page = try await Self.rows(
                    """
                    SELECT page.reported_seq, m.packages FROM (
                        SELECT instance_id, reported_seq FROM maintenance_instances
                        WHERE maintenance_key = \(key) AND reported_seq > \(after)
                        ORDER BY reported_seq LIMIT \(batch)
                    ) page JOIN maintenance_instances m ON m.maintenance_key = \(key) AND m.instance_id = page.instance_id
                    ORDER BY page.reported_seq
                    """, on: connection, logger: logger
                ).map { row -> (Int64, [String]) in
                    let (position, list) = try row.decode((Int64, String).self)
                    return (position, StoredJSON.decodeList(list))
                }
                for (_, list) in page {
                    for package in list where seen.insert(package).inserted {
                        guard packages.count < MaintenanceSnapshot.packageLimit else {
                            snapshot.morePackages = true
                            break scan
                        }
                        packages.append(package)
                    }
                }
                guard page.count == batch, let last = page.last?.0 else { break }
                after = last
                batch = min(batch * 4, 64)
            }
            snapshot.packagesUpdated = packages
        }
        return snapshot
    }

    // MARK: Operators' view

    public func nextNoticeDue() async throws -> Date? {
        try await read { [self] connection -> Date? in
            guard
                let row = try await Self.rows(
                    "SELECT MIN(due_at) AS due FROM planned_notices WHERE state = 'planned'",
                    on: connection, logger: logger
                ).first
            else { return nil }
            return try row.columns.value("due", as: Date?.self)
        }
    }

    public func maintenances(since: Date?, limit: Int) async throws -> [MaintenanceSummary] {
        try await read { [self] connection -> [MaintenanceSummary] in
            let rows: [PostgresRow]
            if let since {
                rows = try await Self.rows(
                    """
                    SELECT * FROM maintenances WHERE window_end >= \(since) ORDER BY window_start DESC, created_at DESC LIMIT \(limit)
                    """, on: connection, logger: logger)
            } else {
                rows = try await Self.rows(
                    "SELECT * FROM maintenances ORDER BY window_start DESC, created_at DESC LIMIT \(limit)",
                    on: connection, logger: logger)
            }
            let records = try rows.map { try Self.record($0.columns) }
            return try await Self.maintenanceSummaries(on: connection, logger: logger, records)
        }
    }

    static func maintenanceSummary(on connection: PostgresConnection, logger: Logger, _ record: MaintenanceRecord) async throws -> MaintenanceSummary
    {
        guard let summary = try await Self.maintenanceSummaries(on: connection, logger: logger, [record]).first else {
            throw StoreError.permanent("no summary for maintenance \(record.id)")
        }
        return summary
    }

    /// The summaries of several maintenances, in their order, with three grouped queries in all
    /// (not three per maintenance: each is a round trip here, where SQLite's were calls in process).
    static func maintenanceSummaries(
        on connection: PostgresConnection, logger: Logger, _ records: [MaintenanceRecord]
    ) async throws -> [MaintenanceSummary] {
        guard !records.isEmpty else { return [] }
        let keys = records.map(\.key.storageValue)
        /// Counts by maintenance key, then by `k`.
        func counts(_ query: PostgresQuery) async throws -> [String: [String: Int]] {
            var result: [String: [String: Int]] = [:]
            for row in try await Self.rows(query, on: connection, logger: logger) {
                let columns = row.columns
                let key = try columns.value("mkey", as: String.self)
                let label = try columns.value("k", as: String.self)
                result[key, default: [:]][label] = try columns.value("n", as: Int.self)
            }
            return result
        }
        let instances = try await counts(
            """
            SELECT maintenance_key AS mkey, last_type AS k, COUNT(*) AS n FROM maintenance_instances
            WHERE maintenance_key = ANY(\(keys)) GROUP BY maintenance_key, last_type
            """)
        let notices = try await counts(
            """
            SELECT maintenance_key AS mkey, state AS k, COUNT(*) AS n FROM planned_notices
            WHERE maintenance_key = ANY(\(keys)) GROUP BY maintenance_key, state
            """)
        let deliveries = try await counts(
            """
            SELECT maintenance_key AS mkey, state AS k, COUNT(*) AS n FROM deliveries
            WHERE maintenance_key = ANY(\(keys)) GROUP BY maintenance_key, state
            """)
        return records.map { record -> MaintenanceSummary in
            let key = record.key.storageValue
            let stages = instances[key] ?? [:]
            return MaintenanceSummary(
                id: record.id, app: record.key.app, environment: record.key.environment, windowKey: record.key.window, window: record.window,
                status: record.status, displayTimeZone: record.displayTimeZone,
                instances: Dictionary(uniqueKeysWithValues: stages.map { (String($0.key.dropFirst("patch.".count)), $0.value) }),
                notices: notices[key] ?? [:], deliveries: deliveries[key] ?? [:],
                createdAt: record.createdAt, updatedAt: record.updatedAt
            )
        }
    }

    public func maintenance(id: String, page: MaintenanceDetail.Page) async throws -> MaintenanceDetail? {
        // A window id finds its occurrences (`mw-0123@2025-…`): the prefix's wildcards escaped.
        let occurrences = Self.likePrefix(id) + "@%"
        return try await read { [self] connection -> MaintenanceDetail? in
            guard
                let row = try await Self.rows(
                    """
                    SELECT * FROM maintenances WHERE id = \(id) OR window_key = \(id) OR window_key LIKE \(occurrences) ESCAPE '\\'
                    ORDER BY (id = \(id)) DESC, (window_key = \(id)) DESC, window_start DESC LIMIT 1
                    """, on: connection, logger: logger
                ).first?.columns
            else { return nil }
            let record = try Self.record(row)
            let key = record.key.storageValue
            // One page of servers; the package lists are counted by the database, not decoded here.
            var instances: [MaintenanceDetail.InstanceRow] = []
            if let server = page.servers {
                // The page is chosen first, then only its rows' package lists are counted: counted
                // in the same query as the sort, every server's list was read (0.5 s at 1,000 x 2,000).
                instances = try await Self.rows(
                    """
                    SELECT instance_id, instance_name, last_type, json_array_length(packages::json), updated_at FROM (
                        SELECT instance_id, instance_name, last_type, packages, updated_at, reported_seq FROM maintenance_instances
                        WHERE maintenance_key = \(key) ORDER BY reported_seq
                        LIMIT \(MaintenanceDetail.Page.serversPerPage) OFFSET \(server * MaintenanceDetail.Page.serversPerPage)
                    ) page ORDER BY reported_seq
                    """, on: connection, logger: logger
                ).map { row -> MaintenanceDetail.InstanceRow in
                    let (id, name, stage, packages, updated) = try row.decode((String, String?, String, Int?, Date).self)
                    return MaintenanceDetail.InstanceRow(id: id, name: name, stage: stage, packages: packages ?? 0, updatedAt: updated)
                }
            }
            let notices = try await Self.rows(
                "SELECT * FROM planned_notices WHERE maintenance_key = \(key) ORDER BY due_at, seq",
                on: connection, logger: logger
            ).compactMap { try Self.notice($0.columns) }
            let decoder = JSONDecoder.patchbay()
            let vendorObjects = try await Self.rows(
                "SELECT target, state FROM followups WHERE maintenance_key = \(key) ORDER BY target",
                on: connection, logger: logger
            ).flatMap { row -> [MaintenanceDetail.VendorObject] in
                let columns = row.columns
                let json = try columns.value("state", as: String.self)
                guard let state = try? decoder.decode(FollowUpState.self, from: Data(json.utf8)) else { return [] }
                return MaintenanceDetail.VendorObject.all(target: try columns.value("target", as: String.self), state: state)
            }
            var deliveries: [DeliverySummary] = []
            if let number = page.deliveries {
                deliveries = try await Self.rows(
                    """
                    SELECT \(unescaped: Self.summaryColumns) FROM deliveries d JOIN events e ON e.seq = d.event_seq
                    WHERE d.maintenance_key = \(key) ORDER BY d.seq DESC
                    LIMIT \(MaintenanceDetail.Page.deliveriesPerPage) OFFSET \(number * MaintenanceDetail.Page.deliveriesPerPage)
                    """, on: connection, logger: logger
                ).map { try Self.summary($0.columns) }
            }
            var byTarget: [String: [String: Int]] = [:]
            for row in try await Self.rows(
                """
                SELECT target, state, COUNT(*)::bigint FROM deliveries WHERE maintenance_key = \(key) GROUP BY target, state
                """, on: connection, logger: logger)
            {
                let (target, state, count) = try row.decode((String, String, Int64).self)
                byTarget[target, default: [:]][state] = Int(count)
            }
            let summary = try await Self.maintenanceSummary(on: connection, logger: logger, record)
            return MaintenanceDetail(
                summary: summary, instances: instances, notices: notices, vendorObjects: vendorObjects, deliveries: deliveries,
                deliveriesByTarget: byTarget, page: page)
        }
    }

    /// `text` for a LIKE pattern, its wildcards escaped with a backslash.
    static func likePrefix(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
    }

    public func eventID(idempotencyKey: String) async throws -> String? {
        try await read { [self] connection -> String? in
            guard
                let row = try await Self.rows(
                    "SELECT id FROM events WHERE idempotency_key = \(idempotencyKey)",
                    on: connection, logger: logger
                ).first
            else { return nil }
            return try row.columns.value("id", as: String.self)
        }
    }
}
