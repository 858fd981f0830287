import Foundation

/// The rows a resource contributes to the search index tables, one array per parameter kind.
public struct SearchIndexEntries: Sendable, Equatable {
    public struct StringEntry: Sendable, Hashable {
        public var parameter: String
        /// Lower-cased, accents removed: what default and `:contains` searches compare.
        public var normalized: String
        /// As written: what `:exact` compares.
        public var exact: String
    }
    public struct TokenEntry: Sendable, Hashable {
        public var parameter: String
        public var system: String?
        public var code: String?
    }
    public struct ReferenceEntry: Sendable, Hashable {
        public var parameter: String
        public var targetType: String?
        public var targetId: String?
        /// The reference text itself (absolute URLs, canonicals).
        public var url: String?
    }
    public struct DateEntry: Sendable, Hashable {
        public var parameter: String
        public var range: FHIRDateRange
    }
    public struct NumberEntry: Sendable, Hashable {
        public var parameter: String
        public var value: Double
        public var system: String?
        public var code: String?
    }

    public var strings: [StringEntry] = []
    public var tokens: [TokenEntry] = []
    public var references: [ReferenceEntry] = []
    public var dates: [DateEntry] = []
    public var uris: [StringEntry] = []
    /// Numbers and quantities (quantities carry system and code).
    public var numbers: [NumberEntry] = []

    public init() {}
}

/// Extracts search index values from a resource, driven by the generated parameter table.
public struct SearchIndexer: Sendable {
    public let registry: SearchParameterRegistry

    public init(registry: SearchParameterRegistry = .r4) { self.registry = registry }

    /// The index rows for `resource` of `resourceType`, duplicates removed.
    public func entries(for resource: JSONValue, resourceType: String) -> SearchIndexEntries {
        var entries = SearchIndexEntries()
        for parameter in registry.indexedParameters(of: resourceType) {
            for path in parameter.paths {
                if path.terminalType == "deceased" {
                    indexDeceased(resource, parameter: parameter.code, into: &entries)
                    continue
                }
                for (value, type) in path.evaluate(in: resource) {
                    index(value, type: type, parameter: parameter, path: path, into: &entries)
                }
            }
        }
        entries.strings = SearchIndexer.unique(entries.strings)
        entries.tokens = SearchIndexer.unique(entries.tokens)
        entries.references = SearchIndexer.unique(entries.references)
        entries.dates = SearchIndexer.unique(entries.dates)
        entries.uris = SearchIndexer.unique(entries.uris)
        entries.numbers = SearchIndexer.unique(entries.numbers)
        return entries
    }

    private static func unique<T: Hashable>(_ items: [T]) -> [T] {
        var seen = Set<T>()
        return items.filter { seen.insert($0).inserted }
    }

    private func indexDeceased(_ resource: JSONValue, parameter: String, into entries: inout SearchIndexEntries) {
        let deceased: Bool
        if case .bool(let flag)? = resource["deceasedBoolean"] {
            deceased = flag
        } else {
            deceased = resource["deceasedDateTime"] != nil
        }
        entries.tokens.append(.init(parameter: parameter, system: nil, code: deceased ? "true" : "false"))
    }

    private func index(
        _ value: JSONValue, type: String, parameter: SearchParameterDefinition, path: ElementPath,
        into entries: inout SearchIndexEntries
    ) {
        let code = parameter.code
        switch parameter.type {
        case .string:
            for text in SearchIndexer.strings(of: value, type: type) {
                entries.strings.append(.init(parameter: code, normalized: SearchIndexer.normalize(text), exact: text))
            }
        case .token:
            entries.tokens.append(contentsOf: SearchIndexer.tokens(of: value, type: type).map {
                .init(parameter: code, system: $0.system, code: $0.code)
            })
        case .reference:
            if let reference = SearchIndexer.reference(of: value, type: type) {
                if let wanted = path.targetType, reference.targetType != wanted { return }
                entries.references.append(.init(
                    parameter: code, targetType: reference.targetType, targetId: reference.targetId,
                    url: reference.url))
            }
        case .date:
            for range in SearchIndexer.dateRanges(of: value, type: type) {
                entries.dates.append(.init(parameter: code, range: range))
            }
        case .uri:
            if let text = value.stringValue {
                entries.uris.append(.init(parameter: code, normalized: text, exact: text))
            }
        case .number:
            if case .number(let text) = value, let number = Double(text) {
                entries.numbers.append(.init(parameter: code, value: number, system: nil, code: nil))
            }
        case .quantity:
            if case .number(let text)? = value["value"], let number = Double(text) {
                let unitCode = value["code"]?.stringValue ?? value["currency"]?.stringValue ?? value["unit"]?.stringValue
                entries.numbers.append(.init(
                    parameter: code, value: number, system: value["system"]?.stringValue, code: unitCode))
            }
        case .composite, .special:
            return
        }
    }

    /// Lower-cases and strips accents, so that `Chalmérs` is found by `chalmers`.
    public static func normalize(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text.lowercased() }
        return text.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
    }

    static func strings(of value: JSONValue, type: String) -> [String] {
        switch value {
        case .string(let text): return [text]
        case .object(let object):
            // HumanName, Address and other complex types: every string part counts.
            var texts: [String] = []
            for (key, member) in object where key != "extension" && key != "id" && key != "use" && key != "period" {
                switch member {
                case .string(let text): texts.append(text)
                case .array(let items): texts.append(contentsOf: items.compactMap(\.stringValue))
                default: break
                }
            }
            return texts
        default: return []
        }
    }

    static func tokens(of value: JSONValue, type: String) -> [(system: String?, code: String?)] {
        switch value {
        case .string(let text): return [(nil, text)]
        case .bool(let flag): return [(nil, flag ? "true" : "false")]
        case .number(let text): return [(nil, text)]
        case .object:
            if let codings = value["coding"]?.arrayValue {  // CodeableConcept
                return codings.flatMap { tokens(of: $0, type: "Coding") }
            }
            if type == "Identifier" || (type == "*" && value["value"] != nil && value["code"] == nil) {
                let system = value["system"]?.stringValue
                guard let code = value["value"]?.stringValue else { return system.map { [($0, nil)] } ?? [] }
                return [(system, code)]
            }
            if type == "ContactPoint" {
                return value["value"]?.stringValue.map { [(nil, $0)] } ?? []
            }
            let system = value["system"]?.stringValue
            let code = value["code"]?.stringValue
            if system == nil, code == nil { return [] }
            return [(system, code)]
        default: return []
        }
    }

    /// Splits a reference into type and id where it has the `Type/id` form, relative or at the
    /// end of an absolute URL; canonicals and other URLs are kept whole.
    static func reference(of value: JSONValue, type: String) -> (targetType: String?, targetId: String?, url: String?)? {
        if type == "Resource" {  // an inline resource (Bundle.entry[0].resource)
            guard let resourceType = value["resourceType"]?.stringValue, let id = value["id"]?.stringValue else {
                return nil
            }
            return (resourceType, id, nil)
        }
        let text: String
        if let string = value.stringValue {
            text = string
        } else if let string = value["reference"]?.stringValue {
            text = string
        } else {
            return nil
        }
        if text.hasPrefix("#") { return nil }  // contained resources are not indexed
        let parsed = ResourceReference(parsing: text)
        return (parsed?.type, parsed?.id, text)
    }

    static func dateRanges(of value: JSONValue, type: String) -> [FHIRDateRange] {
        switch value {
        case .string(let text):
            return FHIRDateRange(parsing: text).map { [$0] } ?? []
        case .object:
            if let events = value["event"]?.arrayValue {  // Timing
                return events.compactMap { $0.stringValue.flatMap(FHIRDateRange.init(parsing:)) }
            }
            let start = value["start"]?.stringValue.flatMap(FHIRDateRange.init(parsing:))
            let end = value["end"]?.stringValue.flatMap(FHIRDateRange.init(parsing:))
            if start == nil, end == nil { return [] }
            return [FHIRDateRange(low: start?.low ?? FHIRDateRange.minimum, high: end?.high ?? FHIRDateRange.maximum)]
        default: return []
        }
    }
}

/// A literal reference `Type/id`, optionally absolute and optionally with `_history/n`.
public struct ResourceReference: Sendable, Hashable {
    public var type: String
    public var id: String
    /// The base URL before `Type/id`, when the reference was absolute.
    public var base: String?

    public init(type: String, id: String, base: String? = nil) {
        self.type = type
        self.id = id
        self.base = base
    }

    public init?(parsing text: String) {
        var parts = text.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count >= 4, parts[parts.count - 2] == "_history" { parts.removeLast(2) }
        guard parts.count >= 2 else { return nil }
        let type = String(parts[parts.count - 2])
        let id = String(parts[parts.count - 1])
        guard FHIRResourceType.isKnown(type), FHIRResourceType.isValidId(id) else { return nil }
        self.type = type
        self.id = id
        base = parts.count > 2 ? parts[0..<(parts.count - 2)].joined(separator: "/") : nil
    }
}
