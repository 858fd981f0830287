import Foundation

/// A comparison with its field resolved and its operand prepared once: numbers parsed,
/// sets built, regexes compiled, so matching a value is a lookup or a byte search. A class,
/// so evaluating it copies nothing.
final class Matcher: @unchecked Sendable {
    let field: CompiledField
    let op: ConditionOperator
    let operands: [String]
    let set: Set<String>
    let numbers: Set<Int64>
    let number: Int64?
    let lowered: String
    let regex: NSRegularExpression?
    /// For IPADDR and IPNET fields: the operands as networks (an address is a full-length one).
    let networks: [IPNetwork]
    /// For bcontains and bstartswith: the operand's hex as bytes.
    let bytes: [UInt8]
    /// For `=`, `!=`, `in`, `intersects`: the operands' bytes, found by length first.
    let table: OperandTable
    /// For glob and iglob: the first operand, prepared.
    let glob: GlobPattern?
    /// The first operand ("" without one).
    let operand: String
    /// The last answer for an open(2) or socket(2) flags value, read as names: they repeat from
    /// event to event, and reading them builds an array of names. A matcher belongs to one
    /// engine, which one thread drives.
    private var lastFlags: (value: Int64, socket: Bool, result: Bool)?
    /// This comparison's answer for the view at `answeredAt` (its generation): rules of one
    /// event type share their comparisons (`evt.is_open_read = true`, a path prefix), which
    /// are then answered once per event.
    private var answer = false
    private var answeredAt: UInt64 = 0

    func matches(in view: EventView) -> Bool {
        let generation = view.generation
        if answeredAt == generation { return answer }
        answer = view.matches(self)
        answeredAt = generation
        return answer
    }

    init(_ field: CompiledField, _ op: ConditionOperator, _ operands: [String]) throws {
        self.field = field
        self.op = op
        self.operands = operands
        set = Set(operands)
        numbers = Set(operands.compactMap { Int64($0) })
        number = operands.first.flatMap { Int64($0) }
        lowered = operands.first?.lowercased() ?? ""
        operand = operands.first ?? ""
        glob =
            op == .glob || op == .iglob
            ? GlobPattern(operands.first ?? "", flags: op == .glob ? 0 : Self.caseFold) : nil
        table = OperandTable(
            op == .in || op == .intersects ? operands : op == .equal || op == .notEqual ? Array(operands.prefix(1)) : []
        )
        networks = field.type == .ipaddr || field.type == .ipnet ? operands.compactMap { IPNetwork($0) } : []
        if op == .bcontains || op == .bstartswith {
            let hex = Array((operands.first ?? "").utf8)
            bytes = stride(from: 0, to: hex.count - 1, by: 2).compactMap {
                UInt8(String(decoding: hex[$0...$0 + 1], as: UTF8.self), radix: 16)
            }
        } else {
            bytes = []
        }
        if op == .regex {
            guard let pattern = operands.first, let compiled = try? NSRegularExpression(pattern: pattern) else {
                throw ConditionError(
                    location: SourceLocation(), message: "'\(operands.first?.prefix(80) ?? "")' is not a valid regex")
            }
            if let risk = Self.backtrackingRisk(pattern) {
                throw ConditionError(location: SourceLocation(), message: "regex '\(pattern.prefix(80))' \(risk)")
            }
            regex = compiled
        } else {
            regex = nil
        }
    }

    /// Why a regex could take exponential (or high polynomial) time on text a process chooses,
    /// or nil. NSRegularExpression backtracks (Falco's RE2 does not), and the text it runs on
    /// (arguments, file names) is the attacker's: a quantified group that holds a quantifier
    /// (`(a+)+`, `(.*x)*`), a back-reference, or more than 4 unbounded quantifiers is refused.
    static func backtrackingRisk(_ pattern: String) -> String? {
        let characters = Array(pattern)
        var groups: [Bool] = []  // per open group: whether it holds a quantifier
        var unbounded = 0
        var index = 0
        var lastClosedGroupHadQuantifier = false
        func markQuantifier() {
            if !groups.isEmpty { groups[groups.count - 1] = true }
        }
        while index < characters.count {
            let c = characters[index]
            var closedGroupWithQuantifier = false
            switch c {
            case "\\":
                if index + 1 < characters.count, let digit = characters[index + 1].wholeNumberValue, digit > 0 {
                    return "uses a back-reference, which can take exponential time on text a process chooses"
                }
                if index + 1 < characters.count, characters[index + 1] == "k" {
                    return "uses a back-reference, which can take exponential time on text a process chooses"
                }
                index += 1
            case "[":
                // A class is one atom: skip to its closing bracket.
                index += 1
                if index < characters.count && characters[index] == "^" { index += 1 }
                if index < characters.count && characters[index] == "]" { index += 1 }
                while index < characters.count && characters[index] != "]" {
                    if characters[index] == "\\" { index += 1 }
                    index += 1
                }
            case "(":
                groups.append(false)
            case ")":
                if let inner = groups.popLast() {
                    closedGroupWithQuantifier = inner
                    if inner { markQuantifier() }
                }
            case "*", "+", "{":
                var isUnbounded = c != "{"
                if c == "{" {
                    var end = index + 1
                    while end < characters.count && characters[end] != "}" { end += 1 }
                    let body = String(characters[min(index + 1, characters.count)..<min(end, characters.count)])
                    guard end < characters.count, body.first?.isNumber == true else { break }  // a literal brace
                    isUnbounded =
                        body.hasSuffix(",") || (body.split(separator: ",").last.flatMap { Int($0) } ?? 0) > 100
                    index = end
                }
                if isUnbounded {
                    unbounded += 1
                    if lastClosedGroupHadQuantifier {
                        return
                            "repeats a group that itself repeats (like (a+)+), which can take exponential time on text a process chooses"
                    }
                }
                markQuantifier()
            default:
                break
            }
            lastClosedGroupHadQuantifier = closedGroupWithQuantifier
            index += 1
        }
        if unbounded > 4 {
            return
                "has \(unbounded) unbounded repetitions (at most 4), which can take a long time on text a process chooses"
        }
        return nil
    }

    func matches(_ value: FieldValue) -> Bool {
        if !networks.isEmpty { return matchesNetwork(value) }
        switch op {
        case .notEqual: return !matchesAny(value, .equal)
        case .intersects:
            switch value {
            case .list(let values): return values.contains { set.contains($0) }
            default: return matchesAny(value, .in)
            }
        default: return matchesAny(value, op)
        }
    }

    /// Addresses against networks, as Falco compares them: `=`/`in` hold when an address lies
    /// in an operand network, `!=` when one does not (fd.net names client and server both).
    private func matchesNetwork(_ value: FieldValue) -> Bool {
        let addresses: [String]
        switch value {
        case .string(let s): addresses = [s]
        case .list(let values): addresses = values
        default: return false
        }
        for text in addresses {
            guard let address = IPNetwork(address: text) else { continue }
            let inside = networks.contains { $0.contains(address) }
            if op == .notEqual ? !inside : inside { return true }
        }
        return false
    }

    private func matchesAny(_ value: FieldValue, _ op: ConditionOperator) -> Bool {
        switch value {
        case .string(let s): return matchString(s, op)
        case .number(let n): return matchNumber(n, op)
        case .symbolic(let n, let decoding):
            if matchNumber(n, op) { return true }
            // `= PTRACE_ATTACH`, `contains PROT_EXEC`, `in (...)`: answered from the bits.
            if op == .equal || op == .contains || op == .in || op == .intersects {
                var decided = true
                for operand in operands {
                    guard let has = decoding.has(operand, in: n) else {
                        decided = false
                        break
                    }
                    if has { return true }
                }
                if decided { return false }
            }
            switch decoding {
            case .openFlags, .socketType:
                let socket: Bool
                if case .socketType = decoding { socket = true } else { socket = false }
                if let last = lastFlags, last.value == n, last.socket == socket { return last.result }
                let result = decoding.names(n).contains { matchString($0, op) }
                lastFlags = (n, socket, result)
                return result
            default:
                return decoding.names(n).contains { matchString($0, op) }
            }
        case .list(let values): return values.contains { matchString($0, op) }
        }
    }

    private func matchNumber(_ n: Int64, _ op: ConditionOperator) -> Bool {
        switch op {
        case .equal: return number == n
        case .in: return numbers.contains(n)
        case .less: return number.map { n < $0 } ?? false
        case .lessOrEqual: return number.map { n <= $0 } ?? false
        case .greater: return number.map { n > $0 } ?? false
        case .greaterOrEqual: return number.map { n >= $0 } ?? false
        default: return matchString(String(n), op)
        }
    }

    private func matchString(_ s: String, _ op: ConditionOperator) -> Bool {
        guard !operands.isEmpty else { return false }
        switch op {
        // Lengths first: String's == calls into the runtime for any two strings that differ.
        // Bytes first: String's == calls into the runtime for any two strings that differ. A
        // text with non-ASCII bytes falls back to String's comparison (canonical equivalence).
        case .equal:
            return table.contains(s) || (s.utf8.count == operand.utf8.count && !table.decides(s) && s == operand)
        case .notEqual:
            return !table.contains(s) && (s.utf8.count != operand.utf8.count || table.decides(s) || s != operand)
        case .in, .intersects:
            if table.contains(s) { return true }
            if table.decides(s) { return false }
            guard operands.count <= 8 else { return set.contains(s) }
            let count = s.utf8.count
            return operands.contains { $0.utf8.count == count && $0 == s }
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            if let a = Int64(s), let b = number {
                return op == .less ? a < b : op == .lessOrEqual ? a <= b : op == .greater ? a > b : a >= b
            }
            return op == .less
                ? s < operand : op == .lessOrEqual ? s <= operand : op == .greater ? s > operand : s >= operand
        case .startswith: return Self.hasPrefix(s, operand)
        case .endswith: return Self.hasSuffix(s, operand)
        case .contains: return Self.contains(s, operand)
        case .icontains: return Self.contains(s.lowercased(), lowered)
        case .glob, .iglob: return glob?.matches(s) ?? false
        case .bcontains, .bstartswith:
            guard !bytes.isEmpty else { return false }
            let haystack = Array(s.utf8)
            if op == .bstartswith { return haystack.starts(with: bytes) }
            return haystack.count >= bytes.count
                && (0...(haystack.count - bytes.count)).contains {
                    haystack[$0..<$0 + bytes.count].elementsEqual(bytes)
                }
        case .pmatch:
            return operands.contains { prefix in
                s == prefix
                    || (s.utf8.starts(with: prefix.utf8)
                        && (prefix.hasSuffix("/") || s.utf8.dropFirst(prefix.utf8.count).first == UInt8(ascii: "/")))
            }
        case .regex:
            guard let regex else { return false }
            return regex.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
        }
    }

    /// glibc's FNM_CASEFOLD.
    static let caseFold: Int32 = 1 << 4

    static func hasPrefix(_ s: String, _ prefix: String) -> Bool {
        let a = s.utf8, b = prefix.utf8
        guard a.count >= b.count else { return false }
        if b.isEmpty { return true }
        return a.withContiguousStorageIfAvailable { x in
            b.withContiguousStorageIfAvailable { y in memcmp(x.baseAddress!, y.baseAddress!, y.count) == 0 }
        }.flatMap { $0 } ?? s.hasPrefix(prefix)
    }

    static func hasSuffix(_ s: String, _ suffix: String) -> Bool {
        let a = s.utf8, b = suffix.utf8
        guard a.count >= b.count else { return false }
        if b.isEmpty { return true }
        return a.withContiguousStorageIfAvailable { x in
            b.withContiguousStorageIfAvailable { y in
                memcmp(x.baseAddress! + (x.count - y.count), y.baseAddress!, y.count) == 0
            }
        }.flatMap { $0 } ?? s.hasSuffix(suffix)
    }

    /// Substring search on UTF-8 bytes, without Foundation's bridging.
    static func contains(_ haystack: String, _ needle: String) -> Bool {
        if needle.isEmpty { return true }
        var haystack = haystack
        var needle = needle
        return haystack.withUTF8 { h in
            needle.withUTF8 { n in
                guard n.count <= h.count else { return false }
                let first = n[0]
                var index = 0
                let last = h.count - n.count
                while index <= last {
                    if h[index] == first {
                        var k = 1
                        while k < n.count && h[index + k] == n[k] { k += 1 }
                        if k == n.count { return true }
                    }
                    index += 1
                }
                return false
            }
        }
    }
}

/// A condition ready to evaluate: fields resolved to kinds, operands prepared. A tree of
/// classes walked through unsafe buffers: the enum it replaced retained every node it visited,
/// a third of the engine's time.
final class CompiledCondition: @unchecked Sendable {
    enum Kind { case and, or, not, constant, exists, compare }

    let kind: Kind
    let children: [CompiledCondition]
    /// `children` and `matcher` without reference counting: this node keeps them alive, and
    /// visiting a node must not retain and release it (a fifth of the engine's time).
    private let nodes: [Unmanaged<CompiledCondition>]
    private let matcherReference: Unmanaged<Matcher>?
    let constant: Bool
    let matcher: Matcher?
    let field: CompiledField?

    private init(
        kind: Kind, children: [CompiledCondition] = [], constant: Bool = false, matcher: Matcher? = nil,
        field: CompiledField? = nil
    ) {
        self.kind = kind
        self.children = children
        nodes = children.map { Unmanaged.passUnretained($0) }
        self.constant = constant
        self.matcher = matcher
        matcherReference = matcher.map { Unmanaged.passUnretained($0) }
        self.field = field
    }

    /// `matchers`: comparisons already compiled for other rules of the same event type, shared
    /// so that each is answered once per event.
    convenience init(_ condition: Condition, sharing matchers: MatcherInterner = MatcherInterner()) throws {
        switch condition {
        case .and:
            self.init(
                kind: .and,
                children: try Self.flatten(condition, and: true).map { try CompiledCondition($0, sharing: matchers) })
        case .or:
            self.init(
                kind: .or,
                children: try Self.flatten(condition, and: false).map { try CompiledCondition($0, sharing: matchers) })
        case .not(let inner): self.init(kind: .not, children: [try CompiledCondition(inner, sharing: matchers)])
        case .constant(let value): self.init(kind: .constant, constant: value)
        case .exists(let field): self.init(kind: .exists, field: CompiledField(field))
        case .compare(let field, let op, let operands):
            self.init(kind: .compare, matcher: try matchers.matcher(CompiledField(field), op, operands))
        }
    }

    /// `a and (b and c)` as one list, so evaluation is a loop rather than a deep recursion.
    private static func flatten(_ condition: Condition, and: Bool) -> [Condition] {
        switch condition {
        case .and(let a, let b) where and: return flatten(a, and: true) + flatten(b, and: true)
        case .or(let a, let b) where !and: return flatten(a, and: false) + flatten(b, and: false)
        default: return [condition]
        }
    }

    func evaluate(_ view: EventView) -> Bool {
        switch kind {
        case .and:
            return nodes.withUnsafeBufferPointer { nodes in
                for index in nodes.indices where !nodes[index]._withUnsafeGuaranteedRef({ $0.evaluate(view) }) {
                    return false
                }
                return true
            }
        case .or:
            return nodes.withUnsafeBufferPointer { nodes in
                for index in nodes.indices where nodes[index]._withUnsafeGuaranteedRef({ $0.evaluate(view) }) {
                    return true
                }
                return false
            }
        case .not: return !nodes.withUnsafeBufferPointer { $0[0]._withUnsafeGuaranteedRef { $0.evaluate(view) } }
        case .constant: return constant
        case .exists: return view.value(field.unsafelyUnwrapped) != nil
        case .compare:
            return matcherReference.unsafelyUnwrapped._withUnsafeGuaranteedRef { $0.matches(in: view) }
        }
    }
}

/// The comparisons compiled for one event type's rules, by field, operator and operands.
final class MatcherInterner {
    private struct Key: Hashable {
        let kind: Int
        let type: String
        let argument: String?
        let level: Int
        let op: ConditionOperator
        let operands: [String]
    }

    private var matchers: [Key: Matcher] = [:]

    init() {}

    func matcher(_ field: CompiledField, _ op: ConditionOperator, _ operands: [String]) throws -> Matcher {
        let key = Key(
            kind: field.kind.rawValue, type: String(describing: field.type), argument: field.argument,
            level: field.level, op: op, operands: operands)
        if let known = matchers[key] { return known }
        let matcher = try Matcher(field, op, operands)
        matchers[key] = matcher
        return matcher
    }
}

extension Condition {
    /// The condition for events of one type and direction: comparisons of `evt.type` and
    /// `evt.dir` become constants and fold away, so the index does the work once.
    func specialized(eventType: String, direction: String) -> Condition {
        switch self {
        case .and(let a, let b):
            let x = a.specialized(eventType: eventType, direction: direction)
            let y = b.specialized(eventType: eventType, direction: direction)
            if case .constant(false) = x { return x }
            if case .constant(false) = y { return y }
            if case .constant(true) = x { return y }
            if case .constant(true) = y { return x }
            return .and(x, y)
        case .or(let a, let b):
            let x = a.specialized(eventType: eventType, direction: direction)
            let y = b.specialized(eventType: eventType, direction: direction)
            if case .constant(true) = x { return x }
            if case .constant(true) = y { return y }
            if case .constant(false) = x { return y }
            if case .constant(false) = y { return x }
            return .or(x, y)
        case .not(let a):
            let x = a.specialized(eventType: eventType, direction: direction)
            if case .constant(let value) = x { return .constant(!value) }
            return .not(x)
        case .compare(let field, let op, let operands) where field.name == "evt.type" || field.name == "evt.dir":
            let value = field.name == "evt.type" ? eventType : direction
            switch op {
            case .equal: return .constant(operands.first == value)
            case .notEqual: return .constant(operands.first != value)
            case .in, .intersects: return .constant(operands.contains(value))
            default: return self
            }
        case .exists(let field) where field.name == "evt.type" || field.name == "evt.dir":
            return .constant(true)
        default:
            return self
        }
    }

    /// The event types this condition can match, or nil when it can match any (Falco's
    /// evttype index): `evt.type = X` and `evt.type in (...)` narrow, `and` intersects,
    /// `or` unites, anything under `not` is unknown.
    public var eventTypes: Set<String>? {
        switch self {
        case .compare(let field, let op, let operands) where field.name == "evt.type":
            return op == .equal || op == .in ? Set(operands) : nil
        case .and(let a, let b):
            switch (a.eventTypes, b.eventTypes) {
            case (nil, nil): return nil
            case (let x?, nil): return x
            case (nil, let y?): return y
            case (let x?, let y?): return x.intersection(y)
            }
        case .or(let a, let b):
            guard let x = a.eventTypes, let y = b.eventTypes else { return nil }
            return x.union(y)
        case .constant(false): return []
        default: return nil
        }
    }
}
