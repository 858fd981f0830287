import Foundation
import LabSupport

/// Builds the deployment's images without a registry: a root file system assembled in a
/// temporary folder, packed with tar and loaded with `docker import` (the equivalent of a
/// `FROM scratch` Dockerfile whose only step is `COPY rootfs /`).
///
/// - `caduceus-fhir:latest`: the caduceus binary (the FHIR server, and the sensor when run as
///   root with the sensor's capabilities), its resource bundles (the BPF object, the built-in
///   rules) and the shared libraries `ldd` lists, at the paths the loader looks in. No shell.
/// - `caduceus-postgres:latest`: the host's PostgreSQL 15 server, a data directory initialised
///   at build time (so the image needs no shell or entrypoint script), the role `caduceus` with
///   the password `caduceus` and the database `fhir`; it listens on 127.0.0.1 only.
///
/// Each image carries a label with a hash of its inputs; an image whose label matches is kept.
public struct ImageBuilder {
    public static let serverImage = "caduceus-fhir:latest"
    public static let postgresImage = "caduceus-postgres:latest"
    public static let postgresPassword = "caduceus"
    public static let haproxyImage = "caduceus-haproxy:latest"
    /// Bumped when the images' layout changes, so the input hash changes with it.
    static let layoutVersion = "caduceus-images-3"
    static let inputsLabel = "caduceus.image.inputs"
    static let postgresHome = "/usr/lib/postgresql/15"

    public var progress: (String) -> Void

    public init(progress: @escaping (String) -> Void = { _ in }) {
        self.progress = progress
    }

    /// The executable running now, resolved through /proc (a symlink or a relative argv[0]).
    public static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    // MARK: - The server image

    /// Builds `caduceus-fhir:latest` from `binary` unless an image of the same inputs exists;
    /// returns whether it built one.
    @discardableResult
    public func buildServerImage(binary: String = ImageBuilder.currentExecutable) throws -> Bool {
        let binaryURL = URL(fileURLWithPath: binary).resolvingSymlinksInPath()
        let folder = binaryURL.deletingLastPathComponent()
        let bundles = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".resources") }.sorted()
        let hash = try Self.hash(of: [binaryURL.path] + bundles.map { folder.appendingPathComponent($0).path })
        if try isCurrent(Self.serverImage, hash: hash) { return false }
        progress("building \(Self.serverImage) from \(binaryURL.path)")
        return try withRootFS { root in
            for directory in ["etc", "proc", "sys", "dev", "usr/local/bin", "tmp", "data"] {
                try FileManager.default.createDirectory(
                    atPath: root + "/" + directory, withIntermediateDirectories: true)
            }
            chmod(root + "/tmp", 0o1777)
            try FileManager.default.copyItem(atPath: binaryURL.path, toPath: root + "/usr/local/bin/caduceus")
            // Bundle.module looks beside the executable for PACKAGE_TARGET.resources.
            for bundle in bundles {
                try FileManager.default.copyItem(
                    atPath: folder.appendingPathComponent(bundle).path, toPath: root + "/usr/local/bin/" + bundle)
            }
            try copyLibraries(of: [binaryURL.path], into: root)
            try write(
                root + "/etc/passwd",
                "root:x:0:0:root:/:/nonexistent\nfhir:x:1000:1000:FHIR server:/data:/nonexistent\n")
            try write(root + "/etc/group", "root:x:0:\nfhir:x:1000:\n")
            // glibc's defaults without this file would try DNS before /etc/hosts.
            try write(root + "/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n")
            // Everything root's except /data, which the server (uid 1000) writes its database into.
            try pack(
                root, owner: "0", excluding: "./data", append: ("./data", "1000"), image: Self.serverImage,
                changes: [
                    #"ENTRYPOINT ["/usr/local/bin/caduceus"]"#,
                    #"CMD ["serve", "--host", "127.0.0.1", "--port", "9080", "--database", "/data/fhir.sqlite"]"#,
                    "USER fhir", "WORKDIR /data", "EXPOSE 9080", "LABEL \(Self.inputsLabel)=\(hash)",
                ])
            return true
        }
    }

    // MARK: - The PostgreSQL image

    /// Builds `caduceus-postgres:latest` from the host's PostgreSQL 15 (installed with apt when
    /// missing) unless an image of the same inputs exists; returns whether it built one.
    @discardableResult
    public func buildPostgresImage() throws -> Bool {
        let server = Self.postgresHome + "/bin/postgres"
        if !FileManager.default.isExecutableFile(atPath: server) {
            try DockerEngine.installPackages(["postgresql-15"], progress: progress)
        }
        let hash = try Self.hash(of: [server, Self.postgresHome + "/bin/initdb"])
        if try isCurrent(Self.postgresImage, hash: hash) { return false }
        progress("building \(Self.postgresImage) from \(Self.postgresHome)")
        let uid = try ProcessRunner.check(["id", "-u", "postgres"]),
            gid = try ProcessRunner.check(["id", "-g", "postgres"])
        return try withRootFS { root in
            let fm = FileManager.default
            for directory in [
                "etc", "proc", "sys", "dev", "tmp", "usr/lib/postgresql/15/bin", "usr/share/postgresql", "usr/share",
                "var/lib/postgresql",
            ] {
                try fm.createDirectory(atPath: root + "/" + directory, withIntermediateDirectories: true)
            }
            chmod(root + "/tmp", 0o1777)
            // pg_basebackup and pg_controldata make and find the cluster's standby (Cluster.swift).
            let tools = ["postgres", "pg_isready", "pg_basebackup", "pg_controldata"].map {
                Self.postgresHome + "/bin/" + $0
            }
            for tool in tools { try fm.copyItem(atPath: tool, toPath: root + tool) }
            // The procedural language and the server's own modules; extensions needing more are left out.
            try fm.createDirectory(atPath: root + Self.postgresHome + "/lib", withIntermediateDirectories: true)
            // llvmjit.so (JIT compilation) would bring libLLVM's 100 MB for queries this small.
            let modules = try fm.contentsOfDirectory(atPath: Self.postgresHome + "/lib").filter {
                $0.hasSuffix(".so") && !$0.hasPrefix("llvmjit")
            }
            for module in modules {
                try fm.copyItem(
                    atPath: Self.postgresHome + "/lib/" + module, toPath: root + Self.postgresHome + "/lib/" + module)
            }
            try fm.copyItem(atPath: "/usr/share/postgresql/15", toPath: root + "/usr/share/postgresql/15")
            try fm.copyItem(atPath: "/usr/share/zoneinfo", toPath: root + "/usr/share/zoneinfo")
            try copyLibraries(
                of: tools + modules.map { Self.postgresHome + "/lib/" + $0 }, into: root, skipMissing: true)
            try write(
                root + "/etc/passwd",
                "root:x:0:0:root:/:/nonexistent\npostgres:x:\(uid):\(gid):PostgreSQL:/var/lib/postgresql:/nonexistent\n"
            )
            try write(root + "/etc/group", "root:x:0:\npostgres:x:\(gid):\n")
            try write(root + "/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n")
            // The standby's volume mount point, owned by postgres like the data (a new volume takes it).
            try fm.createDirectory(atPath: root + "/var/lib/postgresql/standby", withIntermediateDirectories: true)
            chmod(root + "/var/lib/postgresql/standby", 0o700)
            try initialiseDatabase(at: root + "/var/lib/postgresql/data")
            try pack(
                root, owner: "0", excluding: "./var/lib/postgresql", append: ("./var/lib/postgresql", nil),
                image: Self.postgresImage,
                changes: [
                    #"ENTRYPOINT ["/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/postgresql/data", "-c", "unix_socket_directories=/tmp", "-c", "listen_addresses=127.0.0.1"]"#,
                    #"CMD ["-p", "5439", "-c", "jit=off"]"#,
                    "USER postgres", "WORKDIR /var/lib/postgresql", "LABEL \(Self.inputsLabel)=\(hash)",
                ])
            return true
        }
    }

    // MARK: - The HAProxy image

    /// Builds `caduceus-haproxy:latest` from the host's HAProxy (Debian's, installed with apt
    /// when missing) unless an image of the same inputs exists: the binary and its libraries,
    /// run as nobody, its configuration mounted at /etc/haproxy/haproxy.cfg.
    @discardableResult
    public func buildHAProxyImage() throws -> Bool {
        let binary = "/usr/sbin/haproxy"
        if !FileManager.default.isExecutableFile(atPath: binary) {
            try DockerEngine.installPackages(["haproxy"], progress: progress)
        }
        let hash = try Self.hash(of: [binary])
        if try isCurrent(Self.haproxyImage, hash: hash) { return false }
        progress("building \(Self.haproxyImage) from \(binary)")
        return try withRootFS { root in
            for directory in ["etc/haproxy", "proc", "sys", "dev", "tmp", "usr/sbin"] {
                try FileManager.default.createDirectory(
                    atPath: root + "/" + directory, withIntermediateDirectories: true)
            }
            chmod(root + "/tmp", 0o1777)
            try FileManager.default.copyItem(atPath: binary, toPath: root + binary)
            try copyLibraries(of: [binary], into: root)
            try write(
                root + "/etc/passwd",
                "root:x:0:0:root:/:/nonexistent\nnobody:x:65534:65534:nobody:/nonexistent:/nonexistent\n")
            try write(root + "/etc/group", "root:x:0:\nnogroup:x:65534:\n")
            try write(root + "/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n")
            try pack(
                root, owner: "0", excluding: "./tmp", append: ("./tmp", "0"), image: Self.haproxyImage,
                changes: [
                    #"ENTRYPOINT ["/usr/sbin/haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"]"#,
                    "USER nobody", "LABEL \(Self.inputsLabel)=\(hash)",
                ])
            return true
        }
    }

    /// initdb as the host's postgres user, then the database `fhir`, in single-user mode.
    func initialiseDatabase(at data: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: data, withIntermediateDirectories: true)
        try ProcessRunner.check([
            "chown", "-R", "postgres:postgres", URL(fileURLWithPath: data).deletingLastPathComponent().path,
        ])
        let passwordFile = URL(fileURLWithPath: data).deletingLastPathComponent().path + "/.pwfile"
        try write(passwordFile, Self.postgresPassword + "\n")
        try ProcessRunner.check(["chown", "postgres", passwordFile])
        defer { try? fm.removeItem(atPath: passwordFile) }
        try ProcessRunner.check([
            "runuser", "-u", "postgres", "--", Self.postgresHome + "/bin/initdb", "-D", data, "-U", "caduceus",
            "--pwfile=" + passwordFile,
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C",
        ])
        try ProcessRunner.check([
            "sh", "-c",
            "echo 'CREATE DATABASE fhir;' | runuser -u postgres -- \(Self.postgresHome)/bin/postgres --single -D '\(data)' postgres",
        ])
    }

    // MARK: - Helpers

    /// Runs `body` with a fresh root file system folder (world-traversable: initdb runs as
    /// postgres), removed afterwards.
    func withRootFS<T>(_ body: (String) throws -> T) throws -> T {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("caduceus-image-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: work + "/rootfs", withIntermediateDirectories: true)
        chmod(work, 0o755)
        chmod(work + "/rootfs", 0o755)
        defer { try? FileManager.default.removeItem(atPath: work) }
        return try body(work + "/rootfs")
    }

    /// Copies every shared library (and the loader) that `ldd` lists for `binaries` into `root`
    /// at the same path, following symlinks such as libbpf.so.1 to the file they name.
    func copyLibraries(of binaries: [String], into root: String, skipMissing: Bool = false) throws {
        var libraries = Set<String>()
        for binary in binaries {
            let (_, output) = ProcessRunner.run(["ldd", binary])
            for line in output.split(separator: "\n") {
                if line.contains("not found") {
                    if skipMissing { continue }
                    throw LabError(
                        "\(binary) needs a library this machine lacks: \(line.trimmingCharacters(in: .whitespaces))")
                }
                if let path = line.split(whereSeparator: \.isWhitespace).first(where: { $0.hasPrefix("/") }) {
                    libraries.insert(String(path))
                }
            }
        }
        for library in libraries.sorted() {
            let target = root + library
            if FileManager.default.fileExists(atPath: target) { continue }
            try FileManager.default.createDirectory(
                atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                atPath: URL(fileURLWithPath: library).resolvingSymlinksInPath().path, toPath: target)
        }
    }

    /// Packs `root` (owned by `owner`, but for `excluding`, appended after with its own
    /// owner, or with the numeric owners it has on disk when nil) and imports it as `image`,
    /// dropping the image the tag named before.
    func pack(
        _ root: String, owner: String, excluding: String, append: (path: String, owner: String?), image: String,
        changes: [String]
    ) throws {
        let tarball = (root as NSString).deletingLastPathComponent + "/rootfs.tar"
        try ProcessRunner.check([
            "tar", "--numeric-owner", "--owner=\(owner)", "--group=\(owner)", "--exclude=\(excluding)", "-C", root,
            "-cf", tarball, ".",
        ])
        let ownership = append.owner.map { ["--owner=\($0)", "--group=\($0)"] } ?? []
        try ProcessRunner.check(["tar", "--numeric-owner"] + ownership + ["-C", root, "-rf", tarball, append.path])
        let old = ProcessRunner.run(["docker", "image", "inspect", "-f", "{{.Id}}", image])
        try ProcessRunner.check(["docker", "import"] + changes.flatMap { ["--change", $0] } + [tarball, image])
        let new = try ProcessRunner.check(["docker", "image", "inspect", "-f", "{{.Id}}", image])
        // The replaced image goes unless a container still uses it.
        if old.status == 0 && old.output != new { _ = ProcessRunner.run(["docker", "rmi", old.output]) }
    }

    /// Whether `image` exists with the inputs label `hash`.
    func isCurrent(_ image: String, hash: String) throws -> Bool {
        let (status, label) = ProcessRunner.run([
            "docker", "image", "inspect", "-f", "{{index .Config.Labels \"\(Self.inputsLabel)\"}}", image,
        ])
        return status == 0 && label == hash
    }

    /// A hash of the files at `paths` (folders: every file in them) and the layout version.
    static func hash(of paths: [String]) throws -> String {
        let listing = try ProcessRunner.check(
            ["sh", "-c", "find \"$@\" -type f -print0 | sort -z | xargs -0 sha256sum", "sh"] + paths)
        return try ProcessRunner.check([
            "sh", "-c", "printf '%s' \"$1\" | sha256sum | cut -c1-64", "sh", layoutVersion + listing,
        ])
    }

    func write(_ path: String, _ text: String) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }
}
