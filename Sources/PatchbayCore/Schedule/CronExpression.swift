import Foundation

/// A parsed `cron(...)` maintenance-window expression: the allowed values of each field, and the
/// day rule (day-of-month or day-of-week, whichever isn't `?`).
///
/// Built only by ``ScheduleExpression/parse(_:)``, so every value is in range. Two expressions
/// that differ only in spelling (`MON-FRI` and `2-6`, extra spaces) are equal.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
    /// Which days of a month fire.
    public enum Days: Sendable, Hashable {
        /// Day-of-month values 1–31; a value past the end of a month doesn't fire in that month.
        case monthDays(Set<Int>)
        /// `L`: the last day of the month.
        case lastDayOfMonth
        /// `LW`: the last weekday (Monday–Friday) of the month.
        case lastWeekdayOfMonth
        /// `15W`: the weekday nearest the 15th, without leaving the month (`1W` on a Saturday the
        /// 1st is Monday the 3rd). Doesn't fire in a month shorter than the day.
        case nearestWeekday(to: Int)
        /// Day-of-week values, 1 = SUN … 7 = SAT.
        case daysOfWeek(Set<Int>)
        /// `6L`, `FRIL`: the last such day of the week in the month.
        case lastDayOfWeek(Int)
        /// `FRI#4`, `5#3`: the nth (1–5) such day of the week; a month without one doesn't fire.
        case nthDayOfWeek(Int, n: Int)
    }

    /// The expression as written, e.g. `cron(0 2 ? * THU#3 *)`.
    public let text: String
    /// The Seconds field's single value; 0 for a six-field expression.
    public let second: Int
    public let minutes: Set<Int>
    public let hours: Set<Int>
    public let days: Days
    /// 1 = JAN … 12 = DEC.
    public let months: Set<Int>
    /// 1970–2199.
    public let years: Set<Int>

    public var description: String { text }

    public static func == (lhs: CronExpression, rhs: CronExpression) -> Bool {
        lhs.second == rhs.second && lhs.minutes == rhs.minutes && lhs.hours == rhs.hours && lhs.days == rhs.days
            && lhs.months == rhs.months && lhs.years == rhs.years
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(second)
        hasher.combine(minutes)
        hasher.combine(hours)
        hasher.combine(days)
        hasher.combine(months)
        hasher.combine(years)
    }

    // MARK: - Parsing

    /// One field's name (as errors report it), range, names and whether `high-low` ranges may wrap
    /// around (`FRI-MON`, `22-2`), as in Quartz.
    struct Field: Sendable {
        let name: String
        let range: ClosedRange<Int>
        let names: [String]
        let wraps: Bool
        let hint: String

        static let seconds = Field(name: "seconds", range: 0...59, names: [], wraps: true, hint: "0-59")
        static let minutes = Field(name: "minutes", range: 0...59, names: [], wraps: true, hint: "0-59")
        static let hours = Field(name: "hours", range: 0...23, names: [], wraps: true, hint: "0-23")
        static let dayOfMonth = Field(name: "day-of-month", range: 1...31, names: [], wraps: true, hint: "1-31")
        static let month = Field(
            name: "month", range: 1...12,
            names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
            wraps: true, hint: "1-12 or JAN-DEC")
        static let dayOfWeek = Field(
            name: "day-of-week", range: 1...7, names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
            wraps: true, hint: "1-7 or SUN-SAT")
        static let year = Field(name: "year", range: 1970...2199, names: [], wraps: false, hint: "1970-2199")
    }

    init(parsing source: ScheduleText, body: Range<Int>, text: String) throws(ScheduleError) {
        let words = source.words(in: body)
        let closing = body.upperBound
        switch words.count {
        case 6, 7:
            break
        case 5:
            throw source.error(
                "year",
                "is missing: cron needs six fields (Minutes Hours Day-of-month Month Day-of-week Year), "
                    + "or seven with Seconds first", at: closing)
        default:
            throw source.error(
                "expression",
                "cron needs six fields (Minutes Hours Day-of-month Month Day-of-week Year), "
                    + "or seven with Seconds first; found \(words.count)", at: words.count > 7 ? words[7].column : closing)
        }
        var second = 0
        if words.count == 7 {
            let values = try Self.values(words[0], .seconds, source)
            guard values.count == 1, let only = values.first else {
                throw source.error("seconds", "more than one value fires more often than every 5 minutes", at: words[0].column)
            }
            second = only
        }
        let fields = Array(words.suffix(6))
        let minutes = try Self.values(fields[0], .minutes, source)
        let hours = try Self.values(fields[1], .hours, source)
        let dayOfMonth = try Self.dayOfMonth(fields[2], source)
        let months = try Self.values(fields[3], .month, source)
        let dayOfWeek = try Self.dayOfWeek(fields[4], source)
        let years = try Self.values(fields[5], .year, source)
        let days: Days
        switch (dayOfMonth, dayOfWeek) {
        case (.none, .none):
            throw source.error("day-of-week", "day-of-month and day-of-week are both ?; give a value in one of them", at: fields[4].column)
        case (.some(let rule), .none):
            days = rule
        case (.none, .some(let rule)):
            days = rule
        case (.some, .some):
            throw source.error("day-of-month", "day-of-month and day-of-week can't both be given; use ? in one of them", at: fields[2].column)
        }
        try Self.checkFrequency(minutes: minutes, hours: hours, field: fields[0], source: source)
        self.text = text
        self.second = second
        self.minutes = minutes
        self.hours = hours
        self.days = days
        self.months = months
        self.years = years
    }

    /// The values of a field made of `,`-separated `*`, `n`, `a-b`, `*/s`, `a/s`, `a-b/s` terms.
    static func values(_ word: ScheduleWord, _ field: Field, _ source: ScheduleText) throws(ScheduleError) -> Set<Int> {
        var values = Set<Int>()
        for term in word.terms() {
            guard !term.chars.isEmpty else {
                throw source.error(field.name, "has an empty value", at: term.column)
            }
            values.formUnion(try Self.term(term, field, source))
        }
        return values
    }

    private static func term(_ term: ScheduleWord, _ field: Field, _ source: ScheduleText) throws(ScheduleError) -> [Int] {
        let c = term.chars.map(scheduleUppercased)
        var index = 0
        let low: Int
        var high: Int
        var isRange = false
        var isStar = false
        if c[0] == "*" {
            low = field.range.lowerBound
            high = field.range.upperBound
            index = 1
            isStar = true
        } else if c[0] == "?" {
            throw source.error(field.name, "? is only allowed as the whole day-of-month or day-of-week field", at: term.column)
        } else {
            low = try Self.value(c, &index, field, term, source)
            high = low
            if index < c.count, c[index] == "-" {
                index += 1
                high = try Self.value(c, &index, field, term, source)
                isRange = true
            }
        }
        var step = 1
        if index < c.count, c[index] == "/" {
            index += 1
            let stepStart = index
            while index < c.count, scheduleDigit(c[index]) != nil { index += 1 }
            let size = field.range.count
            guard let value = scheduleDecimal(c[stepStart..<index], cap: 1_000_000), (1...size).contains(value) else {
                throw source.error(field.name, "/ must be followed by a step of 1-\(size)", at: term.column + stepStart)
            }
            step = value
            // `a/s` runs from a to the end of the field, as in Quartz.
            if !isRange, !isStar { high = field.range.upperBound }
        }
        guard index == c.count else {
            throw source.error(field.name, "has an unexpected '\(term.chars[index])'", at: term.column + index)
        }
        if low <= high {
            return Array(stride(from: low, through: high, by: step))
        }
        guard field.wraps else {
            throw source.error(field.name, "the range \(low)-\(high) runs backwards", at: term.column)
        }
        // A range that wraps around the end of the field: FRI-MON is FRI, SAT, SUN, MON.
        let size = field.range.count
        let span = high - low + size
        var values: [Int] = []
        var offset = 0
        while offset <= span {
            values.append(field.range.lowerBound + (low - field.range.lowerBound + offset) % size)
            offset += step
        }
        return values
    }

    /// A number or a three-letter name at `index`, checked against the field's range.
    private static func value(
        _ c: [Character], _ index: inout Int, _ field: Field, _ term: ScheduleWord,
        _ source: ScheduleText
    ) throws(ScheduleError) -> Int {
        let start = index
        if index < c.count, scheduleDigit(c[index]) != nil {
            while index < c.count, scheduleDigit(c[index]) != nil { index += 1 }
            guard let value = scheduleDecimal(c[start..<index], cap: 1_000_000), field.range.contains(value) else {
                throw source.error(field.name, "\(String(c[start..<index])) is out of range \(field.hint)", at: term.column + start)
            }
            return value
        }
        while index < c.count, index - start < 3, scheduleIsUppercaseLetter(c[index]) { index += 1 }
        guard index > start else {
            let message = index < c.count ? "has an unexpected '\(term.chars[index])'" : "is missing a value"
            throw source.error(field.name, message, at: term.column + start)
        }
        let name = String(c[start..<index])
        guard let position = field.names.firstIndex(of: name) else {
            while index < c.count, scheduleIsUppercaseLetter(c[index]) { index += 1 }
            throw source.error(field.name, "'\(String(term.chars[start..<index]))' is not a valid value (\(field.hint))", at: term.column + start)
        }
        return field.range.lowerBound + position
    }

    /// Day-of-month: `?` (nil), `L`, `LW`, `15W`, or values.
    private static func dayOfMonth(_ word: ScheduleWord, _ source: ScheduleText) throws(ScheduleError) -> Days? {
        let field = Field.dayOfMonth
        let c = word.chars.map(scheduleUppercased)
        if c == ["?"] { return nil }
        if c == ["L"] { return .lastDayOfMonth }
        if c == ["L", "W"] { return .lastWeekdayOfMonth }
        let terms = word.terms()
        if terms.count > 1 {
            for term in terms {
                let t = term.chars.map(scheduleUppercased)
                if t.contains("L") || t.contains("W") || t.contains("?") {
                    throw source.error(field.name, "'\(term.string)' can't be combined with other values", at: term.column)
                }
            }
        }
        if c.count >= 2, c.last == "W" {
            guard let day = scheduleDecimal(c.dropLast(), cap: 1_000_000), field.range.contains(day) else {
                throw source.error(field.name, "W needs one day of the month (1-31) before it, as in 15W", at: word.column)
            }
            return .nearestWeekday(to: day)
        }
        if c.first == "L" {
            throw source.error(field.name, "only L and LW are supported here", at: word.column)
        }
        return .monthDays(try Self.values(word, field, source))
    }

    /// Day-of-week: `?` (nil), `6L`/`FRIL`, one `FRI#4`, `L` (Saturday, as in Quartz), or values.
    private static func dayOfWeek(_ word: ScheduleWord, _ source: ScheduleText) throws(ScheduleError) -> Days? {
        let field = Field.dayOfWeek
        let c = word.chars.map(scheduleUppercased)
        if c == ["?"] { return nil }
        if c == ["L"] { return .daysOfWeek([7]) }
        let terms = word.terms()
        let hashTerms = terms.filter { $0.chars.contains("#") }
        if hashTerms.count > 1 {
            throw source.error(field.name, "only one # expression is allowed", at: hashTerms[1].column)
        }
        if terms.count > 1 {
            for term in terms {
                let t = term.chars.map(scheduleUppercased)
                if t.contains("#") || t.last == "L" || t.contains("?") {
                    throw source.error(field.name, "'\(term.string)' can't be combined with other values", at: term.column)
                }
            }
        }
        if let hash = c.firstIndex(of: "#") {
            var index = 0
            let day = try Self.value(c, &index, field, word, source)
            guard index == hash else {
                throw source.error(field.name, "# needs one day of the week before it, as in FRI#4", at: word.column + index)
            }
            guard let n = scheduleDecimal(c[(hash + 1)...], cap: 1_000_000), (1...5).contains(n) else {
                throw source.error(field.name, "# must be followed by 1-5, as in FRI#4", at: word.column + hash + 1)
            }
            return .nthDayOfWeek(day, n: n)
        }
        if c.count >= 2, c.last == "L" {
            var index = 0
            let day = try Self.value(c, &index, field, word, source)
            guard index == c.count - 1 else {
                throw source.error(field.name, "L needs one day of the week before it, as in 6L or FRIL", at: word.column + index)
            }
            return .lastDayOfWeek(day)
        }
        return .daysOfWeek(try Self.values(word, field, source))
    }

    /// Refuses expressions that can fire twice within 5 minutes. The Seconds field is a single
    /// value, so firings are whole minutes apart: the minutes of an hour must be at least 5 apart,
    /// and so must the last minute of an hour and the first of the next when two consecutive hours
    /// fire (23 and 0 count as consecutive, whatever the days; conservative).
    static func checkFrequency(minutes: Set<Int>, hours: Set<Int>, field: ScheduleWord, source: ScheduleText) throws(ScheduleError) {
        let sorted = minutes.sorted()
        guard let first = sorted.first, let last = sorted.last else { return }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b - a < 5 {
            throw source.error("minutes", "fires more often than every 5 minutes (minutes \(a) and \(b) are \(b - a) apart)", at: field.column)
        }
        let consecutiveHours = hours.contains { hours.contains(($0 + 1) % 24) }
        let gap = 60 - last + first
        if consecutiveHours, gap < 5 {
            throw source.error(
                "minutes", "fires more often than every 5 minutes (minute \(last) and minute \(first) of the next hour are \(gap) apart)",
                at: field.column)
        }
    }
}
