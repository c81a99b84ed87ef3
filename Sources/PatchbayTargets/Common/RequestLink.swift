import Foundation
import PatchbayCore

/// One request of a step of several (`DeliveryStep.then`), or a request whose answer decides
/// the one after it: a lookup before a create, so a retry after a kill finds what the earlier
/// attempt made.
public enum RequestLink: Sendable {
    case send(OutboundRequest)
    /// Send `lookup`; `then` reads its answer and names the request to send next, or nil when
    /// none is needed (`skipReason` is then the step's reason if nothing else follows).
    case decide(OutboundRequest, skipReason: String, then: @Sendable (TransportResponse) -> OutboundRequest?)
}

extension DeliveryStep {
    /// `links` as one step, each sent once the one before it was delivered; `.skip(nothingToDo)`
    /// when there are none.
    public static func chain(_ links: ArraySlice<RequestLink>, nothingToDo: String) -> DeliveryStep {
        guard let first = links.first else { return .skip(reason: nothingToDo) }
        let rest = links.dropFirst()
        let continuing: @Sendable (OutboundRequest) -> DeliveryStep = { request in
            rest.isEmpty ? .send(request) : .then(request, next: { _ in chain(rest, nothingToDo: nothingToDo) })
        }
        switch first {
        case .send(let request):
            return continuing(request)
        case .decide(let lookup, let skipReason, let then):
            return .then(
                lookup,
                next: { answer in
                    if let request = then(answer) { return continuing(request) }
                    return rest.isEmpty ? .skip(reason: skipReason) : chain(rest, nothingToDo: nothingToDo)
                })
        }
    }
}
