import AsyncHTTPClient
import Foundation
import LabSupport

/// The deployment of docker-compose.yml: the FHIR server, PostgreSQL when asked for, the sensor
/// (detection) and the recorder (the FHIR container's events in `caduceus trace`'s default set,
/// Tracee v0.6's: not every syscall), all on 127.0.0.1.
public struct Stack {
    /// docker-compose's project name: the prefix of the volumes.
    public static let project = "caduceus"
    public static let serverContainer = "caduceus-fhir"
    public static let sensorContainers = ["caduceus-sensor", "caduceus-recorder"]

    public var composeFile: String
    public var fhirPort: Int
    public var postgresPort: Int
    public var usePostgres: Bool
    /// FHIR servers behind HAProxy (with PostgreSQL only); 1 is the single server (Cluster.swift).
    public var replicas: Int
    /// Where the sensor writes alerts.json and the recorder events.json.
    public var resultsDirectory: String
    /// The audit feed's bearer token, shared by the server and the sensor (made by ``up``).
    public var auditTokenFile: String { resultsDirectory + "/audit-feed.token" }
    /// The uid of the image's `fhir` user, who alone needs to read the token (the sensors run as root).
    static let serverUID: uid_t = 1000

    public init(
        composeFile: String = "docker-compose.yml", fhirPort: Int = 9080, postgresPort: Int = 5439,
        usePostgres: Bool = false, resultsDirectory: String = "caduceus-results", replicas: Int = 1
    ) {
        self.composeFile = composeFile
        self.fhirPort = fhirPort
        self.postgresPort = postgresPort
        self.usePostgres = usePostgres
        self.replicas = replicas
        self.resultsDirectory = URL(fileURLWithPath: resultsDirectory).standardizedFileURL.path
    }

    /// The FHIR API of the stack's server.
    public var baseURL: String { "http://127.0.0.1:\(fhirPort)/fhir-server/api/v4" }

    /// The database URL the server is given.
    public var database: String {
        usePostgres
            ? "postgres://caduceus:\(ImageBuilder.postgresPassword)@127.0.0.1:\(postgresPort)/fhir"
            : "/data/fhir.sqlite"
    }

    var environment: [String: String] {
        var variables = [
            "CADUCEUS_FHIR_PORT": String(fhirPort), "CADUCEUS_POSTGRES_PORT": String(postgresPort),
            "CADUCEUS_DATABASE": database, "CADUCEUS_RESULTS": resultsDirectory,
            "CADUCEUS_AUDIT_TOKEN_FILE": auditTokenFile,
        ]
        // The server's seccomp profile beside the compose file, wherever `up` runs from (compose
        // reads a relative path from its working directory); the user's CADUCEUS_FHIR_SECCOMP wins.
        if ProcessInfo.processInfo.environment["CADUCEUS_FHIR_SECCOMP"] == nil {
            variables["CADUCEUS_FHIR_SECCOMP"] = Self.seccompProfile(composeFile: composeFile)
        }
        return variables
    }

    /// The FHIR server's generated seccomp profile (Scripts/fhir-seccomp-profile.sh) beside `composeFile`.
    public static func seccompProfile(composeFile: String) -> String {
        URL(fileURLWithPath: composeFile).standardizedFileURL.deletingLastPathComponent()
            .appendingPathComponent("profiles/caduceus-fhir.seccomp.json").path
    }

    func compose(_ arguments: [String]) throws -> String {
        guard FileManager.default.fileExists(atPath: composeFile) else {
            throw LabError("no \(composeFile): run from the Caduceus checkout or pass --compose-file")
        }
        // Profiles are always named so that `down` also stops PostgreSQL started by `up --postgres`.
        // A cluster's services while its file exists: `down` stops and removes them too.
        let cluster = FileManager.default.fileExists(atPath: clusterFile) ? ["-f", clusterFile] : []
        return try ProcessRunner.check(
            ["docker-compose", "--ansi", "never", "-p", Self.project, "-f", composeFile] + cluster + [
                "--profile", "postgres",
            ] + arguments,
            environment: environment)
    }

    /// Installs and starts the Docker engine if needed, builds the images from `binary`,
    /// starts the services and waits until the server answers and the sensors are attached.
    public func up(binary: String = ImageBuilder.currentExecutable, progress: @escaping (String) -> Void) async throws {
        try DockerEngine.ensureRunning(progress: progress)
        let builder = ImageBuilder(progress: progress)
        try builder.buildServerImage(binary: binary)
        if usePostgres { try builder.buildPostgresImage() }
        guard (1...Self.maximumReplicas).contains(replicas), replicas == 1 || usePostgres else {
            throw LabError("--replicas takes 1 to \(Self.maximumReplicas), and more than 1 needs --postgres")
        }
        if replicas > 1 { try builder.buildHAProxyImage() }
        try FileManager.default.createDirectory(atPath: resultsDirectory, withIntermediateDirectories: true)
        try makeAuditToken()
        if replicas > 1 { try writeClusterFiles() } else { try? FileManager.default.removeItem(atPath: clusterFile) }
        var services = ["fhir", "sensor", "recorder"] + clusterServices
        if usePostgres {
            progress("starting PostgreSQL on 127.0.0.1:\(postgresPort)")
            try compose(["up", "-d", "postgres"])
            try await waitFor("PostgreSQL", seconds: 60) {
                ProcessRunner.run([
                    "docker", "exec", "caduceus-postgres", "/usr/lib/postgresql/15/bin/pg_isready",
                    "-h", "127.0.0.1", "-p", String(postgresPort),
                ]).status == 0
            }
            if replicas > 1 { try await startStandby(progress: progress) }
        } else {
            services.removeAll { $0 == "postgres" }
        }
        progress(
            "starting \(services.joined(separator: ", ")) (FHIR on 127.0.0.1:\(fhirPort), database \(usePostgres ? "PostgreSQL" : "SQLite"))"
        )
        try compose(["up", "-d"] + services)
        if replicas > 1 { try await waitForReplicas() }
        try await waitFor("the FHIR server", seconds: 90) { await Self.answers(self.baseURL + "/metadata") }
        for container in Self.sensorContainers {
            try await waitFor(container, seconds: 90) {
                let (status, logs) = ProcessRunner.run(["docker", "logs", container])
                if status == 0 && logs.contains("Ctrl-C to stop") { return true }
                let state = ProcessRunner.run(["docker", "inspect", "-f", "{{.State.Running}}", container]).output
                if state == "false" { throw LabError("\(container) stopped: \(logs.suffix(1500))") }
                return false
            }
        }
    }

    /// Writes a random audit feed token (32 bytes, hex) unless the file exists; either way it
    /// is left readable by the server's uid only (mode 0400). A folder Docker made in its place
    /// (the compose file started without `caduceus up`) is replaced.
    func makeAuditToken() throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: auditTokenFile, isDirectory: &isDirectory), isDirectory.boolValue {
            guard (try? fm.contentsOfDirectory(atPath: auditTokenFile))?.isEmpty == true else {
                throw LabError("\(auditTokenFile) is a folder, not the audit feed token: remove it")
            }
            try fm.removeItem(atPath: auditTokenFile)
        }
        if !fm.fileExists(atPath: auditTokenFile) {
            var generator = SystemRandomNumberGenerator()
            let token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &generator)) }
                .joined()
            // Created with mode 0400 at once: never readable by others, even for a moment.
            let fd = open(auditTokenFile, O_WRONLY | O_CREAT | O_EXCL, 0o400)
            let bytes = Array((token + "\n").utf8)
            let written = fd < 0 ? -1 : write(fd, bytes, bytes.count)
            if fd >= 0 { close(fd) }
            guard written == bytes.count else {
                throw LabError(
                    "cannot write the audit feed token \(auditTokenFile): \(String(cString: strerror(errno)))")
            }
        }
        guard chmod(auditTokenFile, 0o400) == 0, chown(auditTokenFile, Self.serverUID, Self.serverUID) == 0 else {
            throw LabError(
                "cannot give the audit feed token \(auditTokenFile) to uid \(Self.serverUID): \(String(cString: strerror(errno)))"
            )
        }
    }

    /// Stops and removes the services; `volumes` also removes the data, `images` the images.
    public func down(volumes: Bool = false, images: Bool = false) throws {
        guard DockerEngine.isAnswering else { return }
        try compose(
            ["down", "--remove-orphans", "-t", "20"] + (volumes ? ["-v"] : []) + (images ? ["--rmi", "all"] : []))
        // Without the cluster file (another --results), compose removed the cluster's containers as
        // orphans but knows nothing of the standby's volume.
        if volumes { _ = ProcessRunner.run(["docker", "volume", "rm", Self.project + "_postgres-standby-data"]) }
        try? FileManager.default.removeItem(atPath: clusterFile)
        try? FileManager.default.removeItem(atPath: haproxyConfigFile)
    }

    /// Stops the sensor and the recorder (SIGINT: they write out what they hold), leaving the
    /// server running.
    public func stopSensors() throws {
        try compose(["stop", "-t", "20", "sensor", "recorder"])
    }

    /// `docker-compose ps` of the stack.
    public func status() throws -> String { try compose(["ps"]) }

    func waitFor(_ what: String, seconds: Int, _ ready: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(TimeInterval(seconds))
        while Date() < deadline {
            if try await ready() { return }
            try await Task.sleep(for: .milliseconds(500))
        }
        throw LabError("\(what) was not ready within \(seconds) s")
    }

    /// Whether a GET of `url` answers 200 within two seconds.
    public static func answers(_ url: String) async -> Bool {
        let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(2))
        _ = try? await response?.body.collect(upTo: 16 << 20)
        return response?.status == .ok
    }
}
