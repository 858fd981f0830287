/// Cuts resources down for `_summary` and `_elements`, marking them SUBSETTED as R4 asks.
public struct ResourceSubsetter: Sendable {
    public static let r4 = ResourceSubsetter(table: summaryElementsText)

    private var summaryKeys: [String: [String]] = [:]
    private var mandatoryKeys: [String: [String]] = [:]

    init(table: String) {
        for line in table.split(separator: "\n") {
            let columns = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard columns.count == 3 else { continue }
            summaryKeys[columns[0]] = columns[1].split(separator: ",").map(String.init)
            mandatoryKeys[columns[0]] = columns[2].split(separator: ",").map(String.init)
        }
    }

    /// `resource` as `summary` asks; unchanged for `.full`.
    public func apply(_ summary: SearchSummary, to resource: JSONValue) -> JSONValue {
        guard case .object(let object) = resource, let type = object["resourceType"]?.stringValue else {
            return resource
        }
        let mandatory = mandatoryKeys[type] ?? []
        var keep: (String) -> Bool
        switch summary {
        case .full:
            return resource
        case .summary:
            let keys = summaryKeys[type] ?? []
            keep = { Self.matches($0, keys) }
        case .text:
            keep = { ["id", "meta", "text"].contains($0) || Self.matches($0, mandatory) }
        case .data:
            keep = { $0 != "text" }
        case .elements(let names):
            // `Patient.name` and `name` both name the element `name`.
            let keys = names.map { $0.hasPrefix(type + ".") ? String($0.dropFirst(type.count + 1)) : $0 }
            keep = { ["id", "meta"].contains($0) || Self.matches($0, keys) || Self.matches($0, mandatory) }
        }
        var subset = JSONObject()
        for (key, value) in object
        where key == "resourceType" || keep(key.hasPrefix("_") ? String(key.dropFirst()) : key) {
            subset[key] = value
        }
        var meta = subset["meta"]?.objectValue ?? JSONObject()
        var tags = meta["tag"]?.arrayValue ?? []
        tags.append(
            .object(
                JSONObject([
                    ("system", "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"), ("code", "SUBSETTED"),
                ])))
        meta["tag"] = .array(tags)
        subset.set("meta", .object(meta), after: ["resourceType", "id"])
        return .object(subset)
    }

    /// Whether JSON key `key` is one of `names` (a name ending in `[x]` matches its choices).
    static func matches(_ key: String, _ names: [String]) -> Bool {
        names.contains { name in
            if name.hasSuffix("[x]") {
                let stem = name.dropLast(3)
                return key.hasPrefix(stem) && key.count > stem.count
                    && key[key.index(key.startIndex, offsetBy: stem.count)].isUppercase
            }
            return key == name
        }
    }
}
