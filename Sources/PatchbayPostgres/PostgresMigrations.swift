/// Schema history for PostgreSQL, numbered and append-only like the SQLite one. Each migration
/// runs in its own transaction, together with the row recording it; `PostgresStore.migrate`
/// holds an advisory lock meanwhile, so instances starting together apply each one once.
///
/// The tables mirror the SQLite schema (same names and meanings); times are `timestamptz`.
/// Two additions make several instances one queue:
/// - `lanes` hands out each (maintenance, target) lane's sequence numbers under the lane row's
///   lock, so a lane's order is its commit order even when instances insert concurrently;
/// - `instances` keeps one heartbeat per running server, and `deliveries.leased_by` names the
///   lease holder, so a dead instance's leases are released within seconds;
/// - `pacing_budgets` is each vendor budget's next free slot (GCRA), shared by the cluster.
enum PostgresMigrations {
    struct Migration: Sendable {
        let version: Int
        let name: String
        /// One statement per element: postgres-nio runs one statement per query.
        let statements: [String]
        /// Indexes on tables that may already be large, built or dropped `CONCURRENTLY`, outside
        /// any transaction, after the transactional part: writes go on meanwhile, and no timeout
        /// cuts a long build short. Ensured on every start (a build cut short by a crash leaves an
        /// invalid index, which is dropped and built again), so they are idempotent.
        var concurrently: [IndexChange] = []
    }

    enum IndexChange: Sendable, Equatable {
        /// `CREATE INDEX CONCURRENTLY <name> <definition>` unless a valid index of that name exists.
        case create(name: String, definition: String)
        /// `DROP INDEX CONCURRENTLY IF EXISTS <name>`.
        case drop(name: String)
    }

    static let all: [Migration] = [
        Migration(
            version: 1, name: "events, deliveries, attempts, lanes",
            statements: [
                """
                CREATE TABLE events (
                    seq bigserial PRIMARY KEY,
                    id text NOT NULL UNIQUE,
                    idempotency_key text UNIQUE,
                    body_sha256 text NOT NULL,
                    type text NOT NULL,
                    app text NOT NULL,
                    environment text NOT NULL,
                    maintenance_key text NOT NULL,
                    -- The event as JSON text (not jsonb: a passthrough body must come back byte for byte).
                    payload text NOT NULL,
                    delivery_count integer NOT NULL,
                    received_at timestamptz NOT NULL
                )
                """,
                "CREATE INDEX events_received ON events (received_at)",
                """
                CREATE TABLE lanes (
                    maintenance_key text NOT NULL,
                    target text NOT NULL,
                    last_seq bigint NOT NULL,
                    PRIMARY KEY (maintenance_key, target)
                )
                """,
                """
                CREATE TABLE deliveries (
                    seq bigserial PRIMARY KEY,
                    id text NOT NULL UNIQUE,
                    event_seq bigint NOT NULL REFERENCES events (seq),
                    target text NOT NULL,
                    target_kind text NOT NULL,
                    maintenance_key text NOT NULL,
                    -- Position in its (maintenance, target) lane, in commit order (see lanes).
                    lane_seq bigint NOT NULL,
                    display_timezone text NOT NULL,
                    state text NOT NULL,
                    attempts integer NOT NULL DEFAULT 0,
                    -- pending: when it is due; in_flight: when the lease expires.
                    next_attempt_at timestamptz NOT NULL,
                    lease_token text,
                    -- The instance holding the lease (instances.id).
                    leased_by text,
                    created_at timestamptz NOT NULL,
                    updated_at timestamptz NOT NULL,
                    last_reason text,
                    resources text NOT NULL DEFAULT '[]',
                    throttles integer NOT NULL DEFAULT 0,
                    replays integer NOT NULL DEFAULT 0,
                    replayed_at timestamptz
                )
                """,
                """
                CREATE INDEX deliveries_unfinished_lane ON deliveries (maintenance_key, target, lane_seq)
                    WHERE state IN ('pending', 'in_flight')
                """,
                "CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state IN ('pending', 'in_flight')",
                "CREATE INDEX deliveries_leased_by ON deliveries (leased_by) WHERE state = 'in_flight'",
                "CREATE INDEX deliveries_state ON deliveries (state, updated_at)",
                "CREATE INDEX deliveries_event ON deliveries (event_seq)",
                "CREATE INDEX deliveries_maintenance ON deliveries (maintenance_key, seq)",
                """
                CREATE TABLE attempts (
                    id bigserial PRIMARY KEY,
                    delivery_id text NOT NULL REFERENCES deliveries (id),
                    number integer NOT NULL,
                    started_at timestamptz NOT NULL,
                    latency_ms double precision NOT NULL,
                    status_code integer,
                    outcome text NOT NULL,
                    reason text NOT NULL,
                    response_excerpt text
                )
                """,
                "CREATE INDEX attempts_delivery ON attempts (delivery_id, number)",
            ]),
        Migration(
            version: 2, name: "maintenances, instances reports, follow-up state, planned notices",
            statements: [
                """
                CREATE TABLE maintenance_instances (
                    maintenance_key text NOT NULL,
                    instance_id text NOT NULL,
                    instance_name text,
                    last_type text NOT NULL,
                    stage_rank integer NOT NULL,
                    packages text NOT NULL DEFAULT '[]',
                    updated_at timestamptz NOT NULL,
                    reported_seq bigserial,
                    PRIMARY KEY (maintenance_key, instance_id)
                )
                """,
                """
                CREATE TABLE followups (
                    maintenance_key text NOT NULL,
                    target text NOT NULL,
                    state text NOT NULL,
                    updated_at timestamptz NOT NULL,
                    PRIMARY KEY (maintenance_key, target)
                )
                """,
                """
                CREATE TABLE maintenances (
                    maintenance_key text PRIMARY KEY,
                    id text NOT NULL UNIQUE,
                    app text NOT NULL,
                    environment text NOT NULL,
                    window_key text NOT NULL,
                    window_id text,
                    window_start timestamptz NOT NULL,
                    window_end timestamptz NOT NULL,
                    window_timezone text,
                    status text NOT NULL,
                    display_timezone text NOT NULL,
                    tags text NOT NULL DEFAULT '{}',
                    created_at timestamptz NOT NULL,
                    updated_at timestamptz NOT NULL
                )
                """,
                "CREATE INDEX maintenances_window_end ON maintenances (window_end)",
                "CREATE INDEX maintenances_window_key ON maintenances (window_key text_pattern_ops)",
                """
                CREATE TABLE planned_notices (
                    seq bigserial PRIMARY KEY,
                    id text NOT NULL UNIQUE,
                    maintenance_key text NOT NULL,
                    kind text NOT NULL,
                    lead_seconds integer,
                    due_at timestamptz NOT NULL,
                    state text NOT NULL,
                    reason text,
                    event_id text,
                    updated_at timestamptz NOT NULL
                )
                """,
                "CREATE INDEX planned_notices_due ON planned_notices (due_at) WHERE state = 'planned'",
                "CREATE INDEX planned_notices_maintenance ON planned_notices (maintenance_key, seq)",
                """
                CREATE TABLE relay_unmapped (
                    id bigserial PRIMARY KEY,
                    source text NOT NULL,
                    dedupe_id text,
                    reason text NOT NULL,
                    body text NOT NULL,
                    received_at timestamptz NOT NULL
                )
                """,
                "CREATE INDEX relay_unmapped_received ON relay_unmapped (received_at)",
            ]),
        Migration(
            version: 3, name: "cluster: instance heartbeats, shared pacing budgets, readiness probe",
            statements: [
                """
                CREATE TABLE instances (
                    id text PRIMARY KEY,
                    host text NOT NULL,
                    pid integer NOT NULL,
                    version text NOT NULL,
                    started_at timestamptz NOT NULL,
                    -- Written with the database's clock, so instances' clocks need not agree.
                    heartbeat_at timestamptz NOT NULL
                )
                """,
                """
                CREATE TABLE pacing_budgets (
                    key text PRIMARY KEY,
                    -- GCRA's theoretical arrival time of reservations (next_slot, moved by a vendor's
                    -- Retry-After too) and of real sends (next_send).
                    next_slot timestamptz NOT NULL,
                    next_send timestamptz NOT NULL
                )
                """,
                "CREATE TABLE readiness_probe (id integer PRIMARY KEY CHECK (id = 1), checked_at timestamptz NOT NULL)",
            ]),
        // The claim walks due deliveries `ORDER BY next_attempt_at, seq`. With next_attempt_at
        // alone in the index, rows sharing a due time (a lane held behind its paused head, leases
        // released at start, a burst accepted in one millisecond) were sorted on every claim:
        // 1M due at one time drained at ~10/s. With seq in the index the walk is already in order.
        // Built concurrently (review F11): on a table of millions of delivered rows a plain
        // CREATE INDEX inside the migration's transaction blocked every write for the build and
        // could outlast the statement timeout, and then no instance of the new version started.
        Migration(
            version: 4, name: "due index ordered as the claim walks it", statements: [],
            concurrently: [
                .create(name: "deliveries_due_order", definition: "ON deliveries (next_attempt_at, seq) WHERE state IN ('pending', 'in_flight')"),
                .drop(name: "deliveries_due"),
            ]),
        Migration(
            version: 5, name: "console sessions signed out",
            statements: [
                // A signed-out session's id until the session would have expired: its copied cookie
                // is refused by every instance meanwhile.
                "CREATE TABLE console_revocations (session_id text PRIMARY KEY, expires_at timestamptz NOT NULL)"
            ]),
        // A send reads counts by stage and the first servers of each stage (review F4): this index
        // answers both without reading the servers' rows. Built concurrently: the table holds every
        // server of every maintenance kept.
        Migration(
            version: 6, name: "a maintenance's servers by stage", statements: [],
            concurrently: [
                .create(name: "maintenance_instances_stage", definition: "ON maintenance_instances (maintenance_key, last_type, reported_seq)")
            ]),
        Migration(
            version: 7, name: "audit trail, event senders",
            statements: [
                // Who did what: sign-ins and -outs, replays, test sends, prunes.
                """
                CREATE TABLE audit_log (
                    seq bigserial PRIMARY KEY,
                    id text NOT NULL UNIQUE,
                    at timestamptz NOT NULL,
                    actor text NOT NULL,
                    method text NOT NULL,
                    actor_id text,
                    action text NOT NULL,
                    outcome text NOT NULL,
                    source text,
                    detail text NOT NULL
                )
                """,
                "CREATE INDEX audit_log_at ON audit_log (at)",
                // Which token (by its configured name) or relay source sent an event. A nullable
                // column without a default: a change of the catalog only, whatever the table's size.
                "ALTER TABLE events ADD COLUMN sender text",
            ]),
        // Intake's locks and reads in one round trip (PostgresStore.lockForIntake). VOLATILE, so
        // each statement inside sees what was committed while the function waited for a lock (a
        // single statement would read with the snapshot taken before the wait). The lock names
        // hash exactly as PostgresStore.lock's ("event-key:<key>", "maintenance:<lane>"), which
        // the scheduler and older instances still take.
        Migration(
            version: 8, name: "intake locks and reads in one call",
            statements: [
                """
                CREATE FUNCTION patchbay_intake_lock(event_key text, lane text)
                RETURNS TABLE (earlier_id text, earlier_digest text, earlier_deliveries integer,
                               app text, environment text, window_key text, window_id text, window_start timestamptz,
                               window_end timestamptz, window_timezone text, status text, display_timezone text, tags text,
                               created_at timestamptz, updated_at timestamptz)
                LANGUAGE plpgsql VOLATILE AS $$
                BEGIN
                    IF event_key IS NOT NULL THEN
                        PERFORM pg_advisory_xact_lock(hashtextextended('event-key:' || event_key, 0));
                        RETURN QUERY SELECT e.id, e.body_sha256, e.delivery_count,
                                            NULL::text, NULL::text, NULL::text, NULL::text, NULL::timestamptz, NULL::timestamptz,
                                            NULL::text, NULL::text, NULL::text, NULL::text, NULL::timestamptz, NULL::timestamptz
                                     FROM events e WHERE e.idempotency_key = event_key;
                        IF FOUND THEN RETURN; END IF;
                    END IF;
                    PERFORM pg_advisory_xact_lock(hashtextextended('maintenance:' || lane, 0));
                    RETURN QUERY SELECT NULL::text, NULL::text, NULL::integer,
                                        m.app, m.environment, m.window_key, m.window_id, m.window_start, m.window_end,
                                        m.window_timezone, m.status, m.display_timezone, m.tags, m.created_at, m.updated_at
                                 FROM (SELECT 1) AS one LEFT JOIN maintenances m ON m.maintenance_key = lane;
                END
                $$
                """
            ]),
    ]
}
