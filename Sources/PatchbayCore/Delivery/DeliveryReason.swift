/// Why an attempt ended the way it did. Short and fixed: they are metric label values and stored
/// in the attempt history, so they never carry free text (that goes in the attempt's detail).
/// Metrics create one series per case, so a new case is counted from the start.
public enum DeliveryReason: String, Sendable, Hashable, Codable, CaseIterable {
    case delivered
    case rateLimited = "rate_limited"
    case serverError = "server_error"
    case clientError = "client_error"
    case redirect = "redirect_not_followed"
    case timeout
    case connectionFailed = "connection_failed"
    case transportError = "transport_error"
    case renderFailed = "render_failed"
    case unknownTarget = "unknown_target"
    /// The vendor object already reflects the event (a repeated `started`): nothing was sent.
    case nothingToSend = "nothing_to_send"
    /// The vendor cannot do what the event asks (delete a started Pingdom window).
    case refusedByVendorRules = "refused_by_vendor_rules"
    /// No longer useful (a reminder after its window started): marked expired, not sent.
    case expired
    /// The target's address is loopback, private or link-local and the target does not set
    /// `allowPrivateNetworks: true`.
    case destinationNotAllowed = "destination_not_allowed"
    /// The stored event cannot be read back (written by a newer version, or damaged): dead at
    /// once instead of being leased again forever.
    case undecodable = "undecodable_event"
    /// The vendor answered with an object id that is not of the form it uses (a broken or
    /// hostile endpoint): the id is not kept, and never goes into a request path.
    case vendorIDRefused = "vendor_id_refused"
    /// A live message's edit with a later one queued behind it: not sent (`DeliveryState.superseded`).
    case superseded

    /// A rate limit is the vendor being busy, not a failure: it does not use up the retry budget.
    public var isRateLimit: Bool { self == .rateLimited }
}
