/// The data type of an element's value, resolved to what the validator walks into.
enum ElementType: Sendable, Equatable {
    case primitive(PrimitiveType)
    /// An object whose members the node at this index of `StructureSchema.nodes` defines:
    /// a complex data type or a backbone element.
    case complex(Int)
    /// Any resource, whose own `resourceType` says which.
    case resource
}

/// One element of a resource, data type or backbone element, as the R4 definitions give it.
struct ElementRule: Sendable {
    /// The JSON name, without the `[x]` of a choice element.
    var name: String
    /// The definition's path (`Patient.contact.name`, `Observation.value[x]`), for diagnostics.
    var path: String
    var min: Int
    /// `Int.max` for `*`.
    var max: Int
    var types: [ElementType]
    /// Whether the JSON name carries the type (`valueQuantity` for `value[x]`).
    var isChoice: Bool
    /// The index in `StructureSchema.valueSets` of the required binding, if any.
    var valueSet: Int?

    /// Whether JSON carries the element as an array.
    var isRepeating: Bool { max > 1 }
}

/// What one JSON member name of an object stands for.
struct MemberRule: Sendable {
    /// The index in the node's `elements`.
    var element: Int
    /// The data type the name selects (one of a choice element's types).
    var type: ElementType
    /// `_name`: the id and extensions of a primitive value, held beside the value itself.
    var isPrimitiveExtension: Bool
}

/// The members an object may have: those of a resource, a data type or a backbone element.
struct StructureNode: Sendable {
    /// The type name or backbone element path (`Patient.contact`), for diagnostics.
    var name: String
    var elements: [ElementRule]
    /// Every JSON name an object of this node may use, choice and `_` names spelled out.
    var members: [String: MemberRule]
    /// For each element with a minimum cardinality: the JSON names any of which satisfies it.
    var required: [(element: Int, names: [String])]
}

/// A required value set, expanded from the core package by the generator.
struct RequiredValueSet: Sendable {
    var url: String
    /// Codes by code system, or nil when the core package alone cannot expand the value set
    /// (UCUM units, MIME types, ...) and it is therefore not enforced.
    var codesBySystem: [String: Set<String>]?
    /// The codes of all systems, for `code` elements, whose system is implied.
    var codes: Set<String>
}

/// The element tree of the R4 resources and complex data types, built once from the
/// tables that Scripts/generators/generate-validation-tables.py generates into `Generated/StructureTable.swift`.
struct StructureSchema: Sendable {
    /// The schema of the official R4 definitions.
    static let r4 = StructureSchema(structures: structureTableText, valueSets: valueSetTableText)

    private(set) var nodes: [StructureNode] = []
    /// Resource type name → node.
    private(set) var resourceNodes: [String: Int] = [:]
    /// Complex data type name → node.
    private(set) var dataTypeNodes: [String: Int] = [:]
    private(set) var valueSets: [RequiredValueSet] = []
    /// The node of a primitive's `_name` object: just `id` and `extension`.
    private(set) var primitiveElementNode = 0
    private(set) var codingNode = 0
    private(set) var codeableConceptNode = 0
    private(set) var referenceNode = 0
    private(set) var extensionNode = 0
    /// How many element lines the table has (inherited elements are listed once, on their base).
    private(set) var elementLineCount = 0

    /// A type as the table lists it.
    private struct TableType {
        var name: String
        var base: String?
        /// Element lines in table order.
        var elements: [TableElement] = []
        /// Element lines by the path of their parent ("" for the type itself).
        var elementsByParent: [String: [TableElement]] = [:]

        /// The elements whose children are listed under their own path.
        var backboneElements: [TableElement] {
            elements.filter { $0.types == ["BackboneElement"] || $0.types == ["Element"] }
        }
    }

    private struct TableElement {
        var path: String
        var name: String
        var min: Int
        var max: Int
        var types: [String]
        var valueSet: String?
    }

    private static let abstractTypes: Set<String> = ["Resource", "DomainResource", "Element", "BackboneElement"]

    init(structures: String, valueSets valueSetText: String) {
        let valueSetIndex = parseValueSets(valueSetText)
        var types: [String: TableType] = [:]
        var order: [String] = []
        var current: TableType?
        for line in structures.split(separator: "\n") {
            let columns = line.split(separator: "\t", omittingEmptySubsequences: false)
            if !columns[0].isEmpty {
                if let finished = current { types[finished.name] = finished }
                current = TableType(name: String(columns[0]), base: columns.count > 1 ? String(columns[1]) : nil)
                order.append(String(columns[0]))
                continue
            }
            guard columns.count >= 5, current != nil, let min = Int(columns[2]),
                let max = columns[3] == "*" ? Int.max : Int(columns[3])
            else {
                preconditionFailure("Malformed structure table line: \(line)")
            }
            let path = String(columns[1])
            let parent = path.lastIndex(of: ".").map { String(path[..<$0]) } ?? ""
            let name = path.split(separator: ".").last.map(String.init) ?? path
            let element = TableElement(
                path: path, name: name, min: min, max: max, types: columns[4].split(separator: ",").map(String.init),
                valueSet: columns.count > 5 ? String(columns[5]) : nil)
            // Mutated in place: a copy would copy its dictionary on every line.
            current!.elements.append(element)
            current!.elementsByParent[parent, default: []].append(element)
            elementLineCount += 1
        }
        if let finished = current { types[finished.name] = finished }

        // Number every node first: element types refer to nodes defined anywhere in the table.
        var nodeIndex: [String: Int] = [:]  // "Type" or "Type.backbone.path" → node
        for name in order where !Self.abstractTypes.contains(name) {
            nodeIndex[name] = nodeIndex.count
            for element in types[name]!.backboneElements {
                nodeIndex[name + "." + element.path] = nodeIndex.count
            }
        }
        primitiveElementNode = nodeIndex.count
        nodes = Array(
            repeating: StructureNode(name: "", elements: [], members: [:], required: []), count: nodeIndex.count + 1)

        func inherited(from base: String?) -> [TableElement] {
            guard let base, let type = types[base] else { return [] }
            return inherited(from: type.base) + (type.elementsByParent[""] ?? [])
        }
        func resolve(_ code: String, in type: String, at path: String) -> ElementType {
            if let primitive = PrimitiveType(rawValue: code) { return .primitive(primitive) }
            if code == "Resource" { return .resource }
            let key: String
            if code == "BackboneElement" || code == "Element" {
                key = type + "." + path
            } else if code.hasPrefix("#") {
                key = type + "." + code.dropFirst()
            } else {
                key = code
            }
            guard let index = nodeIndex[key] else { preconditionFailure("Unknown type \(code) at \(type).\(path)") }
            return .complex(index)
        }
        func build(_ type: String, path: String, base: String?) -> StructureNode {
            var elements: [TableElement] = []
            // Inherited elements come first, as in the definitions; a type's own restatement replaces them.
            for element in inherited(from: base) + (types[type]!.elementsByParent[path] ?? []) {
                if let existing = elements.firstIndex(where: { $0.name == element.name }) {
                    elements[existing] = element
                } else {
                    elements.append(element)
                }
            }
            let nodeName = path.isEmpty ? type : type + "." + path
            return Self.makeNode(
                name: nodeName,
                elements: elements.map { element in
                    let isChoice = element.name.hasSuffix("[x]")
                    let rule = ElementRule(
                        name: isChoice ? String(element.name.dropLast(3)) : element.name,
                        path: nodeName + "." + element.name, min: element.min, max: element.max,
                        types: element.types.map { resolve($0, in: type, at: element.path) }, isChoice: isChoice,
                        valueSet: element.valueSet.map { key in
                            guard let index = valueSetIndex[key] else {
                                preconditionFailure("Unknown value set \(key)")
                            }
                            return index
                        })
                    return (rule, element.types)
                })
        }

        for name in order where !Self.abstractTypes.contains(name) {
            let type = types[name]!
            nodes[nodeIndex[name]!] = build(name, path: "", base: type.base)
            if type.base == "Resource" || type.base == "DomainResource" {
                resourceNodes[name] = nodeIndex[name]!
            } else {
                dataTypeNodes[name] = nodeIndex[name]!
            }
            for element in type.backboneElements {
                nodes[nodeIndex[name + "." + element.path]!] = build(name, path: element.path, base: element.types[0])
            }
        }
        nodes[primitiveElementNode] = Self.makeNode(
            name: "Element",
            elements: inherited(from: "Element").map { element in
                let rule = ElementRule(
                    name: element.name, path: "Element." + element.name, min: element.min, max: element.max,
                    types: element.types.map { resolve($0, in: "Element", at: element.path) }, isChoice: false)
                return (rule, element.types)
            })
        codingNode = dataTypeNodes["Coding"]!
        codeableConceptNode = dataTypeNodes["CodeableConcept"]!
        referenceNode = dataTypeNodes["Reference"]!
        extensionNode = dataTypeNodes["Extension"]!
    }

    /// Spells out every JSON name of the elements: choice names carry their type
    /// (`valueQuantity`) and primitives have a `_name` for their id and extensions.
    private static func makeNode(name: String, elements: [(rule: ElementRule, typeCodes: [String])]) -> StructureNode {
        var members: [String: MemberRule] = [:]
        var required: [(element: Int, names: [String])] = []
        for (index, (element, typeCodes)) in elements.enumerated() {
            var names: [String] = []
            for (type, code) in zip(element.types, typeCodes) {
                var jsonName = element.name
                if element.isChoice, let first = code.first {
                    jsonName += first.uppercased() + code.dropFirst()
                }
                members[jsonName] = MemberRule(element: index, type: type, isPrimitiveExtension: false)
                names.append(jsonName)
                if case .primitive = type {
                    members["_" + jsonName] = MemberRule(element: index, type: type, isPrimitiveExtension: true)
                    names.append("_" + jsonName)
                }
            }
            if element.min > 0 { required.append((index, names)) }
        }
        return StructureNode(name: name, elements: elements.map(\.rule), members: members, required: required)
    }

    /// Parses the value set lines, returning the index of each key.
    private mutating func parseValueSets(_ text: String) -> [String: Int] {
        var index: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let columns = line.split(separator: "\t")
            let key = String(columns[0])
            let url = key.contains("://") ? key : "http://hl7.org/fhir/ValueSet/" + key
            var valueSet = RequiredValueSet(url: url, codesBySystem: nil, codes: [])
            if columns.count > 1, !columns[1].hasPrefix("!") {
                var bySystem: [String: Set<String>] = [:]
                for column in columns.dropFirst() {
                    let words = column.split(separator: " ").map(String.init)
                    bySystem[words[0], default: []].formUnion(words.dropFirst())
                    valueSet.codes.formUnion(words.dropFirst())
                }
                valueSet.codesBySystem = bySystem
            }
            index[key] = valueSets.count
            valueSets.append(valueSet)
        }
        return index
    }

    /// The name of a data type, for diagnostics.
    func typeName(_ type: ElementType) -> String {
        switch type {
        case .primitive(let primitive): return primitive.rawValue
        case .complex(let index): return nodes[index].name
        case .resource: return "Resource"
        }
    }
}
