import Foundation

/// An AWS maintenance-window schedule expression: `cron(...)`, `rate(...)` or `at(...)`.
///
/// The grammar is the one Systems Manager accepts for maintenance windows:
/// - `cron(Minutes Hours Day-of-month Month Day-of-week Year)`, with an optional Seconds field first.
///   Fields take `,` `-` `*` `/`, month names `JAN`–`DEC` and day names `SUN`–`SAT` (1 = SUN),
///   case-insensitive. Day-of-month also takes `L`, `LW` and `15W`; day-of-week takes `6L`/`FRIL`
///   and one `FRI#4`/`5#3` term. Exactly one of day-of-month and day-of-week is `?`. Years run
///   1970–2199. Expressions that can fire twice within 5 minutes are refused.
/// - `rate(N minute|minutes|hour|hours|day|days)`: 1 takes the singular, more the plural; at least
///   5 minutes and at most 3650 days.
/// - `at(yyyy-MM-ddTHH:mm:ss)`: once, at that wall time in the schedule's zone.
///
/// Parsing is pure; ``Schedule`` evaluates an expression in a zone.
public enum ScheduleExpression: Sendable, Hashable, CustomStringConvertible {
    case cron(CronExpression)
    case rate(value: Int, unit: RateUnit)
    /// A wall time in the schedule's zone.
    case at(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int)

    /// Parses `cron(...)`, `rate(...)` or `at(...)`. Errors name the field and the column.
    public static func parse(_ text: String) throws(ScheduleError) -> ScheduleExpression {
        let source = ScheduleText(text)
        let chars = source.chars
        var start = 0
        while start < chars.count, chars[start].isWhitespace { start += 1 }
        var end = chars.count
        while end > start, chars[end - 1].isWhitespace { end -= 1 }
        guard start < end else {
            throw source.error("expression", "is empty; expected cron(...), rate(...) or at(...)", at: 0)
        }
        var open = start
        while open < end, chars[open] != "(" { open += 1 }
        let keyword = String(chars[start..<open]).lowercased()
        guard open < end, keyword == "cron" || keyword == "rate" || keyword == "at" else {
            throw source.error("expression", "expected cron(...), rate(...) or at(...)", at: start)
        }
        guard end - 1 > open, chars[end - 1] == ")" else {
            throw source.error("expression", "is missing the closing )", at: end)
        }
        let body = (open + 1)..<(end - 1)
        for index in body where chars[index] == "(" || chars[index] == ")" {
            throw source.error("expression", "has an unexpected \(chars[index])", at: index)
        }
        switch keyword {
        case "cron":
            return .cron(try CronExpression(parsing: source, body: body, text: String(chars[start..<end])))
        case "rate":
            return try parseRate(source, body: body)
        default:
            return try parseAt(source, body: body)
        }
    }

    /// The expression as AWS writes it: `rate(30 minutes)`, `at(2021-07-07T13:15:30)`, or the
    /// cron expression as it was parsed.
    public var description: String {
        switch self {
        case .cron(let cron):
            return cron.text
        case .rate(let value, let unit):
            return "rate(\(value) \(unit.word(for: value)))"
        case .at(let year, let month, let day, let hour, let minute, let second):
            let local = LocalDateTime(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
            return "at(\(local.formatted))"
        }
    }

    /// The cadence of a `rate()`: `rate(30 minutes)` → 1800 s. Nil for `cron()`, `at()` and values
    /// too large to represent.
    public var interval: Duration? {
        guard case .rate(let value, let unit) = self else { return nil }
        let (seconds, overflow) = value.multipliedReportingOverflow(by: unit.seconds)
        return overflow ? nil : .seconds(seconds)
    }

    /// ``interval`` as a `TimeInterval`.
    public var timeInterval: TimeInterval? {
        guard case .rate(let value, let unit) = self else { return nil }
        return Double(value) * Double(unit.seconds)
    }

    // MARK: - rate() and at()

    private static func parseRate(_ source: ScheduleText, body: Range<Int>) throws(ScheduleError) -> ScheduleExpression {
        let words = source.words(in: body)
        guard words.count == 2 else {
            throw source.error(
                "rate", "expected rate(<value> minute|minutes|hour|hours|day|days)",
                at: words.count > 2 ? words[2].column : (words.first.map { $0.column + $0.chars.count } ?? body.lowerBound))
        }
        let number = words[0]
        let unitWord = words[1]
        // Saturates instead of overflowing: anything past the cap is refused as too large anyway.
        guard let value = scheduleDecimal(number.chars, cap: 1_000_000_000) else {
            throw source.error("rate", "'\(number.string)' is not a whole number", at: number.column)
        }
        let unitText = unitWord.string.lowercased()
        let unit: RateUnit
        switch unitText {
        case "minute", "minutes": unit = .minutes
        case "hour", "hours": unit = .hours
        case "day", "days": unit = .days
        default:
            throw source.error("rate", "'\(unitWord.string)' is not a unit; expected minute(s), hour(s) or day(s)", at: unitWord.column)
        }
        guard value >= 1 else {
            throw source.error("rate", "the value must be at least 1", at: number.column)
        }
        let plural = unitText.hasSuffix("s")
        if value == 1, plural {
            throw source.error("rate", "1 takes the singular unit: rate(1 \(unit.word(for: 1)))", at: unitWord.column)
        }
        if value > 1, !plural {
            throw source.error("rate", "values above 1 take the plural unit: rate(\(value) \(unit.rawValue))", at: unitWord.column)
        }
        if let problem = RateUnit.problem(value: value, unit: unit) {
            throw source.error("rate", problem, at: number.column)
        }
        return .rate(value: value, unit: unit)
    }

    private static func parseAt(_ source: ScheduleText, body: Range<Int>) throws(ScheduleError) -> ScheduleExpression {
        let words = source.words(in: body)
        guard words.count == 1 else {
            throw source.error("at", "expected at(yyyy-MM-ddTHH:mm:ss)", at: words.count > 1 ? words[1].column : body.lowerBound)
        }
        let word = words[0]
        let c = word.chars
        let separators: [(Int, Character)] = [(4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":")]
        for (index, separator) in separators where index >= c.count || c[index] != separator {
            throw source.error("at", "expected yyyy-MM-ddTHH:mm:ss, with '\(separator)' here", at: word.column + min(index, c.count))
        }
        guard c.count == 19 else {
            throw source.error(
                "at", c.count < 19 ? "expected two digits of seconds" : "expected nothing after the seconds",
                at: word.column + min(c.count, 19))
        }
        var parts: [Int] = []
        for (offset, length) in [(0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2)] {
            guard let value = scheduleDecimal(c[offset..<(offset + length)], cap: 10_000) else {
                throw source.error("at", "expected \(length) digits", at: word.column + offset)
            }
            parts.append(value)
        }
        if let problem = atProblem(year: parts[0], month: parts[1], day: parts[2], hour: parts[3], minute: parts[4], second: parts[5]) {
            throw source.error("at", problem.message, at: word.column + problem.offset)
        }
        return .at(year: parts[0], month: parts[1], day: parts[2], hour: parts[3], minute: parts[4], second: parts[5])
    }

    /// What is wrong with an `at()` wall time, and the offset of the part in `yyyy-MM-ddTHH:mm:ss`.
    static func atProblem(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) -> (message: String, offset: Int)? {
        guard (1970...2199).contains(year) else { return ("year \(year) is outside 1970-2199", 0) }
        guard (1...12).contains(month) else { return ("month \(month) is outside 1-12", 5) }
        let length = LocalDateTime.daysInMonth(year: year, month: month)
        guard (1...length).contains(day) else { return ("day \(day) is outside 1-\(length) for that month", 8) }
        guard (0...23).contains(hour) else { return ("hour \(hour) is outside 0-23", 11) }
        guard (0...59).contains(minute) else { return ("minute \(minute) is outside 0-59", 14) }
        guard (0...59).contains(second) else { return ("second \(second) is outside 0-59", 17) }
        return nil
    }

    /// Checks an expression built in code rather than parsed; a parsed one always passes.
    func validate() throws(ScheduleError) {
        switch self {
        case .cron:
            return
        case .rate(let value, let unit):
            if let problem = RateUnit.problem(value: value, unit: unit) {
                throw ScheduleError(field: "rate", message: problem, expression: description, column: 5)
            }
        case .at(let year, let month, let day, let hour, let minute, let second):
            if let problem = Self.atProblem(year: year, month: month, day: day, hour: hour, minute: minute, second: second) {
                throw ScheduleError(field: "at", message: problem.message, expression: description, column: 3 + problem.offset)
            }
        }
    }
}

/// The unit of a `rate()` expression.
public enum RateUnit: String, Sendable, Hashable, CaseIterable {
    case minutes, hours, days

    /// Seconds in one unit.
    public var seconds: Int {
        switch self {
        case .minutes: 60
        case .hours: 3600
        case .days: 86_400
        }
    }

    /// AWS's wording: 1 takes the singular (`1 hour`), more the plural (`5 hours`).
    public func word(for value: Int) -> String {
        value == 1 ? String(rawValue.dropLast()) : rawValue
    }

    /// The smallest value allowed: rates faster than every 5 minutes aren't supported.
    public var minimumValue: Int { self == .minutes ? 5 : 1 }

    /// The largest value allowed: 3650 days' worth.
    public var maximumValue: Int { 3650 * 86_400 / seconds }

    static func problem(value: Int, unit: RateUnit) -> String? {
        if value < 1 { return "the value must be at least 1" }
        if value < unit.minimumValue { return "rates faster than every 5 minutes aren't supported" }
        if value > unit.maximumValue { return "\(value) \(unit.rawValue) is more than the limit of \(unit.maximumValue) (3650 days)" }
        return nil
    }
}

/// A schedule expression that can't be used, with the field at fault and where it starts.
public struct ScheduleError: Error, Sendable, Hashable, CustomStringConvertible {
    /// "minutes", "hours", "day-of-month", "month", "day-of-week", "year", "seconds", "rate", "at",
    /// "offset" or "expression" (the overall shape).
    public var field: String
    public var message: String
    /// The text the column refers to: the expression, or `ScheduleOffset=N` for an offset.
    public var expression: String
    /// 0-based, counted in `Character`s of `expression`.
    public var column: Int

    public init(field: String, message: String, expression: String, column: Int) {
        self.field = field
        self.message = message
        self.expression = expression
        self.column = column
    }

    /// `hours: 25 is out of range 0-23`, then the expression, then a caret under the column.
    public var description: String {
        // Tabs and line breaks would shift the caret; each Character becomes one column.
        let line = String(expression.map { $0.isWhitespace ? " " : $0 })
        let caret = String(repeating: " ", count: max(0, column)) + "^"
        return "\(field): \(message)\n  \(line)\n  \(caret)"
    }
}

// MARK: - Text helpers shared by the parsers

/// The characters of an expression being parsed, for columns and errors.
struct ScheduleText {
    let text: String
    let chars: [Character]

    init(_ text: String) {
        self.text = text
        self.chars = Array(text)
    }

    func error(_ field: String, _ message: String, at column: Int) -> ScheduleError {
        ScheduleError(field: field, message: message, expression: text, column: column)
    }

    /// The runs of non-whitespace in `range`, with their columns.
    func words(in range: Range<Int>) -> [ScheduleWord] {
        var words: [ScheduleWord] = []
        var index = range.lowerBound
        while index < range.upperBound {
            if chars[index].isWhitespace {
                index += 1
                continue
            }
            let start = index
            while index < range.upperBound, !chars[index].isWhitespace { index += 1 }
            words.append(ScheduleWord(chars: Array(chars[start..<index]), column: start))
        }
        return words
    }
}

/// A field of an expression, or a comma-separated term of a field, and its column.
struct ScheduleWord {
    let chars: [Character]
    let column: Int

    var string: String { String(chars) }

    /// The comma-separated terms, empty ones included (they are errors).
    func terms() -> [ScheduleWord] {
        var result: [ScheduleWord] = []
        var current: [Character] = []
        var start = column
        for (offset, char) in chars.enumerated() {
            if char == "," {
                result.append(ScheduleWord(chars: current, column: start))
                current = []
                start = column + offset + 1
            } else {
                current.append(char)
            }
        }
        result.append(ScheduleWord(chars: current, column: start))
        return result
    }
}

/// 0–9 for an ASCII digit.
func scheduleDigit(_ char: Character) -> Int? {
    guard let ascii = char.asciiValue, ascii >= 48, ascii <= 57 else { return nil }
    return Int(ascii - 48)
}

/// A run of ASCII digits as a number, saturating at `cap`; nil when empty or not all digits.
func scheduleDecimal<C: Collection>(_ chars: C, cap: Int) -> Int? where C.Element == Character {
    guard !chars.isEmpty else { return nil }
    var value = 0
    for char in chars {
        guard let digit = scheduleDigit(char) else { return nil }
        value = min(value * 10 + digit, cap)
    }
    return value
}

/// ASCII letters upper-cased; everything else, including non-ASCII letters, unchanged (so
/// columns don't move).
func scheduleUppercased(_ char: Character) -> Character {
    guard let ascii = char.asciiValue, ascii >= 97, ascii <= 122 else { return char }
    return Character(Unicode.Scalar(ascii - 32))
}

func scheduleIsUppercaseLetter(_ char: Character) -> Bool {
    guard let ascii = char.asciiValue else { return false }
    return ascii >= 65 && ascii <= 90
}
