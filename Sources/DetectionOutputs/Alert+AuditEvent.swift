import Detection
import Foundation
import JSON
import Sensor

extension Alert {
    /// `source.observer` of the AuditEvents the sensor feeds.
    public static let auditObserver = "Caduceus sensor"
    /// The code system of `subtype`'s first coding: the rule id.
    public static let ruleCodeSystem = "urn:caduceus:rule"
    /// The code system of the MITRE ATT&CK technique codings in `subtype`.
    public static let mitreCodeSystem = "https://attack.mitre.org"

    /// The container the alert is about as a FHIR reference, `Device/<container name>` (the
    /// short id for an unnamed one, `Device/host` outside containers), so that one search by
    /// `entity` finds the attacks on a container beside the record accesses of its patients.
    /// Characters a FHIR id cannot hold (`_`) become `-`.
    public var containerReference: String {
        let name =
            container.id == "host" ? "host" : container.name.isEmpty ? String(container.id.prefix(12)) : container.name
        let id = String(
            String.UnicodeScalarView(
                name.unicodeScalars.prefix(64).map { scalar in
                    scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || scalar == "-" || scalar == ".")
                        ? scalar : "-"
                }))
        return "Device/" + (id.isEmpty ? "host" : id)
    }

    /// `8` (serious failure) for critical and worse priorities and errors, `4` (minor failure)
    /// for warnings and below: how bad what the alert saw is.
    public var auditOutcome: String {
        ["emergency", "alert", "critical", "error"].contains(priority.lowercased()) ? "8" : "4"
    }

    /// Bytes of text one string of the AuditEvent may carry: the output and the command line,
    /// and everything else; longer text is cut and ends in `…`.
    public static let auditTextLimit = 16 * 1024
    public static let auditNameLimit = 1024

    /// `text` as a FHIR string: FHIR refuses control characters other than tab, CR and LF, so
    /// the others become visible escapes (`\x1b`, as `TerminalText` shows them), and an empty
    /// string (no value in FHIR) becomes `fallback`. At most `limit` bytes.
    static func fhirString(_ text: String, limit: Int = auditNameLimit, fallback: String = "-") -> String {
        if text.isEmpty { return fallback }
        let isControl = { (value: UInt32) in value < 0x20 && value != 0x09 && value != 0x0A && value != 0x0D }
        if text.utf8.count <= limit && !text.utf8.contains(where: { isControl(UInt32($0)) }) { return text }
        var result = ""
        var bytes = 0
        for scalar in text.unicodeScalars {
            let piece = isControl(scalar.value) ? "\\x" + TerminalText.hex(scalar.value, digits: 2) : String(scalar)
            if bytes + piece.utf8.count > limit - 3 {
                result += "…"
                break
            }
            bytes += piece.utf8.count
            result += piece
        }
        return result
    }

    /// `text` as a FHIR code: a FHIR string without leading, trailing or repeated white space.
    /// White space is the server's (bytes 0x20, 0x09–0x0D), scalar by scalar: a space with a
    /// combining mark after it is one Character but still a leading space.
    static func fhirCode(_ text: String) -> String {
        var result = String.UnicodeScalarView()
        var pendingSpace = false
        for scalar in fhirString(text, fallback: "").unicodeScalars {
            if scalar.value == 0x20 || (0x09...0x0D).contains(scalar.value) {
                pendingSpace = true
                continue
            }
            if pendingSpace && !result.isEmpty { result.append(" ") }
            pendingSpace = false
            result.append(scalar)
        }
        return result.isEmpty ? "unknown" : String(result)
    }

    /// The alert as an R4 AuditEvent, IHE style: DICOM 110113 Security Alert, the rule (and its
    /// MITRE ATT&CK techniques) as `subtype`, the offending process as the agent, the container
    /// as the entity with the evidence in `entity.detail`, the sensor as `source`. Every string
    /// is one a FHIR server accepts, whatever a process put in its name or command line
    /// (`fhirString`, `fhirCode`), and bounded in length.
    public func auditEvent(site: String? = nil) -> JSONValue {
        func coding(_ system: String, _ code: String, _ display: String? = nil) -> JSONValue {
            var members: [(key: String, value: JSONValue)] = [
                ("system", .string(system)), ("code", .string(Self.fhirCode(code))),
            ]
            if let display, !display.isEmpty { members.append(("display", .string(Self.fhirString(display)))) }
            return .object(JSONObject(members))
        }
        func detail(_ type: String, _ value: String) -> JSONValue {
            .object(
                JSONObject([
                    ("type", .string(type)),
                    ("valueString", .string(Self.fhirString(value, limit: Self.auditTextLimit))),
                ]))
        }
        let subtypes = [coding(Self.ruleCodeSystem, ruleId, rule)] + mitre.map { coding(Self.mitreCodeSystem, $0) }
        let user = (process.user?.nonEmpty ?? process.uid.map { "uid \($0)" }).map { Self.fhirString($0) }
        let processName = Self.fhirString(process.name, fallback: "")
        var agent = JSONObject([
            (
                "type",
                .object(
                    JSONObject([
                        (
                            "coding",
                            .array([coding("http://dicom.nema.org/resources/ontology/DCM", "110150", "Application")])
                        )
                    ]))
            ),
            (
                "who",
                .object(
                    JSONObject([
                        (
                            "identifier",
                            .object(
                                JSONObject([("system", "urn:caduceus:pid"), ("value", .string(String(process.pid)))]))
                        ),
                        ("display", .string("\(processName) (pid \(process.pid)\(user.map { ", user \($0)" } ?? ""))")),
                    ]))
            ),
        ])
        if let user { agent["altId"] = .string(user) }
        // The command name: the executable may be a multi-call binary (busybox).
        agent["name"] = .string(
            !processName.isEmpty ? processName : Self.fhirString(process.exepath, fallback: "unknown"))
        agent["requestor"] = true
        var details = [detail("priority", priority)]
        if container.id != "host" {
            details.append(detail("container.id", container.id))
            if !container.image.isEmpty { details.append(detail("container.image", container.image)) }
        }
        details += mitre.map { detail("mitre", $0) }
        if !process.exepath.isEmpty { details.append(detail("process.exepath", process.exepath)) }
        if !process.cmdline.isEmpty { details.append(detail("process.cmdline", process.cmdline)) }
        details.append(detail("action", action ?? "none"))
        let reference = containerReference
        let description =
            container.id == "host"
            ? "the host"
            : Self.fhirString(
                "container \(container.id.prefix(12))" + (container.image.isEmpty ? "" : " (image \(container.image))"))
        let entity = JSONObject([
            ("what", .object(JSONObject([("reference", .string(reference))]))),
            ("type", coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object")),
            ("name", .string(String(reference.dropFirst("Device/".count)))),
            ("description", .string(description)),
            ("detail", .array(details)),
        ])
        var source = JSONObject()
        if let site, !site.isEmpty { source["site"] = .string(Self.fhirString(site)) }
        source["observer"] = .object(JSONObject([("display", .string(Self.auditObserver))]))
        source["type"] = .array([
            coding("http://terminology.hl7.org/CodeSystem/security-source-type", "6", "Security Server")
        ])
        // Milliseconds: an instant's precision everywhere a FHIR server stores one.
        let time = Self.rfc3339(timestamp)
        return .object(
            JSONObject([
                ("resourceType", "AuditEvent"),
                ("type", coding("http://dicom.nema.org/resources/ontology/DCM", "110113", "Security Alert")),
                ("subtype", .array(subtypes)),
                ("action", "E"),
                ("recorded", .string(String(time.prefix(23)) + "Z")),
                ("outcome", .string(auditOutcome)),
                (
                    "outcomeDesc",
                    .string(
                        Self.fhirString(output.isEmpty ? rule : output, limit: Self.auditTextLimit, fallback: "alert"))
                ),
                ("agent", .array([.object(agent)])),
                ("source", .object(source)),
                ("entity", .array([.object(entity)])),
            ]))
    }
}

extension String {
    /// nil for "".
    fileprivate var nonEmpty: String? { isEmpty ? nil : self }
}
