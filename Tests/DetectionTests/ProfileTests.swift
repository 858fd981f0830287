import Detection
import Foundation
import Sensor
import Testing

/// Learned container profiles: the YAML, the learner's path collapsing, drift and seccomp.
struct ProfileTests {
    static let container = ContainerInfo(
        id: String(repeating: "ab", count: 32), name: "fhir", image: "caduceus-fhir:latest")

    static func event(
        _ name: String, pid: UInt32 = 4242, container: ContainerInfo? = container, _ args: [TraceArgument] = []
    ) -> TraceEvent {
        TraceEvent(
            hostProcessId: pid, processName: "caduceus", container: container, eventId: "0", eventName: name, args: args
        )
    }
    static func exec(_ path: String) -> TraceEvent {
        event("sched_process_exec", [TraceArgument(name: "pathname", type: "const char*", value: .string(path))])
    }
    static func open(_ path: String, flags: Int64) -> TraceEvent {
        event(
            "security_file_open",
            [
                TraceArgument(name: "pathname", type: "const char*", value: .string(path)),
                TraceArgument(name: "flags", type: "int", value: .int(flags)),
            ])
    }
    static func inet(_ address: String, _ port: Int) -> ArgumentValue {
        .fields([
            .init(key: "sa_family", value: "AF_INET"), .init(key: "sin_addr", value: address),
            .init(key: "sin_port", value: String(port)),
        ])
    }
    static func connect(_ address: String, _ port: Int) -> TraceEvent {
        event(
            "security_socket_connect",
            [TraceArgument(name: "remote_addr", type: "struct sockaddr*", value: inet(address, port))])
    }
    static func listen(_ port: Int) -> TraceEvent {
        event(
            "security_socket_listen",
            [TraceArgument(name: "local_addr", type: "struct sockaddr*", value: inet("0.0.0.0", port))])
    }
    static func capable(_ cap: Int64) -> TraceEvent {
        event("cap_capable", [TraceArgument(name: "cap", type: "int", value: .int(cap))])
    }

    static func learned() -> ContainerProfile {
        let learner = ProfileLearner(containerName: "fhir")
        for event in [
            exec("/usr/local/bin/caduceus"), open("/etc/passwd", flags: 0), open("/etc/hosts", flags: 0),
            open("/usr/lib/x86_64-linux-gnu/libc.so.6", flags: 0o2000000),
            open("/usr/lib/swift/linux/libFoundation.so", flags: 0),
            open("/proc/17/stat", flags: 0), open("/proc/self/maps", flags: 0),
            open("/data/fhir.sqlite", flags: 2), open("/data/fhir.sqlite-wal", flags: 0o102),
            open("/data/sub/x", flags: 1),
            open("/tmp/a/b", flags: 0o1101), connect("10.0.0.5", 5432), listen(8080), capable(12),
            event("futex"), event("epoll_wait"), event("read"),
            // Another container: ignored.
            event(
                "ptrace", container: ContainerInfo(id: String(repeating: "cd", count: 32), name: "other", image: "x")),
        ] {
            learner.observe(event)
        }
        return learner.profile(duration: 12.5)
    }

    /// `profile record --image`: every container of the image (replicas), none of another image;
    /// a tag-less name means `:latest`.
    @Test func theLearnerTakesEveryContainerOfAnImage() {
        let replica = ContainerInfo(
            id: String(repeating: "cd", count: 32), name: "fhir-2", image: "caduceus-fhir:latest")
        let other = ContainerInfo(id: String(repeating: "ef", count: 32), name: "db", image: "caduceus-postgres:latest")
        let tagged = ContainerInfo(id: String(repeating: "12", count: 32), name: "old", image: "caduceus-fhir:v1")
        let learner = ProfileLearner(imageName: "caduceus-fhir")
        for event in [
            Self.exec("/usr/local/bin/caduceus"), Self.event("futex"), Self.event("mremap", container: replica),
            Self.event("ptrace", container: other), Self.event("keyctl", container: tagged),
            Self.event("bpf", container: nil),
        ] {
            learner.observe(event)
        }
        let profile = learner.profile()
        #expect(profile.image == "caduceus-fhir:latest" && profile.events == 3)
        #expect(profile.syscalls == ["futex", "mremap"] && profile.executables == ["/usr/local/bin/caduceus"])
        // A registry's port is not a tag.
        let registry = ProfileLearner(imageName: "registry:5000/team/app")
        registry.observe(
            Self.event(
                "read",
                container: ContainerInfo(
                    id: String(repeating: "34", count: 32), name: "a", image: "registry:5000/team/app:latest")))
        #expect(registry.events == 1)
    }

    @Test func theLearnerCollapsesPathsAndKeepsEtcExact() {
        let profile = Self.learned()
        #expect(profile.image == "caduceus-fhir:latest")
        #expect(profile.events == 17)
        #expect(profile.executables == ["/usr/local/bin/caduceus"])
        #expect(
            profile.readPaths == [
                "/etc/hosts", "/etc/passwd", "/proc/", "/usr/lib/swift/linux/", "/usr/lib/x86_64-linux-gnu/",
            ])
        #expect(profile.writePaths == ["/data/", "/tmp/a/"])
        #expect(profile.connectEndpoints == ["10.0.0.5:5432"])
        #expect(profile.listenPorts == [8080])
        #expect(profile.syscalls == ["epoll_wait", "futex", "read"])
        #expect(profile.capabilities == ["CAP_NET_ADMIN"])
        #expect(ProfileLearner.collapse(["/a/b/c", "/a/d", "/etc/x/y"]) == ["/a/", "/etc/x/y"])
    }

    @Test func theYAMLRoundTripsAndReadsLikeAProfile() throws {
        let profile = Self.learned()
        let text = try profile.yaml()
        #expect(text.contains("image: caduceus-fhir:latest"))
        #expect(text.contains("listen: [8080]"))
        #expect(text.contains("- /usr/local/bin/caduceus"))
        #expect(text.contains("syscalls: [epoll_wait, futex, read]"))
        let back = try ContainerProfile(yaml: text)
        #expect(back == profile)
        // Hand-edited: a short profile with missing lists.
        let edited = try ContainerProfile(yaml: "image: web\nexecutables: [/bin/web]\nnetwork:\n  listen: [80, 443]\n")
        #expect(edited.executables == ["/bin/web"] && edited.listenPorts == [80, 443] && edited.syscalls.isEmpty)
        #expect(throws: ProfileError.self) { try ContainerProfile(yaml: "image: web\nexecutable: [/bin/web]\n") }
        #expect(throws: ProfileError.self) { try ContainerProfile(yaml: "image: web\nnetwork: {listen: [http]}\n") }
    }

    @Test func driftFlagsExactlyTheMissingEntriesOncePerContainer() {
        let profile = Self.learned()
        let drift = ProfileDriftDetector(profile: profile, state: SystemState())
        var alerts: [Alert] = []
        let raise: (Alert) -> Void = { alerts.append($0) }
        // Everything in the profile: no alert.
        for event in [
            Self.exec("/usr/local/bin/caduceus"), Self.open("/data/new.db", flags: 2),
            Self.open("/etc/shadow", flags: 0),
            Self.connect("10.0.0.5", 5432), Self.listen(8080), Self.capable(12), Self.event("futex"),
            Self.open("/tmp/a/c/d", flags: 1),
        ] {
            drift.check(event, raise: raise)
        }
        #expect(alerts.isEmpty, "\(alerts.map(\.output))")
        let deviations = [
            Self.exec("/opt/lab/busybox"), Self.open("/etc/passwd", flags: 1),
            Self.open("/usr/lib/evil.so", flags: 0o101),
            Self.connect("203.0.113.9", 4444), Self.listen(31337), Self.capable(21), Self.event("ptrace"),
        ]
        for event in deviations + deviations { drift.check(event, raise: raise) }
        // The runtime setting up a process (docker exec): not the container's own doing.
        var runc = Self.event("keyctl")
        runc.processName = "runc:[2:INIT]"
        drift.check(runc, raise: raise)
        // Another image: not profiled.
        drift.check(
            Self.event(
                "ptrace",
                container: ContainerInfo(id: String(repeating: "ef", count: 32), name: "db", image: "postgres")),
            raise: raise)
        #expect(
            alerts.map(\.ruleId) == [
                "PROFILE-EXEC", "PROFILE-WRITE", "PROFILE-WRITE", "PROFILE-CONNECT", "PROFILE-LISTEN",
                "PROFILE-CAPABILITY", "PROFILE-SYSCALL",
            ])
        #expect(alerts[0].output.hasPrefix("exec of /opt/lab/busybox not in profile executables"))
        #expect(alerts[0].priority == "error" && alerts[3].priority == "error" && alerts[6].priority == "warning")
        #expect(alerts[1].output.contains("/etc/passwd") && alerts[2].output.contains("/usr/lib/evil.so"))
        #expect(alerts[3].output.contains("203.0.113.9:4444") && alerts[4].output.contains("31337"))
        #expect(alerts[5].output.contains("CAP_SYS_ADMIN") && alerts[6].output.contains("ptrace"))
        #expect(alerts.allSatisfy { $0.container.name == "fhir" && $0.process.pid == 4242 })
        // By container name: a container of the same image under another name is not checked.
        let named = ProfileDriftDetector(profile: profile, containerName: "other", state: SystemState())
        var none: [Alert] = []
        named.check(Self.exec("/opt/lab/busybox")) { none.append($0) }
        #expect(none.isEmpty)
    }

    @Test func theSeccompProfileAllowsTheSyscallsSeenAndTheBaseline() throws {
        let data = try Self.learned().seccompJSON()
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["defaultAction"] as? String == "SCMP_ACT_ERRNO")
        #expect(object["defaultErrnoRet"] as? Int == 1)
        #expect(object["architectures"] as? [String] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        let rules = try #require(object["syscalls"] as? [[String: Any]])
        #expect(rules.count == 1 && rules[0]["action"] as? String == "SCMP_ACT_ALLOW")
        let names = try #require(rules[0]["names"] as? [String])
        #expect(names == names.sorted() && Set(names).count == names.count)
        #expect(Set(names).isSuperset(of: ["epoll_wait", "futex", "read", "execve", "exit_group", "rt_sigreturn"]))
        #expect(!names.contains("ptrace"))
    }

    /// Enforced kinds alert every time (each offending process is killed); a new round (one per
    /// lab scenario) alerts afresh from its start time, events read late counting in their own.
    @Test func enforcedKindsAlertEveryTimeAndRoundsStartAfresh() {
        let profile = Self.learned()
        let drift = ProfileDriftDetector(profile: profile, state: SystemState(), everyTime: ["PROFILE-EXEC"])
        var alerts: [Alert] = []
        func at(_ time: UInt64, _ event: TraceEvent) -> TraceEvent {
            var event = event
            event.timestamp = time
            return event
        }
        for time: UInt64 in [10, 20] {
            drift.check(at(time, Self.exec("/opt/lab/busybox"))) { alerts.append($0) }
            drift.check(at(time, Self.event("ptrace"))) { alerts.append($0) }
        }
        #expect(alerts.map(\.ruleId) == ["PROFILE-EXEC", "PROFILE-SYSCALL", "PROFILE-EXEC"])
        alerts = []
        drift.startRound(at: 100)
        drift.check(at(50, Self.event("ptrace"))) { alerts.append($0) }  // an earlier round's, read late
        drift.check(at(100, Self.event("ptrace"))) { alerts.append($0) }
        drift.check(at(101, Self.event("ptrace"))) { alerts.append($0) }
        #expect(alerts.map(\.timestamp) == [100])
    }

    @Test func profilesMergeIntoTheirUnion() throws {
        let a = ContainerProfile(
            image: "web", recordedAt: "t0", duration: 10, events: 5, executables: ["/bin/web"],
            writePaths: ["/data/a/", "/tmp/"],
            listenPorts: [80], connectEndpoints: ["127.0.0.1:5432"], syscalls: ["read"], capabilities: ["CAP_CHOWN"])
        let b = ContainerProfile(
            image: "web", recordedAt: "t1", duration: 2.5, events: 7, executables: ["/bin/web", "/bin/helper"],
            writePaths: ["/data/"],
            listenPorts: [443], syscalls: ["read", "mremap"])
        let merged = try a.merged(with: [b])
        #expect(merged.recordedAt == "t0" && merged.duration == 12.5 && merged.events == 12)
        #expect(merged.executables == ["/bin/helper", "/bin/web"] && merged.writePaths == ["/data/", "/tmp/"])
        #expect(merged.listenPorts == [80, 443] && merged.connectEndpoints == ["127.0.0.1:5432"])
        #expect(merged.syscalls == ["mremap", "read"] && merged.capabilities == ["CAP_CHOWN"])
        #expect(throws: ProfileError.self) { try a.merged(with: [ContainerProfile(image: "db")]) }
    }

    /// A `docker exec` shell can work under the generated seccomp profile; what only an attack
    /// needs stays refused, and drift still reports the shell's syscalls.
    @Test func theSeccompProfileLetsAShellInAndKeepsTheKernelSurfaceOut() throws {
        let profile = Self.learned()
        let allowed = Set(profile.seccompAllowed)
        #expect(allowed.isSuperset(of: ["wait4", "mkdir", "symlink", "unlink", "rmdir", "umask", "mremap", "execve"]))
        for refused in [
            "ptrace", "memfd_create", "unshare", "setns", "mount", "bpf", "keyctl", "init_module", "perf_event_open",
        ] {
            #expect(!allowed.contains(refused), "\(refused)")
        }
        let drift = ProfileDriftDetector(profile: profile, state: SystemState())
        var alerts: [Alert] = []
        drift.check(Self.event("wait4")) { alerts.append($0) }
        #expect(alerts.map(\.ruleId) == ["PROFILE-SYSCALL"])
    }
}
