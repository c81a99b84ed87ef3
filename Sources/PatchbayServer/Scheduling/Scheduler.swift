import Foundation
import Logging
import PatchbayCore
import PatchbayTargets
import ServiceLifecycle
import Synchronization

/// Owns the maintenance clock: announces each occurrence of the configured `schedules:` ahead of
/// time, and turns due planned notices (reminders, "beginning", overrun) into queued deliveries.
/// Everything it decides is written to the store in one transaction per batch, so a restart
/// neither loses nor repeats a notice. One `Service` in the ServiceGroup.
public struct Scheduler: Service, CustomStringConvertible {
    let store: any MaintenanceStore
    let intake: EventIntake
    let routes: RouteTable
    let targets: [String: any DeliveryTarget]
    let schedules: ScheduleBook
    let wake: WakeSignal
    let logger: Logger
    let tick: Duration
    let clock: @Sendable () -> Date
    /// Occurrences already announced (or refused) by this process.
    private let settled = SettledKeys()

    public init(
        store: any MaintenanceStore, intake: EventIntake, routes: RouteTable, targets: [String: any DeliveryTarget],
        schedules: ScheduleBook, wake: WakeSignal, logger: Logger, tick: Duration = .milliseconds(500),
        clock: @escaping @Sendable () -> Date = Date.init
    ) {
        self.store = store
        self.intake = intake
        self.routes = routes
        self.targets = targets
        self.schedules = schedules
        self.wake = wake
        self.logger = logger
        self.tick = tick
        self.clock = clock
    }

    public var description: String { "Scheduler(schedules: \(schedules.entries.count))" }

    public func run() async throws {
        logger.info("scheduler started", metadata: ["schedules": "\(schedules.entries.count)"])
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await runOnce()
            await cancelWhenGracefulShutdown {
                try? await Task.sleep(for: tick)
            }
        }
        logger.info("scheduler stopped")
    }

    /// One pass: announce due occurrences, then fire due notices. Errors are logged and tried
    /// again on the next pass; nothing is lost, because nothing is marked done until committed.
    public func runOnce() async {
        let now = clock()
        for entry in schedules.entries {
            await announce(entry, now: now)
        }
        do {
            var fired = try await store.fireDueNotices(now: now, limit: 100, decide: decider(now: now))
            while !fired.isEmpty {
                for notice in fired { log(notice) }
                if fired.contains(where: { $0.deliveries > 0 }) { wake.notify() }
                guard fired.count == 100 else { break }
                fired = try await store.fireDueNotices(now: now, limit: 100, decide: decider(now: now))
            }
        } catch {
            logger.error("firing due notices failed; will try again", metadata: ["error": "\(error)"])
        }
    }

    /// Announces the entry's next occurrence once it is within `announceAhead` (and one in
    /// progress that was never announced). Each occurrence is written once: the store's
    /// idempotency key makes a repeat (a restart, another instance) a no-op, and the occurrences
    /// already settled are remembered so the store is not asked again every tick.
    func announce(_ entry: ScheduleEntry, now: Date) async {
        for start in entry.occurrencesToAnnounce(at: now) {
            let key = entry.announcementKey(startingAt: start)
            guard !settled.contains(key) else { continue }
            let event = entry.announcement(startingAt: start, now: now)
            do {
                switch try await intake.announce(event, idempotencyKey: key, logger: logger) {
                case .accepted(let accepted):
                    logger.notice(
                        "schedule occurrence announced",
                        metadata: [
                            "event.id": "\(accepted.id)", "schedule.window": "\(LogText.escape(entry.windowID))",
                            "window.start": "\(Timestamp.rfc3339(start))", "event.app": "\(LogText.escape(entry.app))",
                            "deliveries": "\(accepted.deliveries)",
                        ])
                case .replayed:
                    break
                }
                settled.insert(key)
            } catch IntakeError.idempotencyConflict {
                // Announced before with another window (the entry's duration or zone was edited):
                // the maintenance keeps the window it was announced with.
                logger.warning(
                    "schedule occurrence was announced before with another window; keeping that one",
                    metadata: ["schedule.window": "\(LogText.escape(entry.windowID))", "window.start": "\(Timestamp.rfc3339(start))"])
                settled.insert(key)
            } catch {
                logger.error(
                    "announcing a schedule occurrence failed; will try again",
                    metadata: ["schedule.window": "\(LogText.escape(entry.windowID))", "error": "\(error)"])
            }
        }
    }

    /// Decides each due notice inside the store's transaction: pure, from the configuration.
    func decider(now: Date) -> @Sendable (DueNotice) -> NoticeFiring {
        let routes = routes
        let targets = targets
        return { due in
            let probe = PatchEvent(
                type: .scheduled, app: due.record.key.app, environment: due.record.key.environment,
                window: due.record.window, tags: due.record.tags)
            let settings = routes.noticeSettings(for: probe)?.settings ?? NoticeSettings()
            switch MaintenancePlanner.fire(due.notice, record: due.record, snapshot: due.snapshot, settings: settings, now: now) {
            case .skip(let reason):
                return .skip(reason: reason)
            case .send(let event):
                var plans = routes.plans(for: event, targets: targets)
                if due.notice.kind == .reminder || due.notice.kind == .beginning {
                    // Reminders and "beginning" are chat messages; vendor objects already follow
                    // the window on their own (Statuspage's auto in-progress).
                    plans = plans.filter { TargetRegistry.traits(of: $0.targetKind)?.keepsMaintenanceObject == false }
                }
                for index in plans.indices { plans[index].displayTimeZone = due.record.displayTimeZone }
                return .send(event, plans)
            }
        }
    }

    private func log(_ fired: FiredNotice) {
        var metadata: Logger.Metadata = [
            "notice": "\(fired.notice.label)", "maintenance": "\(fired.maintenance.id)",
            "due": "\(Timestamp.rfc3339(fired.notice.dueAt))",
        ]
        if let eventID = fired.eventID {
            metadata["event.id"] = "\(eventID)"
            metadata["deliveries"] = "\(fired.deliveries)"
            logger.info("planned notice sent", metadata: metadata)
        } else {
            logger.info("planned notice skipped", metadata: metadata)
        }
    }
}

/// The announcement keys a scheduler has settled, kept in memory (the store is the truth).
final class SettledKeys: Sendable {
    private let keys = Mutex(Set<String>())
    func contains(_ key: String) -> Bool { keys.withLock { $0.contains(key) } }
    func insert(_ key: String) { _ = keys.withLock { $0.insert(key) } }
}
