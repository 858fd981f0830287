import Foundation

/// A FHIRPath Date, DateTime or Time with its precision: the components it has, nothing
/// assumed for the rest (`@2014` is a year, not 2014-01-01).
public struct FHIRPathDateTime: Sendable, Equatable {
    /// Which of FHIRPath's three temporal types the value is.
    public enum Kind: Sendable { case date, dateTime, time }

    /// The value's type.
    public var kind: Kind
    /// Year, month, day, hour, minute, second, millisecond; for a Time: hour, minute, second,
    /// millisecond. As many as the value's precision.
    public var parts: [Int]
    /// The offset from UTC in minutes, when the value has one.
    public var offset: Int?

    init(kind: Kind, parts: [Int], offset: Int?) {
        self.kind = kind
        self.parts = parts
        self.offset = offset
    }

    /// Reads `YYYY[-MM[-DD]]`, `YYYY[-MM[-DD]]T[hh[:mm[:ss[.fff]]]][Z|±hh:mm]` or
    /// `hh[:mm[:ss[.fff]]]`; nil when the text is none of them or a component is out of range.
    public init?(parsing text: String, kind: Kind) {
        var scanner = DateScanner(bytes: Array(text.utf8))
        var parts: [Int] = []
        var offset: Int?
        if kind != .time {
            guard let year = scanner.digits(4) else { return nil }
            parts.append(year)
            for _ in 0..<2 where scanner.peek == UInt8(ascii: "-") {
                scanner.index += 1
                guard let value = scanner.digits(2) else { return nil }
                parts.append(value)
            }
            if kind == .date {
                guard scanner.atEnd else { return nil }
            } else if scanner.peek == UInt8(ascii: "T") {
                scanner.index += 1
                if !scanner.atEnd, scanner.peek != UInt8(ascii: "Z"), scanner.peek != UInt8(ascii: "+"),
                    scanner.peek != UInt8(ascii: "-")
                {
                    guard parts.count == 3, scanner.readTime(into: &parts) else { return nil }
                }
                if !scanner.atEnd {
                    // A time zone only after a time of day.
                    guard parts.count >= 4, let parsed = scanner.readOffset() else { return nil }
                    offset = parsed
                }
            }
        } else {
            guard scanner.readTime(into: &parts) else { return nil }
        }
        guard scanner.atEnd, Self.inRange(parts, kind: kind) else { return nil }
        self.init(kind: kind, parts: parts, offset: offset)
    }

    private static func inRange(_ parts: [Int], kind: Kind) -> Bool {
        let limits =
            kind == .time
            ? [(0, 23), (0, 59), (0, 59), (0, 999)]
            : [(1, 9999), (1, 12), (1, 31), (0, 23), (0, 59), (0, 59), (0, 999)]
        for (part, limit) in zip(parts, limits) where part < limit.0 || part > limit.1 { return false }
        if kind != .time, parts.count >= 3, parts[2] > daysIn(year: parts[0], month: parts[1]) { return false }
        return true
    }

    /// The value in FHIR's text form (no `@`).
    public var text: String {
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        var result = ""
        let timeParts: ArraySlice<Int>
        if kind == .time {
            timeParts = parts[...]
        } else {
            result = String(repeating: "0", count: max(0, 4 - String(parts[0]).count)) + String(parts[0])
            if parts.count > 1 { result += "-" + two(parts[1]) }
            if parts.count > 2 { result += "-" + two(parts[2]) }
            timeParts = parts.dropFirst(3)
            if !timeParts.isEmpty { result += "T" }
        }
        for (index, value) in timeParts.enumerated() {
            switch index {
            case 0: result += two(value)
            case 3: result += "." + String(String(1000 + value).dropFirst())
            default: result += ":" + two(value)
            }
        }
        if let offset {
            if offset == 0 {
                result += "Z"
            } else {
                result += (offset < 0 ? "-" : "+") + two(abs(offset) / 60) + ":" + two(abs(offset) % 60)
            }
        }
        return result
    }

    /// The precision in date-time components, seconds and milliseconds counting as one
    /// (FHIRPath compares them as one decimal number of seconds).
    private var comparablePrecision: Int { kind == .time ? min(parts.count, 3) : min(parts.count, 6) }

    /// The components to compare, in UTC when `toUTC`, with seconds and milliseconds merged.
    private func comparableParts(toUTC: Bool) -> [Int] {
        var full = parts
        if toUTC, let offset, kind != .time, parts.count >= 4 {
            while full.count < 7 { full.append(0) }
            let days = Self.daysFromCivil(full[0], full[1], full[2])
            var minutes = days * 1440 + full[3] * 60 + full[4] - offset
            let day = Int((Double(minutes) / 1440).rounded(.down))
            minutes -= day * 1440
            let (year, month, dayOfMonth) = Self.civilFromDays(day)
            full = [year, month, dayOfMonth, minutes / 60, minutes % 60, full[5], full[6]]
            full = Array(full.prefix(parts.count))
        }
        let secondIndex = kind == .time ? 2 : 5
        if full.count > secondIndex {
            let milliseconds = full.count > secondIndex + 1 ? full[secondIndex + 1] : 0
            full = Array(full.prefix(secondIndex)) + [full[secondIndex] * 1000 + milliseconds]
        }
        return full
    }

    /// -1, 0 or 1; nil when the values differ only below the precision one of them has (or
    /// are a Time and a date).
    static func compare(_ lhs: FHIRPathDateTime, _ rhs: FHIRPathDateTime) -> Int? {
        guard (lhs.kind == .time) == (rhs.kind == .time) else { return nil }
        let bothZoned = lhs.offset != nil && rhs.offset != nil
        // One with a time zone and one without: which instant the other is, is unknown.
        if (lhs.offset == nil) != (rhs.offset == nil), lhs.parts.count > 3, rhs.parts.count > 3, lhs.kind != .time {
            return nil
        }
        let left = lhs.comparableParts(toUTC: bothZoned), right = rhs.comparableParts(toUTC: bothZoned)
        for (a, b) in zip(left, right) where a != b { return a < b ? -1 : 1 }
        return lhs.comparablePrecision == rhs.comparablePrecision ? 0 : nil
    }

    /// The value moved by a calendar duration; nil when the unit is not a duration.
    func adding(_ quantity: FHIRPathQuantity) -> FHIRPathDateTime? {
        guard let unit = FHIRPathUnits.calendarUnit(quantity.unit) else { return nil }
        // Only whole units move a date (`+ 7.7 days` adds 7).
        let amount = NSDecimalNumber(decimal: quantity.value).doubleValue.rounded(.towardZero)
        // Past 10,000 years either way the result is out of range anyway; refusing it early
        // keeps the conversions to Int below from trapping.
        guard amount.isFinite,
            abs(amount) < 1e7 || (abs(amount) < 1e12 && unit != "week" && unit != "day" && unit != "hour")
        else { return nil }
        if abs(amount)
            * [
                "year": 3.2e10, "month": 2.7e9, "week": 6.1e8, "day": 8.7e7, "hour": 3.6e6, "minute": 6e4,
                "second": 1e3, "millisecond": 1,
            ][unit, default: 1] > 1e15
        {
            return nil
        }
        var result = self
        let base = kind == .time ? 3 : 0  // index shift: a Time's parts start at the hour
        func index(_ component: Int) -> Int { component - base }
        switch unit {
        case "year", "month":
            guard kind != .time else { return nil }
            var months = Int(amount.rounded(.towardZero)) * (unit == "year" ? 12 : 1)
            if parts.count < 2 { months = (months / 12) * 12 }
            let total = parts[0] * 12 + (parts.count > 1 ? parts[1] - 1 : 0) + months
            result.parts[0] = total / 12
            if parts.count > 1 { result.parts[1] = total % 12 + 1 }
            if parts.count > 2 {
                result.parts[2] = min(parts[2], Self.daysIn(year: result.parts[0], month: result.parts[1]))
            }
            guard (1...9999).contains(result.parts[0]) else { return nil }
            return result
        default:
            let milliseconds: [String: Double] = [
                "week": 604_800_000, "day": 86_400_000, "hour": 3_600_000, "minute": 60_000, "second": 1000,
                "millisecond": 1,
            ]
            var delta = Int((amount * milliseconds[unit]!).rounded(.towardZero))
            // A value without the unit's component moves by whole units it has.
            let smallest: [Int] = [0, 0, 86_400_000, 3_600_000, 60_000, 1000, 1]
            let precision = parts.count + base
            if precision < 3 { return kind == .time ? nil : result }
            delta = (delta / smallest[precision - 1]) * smallest[precision - 1]
            var full = parts
            while full.count + base < 7 { full.append(0) }
            var dayCount = kind == .time ? 0 : Self.daysFromCivil(full[0], full[1], full[2])
            var inDay =
                full[index(3)] * 3_600_000 + full[index(4)] * 60_000 + full[index(5)] * 1000 + full[index(6)] + delta
            let extraDays = Int((Double(inDay) / 86_400_000).rounded(.down))
            inDay -= extraDays * 86_400_000
            dayCount += extraDays
            var newParts: [Int] = []
            if kind != .time {
                let (year, month, day) = Self.civilFromDays(dayCount)
                guard (1...9999).contains(year) else { return nil }
                newParts = [year, month, day]
            }
            newParts += [inDay / 3_600_000, inDay / 60_000 % 60, inDay / 1000 % 60, inDay % 1000]
            result.parts = Array(newParts.prefix(parts.count))
            return result
        }
    }

    // The calendar arithmetic is FHIRDateRange's (search's date ranges): one copy of it.
    static func daysIn(year: Int, month: Int) -> Int { FHIRDateRange.daysIn(month: month, year: year) }

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        Int(FHIRDateRange.milliseconds(year: year, month: month, day: day) / 86_400_000)
    }

    static func civilFromDays(_ days: Int) -> (Int, Int, Int) {
        let civil = FHIRDateRange.civil(milliseconds: Int64(days) * 86_400_000)
        return (civil.year, civil.month, civil.day)
    }
}

/// Reads the digits and separators of a date or time.
private struct DateScanner {
    var bytes: [UInt8]
    var index = 0

    var atEnd: Bool { index >= bytes.count }
    var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func digits(_ count: Int) -> Int? {
        guard index + count <= bytes.count else { return nil }
        var value = 0
        for byte in bytes[index..<index + count] {
            guard byte >= 48, byte <= 57 else { return nil }
            value = value * 10 + Int(byte - 48)
        }
        index += count
        return value
    }

    /// `hh[:mm[:ss[.f+]]]`, appending the hour, minute, second and millisecond it has.
    mutating func readTime(into parts: inout [Int]) -> Bool {
        guard let hour = digits(2) else { return false }
        parts.append(hour)
        for _ in 0..<2 where peek == UInt8(ascii: ":") {
            index += 1
            guard let value = digits(2) else { return false }
            parts.append(value)
        }
        // A fraction only after the seconds (3 parts of a Time, 6 of a DateTime).
        if peek == UInt8(ascii: "."), parts.count % 3 == 0 {
            index += 1
            var fraction = ""
            let start = index
            while let byte = peek, byte >= 48, byte <= 57 {
                fraction.append(Character(UnicodeScalar(byte))); index += 1
            }
            guard index > start else { return false }
            let padded = (fraction + "000").prefix(3)
            parts.append(Int(padded)!)
        }
        return true
    }

    mutating func readOffset() -> Int? {
        guard let sign = peek else { return nil }
        index += 1
        if sign == UInt8(ascii: "Z") { return 0 }
        guard sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-"), let hours = digits(2), peek == UInt8(ascii: ":")
        else { return nil }
        index += 1
        guard let minutes = digits(2), hours <= 14, minutes < 60 else { return nil }
        return (hours * 60 + minutes) * (sign == UInt8(ascii: "-") ? -1 : 1)
    }
}
