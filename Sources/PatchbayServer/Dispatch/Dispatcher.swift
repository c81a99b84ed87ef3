import Foundation
import Logging
import PatchbayCore
import PatchbayTargets
import ServiceLifecycle
import Synchronization

/// Claims due deliveries with a lease, renders each for its target, sends it through the
/// transport and records the attempt. One `Service` in the ServiceGroup: on graceful shutdown it
/// stops claiming and lets sends in flight finish; whatever is left stays due in the store.
public struct Dispatcher: Service, CustomStringConvertible {
    let store: any DeliveryStore
    let targets: [String: any DeliveryTarget]
    let transport: any HTTPTransport
    let settings: DispatcherSettings
    let redactor: Redactor
    let wake: WakeSignal
    let logger: Logger
    let clock: @Sendable () -> Date

    public init(store: any DeliveryStore, targets: [String: any DeliveryTarget], transport: any HTTPTransport,
                settings: DispatcherSettings, redactor: Redactor, wake: WakeSignal, logger: Logger,
                clock: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.targets = targets
        self.transport = transport
        self.settings = settings
        self.redactor = redactor
        self.wake = wake
        self.logger = logger
        self.clock = clock
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
                    // Not cancelled by shutdown: a send in flight finishes and its outcome is recorded.
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

    /// One attempt at one delivery. Never throws: every result, expected or not, is recorded.
    func deliver(_ claim: ClaimedDelivery) async {
        var logger = self.logger
        logger[metadataKey: "delivery.id"] = "\(claim.id)"
        logger[metadataKey: "target.name"] = "\(claim.target)"
        logger[metadataKey: "target.kind"] = "\(claim.targetKind)"
        logger[metadataKey: "event.type"] = "\(claim.event.type.rawValue)"
        logger[metadataKey: "attempt"] = "\(claim.attempt)"

        let startedAt = clock()
        guard let target = targets[claim.target] else {
            await finish(claim, logger: logger, startedAt: startedAt, status: nil, latency: .zero,
                         outcome: .permanent(reason: ResponseRule.Reason.unknownTarget),
                         excerpt: "target '\(claim.target)' is no longer in the configuration")
            return
        }
        let context: RenderContext
        do {
            let (followUp, maintenance) = try await store.maintenanceContext(for: claim.event, target: claim.target)
            context = RenderContext(displayTimeZone: TimeZone(identifier: claim.displayTimeZone) ?? TimeZone(identifier: "UTC")!,
                                    deliveryID: claim.id, now: startedAt, followUp: followUp, maintenance: maintenance,
                                    resources: claim.resources)
        } catch {
            // The lease expires and the delivery is claimed again.
            logger.error("could not read the maintenance state; will retry", metadata: ["error": "\(redactor.redact(String(describing: error)))"])
            return
        }
        let step: DeliveryStep
        do {
            step = try target.plan(claim.event, context: context)
        } catch {
            await finish(claim, logger: logger, startedAt: startedAt, status: nil, latency: .zero,
                         outcome: .permanent(reason: ResponseRule.Reason.renderFailed), excerpt: redactor.redact(error.description))
            return
        }
        let request: OutboundRequest
        switch step {
        case .skip(let reason):
            await finish(claim, logger: logger, startedAt: startedAt, status: nil, latency: .zero,
                         outcome: .delivered(reason: ResponseRule.Reason.nothingToSend), excerpt: reason)
            return
        case .refuse(let reason):
            await finish(claim, logger: logger, startedAt: startedAt, status: nil, latency: .zero,
                         outcome: .permanent(reason: ResponseRule.Reason.refusedByVendorRules), excerpt: reason)
            return
        case .send(let built):
            request = built
        }
        let result = await transport.send(request, timeouts: settings.timeouts)
        let outcome = target.classify(result)
        switch result {
        case .success(let response):
            let followUp = outcome.label == "delivered" ? target.followUp(after: response, event: claim.event, context: context) : nil
            await finish(claim, logger: logger, startedAt: startedAt, status: response.status, latency: response.latency,
                         outcome: outcome, excerpt: excerpt(of: response.body), followUp: followUp)
        case .failure(let failure):
            await finish(claim, logger: logger, startedAt: startedAt, status: nil, latency: failure.latency,
                         outcome: outcome, excerpt: failure.message)
        }
    }

    private func finish(_ claim: ClaimedDelivery, logger: Logger, startedAt: Date, status: Int?, latency: Duration,
                        outcome: DeliveryOutcome, excerpt: String?, followUp: FollowUpState? = nil) async {
        let now = clock()
        let transition: DeliveryTransition
        switch outcome {
        case .delivered:
            transition = .delivered
            if status == nil {
                logger.info("nothing to send; delivery done", metadata: ["detail": "\(redactor.redact(excerpt ?? ""))"])
            } else {
                logger.info("delivered", metadata: ["http.status": "\(status ?? 0)", "latency_ms": "\(Int(latency.milliseconds))"])
            }
        case .retry(let after, let reason):
            let delay = max(after ?? .zero, settings.backoff.delay(afterAttempt: claim.attempt))
            transition = .retry(at: now.addingTimeInterval(delay.seconds))
            logger.warning("send failed; will retry", metadata: [
                "reason": "\(reason)", "http.status": "\(status.map(String.init) ?? "-")", "retry_in_s": "\(Int(delay.seconds))",
            ])
        case .permanent(let reason):
            transition = .dead
            logger.error("send failed permanently; delivery is dead", metadata: [
                "reason": "\(reason)", "http.status": "\(status.map(String.init) ?? "-")",
            ])
        }
        let attempt = AttemptRecord(
            deliveryID: claim.id, number: claim.attempt, startedAt: startedAt, latencyMilliseconds: latency.milliseconds,
            statusCode: status, outcome: outcome.label, reason: outcome.reason, responseExcerpt: excerpt.map(redactor.redact)
        )
        do {
            let stillOurs = try await store.complete(claim, attempt: attempt, transition: transition, followUp: followUp, at: now)
            if !stillOurs {
                logger.warning("lease expired before the result was recorded; another worker owns this delivery now")
            }
        } catch {
            // The lease will expire and the delivery will be claimed again: at-least-once.
            logger.error("could not record the attempt; the delivery will be retried when its lease expires",
                         metadata: ["error": "\(redactor.redact(String(describing: error)))"])
        }
    }

    /// The first 512 bytes of a response, as text.
    private func excerpt(of body: Data) -> String? {
        guard !body.isEmpty else { return nil }
        let text = String(decoding: body.prefix(512), as: UTF8.self)
        return body.count > 512 ? text + "…" : text
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
