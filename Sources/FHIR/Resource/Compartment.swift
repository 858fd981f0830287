/// A compartment of R4 (Patient, Encounter, RelatedPerson, Practitioner, Device): which
/// resource types belong to it, and through which search parameters.
public struct Compartment: Sendable {
    /// The owner's resource type, such as `Patient`.
    public var owner: String
    /// Member resource type to the reference parameters that link it to the owner.
    public var members: [String: [String]]

    public static let patient = Compartment.named("Patient")!

    /// The compartment owned by resources of `owner`, from the generated R4 table.
    public static func named(_ owner: String) -> Compartment? {
        var members: [String: [String]] = [:]
        for line in compartmentTableText.split(separator: "\n") {
            let columns = line.split(separator: "\t").map(String.init)
            guard columns.count == 3, columns[0] == owner else { continue }
            members[columns[1]] = columns[2].split(separator: ",").map(String.init)
        }
        return members.isEmpty ? nil : Compartment(owner: owner, members: members)
    }

    /// Whether a resource of `type` that refers to the owner through `parameter` is a member.
    public func contains(type: String, linkedBy parameter: String) -> Bool {
        members[type]?.contains(parameter) ?? false
    }
}
