import Foundation
import JSON

/// The functions the parser accepts, with how many arguments each takes.
enum FHIRPathFunctionTable {
    static let arity: [String: ClosedRange<Int>] = {
        var table: [String: ClosedRange<Int>] = [:]
        let none = [
            "empty", "allTrue", "anyTrue", "allFalse", "anyFalse", "count", "distinct", "isDistinct", "single", "first",
            "last", "tail", "not", "children", "descendants", "now", "today", "timeOfDay", "type",
            "toBoolean", "convertsToBoolean", "toInteger", "convertsToInteger", "toDecimal", "convertsToDecimal",
            "toString", "convertsToString", "toDate", "convertsToDate", "toDateTime", "convertsToDateTime", "toTime",
            "convertsToTime", "upper", "lower", "length", "toChars", "trim", "abs", "ceiling", "exp", "floor", "ln",
            "sqrt", "truncate", "hasValue", "getValue", "htmlChecks", "resolve", "precision",
        ]
        for name in none { table[name] = 0...0 }
        let one = [
            "all", "subsetOf", "supersetOf", "where", "select", "repeat", "ofType", "skip", "take", "intersect",
            "exclude", "union", "combine", "is", "as", "indexOf", "startsWith", "endsWith", "contains", "matches",
            "matchesFull", "split", "encode", "decode", "escape", "unescape", "log", "power", "extension", "conformsTo",
            "memberOf", "comparable",
        ]
        for name in one { table[name] = 1...1 }
        table["exists"] = 0...1
        table["trace"] = 1...2
        table["iif"] = 2...3
        table["aggregate"] = 1...2
        table["substring"] = 1...2
        table["replace"] = 2...2
        table["replaceMatches"] = 2...2
        table["join"] = 0...1
        table["round"] = 0...1
        table["toQuantity"] = 0...1
        table["convertsToQuantity"] = 0...1
        table["lowBoundary"] = 0...1
        table["highBoundary"] = 0...1
        table["sort"] = 0...8
        return table
    }()
}

extension FHIRPathEvaluator {
    func callFunction(_ name: String, on input: [FHIRPathItem], arguments: [FHIRPathSyntax], focus: FHIRPathFocus)
        throws -> [FHIRPathItem]
    {
        if let result = try collectionFunction(name, input, arguments, focus) { return result }
        if let result = try valueFunction(name, input, arguments, focus) { return result }
        if let result = try fhirFunction(name, input, arguments, focus) { return result }
        throw FHIRPathError(.semantic, "unknown function \(name)()")
    }

    /// Evaluates `syntax` once per item, with the item as `$this` and its position as `$index`.
    func perItem(
        _ input: [FHIRPathItem], _ syntax: FHIRPathSyntax, _ body: (Int, FHIRPathItem, [FHIRPathItem]) throws -> Bool
    ) throws {
        for (index, item) in input.enumerated() {
            let result = try evaluate(syntax, FHIRPathFocus(items: [item], index: index))
            if try !body(index, item, result) { return }
        }
    }

    func singleInteger(_ syntax: FHIRPathSyntax, _ focus: FHIRPathFocus) throws -> Int? {
        let value = try evaluate(syntax, focus)
        guard let first = value.first else { return nil }
        guard value.count == 1, case .integer(let integer)? = first.systemValue else {
            throw FHIRPathError(.execution, "expected one integer argument")
        }
        return integer
    }

    private func booleans(_ input: [FHIRPathItem]) throws -> [Bool] {
        try input.map { item in
            guard case .boolean(let value)? = item.systemValue else {
                throw FHIRPathError(.execution, "expected booleans")
            }
            return value
        }
    }

    private func collectionFunction(
        _ name: String, _ input: [FHIRPathItem], _ arguments: [FHIRPathSyntax], _ focus: FHIRPathFocus
    ) throws -> [FHIRPathItem]? {
        switch name {
        case "unaryPlus":
            // Built by the parser for `+x` (not in the function table, so not callable by name).
            guard let item = try FHIRPathOperators.single(input, "+") else { return [] }
            switch item {
            case .integer, .decimal, .quantity: return [item]
            default: throw FHIRPathError(.execution, "unary + needs a number")
            }
        case "empty": return [.boolean(input.isEmpty)]
        case "exists":
            guard let criteria = arguments.first else { return [.boolean(!input.isEmpty)] }
            var found = false
            try perItem(input, criteria) { _, _, result in
                found = try FHIRPathOperators.boolean(result) == true
                return !found
            }
            return [.boolean(found)]
        case "all":
            var all = true
            try perItem(input, arguments[0]) { _, _, result in
                all = try FHIRPathOperators.boolean(result) == true
                return all
            }
            return [.boolean(all)]
        case "allTrue": return [.boolean(try booleans(input).allSatisfy { $0 })]
        case "anyTrue": return [.boolean(try booleans(input).contains(true))]
        case "allFalse": return [.boolean(try booleans(input).allSatisfy { !$0 })]
        case "anyFalse": return [.boolean(try booleans(input).contains(false))]
        case "subsetOf", "supersetOf":
            let other = try evaluate(arguments[0], focus)
            try charge(input.count * other.count)
            let (small, large) = name == "subsetOf" ? (input, other) : (other, input)
            return [
                .boolean(small.allSatisfy { item in large.contains { FHIRPathOperators.itemEquals(item, $0) == true } })
            ]
        case "count": return [.integer(input.count)]
        case "distinct": return try FHIRPathOperators.distinct(input, evaluator: self)
        case "isDistinct":
            return [.boolean(try FHIRPathOperators.distinct(input, evaluator: self).count == input.count)]
        case "where":
            var result: [FHIRPathItem] = []
            try perItem(input, arguments[0]) { _, item, value in
                if try FHIRPathOperators.boolean(value) == true { result.append(item) }
                return true
            }
            return result
        case "select":
            var result: [FHIRPathItem] = []
            try perItem(input, arguments[0]) { _, _, value in
                result += value
                _ = try checkSize(result)
                return true
            }
            return result
        case "repeat": return try repeatProjection(input, arguments[0])
        case "ofType":
            let type = try FHIRPathTypes.name(of: arguments[0])
            return try input.filter { try FHIRPathTypes.matches($0, type, exactly: true) }
        case "is", "as":
            let type = try FHIRPathTypes.name(of: arguments[0])
            if name == "as", input.count > 1, environment.allowsAsOnCollections {
                return try input.filter { try FHIRPathTypes.matches($0, type, exactly: true) }
            }
            guard input.count <= 1 else { throw FHIRPathError(.execution, "\(name)() needs a single item") }
            guard let item = input.first else { return [] }
            let matches = try FHIRPathTypes.matches(item, type, exactly: name == "as")
            return name == "is" ? [.boolean(matches)] : (matches ? [item] : [])
        case "type":
            return input.map { item in
                let (namespace, typeName) = FHIRPathTypes.typeName(item)
                return .element(["namespace": .string(namespace), "name": .string(typeName)], nil, .unknown, "type")
            }
        case "single":
            guard input.count <= 1 else { throw FHIRPathError(.execution, "single() on \(input.count) items") }
            return input
        case "first": return Array(input.prefix(1))
        case "last": return Array(input.suffix(1))
        case "tail": return Array(input.dropFirst())
        case "skip":
            guard let count = try singleInteger(arguments[0], focus) else { return input }
            return Array(input.dropFirst(max(0, count)))
        case "take":
            guard let count = try singleInteger(arguments[0], focus) else { return [] }
            return Array(input.prefix(max(0, count)))
        case "intersect", "exclude":
            let other = try evaluate(arguments[0], focus)
            try charge(input.count * other.count)
            let kept = input.filter { item in
                other.contains { FHIRPathOperators.itemEquals(item, $0) == true } == (name == "intersect")
            }
            return name == "intersect" ? try FHIRPathOperators.distinct(kept, evaluator: self) : kept
        case "union": return try FHIRPathOperators.union(input, try evaluate(arguments[0], focus), evaluator: self)
        case "combine": return input + (try evaluate(arguments[0], focus))
        case "not":
            guard let value = try FHIRPathOperators.boolean(input) else { return [] }
            return [.boolean(!value)]
        case "iif":
            // The arguments see the input as $this (`('a').iif(true, select($this))`), and
            // $index and $total of an enclosing iteration.
            guard input.count <= 1 else { throw FHIRPathError(.execution, "iif() on \(input.count) items") }
            let inner = FHIRPathFocus(items: input, index: focus.index, total: focus.total)
            let criterion = try evaluate(arguments[0], inner)
            guard criterion.count <= 1 else {
                throw FHIRPathError(.execution, "iif() criterion must be a single boolean")
            }
            if let first = criterion.first {
                guard case .boolean? = first.systemValue else {
                    throw FHIRPathError(.execution, "iif() criterion must be a boolean")
                }
            }
            if try FHIRPathOperators.boolean(criterion) == true { return try evaluate(arguments[1], inner) }
            return arguments.count > 2 ? try evaluate(arguments[2], inner) : []
        case "children":
            var result: [FHIRPathItem] = []
            for case .node(let node) in input { result += FHIRPathNavigator.allChildren(of: node) }
            return result
        case "descendants": return try descendants(input)
        case "trace":
            let label = try evaluate(arguments[0], focus).first?.stringForm ?? ""
            let shown = arguments.count > 1 ? try evaluate(arguments[1], FHIRPathFocus(items: input)) : input
            environment.trace?(label, shown)
            return input
        case "now", "today", "timeOfDay": return [clockValue(name)]
        case "aggregate":
            var total = arguments.count > 1 ? try evaluate(arguments[1], focus) : []
            for (index, item) in input.enumerated() {
                total = try evaluate(arguments[0], FHIRPathFocus(items: [item], index: index, total: total))
            }
            return total
        case "sort": return try sort(input, arguments)
        default: return nil
        }
    }

    /// `repeat()`: the projection applied to its own results until nothing new comes,
    /// every new item compared with those found (bounded by the step budget).
    private func repeatProjection(_ input: [FHIRPathItem], _ projection: FHIRPathSyntax) throws -> [FHIRPathItem] {
        var result: [FHIRPathItem] = []
        var pending = input
        while !pending.isEmpty {
            var next: [FHIRPathItem] = []
            for item in pending {
                for produced in try evaluate(projection, FHIRPathFocus(items: [item])) {
                    try charge(result.count + 1)
                    if !result.contains(where: { FHIRPathOperators.itemEquals(produced, $0) == true }) {
                        result.append(produced)
                        next.append(produced)
                    }
                }
            }
            _ = try checkSize(result)
            pending = next
        }
        return result
    }

    private func descendants(_ input: [FHIRPathItem]) throws -> [FHIRPathItem] {
        var result: [FHIRPathItem] = []
        var pending = input
        while !pending.isEmpty {
            var next: [FHIRPathItem] = []
            for case .node(let node) in pending {
                let children = FHIRPathNavigator.allChildren(of: node)
                try charge(children.count + 1)
                next += children
            }
            result += next
            _ = try checkSize(result)
            pending = next
        }
        return result
    }

    private func clockValue(_ name: String) -> FHIRPathItem {
        let seconds = environment.now.timeIntervalSince1970
        let offsetMinutes = TimeZone.current.secondsFromGMT(for: environment.now) / 60
        let local = Int((seconds * 1000).rounded(.down)) + offsetMinutes * 60_000
        let days = Int((Double(local) / 86_400_000).rounded(.down))
        let inDay = local - days * 86_400_000
        let (year, month, day) = FHIRPathDateTime.civilFromDays(days)
        let time = [inDay / 3_600_000, inDay / 60_000 % 60, inDay / 1000 % 60, inDay % 1000]
        switch name {
        case "today": return .date(FHIRPathDateTime(kind: .date, parts: [year, month, day], offset: nil))
        case "timeOfDay": return .time(FHIRPathDateTime(kind: .time, parts: time, offset: nil))
        default:
            return .dateTime(
                FHIRPathDateTime(kind: .dateTime, parts: [year, month, day] + time, offset: offsetMinutes))
        }
    }

    /// `sort(keys...)`: ascending by each key, descending where the key is negated (`-$this`).
    private func sort(_ input: [FHIRPathItem], _ keys: [FHIRPathSyntax]) throws -> [FHIRPathItem] {
        let plan: [(FHIRPathSyntax, Bool)] =
            keys.isEmpty
            ? [(.this, false)]
            : keys.map { key in
                if case .negate(let inner) = key { return (inner, true) }
                return (key, false)
            }
        var rows: [(FHIRPathItem, [FHIRPathItem?])] = []
        for (index, item) in input.enumerated() {
            var values: [FHIRPathItem?] = []
            for (key, _) in plan {
                let value = try evaluate(key, FHIRPathFocus(items: [item], index: index))
                values.append(try FHIRPathOperators.single(value, "sort"))
            }
            rows.append((item, values))
        }
        try charge(rows.count * max(1, rows.count.bitWidth - rows.count.leadingZeroBitCount))
        var failure: Error?
        rows.sort { left, right in
            for (position, (_, descending)) in plan.enumerated() {
                guard let a = left.1[position], let b = right.1[position] else {
                    // An empty key sorts first, in either direction.
                    if left.1[position] == nil, right.1[position] != nil { return true }
                    if left.1[position] != nil, right.1[position] == nil { return false }
                    continue
                }
                do {
                    guard let order = try FHIRPathOperators.compare(a, b), order != 0 else { continue }
                    return descending ? order > 0 : order < 0
                } catch { failure = error; return false }
            }
            return false
        }
        if let failure { throw failure }
        return rows.map(\.0)
    }
}
