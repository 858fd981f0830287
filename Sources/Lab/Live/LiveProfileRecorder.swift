import Detection
import Foundation
import Sensor

/// The sensor and a `ProfileLearner` on their own thread, as `caduceus profile record` runs
/// them: the profile is read after `stop()`.
public final class LiveProfileRecorder: @unchecked Sendable {
    public let sensor: Sensor
    private let learner: ProfileLearner
    private let started = Date()
    private var result: Result<SensorStatistics, Error>?
    private let finished = DispatchSemaphore(value: 0)

    /// Learns from the containers named `containerName` (every container without one) from now
    /// on, so a container started after this is recorded from its start. Needs root and BPF.
    public init(containerName: String?, scope: TraceScope = .containers) throws {
        let learner = ProfileLearner(containerName: containerName)
        self.learner = learner
        var configuration = SensorConfiguration()
        configuration.scope = scope
        configuration.events = EventSelection(ids: Set(ProfileLearner.requiredEvents.compactMap { EventTable.definition(named: $0)?.id }))
        configuration.wakeupBytes = 256 << 10
        configuration.pollMilliseconds = 20
        sensor = try Sensor(configuration: configuration)
        Thread.detachNewThread { [self] in
            let offset = sensor.bootTimeOffset
            let containers = sensor.containers
            result = Result {
                try sensor.run { raw in learner.observe(TraceEvent(raw, bootTimeOffset: offset, containers: containers)) }
            }
            finished.signal()
        }
    }

    /// Stops once the events already sent are read; the profile, and the events the kernel lost.
    public func stop() throws -> (profile: ContainerProfile, lost: UInt64) {
        Thread.sleep(forTimeInterval: 0.5)
        sensor.stop()
        finished.wait()
        let statistics = try result!.get()
        return (learner.profile(duration: Date().timeIntervalSince(started)), statistics.lost)
    }
}
