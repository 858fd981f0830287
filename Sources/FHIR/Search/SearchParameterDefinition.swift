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
            sortedByType[type] = parameters.values.sorted { $0.code < $1.code }
            indexedByType[type] = sortedByType[type]! + indexedCommon
        }
        for type in fhirResourceTypeNames where indexedByType[type] == nil { indexedByType[type] = indexedCommon }
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
