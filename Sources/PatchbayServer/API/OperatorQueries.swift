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
}

/// Turns operator input (CLI flags, query parameters) into a store filter, with errors that name the parameter.
public enum DeliveryQuery {
    public static func filter(state: String?, target: String?, app: String?, since: String?, limit: String?, offset: String? = nil,
                              now: Date) throws(QueryProblem) -> DeliveryFilter {
        var filter = DeliveryFilter(target: target, app: app)
        if let state {
            guard let parsed = DeliveryState(rawValue: state) else {
                throw QueryProblem(parameter: "state", message: "must be one of \(DeliveryState.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            filter.state = parsed
        }
        if let since {
            guard let duration = ConfigSection.parseDuration(since) else {
                throw QueryProblem(parameter: "since", message: "expected a duration like 30m, 2h or 7d, got '\(since)'")
            }
            filter.since = now.addingTimeInterval(-duration.seconds)
        }
        if let limit {
            guard let value = Int(limit), (1...10_000).contains(value) else {
                throw QueryProblem(parameter: "limit", message: "expected a whole number from 1 to 10000")
            }
            filter.limit = value
        }
        if let offset {
            guard let value = Int(offset), (0...100_000).contains(value) else {
                throw QueryProblem(parameter: "offset", message: "expected a whole number from 0 to 100000")
            }
            filter.offset = value
        }
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
        if let since {
            guard let duration = ConfigSection.parseDuration(since), duration <= .seconds(100 * 365 * 86_400) else {
                throw QueryProblem(parameter: "since", message: "expected a duration like 30m, 2h or 7d, got '\(since)'")
            }
            self.since = now.addingTimeInterval(-duration.seconds)
        }
        if let limit {
            guard let value = Int(limit), (1...1000).contains(value) else {
                throw QueryProblem(parameter: "limit", message: "expected a whole number from 1 to 1000")
            }
            self.limit = value
        }
    }
}
