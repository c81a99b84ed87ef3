import Foundation
import Testing

@testable import PatchbayCore

@Suite("RFC 3339 and time zones")
struct TimeTests {
    private func instant(_ text: String) -> Date { Timestamp.parseRFC3339(text)! }

    private func resolve(_ local: String, _ zone: String) -> ZonedTime.Resolution {
        ZonedTime.resolve(LocalDateTime.parse(local)!, in: TimeZone(identifier: zone)!)
    }

    @Test func parsesOffsetsToTheSameInstant() {
        #expect(instant("2026-12-04T00:30:00-08:00") == instant("2026-12-04T08:30:00Z"))
        #expect(instant("2026-12-04T14:00:00+05:30") == instant("2026-12-04T08:30:00Z"))
        #expect(instant("2026-12-04T08:30:00.250Z").timeIntervalSince1970 == instant("2026-12-04T08:30:00Z").timeIntervalSince1970 + 0.25)
    }

    @Test(arguments: [
        "2026-12-04T00:30:00", "2026-12-04", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "yesterday",
        "2026-12-04T00:30:00+25:00", "2026-12-04T24:00:00Z", "",
    ])
    func rejectsWhatIsNotAnInstant(_ text: String) {
        #expect(Timestamp.parseRFC3339(text) == nil)
    }

    @Test func formatsUTCWithZ() {
        #expect(Timestamp.rfc3339(instant("2026-12-04T00:30:00-08:00")) == "2026-12-04T08:30:00Z")
        #expect(Timestamp.rfc3339(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00Z")
        #expect(Timestamp.rfc3339(instant("2024-02-29T23:59:59.5Z")) == "2024-02-29T23:59:59.500Z")
    }

    @Test func pacificWinterAndSummer() {
        #expect(resolve("2026-12-04T00:30:00", "America/Los_Angeles") == .instant(instant("2026-12-04T08:30:00Z")))
        #expect(resolve("2026-07-04T00:30:00", "America/Los_Angeles") == .instant(instant("2026-07-04T07:30:00Z")))
    }

    @Test func springForwardGapIsRefused() {
        // 2026-03-08: clocks jump from 02:00 PST to 03:00 PDT.
        #expect(resolve("2026-03-08T02:30:00", "America/Los_Angeles") == .nonexistent)
        #expect(resolve("2026-03-08T01:59:00", "America/Los_Angeles") == .instant(instant("2026-03-08T09:59:00Z")))
        #expect(resolve("2026-03-08T03:00:00", "America/Los_Angeles") == .instant(instant("2026-03-08T10:00:00Z")))
    }

    @Test func fallBackAmbiguityTakesTheEarlierInstant() {
        // 2026-11-01: 01:30 happens twice, first in PDT (08:30Z), then in PST (09:30Z).
        #expect(resolve("2026-11-01T01:30:00", "America/Los_Angeles") == .instant(instant("2026-11-01T08:30:00Z")))
        #expect(resolve("2026-11-01T02:30:00", "America/Los_Angeles") == .instant(instant("2026-11-01T10:30:00Z")))
    }

    @Test func otherZones() {
        #expect(resolve("2026-12-04T09:30:00", "Europe/Berlin") == .instant(instant("2026-12-04T08:30:00Z")))
        #expect(resolve("2026-07-04T09:30:00", "Europe/Berlin") == .instant(instant("2026-07-04T07:30:00Z")))
        #expect(resolve("2026-12-04T14:00:00", "Asia/Kolkata") == .instant(instant("2026-12-04T08:30:00Z")))
        // Chatham is +13:45 in its summer (December).
        #expect(resolve("2026-12-04T22:15:00", "Pacific/Chatham") == .instant(instant("2026-12-04T08:30:00Z")))
        #expect(resolve("2026-12-04T08:30:00", "UTC") == .instant(instant("2026-12-04T08:30:00Z")))
        // Berlin's own spring-forward gap.
        #expect(resolve("2026-03-29T02:30:00", "Europe/Berlin") == .nonexistent)
    }

    @Test func abbreviationsAreNotZones() {
        #expect(ZonedTime.ianaZone(named: "PST") == nil)
        #expect(ZonedTime.ianaZone(named: "Mars/Olympus") == nil)
        #expect(ZonedTime.ianaZone(named: "America/Los_Angeles") != nil)
        #expect(ZonedTime.ianaZone(named: "UTC") != nil)
    }
}

@Suite("Text from outside in logs and terminals")
struct LogTextTests {
    @Test func controlCharactersAreShownNotSent() {
        #expect(LogText.escape("web-1") == "web-1")
        #expect(LogText.escape("web\r\nFAKE") == "web\\r\\nFAKE")
        #expect(LogText.escape("x\u{1B}[2Jy") == "x\\u{1b}[2Jy")
        #expect(LogText.escape("a\u{85}b\u{7F}") == "a\\u{85}b\\u{7f}")
        #expect(LogText.escape("tab\there") == "tab\\there")
    }

    @Test func timestampsRoundUpAtTheEndOfASecond() {
        #expect(Timestamp.rfc3339(Date(timeIntervalSince1970: 1_796_373_000.9996)) == "2026-12-04T08:30:01Z")
        #expect(Timestamp.rfc3339(Date(timeIntervalSince1970: 1e300)) == "9999-12-31T23:59:59Z", "never traps, clamps")
    }
}
