import Detection
import Foundation
import KernelTestSupport
import LabSupport
import Sensor
import Synchronization
import Testing

extension LiveDetectionSuites {
    /// `action: kill` on socket calls, against the real kernel and a real container: the cgroup
    /// programs refuse the call with EPERM before it runs. Proof by effect: the listener the test
    /// opened accepts nothing (a datagram is never received), the process survives to report the
    /// errno, the alert says "denied (cgroup)"; calls to addresses no rule names go through; the
    /// host is left alone by a `container.id != host` rule; once the sensor is gone, no program is
    /// left attached and the same connect succeeds.
    ///
    /// Addresses 127.0.0.7 (refused), 127.0.0.8 (allowed), 127.0.0.9 (bind refused) and ::1 are
    /// loopback addresses other live tests do not use, and enforcement is limited to the test's
    /// own container where it can be (`--enforce-container`), so concurrent suites are not refused.
    @Suite(.serialized, .enabled(if: SensorTestEnvironment.shouldRun))
    struct LiveCgroupDenialTests {
        static let rules = """
            - rule: Connect to 127.0.0.7 from a container
              id: DENY-CONNECT
              desc: A connect to one loopback address (cgroup-refusable shape).
              condition: evt.type = connect and fd.sip = 127.0.0.7 and container.id != host
              output: "connect (proc=%proc.name)"
              priority: CRITICAL
              action: kill
            - rule: Connect to ::1 from a container
              id: DENY-CONNECT6
              desc: The IPv6 loopback address.
              condition: evt.type = connect and fd.sip = ::1 and container.id != host
              output: "connect6 (proc=%proc.name)"
              priority: CRITICAL
              action: kill
            - rule: Bind to 127.0.0.9 in a container
              id: DENY-BIND
              desc: A bind of one address.
              condition: evt.type = bind and fd.sip = 127.0.0.9 and container.id != host
              output: "bind (proc=%proc.name)"
              priority: CRITICAL
              action: kill
            - rule: Datagram to 127.0.0.7 from a container
              id: DENY-SEND
              desc: An addressed datagram, by sendto or sendmsg.
              condition: evt.type in (sendto, sendmsg) and fd.sip = 127.0.0.7 and container.id != host
              output: "datagram (proc=%proc.name)"
              priority: CRITICAL
              action: kill
            """

        /// `sockcall CALL ADDRESS PORT ...`: each call on a fresh socket, one line per call
        /// (`connect 127.0.0.7 4242 = -1 EPERM`); always exits 0. Built static, mounted into the container.
        static let source = #"""
            #define _GNU_SOURCE
            #include <arpa/inet.h>
            #include <errno.h>
            #include <netinet/in.h>
            #include <stdio.h>
            #include <stdlib.h>
            #include <string.h>
            #include <sys/socket.h>
            #include <unistd.h>
            int main(int argc, char **argv) {
                for (int i = 1; i + 2 < argc; i += 3) {
                    const char *call = argv[i], *host = argv[i + 1];
                    int port = atoi(argv[i + 2]);
                    struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(port)};
                    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
                    struct sockaddr *address;
                    socklen_t length;
                    int family;
                    if (inet_pton(AF_INET, host, &v4.sin_addr) == 1) { address = (void *)&v4; length = sizeof v4; family = AF_INET; }
                    else if (inet_pton(AF_INET6, host, &v6.sin6_addr) == 1) { address = (void *)&v6; length = sizeof v6; family = AF_INET6; }
                    else { printf("%s %s %d = bad address\n", call, host, port); continue; }
                    int udp = !strcmp(call, "sendto") || !strcmp(call, "sendmsg") || !strcmp(call, "udpsend");
                    int fd = socket(family, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
                    long r;
                    if (!strcmp(call, "connect")) r = connect(fd, address, length);
                    else if (!strcmp(call, "bind")) r = bind(fd, address, length);
                    else if (!strcmp(call, "sendto")) r = sendto(fd, "x", 1, 0, address, length);
                    else if (!strcmp(call, "udpsend")) r = connect(fd, address, length) < 0 ? -1 : send(fd, "x", 1, 0);
                    else {
                        struct iovec iov = {.iov_base = "x", .iov_len = 1};
                        struct msghdr msg = {.msg_name = address, .msg_namelen = length, .msg_iov = &iov, .msg_iovlen = 1};
                        r = sendmsg(fd, &msg, 0);
                    }
                    int saved = errno;
                    printf("%s %s %d = %ld %s\n", call, host, port, r, r < 0 ? strerrorname_np(saved) : "OK");
                    fflush(stdout);
                    close(fd);
                }
                return 0;
            }
            """#

        /// The helper, compiled once per test run.
        static let helper: Result<String, Error> = Result {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "caduceus-sockcall-\(getpid())")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let sourcePath = directory.appendingPathComponent("sockcall.c").path
            let binary = directory.appendingPathComponent("sockcall").path
            try source.write(toFile: sourcePath, atomically: true, encoding: .utf8)
            try SensorTestEnvironment.run(["cc", "-O2", "-static", "-o", binary, sourcePath])
            return binary
        }

        /// A container that stays up with the helper at /sockcall; its full id.
        static func startBox() throws -> String {
            try SensorTestEnvironment.run([
                "docker", "run", "-d", "--network", "host", "-v", "\(try helper.get()):/sockcall:ro",
                SensorTestEnvironment.image,
                "/bin/sh", "-c", "sleep 120",
            ]).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// The helper's lines, run in the container (or on the host when `container` is nil).
        static func calls(in container: String?, _ arguments: [String]) throws -> [String] {
            let binary = try helper.get()
            let command = container.map { ["docker", "exec", $0, "/sockcall"] } ?? [binary]
            return try SensorTestEnvironment.run(command + arguments).split(separator: "\n").map(String.init)
        }

        static func result(_ lines: [String], _ call: String, _ address: String) -> String? {
            lines.first { $0.hasPrefix("\(call) \(address) ") }.map {
                String($0.split(separator: "=").last ?? "").trimmingCharacters(in: .whitespaces)
            }
        }

        @Test func containerSocketCallsAreRefusedBeforeTheyRun() throws {
            try SensorTestEnvironment.require()
            let ruleSet = try RuleSet.load([("deny.yaml", Self.rules)])
            let id = try Self.startBox()
            defer { LiveDetection.removeContainers([id]) }
            let refused = try CountingSocket(address: "127.0.0.7")
            let allowed = try CountingSocket(address: "127.0.0.8")
            let refused6 = try CountingSocket(address: "::1")
            let datagrams = try CountingSocket(address: "127.0.0.7", udp: true)
            let otherDatagrams = try CountingSocket(address: "127.0.0.8", udp: true)
            let live = try LiveDetection(ruleSet: ruleSet, enforcement: EnforcementOptions(all: true, containers: [id]))
            #expect(live.sensor.cgroupDenial.failure == nil, "\(live.sensor.cgroupDenial.summary)")
            #expect(
                Set(live.sensor.cgroupDenial.programs) == [
                    "cgroup_bind4", "cgroup_bind6", "cgroup_connect4", "cgroup_connect6", "cgroup_sendmsg4",
                    "cgroup_sendmsg6",
                ])
            let lines = try Self.calls(
                in: id,
                [
                    "connect", "127.0.0.7", "\(refused.port)", "connect", "::ffff:127.0.0.7", "\(refused.port)",
                    "connect", "::1", "\(refused6.port)", "connect", "127.0.0.8", "\(allowed.port)",
                    "bind", "127.0.0.9", "0", "bind", "127.0.0.8", "0",
                    "sendto", "127.0.0.7", "\(datagrams.port)", "sendmsg", "127.0.0.7", "\(datagrams.port)",
                    "sendto", "127.0.0.8", "\(otherDatagrams.port)", "udpsend", "127.0.0.7", "\(datagrams.port)",
                ])
            Thread.sleep(forTimeInterval: 1)  // a connection or datagram would have arrived by now
            let (alerts, lost) = try live.stop()
            #expect(lost == 0)
            // The process survived every refusal (the helper printed all its lines and exited 0).
            #expect(lines.count == 10, "\(lines)")
            #expect(Self.result(lines, "connect", "127.0.0.7") == "-1 EPERM", "\(lines)")
            #expect(Self.result(lines, "connect", "::ffff:127.0.0.7") == "-1 EPERM", "IPv4-mapped: \(lines)")
            #expect(Self.result(lines, "connect", "::1") == "-1 EPERM", "\(lines)")
            #expect(Self.result(lines, "connect", "127.0.0.8") == "0 OK", "\(lines)")
            #expect(Self.result(lines, "bind", "127.0.0.9") == "-1 EPERM", "\(lines)")
            #expect(Self.result(lines, "bind", "127.0.0.8") == "0 OK", "\(lines)")
            #expect(Self.result(lines, "sendto", "127.0.0.7") == "-1 EPERM", "\(lines)")
            #expect(Self.result(lines, "sendmsg", "127.0.0.7") == "-1 EPERM", "\(lines)")
            #expect(Self.result(lines, "sendto", "127.0.0.8") == "1 OK", "\(lines)")
            // A UDP socket connected to the address would send(2) there past every hook: its connect is refused.
            #expect(Self.result(lines, "udpsend", "127.0.0.7") == "-1 EPERM", "\(lines)")
            // The effect: nothing reached the refused ends; the allowed ones got theirs.
            #expect(refused.count() == 0 && refused6.count() == 0 && datagrams.count() == 0)
            #expect(allowed.count() == 1 && otherDatagrams.count() == 1)
            let mine = alerts.filter { $0.container.id == id }
            for rule in ["DENY-CONNECT", "DENY-CONNECT6", "DENY-BIND", "DENY-SEND"] {
                let raised = mine.filter { $0.ruleId == rule }
                #expect(
                    !raised.isEmpty && raised.allSatisfy { $0.action == "denied (cgroup)" },
                    "\(rule): \(raised.map(\.action))")
            }
        }

        /// `--enforce-container NAME` follows the container through a restart (new cgroups): its
        /// connects are still refused (a red-team pass found them accepted after `docker restart`).
        @Test func aNamedContainerIsStillGuardedAfterARestart() throws {
            try SensorTestEnvironment.require()
            let ruleSet = try RuleSet.load([("deny.yaml", Self.rules)])
            let name = "caduceus-cgroup-restart-\(getpid())"
            let id = try SensorTestEnvironment.run([
                "docker", "run", "-d", "--name", name, "--network", "host", "-v",
                "\(try Self.helper.get()):/sockcall:ro",
                SensorTestEnvironment.image, "/bin/sh", "-c", "sleep 120",
            ]).trimmingCharacters(in: .whitespacesAndNewlines)
            defer { LiveDetection.removeContainers([id]) }
            let refused = try CountingSocket(address: "127.0.0.7")
            let live = try LiveDetection(
                ruleSet: ruleSet, enforcement: EnforcementOptions(all: true, containers: [name]))
            let before = try Self.calls(in: id, ["connect", "127.0.0.7", "\(refused.port)"])
            try SensorTestEnvironment.run(["docker", "restart", "-t", "1", name])
            Thread.sleep(forTimeInterval: 2.5)  // the sensor looks again every second
            let after = try Self.calls(in: id, ["connect", "127.0.0.7", "\(refused.port)"])
            Thread.sleep(forTimeInterval: 1)
            _ = try live.stop()
            #expect(Self.result(before, "connect", "127.0.0.7") == "-1 EPERM", "\(before)")
            #expect(Self.result(after, "connect", "127.0.0.7") == "-1 EPERM", "after the restart: \(after)")
            #expect(refused.count() == 0)
        }

        @Test func theHostIsLeftAloneByAContainerRule() throws {
            try SensorTestEnvironment.require()
            let ruleSet = try RuleSet.load([("deny.yaml", Self.rules)])
            let id = try Self.startBox()
            defer { LiveDetection.removeContainers([id]) }
            let listener = try CountingSocket(address: "127.0.0.7")
            // Every process in scope, every container enforced: only the rule's `container.id != host` spares the host.
            let live = try LiveDetection(ruleSet: ruleSet, scope: .all, enforcement: EnforcementOptions(all: true))
            let host = try Self.calls(in: nil, ["connect", "127.0.0.7", "\(listener.port)"])
            let container = try Self.calls(in: id, ["connect", "127.0.0.7", "\(listener.port)"])
            Thread.sleep(forTimeInterval: 1)
            let (alerts, _) = try live.stop()
            #expect(Self.result(host, "connect", "127.0.0.7") == "0 OK", "\(host)")
            #expect(Self.result(container, "connect", "127.0.0.7") == "-1 EPERM", "\(container)")
            #expect(listener.count() == 1, "the host's connection only")
            #expect(
                !alerts.contains { $0.ruleId == "DENY-CONNECT" && $0.container.id != id },
                "no alert for the host's connect")
        }

        @Test func nothingIsLeftAttachedOnceTheSensorIsGone() throws {
            try SensorTestEnvironment.require()
            let ruleSet = try RuleSet.load([("deny.yaml", Self.rules)])
            let root = try #require(CgroupDenial.v2Root())
            let before = try CgroupDenial.attachedPrograms(root: root).filter { $0.hasPrefix("cgroup_") }
            let id = try Self.startBox()
            defer { LiveDetection.removeContainers([id]) }
            let listener = try CountingSocket(address: "127.0.0.7")
            var refusedWhileUp: [String] = []
            var attachedWhileUp: [String] = []
            do {
                let live = try LiveDetection(
                    ruleSet: ruleSet, enforcement: EnforcementOptions(all: true, containers: [id]))
                attachedWhileUp = try CgroupDenial.attachedPrograms(root: root).filter { $0.hasPrefix("cgroup_") }
                refusedWhileUp = try Self.calls(in: id, ["connect", "127.0.0.7", "\(listener.port)"])
                _ = try live.stop()
            }
            // The last reference to the detector (and its sensor, whose links hold the programs)
            // is its reader thread's, dropped just after stop() returns.
            var after = try CgroupDenial.attachedPrograms(root: root).filter { $0.hasPrefix("cgroup_") }
            let deadline = Date().addingTimeInterval(5)
            while after.count > before.count && Date() < deadline {
                Thread.sleep(forTimeInterval: 0.05)
                after = try CgroupDenial.attachedPrograms(root: root).filter { $0.hasPrefix("cgroup_") }
            }
            let again = try Self.calls(in: id, ["connect", "127.0.0.7", "\(listener.port)"])
            #expect(attachedWhileUp.count == before.count + 6, "\(attachedWhileUp)")
            #expect(Self.result(refusedWhileUp, "connect", "127.0.0.7") == "-1 EPERM", "\(refusedWhileUp)")
            #expect(after.sorted() == before.sorted(), "left attached: \(after)")
            #expect(Self.result(again, "connect", "127.0.0.7") == "0 OK", "\(again)")
            #expect(listener.count() == 1, "only the connect after the sensor was gone")
        }
    }
}

/// A TCP listener (or a UDP socket) on one address and a free port, never accepting by itself:
/// `count()` takes what arrived, without blocking.
final class CountingSocket {
    let fd: Int32
    let port: UInt16
    let udp: Bool

    init(address: String, udp: Bool = false) throws {
        self.udp = udp
        var storage = sockaddr_storage()
        var length: socklen_t
        let family: Int32
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        if inet_pton(AF_INET, address, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            family = AF_INET
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            withUnsafeBytes(of: v4) { bytes in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) } }
        } else if inet_pton(AF_INET6, address, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            family = AF_INET6
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            withUnsafeBytes(of: v6) { bytes in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) } }
        } else {
            throw SensorConfigurationError(description: "not an address: \(address)")
        }
        let kind = udp ? SOCK_DGRAM : SOCK_STREAM
        let fd = socket(family, Int32(kind.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        let ready = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw -> Bool in
                guard bind(fd, raw, length) == 0, udp || listen(fd, 16) == 0 else { return false }
                return getsockname(fd, raw, &length) == 0
            }
        }
        self.fd = fd
        guard fd >= 0, ready else {
            if fd >= 0 { close(fd) }
            throw SensorConfigurationError(
                description: "cannot open a socket on \(address): \(String(cString: strerror(errno)))")
        }
        port = UInt16(bigEndian: withUnsafeBytes(of: storage) { $0.load(fromByteOffset: 2, as: UInt16.self) })
    }

    /// Connections accepted (or datagrams received) since the last count.
    func count() -> Int {
        var n = 0
        var byte: UInt8 = 0
        while true {
            if udp {
                guard recv(fd, &byte, 1, 0) >= 0 else { return n }
            } else {
                let client = accept(fd, nil, nil)
                guard client >= 0 else { return n }
                close(client)
            }
            n += 1
        }
    }

    deinit { close(fd) }
}

extension LiveDetectionSuites.LiveCgroupDenialTests {
    /// Where the cgroup programs cannot attach (here: a path that is no cgroup), the sensor says
    /// why and kills at the syscall's entry instead: the process dies with SIGKILL, and the
    /// connection it asked for was made all the same, which is why a refusal is the better mechanism.
    @Test func whereTheProgramsCannotAttachTheCallIsKilledAfterItRan() throws {
        try SensorTestEnvironment.require()
        let id = try Self.startBox()
        defer { LiveDetection.removeContainers([id]) }
        let listener = try CountingSocket(address: "127.0.0.7")
        var configuration = SensorConfiguration()
        configuration.events = EventSelection(ids: [42])
        configuration.killPatterns = [try #require(KillPattern.connect(to: "127.0.0.7", containersOnly: true))]
        configuration.killContainers = [id]
        configuration.cgroupRoot = "/nonexistent-cgroup"
        let sensor = try Sensor(configuration: configuration)
        #expect(sensor.cgroupDenial.failure?.contains("/nonexistent-cgroup") == true, "\(sensor.cgroupDenial)")
        #expect(sensor.enforcedPatterns.allSatisfy { !$0.refusedInCgroup })
        let killed = Atomic<Int>(0)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            _ = try? sensor.run { raw in
                let event = TraceEvent(raw, bootTimeOffset: 0, containers: sensor.containers)
                if event.eventName == "connect" && event.killedBySlot == 0 { killed.add(1, ordering: .relaxed) }
            }
            done.signal()
        }
        let (status, output) = ProcessRunner.run([
            "docker", "exec", id, "/sockcall", "connect", "127.0.0.7", "\(listener.port)",
        ])
        Thread.sleep(forTimeInterval: 1)
        sensor.stop()
        done.wait()
        #expect(
            status == 137 && !output.contains("connect 127.0.0.7"), "SIGKILL before it could print: \(status) \(output)"
        )
        #expect(killed.load(ordering: .relaxed) >= 1, "the connect's record says the kernel killed it")
        #expect(listener.count() == 1, "the kill does not stop the call: the connection was made")
    }

    /// Any connect in the container: IPv4 and IPv6 calls are refused by the cgroup programs;
    /// a connect of another family (AF_UNIX), which they do not see, is still killed at entry.
    @Test func anyConnectIsRefusedForInternetFamiliesAndKilledForOthers() throws {
        try SensorTestEnvironment.require()
        let rules = """
            - rule: Any connect from a container
              id: DENY-ANY-CONNECT
              desc: Every connect.
              condition: evt.type = connect and container.id != host
              output: "connect (proc=%proc.name)"
              priority: CRITICAL
              action: kill
            """
        let id = try Self.startBox()
        defer { LiveDetection.removeContainers([id]) }
        let listener = try CountingSocket(address: "127.0.0.8")
        let live = try LiveDetection(
            ruleSet: try RuleSet.load([("any.yaml", rules)]),
            enforcement: EnforcementOptions(all: true, containers: [id]))
        let inet = try Self.calls(in: id, ["connect", "127.0.0.8", "\(listener.port)"])
        let unix = ProcessRunner.run([
            "docker", "exec", id, "/bin/sh", "-c", "(behave docker-sock /tmp/nothing-here); echo subshell=$?",
        ])
        Thread.sleep(forTimeInterval: 1)
        let (alerts, _) = try live.stop()
        #expect(Self.result(inet, "connect", "127.0.0.8") == "-1 EPERM", "\(inet)")
        #expect(listener.count() == 0)
        #expect(unix.output.contains("subshell=137"), "AF_UNIX: killed at entry: \(unix.output)")
        let actions = Set(
            alerts.filter { $0.container.id == id && $0.ruleId == "DENY-ANY-CONNECT" }.compactMap(\.action))
        #expect(actions == ["denied (cgroup)", "killed after the syscall (kernel)"], "\(actions)")
    }
}

extension LiveDetectionSuites.LiveCgroupDenialTests {
    /// The programs hang on the sensor's link file descriptors, nothing is pinned: `kill -9` of
    /// `caduceus detect --enforce` detaches them, and the container's connect goes through again.
    @Test func killDashNineOfDetectLeavesNoProgramAttached() throws {
        try SensorTestEnvironment.require()
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let binary = package.appendingPathComponent(".build/debug/caduceus").path
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build caduceus first: \(binary)")
        let root = try #require(CgroupDenial.v2Root())
        let before = try CgroupDenial.attachedPrograms(root: root).filter { $0.hasPrefix("cgroup_") }
        let id = try Self.startBox()
        defer { LiveDetection.removeContainers([id]) }
        let listener = try CountingSocket(address: "127.0.0.7")
        let rules = FileManager.default.temporaryDirectory.appendingPathComponent("caduceus-deny-\(getpid()).yaml").path
        try Self.rules.write(toFile: rules, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: rules) }
        let detect = Process()
        detect.executableURL = URL(fileURLWithPath: binary)
        detect.arguments = ["detect", "--no-builtin-rules", "--rules", rules, "--enforce", "--enforce-container", id]
        let errors = Pipe()
        detect.standardError = errors
        detect.standardOutput = FileHandle.nullDevice
        try detect.run()
        // Up once it says so (it has attached everything by then).
        var said = ""
        let deadline = Date().addingTimeInterval(30)
        while !said.contains("Ctrl-C to stop") && Date() < deadline && detect.isRunning {
            said += String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self)
        }
        let whileUp = try CgroupDenial.attachedPrograms(root: root).filter { $0.hasPrefix("cgroup_") }
        let refused = try Self.calls(in: id, ["connect", "127.0.0.7", "\(listener.port)"])
        kill(detect.processIdentifier, SIGKILL)
        detect.waitUntilExit()
        let after = try CgroupDenial.attachedPrograms(root: root).filter { $0.hasPrefix("cgroup_") }
        let again = try Self.calls(in: id, ["connect", "127.0.0.7", "\(listener.port)"])
        #expect(said.contains("refused with EPERM by"), "\(said)")
        #expect(whileUp.count == before.count + 6, "\(whileUp)")
        #expect(Self.result(refused, "connect", "127.0.0.7") == "-1 EPERM", "\(refused)")
        #expect(detect.terminationReason == .uncaughtSignal && detect.terminationStatus == SIGKILL)
        #expect(after.sorted() == before.sorted(), "left attached after kill -9: \(after)")
        #expect(Self.result(again, "connect", "127.0.0.7") == "0 OK", "\(again)")
        #expect(listener.count() == 1)
    }
}
