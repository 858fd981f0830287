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
        let shownHost = host
        let path = configuration.basePath
        let app = FHIRApplication.buildApplication(
            stores: stores, configuration: configuration, host: host, port: port, logger: logger
        ) { boundPort in
            print("Caduceus FHIR server listening on http://\(shownHost):\(boundPort)\(path)")
            fflush(stdout)
        }
        try await app.runService()
        try await stores.close()
    }
}
