import Hummingbird
import Logging

/// The request context of every FHIR route.
public struct FHIRRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The verified access token's grant; `nil` when access control is off (everything allowed).
    public var access: AccessGrant?
    /// The client's network address, for audit.
    public var remoteAddress: String?
    /// With an audit trail, AuditEvents are written by the server only: REST writes to them
    /// (direct or in a Bundle) are refused, so that the log cannot be forged or erased, except
    /// security alerts created by an audit source (``AuditFeedToken``).
    public var protectsAuditEvents = false
    /// What a route learns for the request's AuditEvent (the created id, the patient).
    let auditNote = AuditNote()

    public init(source: Source) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress?.ipAddress
    }

    /// A context without a connection, for driving the router's responder in-process
    /// (`caduceus bench auth`).
    public init(logger: Logger, remoteAddress: String? = nil) {
        coreContext = .init(source: InProcessSource(logger: logger))
        self.remoteAddress = remoteAddress
    }
}

struct InProcessSource: RequestContextSource {
    var logger: Logger
}

/// Details of one request that routes add for its AuditEvent. One request's handlers run one
/// after another, never at once, so plain mutable state is enough.
final class AuditNote: @unchecked Sendable {
    /// Overrides the interaction read from the method and path (`batch` versus `transaction`).
    var subtype: String?
    /// Patients the interaction was about, beyond those in the URL and the token.
    var patients: [String] = []
    /// The form of a `POST _search` (its criteria, not in the URL): recorded with the URL's
    /// query, under the same size bound.
    var form: String?
    /// Patients whose data the response returns (``FHIRRequestContext/noteReturnedPatients(_:)``).
    var patientsReturned = Set<String>()
}
