import Detection
import Foundation
import KernelTestSupport
import Sensor

/// The sensor and the engine on their own thread, as `caduceus detect` runs them, with the
/// alerts kept for the test to read after `stop()`.
final class LiveDetection: @unchecked Sendable {
    let sensor: Sensor
    let engine: DetectionEngine
    private let lock = NSLock()
    private var alerts: [Alert] = []
    /// Events seen per container id: proof the engine watched what a test ran.
    private var events: [String: Int] = [:]
    private var result: Result<SensorStatistics, Error>?
    private let finished = DispatchSemaphore(value: 0)

    init(ruleSet: RuleSet) throws {
        engine = try DetectionEngine(ruleSet: ruleSet, state: SystemState(readsProcFS: true))
        var configuration = SensorConfiguration()
        configuration.scope = .containers
        configuration.events = EventSelection(ids: Set(engine.requiredEvents.compactMap { EventTable.definition(named: $0)?.id }))
        sensor = try Sensor(configuration: configuration)
        engine.state.seedFromProcFS()
        Thread.detachNewThread { [self] in
            let offset = sensor.bootTimeOffset
            let containers = sensor.containers
            result = Result {
                try sensor.run { raw in
                    let event = TraceEvent(raw, bootTimeOffset: offset, containers: containers)
                    self.lock.lock()
                    self.events[event.containerId, default: 0] += 1
                    self.lock.unlock()
                    self.engine.process(event) { alert in
                        self.lock.lock()
                        self.alerts.append(alert)
                        self.lock.unlock()
                    }
                }
            }
            finished.signal()
        }
    }

    /// Stops after the events already sent are read; the alerts, and the events the kernel lost.
    func eventCount(container id: String) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return events[id, default: 0]
    }

    func stop() throws -> (alerts: [Alert], lost: UInt64) {
        Thread.sleep(forTimeInterval: 0.5)
        sensor.stop()
        finished.wait()
        let statistics = try result!.get()
        lock.lock()
        defer { lock.unlock() }
        return (alerts, statistics.lost)
    }

    /// Runs `command` with `sh -c` in a fresh testbox container until it exits; its full id.
    static func runContainer(_ command: String, dockerArguments: [String] = [], environment: [String: String] = [:]) throws -> String {
        let variables = environment.flatMap { ["-e", "\($0.key)=\($0.value)"] }
        let id = try SensorTestEnvironment.run(
            ["docker", "run", "-d", "--network", "host"] + variables + dockerArguments
                + [SensorTestEnvironment.image, "/bin/sh", "-c", command])
        _ = try SensorTestEnvironment.run(["timeout", "20", "docker", "wait", id])
        return id
    }

    static func removeContainers(_ ids: [String]) {
        guard !ids.isEmpty else { return }
        _ = try? SensorTestEnvironment.run(["docker", "rm", "-f"] + ids)
    }
}
