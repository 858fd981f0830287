import Detection
import Foundation
import KernelTestSupport
import LabSupport
import Testing

extension LiveDetectionSuites {
    /// Falco's stable rule file (falcosecurity/rules, `../shared/falco/falco_rules.yaml`) loaded
    /// alone, as `caduceus detect --no-builtin-rules --rules falco_rules.yaml` loads it, against the
    /// real kernel: each rule whose behaviour a container here can produce fires in the container
    /// that produced it. The others are listed with the reason, and the reason is checked.
    @Suite(.serialized, .enabled(if: SensorTestEnvironment.shouldRun))
    struct LiveFalcoRuleTests {
        static let stableFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../shared/falco/falco_rules.yaml").standardizedFileURL.path

        /// One rule's reproduction: a testbox container's options and its `sh -c` command.
        struct Reproduction {
            let rule: String
            var docker: [String] = []
            let command: String
        }

        /// `$LISTEN_PORT`: a loopback listener's port. `outbound`: an address of this host outside
        /// loopback and the private ranges, with `nc -l` listening on `sshPort`.
        static func reproductions(outbound: String) -> [Reproduction] {
            [
                // Opened through `..` by a process whose parent is not a shell (xargs).
                Reproduction(
                    rule: "Directory traversal monitored file read",
                    command: "echo /tmp/../../../etc/passwd | /bin/xargs /bin/cat >/dev/null"),
                // A web server's process (comm nginx: busybox's sh through a symlink) reading /etc/shadow after 5 s.
                Reproduction(
                    rule: "Read sensitive file trusted after startup",
                    command:
                        "ln -s /bin/busybox /tmp/nginx && exec -a sh /tmp/nginx -c 'sleep 6; read x < /etc/shadow; true'"
                ),
                Reproduction(rule: "Read sensitive file untrusted", command: "/bin/cat /etc/shadow >/dev/null"),
                Reproduction(
                    rule: "Run shell untrusted",
                    command: "ln -s /bin/busybox /tmp/nginx && exec -a sh /tmp/nginx -c 'sh -c true; true'"),
                // www-data's `login` (busybox sleep through a symlink), alive long enough for its user to be looked up.
                Reproduction(
                    rule: "System user interactive", docker: ["--user", "33:33"],
                    command: "ln -s /bin/busybox /tmp/login && exec -a sleep /tmp/login 2"),
                // With -t the container's first process has the terminal.
                Reproduction(rule: "Terminal shell in container", docker: ["-t"], command: "sleep 1"),
                Reproduction(
                    rule: "Netcat Remote Code Execution in Container",
                    command: "nc 127.0.0.1 $LISTEN_PORT -e /bin/sh -c 'exit 0'"),
                Reproduction(rule: "Search Private Keys or Passwords", command: "/bin/find /root -name id_rsa"),
                Reproduction(rule: "Clear Log Activities", command: ": > /var/log/messages"),
                Reproduction(rule: "Remove Bulk Data from Disk", command: "echo x > /tmp/data && /bin/shred /tmp/data"),
                Reproduction(
                    rule: "Create Symlink Over Sensitive Files", command: "ln -s /etc/shadow /tmp/shadow-link"),
                Reproduction(rule: "Create Hardlink Over Sensitive Files", command: "ln /etc/shadow /tmp/shadow-link"),
                Reproduction(
                    rule: "Packet socket created in container", command: "/usr/local/bin/behave packet-socket"),
                Reproduction(
                    rule: "Redirect STDOUT/STDIN to Network Connection in Container",
                    command: "/usr/local/bin/behave dup-stdio 127.0.0.1 $LISTEN_PORT"),
                // finit_module of a file that is no module: the kernel refuses it (ENOEXEC); the attempt is the behaviour.
                Reproduction(
                    rule: "Linux Kernel Module Injection Detected", docker: ["--cap-add", "SYS_MODULE"],
                    command: "/usr/local/bin/behave finit-module /etc/hostname"),
                // The rule asks only for a write to a file named release_agent with CAP_SYS_ADMIN.
                Reproduction(
                    rule: "Detect release_agent File Container Escapes", docker: ["--cap-add", "SYS_ADMIN"],
                    command: "echo x > /tmp/release_agent"),
                Reproduction(rule: "PTRACE attached to process", command: "/usr/local/bin/behave ptrace-attach"),
                Reproduction(rule: "PTRACE anti-debug attempt", command: "/usr/local/bin/behave ptrace-traceme"),
                Reproduction(rule: "Find AWS Credentials", command: "/bin/grep -rs aws_secret_access_key /root; true"),
                // Docker mounts /dev/shm noexec: the shell started on a /dev/shm script is the behaviour the rule names.
                Reproduction(rule: "Execution from /dev/shm", command: "/bin/sh -c /dev/shm/payload; true"),
                Reproduction(
                    rule: "Drop and execute new binary in container",
                    command: "mkdir -p /opt/x && cp /bin/busybox /opt/x/true && /opt/x/true"),
                // A process named ssh (behave through a symlink) connecting to this host's own non-private address.
                Reproduction(
                    rule: "Disallowed SSH Connection Non Standard Port",
                    command:
                        "sleep 1; ln -s /usr/local/bin/behave /tmp/ssh && /tmp/ssh tcp-connect-local \(outbound) \(sshPort)"
                ),
                Reproduction(rule: "Fileless execution via memfd_create", command: "/usr/local/bin/behave memfd-exec"),
            ]
        }

        /// A port of Falco's `ssh_non_standard_ports` list.
        static let sshPort = 4444

        /// The stable rules no container here can make fire, and why.
        static let cannotFireHere: [String: String] = [
            "Contact K8S API Server From Container":
                "no Kubernetes: the rule needs a connection to the API server's service name (k8s_api_server), which nothing here resolves",
            "Debugfs Launched in Privileged Container":
                "this Docker cannot start --privileged containers (runc: unable to apply caps: operation not permitted)",
        ]

        /// An IPv4 address of this host outside 127/8 and RFC 1918, which Falco's `outbound` macro
        /// requires of a destination.
        static func outboundLookingAddress() -> String? {
            var list: UnsafeMutablePointer<ifaddrs>?
            guard getifaddrs(&list) == 0 else { return nil }
            defer { freeifaddrs(list) }
            var entry = list
            while let current = entry {
                entry = current.pointee.ifa_next
                guard let address = current.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) else {
                    continue
                }
                let v4 = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    UInt32(bigEndian: $0.pointee.sin_addr.s_addr)
                }
                let (a, b) = (v4 >> 24, (v4 >> 16) & 0xff)
                if a == 127 || a == 10 || (a == 172 && (16...31).contains(b)) || (a == 192 && b == 168) { continue }
                return "\(a).\(b).\((v4 >> 8) & 0xff).\(v4 & 0xff)"
            }
            return nil
        }

        @Test func everyStableRuleFiresOrIsListedWithWhyItCannot() throws {
            try SensorTestEnvironment.require()
            let ruleSet = try RuleFiles.load(includeBuiltin: false, paths: [Self.stableFile])
            let outbound = try #require(
                Self.outboundLookingAddress(), "the SSH rule needs a host address outside loopback and RFC 1918")
            let reproductions = Self.reproductions(outbound: outbound)
            let names = Set(ruleSet.rules.filter(\.enabled).map(\.name))
            #expect(names.count == 25, "the stable file's rules: \(names.sorted())")
            #expect(
                Set(reproductions.map(\.rule)).union(Self.cannotFireHere.keys) == names,
                "every stable rule is reproduced or listed")
            #expect(Set(reproductions.map(\.rule)).isDisjoint(with: Self.cannotFireHere.keys))

            // The reasons hold: no Kubernetes service name resolves, and a privileged container cannot start.
            var resolved: UnsafeMutablePointer<addrinfo>?
            #expect(getaddrinfo("kubernetes.default.svc.cluster.local", nil, nil, &resolved) != 0)
            if let resolved { freeaddrinfo(resolved) }
            #expect(throws: (any Error).self, "move Debugfs to the reproductions once this works") {
                try SensorTestEnvironment.run([
                    "docker", "run", "--rm", "--privileged", SensorTestEnvironment.image, "/bin/true",
                ])
            }

            let listener = try LoopbackListener()
            let live = try LiveDetection(ruleSet: ruleSet)
            var containers: [String] = []
            defer { LiveDetection.removeContainers(containers) }
            // The SSH case's server: busybox nc on every address of the host, for one connection.
            containers.append(
                try SensorTestEnvironment.run(
                    [
                        "docker", "run", "-d", "--network", "host", SensorTestEnvironment.image, "/bin/sh", "-c",
                        "timeout 30 nc -l -p \(Self.sshPort)",
                    ]))
            var fired: [(Reproduction, String)] = []
            for reproduction in reproductions {
                let id = try LiveDetection.runContainer(
                    reproduction.command, dockerArguments: reproduction.docker,
                    environment: ["LISTEN_PORT": String(listener.port)])
                fired.append((reproduction, id))
                containers.append(id)
            }
            let (alerts, lost) = try live.stop()
            withExtendedLifetime(listener) {}
            #expect(lost == 0, "the kernel lost \(lost) events")
            for (reproduction, id) in fired {
                let here = alerts.filter { $0.container.id == id }
                #expect(
                    here.contains { $0.rule == reproduction.rule },
                    "\(reproduction.rule) fires for `\(reproduction.command)` (alerts there: \(Set(here.map(\.rule)).sorted()); \(live.eventCount(container: id)) events seen there)"
                )
            }
        }
    }
}
