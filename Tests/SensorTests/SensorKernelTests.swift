import KernelTestSupport
import Foundation
import LabSupport
import Sensor
import Testing

/// Real programs in a real Docker container and on the host, traced by the real kernel:
/// each test asserts exact events. Needs root, BPF and Docker (see SensorTestEnvironment).
@Suite(.serialized, .enabled(if: SensorTestEnvironment.shouldRun))
struct SensorKernelTests {
    @Test func containerProgramsGiveExactEvents() throws {
        try SensorTestEnvironment.require()
        let name = "caduceus-test-\(UUID().uuidString.prefix(8).lowercased())"
        let listener = try LoopbackListener()
        var configuration = SensorConfiguration()
        configuration.scope = .containers
        let trace = try BackgroundTrace(configuration, marker: name)
        let script =
            "/bin/cat /etc/hostname; /bin/touch /tmp/probe /tmp/relative; /bin/rm /tmp/probe; "
            + "cd /tmp && /bin/rm ./relative; "
            + "/bin/nc -w 2 127.0.0.1 \(listener.port) </dev/null; exit 3"
        let id = try SensorTestEnvironment.run([
            "docker", "run", "-d", "--network", "host", "--name", name, SensorTestEnvironment.image, "/bin/sh", "-c",
            script,
        ])
        defer { _ = try? SensorTestEnvironment.run(["docker", "rm", "-f", name]) }
        #expect(try SensorTestEnvironment.run(["docker", "wait", name]) == "3")
        let (report, all) = try trace.finish()
        let events = all.filter { $0.containerName == name }
        #expect(report.statistics.lost == 0, "no loss at a low rate")
        #expect(listener.accepted)
        #expect(!events.isEmpty, "events carry the container's name from the Docker API")

        // execve of a known binary, with its argv, as the syscall and as the exec event.
        let execve = events.first { $0.name == "execve" && $0.argument("pathname") as? String == "/bin/cat" }
        #expect(execve?.argument("argv") as? [String] == ["/bin/cat", "/etc/hostname"])
        let exec = events.first { $0.name == "sched_process_exec" && $0.argument("cmdpath") as? String == "/bin/cat" }
        #expect(exec?.argument("pathname") as? String == "/bin/busybox", "the symlink resolved in the container")
        #expect(exec?.argument("argv") as? [String] == ["/bin/cat", "/etc/hostname"])

        // security_file_open of a known path with its flags (O_RDONLY; the kernel adds O_LARGEFILE).
        let open = events.first {
            $0.name == "security_file_open" && $0.argument("pathname") as? String == "/etc/hostname"
        }
        #expect(open?["processName"] as? String == "cat")
        #expect((open?.argument("flags") as? Int).map { Int32($0) & O_ACCMODE } == O_RDONLY)

        // connect to the listener's 127.0.0.1 port, from the right container.
        let connect = events.first { $0.name == "connect" }
        let address = connect?.argument("addr") as? [String: String]
        #expect(address == ["sa_family": "AF_INET", "sin_addr": "127.0.0.1", "sin_port": String(listener.port)])
        #expect(connect?["containerId"] as? String == id)
        #expect(events.contains { $0.name == "security_socket_connect" })
        #expect(events.contains { $0.name == "security_socket_create" })

        // unlink, as the syscall and as the resolved security event.
        #expect(
            events.contains {
                ($0.name == "unlink" || $0.name == "unlinkat") && $0.argument("pathname") as? String == "/tmp/probe"
            })
        #expect(
            events.contains { $0.name == "security_inode_unlink" && $0.argument("pathname") as? String == "/tmp/probe" }
        )
        #expect(
            events.contains {
                $0.name == "security_inode_unlink" && $0.argument("pathname") as? String == "/tmp/relative"
            },
            "a relative name is joined with the cwd in the kernel")

        // The shell is the container's init: its exit code is the container's.
        #expect(
            events.contains {
                $0.name == "sched_process_exit" && $0["processId"] as? Int == 1 && $0.argument("exit_code") as? Int == 3
            })

        // Namespace pids are the container's own, not the host's.
        let cat = try #require(exec)
        #expect(cat["processId"] as? Int != cat["hostProcessId"] as? Int)
        #expect((cat["processId"] as? Int ?? 0) < 100)
        #expect(cat["containerId"] as? String == id)
        #expect(cat["pidNamespace"] as? Int != nil && cat["mountNamespace"] as? Int != nil)
    }

    @Test func hostProcessesKeepHostPidsAndExitCodes() throws {
        try SensorTestEnvironment.require()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("probe-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = directory.appendingPathComponent("cadu-probe").path
        try "#!/bin/sh\n/bin/cat /etc/hostname > /dev/null\nexit 7\n".write(
            toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)

        var configuration = SensorConfiguration()
        configuration.scope = .host
        configuration.comms = ["cadu-probe"]
        let trace = try BackgroundTrace(configuration)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: script)
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 7)
        let (report, events) = try trace.finish()
        #expect(report.statistics.lost == 0)
        #expect(
            !events.isEmpty && events.allSatisfy { $0["processName"] as? String == "cadu-probe" },
            "the comm filter runs in the kernel")

        let exec = try #require(events.first { $0.name == "sched_process_exec" })
        #expect(exec.argument("cmdpath") as? String == script)
        #expect(exec.argument("interp") as? String == "/bin/sh")
        #expect(exec["processId"] as? Int == Int(process.processIdentifier))
        #expect(exec["processId"] as? Int == exec["hostProcessId"] as? Int, "host pids are namespace pids on the host")
        #expect(exec["containerId"] as? String == "")
        #expect(exec["container"] == nil)
        #expect(events.contains { $0.name == "security_file_open" && $0.argument("pathname") as? String == script })
        #expect(events.contains { $0.name == "sched_process_exit" && $0.argument("exit_code") as? Int == 7 })
    }

    @Test func oneContainerScopeIgnoresOthers() throws {
        try SensorTestEnvironment.require()
        let watched = "caduceus-watched-\(UUID().uuidString.prefix(8).lowercased())"
        let other = "caduceus-other-\(UUID().uuidString.prefix(8).lowercased())"
        for name in [watched, other] {
            try SensorTestEnvironment.run([
                "docker", "run", "-d", "--network", "host", "--name", name, SensorTestEnvironment.image, "/bin/sleep",
                "30",
            ])
        }
        defer { _ = try? SensorTestEnvironment.run(["docker", "rm", "-f", watched, other]) }
        var configuration = SensorConfiguration()
        configuration.scope = .container(watched)
        configuration.events = try EventSelection(parsing: ["execve,sched_process_exit"])
        let trace = try BackgroundTrace(configuration)  // every line: the kernel must drop the other container
        for name in [watched, other] {
            try SensorTestEnvironment.run(["docker", "exec", name, "/bin/true"])
        }
        let (report, events) = try trace.finish()
        #expect(report.statistics.lost == 0)
        #expect(events.contains { $0.name == "execve" && $0.argument("pathname") as? String == "/bin/true" })
        #expect(
            events.allSatisfy { $0.containerName == watched },
            "nothing from the other container costs ring buffer space")
    }

    @Test func kernelProbeLoadsEachHookOrSaysWhy() throws {
        try SensorTestEnvironment.require()
        let probe = KernelProbe.run()
        #expect(probe.results.map(\.name) == ["BPF-LSM", "fentry", "cgroup"])
        #expect(probe.allows("cgroup"), "cgroup programs attach on this machine kind: \(probe.summary)")
        for result in probe.results {
            #expect(result.available || !result.reason.isEmpty, "\(result.name): a refusal says why")
        }
        #expect(probe.summary.contains("BPF-LSM"))
        var configuration = SensorConfiguration()
        configuration.events = try EventSelection(parsing: ["security"])
        let sensor = try Sensor(configuration: configuration)
        let fromLSM = sensor.securityEventSource.contains("BPF-LSM hooks")
        #expect(fromLSM == probe.allows("BPF-LSM"), "\(sensor.securityEventSource)")
    }

    @Test func newContainersScopeSkipsContainersAlreadyRunning() throws {
        try SensorTestEnvironment.require()
        let old = "caduceus-old-\(UUID().uuidString.prefix(8).lowercased())"
        let new = "caduceus-new-\(UUID().uuidString.prefix(8).lowercased())"
        try SensorTestEnvironment.run([
            "docker", "run", "-d", "--network", "host", "--name", old, SensorTestEnvironment.image, "/bin/sleep", "30",
        ])
        defer { _ = try? SensorTestEnvironment.run(["docker", "rm", "-f", old, new]) }
        var configuration = SensorConfiguration()
        configuration.scope = .newContainers
        configuration.events = try EventSelection(parsing: ["execve"])
        let trace = try BackgroundTrace(configuration, marker: "caduceus-")
        try SensorTestEnvironment.run(["docker", "exec", old, "/bin/true"])
        // The new container lives a second, so its name is there to be looked up however busy Docker is.
        try SensorTestEnvironment.run([
            "docker", "run", "--network", "host", "--name", new, SensorTestEnvironment.image, "/bin/sh", "-c",
            "/bin/true; sleep 1",
        ])
        let (_, events) = try trace.finish()
        #expect(events.contains { $0.containerName == new && $0.argument("pathname") as? String == "/bin/true" })
        #expect(!events.contains { $0.containerName == old })
    }

    @Test func uidFilterRunsInTheKernel() throws {
        try SensorTestEnvironment.require()
        let name = "caduceus-uid-\(UUID().uuidString.prefix(8).lowercased())"
        var configuration = SensorConfiguration()
        configuration.scope = .all
        configuration.uids = [4321]
        configuration.events = try EventSelection(parsing: ["execve,openat,sched_process_exit"])
        let trace = try BackgroundTrace(configuration)
        try SensorTestEnvironment.run([
            "docker", "run", "--rm", "--network", "host", "--user", "4321", "--name", name, SensorTestEnvironment.image,
            "/bin/cat", "/etc/hostname",
        ])
        let (report, events) = try trace.finish()
        #expect(report.statistics.lost == 0)
        #expect(events.contains { $0.name == "openat" && $0.argument("pathname") as? String == "/etc/hostname" })
        #expect(!events.isEmpty && events.allSatisfy { $0["userId"] as? Int == 4321 })
    }

    /// `pause()` detaches the programs once and `resume()` attaches them once; a sensor that
    /// enforces refuses to pause, since its programs are what kills.
    @Test func pauseDetachesOnceAndAnEnforcingSensorRefusesIt() throws {
        try SensorTestEnvironment.require()
        var configuration = SensorConfiguration()
        configuration.scope = .all
        configuration.pids = [Int32.max]  // nobody: nothing to read
        configuration.events = try EventSelection(parsing: ["openat"])
        let sensor = try Sensor(configuration: configuration)
        #expect(try sensor.pause())
        #expect(try !sensor.pause())
        #expect(try sensor.resume())
        #expect(try !sensor.resume())
        configuration.killPatterns = [try #require(KillPattern.connect(to: "127.0.0.7", containersOnly: true))]
        let enforcing = try Sensor(configuration: configuration)
        #expect(throws: SensorConfigurationError.self) { try enforcing.pause() }
    }
}
