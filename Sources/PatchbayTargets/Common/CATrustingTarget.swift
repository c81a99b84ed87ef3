import Foundation
import PatchbayCore

/// Any target whose section sets `caFile`: every request it makes trusts the certificate
/// authorities in that PEM file instead of the system's (an Icinga 2 master's own CA, a
/// webhook receiver behind a company CA). Everything else is the wrapped target's.
public struct CATrustingTarget: DeliveryTarget {
    public let base: any DeliveryTarget
    public let caFile: String

    public init(base: any DeliveryTarget, caFile: String) {
        self.base = base
        self.caFile = caFile
    }

    public var name: String { base.name }
    public var kind: String { base.kind }
    public var secrets: [Secret] { base.secrets }
    public var usesMaintenanceState: Bool { base.usesMaintenanceState }
    public var pacingKey: String { base.pacingKey }
    public var editsMessagesInPlace: Bool { base.editsMessagesInPlace }
    public var defaultPacing: PacingPolicy? { base.defaultPacing }

    public func plan(_ event: PatchEvent, context: RenderContext) throws(RenderError) -> DeliveryStep {
        trusting(try base.plan(event, context: context))
    }

    public func relay(_ message: RelayedMessage, context: RenderContext) throws(RenderError) -> DeliveryStep {
        trusting(try base.relay(message, context: context))
    }

    public func classify(_ result: Result<TransportResponse, TransportFailure>) -> DeliveryOutcome { base.classify(result) }

    public func classify(_ result: Result<TransportResponse, TransportFailure>, for request: OutboundRequest) -> DeliveryOutcome {
        base.classify(result, for: request)
    }

    public func followUp(after response: TransportResponse, to request: OutboundRequest, event: PatchEvent, context: RenderContext) -> FollowUpState?
    {
        base.followUp(after: response, to: request, event: event, context: context)
    }

    public func showsUpdatedPackages(for event: PatchEvent, followUp: FollowUpState?, maintenance: MaintenanceSnapshot) -> Bool {
        base.showsUpdatedPackages(for: event, followUp: followUp, maintenance: maintenance)
    }

    public func pause(after response: TransportResponse) -> Duration? { base.pause(after: response) }

    /// The step with `caFile` on each of its requests, the later links' included.
    func trusting(_ step: DeliveryStep) -> DeliveryStep {
        switch step {
        case .send(let request):
            return .send(trusting(request))
        case .then(let request, let next):
            return .then(trusting(request), next: { [self] answer in next(answer).map(trusting) })
        case .skip, .refuse:
            return step
        }
    }

    private func trusting(_ request: OutboundRequest) -> OutboundRequest {
        var request = request
        request.caFile = caFile
        return request
    }

    /// nil for a readable file of PEM certificates, else why not.
    public static func problem(_ path: String) -> String? {
        guard path.hasPrefix("/") else { return "expected an absolute path to a PEM file, got '\(path)'" }
        guard let data = FileManager.default.contents(atPath: path) else { return "cannot read '\(path)'" }
        guard String(decoding: data.prefix(1 << 20), as: UTF8.self).contains("-----BEGIN CERTIFICATE-----") else {
            return "'\(path)' holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        }
        return nil
    }
}

extension DeliveryTarget {
    /// The configured target itself, under any wrapper the registry put around it.
    public var unwrapped: any DeliveryTarget { (self as? CATrustingTarget)?.base ?? self }
}
