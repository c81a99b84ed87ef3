import Foundation

/// One operator action, as the audit trail keeps it (`GET /v1/audit`, the console's audit page,
/// `patchbay audit list`): who, how, from where, what, and how it ended. Never a token, a
/// code or a secret: `actor` is a display name, a token's configured name or a login.
public struct AuditRecord: Sendable, Hashable, Codable {
    public enum Outcome: String, Sendable, Hashable, Codable, CaseIterable {
        case ok
        case refused
        case failed
    }

    public var id: String
    public var at: Date
    /// Who acted, as people read it: "Alice Admin", "token ci-pipeline", "root@build-1".
    public var actor: String
    /// How they were known: `oidc` (the provider's subject in `actorID`), `token` (the token's
    /// name), `cli` (the login on the machine), `server` (Patchbay itself: the pruner).
    public var method: String
    /// The provider's subject, or the token's configured name.
    public var actorID: String?
    /// `sign-in`, `sign-out`, `replay`, `test-send`, `prune`.
    public var action: String
    public var outcome: Outcome
    /// The client's address (console, API), or the host (CLI).
    public var source: String?
    /// What was acted on: delivery ids, dry run or not, the target, what was pruned.
    public var detail: String

    /// The longest `detail` kept; a replay of a thousand deliveries is summarized.
    public static let maxDetail = 2000

    public init(
        id: String = Identifier.make("aud"), at: Date, actor: String, method: String, actorID: String? = nil, action: String,
        outcome: Outcome, source: String? = nil, detail: String = ""
    ) {
        self.id = id
        self.at = at
        self.actor = String(actor.prefix(200))
        self.method = method
        self.actorID = actorID.map { String($0.prefix(255)) }
        self.action = action
        self.outcome = outcome
        self.source = source.map { String($0.prefix(200)) }
        self.detail = detail.count > Self.maxDetail ? String(detail.prefix(Self.maxDetail - 1)) + "…" : detail
    }
}

/// Which audit records to list: newest first.
public struct AuditFilter: Sendable, Hashable {
    public var since: Date?
    public var action: String?
    public var limit: Int

    public init(since: Date? = nil, action: String? = nil, limit: Int = 100) {
        self.since = since
        self.action = action
        self.limit = min(max(limit, 1), 1000)
    }
}

/// Where the audit trail is kept: both stores, beside the deliveries it speaks of.
public protocol AuditStore: Sendable {
    func recordAudit(_ record: AuditRecord) async throws
    /// Newest first.
    func auditTrail(_ filter: AuditFilter) async throws -> [AuditRecord]
}

/// Who acts, as the audit trail records them.
public struct AuditActor: Sendable, Hashable {
    /// "Alice Admin", "token ci-pipeline", "root@build-1", "pruner".
    public var name: String
    /// `oidc`, `token`, `cli`, `server`.
    public var method: String
    /// The provider's subject, or the token's configured name.
    public var id: String?

    public init(name: String, method: String, id: String? = nil) {
        self.name = name
        self.method = method
        self.id = id
    }

    /// Patchbay itself (the pruner).
    public static func server(_ part: String) -> AuditActor { AuditActor(name: part, method: "server") }
}

extension AuditRecord {
    public init(_ actor: AuditActor, action: String, outcome: Outcome, at: Date, source: String? = nil, detail: String = "") {
        self.init(
            at: at, actor: actor.name, method: actor.method, actorID: actor.id, action: action, outcome: outcome, source: source, detail: detail)
    }
}
