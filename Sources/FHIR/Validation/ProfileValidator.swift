import JSON

/// Validates a resource against the R4 core resource profiles it claims in `meta.profile`
/// (vitalsigns, bp, heartrate, cholesterol, shareablevalueset, ...) or that `$validate?profile=`
/// names: cardinalities the profile tightens, choice types it narrows, fixed and pattern values,
/// slicing (by value or pattern at a path, by type; open, closed and at-end rules; each slice's
/// cardinality), required bindings (extensible ones as warnings) to value sets the core package
/// enumerates, narrowed reference targets, and the profile's own constraints (FHIRPath).
/// Must-support is not a validation rule and is ignored.
///
/// A resource that claims no known profile costs one lookup of `meta.profile`. A profile URL
/// the server does not know is not an error (HAPI's and the Java validator's default): a write
/// goes through, and `$validate` reports a warning. The structure and invariant validators
/// check the core type; this one checks only what a profile adds.
public struct ProfileValidator: Sendable {
    /// The validator for the profiles of hl7.fhir.r4.core 4.0.1.
    public static let r4 = ProfileValidator(profiles: .r4)

    let profiles: CoreProfiles
    /// Most issues one validation lists: the walk stops there (a last issue says so).
    public var maximumIssues = 200

    init(profiles: CoreProfiles) {
        self.profiles = profiles
    }

    /// Whether the canonical URL (with or without `|4.0.1`) names a core resource profile.
    public func isKnown(_ canonical: String) -> Bool {
        profiles.profile(canonical) != nil
    }

    /// The canonical URLs of the core resource profiles this validator checks.
    public var knownProfiles: [String] { profiles.byURL.keys.sorted() }

    /// The canonical URLs of the core profiles of one resource type (for the CapabilityStatement).
    public func knownProfiles(of type: String) -> [String] {
        profiles.byURL.values.filter { $0.type == type }.map(\.url).sorted()
    }

    /// The problems of `resource` against the known profiles in its `meta.profile` and in
    /// `requested` (from `$validate?profile=`): errors, and warnings for extensible bindings,
    /// warning-severity constraints and unknown profiles (`reportsUnknown`: for `$validate`).
    public func validate(_ resource: JSONValue, requested: [String] = [], reportsUnknown: Bool = false) -> [FHIRError
        .Issue]
    {
        let claimed = resource["meta"]?["profile"]?.arrayValue ?? []
        guard !claimed.isEmpty || !requested.isEmpty, let type = resource["resourceType"]?.stringValue else {
            return []
        }
        var walk = ProfileWalk(resource: resource, maximumIssues: maximumIssues)
        var seen = Set<String>()
        var unknown: [String] = []
        for canonical in claimed.compactMap(\.stringValue) + requested where seen.insert(canonical).inserted {
            guard let profile = profiles.profile(canonical) else {
                if canonical != "http://hl7.org/fhir/StructureDefinition/" + type { unknown.append(canonical) }
                continue
            }
            guard profile.type == type else {
                walk.report(
                    profile, "error", "structure", "The profile constrains \(profile.type), not \(type)", at: type)
                continue
            }
            walk.check(profile)
            if walk.isFull { break }
        }
        if reportsUnknown {
            for canonical in unknown.prefix(10) {
                walk.issues.append(
                    FHIRError.Issue(
                        severity: "warning", code: "not-supported",
                        diagnostics:
                            "Profile '\(canonical.prefix(200))' is not known to this server, so the resource was not checked against it",
                        expression: [type + ".meta.profile"]))
            }
        }
        return walk.finish()
    }

    /// Everything a profile check finds, for the validators' list of issue producers: on a
    /// write only the errors count; `$validate` shows the warnings as well.
    public func issues(for resource: JSONValue, extraProfiles: [String]) -> [FHIRError.Issue] {
        validate(resource, requested: extraProfiles, reportsUnknown: true)
    }

    /// The errors alone, as a write refuses them (warnings do not stop a write).
    public func errors(in resource: JSONValue) -> [FHIRError.Issue] {
        guard case .array(let claimed)? = resource["meta"]?["profile"],
            claimed.contains(where: { $0.stringValue.map(isKnown) ?? false })
        else {
            return []
        }
        return validate(resource).filter { $0.severity == "error" }
    }
}

/// An item reached by navigation, with its location for issues (`Observation.component[1].code`).
struct LocatedItem {
    var item: FHIRPathItem
    var location: String
}

/// One validation against one or more profiles: the issues found so far.
struct ProfileWalk {
    let resource: JSONValue
    let maximumIssues: Int
    var issues: [FHIRError.Issue] = []
    /// The profile being checked, named in every issue.
    var profile: ResourceProfile?

    init(resource: JSONValue, maximumIssues: Int) {
        self.resource = resource
        self.maximumIssues = maximumIssues
    }

    var isFull: Bool { issues.count >= maximumIssues }

    mutating func check(_ profile: ResourceProfile) {
        self.profile = profile
        let root = LocatedItem(item: FHIRPathNavigator.item(for: resource), location: profile.type)
        visit(profile.root, items: [root])
    }

    /// Checks the items an element (or a slice) has under one parent: their number, then each.
    mutating func visit(_ element: ProfileElement, items: [LocatedItem], parentLocation: String? = nil) {
        guard !isFull else { return }
        let what = element.sliceName.map { "slice '\($0)' of \(element.id)" } ?? element.id
        if let min = element.min, items.count < min {
            report(
                "structure", "\(what) requires at least \(min) item\(min == 1 ? "" : "s"), found \(items.count)",
                at: parentLocation.map { $0 + "." + element.name } ?? element.id)
        }
        if let max = element.max, items.count > max {
            report(
                "structure", "\(what) allows at most \(max) item\(max == 1 ? "" : "s"), found \(items.count)",
                at: items[max].location)
        }
        for located in items {
            checkRules(of: element, on: located)
            guard case .node(let node) = located.item else { continue }
            for child in element.children where !isFull {
                let kids = children(of: node, at: located.location, named: child)
                visit(child, items: kids, parentLocation: located.location)
                if let slicing = child.slicing { slice(kids, of: child, by: slicing, parentLocation: located.location) }
            }
        }
    }

    /// The child items of a node named as the element is, each with its location.
    func children(of node: FHIRPathNode, at location: String, named element: ProfileElement) -> [LocatedItem] {
        // Most elements a profile names are absent: the JSON says so without the typed navigation.
        if case .object(let object)? = node.value {
            let present =
                element.isChoice
                ? object.keys.contains { $0.hasPrefix(element.name) || $0.hasPrefix("_" + element.name) }
                : object[element.name] != nil || object["_" + element.name] != nil
            if !present { return [] }
        }
        guard let items = try? FHIRPathNavigator.children(of: node, named: element.name) else { return [] }
        return items.enumerated().map { offset, item in
            var name = element.name
            if element.isChoice, let first = FHIRPathTypes.typeName(item).name.first {
                name += first.uppercased() + FHIRPathTypes.typeName(item).name.dropFirst()
            }
            return LocatedItem(item: item, location: location + "." + name + (element.repeats ? "[\(offset)]" : ""))
        }
    }

    /// Divides the items of a sliced element among its slices, then checks each slice.
    mutating func slice(
        _ items: [LocatedItem], of element: ProfileElement, by slicing: ProfileSlicing, parentLocation: String
    ) {
        guard slicing.unsupported == nil else { return }
        var members = Array(repeating: [LocatedItem](), count: slicing.slices.count)
        var lastSlice = 0
        var sawUnsliced = false
        for located in items {
            // An item of a type the profile does not allow was reported already.
            if let types = element.types, !types.contains(FHIRPathTypes.typeName(located.item).name) { continue }
            guard let index = slicing.slices.firstIndex(where: { belongs(located.item, to: $0) }) else {
                sawUnsliced = true
                if slicing.rules == .closed {
                    report(
                        "structure",
                        "\(located.location) matches no slice of \(element.id), whose slicing (\(slicing.discriminators)) is closed",
                        at: located.location)
                }
                continue
            }
            if slicing.ordered && index < lastSlice {
                report(
                    "structure",
                    "\(located.location) (slice '\(slicing.slices[index].sliceName ?? "")') comes after a later slice: the slices of \(element.id) are ordered",
                    at: located.location)
            }
            if slicing.rules == .openAtEnd && sawUnsliced {
                report(
                    "structure",
                    "\(located.location) belongs to a slice but follows items of none: \(element.id) allows other items only at the end",
                    at: located.location)
            }
            lastSlice = max(lastSlice, index)
            members[index].append(located)
        }
        for (slice, matched) in zip(slicing.slices, members) where !isFull {
            visit(slice, items: matched, parentLocation: parentLocation)
        }
    }

    /// Whether an item meets every discriminator criterion of a slice.
    func belongs(_ item: FHIRPathItem, to slice: ProfileElement) -> Bool {
        slice.criteria.allSatisfy { criterion in
            switch criterion {
            case .type(let name):
                return FHIRPathTypes.typeName(item).name == name
            case .fixed(let path, let value):
                return Self.values(of: item.nodeValue, at: path).contains { ProfileValues.equals($0, value) }
            case .pattern(let path, let value):
                return Self.values(of: item.nodeValue, at: path).contains { ProfileValues.matches($0, pattern: value) }
            }
        }
    }

    /// The JSON values a discriminator's path reaches (`coding.code`), arrays flattened. The
    /// paths of R4 core's discriminators name plain members (no choice elements), so the JSON
    /// suffices, and costs a fraction of the typed navigation.
    static func values(of value: JSONValue?, at path: [String]) -> [JSONValue] {
        var current = value.map { [$0] } ?? []
        for name in path {
            current = current.flatMap { value -> [JSONValue] in
                guard let child = value[name] else { return [] }
                return child.arrayValue ?? [child]
            }
        }
        return current
    }

    // MARK: Rules on one item

    mutating func checkRules(of element: ProfileElement, on located: LocatedItem) {
        let value = located.item.nodeValue
        if let types = element.types {
            let type = FHIRPathTypes.typeName(located.item).name
            if !types.contains(type) {
                report(
                    "structure", "\(element.id) allows only \(types.joined(separator: ", ")), not \(type)",
                    at: located.location)
                return
            }
        }
        if let fixed = element.fixed, !(value.map { ProfileValues.equals($0, fixed) } ?? false) {
            report(
                "value",
                "\(element.id) must be exactly \(ProfileValues.text(fixed))\(value.map { ", not " + ProfileValues.instanceText($0) } ?? "")",
                at: located.location)
        }
        if let pattern = element.pattern, !(value.map { ProfileValues.matches($0, pattern: pattern) } ?? false) {
            report("value", "\(element.id) must match the pattern \(ProfileValues.text(pattern))", at: located.location)
        }
        if let binding = element.binding, let value,
            let problem = ProfileValues.bindingProblem(
                value, type: FHIRPathTypes.typeName(located.item).name, valueSet: binding.valueSet)
        {
            let strength = binding.strength
            report(
                strength == .required ? "error" : "warning", "code-invalid",
                "\(problem): not in the value set \(binding.valueSet.url), which \(element.id) \(strength == .required ? "requires" : "should take its code from (extensible)")",
                at: located.location)
        }
        if let targets = element.targets, let value, let type = ProfileValues.referencedType(value),
            !targets.contains(type)
        {
            report(
                "structure", "\(element.id) may refer to \(targets.sorted().joined(separator: ", ")), not \(type)",
                at: located.location)
        }
        for invariant in element.invariants where !isFull {
            evaluate(invariant, of: element, on: located)
        }
    }

    mutating func evaluate(_ invariant: ProfileInvariant, of element: ProfileElement, on located: LocatedItem) {
        var environment = FHIRPathEnvironment()
        environment.allowsAsOnCollections = true
        do {
            let result = try invariant.expression.evaluate(
                on: resource, context: [located.item], environment: environment)
            guard result.count == 1, case .boolean(false)? = result[0].systemValue else { return }
            report(
                invariant.severity == "error" ? "error" : "warning", "invariant",
                "Constraint \(invariant.key) of \(element.id) failed: \(invariant.human)", at: located.location)
        } catch let error as FHIRPathError where error.kind == .limit {
            report(
                "error", "too-costly",
                "Constraint \(invariant.key) of \(element.id) could not be evaluated within the limits: \(error.message)",
                at: located.location)
        } catch {
            report(
                "warning", "processing",
                "Constraint \(invariant.key) of \(element.id) could not be evaluated: \(error)", at: located.location)
        }
    }

    // MARK: Issues

    mutating func report(_ code: String, _ diagnostics: String, at location: String) {
        report("error", code, diagnostics, at: location)
    }

    mutating func report(_ severity: String, _ code: String, _ diagnostics: String, at location: String) {
        guard let profile else { return }
        report(profile, severity, code, diagnostics, at: location)
    }

    mutating func report(
        _ profile: ResourceProfile, _ severity: String, _ code: String, _ diagnostics: String, at location: String
    ) {
        guard !isFull else { return }
        issues.append(
            FHIRError.Issue(
                severity: severity, code: code, diagnostics: "Profile \(profile.url): \(diagnostics)",
                expression: [location]))
    }

    /// The issues, with a last one saying so when the walk stopped at the limit.
    func finish() -> [FHIRError.Issue] {
        guard isFull else { return issues }
        return issues + [
            FHIRError.Issue(
                severity: "information", code: "too-costly",
                diagnostics: "Profile validation stopped after \(maximumIssues) issues; there may be more")
        ]
    }
}

extension ProfileValidator: ResourceIssueProducer {}
