import JSON

/// Navigation through FHIR JSON with the element types of the R4 definitions: choice
/// elements (`value` finds `valueQuantity`), primitives with their `_name` beside them,
/// resources inside resources.
enum FHIRPathNavigator {
    static let schema = StructureSchema.r4

    /// The item for a resource (or any JSON value at the root of an evaluation).
    static func item(for value: JSONValue) -> FHIRPathItem {
        if let object = value.objectValue, let type = object["resourceType"]?.stringValue {
            return .element(value, nil, .resource(type), type)
        }
        return .element(value, nil, .unknown, "")
    }

    static func elementType(_ type: ElementType, value: JSONValue?) -> FHIRPathElementType {
        switch type {
        case .primitive(let primitive): return .primitive(primitive)
        case .complex(let index): return .complex(index)
        case .resource: return .resource(value?.objectValue?["resourceType"]?.stringValue)
        }
    }

    /// The schema node describing a node's members, and the object holding them.
    static func structure(of node: FHIRPathNode) -> (StructureNode?, JSONObject?) {
        switch node.type {
        case .complex(let index): return (schema.nodes[index], node.value?.objectValue)
        case .resource(let type):
            return (type.flatMap { schema.resourceNodes[$0] }.map { schema.nodes[$0] }, node.value?.objectValue)
        case .primitive: return (schema.nodes[schema.primitiveElementNode], node.primitiveElement)
        case .unknown: return (nil, node.value?.objectValue)
        }
    }

    /// The child elements named `name` (FHIRPath's element name: `value`, not `valueQuantity`).
    static func children(of node: FHIRPathNode, named name: String) throws -> [FHIRPathItem] {
        let (structure, objectOrNil) = structure(of: node)
        guard let structure else {
            guard let value = objectOrNil?[name] else { return [] }
            return (value.arrayValue ?? [value]).map { .element($0, nil, .unknown, name) }
        }
        guard let elementIndex = structure.elements.firstIndex(where: { $0.name == name }) else {
            throw FHIRPathError(.semantic, "\(structure.name) has no element '\(name)'")
        }
        guard let object = objectOrNil else { return [] }
        var result: [FHIRPathItem] = []
        for (key, value) in object {
            guard let rule = structure.members[key], rule.element == elementIndex else { continue }
            if rule.isPrimitiveExtension {
                // A primitive with only an id or extensions: no value beside it.
                guard object[String(key.dropFirst())] == nil else { continue }
                for extras in value.arrayValue ?? [value] {
                    result.append(.element(nil, extras.objectValue, elementType(rule.type, value: nil), name))
                }
                continue
            }
            let extras = object["_" + key]
            if let array = value.arrayValue {
                let extrasArray = extras?.arrayValue
                for (position, element) in array.enumerated() {
                    let beside = extrasArray.flatMap { position < $0.count ? $0[position].objectValue : nil }
                    if case .null = element, beside == nil { continue }
                    let present: JSONValue? = { if case .null = element { return nil } else { return element } }()
                    result.append(.element(present, beside, elementType(rule.type, value: element), name))
                }
            } else {
                result.append(.element(value, extras?.objectValue, elementType(rule.type, value: value), name))
            }
        }
        return result
    }

    /// Whether `name` is the JSON spelling of a choice element of the node's type
    /// (`valueQuantity` for `value[x]`), which FHIRPath navigates as `value`.
    static func isChoiceJSONName(_ name: String, of node: FHIRPathNode) -> Bool {
        guard let structure = structure(of: node).0, let rule = structure.members[name], !rule.isPrimitiveExtension
        else { return false }
        return structure.elements[rule.element].isChoice
    }

    /// Every child element of a node, in the order of its JSON members.
    static func allChildren(of node: FHIRPathNode) -> [FHIRPathItem] {
        let (structure, objectOrNil) = structure(of: node)
        guard let object = objectOrNil else { return [] }
        guard let structure else {
            var result: [FHIRPathItem] = []
            for (key, value) in object where key != "resourceType" {
                guard value.objectValue != nil || value.arrayValue != nil || !key.hasPrefix("_") else { continue }
                result += (value.arrayValue ?? [value]).map { .element($0, nil, .unknown, key) }
            }
            return result
        }
        var seen = Set<Int>()
        var result: [FHIRPathItem] = []
        for (key, _) in object {
            guard let rule = structure.members[key], seen.insert(rule.element).inserted else { continue }
            result += (try? children(of: node, named: structure.elements[rule.element].name)) ?? []
        }
        return result
    }
}

/// FHIRPath's type names: FHIR types (`FHIR.string`, `FHIR.Patient`) and System types
/// (`System.String`), with the subtype relations `is`, `as` and `ofType()` follow.
enum FHIRPathTypes {
    static let resourceAncestors: Set<String> = ["Resource", "DomainResource"]
    private static let primitiveParents: [String: String] = [
        "code": "string", "id": "string", "markdown": "string", "url": "uri", "canonical": "uri", "oid": "uri",
        "uuid": "uri", "positiveInt": "integer", "unsignedInt": "integer",
    ]
    private static let quantityProfiles: Set<String> = [
        "Age", "Distance", "Duration", "Count", "MoneyQuantity", "SimpleQuantity",
    ]

    /// The item's type name and namespace (`("FHIR", "Patient")`, `("System", "Integer")`).
    static func typeName(_ item: FHIRPathItem) -> (namespace: String, name: String) {
        switch item {
        case .boolean: return ("System", "Boolean")
        case .integer: return ("System", "Integer")
        case .decimal: return ("System", "Decimal")
        case .string: return ("System", "String")
        case .date: return ("System", "Date")
        case .dateTime: return ("System", "DateTime")
        case .time: return ("System", "Time")
        case .quantity: return ("System", "Quantity")
        case .node(let node):
            switch node.type {
            case .primitive(let primitive): return ("FHIR", primitive.rawValue)
            case .complex(let index):
                let name = FHIRPathNavigator.schema.nodes[index].name
                return ("FHIR", name.contains(".") ? "BackboneElement" : name)
            case .resource(let type): return ("FHIR", type ?? "Resource")
            case .unknown:
                guard let system = item.systemValue else { return ("System", "Any") }
                return typeName(system)
            }
        }
    }

    /// The item's type and all its ancestors, qualified.
    static func lineage(_ item: FHIRPathItem) -> [String] {
        let (namespace, name) = typeName(item)
        var names = [namespace + "." + name]
        if namespace == "FHIR", case .node(let node) = item {
            switch node.type {
            case .primitive:
                var current = name
                while let parent = primitiveParents[current] { names.append("FHIR." + parent); current = parent }
                names.append("FHIR.Element")
            case .complex:
                if quantityProfiles.contains(name) { names.append("FHIR.Quantity") }
                if name == "BackboneElement" { names.append("FHIR.BackboneElement") }
                names.append("FHIR.Element")
            case .resource:
                if !["Bundle", "Binary", "Parameters"].contains(name) { names.append("FHIR.DomainResource") }
                names.append("FHIR.Resource")
            case .unknown: break
            }
        }
        names.append("System.Any")
        return names
    }

    /// Whether the item is of the type named (qualified or not). `exactly` (for `as` and
    /// `ofType()`) does not let a FHIR primitive stand for its base (`code` is not `string`
    /// there, as the suite's testInheritance cases have it). A name that is no type is an error.
    static func matches(_ item: FHIRPathItem, _ typeName: String, exactly: Bool = false) throws -> Bool {
        guard isKnownType(typeName) else {
            // `System.Patient` is a name no item can have; `string1` is a mistake.
            if typeName.contains(".") { return false }
            throw FHIRPathError(.execution, "unknown type \(typeName)")
        }
        var lineage = lineage(item)
        if exactly, case .node(let node) = item, case .primitive = node.type { lineage = [lineage[0]] }
        if typeName.contains(".") { return lineage.contains(typeName) }
        return lineage.contains("FHIR." + typeName) || lineage.contains("System." + typeName)
    }

    private static let systemTypes: Set<String> = [
        "Boolean", "Integer", "Decimal", "String", "Date", "DateTime", "Time", "Quantity", "Any",
    ]

    /// Whether the name is a System type, an R4 resource, data type or primitive, or an abstract base.
    static func isKnownType(_ typeName: String) -> Bool {
        var name = Substring(typeName)
        var namespace: Substring?
        if let dot = name.firstIndex(of: ".") {
            namespace = name[..<dot]
            name = name[name.index(after: dot)...]
        }
        let isSystem = systemTypes.contains(String(name))
        let schema = FHIRPathNavigator.schema
        let isFHIR =
            PrimitiveType(rawValue: String(name)) != nil || schema.resourceNodes[String(name)] != nil
            || schema.dataTypeNodes[String(name)] != nil
            || ["Resource", "DomainResource", "Element", "BackboneElement", "Quantity"].contains(String(name))
            || quantityProfiles.contains(String(name))
        switch namespace {
        case nil: return isSystem || isFHIR
        case "System"?: return isSystem
        case "FHIR"?: return isFHIR
        default: return false
        }
    }

    /// The type name an `is`/`as`/`ofType` argument spells (`Quantity`, `FHIR.Quantity`).
    static func name(of syntax: FHIRPathSyntax) throws -> String {
        switch syntax {
        case .member(nil, let name): return name
        case .member(.member(nil, let namespace)?, let name): return namespace + "." + name
        default: throw FHIRPathError(.semantic, "expected a type name")
        }
    }
}
