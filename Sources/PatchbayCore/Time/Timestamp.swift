import Foundation

/// RFC 3339 parsing and formatting. Instants are UTC inside Patchbay; offsets and zones are applied
/// only at the edges.
public enum Timestamp {
    /// The instants Patchbay accepts from outside: years 0001 to 9999 in UTC, so every stored time
    /// can be written back as RFC 3339 and converted to whole seconds without trapping.
    public static let earliest = Date(timeIntervalSince1970: -62_135_596_800)
    public static let latest = Date(timeIntervalSince1970: 253_402_300_799)
    public static let supportedRange = earliest...latest

    /// `date` moved into `supportedRange` (a value read back from elsewhere can never trap).
    public static func clamped(_ date: Date) -> Date {
        let seconds = date.timeIntervalSince1970
        guard seconds.isFinite else { return seconds > 0 ? latest : earliest }
        return min(max(date, earliest), latest)
    }

    /// `2026-12-04T08:41:07Z`, always UTC, with fractional seconds only when present. Instants
    /// outside years 0001–9999 are written as the nearest bound.
    public static func rfc3339(_ date: Date) -> String {
        let seconds = clamped(date).timeIntervalSince1970
        var whole = seconds.rounded(.down)
        var millis = Int(((seconds - whole) * 1000).rounded())
        if millis == 1000 {
            // .9996 rounds up to the next second, not down to this one.
            whole += 1
            millis = 0
        }
        let parts = LocalDateTime(utcSeconds: Int64(whole))
        if millis == 0 {
            return parts.formatted + "Z"
        }
        return parts.formatted + "." + LocalDateTime.pad(millis, 3) + "Z"
    }

    /// `2026-12-04T00:30:00-08:00`: the wall time in `zone` with its offset at that instant.
    public static func rfc3339(_ date: Date, in zone: TimeZone) -> String {
        let offset = zone.secondsFromGMT(for: date)
        guard offset != 0 || !["UTC", "GMT", "Etc/UTC", "Etc/GMT"].contains(zone.identifier) else { return rfc3339(date) }
        let seconds = Int64(clamped(date).timeIntervalSince1970.rounded(.down)) + Int64(offset)
        let sign = offset < 0 ? "-" : "+"
        let minutes = abs(offset) / 60
        return LocalDateTime(utcSeconds: seconds).formatted + sign + LocalDateTime.pad(minutes / 60, 2) + ":" + LocalDateTime.pad(minutes % 60, 2)
    }

    /// Parses an RFC 3339 date-time that carries an offset (`Z`, `+05:30`, `-08:00`).
    /// Returns nil for anything else, including a local time without an offset.
    public static func parseRFC3339(_ text: String) -> Date? {
        guard let (local, rest) = LocalDateTime.parsePrefix(text) else { return nil }
        guard let offset = parseOffset(rest) else { return nil }
        return Date(timeIntervalSince1970: Double(local.secondsAsIfUTC - Int64(offset)) + local.fraction)
    }

    /// `Z`, `z`, `+hh:mm`, `-hh:mm` → seconds east of UTC.
    static func parseOffset(_ text: Substring) -> Int? {
        if text == "Z" || text == "z" { return 0 }
        let chars = Array(text)
        guard chars.count == 6, chars[0] == "+" || chars[0] == "-", chars[3] == ":",
            let hours = Int(String(chars[1...2])), let minutes = Int(String(chars[4...5])),
            hours < 24, minutes < 60
        else { return nil }
        let seconds = hours * 3600 + minutes * 60
        return chars[0] == "-" ? -seconds : seconds
    }
}

/// A wall-clock date-time with no zone: `2026-12-04T00:30:00`.
public struct LocalDateTime: Sendable, Hashable, CustomStringConvertible {
    public var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int
    public var fraction: Double = 0

    public init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, fraction: Double = 0) {
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
        self.fraction = fraction
    }

    init(utcSeconds: Int64) {
        // Civil-from-days (Howard Hinnant's algorithm): exact for the proleptic Gregorian calendar.
        let days = Int64((Double(utcSeconds) / 86400).rounded(.down))
        let secondsOfDay = Int(utcSeconds - days * 86400)
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = Int(doy - (153 * mp + 2) / 5 + 1)
        let month = Int(mp < 10 ? mp + 3 : mp - 9)
        let year = Int(yoe + era * 400) + (month <= 2 ? 1 : 0)
        self.init(
            year: year, month: month, day: day,
            hour: secondsOfDay / 3600, minute: (secondsOfDay % 3600) / 60, second: secondsOfDay % 60)
    }

    /// Seconds since the epoch if this wall-clock time were UTC.
    public var secondsAsIfUTC: Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return days * 86400 + Int64(hour * 3600 + minute * 60 + second)
    }

    public var formatted: String {
        "\(Self.pad(year, 4))-\(Self.pad(month, 2))-\(Self.pad(day, 2))T\(Self.pad(hour, 2)):\(Self.pad(minute, 2)):\(Self.pad(second, 2))"
    }

    static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    public var description: String { formatted }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fff]` (a space may stand for `T`) and returns what follows it.
    static func parsePrefix(_ text: String) -> (LocalDateTime, Substring)? {
        let chars = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= chars.count else { return nil }
            var value = 0
            for index in range {
                let c = chars[index]
                guard c >= 48, c <= 57 else { return nil }
                value = value * 10 + Int(c - 48)
            }
            return value
        }
        guard chars.count >= 19, chars[4] == UInt8(ascii: "-"), chars[7] == UInt8(ascii: "-"),
            chars[10] == UInt8(ascii: "T") || chars[10] == UInt8(ascii: "t") || chars[10] == UInt8(ascii: " "),
            chars[13] == UInt8(ascii: ":"), chars[16] == UInt8(ascii: ":"),
            let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
        else { return nil }
        var index = 19
        var fraction = 0.0
        if index < chars.count, chars[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 0.1
            let start = index
            while index < chars.count, chars[index] >= 48, chars[index] <= 57 {
                fraction += Double(chars[index] - 48) * scale
                scale /= 10
                index += 1
            }
            if index == start { return nil }
        }
        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month),
            hour < 24, minute < 60, second < 61
        else { return nil }
        let local = LocalDateTime(
            year: year, month: month, day: day, hour: hour, minute: minute,
            second: min(second, 59), fraction: fraction)
        let rest = String(decoding: chars[index...], as: UTF8.self)
        return (local, Substring(rest))
    }

    /// Parses a local date-time with nothing after it.
    public static func parse(_ text: String) -> LocalDateTime? {
        guard let (local, rest) = parsePrefix(text), rest.isEmpty else { return nil }
        return local
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}
