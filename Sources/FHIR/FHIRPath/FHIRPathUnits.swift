import Foundation

/// The UCUM units FHIRPath compares and converts, and its calendar duration keywords.
///
/// Not a UCUM implementation: a table of the common units (mass, length, volume, time,
/// amount, the dimensionless ones) with their factor to a base unit, and products and
/// quotients of two of them (`mg/dL`, `km/h`). Quantities in other units compare only
/// when their units are the same text.
enum FHIRPathUnits {
    /// Singular calendar keywords and their plurals.
    private static let calendarKeywords: [String: String] = [
        "year": "year", "years": "year", "month": "month", "months": "month", "week": "week", "weeks": "week",
        "day": "day", "days": "day", "hour": "hour", "hours": "hour", "minute": "minute", "minutes": "minute",
        "second": "second", "seconds": "second", "millisecond": "millisecond", "milliseconds": "millisecond",
    ]

    /// UCUM codes of the definite durations, by the calendar keyword they stand for in date arithmetic.
    private static let ucumDurations: [String: String] = [
        "a": "year", "mo": "month", "wk": "week", "d": "day", "h": "hour", "min": "minute", "s": "second",
        "ms": "millisecond",
    ]

    static func isCalendarKeyword(_ unit: String) -> Bool { calendarKeywords[unit] != nil }

    /// The singular keyword of a calendar keyword.
    static func singularKeyword(_ unit: String) -> String? { calendarKeywords[unit] }

    /// The calendar component a duration unit (keyword or UCUM code) moves a date by.
    static func calendarUnit(_ unit: String) -> String? { calendarKeywords[unit] ?? ucumDurations[unit] }

    /// Factor to the base unit and the base unit's dimension name.
    private static let atoms: [String: (Decimal, String)] = [
        "g": (1, "g"), "mg": (Decimal(string: "0.001")!, "g"), "ug": (Decimal(string: "0.000001")!, "g"),
        "kg": (1000, "g"), "ng": (Decimal(string: "0.000000001")!, "g"),
        "[lb_av]": (Decimal(string: "453.59237")!, "g"), "[oz_av]": (Decimal(string: "28.349523125")!, "g"),
        "m": (1, "m"), "cm": (Decimal(string: "0.01")!, "m"), "mm": (Decimal(string: "0.001")!, "m"),
        "km": (1000, "m"), "um": (Decimal(string: "0.000001")!, "m"), "[in_i]": (Decimal(string: "0.0254")!, "m"),
        "[ft_i]": (Decimal(string: "0.3048")!, "m"),
        "L": (1, "L"), "l": (1, "L"), "mL": (Decimal(string: "0.001")!, "L"), "dL": (Decimal(string: "0.1")!, "L"),
        "s": (1, "s"), "ms": (Decimal(string: "0.001")!, "s"), "min": (60, "s"), "h": (3600, "s"),
        "d": (86400, "s"), "wk": (604_800, "s"), "mo": (2_629_800, "s"), "a": (31_557_600, "s"),
        "mol": (1, "mol"), "mmol": (Decimal(string: "0.001")!, "mol"), "umol": (Decimal(string: "0.000001")!, "mol"),
        "1": (1, "1"), "%": (Decimal(string: "0.01")!, "1"),
        "Cel": (1, "Cel"), "[degF]": (1, "[degF]"),
        "mm[Hg]": (1, "mm[Hg]"), "kPa": (1, "kPa"),
    ]

    /// The keyword's UCUM code for comparison: seconds and smaller are the same in both
    /// systems; years and months are not definite durations.
    private static let keywordCodes: [String: String] = [
        "week": "wk", "day": "d", "hour": "h", "minute": "min", "second": "s", "millisecond": "ms",
    ]

    /// The value in base units and the base units' dimension (`m2`, `g/L` as `g.L-1`), or nil
    /// when a unit is not known.
    static func canonical(_ quantity: FHIRPathQuantity) -> (Decimal, String)? {
        var unit = quantity.unit
        if let keyword = calendarKeywords[unit] {
            guard let code = keywordCodes[keyword] else { return nil }
            unit = code
        }
        guard unit.count <= 64, let (factor, dimensions) = parseTerm(unit) else { return nil }
        let dimension = dimensions.filter { $0.value != 0 && $0.key != "1" }.sorted { $0.key < $1.key }
            .map { $0.value == 1 ? $0.key : $0.key + String($0.value) }.joined(separator: ".")
        return (quantity.value * factor, dimension)
    }

    /// A product and quotient of known atoms, each with an optional whole exponent
    /// (`mg/dL`, `cm.m`, `m2`, `s-1`): the factor and the exponent of each base unit.
    private static func parseTerm(_ unit: String) -> (Decimal, [String: Int])? {
        var factor: Decimal = 1
        var dimensions: [String: Int] = [:]
        var sign = 1
        var current = ""
        func flush() -> Bool {
            guard !current.isEmpty else { return false }
            var name = current, exponent = 1
            if atoms[name] == nil, let split = name.firstIndex(where: { $0.isNumber || $0 == "-" }),
                let power = Int(name[split...]), abs(power) <= 4
            {
                exponent = power
                name = String(name[..<split])
            }
            guard let (scale, base) = atoms[name] else { return false }
            for _ in 0..<abs(exponent * sign) { factor = exponent * sign > 0 ? factor * scale : factor / scale }
            dimensions[base, default: 0] += exponent * sign
            current = ""
            return true
        }
        for character in unit {
            if character == "." || character == "/" {
                guard flush() else { return nil }
                // UCUM's operators bind left to right: `kg/m.s` is (kg/m).s.
                sign = character == "/" ? -1 : 1
            } else {
                current.append(character)
            }
        }
        guard flush() else { return nil }
        return (factor, dimensions)
    }

    /// -1, 0 or 1, or nil when the units cannot be compared.
    static func compare(_ lhs: FHIRPathQuantity, _ rhs: FHIRPathQuantity) -> Int? {
        let left: (Decimal, String), right: (Decimal, String)
        if lhs.unit == rhs.unit
            || (singularKeyword(lhs.unit) != nil && singularKeyword(lhs.unit) == singularKeyword(rhs.unit))
        {
            left = (lhs.value, ""); right = (rhs.value, "")
        } else {
            guard let l = canonical(lhs), let r = canonical(rhs), l.1 == r.1 else { return nil }
            left = l; right = r
        }
        return left.0 == right.0 ? 0 : (left.0 < right.0 ? -1 : 1)
    }

    /// The quantity in `unit`, when both units are known and of the same dimension.
    static func convert(_ quantity: FHIRPathQuantity, to unit: String) -> FHIRPathQuantity? {
        if quantity.unit == unit { return quantity }
        guard let from = canonical(quantity), let to = canonical(FHIRPathQuantity(value: 1, unit: unit)), from.1 == to.1
        else { return nil }
        return FHIRPathQuantity(value: from.0 / to.0, unit: unit)
    }
}
