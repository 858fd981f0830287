/// A FHIR date, dateTime or instant as the half-open range of milliseconds since the epoch
/// that its precision covers: `2020` is all of that year, `2020-03-04T10:15:00Z` one second.
///
/// Search compares ranges, as the R4 rules for date prefixes require. Values without a time
/// zone are read as UTC.
public struct FHIRDateRange: Sendable, Hashable {
    /// Stand-ins for unbounded ends (an open Period); far outside any real date, and safe
    /// from overflow in both SQLite and PostgreSQL 64-bit integers.
    public static let minimum: Int64 = -9_000_000_000_000_000
    public static let maximum: Int64 = 9_000_000_000_000_000

    /// Inclusive start, in ms since 1970-01-01T00:00:00Z.
    public var low: Int64
    /// Exclusive end.
    public var high: Int64

    public init(low: Int64, high: Int64) {
        self.low = low
        self.high = high
    }

    /// Parses `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, and `YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm]`.
    public init?(parsing text: some StringProtocol) {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ digits: Int) -> Int? {
            guard index + digits <= bytes.count else { return nil }
            var value = 0
            for offset in 0..<digits {
                let byte = bytes[index + offset]
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            index += digits
            return value
        }
        func expect(_ character: Character) -> Bool {
            guard index < bytes.count, bytes[index] == character.asciiValue else { return false }
            index += 1
            return true
        }
        guard let year = number(4) else { return nil }
        if index == bytes.count {
            low = FHIRDateRange.milliseconds(year: year, month: 1, day: 1)
            high = FHIRDateRange.milliseconds(year: year + 1, month: 1, day: 1)
            return
        }
        guard expect("-"), let month = number(2), (1...12).contains(month) else { return nil }
        if index == bytes.count {
            low = FHIRDateRange.milliseconds(year: year, month: month, day: 1)
            high =
                month == 12
                ? FHIRDateRange.milliseconds(year: year + 1, month: 1, day: 1)
                : FHIRDateRange.milliseconds(year: year, month: month + 1, day: 1)
            return
        }
        guard expect("-"), let day = number(2), (1...FHIRDateRange.daysIn(month: month, year: year)).contains(day)
        else { return nil }
        let dayStart = FHIRDateRange.milliseconds(year: year, month: month, day: day)
        if index == bytes.count {
            low = dayStart
            high = dayStart + 86_400_000
            return
        }
        guard expect("T"), let hour = number(2), hour <= 24, expect(":"), let minute = number(2), minute < 60 else {
            return nil
        }
        var second = 0
        var width: Int64 = 60_000
        var fraction: Int64 = 0
        if expect(":") {
            guard let seconds = number(2), seconds <= 60 else { return nil }
            second = seconds
            width = 1000
            if expect(".") {
                var digits = 0
                var value: Int64 = 0
                while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                    if digits < 3 {
                        value = value * 10 + Int64(bytes[index] - 48)
                        digits += 1
                    }
                    index += 1
                }
                guard digits > 0 else { return nil }
                for _ in digits..<3 { value *= 10 }
                fraction = value
                width = 1
            }
        }
        var offsetMinutes = 0
        if expect("Z") {
            offsetMinutes = 0
        } else if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            index += 1
            guard let hours = number(2), expect(":"), let minutes = number(2) else { return nil }
            offsetMinutes = sign * (hours * 60 + minutes)
        }
        guard index == bytes.count else { return nil }
        let local = dayStart + Int64(hour * 3_600_000 + minute * 60_000 + second * 1000) + fraction
        low = local - Int64(offsetMinutes) * 60_000
        high = low + width
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days from the civil date to 1970-01-01 (Howard Hinnant's algorithm), in ms.
    static func milliseconds(year: Int, month: Int, day: Int) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return Int64(era * 146_097 + dayOfEra - 719_468) * 86_400_000
    }

    /// Calendar fields (UTC) of a moment given in ms since the epoch.
    struct CivilTime {
        var year, month, day, hour, minute, second, millisecond, weekday: Int
    }

    static func civil(milliseconds: Int64) -> CivilTime {
        let days = Int(milliseconds.divided(floorBy: 86_400_000))
        let remainder = Int(milliseconds - Int64(days) * 86_400_000)
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let month = mp < 10 ? mp + 3 : mp - 9
        return CivilTime(
            year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month: month, day: dayOfYear - (153 * mp + 2) / 5 + 1,
            hour: remainder / 3_600_000, minute: remainder / 60_000 % 60, second: remainder / 1000 % 60,
            millisecond: remainder % 1000, weekday: ((days % 7) + 7 + 4) % 7)  // 1970-01-01 was a Thursday (4)
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }

    /// Formats ms since the epoch as an instant with millisecond precision, as FHIR's
    /// `meta.lastUpdated` wants it.
    public static func instantString(milliseconds: Int64) -> String {
        let t = civil(milliseconds: milliseconds)
        return "\(pad(t.year, 4))-\(pad(t.month, 2))-\(pad(t.day, 2))T\(pad(t.hour, 2)):\(pad(t.minute, 2)):"
            + "\(pad(t.second, 2)).\(pad(t.millisecond, 3))Z"
    }

    /// Formats ms since the epoch as an HTTP date (RFC 9110 IMF-fixdate), for `Last-Modified`.
    public static func httpDateString(milliseconds: Int64) -> String {
        let t = civil(milliseconds: milliseconds)
        let weekday = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][t.weekday]
        let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][t.month - 1]
        return
            "\(weekday), \(pad(t.day, 2)) \(month) \(t.year) \(pad(t.hour, 2)):\(pad(t.minute, 2)):\(pad(t.second, 2)) GMT"
    }
}

extension Int64 {
    func divided(floorBy divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
