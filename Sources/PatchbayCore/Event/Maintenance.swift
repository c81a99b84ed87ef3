import Foundation

/// What the vendors returned for one (maintenance, target), so later events update the same
/// Statuspage incident or Pingdom window instead of creating another.
public struct FollowUpState: Sendable, Hashable, Codable {
    /// The vendor's id: Statuspage incident id, Pingdom maintenance id.
    public var objectID: String?
    /// The vendor-side state last set: `scheduled`, `in_progress`, `completed`, `deleted`.
    public var status: String?
    /// The window the vendor object currently has, to tell whether a new event changes it.
    public var windowStart: Date?
    public var windowEnd: Date?
    /// A public link to the vendor object (a Statuspage incident's shortlink), for templates.
    public var link: String?
    /// For a summary lane: the instance ids each stage's summaries already named, by event type.
    public var announced: [String: [String]]?
    /// Further vendor objects the target keeps for the maintenance beside its own (`objectID`),
    /// by the key the target gives them: one silence per server, keyed by instance id.
    public var objects: [String: HeldObject]?

    public init(
        objectID: String? = nil, status: String? = nil, windowStart: Date? = nil, windowEnd: Date? = nil, link: String? = nil,
        announced: [String: [String]]? = nil, objects: [String: HeldObject]? = nil
    ) {
        self.objects = objects
        self.link = link
        self.announced = announced
        self.objectID = objectID
        self.status = status
        self.windowStart = windowStart
        self.windowEnd = windowEnd
    }
}

/// One of the further vendor objects a follow-up state holds (`FollowUpState.objects`).
public struct HeldObject: Sendable, Hashable, Codable {
    /// The vendor's id (an Alertmanager silence id).
    public var id: String
    /// The state last set: `active`, `clearing` (ends soon), `deleted`.
    public var status: String
    /// When the object ends at the vendor, as last set.
    public var end: Date?
    /// Its page in the vendor's UI.
    public var link: String?

    public init(id: String, status: String, end: Date? = nil, link: String? = nil) {
        self.id = id
        self.status = status
        self.end = end
        self.link = link
    }
}

extension FollowUpState {
    /// The stored state of a summary lane after an operator replays one of its summaries: the
    /// servers of that stage are forgotten, so the replay names them all again instead of being
    /// skipped as "nothing new". nil when nothing changes.
    public static func forgettingStage(_ stage: String, in json: String) -> String? {
        guard var state = try? JSONDecoder.patchbay().decode(FollowUpState.self, from: Data(json.utf8)),
            state.announced?[stage] != nil
        else { return nil }
        state.announced?[stage] = nil
        return (try? JSONEncoder.patchbay().encode(state)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// What a store read for (maintenance, target): `target`'s own state, and `snapshot` with the
    /// links every target of the maintenance left. `states` are (target, stored JSON) rows.
    public static func decode(
        _ states: [(target: String, json: String)], for target: String,
        into snapshot: MaintenanceSnapshot
    ) throws -> (FollowUpState?, MaintenanceSnapshot) {
        var snapshot = snapshot
        var own: FollowUpState?
        let decoder = JSONDecoder.patchbay()
        for (name, json) in states {
            let state = try decoder.decode(FollowUpState.self, from: Data(json.utf8))
            if name == target { own = state }
            if let link = state.link { snapshot.links[name] = link }
        }
        return (own, snapshot)
    }
}

/// A send's follow-up state on its way to the store, with the object id the target planned
/// with: when the two differ, the send created a vendor object (an incident, a window, a downtime).
public struct FollowUpUpdate: Sendable, Hashable {
    public var state: FollowUpState
    /// `context.followUp?.objectID` when the request was planned.
    public var plannedObjectID: String?

    public init(state: FollowUpState, plannedObjectID: String?) {
        self.state = state
        self.plannedObjectID = plannedObjectID
    }

    /// The send created a vendor object (it planned with none, or with another).
    public var createdObject: Bool {
        guard let id = state.objectID else { return false }
        return id != plannedObjectID
    }
}

/// What the store does with a send's follow-up state. Decided once, here, for every backend, in
/// the transaction that records the attempt (the stored state read under its lock).
public enum FollowUpResolution: Sendable, Hashable {
    /// Write this state for (maintenance, target).
    case store(FollowUpState)
    /// Keep the stored state: this send's object is an extra one (another send, whose lease or
    /// record overlapped this one's, already gave the maintenance its object). The caller closes
    /// it through the target's own cancel path.
    case extra(FollowUpState)
    /// Nothing to write.
    case nothing

    /// - A created object is kept whether or not the lease was still held: it exists at the
    ///   vendor, and forgetting it would make the next send create another. It replaces the
    ///   object it was planned against (a Datadog downtime that had ended is replaced by a new
    ///   one); but when the store meanwhile holds another object, one this send did not know,
    ///   another send got the maintenance its object first, and this one is extra.
    /// - Any other state (a status change, a summary's named servers) is written only while the
    ///   lease is held: after a lost lease, the new holder sends that step again.
    public static func of(_ update: FollowUpUpdate, stored: FollowUpState?, leaseHeld: Bool) -> FollowUpResolution {
        if update.createdObject {
            if let storedID = stored?.objectID, storedID != update.state.objectID, storedID != update.plannedObjectID {
                return .extra(update.state)
            }
            return .store(update.state)
        }
        return leaseHeld ? .store(update.state) : .nothing
    }
}

/// Where each instance of a maintenance stands, as reported so far.
public struct MaintenanceSnapshot: Sendable, Hashable {
    public struct InstanceReport: Sendable, Hashable {
        public var instance: Instance
        /// The furthest lifecycle stage this instance reported.
        public var lastType: EventType
        public var packages: [String]

        public init(instance: Instance, lastType: EventType, packages: [String] = []) {
            self.instance = instance
            self.lastType = lastType
            self.packages = packages
        }
    }

    /// How much of a maintenance a store reads for a send (review F4: every send of a
    /// 1,000-server maintenance read and decoded every server's package list).
    public enum Depth: Sendable, Hashable {
        /// Counts by stage, and the first `namesPerStage` servers of each stage by name: what a
        /// message about one server says of the others. What most sends read.
        case counted
        /// Every server by name (a summary names the servers no earlier one named).
        case everyInstance
        /// As `counted`, and the packages the servers updated, up to `packageLimit` of them, once
        /// every server has reported an outcome (Statuspage's final update lists them).
        case withPackages
    }

    /// Servers of each stage a `counted` snapshot names.
    public static let namesPerStage = 50
    /// Distinct packages a snapshot holds at most; `morePackages` says whether there were more.
    public static let packageLimit = 1000

    /// The servers this snapshot names: all of them, or the first `namesPerStage` of each stage
    /// (`stageCounts` then has the whole count).
    public var instances: [InstanceReport]
    /// Servers by furthest stage, all of them; nil when `instances` holds every server.
    public var stageCounts: [EventType: Int]?
    /// Links the vendors returned for this maintenance, by target name (a Statuspage incident's
    /// shortlink), for templates. Filled from every target's follow-up state.
    public var links: [String: String]
    /// Packages updated on any instance, once each, in first-seen order, at most `packageLimit`.
    /// Stores fill it only when asked (`Depth.withPackages`); their instances carry none.
    public var packagesUpdated: [String]
    /// More packages were updated than `packagesUpdated` holds.
    public var morePackages: Bool

    /// `packagesUpdated` defaults to the union of the instances' own lists.
    public init(
        instances: [InstanceReport], links: [String: String] = [:], packagesUpdated: [String]? = nil,
        stageCounts: [EventType: Int]? = nil, morePackages: Bool = false
    ) {
        self.instances = instances
        self.links = links
        self.stageCounts = stageCounts
        self.morePackages = morePackages
        self.packagesUpdated = packagesUpdated ?? Self.union(instances.map(\.packages))
    }

    /// Each package once, in first-seen order.
    public static func union(_ lists: [[String]]) -> [String] {
        var seen = Set<String>()
        return lists.flatMap { $0 }.filter { seen.insert($0).inserted }
    }

    public static let empty = MaintenanceSnapshot(instances: [])

    /// Named servers at each outcome (all of them, or the first of each stage: see `instances`).
    public var completed: [InstanceReport] { instances.filter { $0.lastType == .completed } }
    public var failed: [InstanceReport] { instances.filter { $0.lastType == .failed } }
    /// Named servers still expected to report an outcome.
    public var unfinished: [InstanceReport] {
        instances.filter { !$0.lastType.isOutcome }
    }

    /// Every server that reported, counted.
    public var instanceCount: Int { stageCounts.map { $0.values.reduce(0, +) } ?? instances.count }
    /// Servers whose furthest report is `stage`, counted.
    public func count(_ stage: EventType) -> Int { stageCounts?[stage] ?? instances.filter { $0.lastType == stage }.count }
    public var completedCount: Int { count(.completed) }
    public var failedCount: Int { count(.failed) }
    /// Servers still expected to report an outcome, counted.
    public var unfinishedCount: Int {
        stageCounts.map { counts in counts.filter { !$0.key.isOutcome }.values.reduce(0, +) } ?? unfinished.count
    }

}

extension EventType {
    /// Completed, failed or cancelled: the server has reported how its run ended.
    public var isOutcome: Bool { self == .completed || self == .failed || self == .cancelled }

    /// Lifecycle order: a late `started` must not hide an instance's `completed`.
    public var stageRank: Int {
        switch self {
        case .scheduled, .reminder: 0
        case .started: 1
        case .completed, .failed, .cancelled: 2
        }
    }
}
