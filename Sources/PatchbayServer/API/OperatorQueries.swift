import Foundation
import PatchbayCore

/// Operator input (query parameters, CLI flags, the console's filter form) that cannot be read.
/// Thrown by the query parsers below, which know nothing of HTTP: the API answers it with a 400
/// `invalid_parameter`, the CLI with a usage error naming `--<parameter>`, the console with a page.
public struct QueryProblem: Error, Sendable, Equatable, CustomStringConvertible {
    /// The parameter's name, as the API and the CLI spell it (`since`, `limit`, …).
    public var parameter: String
    /// What the value must be, without the parameter's name.
    public var message: String

    public init(parameter: String, message: String) {
        self.parameter = parameter
        self.message = message
    }

    /// `since: expected a duration like 30m, 2h or 7d, got 'x'`.
    public var description: String { "\(parameter): \(message)" }

    /// `since` (`30m`, `2h`, `7d`) as the instant that long before `now`.
    static func since(_ text: String, now: Date, atMost limit: Duration? = nil) throws(QueryProblem) -> Date {
        guard let duration = ConfigSection.parseDuration(text), limit.map({ duration <= $0 }) ?? true else {
            throw QueryProblem(parameter: "since", message: "expected a duration like 30m, 2h or 7d, got '\(text)'")
        }
        return now.addingTimeInterval(-duration.seconds)
    }

    /// A whole number in `range`.
    static func number(_ text: String, parameter: String, in range: ClosedRange<Int>) throws(QueryProblem) -> Int {
        guard let value = Int(text), range.contains(value) else {
            throw QueryProblem(parameter: parameter, message: "expected a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }
}

/// Turns operator input (CLI flags, query parameters) into a store filter, with errors that name the parameter.
public enum DeliveryQuery {
    public static func filter(
        state: String?, target: String?, app: String?, since: String?, limit: String?, offset: String? = nil,
        now: Date
    ) throws(QueryProblem) -> DeliveryFilter {
        var filter = DeliveryFilter(target: target, app: app)
        if let state {
            guard let parsed = DeliveryState(rawValue: state) else {
                throw QueryProblem(parameter: "state", message: "must be one of \(DeliveryState.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            filter.state = parsed
        }
        if let since { filter.since = try QueryProblem.since(since, now: now) }
        if let limit { filter.limit = try QueryProblem.number(limit, parameter: "limit", in: 1...10_000) }
        if let offset { filter.offset = try QueryProblem.number(offset, parameter: "offset", in: 0...100_000) }
        return filter
    }
}

/// Operator input for the maintenance listing, with errors that name the parameter.
public struct MaintenanceQuery: Sendable {
    /// Only maintenances whose window ends at or after this instant.
    public var since: Date?
    public var limit: Int

    public init(since: String?, limit: String?, now: Date) throws(QueryProblem) {
        self.since = nil
        self.limit = 50
        if let since { self.since = try QueryProblem.since(since, now: now, atMost: .seconds(100 * 365 * 86_400)) }
        if let limit { self.limit = try QueryProblem.number(limit, parameter: "limit", in: 1...1000) }
    }
}

/// `GET /v1/audit` and `patchbay audit list`: the audit trail, newest first.
public enum AuditQuery {
    public static let actions = ["sign-in", "sign-out", "replay", "test-send", "prune"]

    public static func filter(since: String?, action: String?, limit: String?, now: Date) throws(QueryProblem) -> AuditFilter {
        var filter = AuditFilter(since: now.addingTimeInterval(-7 * 86_400))
        if let since { filter.since = try QueryProblem.since(since, now: now) }
        if let action {
            guard actions.contains(action) else {
                throw QueryProblem(parameter: "action", message: "must be one of \(actions.joined(separator: ", "))")
            }
            filter.action = action
        }
        if let limit { filter.limit = try QueryProblem.number(limit, parameter: "limit", in: 1...1000) }
        return filter
    }
}
