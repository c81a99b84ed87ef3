import Foundation
import PatchbayCore

/// The rule every target shares for what is worth retrying. A target kind overrides it only where
/// its vendor differs (a Teams 200 that reports a 429 in its body).
public enum ResponseRule {
    /// The reasons, as a typed enum shared with the store and the metrics.
    public typealias Reason = DeliveryReason

    public static func classify(_ result: Result<TransportResponse, TransportFailure>, now: Date = Date()) -> DeliveryOutcome {
        switch result {
        case .failure(let failure):
            switch failure.kind {
            case .timeout: return .retry(after: nil, reason: Reason.timeout)
            case .connect: return .retry(after: nil, reason: Reason.connectionFailed)
            // Retrying cannot change where the name points for long enough to matter: dead, with why.
            case .refused: return .permanent(reason: Reason.destinationNotAllowed)
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
        if value.allSatisfy(\.isASCIIDigitOrSign) {
            // Any run of digits, however long, is read without trapping; the dispatcher caps
            // the pause at delivery.maxPause.
            guard let seconds = Int(value) else { return value.hasPrefix("-") ? nil : .seconds(Int64.max / 1_000_000_000_000) }
            return seconds >= 0 ? .seconds(seconds) : nil
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        let delay = min(max(0, date.timeIntervalSince(now)), 1e9)
        return .milliseconds(Int64(delay * 1000))
    }
}

extension Character {
    fileprivate var isASCIIDigitOrSign: Bool { ("0"..."9").contains(self) || self == "-" || self == "+" }
}
