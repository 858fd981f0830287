import JSON

/// How strongly a profile binds an element to a value set.
enum ProfileBindingStrength: String, Sendable {
    /// A code outside the value set is an error.
    case required
    /// A code outside the value set is a warning (another code may be used when none fits).
    case extensible
}

/// A constraint a profile adds (vs-1, vs-2, ...), with its FHIRPath expression parsed.
struct ProfileInvariant: Sendable {
    var key: String
    /// `error` or `warning`.
    var severity: String
    var human: String
    var expression: FHIRPathExpression
}

/// What an item must hold to belong to a slice: a value (fixed or pattern) at a path below
/// it, or a type (`$this` of a choice element sliced by type).
enum SliceCriterion: Sendable {
    case fixed(path: [String], value: JSONValue)
    case pattern(path: [String], value: JSONValue)
    case type(String)
}

/// How the items of a sliced element divide into slices.
struct ProfileSlicing: Sendable {
    enum Rules: String, Sendable {
        /// Items that belong to no slice are allowed.
        case open
        /// Every item must belong to a slice.
        case closed
        /// Items that belong to no slice must come after all those that do.
        case openAtEnd
    }

    /// The discriminators as the profile spells them (`value:coding.code`), for diagnostics.
    var discriminators: String
    var rules: Rules
    var ordered: Bool
    var slices: [ProfileElement]
    /// A discriminator the validator cannot evaluate (`value:resolve().code`): the slices are
    /// then not checked, and `$validate` says so.
    var unsupported: String?
}

/// One element of a profile, with only what the profile adds to the core definition.
/// A slice is an element too, with its name and the criteria of its discriminators.
struct ProfileElement: Sendable {
    /// The FHIRPath name (`value` for `value[x]`).
    var name: String
    /// The element id of the profile (`Observation.component:SystolicBP.code`), for diagnostics.
    var id: String
    var isChoice: Bool
    var repeats: Bool
    var min: Int?
    var max: Int?
    /// The types a choice element is narrowed to.
    var types: [String]?
    var fixed: JSONValue?
    var pattern: JSONValue?
    var binding: (strength: ProfileBindingStrength, valueSet: TerminologyValueSet)?
    /// The resource types a reference may point at, when narrowed.
    var targets: Set<String>?
    var invariants: [ProfileInvariant] = []
    var children: [ProfileElement] = []
    var slicing: ProfileSlicing?
    var sliceName: String?
    var criteria: [SliceCriterion] = []
}

/// A core resource profile: its canonical URL, the resource type it constrains, its elements.
struct ResourceProfile: Sendable {
    var url: String
    var name: String
    var type: String
    var root: ProfileElement
}

/// The resource profiles of the R4 core package, built once from the table that
/// Scripts/generators/generate-profiles.py generates into `Generated/ProfileTable.swift`.
struct CoreProfiles: Sendable {
    static let r4 = CoreProfiles(table: profileTableText)

    /// Profiles by canonical URL (without a version).
    private(set) var byURL: [String: ResourceProfile] = [:]
    /// Constraint expressions that did not parse (none in R4 core; a test checks).
    private(set) var unparsedInvariants: [String] = []
    /// Bindings to value sets the terminology does not hold (none in R4 core; a test checks).
    private(set) var unresolvedBindings: [String] = []

    init(table: String, terminology: Terminology = .r4) {
        for line in table.split(separator: "\n") {
            guard let json = try? JSONParser.parse(String(line)), let url = json["url"]?.stringValue,
                let name = json["name"]?.stringValue, let type = json["type"]?.stringValue, let root = json["e"]
            else {
                preconditionFailure("Malformed profile table line: \(line.prefix(80))")
            }
            let element = makeElement(root, parentId: nil, terminology: terminology)
            byURL[url] = ResourceProfile(url: url, name: name, type: type, root: element)
        }
    }

    /// The profile a canonical URL names: `url` or `url|4.0.1`; nil for any other version.
    func profile(_ canonical: String) -> ResourceProfile? {
        guard let bar = canonical.firstIndex(of: "|") else { return byURL[canonical] }
        guard canonical[canonical.index(after: bar)...] == "4.0.1" else { return nil }
        return byURL[String(canonical[..<bar])]
    }

    private mutating func makeElement(_ json: JSONValue, parentId: String?, terminology: Terminology) -> ProfileElement
    {
        let name = json["n"]?.stringValue ?? ""
        let isChoice = json["x"] != nil
        var id = parentId.map { $0 + "." + name } ?? name
        if isChoice { id += "[x]" }
        let sliceName = json["s"]?.stringValue
        if let sliceName { id += ":" + sliceName }
        var element = ProfileElement(
            name: name, id: id, isChoice: isChoice, repeats: json["r"] != nil, min: json["min"]?.intValue,
            max: json["max"]?.intValue,
            types: json["t"]?.arrayValue?.compactMap(\.stringValue), fixed: json["f"], pattern: json["p"],
            targets: json["ref"]?.arrayValue.map { Set($0.compactMap(\.stringValue)) }, sliceName: sliceName)
        if let binding = json["b"]?.arrayValue, binding.count == 2,
            let strength = binding[0].stringValue.flatMap(ProfileBindingStrength.init),
            let url = binding[1].stringValue
        {
            if let valueSet = terminology.valueSet(url: url) {
                element.binding = (strength, valueSet)
            } else {
                unresolvedBindings.append("\(id): \(url)")
            }
        }
        for case .array(let entry) in json["inv"]?.arrayValue ?? [] where entry.count == 4 {
            let texts = entry.compactMap(\.stringValue)
            guard texts.count == 4 else { continue }
            do {
                element.invariants.append(
                    ProfileInvariant(
                        key: texts[0], severity: texts[1], human: texts[2], expression: try FHIRPathExpression(texts[3])
                    ))
            } catch {
                unparsedInvariants.append("\(id) \(texts[0]): \(error)")
            }
        }
        // Children hang below the element's id; a slice's children below the slice's.
        element.children = (json["c"]?.arrayValue ?? []).map { makeElement($0, parentId: id, terminology: terminology) }
        for case .array(let criterion) in json["m"]?.arrayValue ?? [] where criterion.count == 3 {
            let path =
                criterion[1].stringValue == "$this"
                ? [] : (criterion[1].stringValue ?? "").split(separator: ".").map(String.init)
            switch criterion[0].stringValue {
            case "f": element.criteria.append(.fixed(path: path, value: criterion[2]))
            case "p": element.criteria.append(.pattern(path: path, value: criterion[2]))
            case "t": element.criteria.append(.type(criterion[2].stringValue ?? ""))
            default: break
            }
        }
        if let slicing = json["sl"] {
            // Slices of `Observation.category` are `Observation.category:VSCat`: their parent is ours.
            let slices = (slicing["s"]?.arrayValue ?? []).map {
                makeElement($0, parentId: parentId, terminology: terminology)
            }
            element.slicing = ProfileSlicing(
                discriminators: (slicing["d"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ", "),
                rules: slicing["rules"]?.stringValue.flatMap(ProfileSlicing.Rules.init) ?? .open,
                ordered: slicing["ordered"] == .bool(true), slices: slices, unsupported: slicing["u"]?.stringValue)
        }
        return element
    }
}
