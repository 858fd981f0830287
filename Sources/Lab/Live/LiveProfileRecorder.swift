import Detection
import Foundation
import Sensor

/// A learning `DetectionPipeline` on its own thread, as `caduceus profile record` runs it:
/// the profile is read after `stop()`.
public final class LiveProfileRecorder: @unchecked Sendable {
    /// The loaded sensor (started by `init`).
    public let sensor: Sensor
    private let pipeline: DetectionPipeline
    private let learner: ProfileLearner
    private let started = Date()
    private var result: Result<SensorStatistics, Error>?
    private let finished = DispatchSemaphore(value: 0)

    /// Learns from the containers named `containerName` (every container without one) from now
    /// on, so a container started after this is recorded from its start. Needs root and BPF.
    public init(containerName: String?, scope: TraceScope = .containers) throws {
        let learner = ProfileLearner(containerName: containerName)
        self.learner = learner
        let pipeline = DetectionPipeline(learning: learner)
        self.pipeline = pipeline
        var configuration = SensorConfiguration()
        configuration.scope = scope
        configuration.wakeupBytes = 256 << 10
        configuration.pollMilliseconds = 20
        sensor = try pipeline.startSensor(configuration)
        Thread.detachNewThread { [self] in
            result = Result { try pipeline.run() }
            finished.signal()
        }
    }

    /// Stops once the events already sent are read; the profile, and the events the kernel lost.
    public func stop() throws -> (profile: ContainerProfile, lost: UInt64) {
        Thread.sleep(forTimeInterval: 0.5)
        pipeline.stop()
        finished.wait()
        let statistics = try result!.get()
        return (learner.profile(duration: Date().timeIntervalSince(started)), statistics.lost)
    }
}
