import Foundation
import Logging
import PatchbayCore
import PatchbayTargets
import ServiceLifecycle
import Synchronization

/// Claims due deliveries with a lease, renders each for its target, paces it, sends it through
/// the transport and records the attempt. One `Service` in the ServiceGroup: on graceful shutdown
/// it stops claiming and lets sends in flight finish; whatever is left stays due in the store.
public struct Dispatcher: Service, CustomStringConvertible {
    let store: any DeliveryStore
    let targets: [String: any DeliveryTarget]
    let policies: [String: TargetPolicy]
    let transport: any HTTPTransport
    let settings: DispatcherSettings
    let redactor: Redactor
    let wake: WakeSignal
    let pacer: any PacingBudget
    let metrics: PatchbayMetrics
    let logger: Logger
    let clock: @Sendable () -> Date
    let random: @Sendable () -> Double
    /// The routes' own wording; it wins over each target's.
    let routeTemplates: RouteTemplates

    /// Longest a worker waits for its pacing slot; a longer wait puts the delivery back in the queue.
    static let maxPacingWait: Duration = .seconds(1)

    public init(store: any DeliveryStore, targets: [String: any DeliveryTarget], policies: [String: TargetPolicy],
                transport: any HTTPTransport, settings: DispatcherSettings, redactor: Redactor, wake: WakeSignal,
                pacer: any PacingBudget = Pacer(), metrics: PatchbayMetrics, logger: Logger, routeTemplates: RouteTemplates = .none,
                clock: @escaping @Sendable () -> Date = Date.init, random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.store = store
        self.targets = targets
        self.policies = policies
        self.transport = transport
        self.settings = settings
        self.redactor = redactor
        self.wake = wake
        self.pacer = pacer
        self.metrics = metrics
        self.logger = logger
        self.clock = clock
        self.random = random
        self.routeTemplates = routeTemplates
    }

    /// ServiceLifecycle logs services by description; the default would dump every field.
    public var description: String { "Dispatcher(concurrency: \(settings.concurrency))" }

    public func run() async throws {
        let slots = SlotCounter(limit: settings.concurrency)
        logger.info("dispatcher started", metadata: ["concurrency": "\(settings.concurrency)"])
        await withDiscardingTaskGroup { group in
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let free = slots.free
                var claimed: [ClaimedDelivery] = []
                if free > 0 {
                    do {
                        claimed = try await store.claimDue(now: clock(), limit: free, lease: settings.lease)
                    } catch {
                        logger.error("claiming due deliveries failed; will try again", metadata: ["error": "\(redactor.redact(String(describing: error)))"])
                    }
                }
                for claim in claimed {
                    slots.take()
                    // Not cancelled by graceful shutdown: a send in flight finishes and is recorded.
                    group.addTask {
                        await self.deliver(claim)
                        slots.release()
                        self.wake.notify()
                    }
                }
                if claimed.count == free && free > 0 { continue }
                await cancelWhenGracefulShutdown {
                    await wake.wait(timeout: settings.pollInterval)
                }
            }
            logger.info("dispatcher stopping: no new claims; waiting for sends in flight", metadata: ["in_flight": "\(slots.used)"])
        }
        logger.info("dispatcher stopped")
    }

    /// Delivers a claimed delivery, then the deliveries of its lane that the store leases to this
    /// worker as each one finishes (a lane's events follow each other without a claim between).
    /// Never throws: every result, expected or not, is recorded.
    func deliver(_ claim: ClaimedDelivery) async {
        var next: ClaimedDelivery? = claim
        while let current = next {
            next = await attempt(current)
        }
    }

    /// One attempt at one delivery, as a pipeline of small stages (after Alertmanager's notify):
    /// plan (target, expiry, rendering), pace, send and classify, record. Each stage either hands
    /// the next one what it needs or ends the attempt. Returns the lane's next delivery when the
    /// store leased it to this worker while recording.
    func attempt(_ claim: ClaimedDelivery) async -> ClaimedDelivery? {
        var attempt = Attempt(claim: claim, logger: AttemptLogger(base: logger, claim: claim), startedAt: clock())
        let planned: PlannedSend
        switch await plan(claim, startedAt: attempt.startedAt, logger: attempt.logger) {
        case .send(let ready): planned = ready
        case .end(let ending): return await record(&attempt, ending)
        case .leaveLeased: return nil
        }
        guard await paceOrRequeue(planned, claim: claim, logger: attempt.logger) else { return nil }
        let ending = await sendAndClassify(planned, attempt: &attempt)
        return await record(&attempt, ending)
    }

    // MARK: Stages

    /// What the plan stage hands on: a rendered request for a known target.
    struct PlannedSend {
        let targetName: String
        let target: any DeliveryTarget
        let policy: TargetPolicy
        let request: OutboundRequest
        let context: RenderContext
    }

    /// How an attempt ends, for the record stage.
    struct Ending {
        var outcome: DeliveryOutcome
        var detail: String?
        var policy = RetryPolicy()
        var followUp: FollowUpState? = nil
        /// Set when the stage decides the transition itself (an expired event), not the retry policy.
        var transition: DeliveryTransition? = nil
    }

    enum PlanResult {
        case send(PlannedSend)
        case end(Ending)
        /// The maintenance state could not be read: nothing is recorded, the lease expires and the
        /// delivery is claimed again.
        case leaveLeased
    }

    /// Plan: the target still configured, the event still worth sending, the request rendered
    /// (with the maintenance's state and the route's wording when the target needs them).
    func plan(_ claim: ClaimedDelivery, startedAt: Date, logger: AttemptLogger) async -> PlanResult {
        let (targetName, isDigest) = DigestLane.split(claim.target)
        guard let target = targets[targetName] else {
            return .end(Ending(outcome: .permanent(reason: ResponseRule.Reason.unknownTarget),
                               detail: "target '\(claim.target)' is no longer in the configuration"))
        }
        let policy = policies[targetName] ?? TargetPolicy()
        if let reason = Expiry.reason(for: claim.event, queuedAt: claim.createdAt, now: startedAt) {
            return .end(Ending(outcome: .delivered(reason: ResponseRule.Reason.expired), detail: reason, transition: .expired))
        }
        let context: RenderContext
        do {
            let routeTemplates = claim.relayed == nil && !self.routeTemplates.isEmpty
                ? self.routeTemplates.templates(for: claim.event, target: targetName) : nil
            let (followUp, maintenance) = claim.relayed == nil && (target.usesMaintenanceState || routeTemplates != nil || isDigest)
                ? try await store.maintenanceContext(for: claim.event, target: claim.target)
                : (nil, MaintenanceSnapshot.empty)
            context = RenderContext(displayTimeZone: TimeZone(identifier: claim.displayTimeZone) ?? TimeZone(identifier: "UTC")!,
                                    deliveryID: claim.id, now: startedAt, followUp: followUp, maintenance: maintenance,
                                    resources: claim.resources, routeTemplates: routeTemplates, isDigest: isDigest,
                                    encodedEvent: claim.encodedEvent)
        } catch {
            logger.error("could not read the maintenance state; will retry", metadata: ["error": "\(redactor.redact(String(describing: error)))"])
            return .leaveLeased
        }
        do {
            let step = try claim.relayed.map { try target.relay($0, context: context) } ?? target.plan(claim.event, context: context)
            switch step {
            case .skip(let reason):
                return .end(Ending(outcome: .delivered(reason: ResponseRule.Reason.nothingToSend), detail: reason))
            case .refuse(let reason):
                return .end(Ending(outcome: .permanent(reason: ResponseRule.Reason.refusedByVendorRules), detail: reason))
            case .send(let request):
                return .send(PlannedSend(targetName: targetName, target: target, policy: policy, request: request, context: context))
            }
        } catch {
            return .end(Ending(outcome: .permanent(reason: ResponseRule.Reason.renderFailed), detail: String(describing: error)))
        }
    }

    /// Pace: waits for the target's pacing slot when it comes soon; otherwise puts the delivery
    /// back in the queue until the slot (not an attempt: nothing is recorded). False when requeued.
    func paceOrRequeue(_ planned: PlannedSend, claim: ClaimedDelivery, logger: AttemptLogger) async -> Bool {
        let decision: PacingDecision
        do {
            decision = try await pace(key: planned.target.pacingKey, policy: planned.policy.pacing)
        } catch {
            // A shared budget that cannot be read fails closed: the delivery waits a moment
            // rather than risk going over the vendor's limit.
            logger.error("could not take a pacing slot; trying again shortly", metadata: ["error": "\(redactor.redact(String(describing: error)))"])
            decision = .later(at: clock().addingTimeInterval(1))
        }
        guard case .later(let at) = decision else { return true }
        do {
            _ = try await store.release(claim, until: at, at: clock())
            logger.debug("paced: back in the queue", metadata: ["until": "\(Timestamp.rfc3339(at))"])
        } catch {
            logger.error("could not put a paced delivery back; its lease will expire", metadata: ["error": "\(redactor.redact(String(describing: error)))"])
        }
        return false
    }

    /// Send and classify: one request through the transport, its answer classified by the
    /// target's rules, a vendor's pause applied to the shared budget, the follow-up state taken
    /// from a delivered answer.
    func sendAndClassify(_ planned: PlannedSend, attempt: inout Attempt) async -> Ending {
        let target = planned.target, pacing = planned.policy.pacing
        attempt.startedAt = clock()
        let result = await transport.send(planned.request, timeouts: settings.timeouts)
        var outcome = target.classify(result)
        if case .retry(let after?, let reason) = outcome, after > settings.maxPause {
            attempt.logger.warning("the vendor asked for a longer pause than delivery.maxPause; using maxPause",
                                   metadata: ["asked_seconds": "\(Int(min(after.seconds, 1e12)))", "max_pause_seconds": "\(Int(settings.maxPause.seconds))"])
            outcome = .retry(after: settings.maxPause, reason: reason)
        }
        switch result {
        case .success(let response):
            attempt.status = response.status
            attempt.latency = response.latency
            if let pause = target.pause(after: response) {
                await pauseTarget(planned.targetName, key: target.pacingKey, policy: pacing, for: min(pause, settings.maxPause))
            }
            if case .retry(let after, let reason) = outcome, reason.isRateLimit {
                let quiet = after ?? .milliseconds(Int64(2000 / pacing.rate))
                await pauseTarget(planned.targetName, key: target.pacingKey, policy: pacing, for: quiet)
            }
            let followUp = outcome.label == "delivered"
                ? target.followUp(after: response, to: planned.request, event: attempt.claim.event, context: planned.context) : nil
            return Ending(outcome: outcome, detail: excerpt(of: response.body), policy: planned.policy.retry, followUp: followUp)
        case .failure(let failure):
            attempt.latency = failure.latency
            return Ending(outcome: outcome, detail: failure.message, policy: planned.policy.retry)
        }
    }

    /// Waits for the key's pacing slot when it comes within `maxPacingWait`; `.later` otherwise.
    private func pace(key: String, policy: PacingPolicy) async throws -> PacingDecision {
        let decision = try await pacer.reserve(key: key, policy: policy, now: clock(), maxWait: Self.maxPacingWait)
        guard case .go(let wait) = decision else { return decision }
        if wait > .zero { try? await Task.sleep(for: wait) }
        // Slots are kept as sends, not as wake-ups: late sleepers are spaced again.
        var extra = try await pacer.admit(key: key, policy: policy, now: clock())
        while extra > .zero {
            try? await Task.sleep(for: extra)
            extra = try await pacer.admit(key: key, policy: policy, now: clock())
        }
        return decision
    }

    /// No send to the pacing key until the pause is over, for every instance sharing the budget;
    /// the pause is visible in `/metrics`.
    private func pauseTarget(_ name: String, key: String, policy: PacingPolicy, for pause: Duration) async {
        let until = clock().addingTimeInterval(pause.seconds)
        do {
            try await pacer.block(key: key, policy: policy, until: until)
        } catch {
            logger.error("could not record the vendor's pause in the shared budget", metadata: ["error": "\(redactor.redact(String(describing: error)))"])
        }
        metrics.targetPaused(name, until: until)
    }

    struct Attempt {
        let claim: ClaimedDelivery
        let logger: AttemptLogger
        var startedAt: Date
        var status: Int?
        var latency: Duration = .zero
    }

    /// Record: the retry policy turns the outcome into a transition; the attempt, the new state
    /// and any follow-up state are committed together, and the lane's next delivery, when due, is
    /// leased to this worker in the same transaction.
    func record(_ attempt: inout Attempt, _ ending: Ending) async -> ClaimedDelivery? {
        let (outcome, detail, policy, followUp, explicit) = (ending.outcome, ending.detail, ending.policy, ending.followUp, ending.transition)
        let claim = attempt.claim
        let logger = attempt.logger
        let now = clock()
        let throttled: Bool
        if case .retry(_, let reason) = outcome { throttled = reason.isRateLimit } else { throttled = false }
        let failures = claim.attempt - claim.throttles - (throttled ? 1 : 0)
        let transition = explicit ?? policy.transition(for: outcome, failures: failures, age: .seconds(now.timeIntervalSince(claim.createdAt)),
                                                      now: now, random: random())
        let status = attempt.status.map(String.init) ?? "-"
        let final: String
        switch transition {
        case .delivered:
            final = "delivered"
            if attempt.status == nil {
                // Per-delivery lines are debug: at thousands a second they would cost more than the
                // send (patchbay_delivery_attempts_total counts them); failures stay warnings.
                logger.debug("nothing to send; delivery done", metadata: ["detail": "\(redactor.redact(detail ?? ""))"])
            } else {
                logger.debug("delivered", metadata: ["http.status": "\(status)", "latency_ms": "\(Int(attempt.latency.milliseconds))"])
            }
        case .retry(let at):
            final = "retry"
            logger.warning("send failed; will retry", metadata: [
                "reason": "\(outcome.reason.rawValue)", "http.status": "\(status)", "retry_at": "\(Timestamp.rfc3339(at))",
            ])
        case .dead:
            final = "dead"
            logger.error("delivery is dead: giving up", metadata: [
                "reason": "\(outcome.reason.rawValue)", "http.status": "\(status)", "failures": "\(failures)",
            ])
        case .expired:
            final = "expired"
            logger.notice("delivery expired: no longer useful", metadata: ["detail": "\(detail ?? "")"])
        }
        metrics.attempt(kind: claim.targetKind, outcome: final, reason: outcome.reason, latency: attempt.status == nil ? nil : attempt.latency)
        let record = AttemptRecord(
            deliveryID: claim.id, number: claim.attempt, startedAt: attempt.startedAt, latencyMilliseconds: attempt.latency.milliseconds,
            statusCode: attempt.status, outcome: final, reason: outcome.reason.rawValue, responseExcerpt: detail.map(redactor.redact)
        )
        do {
            // While stopping, take nothing new: the lane's next delivery stays queued.
            let lease = Task.isShuttingDownGracefully ? nil : settings.lease
            let (stillOurs, next) = try await store.completeAndLeaseNext(claim, attempt: record, transition: transition, followUp: followUp,
                                                                         throttled: throttled, at: now, lease: lease)
            if !stillOurs {
                logger.warning("lease expired before the result was recorded; another worker owns this delivery now")
            }
            return next
        } catch {
            // The lease will expire and the delivery will be claimed again: at-least-once.
            logger.error("could not record the attempt; the delivery will be retried when its lease expires",
                         metadata: ["error": "\(redactor.redact(String(describing: error)))"])
            return nil
        }
    }

    /// The first 512 bytes of a response, as text.
    private func excerpt(of body: Data) -> String? {
        guard !body.isEmpty else { return nil }
        let text = String(decoding: body.prefix(512), as: UTF8.self)
        return body.count > 512 ? text + "…" : text
    }
}

/// The dispatcher's logger with the delivery's metadata, attached only when a line is written:
/// at thousands of deliveries a second, five metadata strings per attempt for lines that are
/// mostly debug (off by default) cost more than the lines themselves.
struct AttemptLogger {
    let base: Logger
    let claim: ClaimedDelivery

    func debug(_ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata = [:],
               file: String = #fileID, function: String = #function, line: UInt = #line) {
        log(.debug, message(), metadata: metadata(), file: file, function: function, line: line)
    }
    func notice(_ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata = [:],
               file: String = #fileID, function: String = #function, line: UInt = #line) {
        log(.notice, message(), metadata: metadata(), file: file, function: function, line: line)
    }
    func warning(_ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata = [:],
               file: String = #fileID, function: String = #function, line: UInt = #line) {
        log(.warning, message(), metadata: metadata(), file: file, function: function, line: line)
    }
    func error(_ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata = [:],
               file: String = #fileID, function: String = #function, line: UInt = #line) {
        log(.error, message(), metadata: metadata(), file: file, function: function, line: line)
    }

    /// Passes the caller's source location on, so a line points at the stage that wrote it.
    func log(_ level: Logger.Level, _ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata,
             file: String, function: String, line: UInt) {
        guard base.logLevel <= level else { return }
        var all: Logger.Metadata = [
            "delivery.id": "\(claim.id)", "target.name": "\(claim.target)", "target.kind": "\(claim.targetKind)",
            "event.type": "\(claim.event.type.rawValue)", "attempt": "\(claim.attempt)",
        ]
        all.merge(metadata()) { _, line in line }
        base.log(level: level, message(), metadata: all, file: file, function: function, line: line)
    }
}

/// Counts sends in flight, so the dispatcher never claims more than it can send at once.
final class SlotCounter: Sendable {
    private let used_ = Mutex(0)
    let limit: Int

    init(limit: Int) { self.limit = limit }

    var used: Int { used_.withLock { $0 } }
    var free: Int { used_.withLock { limit - $0 } }
    func take() { used_.withLock { $0 += 1 } }
    func release() { used_.withLock { $0 -= 1 } }
}
