import Foundation
import PatchbayCore

/// What a renderer may depend on besides the event: everything else would make rendering impure.
public struct RenderContext: Sendable {
    /// The zone chat messages show the window in (the route's), beside UTC.
    public var displayTimeZone: TimeZone
    public var deliveryID: String
    public var now: Date

    public init(displayTimeZone: TimeZone, deliveryID: String, now: Date) {
        self.displayTimeZone = displayTimeZone
        self.deliveryID = deliveryID
        self.now = now
    }
}

public struct RenderError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A configured destination. Each kind lives in its own folder with its config, rendering and
/// response classification.
public protocol DeliveryTarget: Sendable {
    var name: String { get }
    var kind: String { get }
    /// Every credential this target holds, so the redactor can keep them out of logs and the database.
    var secrets: [Secret] { get }
    /// Pure: the same event, context and config always give the same request.
    func render(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> OutboundRequest
    func classify(_ result: Result<TransportResponse, TransportFailure>) -> DeliveryOutcome
}

extension DeliveryTarget {
    public func classify(_ result: Result<TransportResponse, TransportFailure>) -> DeliveryOutcome {
        ResponseRule.classify(result)
    }
}
