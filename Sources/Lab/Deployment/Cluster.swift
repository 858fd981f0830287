import Foundation
import LabSupport

/// `caduceus up --postgres --replicas N`: N FHIR servers behind HAProxy on one PostgreSQL
/// primary with a synchronous streaming standby, the sensor and the recorder as ever.
///
/// The compose file stays as it is; the cluster's services are a second compose file written
/// into the results folder (``clusterFile``), which every compose call of the stack adds while
/// it exists, so that `down` also stops and removes them. Ports, all on 127.0.0.1: HAProxy on
/// `fhirPort`, replica i on `fhirPort + i`; the primary on `postgresPort`, the standby on
/// `postgresPort + 1`.
extension Stack {
    /// The most replicas `up` starts: each is a server of a few dozen threads on two cores.
    public static let maximumReplicas = 9
    /// The standby's name on the primary (`synchronous_standby_names`, `pg_stat_replication`).
    public static let standbyName = "caduceus_standby"
    static let standbyData = "/var/lib/postgresql/standby/data"

    /// The second compose file, with the cluster's services (exists only while a cluster runs).
    public var clusterFile: String { resultsDirectory + "/cluster.yml" }
    var haproxyConfigFile: String { resultsDirectory + "/haproxy.cfg" }

    /// The port of replica `index` (1-based).
    public func replicaPort(_ index: Int) -> Int { fhirPort + index }
    public var standbyPort: Int { postgresPort + 1 }

    /// The database URL of a replica: the primary and the standby, so that a server moves to
    /// the standby once it has been promoted (the store writes to whichever is not in recovery).
    public var clusterDatabase: String {
        "postgres://caduceus:\(ImageBuilder.postgresPassword)@127.0.0.1:\(postgresPort),127.0.0.1:\(standbyPort)/fhir"
    }

    /// The `serve` command of a replica on `port`, as docker-compose.yml's `fhir` runs it.
    func serveCommand(port: Int) -> [String] {
        [
            "serve", "--host", "127.0.0.1", "--port", String(port), "--database", clusterDatabase,
            "--audit", "on", "--audit-feed-token-file", "/run/caduceus/audit-feed.token",
        ]
    }

    static func yamlList(_ items: [String]) -> String {
        "["
            + items.map {
                "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                    + "\""
            }
            .joined(separator: ", ") + "]"
    }

    /// Writes ``clusterFile`` and HAProxy's configuration (`replicas` is 2 or more).
    func writeClusterFiles() throws {
        var services = """
            # Written by `caduceus up --replicas \(replicas)`; removed by `caduceus down`.
            version: "2.4"
            services:
              postgres:
                # Commits wait for the standby: an acknowledged write is on both.
                command: \(Self.yamlList(["-p", String(postgresPort), "-c", "jit=off", "-c", "synchronous_standby_names=\(Self.standbyName)"]))
              postgres-standby:
                image: \(ImageBuilder.postgresImage)
                container_name: caduceus-postgres-standby
                profiles: ["postgres"]
                network_mode: host
                command: \(Self.yamlList(["-p", String(standbyPort), "-c", "jit=off", "-D", Self.standbyData, "-c", "cluster_name=\(Self.standbyName)"]))
                volumes:
                  - postgres-standby-data:/var/lib/postgresql/standby
                shm_size: 128m
                stop_signal: SIGINT
              haproxy:
                image: \(ImageBuilder.haproxyImage)
                container_name: caduceus-haproxy
                network_mode: host
                volumes:
                  - \(haproxyConfigFile):/etc/haproxy/haproxy.cfg:ro
                restart: on-failure
              fhir:
                command: \(Self.yamlList(serveCommand(port: replicaPort(1))))

            """
        for index in 2...replicas {
            services += """
                  fhir-\(index):
                    image: \(ImageBuilder.serverImage)
                    container_name: caduceus-fhir-\(index)
                    network_mode: host
                    command: \(Self.yamlList(serveCommand(port: replicaPort(index))))
                    volumes:
                      - ${CADUCEUS_AUDIT_TOKEN_FILE:-./caduceus-results/audit-feed.token}:/run/caduceus/audit-feed.token:ro
                    pids_limit: 512
                    security_opt: ["seccomp:${CADUCEUS_FHIR_SECCOMP:-./profiles/caduceus-fhir.seccomp.json}"]
                    restart: on-failure
                    stop_grace_period: 20s

                """
        }
        services += "volumes:\n  postgres-standby-data:\n"
        try services.write(toFile: clusterFile, atomically: true, encoding: .utf8)
        // A replica that stops answering /healthz leaves the rotation within two seconds; a
        // request that finds one down is sent again to another (redispatch). Every request is
        // logged with its timings (`docker logs caduceus-haproxy`).
        var haproxy = """
            global
              maxconn 4096
              log stdout format raw local0 info
            defaults
              mode http
              log global
              option httplog
              timeout connect 2s
              timeout client 60s
              timeout server 60s
              retries 2
              option redispatch
            frontend fhir
              bind 127.0.0.1:\(fhirPort)
              default_backend replicas
            backend replicas
              balance roundrobin
              option httpchk
              http-check send meth GET uri /healthz
              default-server inter 1s fall 2 rise 1

            """
        for index in 1...replicas { haproxy += "  server fhir-\(index) 127.0.0.1:\(replicaPort(index)) check\n" }
        try haproxy.write(toFile: haproxyConfigFile, atomically: true, encoding: .utf8)
    }

    /// With the primary up: copies it into the standby's volume (pg_basebackup, once: a volume
    /// holding a standby is kept), then starts the standby and waits until it streams.
    func startStandby(progress: (String) -> Void) async throws {
        let copied =
            (try? compose([
                "run", "--rm", "--no-deps", "--entrypoint", ImageBuilder.postgresHome + "/bin/pg_controldata",
                "postgres-standby", Self.standbyData,
            ])) != nil
        if !copied {
            progress("copying the primary into the standby (pg_basebackup)")
            try compose([
                "run", "--rm", "--no-deps", "-e", "PGPASSWORD=\(ImageBuilder.postgresPassword)",
                "--entrypoint", ImageBuilder.postgresHome + "/bin/pg_basebackup", "postgres-standby",
                "-h", "127.0.0.1", "-p", String(postgresPort), "-U", "caduceus", "-D", Self.standbyData, "-R", "-X",
                "stream", "-c", "fast",
            ])
        }
        progress("starting the PostgreSQL standby on 127.0.0.1:\(standbyPort)")
        try compose(["up", "-d", "postgres-standby"])
        try await waitFor("the PostgreSQL standby", seconds: 60) {
            ProcessRunner.run([
                "docker", "exec", "caduceus-postgres-standby", ImageBuilder.postgresHome + "/bin/pg_isready",
                "-h", "127.0.0.1", "-p", String(standbyPort),
            ]).status == 0
        }
    }

    /// The cluster's services besides the compose file's.
    var clusterServices: [String] {
        replicas > 1 ? (2...replicas).map { "fhir-\($0)" } + ["haproxy"] : []
    }

    /// Waits until every replica answers its probe.
    func waitForReplicas() async throws {
        for index in 1...replicas {
            try await waitFor("FHIR replica \(index)", seconds: 90) {
                await Self.answers("http://127.0.0.1:\(replicaPort(index))/healthz")
            }
        }
    }
}
