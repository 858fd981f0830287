import FHIR
import FHIRStore
import Foundation

/// Flags bulk reads of patient records in the audit trail: a client that receives the data of
/// more than ``patientLimit`` distinct patients within a sliding window of ``window`` seconds.
///
/// The kernel sees a FHIR server's exfiltration as ordinary reads and sends; only the API knows
/// who asked and whose records went out. ``AuditTrail`` feeds it every ``AuditRecord`` it
/// records; the routes note in each record which patients' data the response returned
/// (``AuditRecord/patientsReturned``: reads, searches with their includes, history,
/// `$everything`, batch reads and Bulk Data files). A client is the token's `sub`, else its
/// client id, else its network address. When a client goes over the limit, the detector
/// answers with one security-alert record (DICOM 110113, subtype ``ruleId``), and then stays
/// quiet for that client until a whole window has passed, so that a long scrape raises one
/// alert a window rather than one per request.
///
/// The default, more than 100 distinct patients in 60 s, sits above what a person does, with
/// room for an application: a clinician's worklist (a ward census, a clinic's list for the
/// day) touches a few dozen patients in a minute, but a client without a token is known only
/// by its address, and one address often carries a whole application's users (the
/// deployment's clinical workload reads 50 patients a minute from one address; the lab's
/// benign workload peaks at 10); a scraper paging out the Patient list passes it on its third
/// page of 50. With tokens per user, a lower limit (`serve --exfiltration-patients 50`) fits.
public struct ExfiltrationDetector: Sendable {
    /// The stable id of the alert, as `AuditEvent.subtype` (`GET AuditEvent?subtype=CAD-API-001`).
    public static let ruleId = "CAD-API-001"
    public static let ruleName = "Bulk read of patient records"
    /// MITRE ATT&CK T1213, Data from Information Repositories: the FHIR server is the
    /// repository and its own API the way in. T1530 (Data from Cloud Storage) names storage
    /// objects read past the application, which this is not.
    public static let technique = AuditCoding(
        system: "https://attack.mitre.org", code: "T1213", display: "Data from Information Repositories")

    /// The default of ``patientLimit`` (see above for why).
    public static let defaultPatientLimit = 100
    /// The default of ``window``, in seconds.
    public static let defaultWindow = 60.0

    /// The most distinct patients a client may receive in one window without an alert.
    public let patientLimit: Int
    /// The sliding window, in seconds.
    public let window: Double
    /// Reads of a patient closer together than this are queued once: memory stays bounded by
    /// the distinct patients per granule, at the price of a window that is this much short.
    let granule: Double

    var clients: [String: ClientWindow] = [:]
    var lastSweep = -Double.infinity
    /// The most distinct patients any client had in one window so far.
    public private(set) var peakPatients = 0
    /// Alerts raised so far.
    public private(set) var alerts = 0

    /// An alert when a client receives more than `patients` distinct patients within `window`
    /// seconds; `patients` must be 1 or more (0 means no detector: do not make one) and
    /// `window` more than 0.
    public init(
        patients: Int = ExfiltrationDetector.defaultPatientLimit, window: Double = ExfiltrationDetector.defaultWindow
    ) throws {
        guard patients >= 1 else { throw InvalidSettings("the patient limit must be 1 or more, not \(patients)") }
        guard window > 0, window.isFinite else {
            throw InvalidSettings("the window must be more than 0 seconds, not \(window)")
        }
        patientLimit = patients
        self.window = window
        granule = min(1, window / 60)
    }

    /// Settings the detector cannot work with.
    public struct InvalidSettings: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// One client's reads in the current window.
    struct ClientWindow {
        /// Each patient's latest queued read (seconds since the reference date).
        var lastRead: [String: Double] = [:]
        /// Reads in time order; `head` is the oldest still in the window.
        var reads: [(time: Double, patient: String)] = []
        var head = 0
        var newest = -Double.infinity
        var lastAlert: Double?

        mutating func expire(before cutoff: Double) {
            while head < reads.count, reads[head].time < cutoff {
                let read = reads[head]
                if lastRead[read.patient] == read.time { lastRead[read.patient] = nil }
                head += 1
            }
            if head > 1024, head * 2 > reads.count {
                reads.removeFirst(head)
                head = 0
            }
        }

        mutating func note(_ patient: String, at time: Double, granule: Double) {
            if let last = lastRead[patient], time - last < granule { return }
            lastRead[patient] = time
            reads.append((time, patient))
        }
    }

    /// Counts the patients `record` returned to its client; the security alert to record when
    /// that client has now gone over the limit, else `nil`.
    public mutating func observe(_ record: AuditRecord) -> AuditRecord? {
        guard !record.patientsReturned.isEmpty, record.type == .rest else { return nil }
        let (key, who) = Self.client(of: record)
        var client = clients[key] ?? ClientWindow()
        // Records reach the trail a little out of order: the queue's time never goes back.
        let now = max(record.recorded.timeIntervalSinceReferenceDate, client.newest)
        client.newest = now
        client.expire(before: now - window)
        let tenant = record.tenant.map { "\($0)/" } ?? ""  // ids are unique within a tenant only
        for patient in record.patientsReturned { client.note(tenant + patient, at: now, granule: granule) }
        let count = client.lastRead.count
        peakPatients = max(peakPatients, count)
        var alert: AuditRecord?
        if count > patientLimit, client.lastAlert.map({ now - $0 >= window }) ?? true {
            client.lastAlert = now
            alerts += 1
            alert = makeAlert(for: record, who: who, patients: count)
        }
        clients[key] = client
        sweep(now: now)
        return alert
    }

    /// Forgets clients idle for a whole window (at most once a window).
    mutating func sweep(now: Double) {
        guard now - lastSweep >= window else { return }
        lastSweep = now
        let cutoff = now - window
        clients = clients.filter { $0.value.newest >= cutoff || ($0.value.lastAlert ?? -.infinity) >= cutoff }
    }

    /// The window as people write it: "60 s", "1.5 s".
    var windowText: String { String(format: "%g s", window) }

    func makeAlert(for record: AuditRecord, who: String, patients: Int) -> AuditRecord {
        AuditRecord(
            type: .securityAlert, subtypes: [Self.rule, Self.technique], action: "E", recorded: record.recorded,
            outcome: "8",
            outcomeDescription: "\(Self.ruleName): \(who) received the data of \(patients) distinct patients within "
                + "\(windowText) (limit \(patientLimit)); next alert for this client after \(windowText) more",
            agentName: record.agentName, agentClientId: record.agentClientId, agentReference: record.agentReference,
            agentAddress: record.agentAddress,
            entityDescription: "\(patients) distinct patients read within \(windowText) (limit \(patientLimit))",
            tenant: record.tenant)
    }

    /// The rule as an `AuditEvent.subtype` coding.
    public static let rule = AuditCoding(system: AuditCoding.ruleSystem, code: ruleId, display: ruleName)

    /// Who the client is, as a key and as shown in the alert: the token's `sub`, else its
    /// client id, else the network address. `agentName` is the subject, or the client id when
    /// the token has no subject: a client id never shares a key with a subject of that name.
    static func client(of record: AuditRecord) -> (key: String, shown: String) {
        if let subject = record.agentName, subject != record.agentClientId { return ("sub:" + subject, "'\(subject)'") }
        if let clientId = record.agentClientId { return ("client:" + clientId, "client '\(clientId)'") }
        if let address = record.agentAddress { return ("address:" + address, "an anonymous client at \(address)") }
        return ("anonymous", "an anonymous client")
    }
}

extension AuditCoding {
    /// The code system of Caduceus's rule ids (`CAD-API-001`, ...) as `AuditEvent.subtype`.
    public static let ruleSystem = "urn:caduceus:rule"
}

/// The patients whose data a response returns, for ``AuditRecord/patientsReturned``: a
/// Patient's own id, and every `Patient/<id>` reference in any other resource (subject,
/// patient, performer, member, ...). Found by scanning the stored compact JSON for
/// `"reference":"`, never by parsing it: a search page costs one pass over bytes the response
/// copies anyway. (A quote inside a string is escaped, so the pattern only meets real keys.)
enum ReturnedPatients {
    static let pattern = Array(#""reference":""#.utf8)
    static let patientSegment = Array("Patient/".utf8)

    static func collect(_ stored: StoredResource, into patients: inout Set<String>) {
        if stored.type == "Patient" {
            if !stored.deleted { patients.insert(stored.id) }
            return
        }
        guard let body = stored.body else { return }
        var text = body
        text.withUTF8 { bytes in collect(references: bytes, into: &patients) }
    }

    /// The patients of a Bulk Data file of `type`: each line's id in `Patient.ndjson`, the
    /// references to patients in the others.
    static func inNDJSON(_ data: Data, type: String) -> Set<String> {
        var patients = Set<String>()
        if type == "Patient" {
            for line in data.split(separator: 0x0A, omittingEmptySubsequences: true) {
                if let id = (try? JSONParser.parse(Array(line)))?["id"]?.stringValue { patients.insert(id) }
            }
        } else {
            data.withUnsafeBytes { raw in collect(references: raw.bindMemory(to: UInt8.self), into: &patients) }
        }
        return patients
    }

    static func collect(references bytes: UnsafeBufferPointer<UInt8>, into patients: inout Set<String>) {
        let count = bytes.count, first = pattern[0]
        var index = 0
        while index + pattern.count < count {
            guard bytes[index] == first, matches(pattern, in: bytes, at: index) else {
                index += 1
                continue
            }
            let start = index + pattern.count
            var end = start
            while end < count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\") { end += 1 }
            index = end
            guard end < count, bytes[end] == UInt8(ascii: "\""),
                contains(patientSegment, in: bytes, from: start, to: end)
            else { continue }
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
            if let reference = ResourceReference(parsing: text), reference.type == "Patient" {
                patients.insert(reference.id)
            }
        }
    }

    static func matches(_ needle: [UInt8], in bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Bool {
        guard index + needle.count <= bytes.count else { return false }
        for offset in 0..<needle.count where bytes[index + offset] != needle[offset] { return false }
        return true
    }

    static func contains(_ needle: [UInt8], in bytes: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> Bool
    {
        var index = start
        while index + needle.count <= end {
            if matches(needle, in: bytes, at: index) { return true }
            index += 1
        }
        return false
    }
}

extension FHIRRequestContext {
    /// Notes, for the request's AuditEvent, the patients whose data `resources` disclose; nothing
    /// without an audit trail (`protectsAuditEvents` is set exactly when there is one).
    func noteReturnedPatients(_ resources: some Sequence<StoredResource>) {
        guard protectsAuditEvents else { return }
        for resource in resources { ReturnedPatients.collect(resource, into: &auditNote.patientsReturned) }
    }

    /// Notes patients by id (`$everything`, a Bulk Data file).
    func noteReturnedPatients(ids: some Sequence<String>) {
        guard protectsAuditEvents else { return }
        auditNote.patientsReturned.formUnion(ids)
    }
}
