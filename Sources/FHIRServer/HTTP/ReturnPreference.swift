/// What a create, update or PATCH answers with (`Prefer: return=...`, FHIR R4 http.html):
/// the stored resource, nothing, or an OperationOutcome. Transaction and batch entries follow
/// it too (the resource in `entry.resource`, the outcome in `entry.response.outcome`).
public enum ReturnPreference: String, Sendable, CaseIterable {
    case minimal
    case representation
    case operationOutcome = "OperationOutcome"

    /// The server's default: the resource, as HAPI, Blaze, Medplum and Aidbox answer and as
    /// clients such as fhirpy expect (`resource.save()` reads the id and meta from it).
    /// IBM FHIR Server answered with an empty body (`caduceus serve --default-return minimal`).
    public static let standard = ReturnPreference.representation

}
