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

    @Option(help: "Where resources are stored: a SQLite file path (sqlite:PATH also works) or postgres://user:password@host:port/database.")
    var database = "./data/caduceus.sqlite"

    @Option(help: "Scheme and host for absolute URLs in responses (default: the request's Host header).")
    var publicURL: String?

    @Flag(help: "Accept writes that break their StructureDefinition (still refusing non-resources).")
    var noStructureValidation = false

    @Option(help: "Require SMART bearer tokens signed with HS256 by the secret in this file (at least 32 bytes).")
    var authHs256SecretFile: String?

    @Option(help: "Require SMART bearer tokens signed with RS256, verified with this PEM public key (or certificate).")
    var authRs256PublicKey: String?

    @Option(help: "Record an AuditEvent for every interaction: on, off, or auto (on when tokens are required).")
    var audit = "auto"

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func run() async throws {
        var logger = Logger(label: "caduceus")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let stores: TenantStores
        do {
            stores = try await TenantStores.forDatabase(url: database)
        } catch {
            throw ValidationError("Cannot open the database '\(database)': \(String(reflecting: error))")
        }
        let configuration = FHIRServerConfiguration(
            basePath: basePath, publicURL: publicURL, validator: ResourceValidator(checksStructure: !noStructureValidation))
        var security = FHIRSecurity()
        if authHs256SecretFile != nil || authRs256PublicKey != nil {
            do {
                security.verifier = try await AccessTokenVerifier.fromFiles(
                    hs256SecretFile: authHs256SecretFile, rs256PublicKeyFile: authRs256PublicKey)
            } catch {
                throw ValidationError("Cannot load the access token keys: \(error)")
            }
        }
        switch audit {
        case "on": security.audit = AuditTrail(stores: stores, logger: logger)
        case "off": break
        case "auto": if security.verifier != nil { security.audit = AuditTrail(stores: stores, logger: logger) }
        default: throw ValidationError("--audit takes on, off or auto, not '\(audit)'")
        }
        let shownHost = host
        let path = configuration.basePath
        let app = FHIRApplication.buildApplication(
            stores: stores, configuration: configuration, security: security, host: host, port: port, logger: logger
        ) { boundPort in
            print("Caduceus FHIR server listening on http://\(shownHost):\(boundPort)\(path)")
            fflush(stdout)
        }
        try await app.runService()
        // Every queued AuditEvent is written before the stores close.
        await security.audit?.close()
        try await stores.close()
    }
}
