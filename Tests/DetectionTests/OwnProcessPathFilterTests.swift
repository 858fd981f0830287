import Detection
import Testing

/// The filter behind CAD-058: a process's own /proc entry by number is not another's.
@Suite struct OwnProcessPathFilterTests {
    @Test func ownNumbersAreToldFromOthersAndHostileTextIsNoNumber() {
        #expect(OwnProcessPathFilter.isOwn("/proc/42/mem", ids: [42, 42, 5806, 5806]))
        #expect(OwnProcessPathFilter.isOwn("/proc/5807/task/5808/mem", ids: [43, 44, 5807, 5808]))
        #expect(!OwnProcessPathFilter.isOwn("/proc/7/mem", ids: [42, 42, 5806, 5806]))
        #expect(
            !OwnProcessPathFilter.isOwn("/proc/42/task/7/mem", ids: [42, 42]),
            "another thread of the same process is not the caller")
        #expect(
            !OwnProcessPathFilter.isOwn("/proc/self/mem", ids: [1]),
            "no number: the condition already left /proc/self out")
        #expect(OwnProcessPathFilter.processNumbers(in: "/proc/99999999999/mem").isEmpty)
        #expect(
            OwnProcessPathFilter.processNumbers(in: "/proc/" + String(repeating: "9", count: 10_000) + "/mem").isEmpty)
        #expect(OwnProcessPathFilter.processNumbers(in: "mem").isEmpty)
    }
}
