import JSON

/// A resource met by the walk: the root, a contained resource, a Bundle entry's or a
/// Parameters parameter's resource. Its constraints see it as `%resource`.
struct VisitedResource {
    var value: JSONValue
    var type: String
    /// For a contained resource, the resource holding it (`%rootResource`, where `#id` resolves).
    var container: Int?
    /// `steps.count` at the resource's root, for its elements' paths from the resource type.
    var stepDepth: Int
    /// The contained resources this one's `contained` holds (indices into `resources`).
    var held: [Int] = []
    /// The `#...` values of `reference` elements and of canonical, uri and url elements in the
    /// resource, contained resources included (what dom-3 looks for in `%resource.descendants()`).
    var localReferences: Set<String> = []
    /// The walk's location of the resource, for issues.
    var location: String
    /// Its contained resources' types by id (`containedTypes(of:)`), once a `#` reference needs them.
    var containedTypes: [String: String]?
}

/// An object whose node has constraints, evaluated after the walk.
struct ConstraintVisit {
    var node: Int
    var object: JSONObject
    /// The index in `StructureWalk.resources` of the resource holding it.
    var resource: Int
    var location: String
    var isResource: Bool
}

/// The checks beyond structure that the walk makes as it goes: ele-1, Reference targets,
/// core extensions, Bundle rules; and the objects whose constraints run afterwards.
extension StructureWalk {
    mutating func beginResource(_ object: JSONObject, type: String, node: Int, isContained: Bool) {
        guard catalog != nil else { return }
        let container = isContained ? resourceStack.last.map { resources[$0].container ?? $0 } : nil
        resources.append(
            VisitedResource(
                value: .object(object), type: type, container: container, stepDepth: steps.count, location: location))
        if isContained, let holder = resourceStack.last { resources[holder].held.append(resources.count - 1) }
        resourceStack.append(resources.count - 1)
        if type == "Bundle" { checkBundleRules(object) }
    }

    mutating func endResource() {
        guard let catalog, let current = resourceStack.popLast() else { return }
        checkContainedAreReferenced(current, catalog)
    }

    /// Notes a `#...` value where dom-3 looks: a `reference` element, or a canonical, uri or url.
    mutating func noteLocalReference(_ text: String, primitive: PrimitiveType, element: ElementRule) {
        guard element.name == "reference" || primitive == .canonical || primitive == .uri || primitive == .url else {
            return
        }
        for index in resourceStack { resources[index].localReferences.insert(text) }
    }

    /// dom-3, in Swift: each contained resource with an id is referred to (`#id`) from the
    /// resource (itself and its contained resources included), or refers to it (`#`). The
    /// expression compares every contained resource with every descendant: quadratic, and most
    /// of the cost of validating a Synthea ExplanationOfBenefit.
    mutating func checkContainedAreReferenced(_ resource: Int, _ catalog: InvariantCatalog) {
        let references = resources[resource].localReferences
        for index in resources[resource].held {
            guard case .string(let id)? = resources[index].value["id"] else { continue }
            if !references.contains("#" + id) && !resources[index].localReferences.contains("#") {
                reportConstraint(catalog.containedConstraint, at: resources[resource].location)
                ruleIssues[ruleIssues.count - 1].diagnostics +=
                    ": nothing refers to the contained resource '\(id.prefix(64))'"
                return
            }
        }
    }

    /// ele-1 for an object, core extensions in it, and a visit when its node has constraints.
    mutating func checkRules(_ object: JSONObject, node: Int, isResource: Bool) {
        guard let catalog else { return }
        if !isResource, node != schema.primitiveElementNode, object.count > 0,
            object.members.allSatisfy({ $0.key == "id" })
        {
            reportConstraint(catalog.elementConstraint, at: location)
        }
        if isResource || !catalog.sitesByNode[node].isEmpty, let resource = resourceStack.last {
            visits.append(
                ConstraintVisit(
                    node: node, object: object, resource: resource, location: location, isResource: isResource))
        }
        for member in object.members where member.key == "extension" || member.key == "modifierExtension" {
            guard case .array(let items) = member.value else { continue }
            let key = member.key
            for (offset, item) in items.enumerated() {
                guard case .object(let extensionObject) = item, case .string(let url)? = extensionObject["url"],
                    let definition = catalog.extensions[url]
                else { continue }  // Extensions not defined in R4 core are allowed unchecked.
                checkExtension(
                    extensionObject, definition, key: key, node: node, isResource: isResource,
                    at: location(appending: "\(key)[\(offset)]"))
            }
        }
    }

    /// ele-1 for `_name`: an id alone, without a value beside it, is no content.
    mutating func checkPrimitiveElement(_ extras: JSONValue, beside value: JSONValue?) {
        guard let catalog else { return }
        func onlyId(_ item: JSONValue) -> Bool {
            guard case .object(let object) = item else { return false }
            return object.count > 0 && object.members.allSatisfy { $0.key == "id" }
        }
        func isAbsent(_ item: JSONValue?) -> Bool {
            if let item, item != .null { return false }
            return true
        }
        if case .array(let items) = extras {
            let values = value?.arrayValue
            for (offset, item) in items.enumerated()
            where onlyId(item) && isAbsent(values.flatMap { offset < $0.count ? $0[offset] : nil }) {
                reportConstraint(catalog.elementConstraint, at: "\(location)[\(offset)]")
            }
        } else if onlyId(extras) && isAbsent(value) {
            reportConstraint(catalog.elementConstraint, at: location)
        }
    }

    mutating func reportRule(_ code: String, _ diagnostics: String, at expression: [String]? = nil) {
        ruleIssues.append(FHIRError.Issue(code: code, diagnostics: diagnostics, expression: expression ?? [location]))
    }

    mutating func reportConstraint(_ index: Int, at path: String) {
        guard let constraint = catalog?.constraints[index] else { return }
        ruleIssues.append(
            FHIRError.Issue(
                severity: constraint.severity, code: "invariant",
                diagnostics:
                    "Constraint failed: \(constraint.key): '\(constraint.human)' [\(constraint.expressionText)]",
                expression: [path]))
    }

    // MARK: References

    /// ref-1, in Swift: a `#id` reference names a contained resource of the resource that holds
    /// it (`%rootResource`); `#` alone (the container itself) is fine. The expression lists every
    /// contained id for each such reference: quadratic in a resource with many of both.
    mutating func checkLocalReference(_ reference: JSONObject) {
        guard let catalog, case .string(let text)? = reference["reference"], text.hasPrefix("#"), text.count > 1,
            let current = resourceStack.last
        else { return }
        if containedTypes(of: resources[current].container ?? current)[String(text.dropFirst())] == nil {
            reportConstraint(catalog.localReferenceConstraint, at: location)
        }
    }

    /// The types of `holder`'s contained resources by id (the first of a repeated id; "" for
    /// one without a type), indexed on the first `#` reference: a scan of `contained` for each
    /// reference made 10,000 contained resources referring to each other take 14 s.
    mutating func containedTypes(of holder: Int) -> [String: String] {
        if let types = resources[holder].containedTypes { return types }
        var types: [String: String] = [:]
        for case .object(let contained) in resources[holder].value["contained"]?.arrayValue ?? [] {
            if case .string(let id)? = contained["id"], types[id] == nil {
                types[id] = contained["resourceType"]?.stringValue ?? ""
            }
        }
        resources[holder].containedTypes = types
        return types
    }

    /// A literal reference (or the `type` beside it) must name a resource type the element allows.
    mutating func checkReferenceTarget(_ reference: JSONObject, element: ElementRule) {
        checkLocalReference(reference)
        guard let allowed = catalog?.referenceTargets[element.path] else { return }
        var named: [(type: String, from: String)] = []
        if case .string(let text)? = reference["reference"] {
            for type in referencedTypes(text) { named.append((type, "the reference '\(text.prefix(200))'")) }
        }
        if case .string(var type)? = reference["type"] {
            if type.hasPrefix(InvariantCatalog.definitionPrefix) {
                type.removeFirst(InvariantCatalog.definitionPrefix.count)
            }
            if FHIRResourceType.isKnown(type) { named.append((type, "Reference.type")) }
        }
        for (type, source) in named where !allowed.contains(type) {
            reportRule(
                "structure",
                "\(element.path) may refer to \(allowed.sorted().joined(separator: ", ")), but \(source) names \(type)")
        }
    }

    /// The resource types a literal reference names (`Patient/1`, `Patient/1/_history/2`,
    /// `https://host/fhir/Patient/1`, `Patient?identifier=x`, `#id` of a contained resource);
    /// none when it names none the server knows (`urn:uuid:...`, a missing `#id`, which ref-1
    /// reports). Two for a text that is both conditional and, read as the store indexes it
    /// (`ResourceReference(parsing:)`), another type: `Patient?x=/Practitioner/1` stored as it is
    /// (outside a transaction nothing resolves it) is indexed as Practitioner/1, so both are checked.
    mutating func referencedTypes(_ reference: String) -> [String] {
        if reference.hasPrefix("#") {
            guard let current = resourceStack.last else { return [] }
            let holder = resources[current].container ?? current
            let id = reference.dropFirst()
            if id.isEmpty { return [resources[holder].type] }
            return containedTypes(of: holder)[String(id)].flatMap { $0.isEmpty ? nil : [$0] } ?? []
        }
        // By bytes, as the store parses references: splitting Characters was 2.4% of a Synthea
        // ingest's samples.
        let bytes = reference.utf8
        let slash = UInt8(ascii: "/")
        var types: [String] = []
        if let question = bytes.firstIndex(of: UInt8(ascii: "?")) {
            let type = reference[..<question]
            if !type.utf8.contains(slash), FHIRResourceType.isKnown(type) { types.append(String(type)) }
        }
        let segments = bytes.split(separator: slash, omittingEmptySubsequences: false)
        var end = segments.count
        if end >= 4, segments[end - 2].elementsEqual("_history".utf8) { end -= 2 }
        if end >= 2, FHIRResourceType.isKnown(Substring(segments[end - 2])) {
            let type = String(Substring(segments[end - 2]))
            if !types.contains(type) { types.append(type) }
        }
        return types
    }

    // MARK: Extensions

    /// A core extension: in `modifierExtension` exactly when it is a modifier, with a value of
    /// a type its definition allows, in one of its contexts.
    mutating func checkExtension(
        _ object: JSONObject, _ definition: CoreExtension, key: String, node: Int, isResource: Bool, at path: String
    ) {
        if definition.isModifier != (key == "modifierExtension") {
            let place = definition.isModifier ? "modifierExtension, not extension" : "extension, not modifierExtension"
            reportRule(
                "structure",
                "The extension \(definition.url) \(definition.isModifier ? "is" : "is not") a modifier: it belongs in \(place)",
                at: [path])
        }
        for member in object.members where member.key.hasPrefix("value") {
            guard let names = definition.valueNames else {
                reportRule(
                    "structure",
                    "The extension \(definition.url) carries nested extensions, not a value ('\(member.key)')",
                    at: [path])
                continue
            }
            if !names.contains(member.key) {
                reportRule(
                    "structure",
                    "The extension \(definition.url) takes \(names.sorted().joined(separator: " or ")), not '\(member.key)'",
                    at: [path])
            }
        }
        if !extensionContextMatches(definition.contexts, node: node, isResource: isResource) {
            reportRule(
                "structure",
                "The extension \(definition.url) is not allowed at \(hostDescription(node: node, isResource: isResource)) (its contexts: \(definition.contexts.joined(separator: ", ")))",
                at: [path])
        }
    }

    private static let primitiveParents: [String: String] = [
        "code": "string", "id": "string", "markdown": "string", "url": "uri", "canonical": "uri", "oid": "uri",
        "uuid": "uri", "positiveInt": "integer", "unsignedInt": "integer",
    ]

    /// Whether the element holding an extension is one its definition names: the element
    /// itself (`HumanName.family`, `Patient.contact`), its type (`HumanName`, `string`), a base
    /// (`Element`, `Resource`, `DomainResource`, `BackboneElement`), its path from the resource,
    /// an element it is inside of, or (for a backbone element) one of its own elements.
    func extensionContextMatches(_ contexts: [String], node: Int, isResource: Bool) -> Bool {
        var names: [String] = ["Element"]
        let nodeName = schema.nodes[node].name
        if isResource {
            names += [nodeName, "Resource"]
            if !["Bundle", "Binary", "Parameters"].contains(nodeName) { names.append("DomainResource") }
        } else {
            if node != schema.primitiveElementNode {
                names.append(nodeName)
                if nodeName.contains(".") { names.append("BackboneElement") }
                if schema.nodes[node].isQuantityLike { names.append("Quantity") }
            }
            if let host = hosts.last {
                let element = schema.nodes[host.node].elements[host.element]
                names.append(element.path)
                if element.isChoice { names.append(String(element.path.dropLast(3))) }
                if node == schema.primitiveElementNode {
                    for case .primitive(var primitive) in element.types {
                        names.append(primitive.rawValue)
                        while let parent = Self.primitiveParents[primitive.rawValue].flatMap(
                            PrimitiveType.init(rawValue:))
                        {
                            names.append(parent.rawValue)
                            primitive = parent
                        }
                    }
                }
            }
        }
        if contexts.contains(where: names.contains) { return true }
        // Looser, as the official examples need: inside a context element (structuredefinition-
        // normative-version, context StructureDefinition, on StructureDefinition.snapshot.element),
        // or on a backbone element holding it (structuredefinition-fhir-type, context
        // ElementDefinition.type.code, on ElementDefinition.type). A data type is no backbone:
        // humanname-mothers-family (HumanName.family) stays refused on a HumanName.
        names.append(instancePath)
        let backbone = !isResource && nodeName.contains(".") ? nodeName + "." : nil
        return contexts.contains { context in
            names.contains { $0.hasPrefix(context + ".") } || backbone.map { context.hasPrefix($0) } == true
        }
    }

    /// The path of the value being visited from its resource's type, without indices and with
    /// JSON names (`StructureDefinition.snapshot.element.binding.valueSet`).
    var instancePath: String {
        guard let current = resourceStack.last else { return "" }
        let resource = resources[current]
        let names = steps[min(resource.stepDepth, steps.count)...].map {
            $0.name.hasPrefix("_") ? String($0.name.dropFirst()) : $0.name
        }
        return ([resource.type] + names).joined(separator: ".")
    }

    func hostDescription(node: Int, isResource: Bool) -> String {
        if !isResource, let host = hosts.last { return schema.nodes[host.node].elements[host.element].path }
        return schema.nodes[node].name
    }

    // MARK: Bundles

    /// bdl-7 (one entry per fullUrl, but for versions of a resource and in histories) with a
    /// set instead of isDistinct()'s comparisons of every pair; and each link relation once.
    mutating func checkBundleRules(_ bundle: JSONObject) {
        guard let catalog else { return }
        if bundle["type"]?.stringValue != "history", case .array(let entries)? = bundle["entry"] {
            var seen: [String: Int] = [:]
            for (offset, entry) in entries.enumerated() {
                guard case .string(let fullUrl)? = entry["fullUrl"] else { continue }
                let key = fullUrl + "|" + (entry["resource"]?["meta"]?["versionId"]?.stringValue ?? "")
                if let first = seen[key] {
                    reportConstraint(catalog.fullUrlConstraint, at: location(appending: "entry[\(offset)]"))
                    ruleIssues[ruleIssues.count - 1].diagnostics +=
                        ": entries \(first) and \(offset) have the fullUrl '\(fullUrl.prefix(200))'"
                } else {
                    seen[key] = offset
                }
            }
        }
        if case .array(let links)? = bundle["link"] {
            var seen: [String: Int] = [:]
            for (offset, link) in links.enumerated() {
                guard case .string(let relation)? = link["relation"] else { continue }
                if let first = seen[relation] {
                    reportRule(
                        "invalid",
                        "The link relation '\(relation.prefix(100))' occurs more than once (link \(first) and \(offset)); each relation may occur once",
                        at: [location(appending: "link[\(offset)]")])
                } else {
                    seen[relation] = offset
                }
            }
        }
    }
}
