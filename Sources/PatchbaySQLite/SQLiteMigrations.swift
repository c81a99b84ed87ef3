import GRDB

/// Schema history. Migrations only ever get appended: a database written by an older version
/// upgrades in place at start-up.
enum Migrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: events, deliveries, attempts") { db in
            try db.execute(
                sql: """
                    CREATE TABLE events (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        id TEXT NOT NULL UNIQUE,
                        idempotency_key TEXT UNIQUE,
                        body_sha256 TEXT NOT NULL,
                        type TEXT NOT NULL,
                        app TEXT NOT NULL,
                        environment TEXT NOT NULL,
                        maintenance_key TEXT NOT NULL,
                        payload TEXT NOT NULL,
                        delivery_count INTEGER NOT NULL,
                        received_at REAL NOT NULL
                    );
                    CREATE TABLE deliveries (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        id TEXT NOT NULL UNIQUE,
                        event_seq INTEGER NOT NULL REFERENCES events(seq),
                        target TEXT NOT NULL,
                        target_kind TEXT NOT NULL,
                        maintenance_key TEXT NOT NULL,
                        display_timezone TEXT NOT NULL,
                        state TEXT NOT NULL,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        -- pending: when it is due; in_flight: when the lease expires.
                        next_attempt_at REAL NOT NULL,
                        lease_token TEXT,
                        created_at REAL NOT NULL,
                        updated_at REAL NOT NULL,
                        last_reason TEXT
                    );
                    CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE state IN ('pending', 'in_flight');
                    CREATE INDEX deliveries_order ON deliveries(maintenance_key, target, seq);
                    CREATE INDEX deliveries_state ON deliveries(state, updated_at);
                    CREATE INDEX deliveries_event ON deliveries(event_seq);
                    CREATE TABLE attempts (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        delivery_id TEXT NOT NULL REFERENCES deliveries(id),
                        number INTEGER NOT NULL,
                        started_at REAL NOT NULL,
                        latency_ms REAL NOT NULL,
                        status_code INTEGER,
                        outcome TEXT NOT NULL,
                        reason TEXT NOT NULL,
                        response_excerpt TEXT
                    );
                    CREATE INDEX attempts_delivery ON attempts(delivery_id, number);
                    """)
        }
        migrator.registerMigration("v2: maintenance reports, follow-up state, route resources") { db in
            try db.execute(
                sql: """
                    ALTER TABLE deliveries ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
                    -- The furthest stage each instance of a maintenance reported, and its packages.
                    CREATE TABLE maintenance_instances (
                        maintenance_key TEXT NOT NULL,
                        instance_id TEXT NOT NULL,
                        instance_name TEXT,
                        last_type TEXT NOT NULL,
                        stage_rank INTEGER NOT NULL,
                        packages TEXT NOT NULL DEFAULT '[]',
                        updated_at REAL NOT NULL,
                        PRIMARY KEY (maintenance_key, instance_id)
                    );
                    -- What a vendor returned for a maintenance: incident or window id, its status. No secrets.
                    CREATE TABLE followups (
                        maintenance_key TEXT NOT NULL,
                        target TEXT NOT NULL,
                        state TEXT NOT NULL,
                        updated_at REAL NOT NULL,
                        PRIMARY KEY (maintenance_key, target)
                    );
                    """)
        }
        migrator.registerMigration("v3: throttles, replays") { db in
            try db.execute(
                sql: """
                    -- Rate-limit answers, which do not count against the retry budget.
                    ALTER TABLE deliveries ADD COLUMN throttles INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE deliveries ADD COLUMN replays INTEGER NOT NULL DEFAULT 0;
                    -- A replay restarts the retry budget's clock.
                    ALTER TABLE deliveries ADD COLUMN replayed_at REAL;
                    """)
        }
        migrator.registerMigration("v4: relayed messages that map to no app") { db in
            try db.execute(
                sql: """
                    -- Kept, not dropped, so an operator can add the missing awsMapping entry and see what came.
                    CREATE TABLE relay_unmapped (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        source TEXT NOT NULL,
                        dedupe_id TEXT,
                        reason TEXT NOT NULL,
                        body TEXT NOT NULL,
                        received_at REAL NOT NULL
                    );
                    """)
        }
        migrator.registerMigration("v5: index of unfinished deliveries per ordering lane") { db in
            try db.execute(
                sql: """
                    -- Claims look only at the head of each (maintenance, target) lane; finished
                    -- deliveries must not be scanned to find it.
                    CREATE INDEX deliveries_unfinished_lane ON deliveries(maintenance_key, target, seq)
                        WHERE state IN ('pending', 'in_flight');
                    """)
        }
        migrator.registerMigration("v6: maintenances and their planned notices") { db in
            try db.execute(
                sql: """
                    -- One row per maintenance: its current window (moved by a reschedule) and status.
                    CREATE TABLE maintenances (
                        maintenance_key TEXT PRIMARY KEY,
                        id TEXT NOT NULL UNIQUE,
                        app TEXT NOT NULL,
                        environment TEXT NOT NULL,
                        window_key TEXT NOT NULL,
                        window_id TEXT,
                        window_start REAL NOT NULL,
                        window_end REAL NOT NULL,
                        window_timezone TEXT,
                        status TEXT NOT NULL,
                        display_timezone TEXT NOT NULL,
                        tags TEXT NOT NULL DEFAULT '{}',
                        created_at REAL NOT NULL,
                        updated_at REAL NOT NULL
                    );
                    CREATE INDEX maintenances_window_end ON maintenances(window_end);
                    CREATE INDEX maintenances_window_key ON maintenances(window_key);
                    -- Reminders, "beginning" and overrun notices, sent by the scheduler when due.
                    -- Kept after they fire or are skipped or dropped, with the reason.
                    CREATE TABLE planned_notices (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        id TEXT NOT NULL UNIQUE,
                        maintenance_key TEXT NOT NULL,
                        kind TEXT NOT NULL,
                        lead_seconds INTEGER,
                        due_at REAL NOT NULL,
                        state TEXT NOT NULL,
                        reason TEXT,
                        event_id TEXT,
                        updated_at REAL NOT NULL
                    );
                    CREATE INDEX planned_notices_due ON planned_notices(due_at) WHERE state = 'planned';
                    CREATE INDEX planned_notices_maintenance ON planned_notices(maintenance_key, seq);
                    """)
        }
        migrator.registerMigration("v7: readiness probe row") { db in
            try db.execute(
                sql: """
                    -- /readyz writes here: a real, committed write that needs free pages (the filler),
                    -- so readiness fails when the disk or the database is full.
                    CREATE TABLE readiness_probe (id INTEGER PRIMARY KEY CHECK (id = 1), checked_at REAL NOT NULL, filler BLOB);
                    """)
        }
        migrator.registerMigration("v8: delivery counts kept by triggers, indexes for pruning") { db in
            try db.execute(
                sql: """
                    -- /metrics reads these instead of counting every delivery on each scrape.
                    CREATE TABLE delivery_counts (state TEXT PRIMARY KEY, n INTEGER NOT NULL);
                    INSERT INTO delivery_counts (state, n) VALUES ('pending', 0), ('in_flight', 0), ('delivered', 0), ('dead', 0), ('expired', 0);
                    UPDATE delivery_counts SET n = (SELECT COUNT(*) FROM deliveries d WHERE d.state = delivery_counts.state);
                    CREATE TRIGGER delivery_counts_insert AFTER INSERT ON deliveries BEGIN
                        UPDATE delivery_counts SET n = n + 1 WHERE state = NEW.state;
                    END;
                    CREATE TRIGGER delivery_counts_update AFTER UPDATE OF state ON deliveries WHEN OLD.state != NEW.state BEGIN
                        UPDATE delivery_counts SET n = n - 1 WHERE state = OLD.state;
                        UPDATE delivery_counts SET n = n + 1 WHERE state = NEW.state;
                    END;
                    CREATE TRIGGER delivery_counts_delete AFTER DELETE ON deliveries BEGIN
                        UPDATE delivery_counts SET n = n - 1 WHERE state = OLD.state;
                    END;
                    CREATE INDEX events_received ON events(received_at);
                    CREATE INDEX relay_unmapped_received ON relay_unmapped(received_at);
                    """)
        }
        migrator.registerMigration("v9: console sessions signed out") { db in
            try db.execute(
                sql: """
                    -- A signed-out session's id until the session would have expired: its copied cookie
                    -- is refused meanwhile.
                    CREATE TABLE console_revocations (session_id TEXT PRIMARY KEY, expires_at REAL NOT NULL);
                    """)
        }
        migrator.registerMigration("v10: a maintenance's servers by stage") { db in
            try db.execute(
                sql: """
                    -- A send reads counts by stage and the first servers of each stage (review F4): this
                    -- index answers both without reading any server's row, package list included.
                    CREATE INDEX maintenance_instances_stage ON maintenance_instances(maintenance_key, last_type);
                    """)
        }
        migrator.registerMigration("v11: superseded live-message edits counted") { db in
            try db.execute(
                sql: """
                    -- The triggers count only states with a row here.
                    INSERT OR IGNORE INTO delivery_counts (state, n) VALUES ('superseded', 0);
                    """)
        }
        migrator.registerMigration("v12: audit trail, event senders") { db in
            try db.execute(
                sql: """
                    -- Who did what: sign-ins and -outs, replays, test sends, prunes.
                    CREATE TABLE audit_log (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        id TEXT NOT NULL UNIQUE,
                        at REAL NOT NULL,
                        actor TEXT NOT NULL,
                        method TEXT NOT NULL,
                        actor_id TEXT,
                        action TEXT NOT NULL,
                        outcome TEXT NOT NULL,
                        source TEXT,
                        detail TEXT NOT NULL
                    );
                    CREATE INDEX audit_log_at ON audit_log(at);
                    -- Which token (by its configured name) or relay source sent an event.
                    ALTER TABLE events ADD COLUMN sender TEXT;
                    """)
        }
        return migrator
    }
}
