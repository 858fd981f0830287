extension TerminologyValueSet {
    /// The most `include` and `exclude` rules a ValueSet resource read here may have.
    public static let maximumRules = 64
    /// The most concepts the rules of a ValueSet resource read here may list together.
    public static let maximumListedConcepts = 100_000
    /// The most value sets its rules may import together: each import is expanded in full
    /// (an attacker's 1,000 imports of one value set in a 45 KB body cost 14 s of a core).
    public static let maximumImports = 16
    /// The most filters one rule may have (R4's value sets have at most one): each filter is
    /// a pass over the code system (an attacker's 20,000 `is-not-a` filters in 1.2 MB cost 7 s).
    public static let maximumFiltersPerRule = 16
    /// The most filters all the rules may have together (R4's have at most 8).
    public static let maximumFilters = 64

    /// A value set from a ValueSet resource's `compose` (one a client posts to `$expand` or
    /// `$validate-code`): its rules are evaluated like those of R4's, against R4's code
    /// systems and value sets. A 400 for a resource without a usable compose.
    public init(resource: JSONValue) throws {
        guard resource["resourceType"]?.stringValue == "ValueSet" else {
            throw FHIRError.badRequest("valueSet must be a ValueSet resource")
        }
        guard let compose = resource["compose"]?.objectValue else {
            throw FHIRError.badRequest("The ValueSet has no compose: there is nothing to expand")
        }
        self.init(
            url: resource["url"]?.stringValue ?? "", version: resource["version"]?.stringValue ?? "",
            name: resource["name"]?.stringValue ?? "",
            id: resource["id"]?.stringValue ?? "", status: resource["status"]?.stringValue ?? "")
        var listed = 0
        var imports = 0
        var filters = 0
        for key in ["include", "exclude"] {
            for rule in compose[key]?.arrayValue ?? [] {
                guard includes.count + excludes.count < Self.maximumRules else {
                    throw FHIRError(
                        status: 400, code: "too-costly",
                        "The ValueSet has more than \(Self.maximumRules) include and exclude rules")
                }
                let parsed = try Self.rule(rule, at: "ValueSet.compose.\(key)")
                listed += parsed.concepts.count
                imports += parsed.valueSets.count
                filters += parsed.filters.count
                guard filters <= Self.maximumFilters else {
                    throw FHIRError(
                        status: 400, code: "too-costly",
                        "The ValueSet's rules have more than \(Self.maximumFilters) filters together")
                }
                guard imports <= Self.maximumImports else {
                    throw FHIRError(
                        status: 400, code: "too-costly",
                        "The ValueSet imports more than \(Self.maximumImports) value sets")
                }
                guard listed <= Self.maximumListedConcepts else {
                    throw FHIRError(
                        status: 400, code: "too-costly",
                        "The ValueSet lists more than \(Self.maximumListedConcepts) concepts")
                }
                if key == "include" { includes.append(parsed) } else { excludes.append(parsed) }
            }
        }
        guard !includes.isEmpty else { throw FHIRError.badRequest("The ValueSet's compose includes nothing") }
    }

    private static func rule(_ value: JSONValue, at path: String) throws -> ComposeRule {
        guard let object = value.objectValue else {
            throw FHIRError.badRequest("\(path) must be an object", expression: [path])
        }
        func text(_ value: JSONValue?, _ name: String) throws -> String {
            guard let string = value?.stringValue, !string.isEmpty else {
                throw FHIRError.badRequest(
                    "\(path).\(name) must be a non-empty string", expression: ["\(path).\(name)"])
            }
            return string
        }
        var rule = ComposeRule(system: object["system"]?.stringValue, version: object["version"]?.stringValue)
        for concept in object["concept"]?.arrayValue ?? [] {
            let code = try text(concept["code"], "concept.code")
            rule.concepts.append(.init(code: code, display: concept["display"]?.stringValue))
        }
        let filters = object["filter"]?.arrayValue ?? []
        guard filters.count <= maximumFiltersPerRule else {
            throw FHIRError(
                status: 400, code: "too-costly", "\(path) has more than \(maximumFiltersPerRule) filters",
                expression: [path + ".filter"])
        }
        for filter in filters {
            let property = try text(filter["property"], "filter.property")
            let op = try text(filter["op"], "filter.op")
            let value = try text(filter["value"], "filter.value")
            rule.filters.append(.init(property: property, op: op, value: value))
        }
        for imported in object["valueSet"]?.arrayValue ?? [] {
            let url = try text(imported, "valueSet")
            rule.valueSets.append(url)
        }
        guard rule.system != nil || !rule.valueSets.isEmpty else {
            throw FHIRError.badRequest("\(path) needs a system or a valueSet", expression: [path])
        }
        return rule
    }
}
