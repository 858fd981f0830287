/// A compartment of R4 (Patient, Encounter, RelatedPerson, Practitioner, Device): which
/// resource types belong to it, and through which search parameters.
public struct Compartment: Sendable {
    /// The owner's resource type, such as `Patient`.
    public var owner: String
    /// Member resource type to the reference parameters that link it to the owner (`{def}`,
    /// the owner's own type in Encounter, Practitioner and RelatedPerson, is left out: the
    /// owner is in its own compartment anyway).
    public var members: [String: [String]]

    public static let patient = Compartment.named("Patient")!

    /// Every compartment of the generated R4 table, by owner type.
    public static let all: [String: Compartment] = {
        var members: [String: [String: [String]]] = [:]
        for line in compartmentTableText.split(separator: "\n") {
            let columns = line.split(separator: "\t").map(String.init)
            guard columns.count == 3 else { continue }
            members[columns[0], default: [:]][columns[1]] = columns[2].split(separator: ",").map(String.init).filter {
                $0 != "{def}"
            }
        }
        return Dictionary(uniqueKeysWithValues: members.map { ($0.key, Compartment(owner: $0.key, members: $0.value)) })
    }()

    /// The compartment owned by resources of `owner`, from the generated R4 table.
    public static func named(_ owner: String) -> Compartment? {
        all[owner]
    }

    /// Whether a resource of `type` that refers to the owner through `parameter` is a member.
    public func contains(type: String, linkedBy parameter: String) -> Bool {
        members[type]?.contains(parameter) ?? false
    }

    /// Whether resources of `type` can be in this compartment (the owner's type always can).
    public func hasMember(type: String) -> Bool {
        type == owner || members[type] != nil
    }
}
