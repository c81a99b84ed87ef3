import Foundation
import Testing

@testable import PatchbayCore

/// Every expected instant below was worked out by hand and checked with Python's zoneinfo
/// (a brute-force evaluator walking wall-clock days in the zone).
@Suite("Maintenance-window schedule expressions")
struct ScheduleExpressionTests {
    private func instant(_ text: String) -> Date { Timestamp.parseRFC3339(text)! }

    /// The schedule, or nil with a recorded issue when it is refused.
    private func schedule(
        _ text: String, _ zone: String = "UTC", offset: Int? = nil, start: String? = nil,
        end: String? = nil
    ) -> Schedule? {
        do {
            return try Schedule(
                expression: ScheduleExpression.parse(text), timeZone: TimeZone(identifier: zone)!, offsetDays: offset,
                startDate: start.map { instant($0) }, endDate: end.map { instant($0) })
        } catch {
            Issue.record("\(text) was refused: \(error.description)")
            return nil
        }
    }

    private func next(_ schedule: Schedule?, after: String, _ count: Int, anchor: String? = nil) -> [String] {
        guard let schedule else { return ["no schedule"] }
        return schedule.occurrences(after: instant(after), count: count, anchor: anchor.map { instant($0) }).map { Timestamp.rfc3339($0) }
    }

    private func latest(_ schedule: Schedule?, atOrBefore: String, anchor: String? = nil) -> String? {
        guard let schedule else { return "no schedule" }
        return schedule.latest(atOrBefore: instant(atOrBefore), anchor: anchor.map { instant($0) }).map { Timestamp.rfc3339($0) }
    }

    private func refusal(_ text: String) -> ScheduleError? {
        do {
            _ = try ScheduleExpression.parse(text)
            return nil
        } catch {
            return error
        }
    }

    /// The parsed cron expression, or nil with a recorded issue.
    private func cron(_ text: String) -> CronExpression? {
        do {
            guard case .cron(let parsed) = try ScheduleExpression.parse(text) else {
                Issue.record("\(text) is not a cron expression")
                return nil
            }
            return parsed
        } catch {
            Issue.record("\(text) was refused: \(error.description)")
            return nil
        }
    }

    private func parsed(_ text: String) -> ScheduleExpression? {
        do {
            return try ScheduleExpression.parse(text)
        } catch {
            Issue.record("\(text) was refused: \(error.description)")
            return nil
        }
    }

    private let after = "2026-11-20T00:00:00Z"  // a Friday, the third of the month

    // MARK: - aws.md §3.3, valid vectors

    @Test func thirdThursday() throws {  // #1
        #expect(
            next(schedule("cron(0 2 ? * THU#3 *)"), after: after, 3)
                == ["2026-12-17T02:00:00Z", "2027-01-21T02:00:00Z", "2027-02-18T02:00:00Z"])
    }

    @Test func weekdaysAtQuarterPastTen() throws {  // #2
        #expect(
            next(schedule("cron(15 10 ? * MON-FRI *)"), after: after, 3)
                == ["2026-11-20T10:15:00Z", "2026-11-23T10:15:00Z", "2026-11-24T10:15:00Z"])
    }

    @Test func lastDayOfTheMonth() throws {  // #3
        let last = schedule("cron(0 2 L * ? *)")
        #expect(
            next(last, after: after, 4)
                == ["2026-11-30T02:00:00Z", "2026-12-31T02:00:00Z", "2027-01-31T02:00:00Z", "2027-02-28T02:00:00Z"])
        #expect(next(last, after: "2028-02-01T00:00:00Z", 1) == ["2028-02-29T02:00:00Z"])
    }

    @Test func lastFriday() throws {  // #4
        #expect(
            next(schedule("cron(15 10 ? * 6L *)"), after: after, 3)
                == ["2026-11-27T10:15:00Z", "2026-12-25T10:15:00Z", "2027-01-29T10:15:00Z"])
        #expect(cron("cron(15 10 ? * FRIL *)") == cron("cron(15 10 ? * 6L *)"))
    }

    @Test func sevenFieldsWithSeconds() throws {  // #5
        let daily = schedule("cron(24 30 09 ? * * *)")
        #expect(next(daily, after: after, 2) == ["2026-11-20T09:30:24Z", "2026-11-21T09:30:24Z"])
        #expect(cron("cron(24 30 09 ? * * *)")?.second == 24)
    }

    @Test func patchTuesdayPlusTwo() throws {  // #6
        let window = schedule("cron(30 23 ? * TUE#3 *)", offset: 2)
        // Third Tuesdays: 2026-11-17 (its Thursday, the 19th, is past), 2026-12-15, 2027-01-19, 2027-02-16.
        #expect(next(window, after: after, 3) == ["2026-12-17T23:30:00Z", "2027-01-21T23:30:00Z", "2027-02-18T23:30:00Z"])
        #expect(latest(window, atOrBefore: after) == "2026-11-19T23:30:00Z")
    }

    @Test func tuesdayAfternoonInLosAngeles() throws {  // #7
        let window = schedule("cron(0 16 ? * TUE *)", "America/Los_Angeles")
        #expect(next(window, after: after, 2) == ["2026-11-25T00:00:00Z", "2026-12-02T00:00:00Z"])  // PST
        #expect(next(window, after: "2026-06-01T00:00:00Z", 1) == ["2026-06-02T23:00:00Z"])  // PDT
    }

    @Test func rateAnchoredAtATuesdayStart() throws {  // #8
        let weekly = schedule("rate(7 days)", start: "2026-11-03T16:00:00Z")
        #expect(next(weekly, after: after, 3) == ["2026-11-24T16:00:00Z", "2026-12-01T16:00:00Z", "2026-12-08T16:00:00Z"])
        #expect(next(weekly, after: "2026-10-01T00:00:00Z", 2) == ["2026-11-03T16:00:00Z", "2026-11-10T16:00:00Z"])
        #expect(latest(weekly, atOrBefore: after) == "2026-11-17T16:00:00Z")
        #expect(latest(weekly, atOrBefore: "2026-11-03T16:00:00Z") == "2026-11-03T16:00:00Z")
        #expect(latest(weekly, atOrBefore: "2026-11-03T15:59:59Z") == nil)
    }

    @Test func atRunsOnceInItsZone() throws {  // #9
        let once = schedule("at(2021-07-07T13:15:30)", "America/Los_Angeles")
        #expect(next(once, after: "2021-01-01T00:00:00Z", 3) == ["2021-07-07T20:15:30Z"])
        #expect(next(once, after: "2021-07-07T20:15:30Z", 3) == [])
        #expect(latest(once, atOrBefore: after) == "2021-07-07T20:15:30Z")
        #expect(latest(once, atOrBefore: "2021-07-07T20:15:29Z") == nil)
        #expect(next(schedule("at(2021-07-07T13:15:30)"), after: "2021-01-01T00:00:00Z", 1) == ["2021-07-07T13:15:30Z"])
        #expect(next(schedule("at(2021-07-07T13:15:30)", end: "2021-07-01T00:00:00Z"), after: "2021-01-01T00:00:00Z", 1) == [])
    }

    @Test func nearestWeekdayToThe15th() throws {  // #10
        // 2026-08-15 is a Saturday (→ Friday 14th), 2026-11-15 a Sunday (→ Monday 16th).
        #expect(
            next(schedule("cron(0 9 15W * ? *)"), after: "2026-07-01T00:00:00Z", 6)
                == [
                    "2026-07-15T09:00:00Z", "2026-08-14T09:00:00Z", "2026-09-15T09:00:00Z", "2026-10-15T09:00:00Z",
                    "2026-11-16T09:00:00Z", "2026-12-15T09:00:00Z",
                ])
    }

    @Test func associationOnlyLimitsDontApplyToWindows() throws {  // #19, #20
        #expect(
            next(schedule("rate(15 minutes)", start: "2026-11-20T00:07:00Z"), after: "2026-11-20T01:00:00Z", 3)
                == ["2026-11-20T01:07:00Z", "2026-11-20T01:22:00Z", "2026-11-20T01:37:00Z"])
        #expect(
            next(schedule("cron(0 0 ? 1 MON *)"), after: after, 5)
                == [
                    "2027-01-04T00:00:00Z", "2027-01-11T00:00:00Z", "2027-01-18T00:00:00Z", "2027-01-25T00:00:00Z",
                    "2028-01-03T00:00:00Z",
                ])
    }

    // MARK: - aws.md §3.3, refused vectors, and other refusals

    @Test func refusedExpressionsNameTheFieldAndColumn() {
        let cases: [(String, String, Int)] = [
            ("rate(1 hours)", "rate", 7),  // #11
            ("rate(5 hour)", "rate", 7),  // #11
            ("cron(0 2 * * MON *)", "day-of-month", 9),  // #12
            ("cron(0 2 ? * SUN)", "year", 16),  // #13: five fields
            ("cron(0/1 * * * ? *)", "minutes", 5),  // #14
            ("cron(0 25 ? * * *)", "hours", 7),  // #15
            ("cron(0 2 ? * 3#1,6#3 *)", "day-of-week", 17),  // #16: the second # term
            ("cron(0 2 ? * ? *)", "day-of-week", 13),
            ("cron(0 0 1 1 ? 2200)", "year", 15),
            ("cron(0 2 * * ? 2030-2026)", "year", 15),
            ("cron(*/30 0 9 * * ? *)", "seconds", 5),
            ("cron(0,58 * * * ? *)", "minutes", 5),  // 00:58 then 01:00
            ("cron(0,3 9 * * ? *)", "minutes", 5),
            ("cron(0 9 ? XYZ MON *)", "month", 11),
            ("cron(0 2 ? * MON#6 *)", "day-of-week", 17),
            ("cron(0 2 L-2 * ? *)", "day-of-month", 9),
            ("cron(0 2 1,L * ? *)", "day-of-month", 11),
            ("cron(0 0 0 1 * ? * *)", "expression", 19),
            ("cron(60 2 * * ? *)", "minutes", 5),
            ("cron(0 2 32 * ? *)", "day-of-month", 9),
            ("cron(0 2 ? * 8 *)", "day-of-week", 13),
            ("cron(0 2 ? 13 * *)", "month", 11),
            ("cron(0 */0 ? * * *)", "hours", 9),
            ("cronx(0 2 ? * * *)", "expression", 0),
            ("cron(0 2 ? * * *", "expression", 16),
            ("rate(4 minutes)", "rate", 5),
            ("rate(1 minute)", "rate", 5),
            ("rate(0 minutes)", "rate", 5),
            ("rate(3651 days)", "rate", 5),
            ("rate(99999999999999999999999999 minutes)", "rate", 5),
            ("rate(5 weeks)", "rate", 7),
            ("at(2021-13-07T13:15:30)", "at", 8),
            ("at(2021-02-29T13:15:30)", "at", 11),
            ("at(2021-07-07 13:15:30)", "at", 14),
            ("", "expression", 0),
        ]
        for (text, field, column) in cases {
            let error = refusal(text)
            #expect(error?.field == field, "\(text): \(error.map(\.description) ?? "accepted")")
            #expect(error?.column == column, "\(text): \(error.map(\.description) ?? "accepted")")
            #expect(error?.expression == text)
        }
    }

    @Test func errorDescriptionPutsACaretUnderTheField() {
        let error = refusal("cron(0 25 ? * * *)")
        #expect(error?.description == "hours: 25 is out of range 0-23\n  cron(0 25 ? * * *)\n         ^")
    }

    @Test func offsetIsOneToSixDaysAndCronOnly() throws {  // #17, #18
        let thirdTuesday = try ScheduleExpression.parse("cron(30 23 ? * TUE#3 *)")
        let utc = TimeZone(identifier: "UTC")!
        for days in [0, 7] {
            #expect(
                throws: ScheduleError(
                    field: "offset", message: "ScheduleOffset must be 1-6 days", expression: "ScheduleOffset=\(days)",
                    column: 15)
            ) {
                try Schedule(expression: thirdTuesday, timeZone: utc, offsetDays: days)
            }
        }
        for days in 1...6 {
            #expect((try? Schedule(expression: thirdTuesday, timeZone: utc, offsetDays: days)) != nil)
        }
        do {
            _ = try Schedule(expression: ScheduleExpression.parse("rate(7 days)"), timeZone: utc, offsetDays: 2)
            Issue.record("an offset with rate() was accepted")
        } catch {
            #expect(error.field == "offset")
            #expect(error.expression == "ScheduleOffset=2")
            #expect(error.description.hasPrefix("offset: ScheduleOffset works only with cron expressions"))
        }
    }

    @Test func expressionsBuiltInCodeAreCheckedToo() {
        let utc = TimeZone(identifier: "UTC")!
        #expect(throws: ScheduleError.self) { try Schedule(expression: .rate(value: 1, unit: .minutes), timeZone: utc) }
        #expect(throws: ScheduleError.self) { try Schedule(expression: .rate(value: Int.max, unit: .days), timeZone: utc) }
        #expect(throws: ScheduleError.self) {
            try Schedule(expression: .at(year: 2026, month: 2, day: 30, hour: 0, minute: 0, second: 0), timeZone: utc)
        }
    }

    // MARK: - The grammar

    @Test func fieldsAndSpecials() throws {
        let seed = try #require(cron("cron(0 30 0 ? * FRI#4 *)"))
        #expect(seed.second == 0)
        #expect(seed.minutes == Set([30]))
        #expect(seed.hours == Set([0]))
        #expect(seed.days == CronExpression.Days.nthDayOfWeek(6, n: 4))
        #expect(seed.months == Set(1...12))
        #expect(seed.years == Set(1970...2199))

        #expect(cron("cron(*/15 8 * * ? *)")?.minutes == Set([0, 15, 30, 45]))
        #expect(cron("cron(0/20 8 * * ? *)")?.minutes == Set([0, 20, 40]))
        #expect(cron("cron(10-40/10 8 * * ? *)")?.minutes == Set([10, 20, 30, 40]))
        #expect(cron("cron(0 22-2 * * ? *)")?.hours == Set([22, 23, 0, 1, 2]))
        #expect(cron("cron(0 12 ? * FRI-MON *)")?.days == CronExpression.Days.daysOfWeek([6, 7, 1, 2]))
        #expect(cron("cron(0 12 ? * 5#3 *)")?.days == CronExpression.Days.nthDayOfWeek(5, n: 3))
        #expect(cron("cron(0 9 LW * ? *)")?.days == CronExpression.Days.lastWeekdayOfMonth)
        #expect(cron("cron(0 9 1W * ? *)")?.days == CronExpression.Days.nearestWeekday(to: 1))
        #expect(cron("cron(0 9 1,15 * ? 2027/2)")?.years == Set(stride(from: 2027, through: 2199, by: 2)))
        // Names are case-insensitive and equal their numbers; spacing doesn't matter.
        #expect(cron("cron(0 9 ? jan,Mar mon-fri *)") == cron(" cron(0  9 ? 1,3 2-6 *) "))
        // 5 minutes apart, across the hour too, is allowed.
        #expect(cron("cron(0,55 * * * ? *)")?.minutes == Set([0, 55]))
        #expect(cron("cron(0/5 * * * ? *)")?.minutes.count == 12)
        #expect(cron("cron(58 0,23 * * ? *)")?.hours == Set([0, 23]))
    }

    @Test func rateAndAtForms() throws {
        #expect(parsed("rate(1 hour)") == ScheduleExpression.rate(value: 1, unit: .hours))
        #expect(parsed("rate(30 minutes)")?.interval == Duration.seconds(1800))
        #expect(parsed("rate(25 days)")?.timeInterval == TimeInterval(25 * 86_400))
        #expect(parsed("rate(5 minutes)")?.description == "rate(5 minutes)")
        #expect(parsed("rate(3650 days)") == ScheduleExpression.rate(value: 3650, unit: .days))
        #expect(
            parsed("at(2021-07-07T13:15:30)")
                == ScheduleExpression.at(year: 2021, month: 7, day: 7, hour: 13, minute: 15, second: 30))
        #expect(parsed("at(2021-07-07T13:15:30)")?.description == "at(2021-07-07T13:15:30)")
    }

    // MARK: - The seed's schedule and the L / W / # specials

    @Test func seedFourthFridayInLosAngeles() throws {
        let seed = schedule("cron(0 30 0 ? * FRI#4 *)", "America/Los_Angeles")
        #expect(
            next(seed, after: after, 5)
                == [
                    "2026-11-27T08:30:00Z", "2026-12-25T08:30:00Z", "2027-01-22T08:30:00Z", "2027-02-26T08:30:00Z",
                    "2027-03-26T07:30:00Z",
                ])
        #expect(seed?.next(after: instant(after)) == instant("2026-11-27T08:30:00Z"))
        #expect(latest(seed, atOrBefore: "2026-11-27T09:00:00Z") == "2026-11-27T08:30:00Z")
        #expect(latest(seed, atOrBefore: "2026-11-27T08:30:00Z") == "2026-11-27T08:30:00Z")
        #expect(latest(seed, atOrBefore: "2026-11-27T08:29:59Z") == "2026-10-23T07:30:00Z")
    }

    @Test func nearestWeekdayStaysInTheMonth() throws {
        // 2026-08-01 is a Saturday: 1W is Monday the 3rd, not Friday July 31st.
        #expect(
            next(schedule("cron(0 9 1W * ? *)"), after: "2026-07-15T00:00:00Z", 3)
                == ["2026-08-03T09:00:00Z", "2026-09-01T09:00:00Z", "2026-10-01T09:00:00Z"])
    }

    @Test func lastWeekdayOfTheMonth() throws {
        // 2026-10-31 is a Saturday: LW is Friday the 30th.
        #expect(
            next(schedule("cron(0 18 LW * ? *)"), after: "2026-09-15T00:00:00Z", 4)
                == ["2026-09-30T18:00:00Z", "2026-10-30T18:00:00Z", "2026-11-30T18:00:00Z", "2026-12-31T18:00:00Z"])
    }

    @Test func fifthMondaySkipsMonthsWithoutOne() throws {
        #expect(
            next(schedule("cron(0 12 ? * MON#5 *)"), after: "2026-01-01T00:00:00Z", 4)
                == ["2026-03-30T12:00:00Z", "2026-06-29T12:00:00Z", "2026-08-31T12:00:00Z", "2026-11-30T12:00:00Z"])
    }

    @Test func wrappingDayRange() throws {
        #expect(
            next(schedule("cron(0 12 ? * FRI-MON *)"), after: after, 5)
                == [
                    "2026-11-20T12:00:00Z", "2026-11-21T12:00:00Z", "2026-11-22T12:00:00Z", "2026-11-23T12:00:00Z",
                    "2026-11-27T12:00:00Z",
                ])
        #expect(
            next(schedule("cron(10-40/10 8 * * ? *)"), after: after, 5)
                == [
                    "2026-11-20T08:10:00Z", "2026-11-20T08:20:00Z", "2026-11-20T08:30:00Z", "2026-11-20T08:40:00Z",
                    "2026-11-21T08:10:00Z",
                ])
    }

    // MARK: - Years

    @Test func yearBounds() throws {
        #expect(next(schedule("cron(0 0 1 1 ? 1970)"), after: "1969-12-31T00:00:00Z", 2) == ["1970-01-01T00:00:00Z"])
        #expect(next(schedule("cron(0 0 1 1 ? 2199)"), after: after, 2) == ["2199-01-01T00:00:00Z"])
        let past = schedule("cron(0 12 * * ? 2020)")
        #expect(next(past, after: after, 1) == [])
        #expect(past?.next(after: instant(after)) == nil)
        #expect(latest(past, atOrBefore: after) == "2020-12-31T12:00:00Z")
        // Nothing past 2199, however far ahead the question.
        #expect(next(schedule("cron(0 12 * * ? *)"), after: "2199-12-31T12:00:00Z", 1) == [])
        #expect(schedule("cron(0 12 * * ? *)")?.occurrences(after: .distantFuture, count: 1).isEmpty == true)
        #expect(
            next(schedule("rate(1 day)", start: "2199-12-30T00:00:00Z"), after: "2199-12-30T00:00:00Z", 5)
                == ["2199-12-31T00:00:00Z"])
    }

    // MARK: - Offsets, start and end dates

    @Test func offsetKeepsTheWallTimeAcrossDaylightSaving() throws {
        // First Friday 2026-03-06 23:30 PST + 2 days = Sunday 2026-03-08 23:30 PDT.
        #expect(
            next(schedule("cron(30 23 ? * FRI#1 *)", "America/Los_Angeles", offset: 2), after: "2026-02-01T00:00:00Z", 3)
                == ["2026-02-09T07:30:00Z", "2026-03-09T06:30:00Z", "2026-04-06T06:30:00Z"])
    }

    @Test func offsetSkipsAPeriodWhoseCronDayIsBeforeTheStart() throws {
        // 2026-11-17 (third Tuesday) is before the start; its Thursday the 19th would be after.
        let window = schedule("cron(30 23 ? * TUE#3 *)", offset: 2, start: "2026-11-18T00:00:00Z")
        #expect(next(window, after: "2026-11-01T00:00:00Z", 2) == ["2026-12-17T23:30:00Z", "2027-01-21T23:30:00Z"])
    }

    @Test func startAndEndDatesBoundOccurrences() throws {
        let daily = schedule("cron(0 10 * * ? *)", start: "2026-12-01T00:00:00Z", end: "2026-12-03T12:00:00Z")
        #expect(next(daily, after: after, 10) == ["2026-12-01T10:00:00Z", "2026-12-02T10:00:00Z", "2026-12-03T10:00:00Z"])
        #expect(latest(daily, atOrBefore: "2027-01-01T00:00:00Z") == "2026-12-03T10:00:00Z")
        #expect(latest(daily, atOrBefore: "2026-11-30T00:00:00Z") == nil)
        let rate = schedule("rate(1 day)", start: "2026-11-01T06:00:00Z", end: "2026-11-03T06:00:00Z")
        #expect(
            next(rate, after: "2026-10-01T00:00:00Z", 10)
                == ["2026-11-01T06:00:00Z", "2026-11-02T06:00:00Z", "2026-11-03T06:00:00Z"])
        #expect(latest(rate, atOrBefore: "2027-01-01T00:00:00Z") == "2026-11-03T06:00:00Z")
    }

    @Test func rateAnchoring() throws {
        // No start date: the anchor sets the cadence.
        let hourly = schedule("rate(1 hour)")
        #expect(next(hourly, after: after, 2, anchor: "2026-01-01T00:30:00Z") == ["2026-11-20T00:30:00Z", "2026-11-20T01:30:00Z"])
        #expect(latest(hourly, atOrBefore: after, anchor: "2026-01-01T00:30:00Z") == "2026-11-19T23:30:00Z")
        // Neither: the cadence starts at the date asked about, and there is no latest.
        #expect(next(hourly, after: after, 1) == ["2026-11-20T01:00:00Z"])
        #expect(latest(hourly, atOrBefore: after) == nil)
        // A start date wins over the anchor.
        let anchored = schedule("rate(1 hour)", start: "2026-11-19T00:10:00Z")
        #expect(next(anchored, after: after, 1, anchor: "2026-01-01T00:30:00Z") == ["2026-11-20T00:10:00Z"])
        // Elapsed time: a weekly rate from 16:00 PDT runs at 15:00 PST after the change.
        let weekly = schedule("rate(7 days)", "America/Los_Angeles", start: "2026-10-27T16:00:00-07:00")
        #expect(next(weekly, after: "2026-10-28T00:00:00Z", 2) == ["2026-11-03T23:00:00Z", "2026-11-10T23:00:00Z"])
    }

    // MARK: - Daylight saving

    @Test func losAngelesSpringForwardFiresAtTheEndOfTheGap() throws {
        // 2026-03-08: 02:00 PST jumps to 03:00 PDT; 02:30 fires at 03:00 PDT (10:00Z), once.
        let daily = schedule("cron(30 2 * * ? *)", "America/Los_Angeles")
        #expect(
            next(daily, after: "2026-03-06T12:00:00Z", 4)
                == ["2026-03-07T10:30:00Z", "2026-03-08T10:00:00Z", "2026-03-09T09:30:00Z", "2026-03-10T09:30:00Z"])
        #expect(latest(daily, atOrBefore: "2026-03-08T10:00:00Z") == "2026-03-08T10:00:00Z")
        #expect(latest(daily, atOrBefore: "2026-03-08T09:59:59Z") == "2026-03-07T10:30:00Z")
        // Four skipped times in the 02 hour fire once between them.
        #expect(
            next(schedule("cron(*/15 2 * * ? *)", "America/Los_Angeles"), after: "2026-03-07T12:00:00Z", 4)
                == ["2026-03-08T10:00:00Z", "2026-03-09T09:00:00Z", "2026-03-09T09:15:00Z", "2026-03-09T09:30:00Z"])
        #expect(
            next(schedule("at(2026-03-08T02:30:00)", "America/Los_Angeles"), after: "2026-01-01T00:00:00Z", 1)
                == ["2026-03-08T10:00:00Z"])
    }

    @Test func losAngelesFallBackFiresOnceAtTheEarlierInstant() throws {
        // 2026-11-01: 02:00 PDT goes back to 01:00 PST. 02:30 happens once (PST); 01:30 twice (PDT first).
        #expect(
            next(schedule("cron(30 2 * * ? *)", "America/Los_Angeles"), after: "2026-10-30T12:00:00Z", 3)
                == ["2026-10-31T09:30:00Z", "2026-11-01T10:30:00Z", "2026-11-02T10:30:00Z"])
        #expect(
            next(schedule("cron(30 1 * * ? *)", "America/Los_Angeles"), after: "2026-10-30T12:00:00Z", 3)
                == ["2026-10-31T08:30:00Z", "2026-11-01T08:30:00Z", "2026-11-02T09:30:00Z"])
    }

    @Test func berlinSpringForwardAndFallBack() throws {
        let daily = schedule("cron(30 2 * * ? *)", "Europe/Berlin")
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 fires at 03:00 CEST (01:00Z).
        #expect(next(daily, after: "2026-03-27T12:00:00Z", 3) == ["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"])
        // 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 fires once, at 02:30 CEST (00:30Z).
        #expect(next(daily, after: "2026-10-23T12:00:00Z", 3) == ["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"])
        #expect(latest(daily, atOrBefore: "2026-10-25T01:30:00Z") == "2026-10-25T00:30:00Z")
        #expect(
            next(schedule("at(2026-10-25T02:30:00)", "Europe/Berlin"), after: "2026-01-01T00:00:00Z", 1)
                == ["2026-10-25T00:30:00Z"])
    }

    @Test func countsAndOddDates() throws {
        let daily = try #require(schedule("cron(0 10 * * ? *)"))
        #expect(daily.occurrences(after: instant(after), count: 0) == [])
        #expect(daily.occurrences(after: .distantPast, count: 1) == [instant("1970-01-01T10:00:00Z")])
        #expect(daily.latest(atOrBefore: .distantPast) == nil)
        #expect(daily.latest(atOrBefore: .distantFuture) == instant("2199-12-31T10:00:00Z"))
    }
}
