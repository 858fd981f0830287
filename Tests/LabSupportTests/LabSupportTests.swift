import Foundation
@testable import LabSupport
import Testing

/// The support the lab, the benchmarks and the kernel tests share, on real processes and sockets.
@Suite struct LabSupportTests {
    /// A server's port comes from below the ephemeral range and is not one a socket holds.
    @Test func anUnusedLoopbackPortIsBelowTheEphemeralRangeAndFree() throws {
        let listener = try LoopbackListener()
        #expect(!LoopbackPort.isFree(Int(listener.port)))
        for _ in 0..<20 {
            let port = LoopbackPort.unused()
            #expect((30000..<32768).contains(port))
            #expect(LoopbackPort.isFree(port))
        }
    }

    @Test func aCommandsStatusAndInterleavedOutputAreReturned() {
        let (status, output) = ProcessRunner.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
        #expect(status == 3)
        #expect(output == "out\nerr")
    }

    @Test func aSignalEndingTheChildIsReportedAs128PlusItsNumber() {
        let (status, _) = ProcessRunner.run(["sh", "-c", "kill -TERM $$"])
        #expect(status == 128 + SIGTERM)
    }

    @Test func aMissingProgramIsAnExitStatusNotACrash() {
        let (status, output) = ProcessRunner.run(["caduceus-no-such-program-here"])
        #expect(status == 127)
        #expect(output.contains("cannot start caduceus-no-such-program-here"))
        #expect(!ProcessRunner.isInstalled("caduceus-no-such-program-here"))
        #expect(ProcessRunner.isInstalled("sh"))
    }

    @Test func checkThrowsALabErrorQuotingTheCommandAndItsOutput() throws {
        #expect(try ProcessRunner.check(["sh", "-c", "printf ok"]) == "ok")
        do {
            try ProcessRunner.check(["sh", "-c", "echo broken; exit 2"])
            Issue.record("check did not throw")
        } catch let error as LabError {
            #expect(error.description.contains("failed (exit 2)"))
            #expect(error.description.hasSuffix("broken"))
        }
    }

    @Test func theEnvironmentIsPassedToTheChild() {
        let (status, output) = ProcessRunner.run(
            ["sh", "-c", "printf %s \"$CADUCEUS_LAB_SUPPORT_TEST\""], environment: ["CADUCEUS_LAB_SUPPORT_TEST": "seen"]
        )
        #expect(status == 0 && output == "seen")
    }

    @Test func thisProcessHasAResidentSizeAndAGoneOneHasNone() {
        let memory = ProcessMemory()
        #expect(memory != nil)
        if let memory { #expect(memory.residentKB > 0 && memory.peakKB >= memory.residentKB) }
        #expect(ProcessMemory(pid: Int32.max) == nil)
    }

    @Test func concurrentTasksDrawEachNumberOnceAndFillEverySlot() async {
        let counter = LockedCounter()
        let slots = LockedArray<Int>(count: 400)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    while true {
                        let index = counter.next()
                        guard index < 400 else { return }
                        slots.set(index, index * 2)
                    }
                }
            }
        }
        #expect(slots.values == (0..<400).map { $0 * 2 })
    }

    @Test func theLoopbackListenerAcceptsAConnection() throws {
        let listener = try LoopbackListener()
        #expect(listener.port > 0)
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(client) }
        var address = LoopbackPort.address(Int(listener.port))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        #expect(connected == 0)
        #expect(listener.accepted)
    }
}
