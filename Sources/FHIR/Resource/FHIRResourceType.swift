/// Names and ids of FHIR resources.
public enum FHIRResourceType {
    /// The 146 concrete R4 resource types (generated from the official definitions).
    public static let all: Set<String> = Set(fhirResourceTypeNames)

    public static func isKnown(_ name: some StringProtocol) -> Bool {
        all.contains(String(name))
    }

    /// `[A-Za-z0-9\-\.]{1,64}`, the R4 rule for logical ids, except `.` and `..`.
    public static func isValidId(_ id: some StringProtocol) -> Bool {
        let utf8 = id.utf8
        guard !utf8.isEmpty, utf8.count <= 64 else { return false }
        // `.` and `..` are dot segments: URL normalisation turns `Patient/..` into another path.
        guard utf8.count > 2 || !utf8.allSatisfy({ $0 == 0x2E }) else { return false }
        return utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2D || byte == 0x2E
        }
    }
}
