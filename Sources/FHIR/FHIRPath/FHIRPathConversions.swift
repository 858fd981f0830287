import Foundation

/// The conversion functions (`toX()`, `convertsToX()`) and the math functions.
extension FHIRPathEvaluator {
    /// The single input item as a System value; nil for an empty input.
    func singleValue(_ input: [FHIRPathItem], _ name: String) throws -> FHIRPathItem? {
        guard let first = input.first else { return nil }
        guard input.count == 1 else {
            throw FHIRPathError(.execution, "\(name)() needs a single item, got \(input.count)")
        }
        return first.systemValue ?? first
    }

    private static let conversionNames: Set<String> = [
        "toBoolean", "toInteger", "toDecimal", "toString", "toDate", "toDateTime", "toTime", "toQuantity",
    ]
    private static let mathNames: Set<String> = [
        "abs", "ceiling", "exp", "floor", "ln", "log", "power", "round", "sqrt", "truncate",
    ]

    func conversionFunction(
        _ name: String, _ input: [FHIRPathItem], _ arguments: [FHIRPathSyntax], _ focus: FHIRPathFocus
    ) throws -> [FHIRPathItem]? {
        var target = name
        let isTest = name.hasPrefix("convertsTo")
        if isTest { target = "to" + name.dropFirst("convertsTo".count) }
        guard Self.conversionNames.contains(target) else {
            return nil
        }
        guard let item = try singleValue(input, name) else { return [] }
        var unit: String?
        if target == "toQuantity", let argument = arguments.first {
            unit = try evaluate(argument, focus).first?.stringForm
        }
        let converted = Self.convert(item, to: target, unit: unit)
        if isTest { return [.boolean(converted != nil)] }
        return converted.map { [$0] } ?? []
    }

    static func convert(_ item: FHIRPathItem, to target: String, unit: String? = nil) -> FHIRPathItem? {
        switch target {
        case "toBoolean":
            switch item {
            case .boolean: return item
            case .integer(let value): return value == 1 ? .boolean(true) : value == 0 ? .boolean(false) : nil
            case .decimal(let value, _): return value == 1 ? .boolean(true) : value == 0 ? .boolean(false) : nil
            case .string(let text):
                switch text.lowercased() {
                case "true", "t", "yes", "y", "1", "1.0": return .boolean(true)
                case "false", "f", "no", "n", "0", "0.0": return .boolean(false)
                default: return nil
                }
            default: return nil
            }
        case "toInteger":
            switch item {
            case .integer: return item
            case .boolean(let flag): return .integer(flag ? 1 : 0)
            case .string(let text):
                return isNumber(text, fraction: false)
                    ? Int32(text.hasPrefix("+") ? String(text.dropFirst()) : text).map { .integer(Int($0)) } : nil
            default: return nil
            }
        case "toDecimal":
            switch item {
            case .integer(let value): return .decimal(Decimal(value), scale: 0)
            case .decimal: return item
            case .boolean(let flag): return .decimal(flag ? 1 : 0, scale: 0)
            case .string(let text): return isNumber(text, fraction: true) ? FHIRPathItem.decimal(text: text) : nil
            default: return nil
            }
        case "toString": return item.stringForm.map { .string($0) }
        case "toDate":
            switch item {
            case .date: return item
            case .dateTime(var value):
                value.kind = .date
                value.parts = Array(value.parts.prefix(3))
                value.offset = nil
                return .date(value)
            case .string(let text):
                return FHIRPathDateTime(parsing: text, kind: .date).map { .date($0) }
            default: return nil
            }
        case "toDateTime":
            switch item {
            case .dateTime: return item
            case .date(var value): value.kind = .dateTime; return .dateTime(value)
            case .string(let text):
                guard var value = FHIRPathDateTime(parsing: text, kind: .dateTime) else { return nil }
                value.kind = .dateTime
                return .dateTime(value)
            default: return nil
            }
        case "toTime":
            switch item {
            case .time: return item
            case .string(let text): return FHIRPathDateTime(parsing: text, kind: .time).map { .time($0) }
            default: return nil
            }
        default:  // toQuantity
            var quantity: FHIRPathQuantity
            switch item {
            case .integer(let value): quantity = FHIRPathQuantity(value: Decimal(value), unit: "1")
            case .decimal(let value, _): quantity = FHIRPathQuantity(value: value, unit: "1")
            case .boolean(let flag): quantity = FHIRPathQuantity(value: flag ? 1 : 0, unit: "1")
            case .quantity(let value): quantity = value
            case .string(let text):
                guard let parsed = parseQuantity(text) else { return nil }
                quantity = parsed
            default: return nil
            }
            guard let unit else { return .quantity(quantity) }
            return FHIRPathUnits.convert(quantity, to: unit).map { .quantity($0) }
        }
    }

    private static func isNumber(_ text: String, fraction: Bool) -> Bool {
        var body = Substring(text)
        if body.first == "+" || body.first == "-" { body = body.dropFirst() }
        let pieces = body.split(separator: ".", omittingEmptySubsequences: false)
        guard pieces.count == 1 || (fraction && pieces.count == 2) else { return false }
        return pieces.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }
    }

    /// `"10 'mg'"`, `"4 days"`, `"1.5"`: a number, then a quoted UCUM unit or a calendar keyword.
    private static func parseQuantity(_ text: String) -> FHIRPathQuantity? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let number = trimmed.prefix { $0.isNumber || $0 == "." || $0 == "-" || $0 == "+" }
        guard isNumber(String(number), fraction: true), let value = Decimal(string: String(number)) else { return nil }
        let rest = trimmed.dropFirst(number.count).trimmingCharacters(in: .whitespaces)
        if rest.isEmpty { return FHIRPathQuantity(value: value, unit: "1") }
        if rest.count >= 2, rest.hasPrefix("'"), rest.hasSuffix("'") {
            return FHIRPathQuantity(value: value, unit: String(rest.dropFirst().dropLast()))
        }
        if let keyword = FHIRPathUnits.singularKeyword(rest) { return FHIRPathQuantity(value: value, unit: keyword) }
        return nil
    }

    func mathFunction(_ name: String, _ input: [FHIRPathItem], _ arguments: [FHIRPathSyntax], _ focus: FHIRPathFocus)
        throws -> [FHIRPathItem]?
    {
        guard Self.mathNames.contains(name) else { return nil }
        guard let item = try singleValue(input, name) else { return [] }
        if case .quantity(var quantity) = item, name == "abs" {
            quantity.value = abs(quantity.value)
            return [.quantity(quantity)]
        }
        guard let value = FHIRPathOperators.decimal(item) else {
            throw FHIRPathError(.execution, "\(name)() needs a number")
        }
        let isInteger: Bool = { if case .integer = item { return true } else { return false } }()
        func integerResult(_ decimal: Decimal) -> [FHIRPathItem] {
            let number = NSDecimalNumber(decimal: decimal)
            guard abs(number.doubleValue) < 2_147_483_648 else { return [] }
            return [.integer(number.intValue)]
        }
        func real(_ number: Double) -> [FHIRPathItem] {
            guard number.isFinite else { return [] }
            return Decimal(string: String(number)).map { [.fromDecimal($0)] } ?? []
        }
        let double = NSDecimalNumber(decimal: value).doubleValue
        switch name {
        case "abs":
            guard case .decimal(_, let scale) = item else { return integerResult(abs(value)) }
            return [.decimal(abs(value), scale: scale)]
        case "ceiling":
            let truncated = FHIRPathOperators.rounded(value, 0, .down)
            return integerResult(truncated < value ? truncated + 1 : truncated)
        case "floor":
            let truncated = FHIRPathOperators.rounded(value, 0, .down)
            return integerResult(truncated > value ? truncated - 1 : truncated)
        case "truncate": return integerResult(FHIRPathOperators.rounded(value, 0, .down))
        case "exp": return real(Foundation.exp(double))
        case "ln": return real(Foundation.log(double))
        case "sqrt": return double < 0 ? [] : real(double.squareRoot())
        case "log":
            guard let base = try singleValue(try evaluate(arguments[0], focus), name).flatMap(FHIRPathOperators.decimal)
            else { return [] }
            return real(Foundation.log(double) / Foundation.log(NSDecimalNumber(decimal: base).doubleValue))
        case "power":
            guard let exponentItem = try singleValue(try evaluate(arguments[0], focus), name),
                let exponent = FHIRPathOperators.decimal(exponentItem)
            else { return [] }
            let result = Foundation.pow(double, NSDecimalNumber(decimal: exponent).doubleValue)
            if isInteger, case .integer = exponentItem, result.isFinite, result == result.rounded(),
                abs(result) < 2_147_483_648
            {
                return [.integer(Int(result))]
            }
            return real(result)
        default:  // round
            var precision = 0
            if let argument = arguments.first {
                guard let given = try singleInteger(argument, focus), given >= 0 else {
                    throw FHIRPathError(.execution, "round() precision must be >= 0")
                }
                precision = min(given, 30)
            }
            return [.decimal(FHIRPathOperators.rounded(value, precision, .plain), scale: precision)]
        }
    }
}
