import Foundation

/// Query strings and `application/x-www-form-urlencoded` bodies as ordered name/value pairs.
///
/// Order and repetition matter in FHIR search (a repeated name is an AND), which is why the
/// pairs are not put in a dictionary.
enum FHIRQueryString {
    static func parse(_ text: Substring) -> [(name: String, value: String)] {
        text.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            if let equals = pair.firstIndex(of: "=") {
                return (decode(pair[..<equals]), decode(pair[pair.index(after: equals)...]))
            }
            return (decode(pair), "")
        }
    }

    static func decode(_ text: Substring) -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }

    /// Characters left as they are in a query value: unreserved ones and the few FHIR search
    /// syntax characters that are safe there.
    static let allowed: CharacterSet = {
        var set = CharacterSet.alphanumerics
        set.insert(charactersIn: "-._~:/|,$")
        return set
    }()

    static func encode(_ pairs: [(name: String, value: String)]) -> String {
        pairs.map { pair in
            (pair.name.addingPercentEncoding(withAllowedCharacters: allowed) ?? pair.name) + "="
                + (pair.value.addingPercentEncoding(withAllowedCharacters: allowed) ?? pair.value)
        }.joined(separator: "&")
    }
}
