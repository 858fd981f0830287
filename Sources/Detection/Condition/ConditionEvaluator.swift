import Foundation

/// What a condition reads: the values of a field for one event (nil when the event has
/// no such field, several for list fields such as `proc.args`).
public protocol FieldValues {
    func values(of field: FieldReference) -> [String]?
}

/// Evaluates conditions with Falco's semantics: a comparison on a missing field is false,
/// numbers compare as numbers when both sides are integers, `pmatch` matches path prefixes.
public final class ConditionEvaluator {
    private var regexes: [String: NSRegularExpression] = [:]

    public init() {}

    public func evaluate(_ condition: Condition, on event: FieldValues) -> Bool {
        switch condition {
        case .and(let a, let b): return evaluate(a, on: event) && evaluate(b, on: event)
        case .or(let a, let b): return evaluate(a, on: event) || evaluate(b, on: event)
        case .not(let a): return !evaluate(a, on: event)
        case .constant(let value): return value
        case .exists(let field): return event.values(of: field) != nil
        case .compare(let field, let op, let operands):
            guard let values = event.values(of: field) else { return false }
            return compare(values, op, operands)
        }
    }

    private func compare(_ values: [String], _ op: ConditionOperator, _ operands: [String]) -> Bool {
        switch op {
        case .in: return values.first.map { operands.contains($0) } ?? false
        case .intersects: return values.contains { operands.contains($0) }
        case .pmatch:
            return values.contains { value in
                operands.contains { prefix in value == prefix || value.hasPrefix(prefix.hasSuffix("/") ? prefix : prefix + "/") }
            }
        default:
            guard let operand = operands.first else { return false }
            return values.contains { compareOne($0, op, operand) }
        }
    }

    private func compareOne(_ value: String, _ op: ConditionOperator, _ operand: String) -> Bool {
        if let a = Int64(value), let b = Int64(operand) {
            switch op {
            case .equal: return a == b
            case .notEqual: return a != b
            case .less: return a < b
            case .lessOrEqual: return a <= b
            case .greater: return a > b
            case .greaterOrEqual: return a >= b
            default: break
            }
        }
        switch op {
        case .equal: return value == operand
        case .notEqual: return value != operand
        case .less: return value < operand
        case .lessOrEqual: return value <= operand
        case .greater: return value > operand
        case .greaterOrEqual: return value >= operand
        case .contains: return value.contains(operand)
        case .icontains: return value.lowercased().contains(operand.lowercased())
        case .startswith: return value.hasPrefix(operand)
        case .endswith: return value.hasSuffix(operand)
        case .glob: return fnmatch(operand, value, 0) == 0
        case .regex:
            guard let regex = regex(operand) else { return false }
            return regex.firstMatch(in: value, range: NSRange(value.startIndex..., in: value)) != nil
        case .in, .intersects, .pmatch: return false
        }
    }

    private func regex(_ pattern: String) -> NSRegularExpression? {
        if let known = regexes[pattern] { return known }
        let compiled = try? NSRegularExpression(pattern: pattern)
        regexes[pattern] = compiled
        return compiled
    }
}
