import Foundation
import Logging
import PatchbayCore

/// Records operator actions (`AuditRecord`) for the console, the admin API and the pruner. A
/// record that cannot be written does not undo the action: it is logged (action and actor
/// only) and counted in `patchbay_audit_write_failures_total`.
public struct AuditTrail: Sendable {
    let store: any AuditStore
    let metrics: PatchbayMetrics
    let logger: Logger
    let clock: @Sendable () -> Date

    public init(store: any AuditStore, metrics: PatchbayMetrics, logger: Logger, clock: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.metrics = metrics
        self.logger = logger
        self.clock = clock
    }

    public func record(
        _ actor: AuditActor, _ action: String, _ outcome: AuditRecord.Outcome, source: String? = nil, detail: String = ""
    ) async {
        let record = AuditRecord(actor, action: action, outcome: outcome, at: clock(), source: source, detail: detail)
        do {
            try await store.recordAudit(record)
        } catch {
            metrics.auditWriteFailed()
            logger.error(
                "could not record an operator action in the audit trail",
                metadata: ["audit.action": "\(action)", "audit.actor": "\(actor.name)", "error": "\(type(of: error))"])
        }
    }

    /// A replay's detail: the deliveries (the first 20, then how many more), dry run or not.
    public static func replayDetail(_ ids: [String], dryRun: Bool, replayed: Int) -> String {
        let shown = ids.prefix(20).joined(separator: ", ")
        let more = ids.count > 20 ? " and \(ids.count - 20) more" : ""
        return (dryRun ? "dry run: " : "") + "\(ids.count) deliver\(ids.count == 1 ? "y" : "ies") (\(shown)\(more)); \(replayed) queued again"
    }
}
