import JSON
import Testing

@testable import Lab

/// The workload's table and JSON give each interaction kind's rate over the whole run.
@Suite struct WorkloadRateTests {
    static func report() -> WorkloadReport {
        WorkloadReport(
            baseURL: "http://127.0.0.1:1/fhir", limit: .seconds(8), rounds: 0, patients: 5, concurrency: 4,
            completedRounds: 0,
            elapsedSeconds: 8, everythingSupported: true,
            kinds: [
                .init(kind: .create, interactions: 100, failures: 0, medianMilliseconds: 9.5, p99Milliseconds: 24),
                .init(kind: .search, interactions: 700, failures: 2, medianMilliseconds: 3.7, p99Milliseconds: 18),
            ],
            medianMilliseconds: 4.2, p99Milliseconds: 21.9, failureCount: 2, failureMessages: [])
    }

    @Test func eachKindHasItsRate() {
        let report = Self.report()
        #expect(report.kinds.map(report.perSecond) == [12.5, 87.5])
        let lines = report.description.split(separator: "\n").map(String.init)
        #expect(lines.contains("interaction          count    per s   failed  median ms  p99 ms"))
        #expect(lines.contains("create                  100     12.5        0       9.50   24.00"), "\(report)")
        #expect(lines.contains("search                  700     87.5        2       3.70   18.00"), "\(report)")
        #expect(lines.contains("all                     800    100.0        2       4.20   21.90"), "\(report)")
        let kinds = report.json["kinds"]?.arrayValue ?? []
        #expect(kinds.map { $0["perSecond"] } == [.number("12.500"), .number("87.500")])
    }
}
