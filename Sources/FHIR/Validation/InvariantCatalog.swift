import JSON

/// One `constraint` of the R4 core definitions: its key, severity, text and FHIRPath
/// expression, parsed once when the catalog is built.
struct CoreConstraint: Sendable {
    var key: String
    /// `error` refuses a write; `warning` is only reported by `$validate`.
    var isError: Bool
    var human: String
    var expressionText: String
    /// Nil for the constraints checked in Swift instead (`isNative`) and for an expression
    /// the engine refuses (none in R4 core: `InvariantCatalogTests` asserts it).
    var expression: FHIRPathExpression?
    /// ele-1, bdl-7, dom-3, ref-1: checked by the structure walk in Swift (cheaper, same meaning).
    var isNative: Bool
    /// The member the context needs for the constraint to be able to fail (`contained` for
    /// dom-2): without it (nor its `_name`) the expression yields true or empty, so it is skipped.
    var guardMember: String?
    /// With `guardMember`: the member must also be a string starting with this (`#` for ref-1).
    var guardPrefix: String?

    /// Whether the constraint can fail on `object` (see `guardMember`).
    func mayFail(on object: JSONObject) -> Bool {
        guard let guardMember else { return true }
        guard let value = object[guardMember] else { return object["_" + guardMember] != nil }
        guard let guardPrefix else { return true }
        if case .string(let text) = value { return text.hasPrefix(guardPrefix) }
        return true
    }

    var severity: String { isError ? "error" : "warning" }
}

/// Where constraints run: on the node itself (`child` nil) or on each value of one of its
/// elements (`Organization.telecom`, `RiskAssessment.prediction.probability[x]`).
struct ConstraintSite: Sendable {
    var child: String?
    /// Indices into `InvariantCatalog.constraints`.
    var constraints: [Int]
}

/// A core extension definition: where it may be used and the value it may carry.
struct CoreExtension: Sendable {
    var url: String
    /// A modifier extension belongs in `modifierExtension`, any other in `extension`.
    var isModifier: Bool
    /// The JSON names its value may take (`valueString`); nil when it may carry none (its
    /// content is nested extensions).
    var valueNames: Set<String>?
    /// The element contexts of the definition (`Patient`, `HumanName.family`, `Element`).
    var contexts: [String]
}

/// The constraints, Reference targets and extension definitions of R4 core, built once from
/// the tables Scripts/generators/generate-invariants.py generates into `Generated/InvariantTable.swift`,
/// and attached to the nodes of the structure schema. A class, so the walk holds it by
/// reference; immutable once built (hence Sendable).
final class InvariantCatalog: @unchecked Sendable {
    /// The catalog of FHIR R4 (4.0.1).
    static let r4 = InvariantCatalog(schema: .r4)

    private(set) var constraints: [CoreConstraint] = []
    /// Per node of the schema (same indices as `StructureSchema.nodes`): its constraint sites.
    private(set) var sitesByNode: [[ConstraintSite]]
    /// DomainResource's constraints (dom-2 ... dom-6), for every resource but Bundle, Binary, Parameters.
    private(set) var domainResourceConstraints: [Int] = []
    /// Reference element path (`Observation.subject`) → the resource types it may point to.
    private(set) var referenceTargets: [String: Set<String>] = [:]
    /// Full extension URL → definition.
    private(set) var extensions: [String: CoreExtension] = [:]
    /// Table entries that did not fit the schema or the engine, for InvariantCatalogTests.
    private(set) var unplaced: [String] = []
    /// The index of ele-1, bdl-7, dom-3 and ref-1, checked natively.
    private(set) var elementConstraint = 0
    private(set) var fullUrlConstraint = 0
    private(set) var containedConstraint = 0
    private(set) var localReferenceConstraint = 0

    static let definitionPrefix = "http://hl7.org/fhir/StructureDefinition/"

    init(schema: StructureSchema) {
        sitesByNode = Array(repeating: [], count: schema.nodes.count)
        for line in invariantTableText.split(separator: "\n") {
            let columns = line.split(separator: "\t", maxSplits: 5, omittingEmptySubsequences: false).map(String.init)
            guard columns.count == 6 else { unplaced.append("malformed: \(line)"); continue }
            let guardParts = columns[3].split(separator: "^", maxSplits: 1).map(String.init)
            var constraint = CoreConstraint(
                key: columns[0], isError: columns[1] == "error", human: columns[4], expressionText: columns[5],
                expression: nil, isNative: columns[2] == "1", guardMember: guardParts.first,
                guardPrefix: guardParts.count > 1 ? guardParts[1] : nil)
            if !constraint.isNative {
                do {
                    constraint.expression = try FHIRPathExpression(columns[5])
                } catch {
                    unplaced.append("\(columns[0]) does not parse: \(error)")
                }
            }
            if constraint.key == "ele-1" { elementConstraint = constraints.count }
            if constraint.key == "bdl-7" { fullUrlConstraint = constraints.count }
            if constraint.key == "dom-3" { containedConstraint = constraints.count }
            if constraint.key == "ref-1" { localReferenceConstraint = constraints.count }
            constraints.append(constraint)
        }
        var nodeByName: [String: Int] = [:]
        for (index, node) in schema.nodes.enumerated() where index != schema.primitiveElementNode {
            nodeByName[node.name] = index
        }
        for line in invariantContextText.split(separator: "\n") {
            let columns = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard columns.count == 3 else { unplaced.append("malformed: \(line)"); continue }
            let indices = columns[2].split(separator: ",").compactMap { Int($0) }.filter { $0 < constraints.count }
            switch columns[0] {
            case "DomainResource": domainResourceConstraints = indices
            case "Element": break  // ele-1, native
            default:
                guard let node = nodeByName[columns[0]] else { unplaced.append("no node \(columns[0])"); continue }
                sitesByNode[node].append(
                    ConstraintSite(child: columns[1].isEmpty ? nil : columns[1], constraints: indices))
            }
        }
        for line in referenceTargetText.split(separator: "\n") {
            let columns = line.split(separator: "\t")
            guard columns.count == 2 else { continue }
            referenceTargets[String(columns[0])] = Set(columns[1].split(separator: ",").map(String.init))
        }
        for line in extensionTableText.split(separator: "\n") {
            let columns = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard columns.count == 4 else { unplaced.append("malformed: \(line)"); continue }
            let url = columns[0].contains("://") ? columns[0] : Self.definitionPrefix + columns[0]
            let names =
                columns[2] == "-"
                ? nil
                : Set(columns[2].split(separator: ",").map { "value" + $0.prefix(1).uppercased() + $0.dropFirst() })
            extensions[url] = CoreExtension(
                url: url, isModifier: columns[1] == "1", valueNames: names,
                contexts: columns[3].split(separator: ",").map(String.init))
        }
    }

    /// How many constraints run somewhere (for the tests' counts).
    var placedConstraintCount: Int {
        Set(sitesByNode.flatMap { $0.flatMap(\.constraints) } + domainResourceConstraints + [elementConstraint]).count
    }
}
