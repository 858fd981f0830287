/// The checks every write passes before it is stored: the body is a resource of the type
/// the URL names, with a well-formed id where one is required, its narratives are safe XHTML,
/// and (unless turned off) it conforms to its R4 StructureDefinition.
public struct ResourceValidator: Sendable {
    /// Whether writes are checked against the StructureDefinitions as well.
    public var checksStructure: Bool
    /// What a JSON Patch may do, and how large and deep the resource it makes may be.
    public var patchLimits: JSONPatch.Limits

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
            throw FHIRError.badRequest("An update must carry the resource id '\(id)' in the body", expression: ["\(type).id"])
        }
        guard bodyId.stringValue == id else {
            throw FHIRError.badRequest("The body's id does not match the id '\(id)' in the URL", expression: ["\(type).id"])
        }
    }

    /// Throws 422 with every structural problem, each located by FHIRPath.
    func validateStructure(_ resource: JSONValue) throws {
        guard checksStructure else { return }
        let issues = ResourceStructureValidator.r4.validate(resource)
        if !issues.isEmpty { throw FHIRError(status: 422, issues: issues) }
    }

    /// Throws 422 for a narrative that is not safe XHTML: checked even without structure
    /// validation, since a stored script runs in the browser of everyone who views it.
    static func validateNarratives(_ resource: JSONValue) throws {
        let issues = NarrativeChecker.problems(resource)
        if !issues.isEmpty { throw FHIRError(status: 422, issues: issues) }
    }

    /// Everything wrong with `resource` as a `type`, for `$validate`: empty when it is valid.
    public static func problems(_ resource: JSONValue, type: String) -> [FHIRError.Issue] {
        do {
            try validateShape(resource, type: type)
        } catch let error as FHIRError {
            return error.issues
        } catch {
            return [FHIRError.Issue(code: "exception", diagnostics: "\(error)")]
        }
        return NarrativeChecker.problems(resource) + ResourceStructureValidator.r4.validate(resource)
    }

    static func validateShape(_ resource: JSONValue, type: String) throws {
        guard case .object(let object) = resource else {
            throw FHIRError.unprocessable("The body must be a JSON object holding a \(type) resource")
        }
        guard let resourceType = object["resourceType"]?.stringValue else {
            throw FHIRError.unprocessable("The body has no resourceType", expression: ["resourceType"])
        }
        guard resourceType == type else {
            throw FHIRError.unprocessable("The body is a \(resourceType), but the URL names \(type)", expression: ["resourceType"])
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
