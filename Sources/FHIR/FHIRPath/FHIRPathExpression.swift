import Foundation
import JSON

/// What an evaluation may see besides the resource: `%` variables, a reference resolver for
/// `resolve()`, a sink for `trace()`, and the clock for `now()` and `today()`.
public struct FHIRPathEnvironment: Sendable {
    /// Extra `%name` variables (without the `%`), beside the built-in `%resource`,
    /// `%rootResource`, `%context`, `%ucum`, `%sct`, `%loinc` and `%vs-` / `%ext-` names.
    public var variables: [String: [FHIRPathItem]] = [:]
    /// Finds the resource a reference (`Patient/1`, an absolute URL) points to, for `resolve()`
    /// beyond contained resources and the Bundle being evaluated; nil when unknown.
    public var resolver: (@Sendable (String) -> JSONValue?)?
    /// Receives each `trace(name)` call's name and collection.
    public var trace: (@Sendable (String, [FHIRPathItem]) -> Void)?
    /// The instant `now()` answers, fixed for the whole evaluation as the specification asks.
    public var now = Date()
    /// The bounds on expression size and evaluation work.
    public var limits = FHIRPathLimits()
    /// The specification's strict mode: an element no item's type defines (`name.given1`,
    /// `Observation.valueQuantity`) and a path that starts with another resource type are
    /// semantic errors. Off, they yield empty, as invariants need on mixed collections
    /// (`descendants().reference`) and on choice elements (`probability[x]`).
    public var strict = false
    /// Lets `as(type)` filter a collection of many items, as R4 core's dom-3 needs
    /// (`%resource.descendants().as(canonical)`); the specification refuses more than one item.
    public var allowsAsOnCollections = false
    /// With `strict`: refuses order-dependent functions (`skip()`, `first()`, indexers ...) on
    /// collections without an order (`children()`, `descendants()`).
    public var checksOrderedFunctions = false
    /// Steps shared by many evaluations (every invariant of one write), charged beside each
    /// evaluation's own `limits.maximumSteps`, so that their sum is bounded too.
    public var sharedBudget: FHIRPathStepBudget?

    /// No variables, no resolver, no trace sink, the current time, default limits, not strict.
    public init() {}
}

/// A number of evaluation steps that several evaluations draw from (see
/// `FHIRPathEnvironment.sharedBudget`). Not synchronized: one validation uses it at a time.
public final class FHIRPathStepBudget: @unchecked Sendable {
    /// Steps left; below zero the evaluation that overdrew it has thrown a `.limit` error.
    public fileprivate(set) var remaining: Int

    /// A budget of `steps` steps.
    public init(steps: Int) {
        remaining = steps
    }
}

/// A parsed FHIRPath expression, ready to evaluate against any number of resources.
///
/// ```swift
/// let expression = try FHIRPathExpression("name.where(use = 'official').given.first()")
/// let given = try expression.evaluate(on: patient)
/// ```
public struct FHIRPathExpression: Sendable {
    /// The expression's text.
    public let text: String
    let syntax: FHIRPathSyntax

    /// Parses `text`, throwing a `FHIRPathError` of kind `.syntax` (or `.semantic` for an
    /// unknown function or a wrong number of arguments, `.limit` for a text too long or
    /// nested too deep).
    public init(_ text: String, limits: FHIRPathLimits = FHIRPathLimits()) throws {
        self.text = text
        syntax = try FHIRPathParser.parse(text, limits: limits)
    }

    /// Evaluates the expression with `resource` as `%resource` and the context (`%context`,
    /// the initial focus) `context` when given, else the resource itself. `rootResource` is
    /// the resource that holds `resource` when it is contained or a Bundle entry
    /// (`%rootResource`, and where `resolve()` looks for `#id` and Bundle entries).
    public func evaluate(
        on resource: JSONValue, context: [FHIRPathItem]? = nil, rootResource: JSONValue? = nil,
        environment: FHIRPathEnvironment = FHIRPathEnvironment()
    ) throws -> [FHIRPathItem] {
        let root = FHIRPathNavigator.item(for: resource)
        let evaluator = FHIRPathEvaluator(
            root: root, container: rootResource.map(FHIRPathNavigator.item(for:)) ?? root, environment: environment)
        let focus = context ?? [root]
        evaluator.contextItems = focus
        if environment.strict {
            let types = focus.map { item -> FHIRPathElementType in
                if case .node(let node) = item { return node.type }
                return .unknown
            }
            try FHIRPathTypeChecker.check(syntax, focus: types.contains(.unknown) ? nil : types)
            if environment.checksOrderedFunctions { try FHIRPathTypeChecker.checkOrderedFunctions(syntax) }
        }
        return try evaluator.evaluate(syntax, FHIRPathFocus(items: focus))
    }

    /// Evaluates the expression as a constraint: true, false, or nil when it yields empty.
    /// Throws when it yields anything but one boolean.
    public func evaluateBoolean(on resource: JSONValue, environment: FHIRPathEnvironment = FHIRPathEnvironment()) throws
        -> Bool?
    {
        let result = try evaluate(on: resource, environment: environment)
        guard let first = result.first else { return nil }
        guard result.count == 1, case .boolean(let value)? = first.systemValue else {
            throw FHIRPathError(.execution, "expected one boolean, got \(result.count) item(s)")
        }
        return value
    }
}

/// The focus of an expression: `$this` (the items), `$index` and `$total` where defined.
struct FHIRPathFocus {
    var items: [FHIRPathItem]
    var index: Int?
    var total: [FHIRPathItem]?
}

/// Walks a parsed expression. One per evaluation: it counts steps against the limits.
final class FHIRPathEvaluator {
    /// `%resource`.
    let root: FHIRPathItem
    /// `%rootResource`: the resource itself, or the one that contains it.
    let container: FHIRPathItem
    let environment: FHIRPathEnvironment
    var contextItems: [FHIRPathItem] = []
    private var steps = 0
    private var stepsSinceCancellationCheck = 0
    /// Steps between two looks at `Task.isCancelled`: about a millisecond of work.
    static let cancellationInterval = 10_000
    private var depth = 0
    /// Results of focus-free chains (`%resource.snapshot.element`) already evaluated, by
    /// `focusFreeKey`: an invariant such as sdf-8 names one inside `all()`, and rebuilding it
    /// for every item made the evaluation quadratic in the resource's size.
    private var focusFreeResults: [String: [FHIRPathItem]] = [:]
    /// How deep `evaluate` may recurse (function arguments evaluated per item nest it).
    static let maximumDepth = 400

    init(root: FHIRPathItem, container: FHIRPathItem, environment: FHIRPathEnvironment) {
        self.root = root
        self.container = container
        self.environment = environment
    }

    var limits: FHIRPathLimits { environment.limits }

    /// Counts `count` steps of work, throwing once the evaluation has done too much, or when
    /// the task it runs in was cancelled or is past its `WorkDeadline` (looked at every
    /// `cancellationInterval` steps).
    func charge(_ count: Int) throws {
        steps += count
        stepsSinceCancellationCheck += count
        if stepsSinceCancellationCheck >= Self.cancellationInterval {
            stepsSinceCancellationCheck = 0
            if WorkDeadline.shouldStop {
                throw FHIRPathError(.limit, "the evaluation was stopped: its request was cancelled or ran out of time")
            }
        }
        if steps > limits.maximumSteps {
            throw FHIRPathError(.limit, "evaluation exceeded \(limits.maximumSteps) steps")
        }
        if let budget = environment.sharedBudget {
            budget.remaining -= count
            if budget.remaining < 0 {
                throw FHIRPathError(.limit, "the evaluations exceeded their shared budget of steps")
            }
        }
    }

    func checkSize(_ items: [FHIRPathItem]) throws -> [FHIRPathItem] {
        guard items.count <= limits.maximumCollectionSize else {
            throw FHIRPathError(.limit, "a collection exceeded \(limits.maximumCollectionSize) items")
        }
        return items
    }

    /// A function's result, charged one step per item it holds (`tail()`, `descendants()`,
    /// `select()` build collections as large as the resource) and checked for size.
    private func produced(_ items: [FHIRPathItem]) throws -> [FHIRPathItem] {
        try charge(items.count)
        return try checkSize(items)
    }

    func evaluate(_ syntax: FHIRPathSyntax, _ focus: FHIRPathFocus) throws -> [FHIRPathItem] {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maximumDepth else {
            throw FHIRPathError(.limit, "evaluation nested deeper than \(Self.maximumDepth)")
        }
        try charge(1)
        switch syntax {
        case .empty: return []
        case .literal(let item): return [item]
        case .this: return focus.items
        case .index:
            guard let index = focus.index else { throw FHIRPathError(.semantic, "$index used outside an iteration") }
            return [.integer(index)]
        case .total:
            guard let total = focus.total else { throw FHIRPathError(.semantic, "$total used outside aggregate()") }
            return total
        case .constant(let name): return try constant(name)
        case .member(let target, let name):
            if target != nil, let key = Self.focusFreeKey(syntax) {
                return try focusFree(key) { try member(name, of: try evaluate(target!, focus), isPathStart: false) }
            }
            let input = try target.map { try evaluate($0, focus) } ?? focus.items
            return try member(name, of: input, isPathStart: target == nil)
        case .function(let target, let name, let arguments):
            if target != nil, arguments.isEmpty, let key = Self.focusFreeKey(syntax) {
                return try focusFree(key) {
                    try produced(try callFunction(name, on: try evaluate(target!, focus), arguments: [], focus: focus))
                }
            }
            let input = try target.map { try evaluate($0, focus) } ?? focus.items
            return try produced(try callFunction(name, on: input, arguments: arguments, focus: focus))
        case .indexer(let target, let indexSyntax):
            let input = try evaluate(target, focus)
            let index = try evaluate(indexSyntax, focus)
            guard !index.isEmpty else { return [] }
            guard index.count == 1, case .integer(let position)? = index[0].systemValue else {
                throw FHIRPathError(.execution, "an index must be one integer")
            }
            return position >= 0 && position < input.count ? [input[position]] : []
        case .negate(let operand):
            return try FHIRPathOperators.negate(try evaluate(operand, focus))
        case .binary(let symbol, let left, let right):
            return try binary(symbol, left, right, focus)
        case .typeOperator(let symbol, let operand, let typeName):
            let input = try evaluate(operand, focus)
            guard input.count <= 1 else {
                throw FHIRPathError(.execution, "'\(symbol)' needs a single item, got \(input.count)")
            }
            guard let item = input.first else { return [] }
            if symbol == "is" { return [.boolean(try FHIRPathTypes.matches(item, typeName))] }
            return try FHIRPathTypes.matches(item, typeName, exactly: true) ? [item] : []
        }
    }

    /// The value of the focus-free chain `key`, computed by `compute` the first time only.
    private func focusFree(_ key: String, _ compute: () throws -> [FHIRPathItem]) throws -> [FHIRPathItem] {
        if let known = focusFreeResults[key] { return known }
        let result = try compute()
        focusFreeResults[key] = result
        return result
    }

    /// A key naming `syntax` when it is a chain of members and argument-free functions on a
    /// `%` variable (`%resource.snapshot.element.first()`): its value is then the same
    /// wherever it appears in one evaluation. Nil for anything that reads the focus.
    static func focusFreeKey(_ syntax: FHIRPathSyntax) -> String? {
        switch syntax {
        case .constant(let name): return "%" + name
        case .member(let target?, let name): return focusFreeKey(target).map { $0 + "." + name }
        case .function(let target?, let name, let arguments) where arguments.isEmpty:
            return focusFreeKey(target).map { $0 + "." + name + "()" }
        default: return nil
        }
    }

    private func binary(_ symbol: String, _ left: FHIRPathSyntax, _ right: FHIRPathSyntax, _ focus: FHIRPathFocus)
        throws -> [FHIRPathItem]
    {
        switch symbol {
        case "and", "or", "xor", "implies":
            let lhs = try FHIRPathOperators.boolean(try evaluate(left, focus))
            // Short-circuit where the left side decides, as the specification allows.
            if symbol == "and", lhs == false { return [.boolean(false)] }
            if symbol == "or", lhs == true { return [.boolean(true)] }
            if symbol == "implies", lhs == false { return [.boolean(true)] }
            let rhs = try FHIRPathOperators.boolean(try evaluate(right, focus))
            return FHIRPathOperators.logic(symbol, lhs, rhs).map { [.boolean($0)] } ?? []
        default:
            let lhs = try evaluate(left, focus), rhs = try evaluate(right, focus)
            try charge(lhs.count + rhs.count)
            if symbol == "|" { return try checkSize(try FHIRPathOperators.union(lhs, rhs, evaluator: self)) }
            let result = try FHIRPathOperators.apply(symbol, lhs, rhs)
            // `+` and `&` on strings double a string per step in `aggregate($total & $total)`.
            if case .string(let text)? = result.first, text.utf8.count > limits.maximumStringLength {
                throw FHIRPathError(.limit, "a string exceeded \(limits.maximumStringLength) bytes")
            }
            return result
        }
    }

    private func constant(_ name: String) throws -> [FHIRPathItem] {
        if let value = environment.variables[name] { return value }
        switch name {
        case "resource": return [root]
        case "rootResource": return [container]
        case "context": return contextItems
        case "ucum": return [.string("http://unitsofmeasure.org")]
        case "sct": return [.string("http://snomed.info/sct")]
        case "loinc": return [.string("http://loinc.org")]
        default:
            if name.hasPrefix("vs-") { return [.string("http://hl7.org/fhir/ValueSet/" + name.dropFirst(3))] }
            if name.hasPrefix("ext-") {
                return [.string("http://hl7.org/fhir/StructureDefinition/" + name.dropFirst(4))]
            }
            throw FHIRPathError(.semantic, "unknown variable %\(name)")
        }
    }

    /// `name` on each item: its child elements, or the item itself when `name` is its
    /// resource type at the start of a path (`Patient.name`).
    private func member(_ name: String, of input: [FHIRPathItem], isPathStart: Bool) throws -> [FHIRPathItem] {
        var result: [FHIRPathItem] = []
        // An element no item's type defines is a semantic error (`name.given1`), but in a
        // mixed collection (`descendants().linkId`) it is enough that some type has it.
        var unknownElement: FHIRPathError?
        var someTypeHasIt = false
        for item in input {
            try charge(1)
            guard case .node(let node) = item else { continue }
            if isPathStart, case .resource(let type) = node.type, name.first?.isUppercase == true {
                if type == name
                    || (StructureSchema.r4.resourceNodes[type ?? ""] != nil
                        && FHIRPathTypes.resourceAncestors.contains(name))
                {
                    result.append(item)
                    continue
                }
                if StructureSchema.r4.resourceNodes[name] != nil {
                    guard environment.strict else { continue }
                    throw FHIRPathError(.semantic, "the context is \(type ?? "a resource"), not \(name)")
                }
            }
            do {
                result += try FHIRPathNavigator.children(of: node, named: name)
                someTypeHasIt = true
            } catch let error as FHIRPathError where error.kind == .semantic {
                // A choice element's JSON name (`valueQuantity`) is never a FHIRPath name.
                if FHIRPathNavigator.isChoiceJSONName(name, of: node) { throw error }
                unknownElement = error
            }
        }
        if environment.strict, let unknownElement, !someTypeHasIt { throw unknownElement }
        // Charged per item produced, not per expression node: `%resource.x.y` builds every y.
        try charge(result.count)
        return try checkSize(result)
    }

    /// Evaluates `argument` once with the current focus (for arguments that do not iterate).
    func argument(_ syntax: FHIRPathSyntax, _ focus: FHIRPathFocus) throws -> [FHIRPathItem] {
        try evaluate(syntax, focus)
    }
}
