/// The code systems and value sets of FHIR R4 (hl7.fhir.r4.core 4.0.1), compiled in by
/// Scripts/generators/generate-terminology.py: what `$expand`, `$validate-code`, `$lookup`, `$subsumes`
/// and the token modifiers `:below` and `:above` answer from. Code systems r4-core does not
/// enumerate (SNOMED CT, LOINC, UCUM, ...) are known by name only, or not at all.
public struct Terminology: Sendable {
    /// The R4 tables, parsed on first use (a few milliseconds).
    public static let r4 = Terminology(table: terminologyText)

    /// Value sets importing value sets deeper than this are refused (r4-core nests 2 deep).
    public static let maximumImportDepth = 8

    private var codeSystemsByURL: [String: TerminologyCodeSystem] = [:]
    private var codeSystemURLsById: [String: String] = [:]
    private var valueSetsByURL: [String: TerminologyValueSet] = [:]
    private var valueSetURLsById: [String: String] = [:]

    /// The code system whose canonical URL is `url`.
    public func codeSystem(url: String) -> TerminologyCodeSystem? { codeSystemsByURL[url] }

    /// The code system with the resource id `id` (`CodeSystem/[id]/$subsumes`).
    public func codeSystem(id: String) -> TerminologyCodeSystem? {
        codeSystemURLsById[id].flatMap { codeSystemsByURL[$0] }
    }

    /// The value set whose canonical URL is `url` (which may end in `|version`); `nil` when
    /// unknown or when a version is asked for that is not the one held.
    public func valueSet(url: String, version: String? = nil) -> TerminologyValueSet? {
        var url = Substring(url)
        var version = version
        if let bar = url.lastIndex(of: "|") {
            version = version ?? String(url[url.index(after: bar)...])
            url = url[..<bar]
        }
        guard let valueSet = valueSetsByURL[String(url)] else { return nil }
        if let version, !version.isEmpty, version != valueSet.version { return nil }
        return valueSet
    }

    /// The value set with the resource id `id` (`ValueSet/[id]/$expand`).
    public func valueSet(id: String) -> TerminologyValueSet? { valueSetURLsById[id].flatMap { valueSetsByURL[$0] } }

    /// Every value set, for the CapabilityStatement's counts and for tests.
    public var valueSetCount: Int { valueSetsByURL.count }

    init(table: String) {
        var codeSystems: [String: TerminologyCodeSystem] = [:]
        var codeSystemIds: [String: String] = [:]
        var valueSets: [String: TerminologyValueSet] = [:]
        var valueSetIds: [String: String] = [:]
        var system: CodeSystemBuilder?
        var valueSet: TerminologyValueSet?
        func finishSystem() {
            guard let built = system?.build() else { return }
            codeSystems[built.url] = built
            codeSystemIds[built.id] = built.url
            system = nil
        }
        func finishValueSet() {
            guard let built = valueSet else { return }
            valueSets[built.url] = built
            valueSetIds[built.id] = built.url
            valueSet = nil
        }
        for line in table.split(separator: "\n") {
            guard let first = line.first else { continue }
            let fields = line.dropFirst().split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            func field(_ index: Int) -> String { index < fields.count ? fields[index] : "" }
            switch first {
            case let digit where digit.isASCII && digit.isNumber:
                system?.add(depth: Int(digit.asciiValue! - 48), code: field(0), display: field(1), flags: field(2))
            case "=":
                finishSystem()
                finishValueSet()
                let (url, version, name, id, content) = (
                    Self.url(field(0), id: field(3)), Self.version(field(1)), field(2), field(3), field(4)
                )
                let meaning = field(5).isEmpty ? nil : field(5)
                system = CodeSystemBuilder { concepts, parents in
                    TerminologyCodeSystem(
                        url: url, version: version, name: name, id: id, content: content, hierarchyMeaning: meaning,
                        concepts: concepts,
                        parents: parents)
                }
            case "^":
                system?.addParent(field(1), of: field(0))
            case "@":
                finishSystem()
                finishValueSet()
                valueSet = TerminologyValueSet(
                    url: Self.url(field(0), id: field(3)), version: Self.version(field(1)), name: field(2),
                    id: field(3), status: field(4))
            case "+", "-":
                let rule = ComposeRule(
                    system: fields[0].isEmpty ? nil : Self.url(field(0), id: nil),
                    version: fields.count > 1 ? field(1) : nil)
                if first == "+" { valueSet?.includes.append(rule) } else { valueSet?.excludes.append(rule) }
            case " ":
                valueSet?.lastRule {
                    $0.concepts.append(.init(code: field(0), display: field(1).isEmpty ? nil : field(1)))
                }
            case "~":
                valueSet?.lastRule { $0.filters.append(.init(property: field(0), op: field(1), value: field(2))) }
            case "<":
                valueSet?.lastRule { $0.valueSets.append(Self.url(String(line.dropFirst(2)), id: nil)) }
            default:
                continue
            }
        }
        finishSystem()
        finishValueSet()
        codeSystemsByURL = codeSystems
        codeSystemURLsById = codeSystemIds
        valueSetsByURL = valueSets
        valueSetURLsById = valueSetIds
    }

    /// Expands the generator's URL abbreviations (`%h/`, `%t/`, and a trailing `/` for the id).
    static func url(_ text: String, id: String?) -> String {
        var url = text
        if url.hasPrefix("%h/") {
            url = "http://hl7.org/fhir/" + url.dropFirst(3)
        } else if url.hasPrefix("%t/") {
            url = "http://terminology.hl7.org/" + url.dropFirst(3)
        }
        if let id, url.hasSuffix("/") { url += id }
        return url
    }

    static func version(_ text: String) -> String { text.isEmpty ? "4.0.1" : text }
}

/// One concept of a code system.
public struct TerminologyConcept: Sendable {
    public let code: String
    /// The display, which is the code itself when the code system gives none.
    public let display: String
    /// Not for use in data, only to group others (v3 `notSelectable`).
    public let abstract: Bool
    /// Retired: kept for old data, not for new.
    public let inactive: Bool
    public let deprecated: Bool
}

/// A code system held in full, or only by name (`content` `not-present`, as for SNOMED CT).
public struct TerminologyCodeSystem: Sendable {
    public let url: String
    public let version: String
    public let name: String
    public let id: String
    /// `complete`, `example`, `fragment`, `not-present` or `supplement`.
    public let content: String
    public let hierarchyMeaning: String?
    /// The concepts in the code system's order (parents before their children).
    public let concepts: [TerminologyConcept]
    let index: [String: Int]
    let parentIndices: [[Int32]]
    let childIndices: [[Int32]]

    /// Whether a code missing from `concepts` is not in the code system (the code system is
    /// `complete`); for other contents only the codes present are certain.
    public var isComplete: Bool { content == "complete" }

    /// Whether the concepts can be listed (complete, or an example or fragment that lists some).
    public var isEnumerated: Bool { !concepts.isEmpty && ["complete", "example", "fragment"].contains(content) }

    public func concept(_ code: String) -> TerminologyConcept? { index[code].map { concepts[$0] } }

    /// The codes directly above `code`.
    public func parents(of code: String) -> [String] {
        index[code].map { parentIndices[$0].map { concepts[Int($0)].code } } ?? []
    }

    /// The codes directly below `code`.
    public func children(of code: String) -> [String] {
        index[code].map { childIndices[$0].map { concepts[Int($0)].code } } ?? []
    }

    /// The indices of `code` (first) and of every concept below it; empty for an unknown code.
    func descendantIndices(of code: String) -> [Int] { closure(of: code, edges: childIndices) }

    /// The indices of `code` (first) and of every concept above it; empty for an unknown code.
    func ancestorIndices(of code: String) -> [Int] { closure(of: code, edges: parentIndices) }

    /// Whether `ancestor` is `code` or above it.
    public func subsumes(_ ancestor: String, _ code: String) -> Bool {
        guard let target = index[ancestor] else { return false }
        return ancestorIndices(of: code).contains(target)
    }

    private func closure(of code: String, edges: [[Int32]]) -> [Int] {
        guard let start = index[code] else { return [] }
        // Bounded by the code system's size: each concept is visited once.
        var seen = Set([start])
        var result = [start]
        var frontier = [start]
        while let next = frontier.popLast() {
            for neighbour in edges[next] where seen.insert(Int(neighbour)).inserted {
                result.append(Int(neighbour))
                frontier.append(Int(neighbour))
            }
        }
        return result
    }

    init(
        url: String, version: String, name: String, id: String, content: String, hierarchyMeaning: String?,
        concepts: [TerminologyConcept],
        parents: [[Int32]]
    ) {
        self.url = url
        self.version = version
        self.name = name
        self.id = id
        self.content = content
        self.hierarchyMeaning = hierarchyMeaning
        self.concepts = concepts
        var index: [String: Int] = [:]
        for (position, concept) in concepts.enumerated() where index[concept.code] == nil {
            index[concept.code] = position
        }
        self.index = index
        parentIndices = parents
        var children = [[Int32]](repeating: [], count: concepts.count)
        for (child, above) in parents.enumerated() {
            for parent in above { children[Int(parent)].append(Int32(child)) }
        }
        childIndices = children
    }
}

/// Collects one code system's lines of the table.
private struct CodeSystemBuilder {
    /// Makes the code system of the header line from its concepts and their parents.
    let make: ([TerminologyConcept], [[Int32]]) -> TerminologyCodeSystem
    var concepts: [TerminologyConcept] = []
    var parents: [[Int32]] = []
    var codes: [String: Int32] = [:]
    /// The latest concept at each depth: the parent of the next one a level deeper.
    var path: [Int32] = []

    mutating func add(depth: Int, code: String, display: String, flags: String) {
        let position = Int32(concepts.count)
        concepts.append(
            TerminologyConcept(
                code: code, display: display.isEmpty ? code : display, abstract: flags.contains("a"),
                inactive: flags.contains("i"),
                deprecated: flags.contains("d")))
        path.removeLast(max(0, path.count - depth))
        parents.append(path.last.map { [$0] } ?? [])
        path.append(position)
        if codes[code] == nil { codes[code] = position }
    }

    mutating func addParent(_ parent: String, of child: String) {
        guard let childIndex = codes[child], let parentIndex = codes[parent],
            !parents[Int(childIndex)].contains(parentIndex)
        else { return }
        parents[Int(childIndex)].append(parentIndex)
    }

    func build() -> TerminologyCodeSystem { make(concepts, parents) }
}
