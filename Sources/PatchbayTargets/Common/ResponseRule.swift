import Foundation
import PatchbayCore

/// The rule every target shares for what is worth retrying. A target kind overrides it only where
/// its vendor differs (a Teams 200 that reports a 429 in its body).
public enum ResponseRule {
    /// Short, fixed reasons: they are metric label values, so they must not carry free text.
    public enum Reason {
        public static let delivered = "delivered"
        public static let rateLimited = "rate_limited"
        public static let serverError = "server_error"
        public static let clientError = "client_error"
        public static let redirect = "redirect_not_followed"
        public static let timeout = "timeout"
        public static let connectionFailed = "connection_failed"
        public static let transportError = "transport_error"
        public static let renderFailed = "render_failed"
        public static let unknownTarget = "unknown_target"
        /// The vendor object already reflects the event (a repeated `started`): nothing was sent.
        public static let nothingToSend = "nothing_to_send"
        /// The vendor cannot do what the event asks (delete a started Pingdom window).
        public static let refusedByVendorRules = "refused_by_vendor_rules"
        /// No longer useful (a reminder after its window started): marked expired, not sent.
        public static let expired = "expired"
    }

    public static func classify(_ result: Result<TransportResponse, TransportFailure>, now: Date = Date()) -> DeliveryOutcome {
        switch result {
        case .failure(let failure):
            switch failure.kind {
            case .timeout: return .retry(after: nil, reason: Reason.timeout)
            case .connect: return .retry(after: nil, reason: Reason.connectionFailed)
            case .tls, .other: return .retry(after: nil, reason: Reason.transportError)
            }
        case .success(let response):
            return classify(status: response.status, retryAfter: response.header("Retry-After"), now: now)
        }
    }

    public static func classify(status: Int, retryAfter: String?, now: Date = Date()) -> DeliveryOutcome {
        switch status {
        case 200..<300:
            return .delivered(reason: Reason.delivered)
        case 300..<400:
            return .permanent(reason: Reason.redirect)
        case 408, 425:
            return .retry(after: RetryAfter.parse(retryAfter, now: now), reason: Reason.timeout)
        case 420, 429:
            return .retry(after: RetryAfter.parse(retryAfter, now: now), reason: Reason.rateLimited)
        case 500..<600:
            return .retry(after: RetryAfter.parse(retryAfter, now: now), reason: Reason.serverError)
        default:
            return .permanent(reason: Reason.clientError)
        }
    }
}

/// `Retry-After: 120` or `Retry-After: Wed, 21 Oct 2026 07:28:00 GMT` (RFC 9110 §10.2.3).
public enum RetryAfter {
    public static func parse(_ value: String?, now: Date) -> Duration? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if let seconds = Int(value) {
            return seconds >= 0 ? .seconds(seconds) : nil
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        let delay = date.timeIntervalSince(now)
        return .milliseconds(Int64(max(0, delay) * 1000))
    }
}
