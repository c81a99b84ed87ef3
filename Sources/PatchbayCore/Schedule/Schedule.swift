import Foundation

/// A maintenance-window schedule evaluated in an IANA zone, as Systems Manager runs it.
///
/// Wall times are read in `timeZone`, like every local window time in Patchbay:
/// - **Spring forward.** A wall time skipped by a daylight-saving gap fires once, at the first
///   instant after the gap: a daily 02:30 in America/Los_Angeles fires on 2026-03-08 at 03:00 PDT
///   (10:00Z), the same instant as 03:00 would. Several skipped times (`*/15` in the 02 hour) fire
///   once between them.
/// - **Fall back.** A wall time repeated by a fall-back change fires once, at the earlier instant
///   (01:30 on 2026-11-01 in Los Angeles is 01:30 PDT, 08:30Z), as ``ZonedTime`` reads it.
/// - **ScheduleOffset** (1–6, cron only) moves each occurrence N days later at the same wall time,
///   so it can land on the other side of a daylight-saving change.
/// - **StartDate**: nothing before it fires. With an offset, an occurrence whose cron time (before
///   the offset) is before the start date is skipped even when the offset would land after it,
///   which is how AWS skips a period whose cron day passed when the window was created.
///   **EndDate**: nothing after it fires. A start date after the end date fires nothing.
/// - **rate()** counts elapsed time from its anchor (the start date, else the `anchor` argument),
///   which is its first occurrence; daylight-saving changes don't move it. Without either, the
///   cadence starts at the date asked about, and there is no latest occurrence.
/// - Cron years end in 2199 and rates stop at 2200-01-01T00:00:00Z, so every search ends.
public struct Schedule: Sendable, Hashable {
    public var expression: ScheduleExpression
    public var timeZone: TimeZone
    /// ScheduleOffset: 1–6 days, cron only.
    public var offsetDays: Int?
    /// Occurrences before it are not produced; anchors `rate()`.
    public var startDate: Date?
    /// Occurrences after it are not produced.
    public var endDate: Date?

    public init(
        expression: ScheduleExpression, timeZone: TimeZone, offsetDays: Int? = nil, startDate: Date? = nil,
        endDate: Date? = nil
    ) throws(ScheduleError) {
        if let offsetDays {
            let text = "ScheduleOffset=\(offsetDays)"
            guard case .cron = expression else {
                throw ScheduleError(
                    field: "offset", message: "ScheduleOffset works only with cron expressions, not \(expression)",
                    expression: text, column: 0)
            }
            guard (1...6).contains(offsetDays) else {
                throw ScheduleError(field: "offset", message: "ScheduleOffset must be 1-6 days", expression: text, column: 15)
            }
        }
        try expression.validate()
        self.expression = expression
        self.timeZone = timeZone
        self.offsetDays = offsetDays
        self.startDate = startDate
        self.endDate = endDate
    }

    /// The first `count` occurrences strictly after `date`, in order (fewer when the schedule ends;
    /// `at()` has one). `rate()` is anchored at `startDate`, or at `anchor` when there is no start date.
    public func occurrences(after date: Date, count: Int, anchor: Date? = nil) -> [Date] {
        guard count > 0 else { return [] }
        switch expression {
        case .cron(let cron):
            return cronOccurrences(cron, after: date.timeIntervalSince1970, count: count)
        case .rate:
            return rateOccurrences(after: date.timeIntervalSince1970, count: count, anchor: anchor)
        case .at:
            guard let instant = atInstant(), instant > date.timeIntervalSince1970 else { return [] }
            return [Date(timeIntervalSince1970: instant)]
        }
    }

    /// The first occurrence strictly after `date`.
    public func next(after date: Date, anchor: Date? = nil) -> Date? {
        occurrences(after: date, count: 1, anchor: anchor).first
    }

    /// The latest occurrence at or before `date` (nil if none), with the same anchoring rule. Used
    /// to attach an agent's event to the occurrence in progress.
    public func latest(atOrBefore date: Date, anchor: Date? = nil) -> Date? {
        switch expression {
        case .cron(let cron):
            return cronLatest(cron, atOrBefore: date.timeIntervalSince1970)
        case .rate:
            return rateLatest(atOrBefore: date.timeIntervalSince1970, anchor: anchor)
        case .at:
            guard let instant = atInstant(), instant <= date.timeIntervalSince1970 else { return nil }
            return Date(timeIntervalSince1970: instant)
        }
    }

    // MARK: - Bounds

    /// 2200-01-01T00:00:00Z: no rate occurrence at or after it.
    static let rateEnd: Double = 7_258_118_400
    /// Dates outside these are clamped before any integer conversion.
    static let searchStart: Int64 = -10 * 86_400
    static let searchEnd: Int64 = 7_258_118_400 + 10 * 86_400
    /// More than any UTC offset (−12:00…+14:00): a wall time this far before a date can't be after it.
    static let offsetMargin: Int64 = 26 * 3600

    private var start: Double? { startDate?.timeIntervalSince1970 }
    private var end: Double? { endDate?.timeIntervalSince1970 }

    /// The offset in days, for cron; 0…6 even if the property was changed after `init`.
    private var shiftDays: Int64 {
        guard case .cron = expression, let offsetDays else { return 0 }
        return Int64(min(max(offsetDays, 0), 6))
    }

    // MARK: - cron

    private func cronOccurrences(_ cron: CronExpression, after: Double, count: Int) -> [Date] {
        guard !after.isNaN else { return [] }
        let shift = shiftDays
        // Begin a day (plus the offset) before the local day of `after` or the start date, whichever
        // is later: nothing earlier can fire after both.
        var from = after
        if let start, start > from { from = start }
        guard from < Double(Self.searchEnd) else { return [] }
        let fromSecond = Int64(max(from, Double(Self.searchStart)).rounded(.down))
        let firstDay = Self.floorDiv(fromSecond + offset(at: fromSecond), 86_400) - shift - 1
        let first = LocalDateTime(utcSeconds: firstDay * 86_400)
        var lastYear = Int.max
        if let end {
            guard end >= Double(Self.searchStart) else { return [] }
            let endSecond = Int64(min(end, Double(Self.searchEnd)).rounded(.down))
            lastYear = LocalDateTime(utcSeconds: endSecond + offset(at: endSecond)).year + 1
        }
        let plan = CronPlan(cron)
        var results: [Date] = []
        var previous = -Double.infinity
        for year in plan.years where year >= first.year {
            if year > lastYear { break }
            for month in plan.months where year > first.year || month >= first.month {
                for day in cron.days.matchingDays(year: year, month: month) {
                    if year == first.year, month == first.month, day < first.day { continue }
                    let baseDay = Self.dayNumber(year: year, month: month, day: day)
                    for time in plan.times {
                        let wall = (baseDay + shift) * 86_400 + time
                        if Double(wall + Self.offsetMargin) <= after { continue }
                        let instant = Double(fireInstant(forWall: wall))
                        if instant <= after || instant <= previous { continue }
                        if let start {
                            let base = shift == 0 ? instant : Double(fireInstant(forWall: baseDay * 86_400 + time))
                            if base < start { continue }
                        }
                        // Instants never decrease as wall times increase, so nothing later is in range.
                        if let end, instant > end { return results }
                        results.append(Date(timeIntervalSince1970: instant))
                        previous = instant
                        if results.count >= count { return results }
                    }
                }
            }
        }
        return results
    }

    private func cronLatest(_ cron: CronExpression, atOrBefore date: Double) -> Date? {
        var limit = date
        if let end, end < limit { limit = end }
        guard !limit.isNaN, limit >= Double(Self.searchStart) else { return nil }
        let shift = shiftDays
        let untilSecond = Int64(min(limit, Double(Self.searchEnd)).rounded(.down))
        let lastDay = Self.floorDiv(untilSecond + offset(at: untilSecond), 86_400) - shift + 1
        let last = LocalDateTime(utcSeconds: lastDay * 86_400)
        let plan = CronPlan(cron)
        for year in plan.years.reversed() where year <= last.year {
            for month in plan.months.reversed() where year < last.year || month <= last.month {
                for day in cron.days.matchingDays(year: year, month: month).reversed() {
                    if year == last.year, month == last.month, day > last.day { continue }
                    let baseDay = Self.dayNumber(year: year, month: month, day: day)
                    for time in plan.times.reversed() {
                        let wall = (baseDay + shift) * 86_400 + time
                        if Double(wall - Self.offsetMargin) > limit { continue }
                        let instant = Double(fireInstant(forWall: wall))
                        if instant > limit { continue }
                        if let start {
                            let base = shift == 0 ? instant : Double(fireInstant(forWall: baseDay * 86_400 + time))
                            // Earlier candidates are earlier still.
                            if base < start { return nil }
                        }
                        return Date(timeIntervalSince1970: instant)
                    }
                }
            }
        }
        return nil
    }

    // MARK: - rate() and at()

    /// The rate's step in seconds, if usable (at least a second, so the arithmetic below is exact).
    private var rateStep: Double? {
        guard let step = expression.timeInterval, step.isFinite, step >= 1 else { return nil }
        return step
    }

    private func rateOccurrences(after: Double, count: Int, anchor: Date?) -> [Date] {
        guard let step = rateStep, !after.isNaN, after < Self.rateEnd else { return [] }
        let origin = (startDate ?? anchor)?.timeIntervalSince1970 ?? after
        guard origin.isFinite, abs(origin) < 1e11 else { return [] }
        var k = after < origin ? 0 : ((after - origin) / step).rounded(.down) + 1
        var tries = 0
        while origin + k * step <= after, tries < 4 {
            k += 1
            tries += 1
        }
        var results: [Date] = []
        while results.count < count {
            let instant = origin + k * step
            if instant >= Self.rateEnd { break }
            if let end, instant > end { break }
            if instant > after { results.append(Date(timeIntervalSince1970: instant)) }
            k += 1
        }
        return results
    }

    private func rateLatest(atOrBefore date: Double, anchor: Date?) -> Date? {
        guard let step = rateStep, let origin = (startDate ?? anchor)?.timeIntervalSince1970, origin.isFinite, abs(origin) < 1e11
        else { return nil }
        var limit = min(date, Self.rateEnd.nextDown)
        if let end, end < limit { limit = end }
        guard !limit.isNaN, limit >= origin else { return nil }
        var k = ((limit - origin) / step).rounded(.down)
        var tries = 0
        while k > 0, origin + k * step > limit, tries < 4 {
            k -= 1
            tries += 1
        }
        return Date(timeIntervalSince1970: origin + k * step)
    }

    /// The `at()` instant, if within the start and end dates.
    private func atInstant() -> Double? {
        guard case .at(let year, let month, let day, let hour, let minute, let second) = expression,
            ScheduleExpression.atProblem(year: year, month: month, day: day, hour: hour, minute: minute, second: second) == nil
        else { return nil }
        let wall = LocalDateTime(year: year, month: month, day: day, hour: hour, minute: minute, second: second).secondsAsIfUTC
        let instant = Double(fireInstant(forWall: wall))
        if let start, instant < start { return nil }
        if let end, instant > end { return nil }
        return instant
    }

    // MARK: - Wall time to instant

    /// Seconds east of UTC in force at `second`.
    private func offset(at second: Int64) -> Int64 {
        Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(second))))
    }

    /// The instant a wall time (seconds as if UTC) fires: the earlier one when repeated, the end of
    /// the gap when skipped.
    func fireInstant(forWall wall: Int64) -> Int64 {
        switch ZonedTime.resolve(LocalDateTime(utcSeconds: wall), in: timeZone) {
        case .instant(let date):
            return Int64(date.timeIntervalSince1970.rounded(.down))
        case .nonexistent:
            return endOfGap(containing: wall)
        }
    }

    /// The first instant whose wall time is later than `wall`, which lies in a spring-forward gap:
    /// the moment the clocks jump.
    private func endOfGap(containing wall: Int64) -> Int64 {
        let before = offset(at: wall - 86_400)
        let after = offset(at: wall + 86_400)
        var low = wall - max(before, after)
        var high = wall - min(before, after)
        // Wall time at `low` is at or before `wall`, at `high` after it.
        guard low + offset(at: low) <= wall, high + offset(at: high) > wall else { return wall - before }
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if middle + offset(at: middle) > wall {
                high = middle
            } else {
                low = middle
            }
        }
        return high
    }

    static func floorDiv(_ value: Int64, _ divisor: Int64) -> Int64 {
        let quotient = value / divisor
        return value % divisor < 0 ? quotient - 1 : quotient
    }

    /// Days since 1970-01-01.
    static func dayNumber(year: Int, month: Int, day: Int) -> Int64 {
        LocalDateTime(year: year, month: month, day: day, hour: 0, minute: 0, second: 0).secondsAsIfUTC / 86_400
    }

    /// 1 = SUN … 7 = SAT. 1970-01-01 was a Thursday.
    static func weekday(ofDay day: Int64) -> Int {
        Int(((day % 7 + 7) % 7 + 4) % 7) + 1
    }
}

/// A cron expression's fields sorted for a search.
private struct CronPlan {
    let years: [Int]
    let months: [Int]
    /// Seconds into the day, ascending.
    let times: [Int64]

    init(_ cron: CronExpression) {
        years = cron.years.sorted()
        months = cron.months.sorted()
        var times: [Int64] = []
        let minutes = cron.minutes.sorted()
        for hour in cron.hours.sorted() {
            for minute in minutes {
                times.append(Int64(hour * 3600 + minute * 60 + cron.second))
            }
        }
        self.times = times
    }
}

extension CronExpression.Days {
    /// The days of `month` in `year` that fire, ascending.
    func matchingDays(year: Int, month: Int) -> [Int] {
        let length = LocalDateTime.daysInMonth(year: year, month: month)
        let firstWeekday = Schedule.weekday(ofDay: Schedule.dayNumber(year: year, month: month, day: 1))
        func weekday(_ day: Int) -> Int { (firstWeekday - 1 + day - 1) % 7 + 1 }
        switch self {
        case .monthDays(let days):
            return days.filter { $0 <= length }.sorted()
        case .lastDayOfMonth:
            return [length]
        case .lastWeekdayOfMonth:
            switch weekday(length) {
            case 7: return [length - 1]
            case 1: return [length - 2]
            default: return [length]
            }
        case .nearestWeekday(let target):
            guard target >= 1, target <= length else { return [] }
            switch weekday(target) {
            case 7: return [target > 1 ? target - 1 : target + 2]
            case 1: return [target < length ? target + 1 : target - 2]
            default: return [target]
            }
        case .daysOfWeek(let weekdays):
            return (1...length).filter { weekdays.contains(weekday($0)) }
        case .lastDayOfWeek(let wanted):
            return [length - ((weekday(length) - wanted) % 7 + 7) % 7]
        case .nthDayOfWeek(let wanted, let n):
            let first = 1 + ((wanted - firstWeekday) % 7 + 7) % 7
            let day = first + 7 * (n - 1)
            return day >= 1 && day <= length ? [day] : []
        }
    }
}
