import ArgumentParser
import Foundation
import Lab

/// Options that name the deployment: shared by `up`, `down` and the demo.
struct StackOptions: ParsableArguments {
    @Option(help: "The compose file.")
    var composeFile = "docker-compose.yml"

    @Option(help: "Port of the FHIR server on 127.0.0.1.")
    var fhirPort = 9080

    @Option(help: "Port of PostgreSQL on 127.0.0.1 (with --postgres).")
    var postgresPort = 5439

    @Option(help: "Folder the sensor writes alerts.json and the recorder events.json into.")
    var results = "caduceus-results"

    func stack(postgres: Bool = false, replicas: Int = 1) -> Stack {
        Stack(
            composeFile: composeFile, fhirPort: fhirPort, postgresPort: postgresPort, usePostgres: postgres,
            resultsDirectory: results,
            replicas: replicas)
    }
}

/// `caduceus up`: the deployment of docker-compose.yml, images built from this binary.
struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract:
            "Start the FHIR server, the sensor and the recorder in containers (Docker installed and started if missing).",
        discussion: """
            Needs root. Builds caduceus-fhir:latest from this binary (and caduceus-postgres:latest from the host's
            PostgreSQL 15 with --postgres) without a registry, then runs docker-compose up. The server answers on
            http://127.0.0.1:9080/fhir-server/api/v4; alerts go to caduceus-results/alerts.json and the FHIR
            container's syscalls to caduceus-results/events.json. The server keeps an AuditEvent per interaction and
            the sensor feeds it its alerts (token: caduceus-results/audit-feed.token, made if missing). `caduceus down`
            stops it all.
            With --postgres --replicas N (2 to 9): N servers on ports 9081... behind HAProxy on 9080 (round robin,
            GET /healthz checks), and a synchronous streaming standby of PostgreSQL on 5440.
            """)

    @OptionGroup var stackOptions: StackOptions

    @Flag(help: "Store resources in PostgreSQL (its own container) instead of SQLite in the server's volume.")
    var postgres = false

    @Option(help: "FHIR servers behind HAProxy (2 to 9, with --postgres); 1: one server, no HAProxy.")
    var replicas = 1

    @Option(help: "Build the server image from this caduceus binary instead of the running one.")
    var binary: String?

    func run() async throws {
        guard (1...Stack.maximumReplicas).contains(replicas) else {
            throw ValidationError("--replicas takes 1 to \(Stack.maximumReplicas)")
        }
        guard replicas == 1 || postgres else {
            throw ValidationError("--replicas \(replicas) needs --postgres: the servers share one database")
        }
        let stack = stackOptions.stack(postgres: postgres, replicas: replicas)
        try await stack.up(binary: binary ?? ImageBuilder.currentExecutable) {
            writeStandardError("caduceus up: " + $0)
        }
        print("FHIR server: \(stack.baseURL) (\(postgres ? "PostgreSQL" : "SQLite"))")
        if replicas > 1 {
            print(
                "replicas:    \(replicas) behind HAProxy, on 127.0.0.1:\(stack.replicaPort(1))-\(stack.replicaPort(replicas))"
            )
            print("standby:     PostgreSQL on 127.0.0.1:\(stack.standbyPort), synchronous (\(Stack.standbyName))")
        }
        print("alerts:      \(stack.resultsDirectory)/alerts.json (docker logs -f caduceus-sensor)")
        print("events:      \(stack.resultsDirectory)/events.json")
        print(
            "audit:       \(stack.baseURL)/AuditEvent (record accesses, and the alerts fed with \(stack.auditTokenFile))"
        )
    }
}
