import FHIR
import Foundation

/// The shared secret of the audit feed (IHE RESTful ATNA style): a client presenting it as
/// `Authorization: Bearer <token>` is an audit source, which may create security-alert
/// AuditEvents while the server keeps its audit trail, and do nothing else with it.
///
/// For deployments without JWT access control (`caduceus serve --audit-feed-token-file`);
/// with JWT, a token granting `system/AuditEvent.c` makes an audit source as well.
public struct AuditFeedToken: Sendable {
    let secret: [UInt8]
    /// The shortest token accepted: guessing 16 random bytes is out of reach.
    public static let minimumLength = 16

    /// A token of at least ``minimumLength`` bytes.
    public init(_ token: String) throws {
        let bytes = Array(token.utf8)
        guard bytes.count >= Self.minimumLength else {
            throw AccessTokenError(
                "The audit feed token has \(bytes.count) bytes; it needs at least \(Self.minimumLength)")
        }
        guard !bytes.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            throw AccessTokenError("The audit feed token must not contain white space or control characters")
        }
        secret = bytes
    }

    /// The token in `path`, surrounding white space (a final newline) trimmed.
    public init(contentsOfFile path: String) throws {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw AccessTokenError("Cannot read the audit feed token file '\(path)': \(error.localizedDescription)")
        }
        do {
            try self.init(text.trimmingCharacters(in: .whitespacesAndNewlines))
        } catch let error as AccessTokenError {
            throw AccessTokenError("\(path): \(error.description)")
        }
    }

    /// Whether `presented` is the token, in time that depends on `presented`'s length only,
    /// never on how many of its bytes are right.
    public func matches(_ presented: String) -> Bool {
        let bytes = Array(presented.utf8)
        var difference = bytes.count == secret.count ? 0 : 1
        for (index, byte) in bytes.enumerated() {
            difference |= Int(byte ^ secret[index % secret.count])
        }
        return difference == 0 && !bytes.isEmpty
    }

    /// What the feed token grants: creating AuditEvents, nothing more.
    public static let grant = AccessGrant(
        subject: "audit-feed", clientId: nil, patient: nil, scope: "system/AuditEvent.c")
}

extension AccessGrant {
    /// Whether the token makes an audit source: a `system/AuditEvent` scope with `c`, named
    /// explicitly (`system/*.*` does not: feeding the audit log is granted on purpose).
    public var isAuditSource: Bool {
        scopes.contains { $0.context == .system && $0.resourceType == "AuditEvent" && $0.permissions.contains("c") }
    }
}

/// What an audit source may feed.
enum AuditFeed {
    /// Refuses (422) an AuditEvent whose `type` is not DICOM 110113 Security Alert, so that a
    /// feed can add alerts but never forge the record of an access to patient data.
    static func requireSecurityAlert(_ resource: JSONValue) throws {
        let alert = AuditCoding.securityAlert
        let type = resource["type"]
        guard type?["system"]?.stringValue == alert.system, type?["code"]?.stringValue == alert.code else {
            let found = [type?["system"]?.stringValue, type?["code"]?.stringValue].compactMap { $0 }.joined(
                separator: "|")
            throw FHIRError.unprocessable(
                "An audit source may only create AuditEvents of type \(alert.system)|\(alert.code) (\(alert.display ?? "")), not '\(found.isEmpty ? "none" : found)'",
                expression: ["AuditEvent.type"])
        }
    }
}
