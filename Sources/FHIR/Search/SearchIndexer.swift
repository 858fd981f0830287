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
        /// The text that goes with the code, normalized as strings are: `Coding.display`,
        /// `Identifier.type.text`, or (on a row without system and code) `CodeableConcept.text`.
        /// What `:text` compares.
        public var display: String? = nil
    }
    public struct ReferenceEntry: Sendable, Hashable {
        public var parameter: String
        public var targetType: String?
        public var targetId: String?
        /// The reference text itself (absolute URLs, canonicals).
        public var url: String?
        /// `url` when a search can ask for it (``SearchQueryParser/isURLReference(_:)``): a
        /// relative reference is found by its target's type and id, never by its text.
        public var searchableURL: String? { url.flatMap { SearchQueryParser.isURLReference($0) ? $0 : nil } }
        /// `Reference.identifier`, what `:identifier` compares.
        public var identifierSystem: String? = nil
        public var identifierValue: String? = nil
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
    /// One value of one component of a composite parameter, found in element instance
    /// `instance` (numbered per parameter within the resource): a composite matches when
    /// the values of all its components match within one instance. The columns used are
    /// those of the component's type, named as in the other index tables.
    public struct CompositeEntry: Sendable, Hashable {
        public var parameter: String
        public var instance: Int
        /// The component's position in the parameter's definition, from 0.
        public var component: Int
        /// Tokens and quantities.
        public var system: String? = nil
        public var code: String? = nil
        /// Numbers and quantities as the range [value, valueHigh] (equal for a single value;
        /// a `Range` has its low and high, open ends as ±1e300).
        public var value: Double? = nil
        public var valueHigh: Double? = nil
        /// Dates: the range [low, high) in milliseconds.
        public var low: Int64? = nil
        public var high: Int64? = nil
        /// References.
        public var targetType: String? = nil
        public var targetId: String? = nil
        public var url: String? = nil
        /// Strings, normalized.
        public var normalized: String? = nil
    }

    public var strings: [StringEntry] = []
    public var tokens: [TokenEntry] = []
    public var references: [ReferenceEntry] = []
    public var dates: [DateEntry] = []
    public var uris: [StringEntry] = []
    /// Numbers and quantities (quantities carry system and code).
    public var numbers: [NumberEntry] = []
    public var composites: [CompositeEntry] = []

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
            if parameter.type == .composite {
                indexComposite(resource, parameter: parameter, into: &entries)
                continue
            }
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
        entries.tokens = SearchIndexer.withoutRepeatedTexts(SearchIndexer.unique(entries.tokens))
        entries.references = SearchIndexer.unique(entries.references)
        entries.dates = SearchIndexer.unique(entries.dates)
        entries.uris = SearchIndexer.unique(entries.uris)
        entries.numbers = SearchIndexer.unique(entries.numbers)
        entries.composites = SearchIndexer.unique(entries.composites)
        return entries
    }

    /// Numbers each element instance the composite's paths select and indexes, per instance,
    /// the values of each component; an instance lacking any component can never match and
    /// is left out.
    private func indexComposite(
        _ resource: JSONValue, parameter: SearchParameterDefinition, into entries: inout SearchIndexEntries
    ) {
        var instance = 0
        for base in parameter.paths {
            for (element, _) in base.evaluate(in: resource) {
                var found: [[SearchIndexEntries.CompositeEntry]] = []
                for (position, component) in parameter.components.enumerated() {
                    var values: [SearchIndexEntries.CompositeEntry] = []
                    for path in component.paths {
                        for (value, type) in path.evaluate(in: path.fromResource ? resource : element) {
                            values += compositeValues(
                                value, type: type, component: component, path: path, parameter: parameter.code,
                                position: position)
                        }
                    }
                    if values.isEmpty { break }
                    found.append(values)
                }
                guard found.count == parameter.components.count else { continue }
                for values in found {
                    entries.composites += values.map { value in
                        var entry = value
                        entry.instance = instance
                        return entry
                    }
                }
                instance += 1
            }
        }
    }

    /// The entries one component value yields: the plain parameter's extraction, moved into
    /// the composite's columns.
    private func compositeValues(
        _ value: JSONValue, type: String, component: CompositeComponent, path: ElementPath, parameter: String,
        position: Int
    ) -> [SearchIndexEntries.CompositeEntry] {
        let blank = SearchIndexEntries.CompositeEntry(parameter: parameter, instance: 0, component: position)
        if type == "Range", component.type == .quantity || component.type == .number {
            let low = value["low"], high = value["high"]
            let lowValue = low?["value"].flatMap(SearchIndexer.number)
            let highValue = high?["value"].flatMap(SearchIndexer.number)
            if lowValue == nil, highValue == nil { return [] }
            var entry = blank
            entry.value = lowValue ?? -SearchIndexer.openEnd
            entry.valueHigh = highValue ?? SearchIndexer.openEnd
            let unit = lowValue != nil ? low : high
            entry.system = unit?["system"]?.stringValue
            entry.code = unit?["code"]?.stringValue ?? unit?["unit"]?.stringValue
            return [entry]
        }
        let definition = SearchParameterDefinition(
            base: "", code: parameter, type: component.type, paths: [path], targets: [], definitionId: "")
        var scratch = SearchIndexEntries()
        index(value, type: type, parameter: definition, path: path, into: &scratch)
        var result: [SearchIndexEntries.CompositeEntry] = []
        for token in scratch.tokens where token.system != nil || token.code != nil {
            var entry = blank
            entry.system = token.system
            entry.code = token.code
            result.append(entry)
        }
        for number in scratch.numbers {
            var entry = blank
            entry.value = number.value
            entry.valueHigh = number.value
            entry.system = number.system
            entry.code = number.code
            result.append(entry)
        }
        for date in scratch.dates {
            var entry = blank
            entry.low = date.range.low
            entry.high = date.range.high
            result.append(entry)
        }
        for reference in scratch.references where reference.targetId != nil || reference.url != nil {
            var entry = blank
            entry.targetType = reference.targetType
            entry.targetId = reference.targetId
            entry.url = reference.url
            result.append(entry)
        }
        for string in scratch.strings + scratch.uris {
            var entry = blank
            entry.normalized = string.normalized
            result.append(entry)
        }
        return result
    }

    /// Stands for the open end of a `Range` in composite rows.
    static let openEnd = 1e300

    static func number(_ value: JSONValue) -> Double? {
        if case .number(let text) = value { return Double(text) }
        return nil
    }

    private static func unique<T: Hashable>(_ items: [T]) -> [T] {
        var seen = Set<T>()
        return items.filter { seen.insert($0).inserted }
    }

    /// The tokens without the text rows a coded row already stands for. A CodeableConcept's
    /// `text` gets a row of its own (no system, no code) so that `:text` finds it; when a row of
    /// the same parameter with a system or a code has the same display, `:text` finds the
    /// resource by that row, and no other search reads a row without system and code (they
    /// compare codes and systems, or ask whether the parameter has any row). In Synthea's
    /// resources a concept's text repeats its coding's display: a quarter of the token rows,
    /// each with three index entries, were such copies.
    static func withoutRepeatedTexts(_ tokens: [SearchIndexEntries.TokenEntry]) -> [SearchIndexEntries.TokenEntry] {
        var coded = Set<[String]>()
        for token in tokens where token.system != nil || token.code != nil {
            if let display = token.display { coded.insert([token.parameter, display]) }
        }
        guard !coded.isEmpty else { return tokens }
        return tokens.filter { token in
            guard token.system == nil, token.code == nil, let display = token.display else { return true }
            return !coded.contains([token.parameter, display])
        }
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
            entries.tokens.append(
                contentsOf: SearchIndexer.tokens(of: value, type: type).map {
                    .init(
                        parameter: code, system: $0.system, code: $0.code,
                        display: $0.display.map(SearchIndexer.normalize))
                })
        case .reference:
            if let reference = SearchIndexer.reference(of: value, type: type) {
                if let wanted = path.targetType {
                    // A reference by identifier alone says its type, if at all, in Reference.type.
                    let type = reference.targetType ?? (reference.url == nil ? value["type"]?.stringValue : nil)
                    if type != wanted { return }
                }
                entries.references.append(
                    .init(
                        parameter: code, targetType: reference.targetType, targetId: reference.targetId,
                        url: reference.url, identifierSystem: reference.identifier?.system,
                        identifierValue: reference.identifier?.value))
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
                let unitCode =
                    value["code"]?.stringValue ?? value["currency"]?.stringValue ?? value["unit"]?.stringValue
                entries.numbers.append(
                    .init(
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

    /// The (system, code) pairs of a token value, each with its text (`display`, not yet
    /// normalized); a CodeableConcept's own `text` comes as a pair of nils with that text.
    static func tokens(of value: JSONValue, type: String) -> [(system: String?, code: String?, display: String?)] {
        switch value {
        case .string(let text): return [(nil, text, nil)]
        case .bool(let flag): return [(nil, flag ? "true" : "false", nil)]
        case .number(let text): return [(nil, text, nil)]
        case .object:
            if type == "CodeableConcept" || value["coding"] != nil {
                var found = (value["coding"]?.arrayValue ?? []).flatMap { tokens(of: $0, type: "Coding") }
                if let text = value["text"]?.stringValue { found.append((nil, nil, text)) }
                return found
            }
            if type == "Identifier" || (type == "*" && value["value"] != nil && value["code"] == nil) {
                let system = value["system"]?.stringValue
                let text = value["type"]?["text"]?.stringValue
                guard let code = value["value"]?.stringValue else { return system.map { [($0, nil, text)] } ?? [] }
                return [(system, code, text)]
            }
            if type == "ContactPoint" {
                return value["value"]?.stringValue.map { [(nil, $0, nil)] } ?? []
            }
            let system = value["system"]?.stringValue
            let code = value["code"]?.stringValue
            if system == nil, code == nil { return [] }
            return [(system, code, value["display"]?.stringValue)]
        default: return []
        }
    }

    /// Splits a reference into type and id where it has the `Type/id` form, relative or at the
    /// end of an absolute URL; canonicals and other URLs are kept whole.
    /// Also returns `Reference.identifier` (system, value), which a reference may carry
    /// beside or instead of its literal `reference`.
    static func reference(of value: JSONValue, type: String) -> (
        targetType: String?, targetId: String?, url: String?, identifier: (system: String?, value: String)?
    )? {
        if type == "Resource" {  // an inline resource (Bundle.entry[0].resource)
            guard let resourceType = value["resourceType"]?.stringValue, let id = value["id"]?.stringValue else {
                return nil
            }
            return (resourceType, id, nil, nil)
        }
        let identifier = value["identifier"]?["value"]?.stringValue.map {
            (system: value["identifier"]?["system"]?.stringValue, value: $0)
        }
        var text: String?
        if let string = value.stringValue {
            text = string
        } else if let string = value["reference"]?.stringValue {
            text = string
        }
        if text?.hasPrefix("#") == true { text = nil }  // contained resources are not indexed
        guard let text else { return identifier.map { (nil, nil, nil, $0) } }
        let parsed = ResourceReference(parsing: text)
        return (parsed?.type, parsed?.id, text, identifier)
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

    /// The last two `/`-separated segments are the type and the id, after a trailing
    /// `_history/n` is dropped (with at least a type and an id before it); what precedes them
    /// is the base. Scanned for `/` bytes from the end: `split` on Characters was 1.7% of a
    /// Synthea ingest's CPU (every reference is indexed and checked).
    public init?(parsing text: String) {
        let bytes = text.utf8
        let slash = UInt8(ascii: "/")
        guard var idSlash = bytes.lastIndex(of: slash) else { return nil }
        var idEnd = bytes.endIndex
        if let historySlash = bytes[..<idSlash].lastIndex(of: slash),
            let beforeId = bytes[..<historySlash].lastIndex(of: slash),
            bytes[bytes.index(after: historySlash)..<idSlash].elementsEqual("_history".utf8)
        {
            idEnd = historySlash
            idSlash = beforeId
        }
        let baseSlash = bytes[..<idSlash].lastIndex(of: slash)
        let typeStart = baseSlash.map { bytes.index(after: $0) } ?? bytes.startIndex
        let type = String(text[typeStart..<idSlash])
        let id = String(text[bytes.index(after: idSlash)..<idEnd])
        guard FHIRResourceType.isKnown(type), FHIRResourceType.isValidId(id) else { return nil }
        self.type = type
        self.id = id
        base = baseSlash.map { String(text[..<$0]) }
    }
}
