/// The strict mode's check before evaluation: follows the element types the definitions
/// declare through paths, `as`, `ofType()` and the functions that keep their input's type,
/// and refuses a name that none of the possible types has (`(Observation.value as Period).unit`),
/// even where the data would give an empty collection and evaluation could not tell.
///
/// Only what it can follow is checked: past any other function, operator or variable the
/// type is unknown and the check stops there.
enum FHIRPathTypeChecker {
    private static let schema = StructureSchema.r4
    private static let typePreserving: Set<String> = [
        "where", "first", "last", "tail", "skip", "take", "single", "distinct", "trace", "intersect", "exclude",
    ]

    /// Checks `syntax` for a focus of the given types; nil types: unknown, nothing checked.
    static func check(_ syntax: FHIRPathSyntax, focus: [FHIRPathElementType]?) throws {
        _ = try infer(syntax, focus, depth: 0)
    }

    /// The types `syntax` can yield, or nil when unknown.
    private static func infer(_ syntax: FHIRPathSyntax, _ focus: [FHIRPathElementType]?, depth: Int) throws
        -> [FHIRPathElementType]?
    {
        // The parser bounds the tree's depth; this guard only keeps the walk's own promise.
        guard depth < 1000 else { return nil }
        switch syntax {
        case .member(let target, let name):
            let input = try target.map { try infer($0, focus, depth: depth + 1) } ?? focus
            guard let input, !input.isEmpty else { return nil }
            if target == nil, schema.resourceNodes[name] != nil {
                return input.contains(.resource(name)) ? [.resource(name)] : nil
            }
            var result: [FHIRPathElementType] = []
            var structureNames: [String] = []
            for type in input {
                guard let structure = structure(of: type) else { return nil }
                structureNames.append(structure.name)
                if let element = structure.elements.first(where: { $0.name == name }) {
                    result += element.types.map { FHIRPathNavigator.elementType($0, value: nil) }
                }
            }
            guard !result.isEmpty else {
                throw FHIRPathError(.semantic, "\(structureNames.joined(separator: " or ")) has no element '\(name)'")
            }
            return result
        case .typeOperator(let symbol, let operand, let typeName):
            _ = try infer(operand, focus, depth: depth + 1)
            return symbol == "as" ? declaredType(typeName).map { [$0] } : nil
        case .function(let target, let name, let arguments):
            let input = try target.map { try infer($0, focus, depth: depth + 1) } ?? focus
            if name == "where" || name == "exists" || name == "all" || name == "select" {
                for argument in arguments { _ = try infer(argument, input, depth: depth + 1) }
            }
            if name == "ofType" || name == "as", let argument = arguments.first,
                let typeName = try? FHIRPathTypes.name(of: argument)
            {
                return declaredType(typeName).map { [$0] }
            }
            return typePreserving.contains(name) ? input : nil
        case .indexer(let target, _):
            return try infer(target, focus, depth: depth + 1)
        case .binary(_, let left, let right):
            _ = try infer(left, focus, depth: depth + 1)
            _ = try infer(right, focus, depth: depth + 1)
            return nil
        case .negate(let operand):
            _ = try infer(operand, focus, depth: depth + 1)
            return nil
        default:
            return nil
        }
    }

    private static let orderedFunctions: Set<String> = ["skip", "take", "first", "last", "tail", "single"]
    /// Functions whose result keeps the order (or the lack of it) of their input.
    private static let orderKeeping: Set<String> = [
        "where", "select", "distinct", "ofType", "trace", "exclude", "intersect", "as",
    ]

    /// Refuses `skip()`, `first()`, an indexer ... on a collection without an order
    /// (`children()`, `descendants()` and paths or filters of them), as strict mode's
    /// ordered-function check asks.
    static func checkOrderedFunctions(_ syntax: FHIRPathSyntax, depth: Int = 0) throws {
        guard depth < 1000 else { return }
        switch syntax {
        case .function(let target, let name, let arguments):
            if let target {
                if orderedFunctions.contains(name), isUnordered(target) {
                    throw FHIRPathError(
                        .semantic, "\(name)() needs an ordered collection; children() and descendants() have no order")
                }
                try checkOrderedFunctions(target, depth: depth + 1)
            }
            for argument in arguments { try checkOrderedFunctions(argument, depth: depth + 1) }
        case .indexer(let target, let index):
            if isUnordered(target) { throw FHIRPathError(.semantic, "an indexer needs an ordered collection") }
            try checkOrderedFunctions(target, depth: depth + 1)
            try checkOrderedFunctions(index, depth: depth + 1)
        case .member(let target?, _), .negate(let target), .typeOperator(_, let target, _):
            try checkOrderedFunctions(target, depth: depth + 1)
        case .binary(_, let left, let right):
            try checkOrderedFunctions(left, depth: depth + 1)
            try checkOrderedFunctions(right, depth: depth + 1)
        default:
            break
        }
    }

    private static func isUnordered(_ syntax: FHIRPathSyntax) -> Bool {
        switch syntax {
        case .function(let target, let name, _):
            if name == "children" || name == "descendants" { return true }
            return orderKeeping.contains(name) && target.map(isUnordered) == true
        case .member(let target?, _): return isUnordered(target)
        default: return false
        }
    }

    private static func structure(of type: FHIRPathElementType) -> StructureNode? {
        switch type {
        case .complex(let index): return schema.nodes[index]
        case .resource(let name?): return schema.resourceNodes[name].map { schema.nodes[$0] }
        case .primitive: return schema.nodes[schema.primitiveElementNode]
        default: return nil
        }
    }

    /// The type a type name stands for, when it is a FHIR resource, data type or primitive.
    private static func declaredType(_ typeName: String) -> FHIRPathElementType? {
        var name = Substring(typeName)
        if name.hasPrefix("FHIR.") { name = name.dropFirst(5) } else if name.contains(".") { return nil }
        if schema.resourceNodes[String(name)] != nil { return .resource(String(name)) }
        if let index = schema.dataTypeNodes[String(name)] { return .complex(index) }
        return PrimitiveType(rawValue: String(name)).map { .primitive($0) }
    }
}
