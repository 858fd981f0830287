/// Validates a resource against the structure the official FHIR R4 definitions give it:
/// every member is a defined element (choice names such as `valueQuantity`, primitive
/// extensions such as `_birthDate`), has the JSON kind its type needs (string, number,
/// boolean, object; an array exactly where the element repeats), a well-formed primitive
/// value (dates, ids, codes, integers, ...), the cardinality of its definition, and a code
/// from the value set of a required binding. Contained resources, `Bundle.entry.resource` and
/// `Parameters.parameter.resource` are validated as the resources they say they are.
///
/// `validate(_:)` checks structure alone; `validateWithRules(_:includeWarnings:)` also the
/// constraints (FHIRPath invariants) of the core definitions, Reference target types, core
/// extensions (value type, context, modifier) and Bundle rules (see `InvariantCatalog`).
/// Profiles and terminology beyond the required value sets of the core package are not checked.
public struct ResourceStructureValidator: Sendable {
    /// The validator for FHIR R4 (4.0.1), built on first use from the generated tables.
    public static let r4 = ResourceStructureValidator(schema: .r4)

    let schema: StructureSchema

    init(schema: StructureSchema) {
        self.schema = schema
    }

    /// The problems found, each an error with its FHIRPath location (`Patient.name[0].given[1]`);
    /// empty when the resource is valid.
    public func validate(_ resource: JSONValue) -> [FHIRError.Issue] {
        var walk = StructureWalk(schema: schema, catalog: nil)
        walk.validateRoot(resource)
        return walk.issues
    }

    /// Structure, then (when the structure holds) every core constraint where its context
    /// element exists, Reference target types, core extensions and Bundle rules. Issues of
    /// severity `error` and, with `includeWarnings`, `warning` (constraints such as dom-6).
    public func validateWithRules(_ resource: JSONValue, includeWarnings: Bool) -> [FHIRError.Issue] {
        var walk = StructureWalk(schema: schema, catalog: .r4)
        walk.validateRoot(resource)
        // Constraints assume the structure their expressions navigate: evaluated when it holds.
        if walk.issues.isEmpty {
            walk.evaluateConstraints(includeWarnings: includeWarnings)
        }
        return walk.issues + walk.ruleIssues
    }
}

/// One validation: the location being visited and the issues found so far.
struct StructureWalk {
    let schema: StructureSchema
    /// The rules beyond structure (constraints, Reference targets, extensions); nil for structure alone.
    let catalog: InvariantCatalog?
    var issues: [FHIRError.Issue] = []
    /// The issues of the rules beyond structure (constraints, references, extensions, Bundles).
    var ruleIssues: [FHIRError.Issue] = []
    /// The location of the value being visited: the member names from the resource type on,
    /// each with its array index (-1 when not in an array). The text is built only for issues.
    var steps: [(name: String, index: Int)] = []
    /// The resources met (the root, contained, Bundle entries, Parameters resources).
    var resources: [VisitedResource] = []
    /// Indices into `resources`: the resource being walked is the last.
    var resourceStack: [Int] = []
    /// The objects whose node has constraints, to evaluate once the walk is done.
    var visits: [ConstraintVisit] = []
    /// The element (node index, element index) each open member was reached through.
    var hosts: [(node: Int, element: Int)] = []

    init(schema: StructureSchema, catalog: InvariantCatalog?) {
        self.schema = schema
        self.catalog = catalog
        steps.reserveCapacity(16)
    }

    // MARK: Resources and objects

    mutating func validateRoot(_ value: JSONValue) {
        guard case .object(let object) = value else {
            return report("structure", "A resource must be a JSON object, not \(value.kindDescription)", at: [])
        }
        guard case .string(let type)? = object["resourceType"] else {
            return report("structure", "The resource has no resourceType", at: ["resourceType"])
        }
        guard let node = schema.resourceNodes[type] else {
            return report("structure", "Unknown resource type '\(type)'", at: ["resourceType"])
        }
        steps.append((type, -1))
        beginResource(object, type: type, node: node, isContained: false)
        validateObject(object, node: node, isResource: true)
        endResource()
        steps.removeLast()
    }

    /// A resource inside another one (contained, in a Bundle entry, a Parameters parameter).
    mutating func validateNestedResource(_ object: JSONObject) {
        guard case .string(let type)? = object["resourceType"] else {
            return report("structure", "A resource at \(location) has no resourceType")
        }
        guard let node = schema.resourceNodes[type] else {
            return report("structure", "Unknown resource type '\(type)' at \(location)")
        }
        beginResource(object, type: type, node: node, isContained: steps.last?.name == "contained")
        validateObject(object, node: node, isResource: true)
        endResource()
    }

    mutating func validateObject(_ object: JSONObject, node index: Int, isResource: Bool) {
        let node = schema.nodes[index]
        if object.count == 0 {
            report(
                "structure",
                "\(node.name) at \(location) is an empty object: FHIR JSON leaves out elements without content")
        }
        if catalog != nil { checkRules(object, node: index, isResource: isResource) }
        for (position, member) in object.members.enumerated() {
            if isResource && member.key == "resourceType" { continue }
            guard let rule = node.members[member.key] else {
                report(
                    "structure", "Unknown element '\(member.key)' in \(node.name)",
                    at: [location(appending: member.key)])
                continue
            }
            let element = node.elements[rule.element]
            if element.isChoice && !rule.isPrimitiveExtension {
                reportOtherChoices(of: rule.element, named: member.key, after: position, in: object, node: node)
            }
            steps.append((member.key, -1))
            hosts.append((index, rule.element))
            if rule.isPrimitiveExtension {
                if catalog != nil {
                    checkPrimitiveElement(member.value, beside: object[String(member.key.dropFirst())])
                }
                validatePrimitiveExtension(member.value, element: element)
            } else {
                validateElement(
                    member.value, element: element, type: rule.type, extensionsBeside: object, key: member.key)
            }
            hosts.removeLast()
            steps.removeLast()
        }
        for (elementIndex, names) in node.required where !names.contains(where: { object[$0] != nil }) {
            let element = node.elements[elementIndex]
            report(
                "required",
                "Missing required element '\(element.name)' (\(element.path) needs at least \(element.min))",
                at: [location(appending: element.name)])
        }
    }

    /// A choice element has one value: `valueString` and `valueQuantity` side by side are two.
    mutating func reportOtherChoices(
        of element: Int, named name: String, after position: Int, in object: JSONObject, node: StructureNode
    ) {
        for other in object.members[(position + 1)...] {
            guard let rule = node.members[other.key], rule.element == element, !rule.isPrimitiveExtension else {
                continue
            }
            report(
                "structure",
                "\(node.elements[element].path) has one value, but both '\(name)' and '\(other.key)' are present",
                at: [location(appending: other.key)])
        }
    }

    // MARK: Elements

    /// Checks an element's value against its cardinality, then each of its values against the type.
    mutating func validateElement(
        _ value: JSONValue, element: ElementRule, type: ElementType, extensionsBeside object: JSONObject, key: String
    ) {
        guard element.max > 0 else {
            return report("structure", "\(element.path) is not allowed here")
        }
        guard element.isRepeating else {
            if case .array = value {
                return report("structure", "\(element.path) has at most one value, so it must not be a JSON array")
            }
            return validateValue(value, element: element, type: type)
        }
        guard case .array(let items) = value else {
            return report(
                "structure", "\(element.path) can repeat, so it must be a JSON array, not \(value.kindDescription)")
        }
        if items.isEmpty {
            report("structure", "\(element.path) is an empty array: FHIR JSON leaves out elements without values")
        } else if items.count > element.max {
            report("structure", "\(element.path) allows at most \(element.max) values, but has \(items.count)")
        }
        for (offset, item) in items.enumerated() {
            steps[steps.count - 1].index = offset
            // In an array of primitives, null keeps the place of a value that has only
            // extensions, which `_name` holds at the same position.
            if case .null = item, case .primitive = type, object["_" + key] != nil { continue }
            validateValue(item, element: element, type: type)
        }
        steps[steps.count - 1].index = -1
    }

    mutating func validateValue(_ value: JSONValue, element: ElementRule, type: ElementType) {
        switch type {
        case .primitive(let primitive):
            validatePrimitive(value, primitive, element: element)
        case .complex(let node):
            guard case .object(let object) = value else {
                return report(
                    "structure",
                    "\(element.path) is a \(schema.typeName(type)) and must be a JSON object, not \(value.kindDescription)"
                )
            }
            validateObject(object, node: node, isResource: false)
            if node == schema.referenceNode, catalog != nil { checkReferenceTarget(object, element: element) }
            if let valueSet = element.valueSet {
                if node == schema.codingNode {
                    checkCoding(object, in: schema.valueSets[valueSet], element: element)
                } else if node == schema.codeableConceptNode {
                    checkCodeableConcept(object, in: schema.valueSets[valueSet], element: element)
                }
            }
        case .resource:
            guard case .object(let object) = value else {
                return report(
                    "structure", "\(element.path) is a resource and must be a JSON object, not \(value.kindDescription)"
                )
            }
            validateNestedResource(object)
        }
    }

    mutating func validatePrimitive(_ value: JSONValue, _ primitive: PrimitiveType, element: ElementRule) {
        switch (primitive.jsonKind, value) {
        case (.string, .string(let text)):
            guard primitive.accepts(string: text) else {
                return report(
                    "value", "\(quoted(text)) is not a valid \(primitive.rawValue) (\(primitive.formDescription))")
            }
            if catalog != nil, text.hasPrefix("#") { noteLocalReference(text, primitive: primitive, element: element) }
            if primitive == .code, let valueSet = element.valueSet {
                let required = schema.valueSets[valueSet]
                if required.codesBySystem != nil && !required.codes.contains(text) {
                    report(
                        "code-invalid",
                        "The code \(quoted(text)) is not in the value set \(required.url), which \(element.path) requires"
                    )
                }
            }
        case (.number, .number(let text)):
            if !primitive.accepts(number: text) {
                report("value", "\(text) is not a valid \(primitive.rawValue) (\(primitive.formDescription))")
            }
        case (.boolean, .bool):
            break
        default:
            report(
                "structure",
                "\(element.path) is a \(primitive.rawValue), which JSON writes as a \(primitive.jsonKind.rawValue), not \(value.kindDescription)"
            )
        }
    }

    /// `_name`: an object with the id and extensions of the primitive `name` (an array of
    /// them, null where a value has none, when the element repeats).
    mutating func validatePrimitiveExtension(_ value: JSONValue, element: ElementRule) {
        let node = schema.primitiveElementNode
        guard element.isRepeating else {
            guard case .object(let object) = value else {
                return report(
                    "structure", "The extensions of \(element.path) must be a JSON object, not \(value.kindDescription)"
                )
            }
            return validateObject(object, node: node, isResource: false)
        }
        guard case .array(let items) = value else {
            return report("structure", "The extensions of \(element.path) must be a JSON array, as the element repeats")
        }
        for (offset, item) in items.enumerated() {
            steps[steps.count - 1].index = offset
            switch item {
            case .null: continue
            case .object(let object): validateObject(object, node: node, isResource: false)
            default:
                report(
                    "structure",
                    "The extensions of \(element.path) must be JSON objects or null, not \(item.kindDescription)")
            }
        }
        steps[steps.count - 1].index = -1
    }

    // MARK: Required bindings

    /// A Coding with a code must take it from the value set (its system too, when it has one).
    mutating func checkCoding(_ coding: JSONObject, in valueSet: RequiredValueSet, element: ElementRule) {
        guard valueSet.codesBySystem != nil, case .string(let code)? = coding["code"] else { return }
        if !valueSet.contains(system: coding["system"]?.stringValue, code: code) {
            report(
                "code-invalid",
                "The coding \(codingText(coding)) is not in the value set \(valueSet.url), which \(element.path) requires"
            )
        }
    }

    /// A CodeableConcept with codings must have one from the value set; text alone is left alone.
    mutating func checkCodeableConcept(_ concept: JSONObject, in valueSet: RequiredValueSet, element: ElementRule) {
        guard valueSet.codesBySystem != nil, case .array(let codings)? = concept["coding"] else { return }
        var coded: [JSONObject] = []
        for case .object(let coding) in codings where coding["code"] != nil {
            if case .string(let code)? = coding["code"],
                valueSet.contains(system: coding["system"]?.stringValue, code: code)
            {
                return
            }
            coded.append(coding)
        }
        guard !coded.isEmpty else { return }
        report(
            "code-invalid",
            "None of the codings \(coded.map(codingText).joined(separator: ", ")) is in the value set \(valueSet.url), which \(element.path) requires"
        )
    }

    private func codingText(_ coding: JSONObject) -> String {
        let code = coding["code"]?.stringValue ?? ""
        guard let system = coding["system"]?.stringValue else { return quoted(code) }
        return quoted(system + "#" + code)
    }

    // MARK: Issues

    /// The FHIRPath location of the value being visited: `Patient.name[0].given[1]`.
    var location: String {
        var text = ""
        for step in steps {
            if !text.isEmpty { text += "." }
            text += step.name
            if step.index >= 0 { text += "[\(step.index)]" }
        }
        return text
    }

    func location(appending name: String) -> String {
        steps.isEmpty ? name : location + "." + name
    }

    mutating func report(_ code: String, _ diagnostics: String, at expression: [String]? = nil) {
        issues.append(FHIRError.Issue(code: code, diagnostics: diagnostics, expression: expression ?? [location]))
    }

    /// The value in quotes, shortened: diagnostics should not repeat a whole document.
    private func quoted(_ text: String) -> String {
        text.count <= 80 ? "'\(text)'" : "'\(text.prefix(77))...'"
    }
}

extension RequiredValueSet {
    /// Whether the code is in the value set: in the given system, or in any when it has none.
    func contains(system: String?, code: String) -> Bool {
        guard let system else { return codes.contains(code) }
        return codesBySystem?[system]?.contains(code) ?? false
    }
}
