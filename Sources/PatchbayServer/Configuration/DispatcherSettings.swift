import Foundation
import PatchbayCore

/// The `delivery:` section: how the dispatcher claims and sends.
public struct DispatcherSettings: Sendable {
    /// Sends in flight at once, across all targets.
    public var concurrency: Int
    /// How long a claim is held. Always longer than the HTTP timeout, so a live worker is never
    /// robbed of a delivery it is still sending.
    public var lease: Duration
    public var timeouts: TransportTimeouts
    /// How often the queue is checked when nothing wakes the dispatcher.
    public var pollInterval: Duration
    /// Retry policy for every target that sets none of its own; nil keeps each kind's default.
    public var retry: RetryPolicy?
    /// How long shutdown waits for sends in flight.
    public var shutdownGrace: Duration
    /// The longest pause a vendor may ask for (`Retry-After`, Pingdom's `Req-Limit`): a longer one
    /// is cut to this, so a hostile or broken answer cannot freeze a target until 2152.
    public var maxPause: Duration

    public init(
        concurrency: Int = 16, lease: Duration = .seconds(60), timeouts: TransportTimeouts = TransportTimeouts(),
        pollInterval: Duration = .seconds(1), retry: RetryPolicy? = nil, shutdownGrace: Duration = .seconds(10),
        maxPause: Duration = .seconds(3600)
    ) {
        self.maxPause = maxPause
        self.concurrency = concurrency
        self.lease = lease
        self.timeouts = timeouts
        self.pollInterval = pollInterval
        self.retry = retry
        self.shutdownGrace = shutdownGrace
    }

    public init(section: ConfigSection?) {
        guard let section else {
            self.init()
            return
        }
        section.allowOnly(["concurrency", "lease", "connectTimeout", "timeout", "pollInterval", "retry", "shutdownGrace", "maxPause"])
        let concurrency = section.int("concurrency", default: 16, range: 1...256)
        let connect = section.duration("connectTimeout", default: .seconds(5), range: .milliseconds(100)...(.seconds(120)))
        let total = section.duration("timeout", default: .seconds(15), range: .milliseconds(100)...(.seconds(600)))
        var lease = section.duration("lease", default: .seconds(60), range: .seconds(1)...(.seconds(3600)))
        if lease <= total {
            if section.has("lease") {
                section.report("lease", "must be longer than delivery.timeout (\(total)), or a slow send could be claimed twice")
            } else {
                lease = total * 2
            }
        }
        self.init(
            concurrency: concurrency,
            lease: lease,
            timeouts: TransportTimeouts(connect: connect, total: total),
            pollInterval: section.duration("pollInterval", default: .seconds(1), range: .milliseconds(10)...(.seconds(60))),
            retry: section.section("retry").map { RetryPolicy(section: $0, defaults: RetryPolicy()) },
            shutdownGrace: section.duration("shutdownGrace", default: .seconds(10), range: .zero...(.seconds(600))),
            maxPause: section.duration("maxPause", default: .seconds(3600), range: .seconds(1)...(.seconds(7 * 86_400)))
        )
    }
}
