import Foundation
import JSON

/// FHIR's additions to FHIRPath (`extension()`, `resolve()`, `hasValue()`, `getValue()`,
/// `htmlChecks()`, `conformsTo()`, `memberOf()`) and the boundary functions.
extension FHIRPathEvaluator {
    func fhirFunction(_ name: String, _ input: [FHIRPathItem], _ arguments: [FHIRPathSyntax], _ focus: FHIRPathFocus)
        throws -> [FHIRPathItem]?
    {
        switch name {
        case "extension":
            guard let url = try evaluate(arguments[0], focus).first?.stringForm else { return [] }
            var result: [FHIRPathItem] = []
            for case .node(let node) in input {
                for case .node(let child) in try FHIRPathNavigator.children(of: node, named: "extension")
                where
                    child.value?.objectValue?["url"]?.stringValue == url
                {
                    result.append(.node(child))
                }
            }
            return result
        case "hasValue":
            guard input.count == 1, case .node(let node) = input[0], case .primitive = node.type else {
                return [.boolean(false)]
            }
            return [.boolean(node.value != nil)]
        case "getValue":
            guard input.count == 1, case .node(let node) = input[0], case .primitive = node.type else { return [] }
            return input[0].systemValue.map { [$0] } ?? []
        case "resolve":
            var result: [FHIRPathItem] = []
            for item in input {
                try charge(
                    1 + (container.nodeValue?["entry"]?.arrayValue?.count ?? 0)
                        + (container.nodeValue?["contained"]?.arrayValue?.count ?? 0))
                if let target = resolve(item) { result.append(target) }
            }
            return result
        case "htmlChecks":
            // txt-1: the narrative rules, as NarrativeChecker applies them on every write.
            guard let text = try singleValue(input, name)?.stringForm else { return [] }
            try charge(text.utf8.count / 64 + 1)
            return [.boolean(NarrativeChecker.problem(inDiv: text) == nil)]
        case "conformsTo":
            guard let url = try evaluate(arguments[0], focus).first?.stringForm else { return [] }
            let prefix = "http://hl7.org/fhir/StructureDefinition/"
            guard url.hasPrefix(prefix) else {
                throw FHIRPathError(.execution, "conformsTo() knows only the core profiles, not \(url)")
            }
            let type = String(url.dropFirst(prefix.count))
            return try input.map { .boolean(try FHIRPathTypes.matches($0, type)) }
        case "memberOf":
            return try memberOf(input, arguments, focus)
        case "comparable":
            guard case .quantity(let left)? = try singleValue(input, name),
                case .quantity(let right)? = try singleValue(try evaluate(arguments[0], focus), name)
            else { return [] }
            return [.boolean(FHIRPathUnits.compare(left, right) != nil)]
        default: return nil
        }
    }

    /// `memberOf(valueSet)` on R4's terminology (``Terminology/r4``): a code, Coding,
    /// Quantity or CodeableConcept (any of its codings) in the value set; empty when that
    /// cannot be told (an unknown value set, or one drawing on all of LOINC or SNOMED CT).
    private func memberOf(_ input: [FHIRPathItem], _ arguments: [FHIRPathSyntax], _ focus: FHIRPathFocus) throws
        -> [FHIRPathItem]
    {
        guard let url = try evaluate(arguments[0], focus).first?.stringForm, let item = input.first else { return [] }
        guard input.count == 1 else {
            throw FHIRPathError(.execution, "memberOf() needs a single item, got \(input.count)")
        }
        guard let valueSet = Terminology.r4.valueSet(url: url) else { return [] }
        var codings: [(system: String?, code: String)] = []
        if case .node(let node) = item, let object = node.value?.objectValue {
            for coding in object["coding"]?.arrayValue ?? [.object(object)] {
                if let code = coding["code"]?.stringValue { codings.append((coding["system"]?.stringValue, code)) }
            }
        } else if let code = item.stringForm {
            codings.append((nil, code))
        }
        try charge(codings.count)
        var member: Bool? = false
        for coding in codings {
            member = Kleene.or(member, valueSet.contains(system: coding.system, code: coding.code))
        }
        return member.map { [.boolean($0)] } ?? []
    }

    /// The resource a Reference (or a reference string) points to: a contained resource for
    /// `#id`, an entry of the Bundle being evaluated by `fullUrl` or `type/id`, or what the
    /// environment's resolver finds.
    private func resolve(_ item: FHIRPathItem) -> FHIRPathItem? {
        var reference: String?
        if case .node(let node) = item, let object = node.value?.objectValue {
            reference = object["reference"]?.stringValue
        } else {
            reference = item.stringForm
        }
        guard let reference, !reference.isEmpty else { return nil }
        // Contained resources and Bundle entries are the outermost resource's.
        guard case .node(let rootNode) = container, let rootObject = rootNode.value?.objectValue else { return nil }
        if reference.hasPrefix("#") {
            let id = reference.dropFirst()
            if id.isEmpty { return container }
            for contained in rootObject["contained"]?.arrayValue ?? [] where contained["id"]?.stringValue == String(id)
            {
                return FHIRPathNavigator.item(for: contained)
            }
            return nil
        }
        if rootObject["resourceType"]?.stringValue == "Bundle" {
            for entry in rootObject["entry"]?.arrayValue ?? [] {
                guard let resource = entry["resource"] else { continue }
                let fullUrl = entry["fullUrl"]?.stringValue
                let typeAndId =
                    (resource["resourceType"]?.stringValue ?? "") + "/" + (resource["id"]?.stringValue ?? "")
                if fullUrl == reference || reference == typeAndId || reference.hasSuffix("/" + typeAndId) {
                    return FHIRPathNavigator.item(for: resource)
                }
            }
        }
        return environment.resolver?(reference).map(FHIRPathNavigator.item(for:))
    }

    /// `lowBoundary()`, `highBoundary()` and `precision()` of decimals, quantities and dates.
    func boundaryFunction(
        _ name: String, _ input: [FHIRPathItem], _ arguments: [FHIRPathSyntax], _ focus: FHIRPathFocus
    ) throws -> [FHIRPathItem]? {
        guard ["lowBoundary", "highBoundary", "precision"].contains(name) else { return nil }
        guard let item = try singleValue(input, name) else { return [] }
        let precision = try arguments.first.flatMap { try singleInteger($0, focus) }
        let isLow = name == "lowBoundary"
        switch item {
        case .integer, .decimal:
            let value = FHIRPathOperators.decimal(item)!
            let scale = FHIRPathOperators.scale(of: item)
            if name == "precision" { return [.integer(scale)] }
            let digits = precision ?? 8
            return decimalBoundary(value, scale: scale, isLow: isLow, precision: digits).map {
                [.decimal($0, scale: digits)]
            } ?? []
        case .quantity(var quantity):
            guard name != "precision" else { return [.integer(FHIRPathOperators.naturalScale(quantity.value))] }
            guard
                let bound = decimalBoundary(
                    quantity.value, scale: FHIRPathOperators.naturalScale(quantity.value), isLow: isLow,
                    precision: precision ?? 8)
            else { return [] }
            quantity.value = bound
            return [.quantity(quantity)]
        case .date(let value), .dateTime(let value), .time(let value):
            let digits = value.kind == .time ? [2, 4, 6, 9] : [4, 6, 8, 10, 12, 14, 17]
            if name == "precision" { return [.integer(digits[value.parts.count - 1])] }
            let wanted = precision ?? (value.kind == .time ? 9 : value.kind == .date ? 8 : 17)
            guard let count = digits.firstIndex(of: wanted).map({ $0 + 1 }) else { return [] }
            var bound = value
            let minimum = value.kind == .time ? [0, 0, 0, 0] : [1, 1, 1, 0, 0, 0, 0]
            let maximum = value.kind == .time ? [23, 59, 59, 999] : [9999, 12, 31, 23, 59, 59, 999]
            while bound.parts.count < count {
                var next = isLow ? minimum[bound.parts.count] : maximum[bound.parts.count]
                if !isLow, value.kind != .time, bound.parts.count == 2 {
                    next = FHIRPathDateTime.daysIn(year: bound.parts[0], month: bound.parts[1])
                }
                bound.parts.append(next)
            }
            bound.parts = Array(bound.parts.prefix(count))
            if value.kind == .dateTime, count > 3, bound.offset == nil { bound.offset = isLow ? 14 * 60 : -12 * 60 }
            if value.kind == .dateTime, count <= 3 { bound.offset = nil }
            switch item {
            case .time: return [.time(bound)]
            case .date where count > 3: bound.kind = .dateTime; return [.dateTime(bound)]
            case .date: return [.date(bound)]
            default:
                if count <= 3 { bound.kind = .date; return [.date(bound)] }
                return [.dateTime(bound)]
            }
        default:
            return []
        }
    }

    private func decimalBoundary(_ value: Decimal, scale: Int, isLow: Bool, precision: Int) -> Decimal? {
        guard precision >= 0, precision <= 28 else { return nil }
        var half = Decimal(5)
        half = half * Decimal(sign: .plus, exponent: -(scale + 1), significand: 1)
        let edge = isLow ? value - half : value + half
        if precision >= scale + 1 { return edge }
        let truncated = FHIRPathOperators.rounded(edge, precision, .down)
        if isLow {
            return truncated > edge ? truncated - Decimal(sign: .plus, exponent: -precision, significand: 1) : truncated
        }
        return truncated < edge ? truncated + Decimal(sign: .plus, exponent: -precision, significand: 1) : truncated
    }
}
