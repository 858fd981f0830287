import FHIR
import FHIRStore
import Foundation
import Logging

/// ``ExfiltrationDetector``'s windows in the PostgreSQL database that every replica writes to
/// (issue 18): a client whose reads a load balancer spreads over several servers is counted
/// once, and alerted once a window, not once per replica nor never.
///
/// Tables `caduceus_exfiltration_reads` (each client's latest read of each patient) and
/// `caduceus_exfiltration_alerts` (each client's last alert). ``AuditTrail``'s writer feeds
/// each batch of records here before it writes them, so a request waits for nothing more
/// than before; an alert is written with the batch that raised it. Times are the database's
/// clock, which every replica shares. Per client and batch: one insert of its patients, one
/// count, and, over the limit, one conditional upsert that only one replica's batch can win
/// within a window. Rows older than a window are deleted once a window by each replica.
actor SharedExfiltrationWindows {
    let detector: ExfiltrationDetector
    let database: any SQLDatabase
    let logger: Logger
    private var lastSweep = ContinuousClock.now - .seconds(86_400)
    /// Alerts this replica raised.
    private(set) var alerts = 0
    /// Batches whose reads could not be counted (the database refused; logged).
    private(set) var failures = 0

    init(detector: ExfiltrationDetector, database: any SQLDatabase, logger: Logger) {
        self.detector = detector
        self.database = database
        self.logger = logger
    }

    /// Counts the patients `records` returned, per client; the alerts to record, `nil` when the
    /// database could not count them (to be given again with the batch's next attempt).
    func observe(_ records: [AuditRecord]) async -> [AuditRecord]? {
        var order: [String] = []
        var byClient: [String: (record: AuditRecord, shown: String, patients: Set<String>)] = [:]
        for record in records where !record.patientsReturned.isEmpty && record.type == .rest {
            let (key, shown) = ExfiltrationDetector.client(of: record)
            if byClient[key] == nil {
                order.append(key)
                byClient[key] = (record, shown, [])
            }
            let tenant = record.tenant.map { "\($0)/" } ?? ""  // ids are unique within a tenant only
            // More than the limit in one batch alerts already: the rest need not be stored.
            for patient in record.patientsReturned where byClient[key]!.patients.count <= detector.patientLimit {
                byClient[key]!.patients.insert(tenant + patient)
            }
            byClient[key]!.record = record  // the latest names the client as the alert shows it
        }
        var raised: [AuditRecord] = []
        let window = Int64(detector.window * 1000)
        do {
            try await sweep(window: window)
            for key in order {
                let (record, shown, patients) = byClient[key]!
                guard let count = try await count(patients, of: key, window: window), count > detector.patientLimit,
                    try await claimAlert(for: key, window: window)
                else { continue }
                alerts += 1
                raised.append(detector.makeAlert(for: record, who: shown, patients: count))
            }
        } catch {
            failures += 1
            logger.error("Could not count reads for the exfiltration detector: \(error)")
            return nil
        }
        return raised
    }

    /// Stores `patients` as read by `client` now; how many distinct patients it read within the window.
    private func count(_ patients: Set<String>, of client: String, window: Int64) async throws -> Int? {
        // Ids are FHIR ids (letters, digits, '-', '.') after an optional tenant: no newline.
        let list = patients.sorted().joined(separator: "\n")
        let rows = try await database.withConnection { executor in
            try await executor.query(
                "INSERT INTO caduceus_exfiltration_reads (client, patient, read_at)"
                    + " SELECT ?, patient, \(SharedExportJobs.now) FROM unnest(string_to_array(?, E'\\n')) AS patient"
                    + " ON CONFLICT (client, patient) DO UPDATE SET read_at = EXCLUDED.read_at",
                [.text(client), .text(list)])
            return try await executor.query(
                "SELECT COUNT(*) FROM caduceus_exfiltration_reads WHERE client = ? AND read_at >= \(SharedExportJobs.now) - ?",
                [.text(client), .integer(window)])
        }
        return rows.first?.first?.int.map(Int.init)
    }

    /// Whether this batch raises `client`'s alert: true for exactly one of the replicas that
    /// ask within a window.
    private func claimAlert(for client: String, window: Int64) async throws -> Bool {
        let rows = try await database.withConnection { executor in
            try await executor.query(
                "INSERT INTO caduceus_exfiltration_alerts (client, alerted_at) VALUES (?, \(SharedExportJobs.now))"
                    + " ON CONFLICT (client) DO UPDATE SET alerted_at = EXCLUDED.alerted_at"
                    + " WHERE caduceus_exfiltration_alerts.alerted_at <= EXCLUDED.alerted_at - ? RETURNING client",
                [.text(client), .integer(window)])
        }
        return !rows.isEmpty
    }

    /// Deletes reads and alerts older than a window, once a window.
    private func sweep(window: Int64) async throws {
        guard ContinuousClock.now - lastSweep >= .milliseconds(window) else { return }
        lastSweep = ContinuousClock.now
        try await database.withConnection { executor in
            try await executor.query(
                "DELETE FROM caduceus_exfiltration_reads WHERE read_at < \(SharedExportJobs.now) - ?",
                [.integer(window)])
            try await executor.query(
                "DELETE FROM caduceus_exfiltration_alerts WHERE alerted_at < \(SharedExportJobs.now) - ?",
                [.integer(window)])
        }
    }
}
