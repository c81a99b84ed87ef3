import Logging
import PatchbayCore
import PostgresNIO
import Synchronization

/// The hot statements (a claim, a send's record, intake's lock and write) are prepared once per
/// connection: the server parses and plans them once, then only binds and runs them. Parsing and
/// planning were most of PostgreSQL's time in a drain (`perf`: the parser, `copyObject`, the
/// planner's tree walkers), and PostgreSQL was three quarters of the CPU.
///
/// Each statement keeps building its `PostgresQuery` by interpolation, as every other statement
/// does; its text is the same on every call (values are binds), and is taken as the prepared
/// statement's the first time. A parameter's type is fixed when the statement is prepared, so a
/// value that may be nil is cast in the text to the type its Swift value binds as (`::text`,
/// `::int8`, `::timestamptz`, `::boolean`): a nil bound first would otherwise leave the type to
/// the server's guess, and a later value of another type would not fit.
protocol PreparedStatementName {
    /// The server-side name, unique within this process (prepared statements belong to a
    /// connection, and a connection to one process).
    static var name: String { get }
}

/// One prepared statement's text, taken from its first `PostgresQuery`.
final class PreparedText: Sendable {
    private let text = Mutex<String?>(nil)

    /// Whether `sql` is this statement's text (taken as such the first time).
    func matches(_ sql: String) -> Bool {
        text.withLock { text in
            if let text { return text == sql }
            text = sql
            return true
        }
    }

    var sql: String { text.withLock { $0 } ?? "" }
}

enum PreparedTexts {
    static let texts = Mutex<[String: PreparedText]>([:])

    static func text(for name: String) -> PreparedText {
        texts.withLock { texts in
            if let text = texts[name] { return text }
            let text = PreparedText()
            texts[name] = text
            return text
        }
    }
}

struct PreparedQuery<Name: PreparedStatementName>: PostgresPreparedStatement {
    typealias Row = PostgresRow
    static var name: String { Name.name }
    static var sql: String { PreparedTexts.text(for: Name.name).sql }
    let binds: PostgresBindings

    func makeBindings() throws -> PostgresBindings { binds }
    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}

extension PostgresStore {
    /// Runs `query` as the prepared statement `name`, and collects its rows (see `rows`). A text
    /// other than the prepared one (a programming error) runs unprepared rather than wrongly.
    @discardableResult
    static func rows<Name: PreparedStatementName>(
        _ query: PostgresQuery, preparedAs name: Name.Type, on connection: PostgresConnection, logger: Logger
    ) async throws -> [PostgresRow] {
        guard PreparedTexts.text(for: Name.name).matches(query.sql) else {
            assertionFailure("prepared statement \(Name.name) built with another text")
            return try await rows(query, on: connection, logger: logger)
        }
        guard !connection.isClosed else { throw StoreError.transient("the connection to PostgreSQL was closed") }
        var rows: [PostgresRow] = []
        do {
            for try await row in try await connection.execute(PreparedQuery<Name>(binds: query.binds), logger: logger) { rows.append(row) }
        } catch {
            // postgres-nio keeps a failed preparation for the connection's life and fails every
            // later use of the name with it, without asking the server. A preparation that timed
            // out behind a lock (an import holding `events`, a migration) would fail that
            // statement on that connection for good: close it, and the pool opens another.
            if !PreparedConnections.hasRun(Name.name, on: connection) { try? await connection.close() }
            throw error
        }
        PreparedConnections.ran(Name.name, on: connection)
        return rows
    }
}

/// Which connections have run which prepared statement at least once (so its preparation
/// succeeded there). Bounded: forgetting only means one needless reconnect after an error.
enum PreparedConnections {
    private struct Key: Hashable {
        let connection: ObjectIdentifier
        let connectionID: Int
        let name: String
    }

    private static let seen = Mutex<Set<Key>>([])
    static let limit = 4096

    static func hasRun(_ name: String, on connection: PostgresConnection) -> Bool {
        let key = Key(connection: ObjectIdentifier(connection), connectionID: connection.id, name: name)
        return seen.withLock { $0.contains(key) }
    }

    static func ran(_ name: String, on connection: PostgresConnection) {
        let key = Key(connection: ObjectIdentifier(connection), connectionID: connection.id, name: name)
        seen.withLock { seen in
            guard !seen.contains(key) else { return }
            if seen.count >= limit { seen.removeAll(keepingCapacity: true) }
            seen.insert(key)
        }
    }
}

/// The prepared statements, by name.
enum Prepared {
    enum Claim: PreparedStatementName { static let name = "patchbay_claim" }
    enum Completion: PreparedStatementName { static let name = "patchbay_complete" }
    enum IntakeLock: PreparedStatementName { static let name = "patchbay_intake_lock" }
    enum IntakeWrite: PreparedStatementName { static let name = "patchbay_intake_write" }
}
