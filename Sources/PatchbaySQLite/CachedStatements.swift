import GRDB

// Statements on the hot paths (intake, claim, completion) stay prepared on their connection:
// parsing the SQL text on every call showed in the profile. Only for SQL whose text never
// changes; a statement assembled from a filter would grow the connection's cache without end.

extension Database {
    func executeCached(sql: String, arguments: StatementArguments = StatementArguments()) throws {
        try cachedStatement(sql: sql).execute(arguments: arguments)
    }
}

extension Row {
    static func fetchAll(cached db: Database, sql: String, arguments: StatementArguments = StatementArguments()) throws -> [Row] {
        try fetchAll(db.cachedStatement(sql: sql), arguments: arguments)
    }

    static func fetchOne(cached db: Database, sql: String, arguments: StatementArguments = StatementArguments()) throws -> Row? {
        try fetchOne(db.cachedStatement(sql: sql), arguments: arguments)
    }
}

extension Bool {
    static func fetchOne(cached db: Database, sql: String, arguments: StatementArguments = StatementArguments()) throws -> Bool? {
        try fetchOne(db.cachedStatement(sql: sql), arguments: arguments)
    }
}
