import FHIR
@testable import FHIRServer
import FHIRStore
import FHIRTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// Issue 13: a 5xx never carries SQL, database messages, file paths or type names; the
/// server log has the detail under the incident id the client is given.
@Suite struct InternalErrorTests {
    static let backends = TestDatabases.backends

    /// Log lines, kept for the test to read.
    final class CapturedLog: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [String] = []

        var lines: [String] { lock.withLock { stored } }
        func append(_ line: String) { lock.withLock { stored.append(line) } }

        var handler: CapturingLogHandler { CapturingLogHandler(log: self) }
    }

    struct CapturingLogHandler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            log.append("\(event.level): \(event.message)")
        }
    }

    @Test(arguments: backends)
    func aDatabaseFailureAnswersAGeneric500WithAnIncidentId(backend: TestBackend) async throws {
        let log = CapturedLog()
        let store = try await TestDatabases.makeStore(backend)
        let app = Application(
            router: FHIRApplication.buildRouter(store: store), logger: Logger(label: "test") { _ in log.handler })
        do {
            try await app.test(.router) { client in
                #expect(try await client.fhir(.get, "Patient?name=x").status == .ok)
                // A real failure of the database under a search: its index table is gone.
                _ = try await store.database.withConnection { try await $0.query("DROP TABLE idx_string", []) }
                let failed = try await client.fhir(.get, "Patient?name=x")
                #expect(failed.status == .internalServerError)
                #expect(failed.json?["resourceType"] == "OperationOutcome")
                #expect(failed.json?["issue"]?.arrayValue?.first?["code"] == "exception")
                let diagnostics = failed.json?["issue"]?.arrayValue?.first?["diagnostics"]?.stringValue ?? ""
                for leak in [
                    "idx_string", "SELECT", "no such table", "does not exist", "SQLite", "PSQL", "Postgres", "/tmp",
                    "Error", "FHIRStore",
                ] {
                    #expect(!failed.text.contains(leak), "\(leak) in \(failed.text)")
                }
                let incident = try #require(diagnostics.split(separator: " ").last.map(String.init))
                #expect(incident.count == 12 && incident.allSatisfy(\.isHexDigit), "\(diagnostics)")
                // The operator finds the database's own message under that incident.
                let logged = log.lines.filter { $0.contains(incident) }
                #expect(logged.count == 1)
                #expect(logged.first?.contains("idx_string") == true, "\(logged)")
                // Other requests are unaffected.
                #expect(try await client.fhir(.get, "Patient/none").status == .notFound)
            }
            try await store.close()
        } catch {
            try? await store.close()
            throw error
        }
    }

    /// Each kind of error as a client sees it.
    @Test func outcomesByKind() throws {
        let log = CapturedLog()
        let logger = Logger(label: "test") { _ in log.handler }
        let notFound = OperationOutcomeMiddleware.outcome(
            of: FHIRError.notFound("Patient/x is not known"), logger: logger)
        #expect(notFound.status == 404 && notFound.description.contains("Patient/x"))
        let slow = OperationOutcomeMiddleware.outcome(of: SQLStatementTimeout(limit: .seconds(10)), logger: logger)
        #expect(slow.status == 503 && slow.issues.first?.code == "too-costly" && slow.description.contains("10"))
        let tooLarge = OperationOutcomeMiddleware.outcome(
            of: HTTPError(.contentTooLarge, message: "Body too large"), logger: logger)
        #expect(tooLarge.status == 413 && tooLarge.issues.first?.diagnostics == "Body too large")
        let bare = OperationOutcomeMiddleware.outcome(of: HTTPError(.badRequest), logger: logger)
        #expect(bare.status == 400 && bare.issues.first?.diagnostics == "Bad Request")
        #expect(log.lines.isEmpty)
        // A 500 built from an error's text, a 5xx of Hummingbird's, anything else: only an id.
        let wrapped = FHIRError(
            status: 500, code: "exception",
            "The export failed: SQLiteError(no such table: resources) at /var/lib/x.sqlite")
        for error: any Error in [
            wrapped, HTTPError(.internalServerError, message: "/srv/secret"), CocoaError(.fileNoSuchFile),
        ] {
            let outcome = OperationOutcomeMiddleware.outcome(of: error, logger: logger)
            #expect(outcome.status == 500 && outcome.issues.first?.code == "exception")
            for leak in ["SQLite", "/var", "/srv", "Cocoa", "Error", "resources"] {
                #expect(!outcome.description.contains(leak), "\(leak) in \(outcome)")
            }
        }
        #expect(log.lines.count == 3)
        #expect(log.lines.first?.contains("no such table: resources") == true)
        // The database gone or changing primary: 503 transient, the server's address only logged.
        let down = OperationOutcomeMiddleware.outcome(
            of: SQLDatabaseUnavailable(
                outcomeUnknown: true, detail: "The connection was lost", server: "10.1.2.3:5439"),
            logger: logger)
        #expect(down.status == 503 && down.issues.first?.code == "transient")
        #expect(down.description.contains("The connection was lost") && !down.description.contains("10.1.2.3"))
        #expect(log.lines.count == 4 && log.lines.last?.contains("10.1.2.3:5439") == true)
    }
}
