import Foundation

/// FHIRPath's operators: arithmetic, comparison, equality and equivalence, membership and
/// the three-valued logic, with the empty-collection rules of the specification.
enum FHIRPathOperators {
    /// A collection as one Boolean: nil when empty, true for one non-Boolean item
    /// (the specification's singleton evaluation), an error for more than one item.
    static func boolean(_ items: [FHIRPathItem]) throws -> Bool? {
        guard let first = items.first else { return nil }
        guard items.count == 1 else {
            throw FHIRPathError(.execution, "expected a single boolean, got \(items.count) items")
        }
        if case .boolean(let value)? = first.systemValue { return value }
        return true
    }

    static func logic(_ symbol: String, _ lhs: Bool?, _ rhs: Bool?) -> Bool? {
        switch symbol {
        case "and":
            if lhs == false || rhs == false { return false }
            return lhs == true && rhs == true ? true : nil
        case "or":
            if lhs == true || rhs == true { return true }
            return lhs == false && rhs == false ? false : nil
        case "xor":
            guard let lhs, let rhs else { return nil }
            return lhs != rhs
        default:  // implies
            if lhs == false || rhs == true { return true }
            return lhs == true && rhs == false ? false : nil
        }
    }

    /// The single item of an operand, as a System value where it is a primitive.
    static func single(_ items: [FHIRPathItem], _ symbol: String) throws -> FHIRPathItem? {
        guard let first = items.first else { return nil }
        guard items.count == 1 else {
            throw FHIRPathError(.execution, "'\(symbol)' needs single operands, got \(items.count) items")
        }
        return first.systemValue ?? first
    }

    static func apply(_ symbol: String, _ lhs: [FHIRPathItem], _ rhs: [FHIRPathItem]) throws -> [FHIRPathItem] {
        switch symbol {
        case "=": return equals(lhs, rhs).map { [.boolean($0)] } ?? []
        case "!=": return equals(lhs, rhs).map { [.boolean(!$0)] } ?? []
        case "~": return [.boolean(equivalent(lhs, rhs))]
        case "!~": return [.boolean(!equivalent(lhs, rhs))]
        case "in", "contains":
            let (element, collection) = symbol == "in" ? (lhs, rhs) : (rhs, lhs)
            guard let item = element.first else { return [] }
            guard element.count == 1 else { throw FHIRPathError(.execution, "'\(symbol)' needs a single item") }
            return [.boolean(collection.contains { itemEquals(item, $0) == true })]
        case "&":
            let left = try single(lhs, symbol), right = try single(rhs, symbol)
            return [.string((left?.stringForm ?? "") + (right?.stringForm ?? ""))]
        case "<", ">", "<=", ">=":
            guard let left = try single(lhs, symbol), let right = try single(rhs, symbol) else { return [] }
            guard let order = try compare(left, right) else { return [] }
            switch symbol {
            case "<": return [.boolean(order < 0)]
            case ">": return [.boolean(order > 0)]
            case "<=": return [.boolean(order <= 0)]
            default: return [.boolean(order >= 0)]
            }
        default:
            guard let left = try single(lhs, symbol), let right = try single(rhs, symbol) else { return [] }
            return try arithmetic(symbol, left, right).map { [$0] } ?? []
        }
    }

    static func negate(_ items: [FHIRPathItem]) throws -> [FHIRPathItem] {
        guard let item = try single(items, "-") else { return [] }
        switch item {
        case .integer(let value): return [.integer(-value)]
        case .decimal(let value, let scale): return [.decimal(-value, scale: scale)]
        case .quantity(var quantity): quantity.value = -quantity.value; return [.quantity(quantity)]
        default: throw FHIRPathError(.execution, "cannot negate \(FHIRPathTypes.typeName(item).name)")
        }
    }

    static func decimal(_ item: FHIRPathItem) -> Decimal? {
        switch item {
        case .integer(let value): return Decimal(value)
        case .decimal(let value, _): return value
        default: return nil
        }
    }

    /// The digits after the point a number was written with (0 for an Integer).
    static func scale(of item: FHIRPathItem) -> Int {
        if case .decimal(_, let scale) = item { return scale }
        return 0
    }

    /// The digits after the point `value` needs.
    static func naturalScale(_ value: Decimal) -> Int { min(max(0, -value.exponent), 38) }

    /// The decimal's text with at least `scale` digits after the point (`1.50`, not `1.5`).
    static func text(of value: Decimal, scale: Int) -> String {
        var text = value.description
        guard !text.contains("e"), !text.contains("E") else { return text }
        // Counted on the text: Foundation writes a zero as "0" whatever its exponent.
        let places = text.firstIndex(of: ".").map { text.distance(from: $0, to: text.endIndex) - 1 } ?? 0
        guard scale > places else { return text }
        if places == 0 { text += "." }
        return text + String(repeating: "0", count: scale - places)
    }

    /// -1, 0 or 1; nil when the values cannot be ordered for lack of precision or units.
    static func compare(_ left: FHIRPathItem, _ right: FHIRPathItem) throws -> Int? {
        switch (left, right) {
        case (.integer(let a), .integer(let b)): return a == b ? 0 : (a < b ? -1 : 1)
        case (.string(let a), .string(let b)): return a == b ? 0 : (a < b ? -1 : 1)
        case (.date(let a), .date(let b)), (.date(let a), .dateTime(let b)), (.dateTime(let a), .date(let b)),
            (.dateTime(let a), .dateTime(let b)), (.time(let a), .time(let b)):
            return FHIRPathDateTime.compare(a, b)
        case (.quantity(let a), .quantity(let b)):
            guard let order = FHIRPathUnits.compare(a, b) else {
                throw FHIRPathError(.execution, "cannot compare '\(a.unit)' with '\(b.unit)'")
            }
            return order
        default:
            if let a = decimal(left), let b = decimal(right) { return a == b ? 0 : (a < b ? -1 : 1) }
            throw FHIRPathError(
                .execution,
                "cannot compare \(FHIRPathTypes.typeName(left).name) with \(FHIRPathTypes.typeName(right).name)")
        }
    }

    /// `=` on two items: nil when it cannot be decided (dates of different precision).
    static func itemEquals(_ lhs: FHIRPathItem, _ rhs: FHIRPathItem) -> Bool? {
        let left = lhs.systemValue, right = rhs.systemValue
        guard let left, let right else {
            guard case .node(let a) = lhs, case .node(let b) = rhs else { return false }
            return a.value == b.value && (a.value != nil || a.primitiveElement == b.primitiveElement)
        }
        switch (left, right) {
        case (.boolean(let a), .boolean(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.quantity(let a), .quantity(let b)):
            if FHIRPathUnits.calendarUnit(a.unit) != nil, FHIRPathUnits.calendarUnit(b.unit) != nil,
                FHIRPathUnits.isCalendarKeyword(a.unit) != FHIRPathUnits.isCalendarKeyword(b.unit),
                ["year", "month"].contains(FHIRPathUnits.calendarUnit(a.unit)!)
                    || ["year", "month"].contains(FHIRPathUnits.calendarUnit(b.unit)!)
            {
                return nil  // calendar years and months are not UCUM's definite `a` and `mo`
            }
            return FHIRPathUnits.compare(a, b).map { $0 == 0 }
        default:
            do {
                return try compare(left, right).map { $0 == 0 }
            } catch {
                return false  // values of different types are not equal
            }
        }
    }

    static func equals(_ lhs: [FHIRPathItem], _ rhs: [FHIRPathItem]) -> Bool? {
        guard !lhs.isEmpty, !rhs.isEmpty else { return nil }
        guard lhs.count == rhs.count else { return false }
        var undecided = false
        for (a, b) in zip(lhs, rhs) {
            switch itemEquals(a, b) {
            case false?: return false
            case nil: undecided = true
            default: break
            }
        }
        return undecided ? nil : true
    }

    /// `~` on two items: strings ignore case and extra spaces, decimals compare at the
    /// precision of the less precise, dates of different precision are not equivalent.
    static func itemEquivalent(_ lhs: FHIRPathItem, _ rhs: FHIRPathItem) -> Bool {
        guard let left = lhs.systemValue, let right = rhs.systemValue else { return itemEquals(lhs, rhs) == true }
        switch (left, right) {
        case (.string(let a), .string(let b)): return normalized(a) == normalized(b)
        case (.quantity(let a), .quantity(let b)):
            if FHIRPathUnits.compare(a, b) == 0 { return true }
            guard let left = FHIRPathUnits.canonical(a), let right = FHIRPathUnits.canonical(b), left.1 == right.1
            else { return false }
            let scale = min(naturalScale(a.value), naturalScale(b.value))
            let unitScale = min(
                naturalScale(left.0) - naturalScale(a.value), naturalScale(right.0) - naturalScale(b.value))
            return rounded(left.0, scale + max(0, unitScale)) == rounded(right.0, scale + max(0, unitScale))
        case (.decimal, _), (_, .decimal):
            guard let a = decimal(left), let b = decimal(right) else { return false }
            let scale = min(self.scale(of: left), self.scale(of: right))
            return rounded(a, scale) == rounded(b, scale)
        default:
            return itemEquals(left, right) ?? false
        }
    }

    static func rounded(_ value: Decimal, _ scale: Int) -> Decimal {
        var input = value, result = Decimal()
        NSDecimalRound(&result, &input, scale, .plain)
        return result
    }

    private static func normalized(_ text: String) -> String {
        text.lowercased().split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    static func equivalent(_ lhs: [FHIRPathItem], _ rhs: [FHIRPathItem]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var unmatched = rhs
        for item in lhs {
            guard let index = unmatched.firstIndex(where: { itemEquivalent(item, $0) }) else { return false }
            unmatched.remove(at: index)
        }
        return true
    }

    /// The texts of `items` when every one is a string; nil otherwise.
    private static func strings(_ items: [FHIRPathItem]) -> [String]? {
        var texts: [String] = []
        texts.reserveCapacity(items.count)
        for item in items {
            guard case .string(let text)? = item.systemValue else { return nil }
            texts.append(text)
        }
        return texts
    }

    static func union(_ lhs: [FHIRPathItem], _ rhs: [FHIRPathItem], evaluator: FHIRPathEvaluator) throws
        -> [FHIRPathItem]
    {
        try distinct(lhs + rhs, evaluator: evaluator)
    }

    /// The items without repeats (by `=`), in first-seen order. Quadratic (charged per
    /// comparison) except for strings alone, the usual case (sdf-16's ids, que-2's linkIds):
    /// two strings are `=` exactly when their texts are, so a set finds the repeats.
    static func distinct(_ items: [FHIRPathItem], evaluator: FHIRPathEvaluator) throws -> [FHIRPathItem] {
        if items.count > 16, let texts = strings(items) {
            try evaluator.charge(items.count)
            var seen = Set<String>()
            return zip(items, texts).compactMap { item, text in seen.insert(text).inserted ? item : nil }
        }
        var result: [FHIRPathItem] = []
        for item in items {
            try evaluator.charge(result.count + 1)
            if !result.contains(where: { itemEquals(item, $0) == true }) { result.append(item) }
        }
        return result
    }

    private static func arithmetic(_ symbol: String, _ left: FHIRPathItem, _ right: FHIRPathItem) throws
        -> FHIRPathItem?
    {
        switch (symbol, left, right) {
        case ("+", .string(let a), .string(let b)): return .string(a + b)
        case ("+", .integer(let a), .integer(let b)):
            let (sum, overflow) = a.addingReportingOverflow(b)
            return overflow || sum > Int(Int32.max) || sum < Int(Int32.min) ? nil : .integer(sum)
        case ("-", .integer(let a), .integer(let b)):
            let (difference, overflow) = a.subtractingReportingOverflow(b)
            return overflow || difference > Int(Int32.max) || difference < Int(Int32.min) ? nil : .integer(difference)
        case ("*", .integer(let a), .integer(let b)):
            let (product, overflow) = a.multipliedReportingOverflow(by: b)
            return overflow || product > Int(Int32.max) || product < Int(Int32.min) ? nil : .integer(product)
        case ("div", .integer(let a), .integer(let b)): return b == 0 ? nil : .integer(a / b)
        case ("mod", .integer(let a), .integer(let b)): return b == 0 ? nil : .integer(a % b)
        case ("+", .date(let a), .quantity(let q)), ("+", .dateTime(let a), .quantity(let q)),
            ("+", .time(let a), .quantity(let q)):
            return try moved(a, by: q, kindOf: left)
        case ("-", .date(let a), .quantity(var q)), ("-", .dateTime(let a), .quantity(var q)),
            ("-", .time(let a), .quantity(var q)):
            q.value = -q.value
            return try moved(a, by: q, kindOf: left)
        case ("+", .quantity(let a), .quantity(let b)), ("-", .quantity(let a), .quantity(let b)):
            guard let converted = FHIRPathUnits.convert(b, to: a.unit) else { return nil }
            return .quantity(
                FHIRPathQuantity(
                    value: symbol == "+" ? a.value + converted.value : a.value - converted.value, unit: a.unit))
        case ("*", .quantity(let a), _):
            guard let factor = decimal(right) else {
                guard case .quantity(let b) = right else { return nil }
                return .quantity(FHIRPathQuantity(value: a.value * b.value, unit: productUnit(a.unit, b.unit, ".")))
            }
            return .quantity(FHIRPathQuantity(value: a.value * factor, unit: a.unit))
        case ("*", _, .quantity(let b)):
            guard let factor = decimal(left) else { return nil }
            return .quantity(FHIRPathQuantity(value: b.value * factor, unit: b.unit))
        case ("/", .quantity(let a), _):
            if let divisor = decimal(right) {
                return divisor == 0 ? nil : .quantity(FHIRPathQuantity(value: a.value / divisor, unit: a.unit))
            }
            guard case .quantity(let b) = right, b.value != 0 else { return nil }
            if a.unit == b.unit { return .quantity(FHIRPathQuantity(value: a.value / b.value, unit: "1")) }
            if let converted = FHIRPathUnits.convert(b, to: a.unit) {
                return .quantity(FHIRPathQuantity(value: a.value / converted.value, unit: "1"))
            }
            return .quantity(FHIRPathQuantity(value: a.value / b.value, unit: productUnit(a.unit, b.unit, "/")))
        default:
            guard let a = decimal(left), let b = decimal(right) else {
                throw FHIRPathError(
                    .execution,
                    "cannot apply '\(symbol)' to \(FHIRPathTypes.typeName(left).name) and \(FHIRPathTypes.typeName(right).name)"
                )
            }
            switch symbol {
            case "+": return .decimal(a + b, scale: max(scale(of: left), scale(of: right)))
            case "-": return .decimal(a - b, scale: max(scale(of: left), scale(of: right)))
            case "*": return .fromDecimal(a * b)
            case "/": return b == 0 ? nil : .fromDecimal(a / b)
            case "div":
                guard b != 0 else { return nil }
                let quotient = rounded(a / b, 0, .down)
                guard abs(quotient) < 2_147_483_648 else { return nil }
                return .integer(NSDecimalNumber(decimal: quotient).intValue)
            case "mod":
                return b == 0
                    ? nil : .decimal(a - b * rounded(a / b, 0, .down), scale: max(scale(of: left), scale(of: right)))
            default: throw FHIRPathError(.execution, "unknown operator \(symbol)")
            }
        }
    }

    static func rounded(_ value: Decimal, _ scale: Int, _ mode: NSDecimalNumber.RoundingMode) -> Decimal {
        var input = value, result = Decimal()
        // Truncation toward zero: round the magnitude down.
        if mode == .down, value < 0 {
            input = -value
            NSDecimalRound(&result, &input, scale, .down)
            return -result
        }
        NSDecimalRound(&result, &input, scale, mode)
        return result
    }

    private static func productUnit(_ a: String, _ b: String, _ separator: String) -> String {
        if a == "1" { return separator == "." ? b : "1/" + b }
        if b == "1" { return a }
        return a + separator + b
    }

    private static func moved(_ value: FHIRPathDateTime, by quantity: FHIRPathQuantity, kindOf item: FHIRPathItem)
        throws -> FHIRPathItem?
    {
        // UCUM's `a` and `mo` are averages, not calendar years and months: refused.
        guard FHIRPathUnits.calendarUnit(quantity.unit) != nil, quantity.unit != "a", quantity.unit != "mo" else {
            throw FHIRPathError(.execution, "'\(quantity.unit)' is not a calendar duration")
        }
        guard let moved = value.adding(quantity) else { return nil }
        switch item {
        case .date: return .date(moved)
        case .time: return .time(moved)
        default: return .dateTime(moved)
        }
    }
}
