import FHIR

extension CapabilityStatementBuilder {
    /// A `rest.resource` entry with `supportedProfile`: the R4 core profiles of its type that
    /// writes and `$validate` check (left out for types without one, as FHIR JSON has no empty arrays).
    static func addingSupportedProfiles(_ resource: JSONValue) -> JSONValue {
        guard case .object(var object) = resource, let type = object["type"]?.stringValue else { return resource }
        let profiles = ProfileValidator.r4.knownProfiles(of: type)
        guard !profiles.isEmpty else { return resource }
        object.set("supportedProfile", .array(profiles.map(JSONValue.string)), after: ["profile"])
        return .object(object)
    }
}
