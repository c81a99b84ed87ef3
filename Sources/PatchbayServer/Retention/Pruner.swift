import Foundation
import Logging
import PatchbayCore
import ServiceLifecycle

/// Deletes finished work older than `store.retention`, every `store.pruneInterval`, in small
/// batches (see the store's `prune`). One `Service` in the ServiceGroup.
public struct Pruner: Service, CustomStringConvertible {
    public typealias Prune = @Sendable (RetentionPolicy, Date) async throws -> PruneReport

    let prune: Prune
    let policy: RetentionPolicy
    let interval: Duration
    let logger: Logger
    let clock: @Sendable () -> Date
    /// Where each prune that deleted something is recorded; nil records nothing.
    var audit: AuditTrail?

    public init(
        policy: RetentionPolicy, interval: Duration, logger: Logger, clock: @escaping @Sendable () -> Date = Date.init,
        audit: AuditTrail? = nil, prune: @escaping Prune
    ) {
        self.audit = audit
        self.clock = clock
        self.prune = prune
        self.policy = policy
        self.interval = interval
        self.logger = logger
    }

    public var description: String { "Pruner(every: \(interval))" }

    /// What a prune deleted, for the audit trail.
    public static func detail(_ report: PruneReport, dryRun: Bool = false) -> String {
        (dryRun ? "dry run: would delete " : "deleted ")
            + "\(report.deliveries) deliveries, \(report.attempts) attempts, \(report.events) events, \(report.maintenances) maintenances, "
            + "\(report.unmapped) unmapped messages, \(report.audit) audit records"
    }

    public func run() async throws {
        // The first pass waits a minute: start-up belongs to the queue.
        var wait: Duration = .seconds(60)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let pause = wait
            await cancelWhenGracefulShutdown { try? await Task.sleep(for: pause) }
            guard !Task.isShuttingDownGracefully, !Task.isCancelled else { break }
            wait = interval
            do {
                let report = try await prune(policy, clock())
                if report.total > 0 {
                    logger.info(
                        "pruned finished work past its retention",
                        metadata: [
                            "deliveries": "\(report.deliveries)", "attempts": "\(report.attempts)", "events": "\(report.events)",
                            "maintenances": "\(report.maintenances)", "unmapped": "\(report.unmapped)", "audit": "\(report.audit)",
                        ])
                    await audit?.record(.server("pruner"), "prune", .ok, detail: Self.detail(report))
                }
            } catch {
                logger.error("pruning failed; will try again at the next interval", metadata: ["error": "\(error)"])
            }
        }
    }
}
