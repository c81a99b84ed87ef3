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
    let store: any DispatchStore
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
    /// The plan stage's reads and rendering context, shared with the request previews.
    let planner: DeliveryPlanner
    /// When paced deliveries put back to the queue fall due again, per pacing key.
    let requeueSpacing = RequeueSpacing()

    /// Longest a worker waits for its pacing slot; a longer wait puts the delivery back in the queue.
    static let maxPacingWait: Duration = .seconds(1)

    public init(
        store: any DispatchStore, targets: [String: any DeliveryTarget], policies: [String: TargetPolicy],
        transport: any HTTPTransport, settings: DispatcherSettings, redactor: Redactor, wake: WakeSignal,
        pacer: any PacingBudget = Pacer(), metrics: PatchbayMetrics, logger: Logger, routeTemplates: RouteTemplates = .none,
        routes: RouteTable = RouteTable(routes: []),
        clock: @escaping @Sendable () -> Date = Date.init, random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
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
        self.planner = DeliveryPlanner(routeTemplates: routeTemplates, routes: routes)
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
                // Taken before the claim: the lease runs from a moment no later than the store's.
                let leasedAt = ContinuousClock.now
                if free > 0 {
                    do {
                        claimed = try await store.claimDue(now: clock(), limit: free, lease: settings.lease)
                    } catch {
                        logger.error(
                            "claiming due deliveries failed; will try again", metadata: ["error": "\(redactor.redact(String(describing: error)))"])
                    }
                }
                for claim in claimed {
                    slots.take()
                    // Not cancelled by graceful shutdown: a send in flight finishes and is recorded.
                    group.addTask {
                        await self.deliver(claim, leasedAt: leasedAt)
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
    func deliver(_ claim: ClaimedDelivery, leasedAt: ContinuousClock.Instant = .now) async {
        var next: (ClaimedDelivery, ContinuousClock.Instant)? = (claim, leasedAt)
        while let (current, leasedAt) = next {
            next = await attempt(current, leasedAt: leasedAt)
        }
    }

    /// One attempt at one delivery, as a pipeline of small stages (after Alertmanager's notify):
    /// plan (target, expiry, rendering), pace, send and classify, record. Each stage either hands
    /// the next one what it needs or ends the attempt. Returns the lane's next delivery when the
    /// store leased it to this worker while recording, with when its lease began.
    func attempt(_ claim: ClaimedDelivery, leasedAt: ContinuousClock.Instant = .now) async -> (ClaimedDelivery, ContinuousClock.Instant)? {
        var attempt = Attempt(claim: claim, logger: AttemptLogger(base: logger, claim: claim), startedAt: clock(), leasedAt: leasedAt)
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
        /// What the answer to `request` leads to, for a step of several links (`DeliveryStep.then`).
        var next: (@Sendable (TransportResponse) -> DeliveryStep?)? = nil
    }

    /// How an attempt ends, for the record stage.
    struct Ending {
        var outcome: DeliveryOutcome
        var detail: String?
        var policy = RetryPolicy()
        var followUp: FollowUpState? = nil
        /// The object id the target planned with (`context.followUp?.objectID`): a follow-up
        /// naming another one means the send created a vendor object.
        var plannedObjectID: String? = nil
        /// What the send was planned with, to close an extra vendor object by the same path.
        var planned: PlannedSend? = nil
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
        let lane = DeliveryLane(storedName: claim.target)
        let targetName = lane.target
        guard let target = targets[targetName] else {
            return .end(
                Ending(
                    outcome: .permanent(reason: ResponseRule.Reason.unknownTarget),
                    detail: "target '\(claim.target)' is no longer in the configuration"))
        }
        let policy = policies[targetName] ?? TargetPolicy()
        // A live message's edit shows the maintenance as it is now, so it never expires.
        if !lane.isLive, let reason = Expiry.reason(for: claim.event, queuedAt: claim.createdAt, now: startedAt) {
            return .end(Ending(outcome: .delivered(reason: ResponseRule.Reason.expired), detail: reason, transition: .expired))
        }
        var send = DeliveryPlanner.Send(
            event: claim.event, lane: lane, target: target, relayed: claim.relayed, displayTimeZone: claim.displayTimeZone,
            deliveryID: claim.id, now: startedAt, resources: claim.resources, encodedEvent: claim.encodedEvent)
        if lane.isLive {
            // Coalescing: an edit with a later delivery queued behind it in the lane would be
            // overwritten a moment later; the later one renders the newer state instead.
            do {
                send.laterQueued = try await store.laneHasLaterDelivery(than: claim)
            } catch {
                logger.error("could not read the live lane; will retry", metadata: ["error": "\(redactor.redact(String(describing: error)))"])
                return .leaveLeased
            }
            if send.laterQueued, LiveRole(for: claim.event).isSupersedable {
                return .end(
                    Ending(
                        outcome: .delivered(reason: .superseded), detail: "a later delivery of this live lane edits the message instead",
                        transition: .superseded))
            }
        }
        let context: RenderContext
        do {
            context = try await planner.context(for: send, reading: store)
        } catch {
            logger.error("could not read the maintenance state; will retry", metadata: ["error": "\(redactor.redact(String(describing: error)))"])
            return .leaveLeased
        }
        do {
            let step = try planner.step(for: send, context: context)
            switch step {
            case .skip(let reason):
                return .end(Ending(outcome: .delivered(reason: ResponseRule.Reason.nothingToSend), detail: reason))
            case .refuse(let reason):
                return .end(Ending(outcome: .permanent(reason: ResponseRule.Reason.refusedByVendorRules), detail: reason))
            case .send(let request):
                return .send(PlannedSend(targetName: targetName, target: target, policy: policy, request: request, context: context))
            case .then(let request, let next):
                return .send(
                    PlannedSend(targetName: targetName, target: target, policy: policy, request: request, context: context, next: next))
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
        // Spread over the key's coming slots: put back to the same next slot, a backlog of a
        // paced vendor fell due all at once every slot, and its claims and put-backs took the
        // workers the other targets needed (fault-test.py, slow paced vendor).
        let until = requeueSpacing.slot(for: planned.target.pacingKey, notBefore: at, interval: planned.policy.pacing.interval)
        do {
            _ = try await store.release(claim, until: until, at: clock())
            logger.debug("paced: back in the queue", metadata: ["until": "\(Timestamp.rfc3339(until))"])
        } catch {
            logger.error(
                "could not put a paced delivery back; its lease will expire", metadata: ["error": "\(redactor.redact(String(describing: error)))"])
        }
        return false
    }

    /// Send and classify: one request through the transport, its answer classified by the
    /// target's rules, a vendor's pause applied to the shared budget, the follow-up state taken
    /// from a delivered answer. A step of several links sends each in turn, paced like any send;
    /// the state every delivered link left is recorded even when a later link fails, so the
    /// retry plans from what the vendor now holds.
    func sendAndClassify(_ planned: PlannedSend, attempt: inout Attempt) async -> Ending {
        let target = planned.target
        let pacing = planned.policy.pacing
        attempt.startedAt = clock()
        var request = planned.request
        var next = planned.next
        var context = planned.context
        var followUp: FollowUpState? = nil
        var latency = Duration.zero
        for link in 1...DeliveryStep.maxLinks {
            if link > 1 { await waitForSlot(planned) }
            let result = await transport.send(request, timeouts: settings.timeouts)
            var outcome = target.classify(result, for: request)
            if case .retry(let after?, let reason) = outcome, after > settings.maxPause {
                attempt.logger.warning(
                    "the vendor asked for a longer pause than delivery.maxPause; using maxPause",
                    metadata: ["asked_seconds": "\(Int(min(after.seconds, 1e12)))", "max_pause_seconds": "\(Int(settings.maxPause.seconds))"])
                outcome = .retry(after: settings.maxPause, reason: reason)
            }
            let response: TransportResponse
            switch result {
            case .success(let answer):
                response = answer
            case .failure(let failure):
                attempt.latency = latency + failure.latency
                return Ending(
                    outcome: outcome, detail: failure.message, policy: planned.policy.retry, followUp: followUp,
                    plannedObjectID: planned.context.followUp?.objectID, planned: planned)
            }
            attempt.status = response.status
            latency += response.latency
            attempt.latency = latency
            if let pause = target.pause(after: response) {
                await pauseTarget(planned.targetName, key: target.pacingKey, policy: pacing, for: min(pause, settings.maxPause))
            }
            if case .retry(let after, let reason) = outcome, reason.isRateLimit {
                let quiet = after ?? .milliseconds(Int64(2000 / pacing.rate))
                await pauseTarget(planned.targetName, key: target.pacingKey, policy: pacing, for: quiet)
            }
            let ending = { (outcome: DeliveryOutcome, detail: String?) in
                Ending(
                    outcome: outcome, detail: detail, policy: planned.policy.retry, followUp: followUp,
                    plannedObjectID: planned.context.followUp?.objectID, planned: planned)
            }
            guard outcome.label == "delivered" else { return ending(outcome, excerpt(of: response.body)) }
            if let state = target.followUp(after: response, to: request, event: attempt.claim.event, context: context) {
                followUp = state
                context.followUp = state
            }
            guard let then = next, let following = then(response) else { return ending(outcome, excerpt(of: response.body)) }
            switch following {
            case .send(let following):
                request = following
                next = nil
            case .then(let following, let after):
                request = following
                next = after
            case .skip(let reason):
                return ending(.delivered(reason: ResponseRule.Reason.nothingToSend), reason)
            case .refuse(let reason):
                return ending(.permanent(reason: ResponseRule.Reason.refusedByVendorRules), reason)
            }
        }
        return Ending(
            outcome: .permanent(reason: ResponseRule.Reason.renderFailed),
            detail: "the step chained more than \(DeliveryStep.maxLinks) requests", policy: planned.policy.retry, followUp: followUp,
            plannedObjectID: planned.context.followUp?.objectID, planned: planned)
    }

    /// Waits for the pacing slot of a step's next link: the attempt already holds its delivery,
    /// so it waits (in bounded naps) rather than put it back halfway through.
    private func waitForSlot(_ planned: PlannedSend) async {
        for _ in 0..<20 {
            guard
                case .later(let at) = (try? await pace(key: planned.target.pacingKey, policy: planned.policy.pacing))
                    ?? .later(at: clock().addingTimeInterval(0.5))
            else { return }
            try? await Task.sleep(for: .seconds(min(max(at.timeIntervalSince(clock()), 0.05), 5)))
        }
    }

    /// Waits for the key's pacing slot when it comes within `maxPacingWait`, then for the send's
    /// own moment (`admit`); `.later` when either is further off. A worker never holds its
    /// dispatcher slot (and lease) in a wait of unknown length: past `maxPacingWait` of admission
    /// waits it gives its delivery back to the queue (review F8).
    private func pace(key: String, policy: PacingPolicy) async throws -> PacingDecision {
        let decision = try await pacer.reserve(key: key, policy: policy, now: clock(), maxWait: Self.maxPacingWait)
        guard case .go(let wait) = decision else { return decision }
        if wait > .zero { try? await Task.sleep(for: wait) }
        // Slots are kept as sends, not as wake-ups: late sleepers are spaced again.
        var waited = Duration.zero
        var extra = try await pacer.admit(key: key, policy: policy, now: clock())
        while extra > .zero {
            waited += extra
            if waited > Self.maxPacingWait { return .later(at: clock().addingTimeInterval(extra.seconds)) }
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
            logger.error(
                "could not record the vendor's pause in the shared budget", metadata: ["error": "\(redactor.redact(String(describing: error)))"])
        }
        metrics.targetPaused(name, until: until)
    }

    struct Attempt {
        let claim: ClaimedDelivery
        let logger: AttemptLogger
        var startedAt: Date
        var status: Int?
        var latency: Duration = .zero
        /// When the claim that leased this delivery began (this process's monotonic clock).
        var leasedAt: ContinuousClock.Instant = .now
    }

    /// Record: the retry policy turns the outcome into a transition; the attempt, the new state
    /// and any follow-up state are committed together, and the lane's next delivery, when due, is
    /// leased to this worker in the same transaction.
    func record(_ attempt: inout Attempt, _ ending: Ending) async -> (ClaimedDelivery, ContinuousClock.Instant)? {
        let (outcome, detail, policy, followUp, explicit) = (ending.outcome, ending.detail, ending.policy, ending.followUp, ending.transition)
        let claim = attempt.claim
        let logger = attempt.logger
        let now = clock()
        let throttled: Bool
        if case .retry(_, let reason) = outcome { throttled = reason.isRateLimit } else { throttled = false }
        let failures = claim.attempt - claim.throttles - (throttled ? 1 : 0)
        var transition =
            explicit
            ?? policy.transition(
                for: outcome, failures: failures, age: .seconds(now.timeIntervalSince(claim.createdAt)),
                now: now, random: random())
        // A live message's edit that failed is not tried again when a later delivery of its lane
        // is queued by now: that one edits instead, and the retry would hold it back.
        if case .retry = transition, DeliveryLane(storedName: claim.target).isLive, LiveRole(for: claim.event).isSupersedable,
            (try? await store.laneHasLaterDelivery(than: claim)) == true
        {
            transition = .superseded
        }
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
            logger.warning(
                "send failed; will retry",
                metadata: [
                    "reason": "\(outcome.reason.rawValue)", "http.status": "\(status)", "retry_at": "\(Timestamp.rfc3339(at))",
                ])
        case .dead:
            final = "dead"
            logger.error(
                "delivery is dead: giving up",
                metadata: [
                    "reason": "\(outcome.reason.rawValue)", "http.status": "\(status)", "failures": "\(failures)",
                ])
        case .expired:
            final = "expired"
            logger.notice("delivery expired: no longer useful", metadata: ["detail": "\(detail ?? "")"])
        case .superseded:
            final = "superseded"
            logger.debug("superseded: a later delivery of the live lane edits the message")
        }
        metrics.attempt(kind: claim.targetKind, outcome: final, reason: outcome.reason, latency: attempt.status == nil ? nil : attempt.latency)
        let record = AttemptRecord(
            deliveryID: claim.id, number: claim.attempt, startedAt: attempt.startedAt, latencyMilliseconds: attempt.latency.milliseconds,
            statusCode: attempt.status, outcome: final, reason: outcome.reason.rawValue, responseExcerpt: detail.map(redactor.redact)
        )
        // While stopping, take nothing new: the lane's next delivery stays queued.
        let lease = Task.isShuttingDownGracefully ? nil : settings.lease
        // Only kinds that keep one vendor object per maintenance create objects; for the others
        // (an e-mail thread id, a summary's named servers) the state is never "a new object".
        // A live message is such an object too: a posted message's id survives a lost lease.
        let isLive = DeliveryLane(storedName: claim.target).isLive
        let keepsObject = ending.planned.map { isLive || TargetRegistry.traits(of: $0.target.kind)?.keepsMaintenanceObject == true } ?? false
        let update = followUp.map { FollowUpUpdate(state: $0, plannedObjectID: keepsObject ? ending.plannedObjectID : $0.objectID) }
        guard
            let (completion, recordedAt) = await recordWithRetries(
                claim, record: record, transition: transition, update: update,
                throttled: throttled, lease: lease, leasedAt: attempt.leasedAt,
                logger: logger)
        else { return nil }
        if !completion.stillOurs {
            logger.warning(
                "lease expired before the result was recorded; another worker owns this delivery now",
                metadata: update?.createdObject == true ? ["vendor.object": "\(update?.state.objectID ?? "")"] : [:])
        }
        var next = completion.next
        if let extra = completion.extraObject, isLive {
            // Two live messages after overlapping sends (a lost lease): edits go to the one the
            // store kept; the other stays as it was last drawn.
            logger.warning(
                "a second live message was posted while another send held the lane; later edits go to the first",
                metadata: ["vendor.object": "\(extra.objectID ?? "")"])
        } else if let extra = completion.extraObject, let planned = ending.planned {
            // Closing may take a while (pacing, retries): the lane's next delivery goes back to
            // the queue rather than wait out its lease behind it.
            if let held = next {
                _ = try? await store.release(held, until: clock(), at: clock())
                next = nil
            }
            await closeExtraObject(extra, planned: planned, claim: claim, logger: logger)
        }
        return next.map { ($0, recordedAt) }
    }

    /// The longest the record stage keeps trying once the lease has run out, for a send that
    /// created a vendor object: the object is kept even after the lease (`FollowUpResolution`),
    /// so the store gets every chance to learn it before anything creates a second one.
    static let maxObjectRecordTime: Duration = .seconds(600)

    /// Records the attempt, trying again with backoff when the store fails (SQLite busy past its
    /// timeout, a PostgreSQL restart or failover, no pooled connection in time): the send has
    /// happened, and a result not recorded would have it sent again when the lease runs out.
    /// Tries while the lease has time left; beyond it only for a send that created a vendor
    /// object. Each try is stamped with its own time, so the lane's next delivery, leased by the
    /// try that succeeds, gets a whole lease from then (returned beside the completion). Nil when
    /// every try failed (the lease then runs out and the delivery goes again).
    func recordWithRetries(
        _ claim: ClaimedDelivery, record: AttemptRecord, transition: DeliveryTransition, update: FollowUpUpdate?,
        throttled: Bool, lease: Duration?, leasedAt: ContinuousClock.Instant,
        logger: AttemptLogger
    ) async -> (Completion, ContinuousClock.Instant)? {
        // Stop a little before the lease ends: a record landing after it only adds history.
        let leaseEnds = leasedAt + settings.lease - min(.seconds(2), settings.lease / 10)
        let objectDeadline = ContinuousClock.now + Self.maxObjectRecordTime
        var delay = Duration.milliseconds(50)
        var tries = 0
        while true {
            tries += 1
            let started = ContinuousClock.now
            do {
                let completion = try await store.complete(
                    claim, attempt: record, transition: transition, followUp: update,
                    throttled: throttled, at: clock(), lease: lease)
                if tries > 1 { logger.notice("recorded the attempt after the store failed", metadata: ["tries": "\(tries)"]) }
                return (completion, started)
            } catch {
                let clock = ContinuousClock.now
                let keepTrying = !Task.isCancelled && (clock < leaseEnds || (update?.createdObject == true && clock < objectDeadline))
                var metadata: Logger.Metadata = ["error": "\(redactor.redact(String(describing: error)))", "tries": "\(tries)"]
                if let update, update.createdObject { metadata["vendor.object"] = "\(update.state.objectID ?? "")" }
                guard keepTrying else {
                    if update?.createdObject == true {
                        logger.error(
                            "could not record a vendor object this send created; if a second one appears for this maintenance, close this one by hand",
                            metadata: metadata)
                    } else {
                        logger.error("could not record the attempt; the delivery will be retried when its lease expires", metadata: metadata)
                    }
                    return nil
                }
                if tries == 1 { logger.warning("could not record the attempt; trying again while the lease lasts", metadata: metadata) }
                let jittered = delay.seconds * (0.5 + random())
                try? await Task.sleep(for: .milliseconds(Int64(jittered * 1000)))
                delay = min(delay * 2, .seconds(2))
            }
        }
    }

    /// Closes a vendor object the maintenance does not need through the target's own cancel
    /// path: a send created it while another send, whose lease overlapped (a database stall, a
    /// lost lease), gave the maintenance its object first. Never two open objects for one
    /// maintenance and target; the log names the object either way.
    func closeExtraObject(_ extra: FollowUpState, planned: PlannedSend, claim: ClaimedDelivery, logger: AttemptLogger) async {
        var cancel = claim.event
        cancel.type = .cancelled
        cancel.notice = nil
        cancel.details = ["reason": .string("Duplicate notice: this maintenance is tracked in another \(planned.target.kind) object.")]
        var context = planned.context
        // Only the maintenance's own object is extra; the further objects (a server's silence)
        // may be the very ones the stored state holds.
        var extra = extra
        extra.objects = nil
        context.followUp = extra
        context.encodedEvent = nil
        let metadata: Logger.Metadata = ["vendor.object": "\(extra.objectID ?? "")"]
        let step: DeliveryStep
        do {
            step = try planned.target.plan(cancel, context: context)
        } catch {
            logger.error(
                "an extra vendor object could not be closed (its cancellation did not render); close it by hand",
                metadata: metadata.merging(["error": "\(error)"]) { $1 })
            return
        }
        guard let request = step.firstRequest else {
            let reason: String =
                switch step {
                case .skip(let reason), .refuse(let reason): reason
                case .send, .then: ""
                }
            logger.error(
                "an extra vendor object cannot be closed by the target's cancel path; close it by hand",
                metadata: metadata.merging(["reason": "\(reason)"]) { $1 })
            return
        }
        for attempt in 1...5 {
            // Paced like any send to the vendor: its budget is shared with the other deliveries.
            for _ in 0..<10 {
                guard
                    case .later(let at) = (try? await pace(key: planned.target.pacingKey, policy: planned.policy.pacing))
                        ?? .later(at: clock().addingTimeInterval(1))
                else { break }
                try? await Task.sleep(for: .seconds(min(max(at.timeIntervalSince(clock()), 0.05), 30)))
            }
            let result = await transport.send(request, timeouts: settings.timeouts)
            if case .delivered = planned.target.classify(result, for: request) {
                logger.warning(
                    "closed an extra vendor object through the target's cancel path (a send whose lease overlapped another created it)",
                    metadata: metadata)
                return
            }
            if attempt < 5 { try? await Task.sleep(for: .seconds(Double(attempt * attempt))) }
        }
        logger.error("an extra vendor object could not be closed after 5 tries; close it by hand", metadata: metadata)
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

    func debug(
        _ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata = [:],
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        log(.debug, message(), metadata: metadata(), file: file, function: function, line: line)
    }
    func notice(
        _ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata = [:],
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        log(.notice, message(), metadata: metadata(), file: file, function: function, line: line)
    }
    func warning(
        _ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata = [:],
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        log(.warning, message(), metadata: metadata(), file: file, function: function, line: line)
    }
    func error(
        _ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata = [:],
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        log(.error, message(), metadata: metadata(), file: file, function: function, line: line)
    }

    /// Passes the caller's source location on, so a line points at the stage that wrote it.
    func log(
        _ level: Logger.Level, _ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata,
        file: String, function: String, line: UInt
    ) {
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

/// Where deliveries put back for their pacing slot wait: each at a slot of its own, one
/// interval after the last put back for the same key, rather than all at the next free slot
/// (then every slot, the whole backlog of a paced vendor fell due, was claimed and put back).
/// Per process: with several instances the keys' backlogs interleave, which the shared budget
/// paces all the same.
final class RequeueSpacing: Sendable {
    private let last = Mutex<[String: Date]>([:])

    func slot(for key: String, notBefore earliest: Date, interval: Double) -> Date {
        last.withLock { table in
            if table.count > 4096 { table = table.filter { $0.value > earliest } }
            let slot = max(earliest, (table[key] ?? .distantPast).addingTimeInterval(interval))
            table[key] = slot
            return slot
        }
    }
}
