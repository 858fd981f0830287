import Detection
import Foundation
import KernelTestSupport
@testable import Sensor
import Testing

/// The root sensor reads files a container controls: /etc/passwd under /proc/PID/root, the
/// command line and environment. A container that makes them a symlink to a FIFO, to
/// /dev/zero, out of its root, or a 100 MB file, gets an empty field quickly; nothing hangs,
/// nothing grows, nothing of the host is read.
@Suite(.serialized) struct ContainerFileTests {
    /// A temporary directory acting as a container's root, with a regular /etc/passwd and
    /// /etc/shadow of its own.
    final class Root {
        let path: String
        init() throws {
            path =
                FileManager.default.temporaryDirectory.appendingPathComponent(
                    "container-root-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
                ).path
            try FileManager.default.createDirectory(atPath: path + "/etc", withIntermediateDirectories: true)
            try "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n".write(
                toFile: path + "/etc/passwd", atomically: false, encoding: .utf8)
            try "container-shadow:x:4242:0::/:/bin/sh\n".write(
                toFile: path + "/etc/shadow", atomically: false, encoding: .utf8)
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }

        func replacePasswd(_ make: (String) throws -> Void) throws {
            try FileManager.default.removeItem(atPath: path + "/etc/passwd")
            try make(path + "/etc/passwd")
        }
    }

    /// Names from the root's /etc/passwd, and how long it took.
    func names(_ root: Root) -> ([UInt32: String], Double) {
        let start = Date()
        let names = ProcFS.userNames(root: root.path)
        return (names, Date().timeIntervalSince(start))
    }

    @Test func aRegularPasswdIsRead() throws {
        let root = try Root()
        #expect(names(root).0 == [0: "root", 1000: "alice"])
    }

    @Test func aPasswdThatIsAFIFOIsNeverWaitedOn() throws {
        let root = try Root()
        try root.replacePasswd { #expect(mkfifo($0, 0o644) == 0) }
        let (found, seconds) = names(root)
        #expect(found.isEmpty)
        #expect(seconds < 0.2, "the FIFO is never opened for reading")
        #expect(ContainerFile.stalledReads == 0)
        // Through a symlink too.
        try FileManager.default.removeItem(atPath: root.path + "/etc/passwd")
        #expect(mkfifo(root.path + "/etc/pipe", 0o644) == 0)
        try FileManager.default.createSymbolicLink(atPath: root.path + "/etc/passwd", withDestinationPath: "pipe")
        #expect(names(root).0.isEmpty && names(root).1 < 0.2)
    }

    @Test func aPasswdThatIsADeviceIsNeverOpened() throws {
        let root = try Root()
        // The host's /dev/zero by an absolute and a climbing link: both resolve inside the root.
        try root.replacePasswd {
            try FileManager.default.createSymbolicLink(atPath: $0, withDestinationPath: "/dev/zero")
        }
        #expect(names(root).0.isEmpty)
        try root.replacePasswd {
            try FileManager.default.createSymbolicLink(
                atPath: $0, withDestinationPath: "../../../../../../../../dev/zero")
        }
        #expect(names(root).0.isEmpty)
        // A device node inside the root (as root, a container could have one): not regular.
        try root.replacePasswd { #expect(mknod($0, S_IFCHR | 0o666, dev_t((1 << 8) | 5)) == 0) }
        let (found, seconds) = names(root)
        #expect(found.isEmpty && seconds < 0.2)
    }

    @Test func aLinkOutOfTheRootStaysInsideIt() throws {
        let root = try Root()
        try root.replacePasswd {
            try FileManager.default.createSymbolicLink(
                atPath: $0, withDestinationPath: "../../../../../../../../etc/shadow")
        }
        // Resolved as the container sees it: its own /etc/shadow, never the host's.
        #expect(names(root).0 == [4242: "container-shadow"])
        try root.replacePasswd {
            try FileManager.default.createSymbolicLink(atPath: $0, withDestinationPath: "/proc/self/root/etc/hostname")
        }
        #expect(names(root).0.isEmpty, "no magic link, no escape through /proc")
    }

    @Test func aHugePasswdIsReadToItsCapOnly() throws {
        let root = try Root()
        try root.replacePasswd { path in
            #expect(FileManager.default.createFile(atPath: path, contents: Data("bob:x:7:7::/:/bin/sh\n".utf8)))
            #expect(truncate(path, 100 * 1024 * 1024) == 0)
        }
        let (found, seconds) = names(root)
        #expect(found == [7: "bob"])
        #expect(seconds < 2)
        let bytes = try #require(ContainerFile.read("/etc/passwd", inRoot: root.path, limit: ProcFS.passwdBytes))
        #expect(bytes.count == ProcFS.passwdBytes)
    }

    @Test func aReadThatBlocksIsAbandonedAtItsTimeCap() throws {
        let start = Date()
        let result = ContainerFile.bounded(timeout: 0.1) {
            Thread.sleep(forTimeInterval: 1)
            return [1]
        }
        #expect(result == nil)
        #expect(Date().timeIntervalSince(start) < 0.5)
        #expect(ContainerFile.stalledReads == 1)
        Thread.sleep(forTimeInterval: 1.2)
        #expect(ContainerFile.stalledReads == 0, "the abandoned read is forgotten when it ends")
        #expect(ContainerFile.bounded(timeout: 1) { [2] } == [2])
    }

    @Test func aHugeCommandLineIsReadToItsCap() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments =
            ["-c", "sleep 5", "sh"] + Array(repeating: String(repeating: "a", count: 100_000), count: 2)
        try process.run()
        defer { process.terminate(); process.waitUntilExit() }
        Thread.sleep(forTimeInterval: 0.2)
        let argv = try #require(ProcFS.argv(UInt32(process.processIdentifier)))
        #expect(argv.prefix(3) == ["/bin/sh", "-c", "sleep 5"])
        #expect(argv.joined(separator: "\0").utf8.count <= ProcFS.argumentBytes)
    }

    /// Who a container is comes from the cgroup path the runtime made (read by the root sensor
    /// from the kernel: the event's cgroup id, /proc/PID/cgroup) and the engine, never from
    /// what the container can write: a cgroup it makes below its own, named like another
    /// container's, does not make its events that container's.
    @Test func containerIdentityIsTheRuntimesCgroupNotOneTheContainerMade() {
        let mine = String(repeating: "a1", count: 32), other = String(repeating: "b2", count: 32)
        #expect(ContainerResolver.containerID(fromCgroupPath: "/system.slice/docker-\(mine).scope") == mine)
        #expect(
            ContainerResolver.containerID(fromCgroupPath: "/system.slice/docker-\(mine).scope/docker-\(other).scope")
                == mine)
        #expect(ContainerResolver.containerID(fromCgroupPath: "0::/docker/\(mine)/init/\(other)") == mine)
        #expect(
            ContainerResolver.containerID(
                fromCgroupPath: "/kubepods/burstable/pod1234-5678/cri-containerd-\(mine).scope") == mine)
        #expect(ContainerResolver.containerID(fromCgroupPath: "/user.slice/user-1000.slice") == nil)
    }

    /// The real case: a container whose /etc/passwd is a FIFO, then a link to /dev/zero, read
    /// by the root sensor's code through /proc/PID/root.
    @Test(.enabled(if: SensorTestEnvironment.shouldRun, "root and Docker with the test image"))
    func aHostileContainersPasswdGivesNoNamesAndNoStall() throws {
        try SensorTestEnvironment.require()
        for setup in [
            "rm /etc/passwd && mkfifo /etc/passwd", "rm /etc/passwd && ln -s /dev/zero /etc/passwd",
            "rm /etc/passwd && ln -s ../../../../../etc/shadow /etc/passwd",
        ] {
            let name = "caduceus-hostile-passwd-\(getpid())"
            _ = try? SensorTestEnvironment.run(["docker", "rm", "-f", name])
            try SensorTestEnvironment.run([
                "docker", "run", "-d", "--rm", "--name", name, "--entrypoint", "sh", SensorTestEnvironment.image, "-c",
                setup + " && sleep 30",
            ])
            defer { _ = try? SensorTestEnvironment.run(["docker", "rm", "-f", name]) }
            let pid = try #require(
                UInt32(
                    SensorTestEnvironment.run(["docker", "inspect", "-f", "{{.State.Pid}}", name]).trimmingCharacters(
                        in: .whitespacesAndNewlines)))
            var ready = false
            for _ in 0..<50 where !ready {
                ready =
                    (try? SensorTestEnvironment.run([
                        "docker", "exec", name, "sh", "-c", "test ! -f /etc/passwd || test -L /etc/passwd",
                    ])) != nil
                if !ready { Thread.sleep(forTimeInterval: 0.1) }
            }
            let start = Date()
            let names = ProcFS.userNames(rootOf: pid)
            #expect(Date().timeIntervalSince(start) < 0.5, "\(setup)")
            if setup.contains("shadow") {
                // The container's own /etc/shadow, parsed as a passwd: whatever it holds, not the host's.
                let own = try SensorTestEnvironment.run(["docker", "exec", name, "cat", "/etc/shadow"])
                var expected: [UInt32: String] = [:]
                for line in own.split(separator: "\n") {
                    let fields = line.split(separator: ":", omittingEmptySubsequences: false)
                    if fields.count > 2, let uid = UInt32(fields[2]) { expected[uid] = String(fields[0]) }
                }
                #expect(names == expected)
            } else {
                #expect(names.isEmpty, "\(setup): \(names)")
            }
        }
    }
}
