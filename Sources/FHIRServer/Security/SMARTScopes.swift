import FHIR

/// What a SMART scope letter allows: `c` create, `r` read (read, vread, history), `u`
/// update and patch, `d` delete, `s` search.
public enum SMARTPermission: Character, Sendable, CaseIterable {
    case create = "c", read = "r", update = "u", delete = "d", search = "s"
}

/// One SMART App Launch scope on clinical data: `patient/Observation.rs`,
/// `user/*.cruds`, `system/*.*`; v1 suffixes `.read`, `.write` and `.*` are accepted.
public struct SMARTScope: Sendable, Hashable {
    public enum Context: String, Sendable { case patient, user, system }

    public var context: Context
    /// A resource type, or `*`.
    public var resourceType: String
    public var permissions: Set<Character>

    /// Parses one scope; `nil` for scopes that are not about resources (`openid`,
    /// `launch/patient`, `offline_access`, ...) or that are malformed.
    public init?(_ text: Substring) {
        guard let slash = text.firstIndex(of: "/"), let context = Context(rawValue: String(text[..<slash])) else {
            return nil
        }
        let rest = text[text.index(after: slash)...]
        // v2 scopes may carry search constraints (`?category=...`); they are not honoured, so
        // such a scope is ignored rather than widened.
        guard !rest.contains("?"), let dot = rest.lastIndex(of: ".") else { return nil }
        let type = String(rest[..<dot])
        guard type == "*" || FHIRResourceType.isKnown(type) else { return nil }
        let suffix = rest[rest.index(after: dot)...]
        let permissions: Set<Character>
        switch suffix {
        case "*": permissions = ["c", "r", "u", "d", "s"]
        case "read": permissions = ["r", "s"]
        case "write": permissions = ["c", "u", "d"]
        default:
            // v2: a subset of "cruds", in that order.
            var allowed = Array("cruds")[...]
            var letters = Set<Character>()
            for letter in suffix {
                guard let index = allowed.firstIndex(of: letter) else { return nil }
                letters.insert(letter)
                allowed = allowed[allowed.index(after: index)...]
            }
            guard !letters.isEmpty else { return nil }
            permissions = letters
        }
        self.context = context
        self.resourceType = type
        self.permissions = permissions
    }

    public func covers(_ permission: SMARTPermission, type: String) -> Bool {
        (resourceType == "*" || resourceType == type) && permissions.contains(permission.rawValue)
    }
}

/// Who a verified access token speaks for and what it may do.
public struct AccessGrant: Sendable {
    /// The token's `sub`.
    public var subject: String?
    /// The token's `client_id` (or `azp`).
    public var clientId: String?
    /// The `patient` claim: the patient whose compartment `patient/` scopes are limited to.
    public var patient: String?
    /// The `fhirUser` claim (`Practitioner/123`), when the token has one.
    public var fhirUser: String?
    /// The `tenant` claim: the only tenant the token may be used with (`nil`: the default one).
    public var tenant: String?
    public var scopes: [SMARTScope]

    public init(subject: String?, clientId: String?, patient: String?, fhirUser: String? = nil, scope: String) {
        self.subject = subject
        self.clientId = clientId
        self.patient = patient
        self.fhirUser = fhirUser
        scopes = scope.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap(SMARTScope.init)
    }

    /// How `permission` on `type` is granted: `nil` when not at all, `.unrestricted` by a
    /// `user/` or `system/` scope, `.patient(id)` by a `patient/` scope: limited to what
    /// ``AccessGuard`` lets that patient see, on every type (those outside the Patient
    /// compartment included).
    public func access(_ permission: SMARTPermission, type: String) -> Access? {
        var patientScoped = false
        for scope in scopes where scope.covers(permission, type: type) {
            if scope.context != .patient { return .unrestricted }
            patientScoped = true
        }
        guard patientScoped else { return nil }
        // A patient/ scope without a patient claim reaches nothing.
        return patient.map(Access.patient)
    }

    public enum Access: Sendable, Equatable {
        case unrestricted
        case patient(String)
    }

    /// The access, or a 403 OperationOutcome naming what is missing.
    public func require(_ permission: SMARTPermission, type: String) throws -> Access {
        guard let access = access(permission, type: type) else { throw Self.forbidden(permission, type: type) }
        return access
    }

    static func forbidden(_ permission: SMARTPermission, type: String) -> FHIRError {
        let name: String
        switch permission {
        case .create: name = "create"
        case .read: name = "read"
        case .update: name = "update"
        case .delete: name = "delete"
        case .search: name = "search"
        }
        return FHIRError(
            status: 403, code: "forbidden",
            "The access token's scopes do not allow \(name) on \(type) (needs a scope such as user/\(type).\(permission.rawValue))"
        )
    }

    /// The agent's name for audit: `sub`, else `client_id`.
    public var agentName: String? { subject ?? clientId }
}
