import Detection
import Testing

/// The counter behind CAD-065: when a container's loopback connects are a scan, once per window,
/// and bounded whatever a container sends.
@Suite struct PortScanDetectorTests {
    static let second: UInt64 = 1_000_000_000

    @Test func tenClosedPortsInAWindowAreAScanReportedOnce() {
        let detector = PortScanDetector()
        var notes: [String] = []
        for port in 1...40 {
            if let note = detector.observe(
                container: "c1", port: port, refused: true, time: UInt64(port) * Self.second / 10)
            {
                notes.append(note)
            }
        }
        #expect(notes.count == 1, "\(notes)")
        #expect(notes.first == "10 loopback ports in 0.9 s, 10 refused or unanswered", "\(notes)")
    }

    @Test func manyConnectsToAFewAnsweringPortsAreNot() {
        let detector = PortScanDetector()
        for round in 0..<1000 {
            for port in [5432, 6379, 8080] {
                #expect(
                    detector.observe(container: "c1", port: port, refused: false, time: UInt64(round) * 1_000_000)
                        == nil)
            }
        }
    }

    @Test func openPortsAloneDoNotMakeAScanAndNeitherDoSlowProbes() {
        let open = PortScanDetector()
        #expect((1...64).allSatisfy { open.observe(container: "c", port: $0, refused: false, time: UInt64($0)) == nil })
        // One closed port every two seconds: never 10 within 10 s.
        let slow = PortScanDetector()
        #expect(
            (1...64).allSatisfy {
                slow.observe(container: "c", port: $0, refused: true, time: UInt64($0) * 2 * Self.second) == nil
            })
    }

    @Test func containersAreCountedApartAndAfterTheWindowAgain() {
        let detector = PortScanDetector()
        // Six ports each from two containers: neither scans.
        for port in 1...6 {
            #expect(detector.observe(container: "a", port: port, refused: true, time: 0) == nil)
            #expect(detector.observe(container: "b", port: port + 100, refused: true, time: 0) == nil)
        }
        // A second scan, after the first window, is reported again.
        var reported = 0
        for (start, base) in [(UInt64(0), 1000), (30 * Self.second, 2000)] {
            for port in 0..<20
            where detector.observe(container: "a", port: base + port, refused: true, time: start + UInt64(port)) != nil
            {
                reported += 1
            }
        }
        #expect(reported == 2)
    }

    @Test func hostileInputStaysBounded() {
        let limits = PortScanDetector.Limits(containers: 64)
        let detector = PortScanDetector(limits: limits)
        for index in 0..<20_000 {
            _ = detector.observe(container: "c\(index)", port: index % 65536, refused: true, time: UInt64(index))
        }
        #expect(detector.followed <= 64)
        // Time running backwards (a replay out of order) starts a window instead of underflowing.
        #expect(detector.observe(container: "x", port: 1, refused: true, time: 10 * Self.second) == nil)
        #expect(detector.observe(container: "x", port: 2, refused: true, time: 0) == nil)
        // Sixty thousand ports from one container: one report, and the counts stop at the threshold.
        let flood = PortScanDetector()
        var reports = 0
        for port in 0..<60_000 where flood.observe(container: "f", port: port, refused: true, time: UInt64(port)) != nil
        { reports += 1 }
        #expect(reports == 1)
    }
}
