import JSON

/// A check of a resource beyond structure and the core rules (profiles), run on every write
/// and by `$validate`.
public protocol ResourceIssueProducer: Sendable {
    /// The issues about `resource`: severity `error` refuses a write (422), `warning` and
    /// `information` only `$validate` reports. `extraProfiles` are the profiles
    /// `$validate?profile=` names (empty on writes).
    func issues(for resource: JSONValue, extraProfiles: [String]) -> [FHIRError.Issue]
}

/// The checks every write passes before it is stored: the body is a resource of the type
/// the URL names, with a well-formed id where one is required, its narratives are safe XHTML,
/// and (unless turned off) it conforms to its R4 StructureDefinition: structure, the core
/// constraints (FHIRPath invariants) of error severity, Reference target types, core
/// extensions and Bundle rules (`ResourceStructureValidator.validateWithRules`), then the
/// `producers` (profiles).
public struct ResourceValidator: Sendable {
    /// Whether writes are checked against the StructureDefinitions (and the producers) as well.
    public var checksStructure: Bool
    /// What a JSON Patch may do, and how large and deep the resource it makes may be.
    public var patchLimits: JSONPatch.Limits
    /// Further checks run after the core rules, on writes and by `$validate`.
    public var producers: [any ResourceIssueProducer] = ResourceValidator.standardProducers

    public init(checksStructure: Bool = true, patchLimits: JSONPatch.Limits = JSONPatch.Limits()) {
        self.checksStructure = checksStructure
        self.patchLimits = patchLimits
    }

    /// Validates a create (`POST Type`): the id, if any, is ignored and replaced.
    public func validateCreate(_ resource: JSONValue, type: String) throws {
        try Self.validateShape(resource, type: type)
        try Self.validateNarratives(resource)
        try validateStructure(resource)
    }

    /// Validates an update (`PUT Type/id`): the body must carry the same id.
    public func validateUpdate(_ resource: JSONValue, type: String, id: String) throws {
        try Self.validateShape(resource, type: type)
        try Self.validateNarratives(resource)
        try validateStructure(resource)
        guard let bodyId = resource["id"] else {
            throw FHIRError.badRequest(
                "An update must carry the resource id '\(id)' in the body", expression: ["\(type).id"])
        }
        guard bodyId.stringValue == id else {
            throw FHIRError.badRequest(
                "The body's id does not match the id '\(id)' in the URL", expression: ["\(type).id"])
        }
    }

    /// Throws 422 with every error (structure, constraint, reference target, extension,
    /// Bundle rule, producer), each located by FHIRPath; warnings do not refuse a write.
    func validateStructure(_ resource: JSONValue) throws {
        guard checksStructure else { return }
        var issues = ResourceStructureValidator.r4.validateWithRules(resource, includeWarnings: false)
        if !issues.contains(where: Self.isError) {
            for producer in producers { issues += producer.issues(for: resource, extraProfiles: []) }
        }
        let errors = issues.filter(Self.isError)
        if !errors.isEmpty { throw FHIRError(status: 422, issues: errors) }
    }

    /// Throws 422 when a transaction or batch Bundle breaks a Bundle rule (bdl-*, unique
    /// fullUrls, one link per relation), before any entry runs.
    public func validateBundleInput(_ bundle: JSONValue) throws {
        guard checksStructure else { return }
        let errors = ResourceStructureValidator.r4.validateBundleRules(bundle).filter(Self.isError)
        if !errors.isEmpty { throw FHIRError(status: 422, issues: errors) }
    }

    static func isError(_ issue: FHIRError.Issue) -> Bool {
        issue.severity == "error" || issue.severity == "fatal"
    }

    /// Throws 422 for a narrative that is not safe XHTML: checked even without structure
    /// validation, since a stored script runs in the browser of everyone who views it.
    static func validateNarratives(_ resource: JSONValue) throws {
        let issues = NarrativeChecker.problems(resource)
        if !issues.isEmpty { throw FHIRError(status: 422, issues: issues) }
    }

    /// Everything wrong with `resource` as a `type`, for `$validate`: errors and warnings
    /// (whether or not writes check structure); empty when there is nothing to say.
    /// `profiles` are the extra profiles `$validate?profile=` names, for the producers.
    public func problems(_ resource: JSONValue, type: String, profiles: [String] = []) -> [FHIRError.Issue] {
        do {
            try Self.validateShape(resource, type: type)
        } catch let error as FHIRError {
            return error.issues
        } catch {
            return [FHIRError.Issue(code: "exception", diagnostics: "\(error)")]
        }
        var issues =
            NarrativeChecker.problems(resource)
            + ResourceStructureValidator.r4.validateWithRules(resource, includeWarnings: true)
        if !issues.contains(where: Self.isError) {
            for producer in producers { issues += producer.issues(for: resource, extraProfiles: profiles) }
        }
        return issues
    }

    static func validateShape(_ resource: JSONValue, type: String) throws {
        guard case .object(let object) = resource else {
            throw FHIRError.unprocessable("The body must be a JSON object holding a \(type) resource")
        }
        guard let resourceType = object["resourceType"]?.stringValue else {
            throw FHIRError.unprocessable("The body has no resourceType", expression: ["resourceType"])
        }
        guard resourceType == type else {
            throw FHIRError.unprocessable(
                "The body is a \(resourceType), but the URL names \(type)", expression: ["resourceType"])
        }
        if let id = object["id"] {
            guard let text = id.stringValue, FHIRResourceType.isValidId(text) else {
                throw FHIRError.unprocessable(
                    "The id must be 1 to 64 letters, digits, '-' or '.'", expression: ["\(type).id"])
            }
        }
        if let meta = object["meta"], meta.objectValue == nil {
            throw FHIRError.unprocessable("meta must be an object", expression: ["\(type).meta"])
        }
    }
}
