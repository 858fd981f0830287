/// The kinds of search parameter FHIR R4 defines.
public enum SearchParameterType: String, Sendable, CaseIterable {
    case string, token, reference, date, number, quantity, uri, composite, special
}

/// One search parameter of one resource type, as generated from the R4 SearchParameter
/// definitions into `Generated/SearchParameterTable.swift`.
public struct SearchParameterDefinition: Sendable, Hashable {
    /// The resource type it applies to (`Resource` for parameters every type has).
    public var base: String
    /// The name used in URLs, such as `birthdate`.
    public var code: String
    public var type: SearchParameterType
    /// The element paths whose values it indexes.
    public var paths: [ElementPath]
    /// For references: the resource types a value may point at.
    public var targets: [String]
    /// The id of the official SearchParameter resource, for the CapabilityStatement.
    public var definitionId: String
    /// For composites: the parts of a value (`a$b`), in order. `paths` then selects the
    /// element instances whose components must all match together.
    public var components: [CompositeComponent] = []
    /// Set when this parameter selects exactly what two others of its type select together, as
    /// Observation's `combo-code` is `code` and `component-code`: it has no index rows of its own,
    /// and a search reads theirs (``indexedAs``). Found by ``SearchParameterRegistry``.
    public var unionOf: [String]? = nil

    /// The parameters whose index rows a search of this one reads: itself, or the two it is the
    /// union of.
    public var indexedAs: [String] { unionOf ?? [code] }

    /// The canonical URL of the official definition.
    public var definitionURL: String { "http://hl7.org/fhir/SearchParameter/\(definitionId)" }
}

/// One component of a composite search parameter: a value of `type` read through `paths`
/// from one element instance (or from the resource, for paths marked `fromResource`).
public struct CompositeComponent: Sendable, Hashable {
    public var type: SearchParameterType
    public var paths: [ElementPath]

    /// Parses the generator's `type=path | path`.
    init?(parsing text: String) {
        guard let equals = text.firstIndex(of: "="),
            let type = SearchParameterType(rawValue: String(text[..<equals])), type != .composite, type != .special
        else { return nil }
        self.type = type
        paths = text[text.index(after: equals)...].components(separatedBy: " | ").compactMap(ElementPath.init(parsing:))
        if paths.isEmpty { return nil }
    }
}

/// Every search parameter Caduceus supports, looked up by resource type and code.
public struct SearchParameterRegistry: Sendable {
    /// The registry built from the generated R4 table.
    public static let r4 = SearchParameterRegistry(table: searchParameterTableText)

    private var byType: [String: [String: SearchParameterDefinition]] = [:]
    /// Parameters every resource type has (`_tag`, `_profile`, ...).
    public private(set) var common: [String: SearchParameterDefinition] = [:]
    /// Per type, sorted by code: worked out once, as every write and search asks for them.
    private var sortedByType: [String: [SearchParameterDefinition]] = [:]
    private var indexedByType: [String: [SearchParameterDefinition]] = [:]

    init(table: String) {
        for line in table.split(separator: "\n") {
            let columns = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard columns.count == 6 || columns.count == 7, let type = SearchParameterType(rawValue: columns[2]) else {
                continue
            }
            let paths = columns[3].components(separatedBy: " | ").compactMap(ElementPath.init(parsing:))
            var definition = SearchParameterDefinition(
                base: columns[0], code: columns[1], type: type, paths: paths,
                targets: columns[4].isEmpty ? [] : columns[4].split(separator: ",").map(String.init),
                definitionId: columns[5])
            if type == .composite {
                let parts = columns.count == 7 ? columns[6].components(separatedBy: " ; ") : []
                definition.components = parts.compactMap(CompositeComponent.init(parsing:))
                guard definition.components.count >= 2, definition.components.count == parts.count else { continue }
            }
            if columns[0] == "Resource" || columns[0] == "DomainResource" {
                common[columns[1]] = definition
            } else {
                byType[columns[0], default: [:]][columns[1]] = definition
            }
        }
        let indexedCommon = common.values.filter { !SearchParameterRegistry.columnParameters.contains($0.code) }
            .sorted { $0.code < $1.code }
        for (type, parameters) in byType {
            sortedByType[type] = Self.markingUnions(parameters.values.sorted { $0.code < $1.code })
            byType[type] = Dictionary(uniqueKeysWithValues: sortedByType[type]!.map { ($0.code, $0) })
            indexedByType[type] = sortedByType[type]!.filter { $0.unionOf == nil } + indexedCommon
        }
        for type in fhirResourceTypeNames where indexedByType[type] == nil { indexedByType[type] = indexedCommon }
    }

    /// `parameters` with ``SearchParameterDefinition/unionOf`` set on each whose paths are
    /// exactly those of two others of the same type (and components, for composites), which are
    /// not unions themselves. R4's are Observation's six `combo-*` parameters: about a fifth of an
    /// Observation's index rows were copies of its `code-*` and `component-*` rows. References
    /// are left alone (includes, chains and compartments name their parameter's own rows).
    static func markingUnions(_ parameters: [SearchParameterDefinition]) -> [SearchParameterDefinition] {
        struct Selection: Hashable {
            var type: SearchParameterType
            var components: [CompositeComponent]
            var paths: Set<ElementPath>
        }
        var single: [Selection: String] = [:]
        for parameter in parameters where parameter.type != .reference {
            let selection = Selection(
                type: parameter.type, components: parameter.components, paths: Set(parameter.paths))
            if single[selection] == nil { single[selection] = parameter.code }
        }
        let marked = parameters.map { parameter in
            var seen = Set<ElementPath>()
            let paths = parameter.paths.filter { seen.insert($0).inserted }
            guard parameter.type != .reference, paths.count >= 2, paths.count <= 8 else { return parameter }
            func code(_ part: Set<ElementPath>) -> String? {
                single[Selection(type: parameter.type, components: parameter.components, paths: part)]
            }
            let all = Set(paths)
            // Each split of the paths in two: both halves must be another parameter's paths.
            for mask in 1..<(1 << (paths.count - 1)) {
                let first = Set(paths.indices.filter { mask & (1 << $0) != 0 }.map { paths[$0] })
                let second = all.subtracting(first)
                if let a = code(first), let b = code(second), a != parameter.code, b != parameter.code {
                    var union = parameter
                    union.unionOf = [a, b].sorted()
                    return union
                }
            }
            return parameter
        }
        // A part that is a union itself has no rows to read.
        let unions = Set(marked.filter { $0.unionOf != nil }.map(\.code))
        return marked.map { parameter in
            guard let parts = parameter.unionOf, parts.contains(where: unions.contains) else { return parameter }
            var plain = parameter
            plain.unionOf = nil
            return plain
        }
    }

    /// The parameter `code` of `resourceType`, including the common ones.
    public func parameter(_ code: String, of resourceType: String) -> SearchParameterDefinition? {
        byType[resourceType]?[code] ?? common[code]
    }

    /// The type-specific parameters of `resourceType`, sorted by code.
    public func parameters(of resourceType: String) -> [SearchParameterDefinition] {
        sortedByType[resourceType] ?? []
    }

    /// The parameters indexed when a resource of this type is written: its own and the common
    /// ones that have element paths (`_id` and `_lastUpdated` are columns of their own).
    public func indexedParameters(of resourceType: String) -> [SearchParameterDefinition] {
        indexedByType[resourceType] ?? []
    }

    /// Common parameters answered from the resource table itself rather than from an index.
    public static let columnParameters: Set<String> = ["_id", "_lastUpdated"]

    /// The R4 parameters left out, one per line: base, code, type, reason.
    public static var unsupportedDefinitions: [(base: String, code: String, type: String, reason: String)] {
        unsupportedSearchParameterText.split(separator: "\n").map { line in
            let c = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return (c[0], c[1], c[2], c.count > 3 ? c[3] : "")
        }
    }
}
