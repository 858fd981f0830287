import ArgumentParser
import FHIR
import FHIRServer
import FHIRStore
import Foundation
import Hummingbird
import Logging

/// `caduceus serve`: the FHIR R4 REST API.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the FHIR R4 server.")

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0 picks a free one).")
    var port = 9080

    @Option(help: "Path the FHIR API is served under.")
    var basePath = "/fhir-server/api/v4"

    @Option(
        help:
            "Where resources are stored: a SQLite file path (sqlite:PATH also works) or postgres://user:password@host:port/database; several host:port separated by commas name a primary and its standbys (writes go to the primary, and to a standby once it is promoted)."
    )
    var database = "./data/caduceus.sqlite"

    @Option(
        name: .customLong("tenant"),
        help: ArgumentHelp(
            "Declare a tenant (letters, digits and _, up to 32), chosen by the X-FHIR-TENANT-ID header; repeatable. Requests naming an undeclared tenant are refused (400).",
            valueName: "name"))
    var tenants: [String] = []

    @Option(help: "A file of tenants to declare besides --tenant: one a line, # starts a comment.")
    var tenantsFile: String?

    @Option(
        help:
            "Scheme and host for absolute URLs in responses (default: the request's Host header when it is this machine or an --allowed-host, else http://HOST:PORT of --host and --port)."
    )
    var publicURL: String?

    @Option(
        name: .customLong("allowed-host"),
        help: ArgumentHelp(
            "Without --public-url: a host name (no port) whose Host header may decide absolute URLs, besides localhost and 127.0.0.1; repeatable.",
            valueName: "host"))
    var allowedHosts: [String] = []

    @Option(
        help: ArgumentHelp(
            "The largest request body, and the largest resource a JSON Patch may make (413 / 422 beyond). Default: \(FHIRServerConfiguration.defaultMaximumBodySize >> 20) MiB.",
            valueName: "bytes"))
    var maxBodySize = FHIRServerConfiguration.defaultMaximumBodySize

    @Option(help: ArgumentHelp("The most entries in a transaction or batch Bundle (413 beyond).", valueName: "count"))
    var maxBundleEntries = FHIRServerConfiguration.defaultMaximumBundleEntries

    @Option(
        help: ArgumentHelp(
            "The most bytes a transaction or batch answers with: a transaction past it is rolled back (413), a batch answers the entries past it 413 without running them. Default: \(FHIRServerConfiguration.defaultMaximumResponseSize >> 20) MiB.",
            valueName: "bytes"))
    var maxResponseSize = FHIRServerConfiguration.defaultMaximumResponseSize

    @Option(
        help: ArgumentHelp(
            "How long a transaction or batch may run: a transaction past it is rolled back, a batch answers its remaining entries 503 without running them.",
            valueName: "seconds"))
    var maxBundleTime = 120.0

    @Option(
        help: ArgumentHelp(
            "After SIGTERM or SIGINT, how long requests under way may finish before they are cancelled; \(Int(ServerShutdown.cancellationGrace.components.seconds)) s after that the process exits whatever still runs (acknowledged writes are committed; audit events queued are written first).",
            valueName: "seconds"))
    var shutdownGrace = 20.0

    @Option(
        help: ArgumentHelp(
            "The most searches running at once, server-wide; more wait their turn up to --statement-time-limit (10 s when 0), then get 503. Default: twice the reader connections (SQLite 4, PostgreSQL 16).",
            valueName: "count"))
    var maxConcurrentSearches: Int?

    @Option(help: ArgumentHelp("The most operations in one JSON Patch (400 beyond).", valueName: "count"))
    var maxPatchOperations = JSONPatch.Limits().operations

    @Option(help: ArgumentHelp("Close a connection idle this long.", valueName: "seconds"))
    var idleTimeout = Double(ConnectionLimits.defaultIdleTimeout.components.seconds)

    @Option(
        help: ArgumentHelp(
            "Close a connection whose request line and headers have not all arrived this long after their first byte (slowloris).",
            valueName: "seconds"))
    var headerTimeout = Double(ConnectionLimits.defaultHeaderTimeout.components.seconds)

    @Option(
        help: ArgumentHelp(
            "Close a connection whose request body has kept the server waiting this long, plus a second per --min-body-rate bytes received (slow bodies).",
            valueName: "seconds"))
    var bodyTimeout = Double(ConnectionLimits.defaultBodyTimeout.components.seconds)

    @Option(
        help: ArgumentHelp(
            "The average rate a request body must keep up once --body-timeout is spent.", valueName: "bytes/s"))
    var minBodyRate = ConnectionLimits.defaultMinimumBodyRate

    @Option(
        help: ArgumentHelp(
            "The most connections open at once from one address (0: no limit); more are closed at once. Raise it behind a proxy.",
            valueName: "count"))
    var maxConnectionsPerAddress = ConnectionLimits.defaultMaximumConnectionsPerAddress

    @Option(
        help: ArgumentHelp(
            "The most connections open at once; more wait to be accepted. Default: half the file handle limit, at most 4096 (here \(ConnectionLimits.defaultMaximumConnections)).",
            valueName: "count"))
    var maxConnections: Int?

    @Option(help: ArgumentHelp("Delete a Bulk Data export's files this long after the job ends.", valueName: "seconds"))
    var exportRetention = Double(ExportJobs.defaultRetention.components.seconds)

    @Option(
        help: ArgumentHelp(
            "The most Bulk Data export jobs kept at once, running or holding files (429 beyond).", valueName: "count"))
    var maxExportJobs = ExportJobs.defaultMaximumJobs

    @Option(
        help: ArgumentHelp(
            "What creates, updates, PATCHes and transaction/batch entries answer with when the request has no 'Prefer: return=': representation (the resource, the default), minimal (an empty body, as IBM FHIR Server) or OperationOutcome.",
            valueName: "preference"))
    var defaultReturn = ReturnPreference.standard.rawValue

    @Flag(help: "Accept writes that break their StructureDefinition (still refusing non-resources).")
    var noStructureValidation = false

    @Option(
        help:
            "Require SMART bearer tokens signed with HS256 by the secret in this file (at least 32 bytes; surrounding whitespace, such as a final newline, is trimmed)."
    )
    var authHs256SecretFile: String?

    @Option(help: "Require SMART bearer tokens signed with RS256, verified with this PEM public key (or certificate).")
    var authRs256PublicKey: String?

    @Option(
        help:
            "The aud a bearer token must name (default: --public-url followed by --base-path when --public-url is given; else any)."
    )
    var authAudience: String?

    @Option(help: "The iss a bearer token must carry (default: any).")
    var authIssuer: String?

    @Option(
        help:
            "The longest a bearer token may be valid, in seconds (exp - iat, and exp from now; default \(Int(AccessTokenPolicy.defaultMaximumLifetime)))."
    )
    var authMaxTokenLifetime: Double?

    @Option(help: "Record an AuditEvent for every interaction: on, off, or auto (on when tokens are required).")
    var audit = "auto"

    @Option(
        help:
            "Accept security-alert AuditEvents (caduceus detect --audit-url) from clients presenting the token in this file as 'Authorization: Bearer' (at least 16 bytes; needs audit on)."
    )
    var auditFeedTokenFile: String?

    @Option(
        help: ArgumentHelp(
            "With the audit trail: record a security alert (CAD-API-001) when one client receives the data of more than this many distinct patients within --exfiltration-window; 0 turns it off. Default: \(ExfiltrationDetector.defaultPatientLimit).",
            valueName: "patients"))
    var exfiltrationPatients: Int?

    @Option(
        help: ArgumentHelp(
            "The sliding window of --exfiltration-patients. Default: \(Int(ExfiltrationDetector.defaultWindow)).",
            valueName: "seconds"))
    var exfiltrationWindow: Double?

    @Option(
        help: ArgumentHelp(
            "Stop a database statement (a search) that runs longer than this and answer 503; 0 for no limit.",
            valueName: "seconds"))
    var statementTimeLimit = Double(SQLStatementTimeLimit.standard.components.seconds)

    @Option(
        name: .customLong("search-limit"),
        help: ArgumentHelp(
            "Set a search limit (repeatable); over one a search gets 400. Limits and defaults: \(SearchLimits.standard.summary).",
            valueName: "name=value"))
    var searchLimits: [String] = []

    @Option(
        help: ArgumentHelp(
            "With the audit trail: the most AuditEvents queued for writing; past it, requests wait for the writer instead of the queue growing.",
            valueName: "events"))
    var auditQueueLimit = 10_000

    @Option(
        help: ArgumentHelp(
            "With the audit trail: before-response holds each response until its AuditEvent is committed (a read whose event cannot be stored within 10 s is answered 503); write-behind answers at once and writes a few milliseconds later (a crash loses those).",
            valueName: "mode"))
    var auditCommit = AuditCommit.beforeResponse.rawValue

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    /// Settings are checked before anything opens (a store left open by an error is reported
    /// as a leak): the `--audit` value, the bulk-read detector's settings, and the audit feed's
    /// token (a short or unreadable token, or a feed without the audit trail, is an error).
    func validate() throws {
        guard ["on", "off", "auto"].contains(audit) else {
            throw ValidationError("--audit takes on, off or auto, not '\(audit)'")
        }
        guard ReturnPreference(rawValue: defaultReturn) != nil else {
            throw ValidationError(
                "--default-return takes representation, minimal or OperationOutcome, not '\(defaultReturn)'")
        }
        _ = try searchBudget()
        _ = try declaredTenants()
        guard maxBodySize >= 1024 else { throw ValidationError("--max-body-size must be at least 1024 bytes") }
        if let maxConcurrentSearches, maxConcurrentSearches < 1 {
            throw ValidationError("--max-concurrent-searches must be 1 or more")
        }
        // A duration past a year overflowed the conversion to nanoseconds and stopped the server.
        let year = 365.0 * 86_400
        guard maxBundleTime > 0, maxBundleTime <= year else {
            throw ValidationError("--max-bundle-time takes more than 0 seconds, up to a year (\(Int(year)))")
        }
        guard shutdownGrace >= 0, shutdownGrace <= 3600 else {
            throw ValidationError("--shutdown-grace takes 0 to 3600 seconds")
        }
        guard maxBundleEntries >= 1 else { throw ValidationError("--max-bundle-entries must be 1 or more") }
        guard maxResponseSize >= 1 << 20 else {
            throw ValidationError("--max-response-size must be at least 1 MiB (1048576 bytes)")
        }
        guard maxPatchOperations >= 1 else { throw ValidationError("--max-patch-operations must be 1 or more") }
        for (name, seconds) in [
            ("--idle-timeout", idleTimeout), ("--header-timeout", headerTimeout), ("--body-timeout", bodyTimeout),
            ("--export-retention", exportRetention),
        ] {
            guard seconds > 0, seconds <= year else {
                throw ValidationError("\(name) takes more than 0 seconds, up to a year (\(Int(year)))")
            }
        }
        if let maxConnections, maxConnections < 1 { throw ValidationError("--max-connections must be 1 or more") }
        guard minBodyRate >= 1 else { throw ValidationError("--min-body-rate must be 1 or more") }
        guard maxConnectionsPerAddress >= 0 else {
            throw ValidationError("--max-connections-per-address must be 0 (no limit) or more")
        }
        guard maxExportJobs >= 1 else { throw ValidationError("--max-export-jobs must be 1 or more") }
        guard auditQueueLimit >= 64 else { throw ValidationError("--audit-queue-limit must be 64 or more") }
        guard AuditCommit(rawValue: auditCommit) != nil else {
            throw ValidationError(
                "--audit-commit must be one of \(AuditCommit.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        _ = try exfiltrationDetector()
        _ = try tokenPolicy()
        guard let auditFeedTokenFile else { return }
        guard audit == "on" || (audit == "auto" && (authHs256SecretFile != nil || authRs256PublicKey != nil)) else {
            throw ValidationError("--audit-feed-token-file needs the audit trail: --audit on")
        }
        do {
            _ = try AuditFeedToken(contentsOfFile: auditFeedTokenFile)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// The `--search-limit` settings and the `--statement-time-limit` (nil for none), each checked.
    func searchBudget() throws -> (limits: SearchLimits, statementTimeLimit: Duration?) {
        var limits = SearchLimits.standard
        do {
            try limits.apply(searchLimits)
        } catch {
            throw ValidationError("--search-limit: \(error)")
        }
        let maximum = Double(SQLStatementTimeLimit.maximum.components.seconds)
        guard statementTimeLimit >= 0, statementTimeLimit <= maximum else {
            throw ValidationError(
                "--statement-time-limit takes 0 (no limit) to \(Int(maximum)) seconds, not \(statementTimeLimit)")
        }
        return (limits, statementTimeLimit == 0 ? nil : .milliseconds(max(1, Int64(statementTimeLimit * 1000))))
    }

    /// What bearer tokens must say beyond their signature: the `--auth-` options.
    func tokenPolicy() throws -> AccessTokenPolicy {
        let lifetime = authMaxTokenLifetime ?? AccessTokenPolicy.defaultMaximumLifetime
        guard lifetime > 0, lifetime.isFinite else {
            throw ValidationError("--auth-max-token-lifetime must be a positive number of seconds")
        }
        let audience =
            authAudience
            ?? publicURL.map { url in
                (url.hasSuffix("/") ? String(url.dropLast()) : url)
                    + FHIRServerConfiguration(basePath: basePath).basePath
            }
        return AccessTokenPolicy(audience: audience, issuer: authIssuer, maximumLifetime: lifetime)
    }

    /// The tenants of `--tenant` and `--tenants-file`, normalized.
    func declaredTenants() throws -> [String] {
        do {
            return try tenants.map(TenantStores.normalize) + (tenantsFile.map(TenantStores.tenants(inFile:)) ?? [])
        } catch let error as FHIRError {
            throw ValidationError(
                "--tenant / --tenants-file: " + error.issues.map(\.diagnostics).joined(separator: "; "))
        } catch {
            throw ValidationError("--tenants-file: \(error)")
        }
    }

    /// The bulk-read detector the `--exfiltration-` options ask for, `nil` when off; checked
    /// before the database is opened.
    func exfiltrationDetector() throws -> ExfiltrationDetector? {
        let audits = audit == "on" || (audit == "auto" && (authHs256SecretFile != nil || authRs256PublicKey != nil))
        guard audits else {
            if exfiltrationPatients != nil || exfiltrationWindow != nil {
                throw ValidationError(
                    "--exfiltration-patients and --exfiltration-window watch the audit trail: add --audit on")
            }
            return nil
        }
        let patients = exfiltrationPatients ?? ExfiltrationDetector.defaultPatientLimit
        guard patients >= 0 else {
            throw ValidationError("--exfiltration-patients must be 0 (off) or more, not \(patients)")
        }
        guard patients > 0 else { return nil }
        do {
            return try ExfiltrationDetector(
                patients: patients, window: exfiltrationWindow ?? ExfiltrationDetector.defaultWindow)
        } catch {
            throw ValidationError("--exfiltration-patients / --exfiltration-window: \(error)")
        }
    }

    func run() async throws {
        let exfiltration = try exfiltrationDetector()
        var logger = Logger(label: "caduceus")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        var security = FHIRSecurity()
        // Keys before the database: a bad key file must not leave a store open.
        if authHs256SecretFile != nil || authRs256PublicKey != nil {
            let policy = try tokenPolicy()
            do {
                security.verifier = try await AccessTokenVerifier.fromFiles(
                    hs256SecretFile: authHs256SecretFile, rs256PublicKeyFile: authRs256PublicKey, policy: policy)
            } catch {
                throw ValidationError("Cannot load the access token keys: \(error)")
            }
            if let warning = policy.openAudienceWarning { logger.warning("\(warning)") }
        }
        let stores: TenantStores
        do {
            stores = try await TenantStores.forDatabase(url: database, tenants: try declaredTenants())
        } catch {
            // A PostgreSQL URL is shown without its password.
            let shown =
                PostgresURL(database)?.redacted
                ?? (database.hasPrefix("postgres") ? "postgres://(not shown)" : database)
            throw ValidationError("Cannot open the database '\(shown)': \(String(reflecting: error))")
        }
        // Absolute URLs for a Host that is neither this machine nor allowed: where the server listens.
        let fallbackHost = ["0.0.0.0", "::", ""].contains(host) ? "localhost" : host.contains(":") ? "[\(host)]" : host
        var validator = ResourceValidator(checksStructure: !noStructureValidation)
        validator.patchLimits.operations = maxPatchOperations
        var configuration = FHIRServerConfiguration(
            basePath: basePath, publicURL: publicURL, allowedHosts: allowedHosts,
            fallbackOrigin: "http://\(fallbackHost)\(port == 0 ? "" : ":\(port)")",
            maximumBodySize: maxBodySize, validator: validator, exportRetention: .seconds(exportRetention),
            maximumExportJobs: maxExportJobs,
            connections: ConnectionLimits(
                idleTimeout: .seconds(idleTimeout), headerTimeout: .seconds(headerTimeout),
                maximumConnections: maxConnections ?? ConnectionLimits.defaultMaximumConnections,
                bodyTimeout: .seconds(bodyTimeout), minimumBodyRate: minBodyRate,
                maximumConnectionsPerAddress: maxConnectionsPerAddress))
        (configuration.searchLimits, configuration.statementTimeLimit) = try searchBudget()
        configuration.defaultReturn = ReturnPreference(rawValue: defaultReturn) ?? .standard  // checked by validate()
        configuration.maximumBundleEntries = maxBundleEntries
        configuration.maximumResponseSize = maxResponseSize
        configuration.maximumBundleDuration = .milliseconds(Int64(maxBundleTime * 1000))
        // PostgreSQL's pool has 8 connections, SQLite 2 readers (PostgresDatabase, SQLiteDatabase).
        let readers = database.hasPrefix("postgres://") || database.hasPrefix("postgresql://") ? 8 : 2
        configuration.searchGate = SearchGate(
            limit: maxConcurrentSearches ?? 2 * readers,
            maximumWait: configuration.statementTimeLimit ?? SQLStatementTimeLimit.standard)
        let commit = AuditCommit(rawValue: auditCommit) ?? .beforeResponse  // checked by validate()
        switch audit {
        case "on":
            security.audit = AuditTrail(stores: stores, logger: logger, maximumPending: auditQueueLimit, commit: commit)
        case "off": break
        case "auto":
            if security.verifier != nil {
                security.audit = AuditTrail(
                    stores: stores, logger: logger, maximumPending: auditQueueLimit, commit: commit)
            }
        default: break  // refused by validate()
        }
        // Checked by validate() before the database opened.
        security.auditFeed = try auditFeedTokenFile.map(AuditFeedToken.init(contentsOfFile:))
        if let exfiltration, let trail = security.audit { await trail.watch(exfiltration) }
        let shownHost = host
        let path = configuration.basePath
        let app = FHIRApplication.buildApplication(
            stores: stores, configuration: configuration, security: security, host: host, port: port, logger: logger
        ) { boundPort in
            print("Caduceus FHIR server listening on http://\(shownHost):\(boundPort)\(path)")
            fflush(nil)  // every C stream: Swift 6 refuses the global `stdout` (shared mutable state)
        }
        let audit = security.audit
        try await ServerShutdown(grace: .milliseconds(Int64(shutdownGrace * 1000)), logger: logger).run(app) {
            await audit?.close()
        }
        // Every queued AuditEvent is written before the stores close.
        await security.audit?.close()
        try await stores.close()
    }
}
