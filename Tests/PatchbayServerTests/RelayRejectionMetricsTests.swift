import PatchbayRelay
import Testing

@testable import PatchbayServer

/// Rejection codes are an enum, so the metric's reasons cannot fall behind them: before, a typed
/// list of strings lacked `body_timeout` and `certificate_fetch_limited`, and both were counted
/// as `other`.
@Suite("Relay rejection codes")
struct RelayRejectionMetricsTests {
    @Test func everyRejectionCodeIsCountedUnderItsOwnReason() {
        let reasons = Set(PatchbayMetrics.relayRejectionReasons)
        for code in RelayRejection.Code.allCases {
            #expect(reasons.contains(code.rawValue), "\(code.rawValue) would be counted as other")
        }
        #expect(reasons.count == PatchbayMetrics.relayRejectionReasons.count, "each reason once")
    }

    @Test func aCodeAnswersWithItsStatusClass() {
        for code in RelayRejection.Code.allCases {
            // 4xx: never accepted; 5xx: SNS and EventBridge retry. Nothing else is an answer here.
            #expect((400..<500).contains(code.status) || code.status == 503, "\(code.rawValue) \(code.status)")
        }
        #expect(RelayRejection(.bodyTooLarge, "body: too large").description == "413 body_too_large: body: too large")
    }
}
