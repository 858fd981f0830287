import Foundation
import JSON

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
        let name = container.id == "host" ? "host" : container.name.isEmpty ? String(container.id.prefix(12)) : container.name
        let id = String(String.UnicodeScalarView(name.unicodeScalars.prefix(64).map { scalar in
            scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || scalar == "-" || scalar == ".") ? scalar : "-"
        }))
        return "Device/" + (id.isEmpty ? "host" : id)
    }

    /// `8` (serious failure) for critical and worse priorities and errors, `4` (minor failure)
    /// for warnings and below: how bad what the alert saw is.
    public var auditOutcome: String {
        ["emergency", "alert", "critical", "error"].contains(priority.lowercased()) ? "8" : "4"
    }

    /// The alert as an R4 AuditEvent, IHE style: DICOM 110113 Security Alert, the rule (and its
    /// MITRE ATT&CK techniques) as `subtype`, the offending process as the agent, the container
    /// as the entity with the evidence in `entity.detail`, the sensor as `source`.
    public func auditEvent(site: String? = nil) -> JSONValue {
        func coding(_ system: String, _ code: String, _ display: String? = nil) -> JSONValue {
            var members: [(key: String, value: JSONValue)] = [("system", .string(system)), ("code", .string(code))]
            if let display { members.append(("display", .string(display))) }
            return .object(JSONObject(members))
        }
        func detail(_ type: String, _ value: String) -> JSONValue {
            .object(JSONObject([("type", .string(type)), ("valueString", .string(value))]))
        }
        let subtypes = [coding(Self.ruleCodeSystem, ruleId, rule)] + mitre.map { coding(Self.mitreCodeSystem, $0) }
        let user = process.user ?? process.uid.map { "uid \($0)" }
        var agent = JSONObject([
            ("type", .object(JSONObject([("coding", .array([coding("http://dicom.nema.org/resources/ontology/DCM", "110150", "Application")]))]))),
            ("who", .object(JSONObject([
                ("identifier", .object(JSONObject([("system", "urn:caduceus:pid"), ("value", .string(String(process.pid)))]))),
                ("display", .string("\(process.name) (pid \(process.pid)\(user.map { ", user \($0)" } ?? ""))")),
            ]))),
        ])
        if let user { agent["altId"] = .string(user) }
        // The command name: the executable may be a multi-call binary (busybox).
        agent["name"] = .string(!process.name.isEmpty ? process.name : process.exepath.isEmpty ? "unknown" : process.exepath)
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
        let description = container.id == "host"
            ? "the host" : "container \(container.id.prefix(12))" + (container.image.isEmpty ? "" : " (image \(container.image))")
        let entity = JSONObject([
            ("what", .object(JSONObject([("reference", .string(reference))]))),
            ("type", coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object")),
            ("name", .string(String(reference.dropFirst("Device/".count)))),
            ("description", .string(description)),
            ("detail", .array(details)),
        ])
        var source = JSONObject()
        if let site { source["site"] = .string(site) }
        source["observer"] = .object(JSONObject([("display", .string(Self.auditObserver))]))
        source["type"] = .array([coding("http://terminology.hl7.org/CodeSystem/security-source-type", "6", "Security Server")])
        // Milliseconds: an instant's precision everywhere a FHIR server stores one.
        let time = EventView.rfc3339(timestamp)
        return .object(JSONObject([
            ("resourceType", "AuditEvent"),
            ("type", coding("http://dicom.nema.org/resources/ontology/DCM", "110113", "Security Alert")),
            ("subtype", .array(subtypes)),
            ("action", "E"),
            ("recorded", .string(String(time.prefix(23)) + "Z")),
            ("outcome", .string(auditOutcome)),
            ("outcomeDesc", .string(output.isEmpty ? rule : output)),
            ("agent", .array([.object(agent)])),
            ("source", .object(source)),
            ("entity", .array([.object(entity)])),
        ]))
    }
}
