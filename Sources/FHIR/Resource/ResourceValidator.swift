/// The checks every write passes before it is stored: the body is a resource of the type
/// the URL names, with a well-formed id where one is required.
public enum ResourceValidator {
    /// Validates a create (`POST Type`): the id, if any, is ignored and replaced.
    public static func validateCreate(_ resource: JSONValue, type: String) throws {
        try validateShape(resource, type: type)
    }

    /// Validates an update (`PUT Type/id`): the body must carry the same id.
    public static func validateUpdate(_ resource: JSONValue, type: String, id: String) throws {
        try validateShape(resource, type: type)
        guard let bodyId = resource["id"] else {
            throw FHIRError.badRequest("An update must carry the resource id '\(id)' in the body", expression: ["\(type).id"])
        }
        guard bodyId.stringValue == id else {
            throw FHIRError.badRequest("The body's id does not match the id '\(id)' in the URL", expression: ["\(type).id"])
        }
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
