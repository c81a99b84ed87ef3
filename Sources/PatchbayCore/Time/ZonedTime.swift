import Foundation

/// Turns a wall-clock time in an IANA zone into an instant, handling daylight-saving transitions:
/// a time skipped by spring-forward does not exist and is refused; a time repeated by fall-back is
/// ambiguous and resolves to the earlier instant (the first occurrence), as documented in the README.
public enum ZonedTime {
    public enum Resolution: Equatable, Sendable {
        case instant(Date)
        /// The wall-clock time falls in a gap (e.g. 02:30 on the spring-forward day).
        case nonexistent
    }

    public static func resolve(_ local: LocalDateTime, in zone: TimeZone) -> Resolution {
        let asUTC = local.secondsAsIfUTC
        // The offsets in force a day either side cover every transition the wall time can touch.
        let probes = [asUTC - 86400, asUTC, asUTC + 86400]
        let offsets = Set(probes.map { zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double($0))) })
        let candidates =
            offsets
            .map { asUTC - Int64($0) }
            .filter { candidate in
                let offset = zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(candidate)))
                return candidate + Int64(offset) == asUTC
            }
            .sorted()
        guard let earliest = candidates.first else { return .nonexistent }
        return .instant(Date(timeIntervalSince1970: Double(earliest) + local.fraction))
    }

    /// An IANA zone by name. `TimeZone(identifier:)` also accepts abbreviations like "PST", which
    /// hide daylight-saving rules, so only names with a slash (plus "UTC"/"GMT") are taken.
    public static func ianaZone(named name: String) -> TimeZone? {
        guard name == "UTC" || name == "GMT" || name.contains("/") else { return nil }
        return TimeZone(identifier: name)
    }
}
