import Detection
import Testing

/// The pairer behind CAD-051: a decoder and a stdin shell that are siblings alive together
/// are a pipeline; anything else is not. Bounded whatever a container sends.
@Suite struct DecodedPayloadShellDetectorTests {
    static let ms: UInt64 = 1_000_000

    @Test func pipelineSiblingsArePairedInEitherOrder() {
        let first = DecodedPayloadShellDetector()
        #expect(first.observe(container: "c", parent: 10, pid: 11, name: "base64", forked: 0, time: 1 * Self.ms) == nil)
        let note = first.observe(
            container: "c", parent: 10, pid: 12, name: "sh", forked: 1 * Self.ms, time: 2 * Self.ms)
        #expect(note == "base64 pid 11 piped into sh pid 12, both started by pid 10")
        let second = DecodedPayloadShellDetector()
        #expect(second.observe(container: "c", parent: 10, pid: 12, name: "bash", forked: 0, time: 1 * Self.ms) == nil)
        #expect(second.observe(container: "c", parent: 10, pid: 11, name: "xxd", forked: 0, time: 3 * Self.ms) != nil)
    }

    @Test func aDecoderThatExitedBeforeTheShellWasForkedIsNotAPipeline() {
        let detector = DecodedPayloadShellDetector()
        _ = detector.observe(container: "c", parent: 10, pid: 11, name: "base64", forked: 0, time: 1 * Self.ms)
        _ = detector.observe(
            container: "c", parent: 10, pid: 11, name: "base64", forked: 0, time: 2 * Self.ms, exited: true)
        #expect(
            detector.observe(container: "c", parent: 10, pid: 12, name: "sh", forked: 3 * Self.ms, time: 4 * Self.ms)
                == nil)
        // But one that exited after the shell was forked was alive beside it.
        _ = detector.observe(container: "c", parent: 20, pid: 21, name: "base64", forked: 0, time: 1 * Self.ms)
        _ = detector.observe(
            container: "c", parent: 20, pid: 21, name: "base64", forked: 0, time: 3 * Self.ms, exited: true)
        #expect(
            detector.observe(container: "c", parent: 20, pid: 22, name: "sh", forked: 2 * Self.ms, time: 4 * Self.ms)
                != nil)
    }

    @Test func theParentsCommandLineVouchesForAPipelineWhoseTimesDoNotShowIt() {
        let detector = DecodedPayloadShellDetector()
        let script = "echo ZWNobyBoaQo= | /usr/bin/base64 -d | sh"
        _ = detector.observe(
            container: "c", parent: 10, pid: 11, name: "base64", forked: 0, time: 1 * Self.ms, parentCommandLine: script
        )
        _ = detector.observe(
            container: "c", parent: 10, pid: 11, name: "base64", forked: 0, time: 2 * Self.ms, exited: true)
        #expect(
            detector.observe(
                container: "c", parent: 10, pid: 12, name: "sh", forked: 3 * Self.ms, time: 4 * Self.ms,
                parentCommandLine: script) != nil)
        // Sequential commands in the parent's script do not vouch.
        let sequential = "base64 /etc/hostname | base64 -d; echo hi | sh"
        _ = detector.observe(
            container: "c", parent: 20, pid: 21, name: "base64", forked: 0, time: 1 * Self.ms,
            parentCommandLine: sequential)
        _ = detector.observe(
            container: "c", parent: 20, pid: 21, name: "base64", forked: 0, time: 2 * Self.ms, exited: true)
        #expect(
            detector.observe(
                container: "c", parent: 20, pid: 22, name: "sh", forked: 3 * Self.ms, time: 4 * Self.ms,
                parentCommandLine: sequential) == nil)
    }

    @Test func otherParentsContainersAndLateShellsAreNotPaired() {
        let detector = DecodedPayloadShellDetector()
        _ = detector.observe(container: "c", parent: 10, pid: 11, name: "base64", forked: 0, time: 0)
        #expect(detector.observe(container: "c", parent: 30, pid: 31, name: "sh", forked: 0, time: 1) == nil)
        #expect(detector.observe(container: "d", parent: 10, pid: 12, name: "sh", forked: 0, time: 1) == nil)
        #expect(
            detector.observe(container: "c", parent: 10, pid: 13, name: "sh", forked: 0, time: 5_000 * Self.ms) == nil)
        // Two decoders are not a pair.
        #expect(detector.observe(container: "e", parent: 1, pid: 2, name: "base64", forked: 0, time: 0) == nil)
        #expect(detector.observe(container: "e", parent: 1, pid: 3, name: "openssl", forked: 0, time: 1) == nil)
    }

    @Test func hostileInputStaysBounded() {
        let detector = DecodedPayloadShellDetector(capacity: 100)
        for index in 0..<20_000 {
            _ = detector.observe(
                container: "c\(index % 500)", parent: UInt32(index), pid: UInt32(index + 1), name: "base64", forked: 0,
                time: UInt64(index))
        }
        #expect(detector.followed <= 100)
        // One parent with thousands of decoder children keeps a few; a shell still pairs with a recent one.
        let busy = DecodedPayloadShellDetector()
        for pid in 0..<10_000 {
            _ = busy.observe(
                container: "c", parent: 1, pid: UInt32(pid + 2), name: "base64", forked: 0, time: UInt64(pid))
        }
        #expect(busy.observe(container: "c", parent: 1, pid: 99_999, name: "sh", forked: 0, time: 10_000) != nil)
        #expect(busy.followed == 1)
    }
}
