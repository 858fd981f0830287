import FHIR

/// The `profile` input of `$validate`: the query parameter `profile=` (repeatable) and the
/// `profile` parameter of a Parameters body (valueUri or valueCanonical).
enum ValidateProfileParameters {
    /// Most profiles one `$validate` may name (R4 core has 43 resource profiles).
    static let maximumCount = 10

    /// The profiles named in the query and in the Parameters body, if any. A profile the
    /// server does not know is refused (400, not-supported): the client asked for a check
    /// that cannot be made, unlike a `meta.profile` it does not know, which is only a warning.
    static func profiles(query: [(name: String, value: String)], parameters: JSONValue?) throws -> [String] {
        var urls = query.filter { $0.name == "profile" }.map(\.value)
        for parameter in parameters?["parameter"]?.arrayValue ?? [] where parameter["name"]?.stringValue == "profile" {
            guard let url = parameter["valueUri"]?.stringValue ?? parameter["valueCanonical"]?.stringValue else {
                throw FHIRError.badRequest("The 'profile' parameter of $validate takes a valueUri or valueCanonical")
            }
            urls.append(url)
        }
        guard urls.count <= maximumCount else {
            throw FHIRError.badRequest("$validate takes at most \(maximumCount) profiles, not \(urls.count)")
        }
        for url in urls where !ProfileValidator.r4.isKnown(url) && !isCoreType(url) {
            throw FHIRError(
                status: 400, code: "not-supported",
                "The profile '\(url.prefix(200))' is not known to this server; it knows the R4 core resource profiles (4.0.1)"
            )
        }
        return urls
    }

    /// A core type's own definition (`.../StructureDefinition/Observation`): what every
    /// validation checks anyway.
    static func isCoreType(_ url: String) -> Bool {
        let prefix = "http://hl7.org/fhir/StructureDefinition/"
        let name = url.split(separator: "|", maxSplits: 1).first.map(String.init) ?? url
        return name.hasPrefix(prefix) && FHIRResourceType.isKnown(name.dropFirst(prefix.count))
    }
}
